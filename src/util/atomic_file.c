/* Outputs: atomic replacement, the output policy, exclusive outputs (include/genesis/atomic_file.h). */
#include "genesis/atomic_file.h"

#include "genesis/error.h"
#include "genesis/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int atomic_file_tmp_name(char *tmp, size_t size, const char *path)
{
    int n = snprintf(tmp, size, "%s.tmp-%ld", path, (long)getpid());
    CHECK(n >= 0 && (size_t)n < size, GEN_ERR_USAGE, "output path too long (%zu characters): %s",
          strlen(path), path);
    return GEN_OK;
}

int atomic_file_tmp_name_ext(char *tmp, size_t size, const char *path, const char *ext)
{
    size_t len = strlen(path), ext_len = strlen(ext);
    CHECK(ext_len <= len && !strcmp(path + len - ext_len, ext), GEN_ERR_INTERNAL, "%s does not end in %s",
          path, ext);
    int n = snprintf(tmp, size, "%.*s.tmp-%ld%s", (int)(len - ext_len), path, (long)getpid(), ext);
    CHECK(n >= 0 && (size_t)n < size, GEN_ERR_USAGE, "output path too long (%zu characters): %s", len, path);
    return GEN_OK;
}

int fsync_path(const char *path, int directory)
{
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    CHECK(fd >= 0, GEN_ERR_IO, "cannot open %s to sync it: %s", path, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    CHECK(rc == 0, GEN_ERR_IO, "cannot sync %s: %s", path, strerror(saved));
    return GEN_OK;
}

int atomic_file_commit(const char *tmp, const char *path)
{
    int status = GEN_OK;
    char *folder = strdup(path); /* dirname may modify its argument */
    if (rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        CHECK_GOTO(0, GEN_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(saved));
    }
    CHECK_ALLOC_GOTO(folder, strlen(path) + 1);
    CALL_GOTO(fsync_path(dirname(folder), 1));
cleanup:
    free(folder);
    return status;
}

/* ---- the output policy ---------------------------------------------------------------------- */

/* The folder of path exists, is a folder and is writable. */
static int check_folder(const char *path)
{
    int status = GEN_OK;
    char *copy = strdup(path);
    CHECK_ALLOC_GOTO(copy, strlen(path) + 1);
    const char *dir = dirname(copy);
    struct stat st;
    CHECK_GOTO(stat(dir, &st) == 0, GEN_ERR_IO, "cannot write %s: folder %s: %s", path, dir, strerror(errno));
    CHECK_GOTO(S_ISDIR(st.st_mode), GEN_ERR_IO, "cannot write %s: %s is not a folder", path, dir);
    CHECK_GOTO(access(dir, W_OK) == 0, GEN_ERR_IO, "cannot write %s: folder %s is not writable", path, dir);
cleanup:
    free(copy);
    return status;
}

static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISFIFO(mode)) return "a fifo";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

int output_check(const char *path, int force, const char *force_hint, const char *const *inputs,
                 int input_count)
{
    CHECK(path && path[0], GEN_ERR_USAGE, "the output name is empty");
    CALL(check_folder(path));
    struct stat out;
    if (stat(path, &out) != 0) {
        /* nothing there (a dangling symbolic link is replaced by the rename, its target untouched) */
        CHECK(errno == ENOENT, GEN_ERR_IO, "cannot check output %s: %s", path, strerror(errno));
        return GEN_OK;
    }
    for (int i = 0; i < input_count; i++) {
        struct stat in;
        if (!inputs[i] || stat(inputs[i], &in) != 0) continue;
        CHECK(in.st_dev != out.st_dev || in.st_ino != out.st_ino, GEN_ERR_USAGE,
              "output %s is the input %s of this command (the same file): never replaced, not even with %s",
              path, inputs[i], force_hint);
    }
    CHECK(S_ISREG(out.st_mode), GEN_ERR_USAGE,
          "output %s exists and is %s: never replaced, not even with %s (give another name)", path,
          file_kind(out.st_mode), force_hint);
    CHECK(force, GEN_ERR_USAGE, "output %s exists (replace it with %s)", path, force_hint);
    return GEN_OK;
}

/* ---- exclusive outputs ---------------------------------------------------------------------- */

/* Removes the PATH.partial-* and PATH.tmp-* files in path's folder (a dead writer's leftovers). */
static void remove_leftovers(const char *path)
{
    char *dir_copy = strdup(path), *base_copy = strdup(path);
    if (!dir_copy || !base_copy) goto done;
    const char *dir = dirname(dir_copy), *base = basename(base_copy);
    size_t base_len = strlen(base);
    DIR *d = opendir(dir);
    if (!d) goto done;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *rest = e->d_name + base_len;
        if (strncmp(e->d_name, base, base_len) || (strncmp(rest, ".partial-", 9) && strncmp(rest, ".tmp-", 5)))
            continue;
        char victim[8192];
        int n = snprintf(victim, sizeof victim, "%s/%s", dir, e->d_name);
        if (n > 0 && (size_t)n < sizeof victim && unlink(victim) == 0)
            log_info("removed %s (left by a writer that is gone)", victim);
    }
    closedir(d);
done:
    free(dir_copy), free(base_copy);
}

/* Whether process pid of host `host` is certainly gone: on this host and kill(pid, 0) says so. */
static int writer_gone(long pid, const char *host)
{
    char here[256] = "";
    gethostname(here, sizeof here - 1);
    if (strcmp(here, host)) return 0;
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* output_lock's work; lock_path is filled whatever the outcome. */
static int take_lock(const char *path, char *lock_path, size_t size)
{
    int n = snprintf(lock_path, size, "%s.lock", path);
    CHECK(n >= 0 && (size_t)n < size, GEN_ERR_USAGE, "output path too long (%zu characters): %s",
          strlen(path), path);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            char text[320];
            int len = snprintf(text, sizeof text, "%ld %s\n", (long)getpid(), host);
            int ok = write(fd, text, (size_t)len) == len;
            close(fd);
            if (!ok) unlink(lock_path);
            CHECK(ok, GEN_ERR_IO, "cannot write the lock %s: %s", lock_path, strerror(errno));
            remove_leftovers(path); /* nobody else writes path while we hold its lock */
            return GEN_OK;
        }
        CHECK(errno == EEXIST, GEN_ERR_IO, "cannot create the lock %s: %s", lock_path, strerror(errno));
        long pid = 0;
        char other[256] = "";
        FILE *f = fopen(lock_path, "r");
        int fields = f ? fscanf(f, "%ld %255s", &pid, other) : 0;
        if (f) fclose(f);
        if (fields == 2 && writer_gone(pid, other)) {
            log_warn("%s: the writer that held it (PID %ld on %s) is gone: removing the stale lock", lock_path,
                     pid, other);
            unlink(lock_path);
            continue;
        }
        if (fields == 2)
            FAIL(GEN_ERR_USAGE, "%s is being written by another process (PID %ld on %s, lock %s): wait for it to "
                                "end, or remove the lock if that process is gone", path, pid, other, lock_path);
        FAIL(GEN_ERR_USAGE, "%s is locked by %s (unreadable: being created?): remove the lock if no other "
                            "process writes %s", path, lock_path, path);
    }
    FAIL(GEN_ERR_USAGE, "%s: cannot take the lock %s", path, lock_path);
}

int output_lock(const char *path, char *lock_path, size_t size)
{
    int status = take_lock(path, lock_path, size);
    if (status != GEN_OK) lock_path[0] = '\0'; /* not ours: output_unlock leaves it */
    return status;
}

void output_unlock(const char *lock_path)
{
    if (lock_path && lock_path[0]) unlink(lock_path);
}

int path_check_length(const char *path)
{
    size_t len = strlen(path);
    CHECK(len < PATH_MAX, GEN_ERR_IO, "%.60s...: a path of %zu characters, longer than this system allows (%d)",
          path, len, PATH_MAX - 1);
    for (const char *name = path; *name; name += *name == '/') {
        size_t n = strcspn(name, "/");
        CHECK(n <= NAME_MAX, GEN_ERR_IO,
              "%.60s...: a name of %zu characters in path %.60s..., longer than this system allows (%d)", name,
              n, path, NAME_MAX);
        name += n;
    }
    return GEN_OK;
}
