/* Files replaced atomically (src/io/atomic_file.c): written under a temporary name, synced,
 * renamed over the final name, and the folder synced, so the final name is always either the
 * previous complete file or the new complete one, also after a crash. Checkpoints, weights files
 * and PNG pictures are written this way. */
#ifndef GENESIS_ATOMIC_FILE_H
#define GENESIS_ATOMIC_FILE_H

#include <stddef.h>

/* The temporary name of path for this process: "<path>.tmp-<pid>". GEN_ERR_USAGE if it does not
 * fit in size bytes. */
int atomic_file_tmp_name(char *tmp, size_t size, const char *path);
/* fsync of a file, or of a folder (directory = 1). */
int fsync_path(const char *path, int directory);
/* Renames tmp (complete and synced) over path, then syncs path's folder. On a failed rename tmp is
 * removed (path is untouched). */
int atomic_file_commit(const char *tmp, const char *path);

#endif
