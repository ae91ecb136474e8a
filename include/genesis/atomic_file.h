/* Outputs (src/util/atomic_file.c).
 *
 * Files replaced atomically: written under a temporary name in the same folder, synced, renamed
 * over the final name, and the folder synced, so the final name is always either the previous
 * complete file or the new complete one, also after a crash. Every file a command writes is written
 * this way (checkpoints, weights, PNG pictures, NIfTI volumes, forward outputs, prep's cubes file).
 *
 * The output policy of every command that writes a file (README: Outputs), output_check: the
 * folder must exist and be writable; an existing file is replaced only when asked (--force, or
 * [prep] overwrite = true); an input of the command (the same file: st_dev and st_ino, so also
 * through symbolic and hard links) and anything that is not a regular file (a folder, a device, a
 * fifo, a socket; a symbolic link is followed) are never replaced, even when asked.
 *
 * Exclusive outputs, output_lock: PATH.lock, created exclusively, holds the writer's PID and host; a
 * second writer of PATH is refused naming them. A lock whose process is gone (same host, PID not
 * alive) is stale: it is removed with the PATH.partial-* and PATH.tmp-* files its writer left.
 */
#ifndef GENESIS_ATOMIC_FILE_H
#define GENESIS_ATOMIC_FILE_H

#include <stddef.h>

/* The temporary name of path for this process: "<path>.tmp-<pid>". GEN_ERR_USAGE if it does not
 * fit in size bytes. */
int atomic_file_tmp_name(char *tmp, size_t size, const char *path);
/* The same with the temporary mark before path's extension `ext` (a suffix of path, e.g. ".nii.gz":
 * writers that choose the format by the name): "<path without ext>.tmp-<pid><ext>". */
int atomic_file_tmp_name_ext(char *tmp, size_t size, const char *path, const char *ext);
/* A path the OS takes: shorter than PATH_MAX and no name over NAME_MAX. GEN_ERR_IO otherwise, with a
 * message that says which limit (the path shown by its first 60 characters). Checked before a path
 * reaches a library that would crash on it (Open MPI's MPI-IO) or answer only "File name too long". */
int path_check_length(const char *path);
/* fsync of a file, or of a folder (directory = 1). */
int fsync_path(const char *path, int directory);
/* Renames tmp (complete and synced) over path, then syncs path's folder. On a failed rename tmp is
 * removed (path is untouched). */
int atomic_file_commit(const char *tmp, const char *path);

/* The output policy (above) for path, before anything is written. force: an existing regular file
 * may be replaced; force_hint: how the user asks for that ("--force", "[prep] overwrite = true").
 * inputs[0..input_count): the command's input files (NULL entries are skipped). GEN_ERR_USAGE (or
 * GEN_ERR_IO for the folder) naming the reason. */
int output_check(const char *path, int force, const char *force_hint, const char *const *inputs,
                 int input_count);

/* Takes the lock PATH.lock of output path (name written to lock_path, size bytes): see above.
 * GEN_ERR_USAGE naming the other writer's PID and host when it is held. */
int output_lock(const char *path, char *lock_path, size_t size);
/* Removes a lock taken by output_lock (lock_path "" : nothing). */
void output_unlock(const char *lock_path);

#endif
