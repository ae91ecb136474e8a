/* Files replaced atomically (include/genesis/atomic_file.h). */
#include "genesis/atomic_file.h"

#include "genesis/error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int atomic_file_tmp_name(char *tmp, size_t size, const char *path)
{
    int n = snprintf(tmp, size, "%s.tmp-%ld", path, (long)getpid());
    CHECK(n >= 0 && (size_t)n < size, GEN_ERR_USAGE, "output path too long: %s", path);
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
