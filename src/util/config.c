/* The configuration's INI reader and printer over the schema (include/genesis/config.h; the
 * schema itself is src/util/config_schema.c). */
#include "genesis/config.h"

#include "genesis/error.h"
#include "config_schema.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The longest line read (a string key's longest value, CONFIG_PATH_MAX - 1 characters, quoted, with its
 * key and an origin comment; lines longer than inih's INI_MAX_LINE buffer are parsed by long_entry),
 * and the largest configuration file read (a guard against devices and other endless files). */
enum { CONFIG_LINE_MAX = CONFIG_PATH_MAX + 256, CONFIG_FILE_MAX = 1 << 20 };

static const char *const type_names[] = {"integer", "integer", "number", "boolean", "string", "choice"};

/* ---- lookup and suggestions ------------------------------------------------------------- */

static int find_key(const char *section, const char *key)
{
    for (int i = 0; i < config_schema_rows; i++)
        if (!strcmp(config_schema[i].section, section) && !strcmp(config_schema[i].key, key))
            return i;
    return -1;
}

static int section_exists(const char *section)
{
    for (int i = 0; i < config_schema_rows; i++)
        if (!strcmp(config_schema[i].section, section)) return 1;
    return 0;
}

/* Edit distance of two short strings (insertions, deletions, substitutions and transpositions of
 * neighbours count 1; case ignored); longer strings count as far apart. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 1000;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            char ai = (char)tolower((unsigned char)a[i - 1]), bj = (char)tolower((unsigned char)b[j - 1]);
            int best = d[i - 1][j - 1] + (ai != bj);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

static int near_miss(const char *typed, const char *candidate)
{
    int d = edit_distance(typed, candidate);
    int allowed = strlen(candidate) >= 6 ? 2 : 1;
    return d <= allowed;
}

/* Writes " (did you mean ...?)" for an unknown key, or "" when nothing is close. */
static void suggest_key(char *out, size_t size, const char *section, const char *key)
{
    out[0] = '\0';
    for (int i = 0; i < config_schema_rows; i++)
        if (!strcmp(config_schema[i].section, section) && near_miss(key, config_schema[i].key)) {
            snprintf(out, size, " (did you mean '%s'?)", config_schema[i].key);
            return;
        }
    for (int i = 0; i < config_schema_rows; i++)
        if (!strcmp(config_schema[i].key, key)) {
            snprintf(out, size, " (did you mean '%s' in section [%s]?)", key,
                     config_schema[i].section);
            return;
        }
}

static void suggest_section(char *out, size_t size, const char *section)
{
    out[0] = '\0';
    for (int i = 0; i < config_schema_rows; i++)
        if (near_miss(section, config_schema[i].section)) {
            snprintf(out, size, " (did you mean [%s]?)", config_schema[i].section);
            return;
        }
}

/* ---- values ----------------------------------------------------------------------------- */

static void describe_range(char *out, size_t size, const struct config_key *k)
{
    switch (k->type) {
    case TYPE_INT:
    case TYPE_INT32: snprintf(out, size, "[%.0f, %.0f]", k->min, k->max); break;
    case TYPE_FLOAT: snprintf(out, size, "[%g, %g]", k->min, k->max); break;
    case TYPE_BOOL: snprintf(out, size, "true|false"); break;
    case TYPE_CHOICE: snprintf(out, size, "%s", k->choices); break;
    case TYPE_STRING: snprintf(out, size, "text"); break;
    }
}

static int choice_index(const char *choices, const char *text)
{
    size_t n = strlen(text);
    int index = 0;
    for (const char *p = choices;; index++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, text, n)) return index;
        if (!bar) return -1;
        p = bar + 1;
    }
}

static void choice_text(char *out, size_t size, const char *choices, int index)
{
    const char *p = choices;
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) p = "?";
    size_t len = strcspn(p, "|");
    snprintf(out, size, "%.*s", (int)len, p);
}

/* Bytes of a string field: the distance to the next field of the struct. */
static size_t string_capacity(const struct config_key *k)
{
    size_t next = sizeof(genesis_config);
    for (int i = 0; i < config_schema_rows; i++)
        if (config_schema[i].offset > k->offset && config_schema[i].offset < next)
            next = config_schema[i].offset;
    if (next == sizeof(genesis_config)) next = offsetof(genesis_config, path);
    return next - k->offset;
}

/* Parses `text` into the field of row `k`. On failure writes the reason into `why`. */
static int parse_value(genesis_config *cfg, const struct config_key *k, const char *text,
                       char *why, size_t why_size)
{
    char *field = (char *)cfg + k->offset;
    char range[256];
    describe_range(range, sizeof range, k);
    switch (k->type) {
    case TYPE_INT:
    case TYPE_INT32: {
        char *end;
        errno = 0;
        long v = strtol(text, &end, 10);
        if (end == text || *end != '\0' || errno == ERANGE) {
            snprintf(why, why_size, "expected an integer, got '%s'", text);
            return -1;
        }
        if ((double)v < k->min || (double)v > k->max) {
            snprintf(why, why_size, "%ld is out of range %s", v, range);
            return -1;
        }
        if (k->type == TYPE_INT) *(long *)field = v;
        else *(int *)field = (int)v; /* the range keeps it within int */
        return 0;
    }
    case TYPE_FLOAT: {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v)) {
            snprintf(why, why_size, "expected a number, got '%s'", text);
            return -1;
        }
        if (v < k->min || v > k->max) {
            snprintf(why, why_size, "%g is out of range %s", v, range);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    case TYPE_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (!strcmp(text, yes[i])) { *(int *)field = 1; return 0; }
            if (!strcmp(text, no[i])) { *(int *)field = 0; return 0; }
        }
        snprintf(why, why_size, "expected true or false, got '%s'", text);
        return -1;
    }
    case TYPE_CHOICE: {
        int index = choice_index(k->choices, text);
        if (index < 0) {
            snprintf(why, why_size, "expected one of %s, got '%s'", k->choices, text);
            return -1;
        }
        *(int *)field = index;
        return 0;
    }
    case TYPE_STRING: {
        size_t len = strlen(text);
        if (len >= 2 && text[0] == '"' && text[len - 1] == '"') { text++; len -= 2; }
        size_t capacity = string_capacity(k);
        if (len >= capacity) {
            snprintf(why, why_size, "text longer than %zu characters", capacity - 1);
            return -1;
        }
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f || text[i] == ';') {
                snprintf(why, why_size, "%s at character %zu: a value is one line of text without ';' (it "
                         "starts a comment in the stored configuration)",
                         text[i] == ';' ? "';'" : text[i] == '\n' ? "a newline" : "a control character", i + 1);
                return -1;
            }
        memcpy(field, text, len);
        field[len] = '\0';
        return 0;
    }
    }
    snprintf(why, why_size, "internal error: unknown type");
    return -1;
}

static void format_value(char *out, size_t size, const genesis_config *cfg, const struct config_key *k)
{
    const char *field = (const char *)cfg + k->offset;
    switch (k->type) {
    case TYPE_INT: snprintf(out, size, "%ld", *(const long *)field); break;
    case TYPE_INT32: snprintf(out, size, "%d", *(const int *)field); break;
    case TYPE_FLOAT: snprintf(out, size, "%.17g", *(const double *)field); break;
    case TYPE_BOOL: snprintf(out, size, "%s", *(const int *)field ? "true" : "false"); break;
    case TYPE_CHOICE: choice_text(out, size, k->choices, *(const int *)field); break;
    case TYPE_STRING: snprintf(out, size, "%s", field); break;
    }
}

int config_defaults(genesis_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < config_schema_rows; i++) {
        char why[512];
        if (parse_value(cfg, &config_schema[i], config_schema[i].default_text, why, sizeof why))
            FAIL(GEN_ERR_INTERNAL, "default of [%s] %s: %s", config_schema[i].section,
                 config_schema[i].key, why);
    }
    return GEN_OK;
}

/* ---- reading a file --------------------------------------------------------------------- */

struct ini_reading {
    genesis_config *cfg;
    FILE *file;
    const char *path;
    int line;           /* line number of the line inih is handling */
    int too_long_line;  /* first line longer than CONFIG_LINE_MAX, 0 if none */
    char section[128];  /* of the lines being read, as inih names it (long_entry) */
    char long_line[CONFIG_LINE_MAX + 2];
    int error_line;     /* line of the first error, 0 if none */
    int error_fatal;    /* the error ended the reading (NUL byte, too large) */
    int stopped;        /* read_line returns no more lines */
    long bytes;         /* read so far */
    int first_line[CONFIG_KEYS_MAX]; /* line that first set each key in this file */
    char message[1024];
};

static int record(struct ini_reading *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Unknown sections are reported at their header line, even when they hold no keys. */
static void check_section_header(struct ini_reading *r, const char *line)
{
    while (*line == ' ' || *line == '\t') line++;
    if (*line != '[') return;
    const char *close = strchr(line, ']');
    if (!close) return; /* inih reports the syntax error */
    char section[128], hint[256];
    size_t len = (size_t)(close - line - 1);
    snprintf(r->section, sizeof r->section, "%.*s", (int)len, line + 1);
    if (len >= sizeof section) len = sizeof section - 1;
    memcpy(section, line + 1, len);
    section[len] = '\0';
    while (len > 0 && (section[len - 1] == ' ' || section[len - 1] == '\t')) section[--len] = '\0';
    char *name = section;
    while (*name == ' ' || *name == '\t') name++;
    if (!section_exists(name)) {
        suggest_section(hint, sizeof hint, name);
        record(r, "unknown section [%s]%s", name, hint);
    }
}

static int handle_entry(void *user, const char *section, const char *key, const char *value);

/* A line too long for inih's buffer (e.g. a long path), parsed here as inih parses a line:
 * "key = value" or "key: value", an inline comment after a blank and ';', or a whole-line comment. */
static void long_entry(struct ini_reading *r, char *line)
{
    char *start = line + strspn(line, " \t"), *end = start + strlen(start);
    while (end > start && isspace((unsigned char)end[-1])) *--end = '\0';
    if (*start == ';' || *start == '#' || *start == '\0') return;
    char *separator = start + strcspn(start, "=:");
    if (*start == '[' || *separator == '\0') {
        record(r, "syntax error (expected '[section]' or 'key = value')");
        return;
    }
    char *key_end = separator, *value = separator + 1 + strspn(separator + 1, " \t");
    *separator = '\0';
    while (key_end > start && isspace((unsigned char)key_end[-1])) *--key_end = '\0';
    for (char *p = value + 1; *value && *p; p++)
        if (*p == ';' && isspace((unsigned char)p[-1])) {
            *p = '\0';
            break;
        }
    end = value + strlen(value);
    while (end > value && isspace((unsigned char)end[-1])) *--end = '\0';
    handle_entry(r, r->section, start, value);
}

/* inih's reader: one line per call, counted, so the handler knows the line it is handling. A line
 * longer than inih's buffer is handled by long_entry (inih gets an empty line). A NUL byte (not a
 * text file, e.g. /dev/zero) or more than CONFIG_FILE_MAX bytes (an endless device) is an error that
 * ends the reading. */
static char *read_line(char *buffer, int size, void *stream)
{
    struct ini_reading *r = stream;
    if (r->stopped) return NULL;
    char *line = r->long_line;
    int len = 0, c = EOF, skipping = 0;
    while ((c = getc(r->file)) != EOF) {
        if (c == '\0' || ++r->bytes > CONFIG_FILE_MAX) {
            r->line += len > 0 || skipping || c == '\0';
            if (c == '\0') record(r, "a NUL byte: not a text file");
            else record(r, "more than %d bytes: not a configuration file", CONFIG_FILE_MAX);
            r->error_fatal = 1, r->stopped = 1;
            return NULL;
        }
        if (skipping) { /* the rest of an over-long line */
            if (c == '\n') break;
            continue;
        }
        line[len++] = (char)c;
        if (c == '\n') break;
        if (len == CONFIG_LINE_MAX + 1) {
            if (!r->too_long_line) r->too_long_line = r->line + 1;
            skipping = 1;
        }
    }
    if (len == 0) return NULL;
    line[len] = '\0';
    r->line++;
    check_section_header(r, line);
    if (len < size - 1 && !skipping) return memcpy(buffer, line, (size_t)len + 1);
    if (!skipping) long_entry(r, line);
    return strcpy(buffer, "\n");
}

static int record(struct ini_reading *r, const char *fmt, ...)
{
    if (!r->error_line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->message, sizeof r->message, fmt, ap);
        va_end(ap);
        r->error_line = r->line;
    }
    return 0; /* tells inih this line failed */
}

static int handle_entry(void *user, const char *section, const char *key, const char *value)
{
    struct ini_reading *r = user;
    char hint[256];
    if (r->error_line) return 1; /* report only the first error */
    if (section[0] == '\0')
        return record(r, "key '%s' appears before any [section]", key);
    int row = find_key(section, key);
    if (row < 0) {
        suggest_key(hint, sizeof hint, section, key);
        return record(r, "unknown key '%s' in section [%s]%s", key, section, hint);
    }
    if (r->first_line[row])
        return record(r, "duplicate key '%s' in section [%s] (first set on line %d)", key, section,
                      r->first_line[row]);
    r->first_line[row] = r->line;
    char why[512];
    if (parse_value(r->cfg, &config_schema[row], value, why, sizeof why))
        return record(r, "[%s] %s: %s", section, key, why);
    r->cfg->origin[row] = r->line;
    return 1;
}

static int load_stream(genesis_config *cfg, FILE *f, const char *path);

int config_load_file(genesis_config *cfg, const char *path)
{
    CHECK(strlen(path) < CONFIG_PATH_MAX, GEN_ERR_USAGE, "config file path too long");
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, GEN_ERR_USAGE, "cannot open config file '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        FAIL(GEN_ERR_USAGE, "config file '%s' is a directory", path);
    }
    return load_stream(cfg, f, path);
}

int config_load_text(genesis_config *cfg, const char *text, const char *name)
{
    CHECK(strlen(name) < CONFIG_PATH_MAX, GEN_ERR_USAGE, "config name too long");
    if (!text[0]) return GEN_OK; /* nothing to read (and fmemopen refuses size 0) */
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    CHECK(f != NULL, GEN_ERR_NOMEM, "cannot read config text of %s: %s", name, strerror(errno));
    return load_stream(cfg, f, name);
}

/* Reads the INI stream f (closed here); path names it in messages. */
static int load_stream(genesis_config *cfg, FILE *f, const char *path)
{
    struct ini_reading r = {.cfg = cfg, .file = f, .path = path};
    int rc = ini_parse_stream(read_line, &r, handle_entry, &r);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    CHECK(!read_errno, GEN_ERR_USAGE, "cannot read config file '%s': %s", path, strerror(read_errno));
    if (r.error_fatal) FAIL(GEN_ERR_USAGE, "%s:%d: %s", path, r.error_line, r.message);
    /* Report the earliest of: an over-long line, a syntax error (inih), a schema error (ours). */
    int syntax_line = rc > 0 && rc != r.error_line ? rc : 0;
    int first = 0;
    if (r.too_long_line) first = r.too_long_line;
    if (syntax_line && (!first || syntax_line < first)) first = syntax_line;
    if (r.error_line && (!first || r.error_line < first)) first = r.error_line;
    if (first && first == r.too_long_line)
        FAIL(GEN_ERR_USAGE, "%s:%d: line longer than %d characters", path, first, CONFIG_LINE_MAX);
    if (first && first == syntax_line)
        FAIL(GEN_ERR_USAGE, "%s:%d: syntax error (expected '[section]' or 'key = value')", path, first);
    if (first) FAIL(GEN_ERR_USAGE, "%s:%d: %s", path, first, r.message);
    CHECK(rc == 0, GEN_ERR_USAGE, "cannot read config file '%s'", path);
    snprintf(cfg->path, sizeof cfg->path, "%s", path);
    return GEN_OK;
}

int config_set(genesis_config *cfg, const char *assignment)
{
    const char *dot = strchr(assignment, '.'), *eq = strchr(assignment, '=');
    CHECK(dot && eq && dot < eq, GEN_ERR_USAGE,
          "--set '%s': expected section.key=value (e.g. --set train.batch=6)", assignment);
    char section[64], key[64], hint[256];
    CHECK(dot - assignment < 64 && eq - dot - 1 < 64, GEN_ERR_USAGE, "--set '%s': name too long",
          assignment);
    snprintf(section, sizeof section, "%.*s", (int)(dot - assignment), assignment);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    if (!section_exists(section)) {
        suggest_section(hint, sizeof hint, section);
        FAIL(GEN_ERR_USAGE, "--set %s: unknown section [%s]%s", assignment, section, hint);
    }
    int row = find_key(section, key);
    if (row < 0) {
        suggest_key(hint, sizeof hint, section, key);
        FAIL(GEN_ERR_USAGE, "--set %s: unknown key '%s' in section [%s]%s", assignment, key,
             section, hint);
    }
    /* the value without surrounding blanks, as a file's reader gives it */
    const char *value = eq + 1;
    while (*value == ' ' || *value == '\t') value++;
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t')) len--;
    char *trimmed = strndup(value, len), why[512];
    CHECK_ALLOC(trimmed, len + 1);
    int bad = parse_value(cfg, &config_schema[row], trimmed, why, sizeof why);
    free(trimmed);
    if (bad) FAIL(GEN_ERR_USAGE, "--set %s: [%s] %s: %s", assignment, section, key, why);
    cfg->origin[row] = -1;
    return GEN_OK;
}

/* ---- printing --------------------------------------------------------------------------- */

void config_print(const genesis_config *cfg, FILE *out)
{
    const char *section = "";
    for (int i = 0; i < config_schema_rows; i++) {
        const struct config_key *k = &config_schema[i];
        if (strcmp(section, k->section)) {
            fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
            section = k->section;
        }
        char value[CONFIG_PATH_MAX + 64], line[CONFIG_PATH_MAX + 128];
        format_value(value, sizeof value, cfg, k);
        /* text with blanks at an end, or in quotes, is quoted: the reader strips one pair */
        size_t len = strlen(value);
        int quote = k->type == TYPE_STRING && len > 0 &&
                    (isspace((unsigned char)value[0]) || isspace((unsigned char)value[len - 1]) ||
                     (len >= 2 && value[0] == '"' && value[len - 1] == '"'));
        int n = snprintf(line, sizeof line, quote ? "%s = \"%s\"" : "%s = %s", k->key, value);
        /* where the value came from, as a comment when the line has room for it (CONFIG_LINE_MAX) */
        int origin = cfg->origin[i], room = CONFIG_LINE_MAX - n - (int)strlen("    ; ...:") - 11;
        int path_len = (int)strlen(cfg->path), path_printable = 1;
        for (int c = 0; c < path_len; c++) path_printable &= (unsigned char)cfg->path[c] >= 0x20;
        if (origin > 0 && room >= 8 && path_printable)
            fprintf(out, "%s    ; %s%s:%d\n", line, path_len > room ? "..." : "",
                    cfg->path + (path_len > room ? path_len - room : 0), origin);
        else if (origin < 0 && room >= 0) fprintf(out, "%s    ; --set\n", line);
        else fprintf(out, "%s\n", line);
    }
}

void config_print_defaults(FILE *out)
{
    fprintf(out, "%-9s %-20s %-8s %-10s %-28s %s\n", "section", "key", "type", "default", "range",
            "meaning");
    for (int i = 0; i < config_schema_rows; i++) {
        const struct config_key *k = &config_schema[i];
        char range[256];
        describe_range(range, sizeof range, k);
        fprintf(out, "%-9s %-20s %-8s %-10s %-28s %s\n", k->section, k->key, type_names[k->type],
                k->default_text[0] ? k->default_text : "\"\"", range, k->help);
    }
}

unsigned long config_hash(const genesis_config *cfg)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a, 64 bit, over "section.key=value\n" */
    for (int i = 0; i < config_schema_rows; i++) {
        char text[CONFIG_PATH_MAX + 256], value[CONFIG_PATH_MAX + 64];
        format_value(value, sizeof value, cfg, &config_schema[i]);
        int n = snprintf(text, sizeof text, "%s.%s=%s\n", config_schema[i].section, config_schema[i].key,
                         value);
        for (int j = 0; j < n; j++) h = (h ^ (unsigned char)text[j]) * 1099511628211ull;
    }
    return (unsigned long)h;
}
