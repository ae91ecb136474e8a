/* Weights files and weights-only reading of checkpoints (include/genesis/weights.h). */
#include "genesis/weights.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "io/h5file.h"
#include "genesis/log.h"
#include "genesis/world.h"
#include "genesis_version.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- writing ---------------------------------------------------------------------------- */

static int write_contents(hid_t file, const char *path, model *m)
{
    for (int i = 0; i < model_tensor_count(m); i++) {
        model_tensor *t = model_tensor_at(m, i);
        CALL(h5file_write_tensor(file, path, t, t->data, H5FILE_PORTABLE));
    }
    int64_t version = WEIGHTS_FORMAT_VERSION, width = model_get_config(m)->width;
    CALL(h5file_write_attr_text(file, "format", WEIGHTS_FORMAT));
    CALL(h5file_write_attr(file, "format_version", H5T_STD_I64LE, H5T_NATIVE_INT64, &version));
    CALL(h5file_write_attr(file, "width", H5T_STD_I64LE, H5T_NATIVE_INT64, &width));
    CALL(h5file_write_attr_text(file, "genesis_version", GENESIS_VERSION " (" GENESIS_GIT_COMMIT ")"));
    return GEN_OK;
}

int weights_write(const char *path, model *m)
{
    int status = GEN_OK;
    hid_t file = -1;
    char tmp[CONFIG_PATH_MAX + 64];
    CHECK(strlen(path) < CONFIG_PATH_MAX, GEN_ERR_USAGE, "output path too long");
    CALL(atomic_file_tmp_name(tmp, sizeof tmp, path));
    CALL_GOTO(h5file_create(tmp, H5P_DEFAULT, "cannot create weights file", &file));
    CALL_GOTO(write_contents(file, tmp, m));
    herr_t closed = H5Fclose(file);
    file = -1;
    CHECK_GOTO(closed >= 0, GEN_ERR_IO, "cannot close %s (disk full? %s)", tmp, h5par_reason());
    CALL_GOTO(fsync_path(tmp, 0));
    CALL_GOTO(atomic_file_commit(tmp, path));
cleanup:
    if (file >= 0) H5Fclose(file);
    if (status != GEN_OK) unlink(tmp); /* gone already when the rename succeeded */
    return status;
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

/* "name [found shape] (expected [t's shape])" */
static void wrong_shape_text(char *out, size_t size, const model_tensor *t,
                             const struct h5file_tensor_found *found)
{
    hsize_t want[5];
    for (int d = 0; d < t->ndim; d++) want[d] = (hsize_t)t->shape[d];
    char have[128], need[128];
    shape_text(have, sizeof have, found->ndim < 0 ? 0 : found->ndim, found->dims);
    shape_text(need, sizeof need, t->ndim, want);
    snprintf(out, size, "%s %s (expected %s)", t->name, have, need);
}

/* Every dataset of group that model m does not have, into extra. */
static int list_extra(hid_t group, const char *path, model *m, struct name_list *extra)
{
    H5G_info_t info;
    CHECK(H5Gget_info(group, &info) >= 0, GEN_ERR_DATA, "%s: cannot list its datasets", path);
    for (hsize_t k = 0; k < info.nlinks; k++) {
        char name[256];
        ssize_t len = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, k, name, sizeof name,
                                         H5P_DEFAULT);
        if (len < 0 || (size_t)len >= sizeof name) {
            name_list_add(extra, "(a name longer than 255 characters)");
            continue;
        }
        if (!model_find_tensor(m, name)) name_list_add(extra, name);
    }
    return GEN_OK;
}

/* Reads every tensor of m: parameters from params, buffers from buffers (the same group for a
 * weights file). When `extra_in` >= 0, every dataset of that group that the model does not have
 * is reported too. All problems are collected into one GEN_ERR_DATA message. */
static int read_model_tensors(const char *path, model *m, hid_t params, hid_t buffers, hid_t extra_in)
{
    struct name_list missing = {.count = 0}, shaped = {.count = 0}, extra = {.count = 0};
    for (int i = 0; i < model_tensor_count(m); i++) {
        model_tensor *t = model_tensor_at(m, i);
        struct h5file_tensor_found found;
        void *out = t->kind == MODEL_COUNTER ? (void *)t->counter : (void *)t->data;
        hid_t group = t->kind == MODEL_PARAM ? params : buffers;
        enum h5file_tensor_result rc = h5file_read_tensor(group, t, out, &found);
        CHECK(rc != H5FILE_TENSOR_UNREADABLE, GEN_ERR_DATA, "%s: cannot read '%s' (corrupted? %s)", path,
              t->name, found.reason);
        if (rc == H5FILE_TENSOR_MISSING) name_list_add(&missing, t->name);
        if (rc == H5FILE_TENSOR_SHAPE) {
            char why[400];
            wrong_shape_text(why, sizeof why, t, &found);
            name_list_add(&shaped, why);
        }
    }
    if (extra_in >= 0) CALL(list_extra(extra_in, path, m, &extra));
    if (!missing.count && !shaped.count && !extra.count) return GEN_OK;
    name_list_finish(&missing), name_list_finish(&shaped), name_list_finish(&extra);
    char parts[3][1700] = {"", "", ""};
    if (missing.count) snprintf(parts[0], sizeof parts[0], "; missing %d: %s", missing.count, missing.text);
    if (extra.count) snprintf(parts[1], sizeof parts[1], "; unexpected %d: %s", extra.count, extra.text);
    if (shaped.count) snprintf(parts[2], sizeof parts[2], "; wrong shape %d: %s", shaped.count, shaped.text);
    FAIL(GEN_ERR_DATA, "%s: does not match the width-%d model's state_dict%s%s%s", path,
         model_get_config(m)->width, parts[0], parts[1], parts[2]);
}

int weights_read(const char *path, model *m)
{
    hid_t file;
    CALL(h5file_open_read(path, "", &file));
    int status = read_model_tensors(path, m, file, file, file);
    H5Fclose(file);
    return status;
}

/* The width of a weights file: its `width` attribute, else the first axis of the first
 * convolution [w, 1, 3, 3, 3]; 0 when neither tells. */
static int64_t stored_width(hid_t file)
{
    int64_t width = 0;
    if (H5Aexists(file, "width") > 0) {
        if (h5file_read_attr(file, "width", H5T_NATIVE_INT64, &width) != GEN_OK) width = 0;
        gen_error_clear();
        return width;
    }
    int ndim;
    hsize_t dims[H5FILE_MAX_RANK];
    h5file_dataset_shape(file, "down_tr64.ops.0.conv1.weight", &ndim, dims);
    return ndim == 5 ? (int64_t)dims[0] : 0;
}

int weights_file_width(const char *path, int *width)
{
    hid_t file;
    CALL(h5file_open_read(path, "", &file));
    int64_t w = stored_width(file);
    H5Fclose(file);
    CHECK(w >= 1 && w <= 512, GEN_ERR_DATA,
          "%s: cannot tell the model width (no 'width' attribute, no down_tr64.ops.0.conv1.weight [w, 1, 3, 3, 3])",
          path);
    *width = (int)w;
    return GEN_OK;
}

int hdf5_file_kind(const char *path, const char **kind)
{
    hid_t file;
    CALL(h5file_open_read(path, "", &file));
    *kind = h5file_kind(file);
    H5Fclose(file);
    return GEN_OK;
}

int weights_is_checkpoint(const char *path, int *is_checkpoint)
{
    hid_t file;
    CALL(h5file_open_read(path, "", &file));
    *is_checkpoint = h5file_has(file, "state") && h5file_has(file, "params");
    H5Fclose(file);
    return GEN_OK;
}

int checkpoint_read_config(const char *path, genesis_config *cfg)
{
    int status = GEN_OK;
    char *text = NULL;
    hid_t file;
    CALL(h5file_open_read(path, "", &file));
    int read = h5file_read_attr_text(file, "config", &text);
    H5Fclose(file);
    CHECK_GOTO(read == GEN_OK, GEN_ERR_DATA,
               "%s: no readable configuration (root attribute 'config'): not a genesis checkpoint?", path);
    char name[CONFIG_PATH_MAX];
    snprintf(name, sizeof name, "%.*s[config]", CONFIG_PATH_MAX - 16, path);
    CALL_GOTO(config_defaults(cfg));
    CALL_GOTO(config_load_text(cfg, text, name));
cleanup:
    free(text);
    return status;
}

int checkpoint_read_weights(const char *path, model *m)
{
    int status = GEN_OK;
    hid_t file, params = -1, buffers = -1;
    CALL(h5file_open_read(path, "", &file));
    if (h5file_has(file, "params")) params = H5Gopen2(file, "params", H5P_DEFAULT);
    if (h5file_has(file, "buffers")) buffers = H5Gopen2(file, "buffers", H5P_DEFAULT);
    CHECK_GOTO(params >= 0 && buffers >= 0, GEN_ERR_DATA,
               "%s: no /params or /buffers: not a genesis checkpoint", path);
    CALL_GOTO(read_model_tensors(path, m, params, buffers, -1));
cleanup:
    H5_CLOSE_ALL(buffers, params, file);
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

/* ---- forward files: /input in, /output out (genesis forward) --------------------------- */

int forward_file_read_input(const char *path, float **x, int64_t dims[5])
{
    int status = GEN_OK;
    hid_t file, dset = -1;
    *x = NULL;
    CALL(h5file_open_read(path, "", &file));
    int ndim = -1;
    hsize_t shape[H5FILE_MAX_RANK];
    h5file_dataset_shape(file, "input", &ndim, shape);
    int sizes_ok = ndim == 5 && shape[1] == 1 && shape[0] >= 1 && shape[0] <= 4096;
    for (int d = 2; sizes_ok && d < 5; d++) sizes_ok = shape[d] >= 1 && shape[d] <= 4096; /* no overflow */
    CHECK_GOTO(sizes_ok, GEN_ERR_DATA, "%s: needs a dataset /input [N, 1, D, H, W] (N, D, H, W <= 4096)", path);
    for (int d = 0; d < 5; d++) dims[d] = (int64_t)shape[d];
    size_t n = (size_t)(dims[0] * dims[2] * dims[3] * dims[4]);
    *x = malloc(sizeof **x * n);
    CHECK_GOTO(*x, GEN_ERR_NOMEM, "out of memory");
    dset = H5Dopen2(file, "input", H5P_DEFAULT);
    int read = dset >= 0 && H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *x) >= 0;
    CHECK_GOTO(read, GEN_ERR_DATA, "%s: cannot read /input", path);
cleanup:
    if (dset >= 0) H5Dclose(dset);
    H5Fclose(file);
    if (status != GEN_OK) free(*x), *x = NULL; /* the caller owns *x only on success */
    return status;
}

int forward_file_write_output(const char *path, const float *y, const int64_t dims[5])
{
    hsize_t shape[5];
    for (int d = 0; d < 5; d++) shape[d] = (hsize_t)dims[d];
    char tmp[4200];
    CALL(atomic_file_tmp_name(tmp, sizeof tmp, path)); /* written beside path, then renamed over it */
    hid_t file;
    CALL(h5file_create(tmp, H5P_DEFAULT, "cannot create", &file));
    hid_t space = H5Screate_simple(5, shape, NULL);
    hid_t dset = space >= 0 ? H5Dcreate2(file, "output", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                                         H5P_DEFAULT) : -1;
    int written = dset >= 0 && H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0;
    if (dset >= 0) H5Dclose(dset);
    if (space >= 0) H5Sclose(space);
    written = H5Fclose(file) >= 0 && written && fsync_path(tmp, 0) == GEN_OK;
    if (!written) unlink(tmp);
    CHECK(written, GEN_ERR_IO, "cannot write /output to %s", path);
    return atomic_file_commit(tmp, path);
}
