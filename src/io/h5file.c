/* Serial HDF5 files (include/genesis/h5file.h). */
#include "io/h5file.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "genesis/weights.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int h5file_check_regular(const char *path)
{
    struct stat st;
    CALL(path_check_length(path));
    CHECK(stat(path, &st) == 0, GEN_ERR_IO, "%s: %s", path, strerror(errno));
    CHECK(!S_ISDIR(st.st_mode), GEN_ERR_IO, "%s is a folder, not a file", path);
    CHECK(S_ISREG(st.st_mode), GEN_ERR_IO, "%s is not a regular file (a device, fifo or socket)", path);
    return GEN_OK;
}

const char *h5file_kind(hid_t file)
{
    if (h5file_has(file, "state")) return "a genesis checkpoint";
    if (h5file_has(file, "cubes")) return "a genesis cubes file";
    char *format = NULL;
    int weights = H5Aexists(file, "format") > 0 && h5file_read_attr_text(file, "format", &format) == GEN_OK &&
                  !strcmp(format, WEIGHTS_FORMAT);
    free(format);
    gen_error_clear();
    return weights ? "a genesis weights file" : "an HDF5 file that genesis did not write";
}

int h5file_open_read(const char *path, const char *hint, hid_t *file)
{
    CALL(h5file_check_regular(path));
    h5par_quiet();
    hid_t fapl = h5par_unlocked_access();
    *file = fapl >= 0 ? H5Fopen(path, H5F_ACC_RDONLY, fapl) : -1;
    const char *reason = h5par_reason();
    if (fapl >= 0) H5Pclose(fapl);
    CHECK(*file >= 0, GEN_ERR_DATA, "%s: not a readable HDF5 file%s%s%s", path, hint,
          reason[0] ? ": " : "", reason);
    return GEN_OK;
}

int h5file_create(const char *path, hid_t fapl, const char *what, hid_t *file)
{
    int status = GEN_OK;
    h5par_quiet();
    hid_t unlocked = fapl == H5P_DEFAULT ? h5par_unlocked_access() : -1;
    H5_CHECK_GOTO(fapl != H5P_DEFAULT || unlocked >= 0, what, path);
    *file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl == H5P_DEFAULT ? unlocked : fapl);
    H5_CHECK_GOTO(*file >= 0, what, path);
cleanup:
    if (unlocked >= 0) H5Pclose(unlocked); /* after reading the error stack */
    return status;
}

int h5file_has(hid_t loc, const char *name) { return H5Lexists(loc, name, H5P_DEFAULT) > 0; }

int h5file_dataset_shape(hid_t loc, const char *name, int *ndim, hsize_t dims[H5FILE_MAX_RANK])
{
    *ndim = -1;
    memset(dims, 0, sizeof(hsize_t) * H5FILE_MAX_RANK);
    if (!h5file_has(loc, name)) return 1;
    hid_t dset = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t space = dset >= 0 ? H5Dget_space(dset) : -1;
    int n = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (n >= 0 && n <= H5FILE_MAX_RANK && H5Sget_simple_extent_dims(space, dims, NULL) >= 0) *ndim = n;
    H5_CLOSE_ALL(space, dset);
    return *ndim < 0;
}

int h5file_write_tensor(hid_t loc, const char *path, const model_tensor *t, const float *values,
                        enum h5file_layout layout)
{
    int status = GEN_OK;
    int checksummed = layout == H5FILE_CHECKSUMMED, counter = t->kind == MODEL_COUNTER;
    hsize_t dims[5];
    for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->shape[d];
    hid_t mem_type = counter ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
    hid_t file_type = checksummed ? mem_type : counter ? H5T_STD_I64LE : H5T_IEEE_F32LE;
    hid_t space = t->ndim ? H5Screate_simple(t->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = checksummed ? H5Pcreate(H5P_DATASET_CREATE) : H5P_DEFAULT, dset = -1;
    int ok = space >= 0 && dcpl >= 0;
    if (ok && checksummed && t->ndim)
        ok = H5Pset_chunk(dcpl, t->ndim, dims) >= 0 && H5Pset_fletcher32(dcpl) >= 0;
    if (ok) dset = H5Dcreate2(loc, t->name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    const void *data = counter ? (const void *)t->counter : (const void *)values;
    ok = ok && dset >= 0 && H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    CHECK_GOTO(ok, GEN_ERR_IO, "%s: cannot write tensor '%s' (disk full? %s)", path, t->name, h5par_reason());
cleanup:
    H5_CLOSE_ALL(dset, dcpl, space);
    return status;
}

enum h5file_tensor_result h5file_read_tensor(hid_t loc, const model_tensor *t, void *out,
                                             struct h5file_tensor_found *found)
{
    found->reason[0] = '\0';
    if (h5file_dataset_shape(loc, t->name, &found->ndim, found->dims)) return H5FILE_TENSOR_MISSING;
    int same = found->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = found->dims[d] == (hsize_t)t->shape[d];
    if (!same) return H5FILE_TENSOR_SHAPE;
    hid_t type = t->kind == MODEL_COUNTER ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
    hid_t dset = H5Dopen2(loc, t->name, H5P_DEFAULT);
    int ok = dset >= 0 && H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0;
    if (!ok) snprintf(found->reason, sizeof found->reason, "%s", h5par_reason());
    if (dset >= 0) H5Dclose(dset);
    return ok ? H5FILE_TENSOR_READ : H5FILE_TENSOR_UNREADABLE;
}

int h5file_write_attr(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *value)
{
    int status = GEN_OK;
    hid_t space = H5Screate(H5S_SCALAR), attr = -1;
    if (space >= 0) attr = H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK_GOTO(attr >= 0 && H5Awrite(attr, mem_type, value) >= 0, "cannot write attribute", name);
cleanup:
    H5_CLOSE_ALL(attr, space);
    return status;
}

int h5file_write_attr_text(hid_t loc, const char *name, const char *text)
{
    int status = GEN_OK;
    hid_t type = H5Tcopy(H5T_C_S1);
    H5_CHECK_GOTO(type >= 0 && H5Tset_size(type, strlen(text) + 1) >= 0, "cannot make the text type of", name);
    CALL_GOTO(h5file_write_attr(loc, name, type, type, text));
cleanup:
    if (type >= 0) H5Tclose(type);
    return status;
}

/* 1 if attribute attr holds one element (a scalar, or an array of one): what a reader of one value
 * may H5Aread into its one variable. An array attribute in a damaged file overflowed it (fuzzing). */
static int single_element(hid_t attr)
{
    hid_t space = H5Aget_space(attr);
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0) H5Sclose(space);
    return n == 1;
}

int h5file_read_attr(hid_t loc, const char *name, hid_t mem_type, void *out)
{
    int status = GEN_OK;
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    H5_CHECK_GOTO(attr >= 0, "cannot read attribute", name);
    CHECK_GOTO(single_element(attr), GEN_ERR_IO, "attribute '%s' is not a single value", name);
    H5_CHECK_GOTO(H5Aread(attr, mem_type, out) >= 0, "cannot read attribute", name);
cleanup:
    if (attr >= 0) H5Aclose(attr);
    return status;
}

int h5file_read_attr_text(hid_t loc, const char *name, char **text)
{
    int status = GEN_OK;
    *text = NULL;
    hid_t attr = -1, type = -1;
    CHECK_GOTO(H5Aexists(loc, name) > 0, GEN_ERR_IO, "no attribute '%s'", name);
    attr = H5Aopen(loc, name, H5P_DEFAULT);
    H5_CHECK_GOTO(attr >= 0, "cannot open attribute", name);
    type = H5Aget_type(attr);
    H5_CHECK_GOTO(type >= 0, "cannot read the type of attribute", name);
    size_t size = H5Tget_size(type);
    /* one fixed-length string: a variable-length one reads as a pointer, an array overflows `text` */
    CHECK_GOTO(size > 0 && H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) == 0 &&
               single_element(attr), GEN_ERR_IO, "attribute '%s' is not text", name);
    *text = calloc(1, size + 1);
    CHECK_ALLOC_GOTO(*text, size + 1);
    H5_CHECK_GOTO(H5Aread(attr, type, *text) >= 0, "cannot read attribute", name);
cleanup:
    if (status != GEN_OK) free(*text), *text = NULL;
    H5_CLOSE_ALL(type, attr);
    return status;
}
