/* Checkpoints (include/genesis/checkpoint.h). */
#include "genesis/checkpoint.h"

#include "genesis/error.h"
#include "genesis/h5par.h"
#include "genesis/world.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const state_names[] = {"epoch", "step_in_epoch", "global_step", "bad_epochs",
                                          "optimizer_steps", "optimizer"};

static int64_t *state_field(train_state *st, int i)
{
    int64_t *fields[] = {&st->epoch, &st->step_in_epoch, &st->global_step, &st->bad_epochs,
                         &st->optimizer_steps, &st->optimizer_kind};
    return fields[i];
}

/* ---- writing ---------------------------------------------------------------------------- */

static int write_tensor(hid_t group, const char *path, const model_tensor *t, const float *values)
{
    hsize_t dims[5];
    for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->shape[d];
    hid_t space = t->ndim ? H5Screate_simple(t->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int ok = space >= 0 && dcpl >= 0;
    if (ok && t->ndim) ok = H5Pset_chunk(dcpl, t->ndim, dims) >= 0 && H5Pset_fletcher32(dcpl) >= 0;
    hid_t type = t->kind == MODEL_COUNTER ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
    hid_t dset = ok ? H5Dcreate2(group, t->name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    const void *data = t->kind == MODEL_COUNTER ? (const void *)t->counter : (const void *)values;
    ok = dset >= 0 && H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    int status = ok ? GEN_OK : h5par_error("cannot write tensor", t->name, __FILE__, __LINE__);
    if (status) gen_error_set(status, __FILE__, __LINE__, "%s: cannot write tensor '%s' (disk full?)", path, t->name);
    if (dset >= 0) H5Dclose(dset);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return status;
}

static int write_attr(hid_t loc, const char *name, hid_t type, const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int ok = attr >= 0 && H5Awrite(attr, type, value) >= 0;
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    return ok ? GEN_OK : h5par_error("cannot write attribute", name, __FILE__, __LINE__);
}

static int write_contents(hid_t file, const char *path, model *m, const optimizer *o,
                          const train_state *st, const char *config_text)
{
    hid_t params = H5Gcreate2(file, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t buffers = H5Gcreate2(file, "buffers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t optim = H5Gcreate2(file, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t state = H5Gcreate2(file, "state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t slots[2] = {-1, -1};
    for (int k = 0; k < o->nstate; k++) {
        char name[32];
        snprintf(name, sizeof name, "%d", k);
        slots[k] = H5Gcreate2(optim, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    }
    int status = params >= 0 && buffers >= 0 && optim >= 0 && state >= 0 ? GEN_OK
                 : h5par_error("cannot create groups in", path, __FILE__, __LINE__);
    for (int i = 0; status == GEN_OK && i < model_tensor_count(m); i++) {
        model_tensor *t = model_tensor_at(m, i);
        if (t->kind != MODEL_PARAM) {
            status = write_tensor(buffers, path, t, t->data);
            continue;
        }
        status = write_tensor(params, path, t, t->data);
        for (int k = 0; status == GEN_OK && k < o->nstate; k++)
            status = write_tensor(slots[k], path, t, o->state + (size_t)k * o->n + t->offset);
    }
    int64_t version = CHECKPOINT_FORMAT_VERSION;
    train_state copy = *st;
    if (status == GEN_OK) status = write_attr(state, "format_version", H5T_NATIVE_INT64, &version);
    for (int i = 0; status == GEN_OK && i < 6; i++)
        status = write_attr(state, state_names[i], H5T_NATIVE_INT64, state_field(&copy, i));
    if (status == GEN_OK) status = write_attr(state, "lr", H5T_NATIVE_DOUBLE, &st->lr);
    if (status == GEN_OK) status = write_attr(state, "best_loss", H5T_NATIVE_DOUBLE, &st->best_loss);
    if (status == GEN_OK) status = write_attr(state, "config_hash", H5T_NATIVE_UINT64, &st->config_hash);
    if (status == GEN_OK) {
        hid_t type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, strlen(config_text) + 1);
        status = write_attr(file, "config", type, config_text);
        H5Tclose(type);
    }
    for (int k = 0; k < 2; k++)
        if (slots[k] >= 0) H5Gclose(slots[k]);
    if (state >= 0) H5Gclose(state);
    if (optim >= 0) H5Gclose(optim);
    if (buffers >= 0) H5Gclose(buffers);
    if (params >= 0) H5Gclose(params);
    return status;
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

/* Writes bytes [n] to fd completely; a crash can be injected half-way (tests). */
static int write_all(int fd, const char *path, const unsigned char *bytes, size_t n, const char *fault_site)
{
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done > (1u << 20) ? (1u << 20) : n - done;
        if (done < n / 2 && done + chunk >= n / 2) fault_kill_point(fault_site);
        ssize_t w = write(fd, bytes + done, chunk);
        if (w < 0 && errno == EINTR) continue;
        CHECK(w > 0, GEN_ERR_IO, "cannot write %s: %s (disk full?)", path, w < 0 ? strerror(errno) : "no progress");
        done += (size_t)w;
    }
    return GEN_OK;
}

/* The checkpoint is built in memory (HDF5's core driver), then written with plain POSIX calls:
 * a full disk or an I/O error is then a clean error that HDF5 never sees, and nothing but the
 * temporary file is touched until the rename. */
int checkpoint_write(const char *path, model *m, const optimizer *o, const train_state *st,
                     const char *config_text)
{
    h5par_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 16u << 20, 0) < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        return h5par_error("cannot set up the in-memory file for", path, __FILE__, __LINE__);
    }
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (file < 0) return h5par_error("cannot create in-memory checkpoint", path, __FILE__, __LINE__);
    int status = write_contents(file, path, m, o, st, config_text);
    unsigned char *image = NULL;
    ssize_t size = status == GEN_OK && H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 ? H5Fget_file_image(file, NULL, 0) : -1;
    if (status == GEN_OK && size > 0) image = malloc((size_t)size);
    if (status == GEN_OK && (!image || H5Fget_file_image(file, image, (size_t)size) != size))
        status = gen_error_set(GEN_ERR_NOMEM, __FILE__, __LINE__, "%s: cannot build the checkpoint image (%zd bytes)",
                               path, size);
    H5Fclose(file);
    if (status != GEN_OK) {
        free(image);
        return status;
    }
    /* tests can crash step checkpoints half-way through the disk write: "checkpoint.write.step" */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *site = !strncmp(base, "step-", 5) ? "checkpoint.write.step" : "checkpoint.write.other";
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(image);
        FAIL(GEN_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    }
    status = write_all(fd, tmp, image, (size_t)size, site);
    free(image);
    if (status == GEN_OK && fsync(fd) != 0)
        status = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot sync %s: %s (disk full?)", tmp, strerror(errno));
    if (close(fd) != 0 && status == GEN_OK)
        status = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot close %s: %s (disk full?)", tmp, strerror(errno));
    if (status == GEN_OK && rename(tmp, path) != 0)
        status = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (status != GEN_OK) {
        unlink(tmp); /* the previous checkpoint at `path` is untouched */
        return status;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    return fsync_path(dirname(dir), 1);
}

/* ---- reading ---------------------------------------------------------------------------- */

static int read_tensor(hid_t group, const char *path, const char *where, const model_tensor *t, void *out)
{
    hid_t dset = H5Dopen2(group, t->name, H5P_DEFAULT);
    if (dset < 0) FAIL(GEN_ERR_DATA, "%s: missing tensor %s/%s", path, where, t->name);
    hid_t space = H5Dget_space(dset);
    int ndim = H5Sget_simple_extent_ndims(space);
    hsize_t dims[8] = {0};
    if (ndim > 0 && ndim <= 8) H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    int same = ndim == t->ndim;
    for (int d = 0; same && d < ndim; d++) same = dims[d] == (hsize_t)t->shape[d];
    if (!same) {
        H5Dclose(dset);
        FAIL(GEN_ERR_DATA, "%s: tensor %s/%s has another shape than the model's", path, where, t->name);
    }
    hid_t type = t->kind == MODEL_COUNTER ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
    int ok = H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0;
    H5Dclose(dset);
    if (!ok) {
        h5par_error("cannot read tensor", t->name, __FILE__, __LINE__);
        FAIL(GEN_ERR_DATA, "%s: cannot read %s/%s (corrupted? %s)", path, where, t->name, gen_error_message());
    }
    return GEN_OK;
}

static int read_state(hid_t file, const char *path, train_state *st)
{
    hid_t state = H5Gopen2(file, "state", H5P_DEFAULT);
    if (state < 0) FAIL(GEN_ERR_DATA, "%s: not a genesis checkpoint (no /state)", path);
    int64_t version = 0;
    int ok = 1;
    struct { const char *name; hid_t type; void *out; } attrs[] = {
        {"format_version", H5T_NATIVE_INT64, &version}, {"lr", H5T_NATIVE_DOUBLE, &st->lr},
        {"best_loss", H5T_NATIVE_DOUBLE, &st->best_loss}, {"config_hash", H5T_NATIVE_UINT64, &st->config_hash},
        {state_names[0], H5T_NATIVE_INT64, &st->epoch}, {state_names[1], H5T_NATIVE_INT64, &st->step_in_epoch},
        {state_names[2], H5T_NATIVE_INT64, &st->global_step}, {state_names[3], H5T_NATIVE_INT64, &st->bad_epochs},
        {state_names[4], H5T_NATIVE_INT64, &st->optimizer_steps},
        {state_names[5], H5T_NATIVE_INT64, &st->optimizer_kind}};
    const char *missing = NULL;
    for (size_t i = 0; ok && i < sizeof attrs / sizeof attrs[0]; i++) {
        hid_t a = H5Aopen(state, attrs[i].name, H5P_DEFAULT);
        ok = a >= 0 && H5Aread(a, attrs[i].type, attrs[i].out) >= 0;
        if (!ok) missing = attrs[i].name;
        if (a >= 0) H5Aclose(a);
    }
    H5Gclose(state);
    if (!ok) FAIL(GEN_ERR_DATA, "%s: cannot read state attribute '%s'", path, missing);
    CHECK(version == CHECKPOINT_FORMAT_VERSION, GEN_ERR_DATA,
          "%s: checkpoint format version %lld; this genesis reads version %d", path, (long long)version,
          CHECKPOINT_FORMAT_VERSION);
    return GEN_OK;
}

static hid_t open_checked(const char *path)
{
    h5par_quiet();
    return H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
}

int checkpoint_read_state(const char *path, train_state *st)
{
    hid_t file = open_checked(path);
    if (file < 0) FAIL(GEN_ERR_DATA, "%s: not a readable HDF5 file (truncated or corrupted?)", path);
    int status = read_state(file, path, st);
    H5Fclose(file);
    return status;
}

int checkpoint_read(const char *path, model *m, optimizer *o, train_state *st)
{
    hid_t file = open_checked(path);
    if (file < 0) FAIL(GEN_ERR_DATA, "%s: not a readable HDF5 file (truncated or corrupted?)", path);
    train_state s;
    int status = read_state(file, path, &s);
    if (status == GEN_OK && s.optimizer_kind != o->cfg.kind)
        status = gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__,
                               "%s: written with another optimizer than the configured one", path);
    hid_t params = H5Gopen2(file, "params", H5P_DEFAULT), buffers = H5Gopen2(file, "buffers", H5P_DEFAULT);
    hid_t slots[2] = {-1, -1};
    for (int k = 0; k < o->nstate; k++) {
        char name[32];
        snprintf(name, sizeof name, "optim/%d", k);
        slots[k] = H5Gopen2(file, name, H5P_DEFAULT);
    }
    if (status == GEN_OK && (params < 0 || buffers < 0 || (o->nstate > 0 && slots[0] < 0) ||
                             (o->nstate > 1 && slots[1] < 0)))
        status = gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__, "%s: missing /params, /buffers or /optim", path);
    for (int i = 0; status == GEN_OK && i < model_tensor_count(m); i++) {
        model_tensor *t = model_tensor_at(m, i);
        if (t->kind != MODEL_PARAM) {
            status = read_tensor(buffers, path, "buffers", t, t->kind == MODEL_COUNTER ? (void *)t->counter
                                                                                       : (void *)t->data);
            continue;
        }
        status = read_tensor(params, path, "params", t, t->data);
        for (int k = 0; status == GEN_OK && k < o->nstate; k++)
            status = read_tensor(slots[k], path, k ? "optim/1" : "optim/0", t, o->state + (size_t)k * o->n + t->offset);
    }
    for (int k = 0; k < 2; k++)
        if (slots[k] >= 0) H5Gclose(slots[k]);
    if (buffers >= 0) H5Gclose(buffers);
    if (params >= 0) H5Gclose(params);
    H5Fclose(file);
    if (status == GEN_OK) {
        *st = s;
        o->step = (long)s.optimizer_steps;
    }
    return status;
}
