/* [prep] inputs -> the sorted list of scans (src/prep/inputs.h). */
#include "prep/inputs.h"

#include "genesis/config.h"
#include "genesis/dicom.h"
#include "genesis/error.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* The list being built; `where` names what is being expanded in messages ("[prep] inputs", "LIST:LINE"). */
struct builder {
    struct scan_list *list;
    int64_t capacity;
};

static int ends_with_any(const char *name, const char *const *suffixes)
{
    size_t n = strlen(name);
    for (; *suffixes; suffixes++) {
        size_t m = strlen(*suffixes);
        if (n > m && !strcasecmp(name + n - m, *suffixes)) return 1;
    }
    return 0;
}

/* Scan files a folder contributes; data files that their header names are never scans themselves. */
static const char *const SCAN_SUFFIXES[] = {".nii", ".nii.gz", ".hdr", ".hdr.gz", ".mhd", ".mha", NULL};
static const char *const DATA_SUFFIXES[] = {".img", ".img.gz", ".raw", ".zraw", NULL};

static int push(struct builder *b, const char *where, const char *path)
{
    size_t width = sizeof b->list->paths[0];
    CHECK(strlen(path) < width, GEN_ERR_USAGE, "%s: scan path too long (%zu characters, at most %zu): %s", where,
          strlen(path), width - 1, path);
    if (b->list->count == b->capacity) {
        int64_t cap = b->capacity ? 2 * b->capacity : 64;
        void *paths = realloc(b->list->paths, width * (size_t)cap);
        CHECK_ALLOC(paths, width * (size_t)cap);
        b->list->paths = paths;
        b->capacity = cap;
    }
    snprintf(b->list->paths[b->list->count++], width, "%s", path);
    return GEN_OK;
}

/* The scans directly in folder dir (file names sorted later with everything else). */
static int expand_folder(struct builder *b, const char *where, const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL, GEN_ERR_IO, "%s: cannot read folder '%s': %s", where, dir, strerror(errno));
    int status = GEN_OK;
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !ends_with_any(e->d_name, SCAN_SUFFIXES)) continue;
        char path[CONFIG_PATH_MAX];
        int n = snprintf(path, sizeof path, "%.*s/%s", (int)len, dir, e->d_name);
        CHECK_GOTO(n > 0 && (size_t)n < sizeof path, GEN_ERR_USAGE, "%s: path too long in '%s'", where, dir);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) CALL_GOTO(push(b, where, path));
    }
    if (dicom_available()) {
        char **series = NULL;
        size_t count = 0;
        CALL_GOTO(dicom_list_series(dir, &series, &count));
        for (size_t i = 0; i < count && status == GEN_OK; i++) status = push(b, where, series[i]);
        dicom_free_list(series, count);
        CALL_GOTO(status);
    }
cleanup:
    closedir(d);
    return status;
}

/* One item: a glob of files and folders, or a DICOM locator. */
static int expand_pattern(struct builder *b, const char *where, const char *item)
{
    glob_t g;
    memset(&g, 0, sizeof g);
    int status = GEN_OK;
    CHECK_GOTO(glob(item, GLOB_NOCHECK, NULL, &g) == 0, GEN_ERR_IO, "%s: cannot expand '%s'", where, item);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *path = g.gl_pathv[i];
        struct stat st;
        if (stat(path, &st) != 0) { /* GLOB_NOCHECK: the pattern itself, when it matched nothing */
            CHECK_GOTO(dicom_is_locator(path), GEN_ERR_USAGE, "%s: no scan matches '%s'", where, path);
            CALL_GOTO(push(b, where, path));
        } else if (S_ISDIR(st.st_mode)) {
            CALL_GOTO(expand_folder(b, where, path));
        } else if (!ends_with_any(path, DATA_SUFFIXES)) {
            CALL_GOTO(push(b, where, path));
        }
    }
cleanup:
    globfree(&g);
    return status;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
    return s;
}

/* @LIST: one item a line, relative to LIST's folder. */
static int expand_list(struct builder *b, const char *list_path)
{
    FILE *f = fopen(list_path, "r");
    CHECK(f != NULL, GEN_ERR_USAGE, "[prep] inputs: cannot open list '@%s': %s", list_path, strerror(errno));
    const char *slash = strrchr(list_path, '/');
    int dir_len = slash ? (int)(slash - list_path) + 1 : 0;
    int status = GEN_OK;
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    for (long line_no = 1; (len = getline(&line, &size, f)) >= 0; line_no++) {
        char where[CONFIG_PATH_MAX + 32], item[CONFIG_PATH_MAX];
        snprintf(where, sizeof where, "%s:%ld", list_path, line_no);
        CHECK_GOTO((size_t)len == strlen(line), GEN_ERR_USAGE, "%s: not a line of text", where);
        char *text = trim(line);
        if (*text == '\0' || *text == '#') continue;
        CHECK_GOTO(*text != '@', GEN_ERR_USAGE, "%s: a list inside a list ('%s') is not supported", where, text);
        int n = snprintf(item, sizeof item, "%.*s%s", text[0] == '/' ? 0 : dir_len, list_path, text);
        CHECK_GOTO(n > 0 && (size_t)n < sizeof item, GEN_ERR_USAGE, "%s: path too long", where);
        CALL_GOTO(expand_pattern(b, where, item));
    }
    CHECK_GOTO(!ferror(f), GEN_ERR_IO, "[prep] inputs: cannot read list '@%s': %s", list_path, strerror(errno));
cleanup:
    free(line);
    fclose(f);
    return status;
}

static int compare_paths(const void *a, const void *b) { return strcmp(a, b); }

int prep_list_inputs(const char *inputs, struct scan_list *list)
{
    memset(list, 0, sizeof *list);
    char copy[CONFIG_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", inputs);
    CHECK(copy[0] != '\0', GEN_ERR_USAGE,
          "[prep] inputs is empty: give the scans (files, globs, folders, @LIST)");
    struct builder b = {.list = list};
    int status = GEN_OK;
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        p = trim(p);
        if (!*p) continue;
        if (*p == '@') CALL_GOTO(expand_list(&b, p + 1));
        else CALL_GOTO(expand_pattern(&b, "[prep] inputs", p));
    }
    size_t width = sizeof list->paths[0];
    if (list->count > 0) qsort(list->paths, (size_t)list->count, width, compare_paths);
    int64_t unique = 0; /* the same scan named twice counts once */
    for (int64_t i = 0; i < list->count; i++)
        if (unique == 0 || strcmp(list->paths[i], list->paths[unique - 1]))
            memmove(list->paths[unique++], list->paths[i], width);
    list->count = unique;
    CHECK_GOTO(list->count > 0, GEN_ERR_USAGE, "[prep] inputs: no scans found in '%s'", inputs);
cleanup:
    if (status != GEN_OK) free(list->paths), memset(list, 0, sizeof *list);
    return status;
}
