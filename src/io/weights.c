/* Weights files and weights-only reading of checkpoints (include/genesis/weights.h). */
#include "genesis/weights.h"

#include "genesis/error.h"
#include "genesis/h5par.h"
#include "genesis/log.h"
#include "genesis/world.h"
#include "genesis_version.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- writing ---------------------------------------------------------------------------- */

static int write_dataset(hid_t file, const char *path, const model_tensor *t)
{
    hsize_t dims[5];
    for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->shape[d];
    hid_t space = t->ndim ? H5Screate_simple(t->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t type = t->kind == MODEL_COUNTER ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
    hid_t file_type = t->kind == MODEL_COUNTER ? H5T_STD_I64LE : H5T_IEEE_F32LE;
    hid_t dset = space >= 0 ? H5Dcreate2(file, t->name, file_type, space, H5P_DEFAULT, H5P_DEFAULT,
                                         H5P_DEFAULT) : -1;
    const void *data = t->kind == MODEL_COUNTER ? (const void *)t->counter : (const void *)t->data;
    int ok = dset >= 0 && H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    int status = ok ? GEN_OK : h5par_error("cannot write tensor", t->name, __FILE__, __LINE__);
    if (status) gen_error_set(status, __FILE__, __LINE__, "%s: cannot write '%s' (disk full?)", path, t->name);
    if (dset >= 0) H5Dclose(dset);
    if (space >= 0) H5Sclose(space);
    return status;
}

static int write_attr_int(hid_t loc, const char *name, int64_t value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(loc, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    int ok = attr >= 0 && H5Awrite(attr, H5T_NATIVE_INT64, &value) >= 0;
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    return ok ? GEN_OK : h5par_error("cannot write attribute", name, __FILE__, __LINE__);
}

static int write_attr_text(hid_t loc, const char *name, const char *text)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(text) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int ok = attr >= 0 && H5Awrite(attr, type, text) >= 0;
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    return ok ? GEN_OK : h5par_error("cannot write attribute", name, __FILE__, __LINE__);
}

static int fsync_path(const char *path, int directory)
{
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    CHECK(fd >= 0, GEN_ERR_IO, "cannot open %s to sync it: %s", path, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    CHECK(rc == 0, GEN_ERR_IO, "cannot sync %s: %s", path, strerror(saved));
    return GEN_OK;
}

int weights_write(const char *path, model *m)
{
    h5par_quiet();
    char tmp[CONFIG_PATH_MAX + 64];
    CHECK(strlen(path) < CONFIG_PATH_MAX, GEN_ERR_USAGE, "output path too long");
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        h5par_error("cannot create", tmp, __FILE__, __LINE__);
        FAIL(GEN_ERR_IO, "cannot create weights file %s: %s", tmp, gen_error_message());
    }
    int status = GEN_OK;
    for (int i = 0; status == GEN_OK && i < model_tensor_count(m); i++)
        status = write_dataset(file, tmp, model_tensor_at(m, i));
    if (status == GEN_OK) status = write_attr_text(file, "format", WEIGHTS_FORMAT);
    if (status == GEN_OK) status = write_attr_int(file, "format_version", WEIGHTS_FORMAT_VERSION);
    if (status == GEN_OK) status = write_attr_int(file, "width", model_get_config(m)->width);
    if (status == GEN_OK)
        status = write_attr_text(file, "genesis_version", GENESIS_VERSION " (" GENESIS_GIT_COMMIT ")");
    if (H5Fclose(file) < 0 && status == GEN_OK)
        status = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot close %s (disk full?)", tmp);
    if (status == GEN_OK) status = fsync_path(tmp, 0);
    if (status == GEN_OK && rename(tmp, path) != 0)
        status = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot rename %s to %s: %s", tmp, path,
                               strerror(errno));
    if (status != GEN_OK) {
        unlink(tmp);
        return status;
    }
    char dir[CONFIG_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    return fsync_path(dirname(dir), 1);
}

/* ---- reading ---------------------------------------------------------------------------- */

/* A bounded list of names for an error message: "a, b, c and 7 more". */
struct name_list {
    char text[1536];
    int count;
};

static void name_list_add(struct name_list *l, const char *name)
{
    enum { SHOWN = 12 };
    size_t used = strlen(l->text);
    if (l->count < SHOWN)
        snprintf(l->text + used, sizeof l->text - used, "%s%s", l->count ? ", " : "", name);
    l->count++;
}

static void name_list_finish(struct name_list *l)
{
    size_t used = strlen(l->text);
    if (l->count > 12) snprintf(l->text + used, sizeof l->text - used, " and %d more", l->count - 12);
}

static void shape_text(char *out, size_t size, int ndim, const hsize_t *dims)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(out + used, size - used, "%s%llu", d ? ", " : "", (unsigned long long)dims[d]);
    if (used < size) snprintf(out + used, size - used, "]");
}

/* Reads tensor t from group (the dataset named t->name). Returns 1 when it is missing, 2 when its
 * shape differs (describing it in `why`), a negative value when reading fails, 0 on success. */
static int read_one(hid_t group, const model_tensor *t, char *why, size_t why_size)
{
    if (H5Lexists(group, t->name, H5P_DEFAULT) <= 0) return 1;
    hid_t dset = H5Dopen2(group, t->name, H5P_DEFAULT);
    if (dset < 0) return 1;
    hid_t space = H5Dget_space(dset);
    int ndim = H5Sget_simple_extent_ndims(space);
    hsize_t dims[8] = {0};
    if (ndim > 0 && ndim <= 8) H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    int same = ndim == t->ndim;
    for (int d = 0; same && d < ndim; d++) same = dims[d] == (hsize_t)t->shape[d];
    if (!same) {
        hsize_t want[5];
        for (int d = 0; d < t->ndim; d++) want[d] = (hsize_t)t->shape[d];
        char have[128], need[128];
        shape_text(have, sizeof have, ndim < 0 ? 0 : ndim > 8 ? 8 : ndim, dims);
        shape_text(need, sizeof need, t->ndim, want);
        snprintf(why, why_size, "%s %s (expected %s)", t->name, have, need);
        H5Dclose(dset);
        return 2;
    }
    hid_t type = t->kind == MODEL_COUNTER ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
    void *out = t->kind == MODEL_COUNTER ? (void *)t->counter : (void *)t->data;
    int ok = H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0;
    H5Dclose(dset);
    return ok ? 0 : -1;
}

/* Reads every tensor of m: parameters from params, buffers from buffers (the same group for a
 * weights file). When `extra_in` >= 0, every dataset of that group that the model does not have
 * is reported too. All problems are collected into one GEN_ERR_DATA message. */
static int read_model_tensors(const char *path, model *m, hid_t params, hid_t buffers, hid_t extra_in)
{
    struct name_list missing = {.count = 0}, shaped = {.count = 0}, extra = {.count = 0};
    for (int i = 0; i < model_tensor_count(m); i++) {
        model_tensor *t = model_tensor_at(m, i);
        char why[400];
        int rc = read_one(t->kind == MODEL_PARAM ? params : buffers, t, why, sizeof why);
        if (rc < 0) {
            h5par_error("cannot read", t->name, __FILE__, __LINE__);
            FAIL(GEN_ERR_DATA, "%s: cannot read '%s' (corrupted? %s)", path, t->name, gen_error_message());
        }
        if (rc == 1) name_list_add(&missing, t->name);
        if (rc == 2) name_list_add(&shaped, why);
    }
    if (extra_in >= 0) {
        H5G_info_t info;
        if (H5Gget_info(extra_in, &info) < 0) FAIL(GEN_ERR_DATA, "%s: cannot list its datasets", path);
        for (hsize_t k = 0; k < info.nlinks; k++) {
            char name[256];
            ssize_t len = H5Lget_name_by_idx(extra_in, ".", H5_INDEX_NAME, H5_ITER_INC, k, name, sizeof name,
                                             H5P_DEFAULT);
            if (len < 0 || (size_t)len >= sizeof name) {
                name_list_add(&extra, "(a name longer than 255 characters)");
                continue;
            }
            if (!model_find_tensor(m, name)) name_list_add(&extra, name);
        }
    }
    if (!missing.count && !shaped.count && !extra.count) return GEN_OK;
    name_list_finish(&missing), name_list_finish(&shaped), name_list_finish(&extra);
    char parts[3][1700] = {"", "", ""};
    if (missing.count) snprintf(parts[0], sizeof parts[0], "; missing %d: %s", missing.count, missing.text);
    if (extra.count) snprintf(parts[1], sizeof parts[1], "; unexpected %d: %s", extra.count, extra.text);
    if (shaped.count) snprintf(parts[2], sizeof parts[2], "; wrong shape %d: %s", shaped.count, shaped.text);
    FAIL(GEN_ERR_DATA, "%s: does not match the width-%d model's state_dict%s%s%s", path,
         model_get_config(m)->width, parts[0], parts[1], parts[2]);
}

static hid_t open_read(const char *path)
{
    h5par_quiet();
    return H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
}

int weights_read(const char *path, model *m)
{
    hid_t file = open_read(path);
    if (file < 0) FAIL(GEN_ERR_DATA, "%s: not a readable HDF5 file", path);
    int status = read_model_tensors(path, m, file, file, file);
    H5Fclose(file);
    return status;
}

int weights_file_width(const char *path, int *width)
{
    hid_t file = open_read(path);
    if (file < 0) FAIL(GEN_ERR_DATA, "%s: not a readable HDF5 file", path);
    int64_t w = 0;
    if (H5Aexists(file, "width") > 0) {
        hid_t a = H5Aopen(file, "width", H5P_DEFAULT);
        if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &w) < 0) w = 0;
        if (a >= 0) H5Aclose(a);
    } else if (H5Lexists(file, "down_tr64.ops.0.conv1.weight", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(file, "down_tr64.ops.0.conv1.weight", H5P_DEFAULT);
        hid_t space = d >= 0 ? H5Dget_space(d) : -1;
        hsize_t dims[8] = {0};
        if (space >= 0 && H5Sget_simple_extent_ndims(space) == 5) H5Sget_simple_extent_dims(space, dims, NULL);
        w = (int64_t)dims[0];
        if (space >= 0) H5Sclose(space);
        if (d >= 0) H5Dclose(d);
    }
    H5Fclose(file);
    CHECK(w >= 1 && w <= 512, GEN_ERR_DATA,
          "%s: cannot tell the model width (no 'width' attribute, no down_tr64.ops.0.conv1.weight [w, 1, 3, 3, 3])",
          path);
    *width = (int)w;
    return GEN_OK;
}

int weights_is_checkpoint(const char *path, int *is_checkpoint)
{
    hid_t file = open_read(path);
    if (file < 0) FAIL(GEN_ERR_DATA, "%s: not a readable HDF5 file", path);
    *is_checkpoint = H5Lexists(file, "state", H5P_DEFAULT) > 0 && H5Lexists(file, "params", H5P_DEFAULT) > 0;
    H5Fclose(file);
    return GEN_OK;
}

int checkpoint_read_config(const char *path, genesis_config *cfg)
{
    hid_t file = open_read(path);
    if (file < 0) FAIL(GEN_ERR_DATA, "%s: not a readable HDF5 file", path);
    hid_t attr = H5Aexists(file, "config") > 0 ? H5Aopen(file, "config", H5P_DEFAULT) : -1;
    hid_t type = attr >= 0 ? H5Aget_type(attr) : -1;
    size_t size = type >= 0 ? H5Tget_size(type) : 0;
    char *text = size ? calloc(1, size + 1) : NULL;
    int ok = text != NULL && H5Tget_class(type) == H5T_STRING && H5Aread(attr, type, text) >= 0;
    if (type >= 0) H5Tclose(type);
    if (attr >= 0) H5Aclose(attr);
    H5Fclose(file);
    if (!ok) {
        free(text);
        FAIL(GEN_ERR_DATA, "%s: no readable configuration (root attribute 'config'): not a genesis checkpoint?", path);
    }
    char name[CONFIG_PATH_MAX];
    snprintf(name, sizeof name, "%.*s[config]", CONFIG_PATH_MAX - 16, path);
    int status = config_defaults(cfg);
    if (status == GEN_OK) status = config_load_text(cfg, text, name);
    free(text);
    return status;
}

int checkpoint_read_weights(const char *path, model *m)
{
    hid_t file = open_read(path);
    if (file < 0) FAIL(GEN_ERR_DATA, "%s: not a readable HDF5 file", path);
    hid_t params = H5Lexists(file, "params", H5P_DEFAULT) > 0 ? H5Gopen2(file, "params", H5P_DEFAULT) : -1;
    hid_t buffers = H5Lexists(file, "buffers", H5P_DEFAULT) > 0 ? H5Gopen2(file, "buffers", H5P_DEFAULT) : -1;
    int status = params >= 0 && buffers >= 0
                     ? read_model_tensors(path, m, params, buffers, -1)
                     : gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__, "%s: no /params or /buffers: not a genesis checkpoint", path);
    if (buffers >= 0) H5Gclose(buffers);
    if (params >= 0) H5Gclose(params);
    H5Fclose(file);
    return status;
}

int model_load_file(model **out, const char *path, const model_config *shape, genesis_config *cfg)
{
    *out = NULL;
    int is_checkpoint = 0;
    CALL(weights_is_checkpoint(path, &is_checkpoint));
    genesis_config local;
    genesis_config *c = cfg ? cfg : &local;
    model_config mc = *shape;
    if (is_checkpoint) {
        CALL(checkpoint_read_config(path, c));
        mc.width = (int)c->model.width;
    } else {
        CALL(config_defaults(c));
        CALL(weights_file_width(path, &mc.width));
        c->model.width = mc.width;
    }
    model *m;
    CALL(model_create(&m, &mc));
    int status = is_checkpoint ? checkpoint_read_weights(path, m) : weights_read(path, m);
    if (status != GEN_OK) {
        model_free(m);
        return gen_error_trace(status, __FILE__, __LINE__);
    }
    *out = m;
    return GEN_OK;
}

/* ---- a forward pass on arrays from a file ----------------------------------------------- */

static int read_input(const char *path, float **x, hsize_t dims[5])
{
    hid_t file = open_read(path);
    if (file < 0) FAIL(GEN_ERR_DATA, "%s: not a readable HDF5 file", path);
    hid_t dset = H5Lexists(file, "input", H5P_DEFAULT) > 0 ? H5Dopen2(file, "input", H5P_DEFAULT) : -1;
    hid_t space = dset >= 0 ? H5Dget_space(dset) : -1;
    int ndim = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (ndim == 5) H5Sget_simple_extent_dims(space, dims, NULL);
    if (space >= 0) H5Sclose(space);
    int status = GEN_OK;
    if (ndim != 5 || dims[1] != 1 || dims[0] < 1 || dims[0] > 4096)
        status = gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__, "%s: needs a dataset /input [N, 1, D, H, W]", path);
    size_t n = status ? 0 : (size_t)(dims[0] * dims[2] * dims[3] * dims[4]);
    *x = status ? NULL : malloc(sizeof **x * n);
    if (status == GEN_OK && !*x) status = gen_error_set(GEN_ERR_NOMEM, __FILE__, __LINE__, "out of memory");
    if (status == GEN_OK && H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *x) < 0)
        status = gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__, "%s: cannot read /input", path);
    if (dset >= 0) H5Dclose(dset);
    H5Fclose(file);
    return status;
}

static int write_output(const char *path, const float *y, const hsize_t dims[5])
{
    h5par_quiet();
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) FAIL(GEN_ERR_IO, "cannot create %s", path);
    hid_t space = H5Screate_simple(5, dims, NULL);
    hid_t dset = H5Dcreate2(file, "output", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = dset >= 0 && H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0;
    if (dset >= 0) H5Dclose(dset);
    H5Sclose(space);
    ok = H5Fclose(file) >= 0 && ok;
    CHECK(ok, GEN_ERR_IO, "cannot write /output to %s", path);
    return GEN_OK;
}

int weights_forward_file(const char *model_path, const char *input_path, const char *output_path)
{
    float *x = NULL;
    hsize_t dims[5] = {0};
    CALL(read_input(input_path, &x, dims));
    model_config shape = {.batch = (int)dims[0], .D = (int)dims[2], .H = (int)dims[3], .W = (int)dims[4]};
    model *m = NULL;
    int status = model_load_file(&m, model_path, &shape, NULL);
    if (status == GEN_OK) status = model_forward(m, NULL, x, NULL, (int)dims[0]);
    if (status == GEN_OK) status = write_output(output_path, model_output(m), dims);
    model_free(m);
    free(x);
    return status;
}

/* ---- [train] init_from ------------------------------------------------------------------ */

int init_from_weights(model *m, const char *path, int rank)
{
    /* every rank reads the file; the lowest failed rank's error is everyone's */
    CALL(world_agree_shared(weights_read(path, m)));
    if (rank == 0)
        log_info("train: starting from the weights of %s (init_from; parameters and batch-norm buffers)", path);
    return GEN_OK;
}
