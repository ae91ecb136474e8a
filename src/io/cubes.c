/* The cubes file (include/genesis/cubes.h). */
#include "genesis/cubes.h"

#include "genesis/collective.h"
#include "genesis/config.h"
#include "genesis/error.h"
#include "genesis/h5par.h"
#include "genesis/world.h"
#include "io/h5file.h"

#include <hdf5.h>
#include <mpi.h>

#include <stdlib.h>
#include <string.h>

const char *cube_split_name(int split)
{
    static const char *const names[] = {"train", "validation", "test"};
    return split >= 0 && split <= 2 ? names[split] : "unknown";
}

/* ---- writing ---------------------------------------------------------------------------- */

struct cubes_writer {
    hid_t file, cubes, scan_index, corner, crop, split;
    int64_t count; /* cubes written so far, all ranks */
    int rows, cols, deps;
};

static int attr_text(hid_t loc, const char *name, const char *text);
static int attr_ints(hid_t loc, const char *name, const int64_t *values, int n);
static int attr_doubles(hid_t loc, const char *name, const double *values, int n);

/* An empty dataset of `type` with shape [0, tail...], extendible along the first axis, chunked
 * one item per chunk. */
static int create_extendible(hid_t file, const char *name, hid_t type, int rank,
                             const hsize_t *tail, hid_t *out)
{
    int status = GEN_OK;
    hsize_t dims[4] = {0}, maxdims[4] = {H5S_UNLIMITED}, chunk[4] = {1};
    for (int i = 1; i < rank; i++) dims[i] = maxdims[i] = chunk[i] = tail[i - 1];
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (rank == 1) chunk[0] = 4096; /* small per-cube records: bigger chunks */
    int ok = space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0;
    *out = ok ? H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    H5_CHECK_GOTO(*out >= 0, "cannot create dataset", name);
cleanup:
    H5_CLOSE_ALL(dcpl, space);
    return status;
}

int cubes_writer_create(cubes_writer **out, const char *path, int rows, int cols, int deps)
{
    *out = NULL;
    cubes_writer *w = calloc(1, sizeof *w);
    CHECK_ALLOC(w, sizeof *w);
    w->file = w->cubes = w->scan_index = w->corner = w->crop = w->split = -1;
    w->rows = rows, w->cols = cols, w->deps = deps;
    *out = w;
    CALL(h5par_create(path, MPI_COMM_WORLD, &w->file));
    hsize_t cube[3] = {(hsize_t)rows, (hsize_t)cols, (hsize_t)deps}, three[1] = {3};
    CALL(create_extendible(w->file, "cubes", H5T_NATIVE_FLOAT, 4, cube, &w->cubes));
    CALL(create_extendible(w->file, "scan_index", H5T_NATIVE_INT32, 1, NULL, &w->scan_index));
    CALL(create_extendible(w->file, "corner", H5T_NATIVE_INT32, 2, three, &w->corner));
    CALL(create_extendible(w->file, "crop", H5T_NATIVE_INT32, 2, three, &w->crop));
    CALL(create_extendible(w->file, "split", H5T_NATIVE_UINT8, 1, NULL, &w->split));
    int64_t version = CUBES_FORMAT_VERSION, shape[3] = {rows, cols, deps};
    CALL(attr_ints(w->file, "format_version", &version, 1));
    CALL(attr_ints(w->file, "cube_shape", shape, 3));
    return GEN_OK;
}

/* Extends `dset` to `total` items and writes this rank's `n` items of `item` elements at `offset`.
 * Collective. */
static int append_rows(hid_t dset, const char *name, hid_t type, const void *data, int64_t offset,
                       int64_t n, int64_t total, int rank, const hsize_t *tail)
{
    hsize_t dims[4] = {(hsize_t)total}, start[4] = {(hsize_t)offset}, count[4] = {(hsize_t)n};
    hsize_t mdims[4] = {(hsize_t)(n > 0 ? n : 1)};
    for (int i = 1; i < rank; i++) dims[i] = count[i] = mdims[i] = tail[i - 1];
    H5_CHECK(H5Dset_extent(dset, dims) >= 0, "cannot extend dataset", name);
    int status = GEN_OK;
    hid_t fspace = H5Dget_space(dset), mspace = H5Screate_simple(rank, mdims, NULL);
    hid_t dxpl = h5par_collective_transfer();
    int ok = fspace >= 0 && mspace >= 0 && dxpl >= 0;
    if (ok && n > 0) ok = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0;
    if (ok && n == 0) ok = H5Sselect_none(fspace) >= 0 && H5Sselect_none(mspace) >= 0;
    H5_CHECK_GOTO(ok && H5Dwrite(dset, type, mspace, fspace, dxpl, data) >= 0, "cannot write dataset", name);
cleanup:
    H5_CLOSE_ALL(dxpl, mspace, fspace);
    return status;
}

int cubes_writer_append(cubes_writer *w, const float *cubes, const int32_t *scan_index,
                        const int32_t *corner, const int32_t *crop, const uint8_t *split, int64_t n)
{
    int64_t before = 0, total = 0;
    CALL(world_exscan_int64(n, &before, &total));
    if (total == 0) return GEN_OK;
    int64_t offset = w->count + before, end = w->count + total;
    hsize_t cube[3] = {(hsize_t)w->rows, (hsize_t)w->cols, (hsize_t)w->deps}, three[1] = {3};
    CALL(append_rows(w->cubes, "cubes", H5T_NATIVE_FLOAT, cubes, offset, n, end, 4, cube));
    CALL(append_rows(w->scan_index, "scan_index", H5T_NATIVE_INT32, scan_index, offset, n, end, 1, NULL));
    CALL(append_rows(w->corner, "corner", H5T_NATIVE_INT32, corner, offset, n, end, 2, three));
    CALL(append_rows(w->crop, "crop", H5T_NATIVE_INT32, crop, offset, n, end, 2, three));
    CALL(append_rows(w->split, "split", H5T_NATIVE_UINT8, split, offset, n, end, 1, NULL));
    w->count = end;
    return GEN_OK;
}

/* The HDF5 compound type of cubes_scan_record into *out (caller closes); with_format 0: without the
 * member "format", which files written before it existed lack. */
static int scan_record_type(hid_t *out, int with_format)
{
    int status = GEN_OK;
    hsize_t three[1] = {3};
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(cubes_scan_record));
    hid_t path = H5Tcopy(H5T_C_S1), why = H5Tcopy(H5T_C_S1), format = H5Tcopy(H5T_C_S1);
    hid_t dims = H5Tarray_create2(H5T_NATIVE_INT64, 1, three);
    hid_t spacing = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, three);
    int ok = t >= 0 && path >= 0 && why >= 0 && dims >= 0 && spacing >= 0 &&
             H5Tset_size(path, sizeof ((cubes_scan_record *)0)->path) >= 0 &&
             H5Tset_size(why, sizeof ((cubes_scan_record *)0)->skipped) >= 0 &&
             H5Tinsert(t, "path", HOFFSET(cubes_scan_record, path), path) >= 0 &&
             H5Tinsert(t, "dim", HOFFSET(cubes_scan_record, dim), dims) >= 0 &&
             H5Tinsert(t, "spacing", HOFFSET(cubes_scan_record, spacing), spacing) >= 0 &&
             H5Tinsert(t, "split", HOFFSET(cubes_scan_record, split), H5T_NATIVE_INT32) >= 0 &&
             H5Tinsert(t, "cubes", HOFFSET(cubes_scan_record, cubes), H5T_NATIVE_INT32) >= 0 &&
             H5Tinsert(t, "skipped", HOFFSET(cubes_scan_record, skipped), why) >= 0 && format >= 0 &&
             H5Tset_size(format, sizeof ((cubes_scan_record *)0)->format) >= 0;
    if (ok && with_format) ok = H5Tinsert(t, "format", HOFFSET(cubes_scan_record, format), format) >= 0;
    H5_CHECK_GOTO(ok, "cannot make the record type of", "scans");
    *out = t;
    t = -1;
cleanup:
    H5_CLOSE_ALL(t, path, why, format, dims, spacing);
    return status;
}

int cubes_writer_scans(cubes_writer *w, const cubes_scan_record *scans, int64_t count)
{
    int status = GEN_OK, rank = world_rank();
    hsize_t dims[1] = {(hsize_t)(count > 0 ? count : 0)};
    hid_t type = -1, space = -1, dset = -1, dxpl = -1, fspace = -1, mspace = -1;
    CALL_GOTO(scan_record_type(&type, 1));
    space = H5Screate_simple(1, dims, NULL);
    if (space >= 0) dset = H5Dcreate2(w->file, "scans", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    dxpl = h5par_collective_transfer();
    H5_CHECK_GOTO(space >= 0 && dset >= 0 && dxpl >= 0, "cannot create dataset", "scans");
    if (count > 0) {
        fspace = H5Scopy(space), mspace = H5Scopy(space);
        int ok = fspace >= 0 && mspace >= 0;
        if (ok && rank != 0) ok = H5Sselect_none(fspace) >= 0 && H5Sselect_none(mspace) >= 0;
        ok = ok && H5Dwrite(dset, type, mspace, fspace, dxpl, scans) >= 0;
        H5_CHECK_GOTO(ok, "cannot write dataset", "scans");
    }
cleanup:
    H5_CLOSE_ALL(mspace, fspace, dxpl, dset, space, type);
    return status;
}

/* Writes (or replaces) attribute `name` of loc: n values of type (n = -1: a scalar). */
static int write_attr(hid_t loc, const char *name, hid_t type, int n, const void *data)
{
    int status = GEN_OK;
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = n >= 0 ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR), attr = -1;
    htri_t exists = H5Aexists(loc, name);
    int cleared = space >= 0 && exists >= 0 && (!exists || H5Adelete(loc, name) >= 0);
    H5_CHECK_GOTO(cleared, "cannot replace attribute", name);
    attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK_GOTO(attr >= 0 && H5Awrite(attr, type, data) >= 0, "cannot write attribute", name);
cleanup:
    H5_CLOSE_ALL(attr, space);
    return status;
}

static int attr_text(hid_t loc, const char *name, const char *text)
{
    int status = GEN_OK;
    hid_t type = H5Tcopy(H5T_C_S1);
    H5_CHECK_GOTO(type >= 0 && H5Tset_size(type, strlen(text) + 1) >= 0, "cannot make the text type of", name);
    CALL_GOTO(write_attr(loc, name, type, -1, text));
cleanup:
    if (type >= 0) H5Tclose(type);
    return status;
}

static int attr_ints(hid_t loc, const char *name, const int64_t *values, int n)
{
    return write_attr(loc, name, H5T_NATIVE_INT64, n, values);
}

static int attr_doubles(hid_t loc, const char *name, const double *values, int n)
{
    return write_attr(loc, name, H5T_NATIVE_DOUBLE, n, values);
}

int cubes_writer_attr_text(cubes_writer *w, const char *name, const char *text)
{
    return attr_text(w->file, name, text);
}

int cubes_writer_attr_ints(cubes_writer *w, const char *name, const int64_t *values, int n)
{
    return attr_ints(w->file, name, values, n);
}

int cubes_writer_attr_doubles(cubes_writer *w, const char *name, const double *values, int n)
{
    return attr_doubles(w->file, name, values, n);
}

int64_t cubes_writer_count(const cubes_writer *w) { return w->count; }

int cubes_writer_close(cubes_writer *w)
{
    if (!w) return GEN_OK;
    hid_t *handles[] = {&w->cubes, &w->scan_index, &w->corner, &w->crop, &w->split};
    int ok = 1;
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
        if (*handles[i] >= 0) ok &= H5Dclose(*handles[i]) >= 0, *handles[i] = -1;
    if (w->file >= 0) ok &= H5Fclose(w->file) >= 0, w->file = -1;
    free(w);
    CHECK(ok, GEN_ERR_IO, "cannot close the cubes file");
    return GEN_OK;
}

/* ---- reading ---------------------------------------------------------------------------- */

struct cubes_handles {
    hid_t file, cubes;
};

static int read_whole(hid_t file, const char *path, const char *name, hid_t type, void *out,
                      int64_t expected)
{
    int status = GEN_OK;
    hid_t dset = H5Dopen2(file, name, H5P_DEFAULT), space = -1;
    H5_CHECK_GOTO(dset >= 0, "missing dataset", name);
    space = H5Dget_space(dset);
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    H5_CHECK_GOTO(n >= 0, "cannot read the shape of dataset", name);
    CHECK_GOTO(n == expected, GEN_ERR_DATA, "%s: dataset '%s' has %lld entries, expected %lld", path, name,
               (long long)n, (long long)expected);
    H5_CHECK_GOTO(n == 0 || H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0, "cannot read dataset",
                  name);
cleanup:
    H5_CLOSE_ALL(space, dset);
    return status;
}

static int read_attr(hid_t file, const char *name, hid_t type, void *out, int n)
{
    int status = GEN_OK;
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT), space = -1;
    H5_CHECK_GOTO(attr >= 0, "missing attribute", name);
    space = H5Aget_space(attr);
    int ok = space >= 0 && H5Sget_simple_extent_npoints(space) == n && H5Aread(attr, type, out) >= 0;
    H5_CHECK_GOTO(ok, "cannot read attribute", name);
cleanup:
    H5_CLOSE_ALL(space, attr);
    return status;
}

/* The shape of dataset cubes [N, rows, cols, deps] into dims; checked against cube_shape. */
static int read_cubes_shape(hid_t file, hid_t cubes, const char *path, hsize_t dims[4])
{
    int64_t shape[3] = {0};
    hid_t space = H5Dget_space(cubes);
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    int ok = rank == 4 && H5Sget_simple_extent_dims(space, dims, NULL) >= 0;
    if (space >= 0) H5Sclose(space);
    CALL(read_attr(file, "cube_shape", H5T_NATIVE_INT64, shape, 3));
    CHECK(ok && (int64_t)dims[1] == shape[0] && (int64_t)dims[2] == shape[1] && (int64_t)dims[3] == shape[2],
          GEN_ERR_DATA, "%s: dataset 'cubes' is not [N, %lld, %lld, %lld]", path, (long long)shape[0],
          (long long)shape[1], (long long)shape[2]);
    /* the sizes prep writes ([prep] cube_rows, ...: 8..1024), so that a cube's size fits an int */
    for (int a = 1; a <= 3; a++)
        CHECK(dims[a] >= 1 && dims[a] <= 1024 && dims[0] <= (hsize_t)INT64_MAX, GEN_ERR_DATA,
              "%s: corrupt: cubes of %llux%llux%llu voxels", path, (unsigned long long)dims[1],
              (unsigned long long)dims[2], (unsigned long long)dims[3]);
    return GEN_OK;
}

int cubes_open(cubes_file *f, const char *path, enum cubes_scope scope)
{
    int status = GEN_OK;
    memset(f, 0, sizeof *f);
    f->h5 = malloc(sizeof *f->h5);
    CHECK_ALLOC(f->h5, sizeof *f->h5);
    f->h5->file = f->h5->cubes = -1;
    CALL_GOTO(h5file_check_regular(path));
    CALL_GOTO(h5par_open(path, scope == CUBES_ALL_RANKS ? MPI_COMM_WORLD : MPI_COMM_SELF, 0, &f->h5->file));
    CHECK_GOTO(h5file_has(f->h5->file, "cubes"), GEN_ERR_DATA, "%s is %s, not a cubes file (genesis prep writes "
               "those)", path, h5file_kind(f->h5->file));
    int64_t version = 0;
    CHECK_GOTO(read_attr(f->h5->file, "format_version", H5T_NATIVE_INT64, &version, 1) == GEN_OK, GEN_ERR_DATA,
               "%s: not a genesis cubes file (no format_version attribute)", path);
    CHECK_GOTO(version == CUBES_FORMAT_VERSION, GEN_ERR_DATA,
               "%s: cubes file format version %lld; this genesis reads version %d", path, (long long)version,
               CUBES_FORMAT_VERSION);
    f->format_version = (int)version;
    f->h5->cubes = H5Dopen2(f->h5->file, "cubes", H5P_DEFAULT);
    H5_CHECK_GOTO(f->h5->cubes >= 0, "missing dataset 'cubes' in", path);
    hid_t type = H5Dget_type(f->h5->cubes);
    H5T_class_t kind = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    size_t type_size = type >= 0 ? H5Tget_size(type) : 0;
    if (type >= 0) H5Tclose(type);
    CHECK_GOTO(kind == H5T_FLOAT && type_size == 4, GEN_ERR_DATA,
               "%s: dataset 'cubes' holds %s of %zu bytes, not float32: genesis cubes are float32 in [0, 1], "
               "written by genesis prep", path,
               kind == H5T_INTEGER ? "integers" : kind == H5T_FLOAT ? "floats" : "values", type_size);
    hsize_t dims[4] = {0};
    CALL_GOTO(read_cubes_shape(f->h5->file, f->h5->cubes, path, dims));
    f->count = (int64_t)dims[0];
    f->rows = (int)dims[1], f->cols = (int)dims[2], f->deps = (int)dims[3];
    f->split = malloc((size_t)(f->count > 0 ? f->count : 1));
    f->scan_index = malloc(sizeof *f->scan_index * (size_t)(f->count > 0 ? f->count : 1));
    CHECK_GOTO(f->split && f->scan_index, GEN_ERR_NOMEM, "out of memory reading %s", path);
    CALL_GOTO(read_whole(f->h5->file, path, "split", H5T_NATIVE_UINT8, f->split, f->count));
    CALL_GOTO(read_whole(f->h5->file, path, "scan_index", H5T_NATIVE_INT32, f->scan_index, f->count));
    for (int64_t i = 0; i < f->count; i++)
        CHECK_GOTO(f->split[i] <= SPLIT_TEST, GEN_ERR_DATA,
                   "%s: dataset 'split' holds %d at cube %lld: the splits are 0 (train), 1 (validation) and "
                   "2 (test)", path, f->split[i], (long long)i);
cleanup:
    if (status != GEN_OK) cubes_close(f);
    return status;
}

int cubes_check_trainable(const cubes_file *f, const char *path)
{
    CHECK(config_cube_size_ok(f->rows, f->cols, f->deps), GEN_ERR_DATA,
          "%s: cubes of %d x %d x %d: genesis trains on cubes whose every size is a multiple of 8 and >= %d "
          "(prepare them again with [prep] cube_rows, cube_cols, cube_deps)", path, f->rows, f->cols, f->deps,
          CONFIG_CUBE_MIN);
    return GEN_OK;
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int cubes_read(cubes_file *f, float *out, const int64_t *indices, int64_t n)
{
    int status = GEN_OK;
    size_t cube = (size_t)f->rows * f->cols * f->deps;
    float *buffer = NULL;
    hid_t fspace = -1, mspace = -1, dxpl = -1;
    /* HDF5 returns a union of hyperslabs in file order: read the distinct indices sorted, then
     * place each where it was asked for. */
    int64_t *sorted = malloc(sizeof *sorted * (size_t)(n > 0 ? n : 1));
    CHECK_ALLOC_GOTO(sorted, sizeof *sorted * (size_t)n);
    int64_t distinct = 0;
    for (int64_t i = 0; i < n; i++) {
        CHECK_GOTO(indices[i] >= 0 && indices[i] < f->count, GEN_ERR_INTERNAL,
                   "cube index %lld out of range [0, %lld)", (long long)indices[i], (long long)f->count);
        sorted[i] = indices[i];
    }
    qsort(sorted, (size_t)n, sizeof *sorted, compare_int64);
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || sorted[i] != sorted[distinct - 1]) sorted[distinct++] = sorted[i];
    buffer = malloc(sizeof *buffer * cube * (size_t)(distinct > 0 ? distinct : 1));
    CHECK_GOTO(buffer, GEN_ERR_NOMEM, "out of memory reading %lld cubes", (long long)distinct);
    fspace = H5Dget_space(f->h5->cubes);
    hsize_t mdims[1] = {(hsize_t)(distinct > 0 ? distinct : 1) * cube};
    mspace = H5Screate_simple(1, mdims, NULL);
    dxpl = h5par_collective_transfer();
    int ok = fspace >= 0 && mspace >= 0 && dxpl >= 0 && H5Sselect_none(fspace) >= 0;
    for (int64_t i = 0; ok && i < distinct; i++) {
        hsize_t start[4] = {(hsize_t)sorted[i], 0, 0, 0};
        hsize_t count[4] = {1, (hsize_t)f->rows, (hsize_t)f->cols, (hsize_t)f->deps};
        ok = H5Sselect_hyperslab(fspace, H5S_SELECT_OR, start, NULL, count, NULL) >= 0;
    }
    if (ok && distinct == 0) ok = H5Sselect_none(mspace) >= 0;
    if (ok) ok = H5Dread(f->h5->cubes, H5T_NATIVE_FLOAT, mspace, fspace, dxpl, buffer) >= 0;
    H5_CHECK_GOTO(ok, "cannot read cubes from", "cubes");
    for (int64_t i = 0; i < n; i++) {
        int64_t *at = bsearch(&indices[i], sorted, (size_t)distinct, sizeof *sorted, compare_int64);
        memcpy(out + (size_t)i * cube, buffer + (size_t)(at - sorted) * cube, sizeof *out * cube);
    }
cleanup:
    H5_CLOSE_ALL(dxpl, mspace, fspace);
    free(buffer);
    free(sorted);
    return status;
}

int cubes_read_attr_text(const cubes_file *f, const char *name, char *out, size_t size)
{
    char *text = NULL;
    CALL(h5file_read_attr_text(f->h5->file, name, &text));
    snprintf(out, size, "%s", text);
    free(text);
    return GEN_OK;
}

int cubes_read_attr_doubles(const cubes_file *f, const char *name, double *out, int n)
{
    return read_attr(f->h5->file, name, H5T_NATIVE_DOUBLE, out, n);
}

int cubes_read_scans(const cubes_file *f, cubes_scan_record **scans, int64_t *count)
{
    int status = GEN_OK;
    hid_t dset = H5Dopen2(f->h5->file, "scans", H5P_DEFAULT), space = -1, type = -1, stored = -1;
    *scans = NULL;
    H5_CHECK_GOTO(dset >= 0, "missing dataset", "scans");
    stored = H5Dget_type(dset);
    H5_CHECK_GOTO(stored >= 0, "cannot read the type of dataset", "scans");
    int with_format = H5Tget_member_index(stored, "format") >= 0;
    space = H5Dget_space(dset);
    *count = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    H5_CHECK_GOTO(*count >= 0, "cannot read the shape of dataset", "scans");
    *scans = calloc((size_t)(*count > 0 ? *count : 1), sizeof **scans);
    CHECK_ALLOC_GOTO(*scans, sizeof **scans * (size_t)(*count > 0 ? *count : 1));
    CALL_GOTO(scan_record_type(&type, with_format));
    H5_CHECK_GOTO(*count == 0 || H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *scans) >= 0,
                  "cannot read dataset", "scans");
    for (int64_t i = 0; !with_format && i < *count; i++) /* written before other formats were read */
        snprintf((*scans)[i].format, sizeof (*scans)[i].format, "nifti");
cleanup:
    H5_CLOSE_ALL(type, space, stored, dset);
    if (status != GEN_OK) free(*scans), *scans = NULL;
    return status;
}

/* Closing a file opened read-only loses nothing: a failed close is not reported. */
void cubes_close(cubes_file *f)
{
    if (f->h5) {
        if (f->h5->cubes >= 0) H5Dclose(f->h5->cubes);
        if (f->h5->file >= 0) H5Fclose(f->h5->file);
        free(f->h5);
    }
    free(f->split);
    free(f->scan_index);
    f->h5 = NULL, f->split = NULL, f->scan_index = NULL;
}
