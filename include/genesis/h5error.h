/* HDF5 errors as genesis errors (mpi/h5par.c; nothing here needs MPI, so the serial files of
 * src/io include this header and not h5par.h). HDF5 clears its error stack at the start of every
 * API call, so the reason must be taken right after the failing call, before any close. */
#ifndef GENESIS_H5ERROR_H
#define GENESIS_H5ERROR_H

#include <hdf5.h>

#include <stddef.h>

/* "MAJOR.MINOR.RELEASE (parallel|serial)" of the HDF5 library in use (genesis --version). */
void h5par_library_version(char *out, size_t size);
/* Silences HDF5's automatic error printing (once per process). */
void h5par_quiet(void);
/* The innermost message of HDF5's error stack ("" when there is none), then clears the stack.
 * The text lives in a per-thread buffer, valid until the next call. */
const char *h5par_reason(void);
/* Records an HDF5 failure: "<what> '<name>': <innermost HDF5 message>". Returns GEN_ERR_IO. */
int h5par_error(const char *what, const char *name, const char *file, int line);
#define H5_CHECK(ok, what, name)                                                               \
    do {                                                                                       \
        if (!(ok)) return h5par_error((what), (name), __FILE__, __LINE__);                     \
    } while (0)
/* A file-access property list (caller closes it) without HDF5's file locking: genesis's files are
 * written whole and renamed into place (atomic_file.h; prep's cubes file likewise), so HDF5's
 * flock()-based locks guard nothing for them, and they fail where flock() does (Lustre mounted
 * without -o flock, NFS: "unable to lock file"). HDF5_USE_FILE_LOCKING in the environment still
 * overrides this (HDF5 >= 1.10.7; older libraries lock unless it is FALSE). -1 on failure. */
hid_t h5par_unlocked_access(void);
/* Closes every handle of ids[n] that is open (a file, group, dataset, dataspace, datatype,
 * attribute or property list; -1 and H5P_DEFAULT are skipped), in order. For cleanup: a failed
 * close is not reported (the writers check the close of their file themselves). */
void h5par_close_all(const hid_t *ids, int n);
#define H5_CLOSE_ALL(...)                                                                      \
    h5par_close_all((const hid_t[]){__VA_ARGS__}, (int)(sizeof((const hid_t[]){__VA_ARGS__}) / sizeof(hid_t)))

/* As H5_CHECK, in a function with a `status` and a `cleanup:` label (error.h's goto form). */
#define H5_CHECK_GOTO(ok, what, name)                                                          \
    do {                                                                                       \
        if (!(ok)) {                                                                           \
            status = h5par_error((what), (name), __FILE__, __LINE__);                          \
            goto cleanup;                                                                      \
        }                                                                                      \
    } while (0)

#endif
