/* Serial HDF5 files (src/io/h5file.c): the helpers that checkpoints (checkpoint.c), weights files
 * (weights.c) and the forward files of src/infer share. Every failure is a genesis error naming the
 * file or the object and, where HDF5 gave one, HDF5's reason (h5error.h). */
#ifndef GENESIS_H5FILE_H
#define GENESIS_H5FILE_H

#include "genesis/h5error.h"
#include "genesis/model.h"

#include <hdf5.h>

#define H5FILE_MAX_RANK 8

/* GEN_OK if path is a regular file (a symbolic link is followed); else GEN_ERR_IO naming what it
 * is (missing, a folder, a device...): checked before HDF5 opens it, whose MPI-IO driver would print
 * pages of its own errors for a folder. */
int h5file_check_regular(const char *path);
/* What a genesis HDF5 file is, from its contents: "a genesis checkpoint" (/state), "a genesis weights
 * file" (attribute format = WEIGHTS_FORMAT), "a genesis cubes file" (/cubes), or "an HDF5 file that
 * genesis did not write". */
const char *h5file_kind(hid_t file);
/* Opens path read-only, without HDF5's file locking (h5par_unlocked_access). Fails with
 * GEN_ERR_IO for a path that is not a regular file (h5file_check_regular), or with GEN_ERR_DATA
 * "<path>: not a readable HDF5 file<hint>[: <HDF5's reason>]" (hint e.g. " (truncated or
 * corrupted?)", or ""). */
int h5file_open_read(const char *path, const char *hint, hid_t *file);
/* Creates path (truncating it) with file-access list fapl (H5P_DEFAULT: a plain POSIX file without
 * HDF5's file locking, h5par_unlocked_access). Fails
 * with GEN_ERR_IO "<what> '<path>': <HDF5's reason>". */
int h5file_create(const char *path, hid_t fapl, const char *what, hid_t *file);
/* 1 if loc has a link `name`, else 0 (also when HDF5 cannot tell). */
int h5file_has(hid_t loc, const char *name);

/* The shape of dataset `name` of loc: *ndim (at most H5FILE_MAX_RANK) and dims. Returns 1 when the
 * dataset is missing or its shape unreadable (*ndim = -1), else 0. */
int h5file_dataset_shape(hid_t loc, const char *name, int *ndim, hsize_t dims[H5FILE_MAX_RANK]);

/* How a tensor is stored.
 *   H5FILE_CHECKSUMMED  native types, chunked (one chunk) with a Fletcher-32 checksum: checkpoints
 *   H5FILE_PORTABLE     little-endian float32/int64, contiguous: weights files for PyTorch users */
enum h5file_layout { H5FILE_CHECKSUMMED, H5FILE_PORTABLE };
/* Writes t's shape and dtype (float32, or int64 for a counter) with `values` (t->data or another
 * array of t->numel floats; a counter is always t->counter) as dataset t->name of loc. Fails with
 * GEN_ERR_IO "<path>: cannot write tensor '<name>' (disk full? <HDF5's reason>)". */
int h5file_write_tensor(hid_t loc, const char *path, const model_tensor *t, const float *values,
                        enum h5file_layout layout);

/* What h5file_read_tensor found. */
enum h5file_tensor_result {
    H5FILE_TENSOR_READ = 0,
    H5FILE_TENSOR_MISSING = 1,    /* no dataset t->name */
    H5FILE_TENSOR_SHAPE = 2,      /* another shape: found.ndim, found.dims */
    H5FILE_TENSOR_UNREADABLE = 3, /* the read failed (a checksum, a truncated file): reason */
};
struct h5file_tensor_found {
    int ndim;
    hsize_t dims[H5FILE_MAX_RANK];
    char reason[256]; /* HDF5's message when unreadable */
};
/* Reads dataset t->name of loc into out (t->numel floats, or one int64 for a counter) after
 * checking that its shape is t's. Records no error: the caller words it. */
enum h5file_tensor_result h5file_read_tensor(hid_t loc, const model_tensor *t, void *out,
                                             struct h5file_tensor_found *found);

/* A scalar attribute of loc: stored as file_type, given in memory as mem_type. */
int h5file_write_attr(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *value);
/* A text attribute (fixed-length, NUL-terminated C string). */
int h5file_write_attr_text(hid_t loc, const char *name, const char *text);
/* Reads a scalar attribute as mem_type. Fails with GEN_ERR_IO "cannot read attribute '<name>'". */
int h5file_read_attr(hid_t loc, const char *name, hid_t mem_type, void *out);
/* Reads a text attribute into *text (malloc'ed, NUL-terminated; caller frees). Fails with
 * GEN_ERR_IO when it is missing or not text. */
int h5file_read_attr_text(hid_t loc, const char *name, char **text);

#endif
