/* Checkpoints (include/genesis/checkpoint.h). */
#include "genesis/checkpoint.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "io/h5file.h"
#include "genesis/world.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
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

static int write_state(hid_t state, const train_state *st)
{
    int64_t version = CHECKPOINT_FORMAT_VERSION;
    train_state copy = *st;
    CALL(h5file_write_attr(state, "format_version", H5T_NATIVE_INT64, H5T_NATIVE_INT64, &version));
    for (int i = 0; i < 6; i++)
        CALL(h5file_write_attr(state, state_names[i], H5T_NATIVE_INT64, H5T_NATIVE_INT64,
                               state_field(&copy, i)));
    CALL(h5file_write_attr(state, "lr", H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, &st->lr));
    CALL(h5file_write_attr(state, "best_loss", H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, &st->best_loss));
    CALL(h5file_write_attr(state, "best_identity_loss", H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, &st->best_identity));
    CALL(h5file_write_attr(state, "config_hash", H5T_NATIVE_UINT64, H5T_NATIVE_UINT64, &st->config_hash));
    return GEN_OK;
}

static int write_contents(hid_t file, const char *path, model *m, const optimizer *o,
                          const train_state *st, const char *config_text)
{
    int status = GEN_OK;
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
    int slots_ok = (o->nstate < 1 || slots[0] >= 0) && (o->nstate < 2 || slots[1] >= 0);
    int groups_ok = params >= 0 && buffers >= 0 && optim >= 0 && state >= 0 && slots_ok;
    H5_CHECK_GOTO(groups_ok, "cannot create groups in", path);
    for (int i = 0; i < model_tensor_count(m); i++) {
        model_tensor *t = model_tensor_at(m, i);
        if (t->kind != MODEL_PARAM) {
            CALL_GOTO(h5file_write_tensor(buffers, path, t, t->data, H5FILE_CHECKSUMMED));
            continue;
        }
        CALL_GOTO(h5file_write_tensor(params, path, t, t->data, H5FILE_CHECKSUMMED));
        for (int k = 0; k < o->nstate; k++)
            CALL_GOTO(h5file_write_tensor(slots[k], path, t, o->state + (size_t)k * o->n + t->offset,
                                          H5FILE_CHECKSUMMED));
    }
    CALL_GOTO(write_state(state, st));
    CALL_GOTO(h5file_write_attr_text(file, "config", config_text));
cleanup:
    H5_CLOSE_ALL(slots[0], slots[1], state, optim, buffers, params);
    return status;
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

/* The whole checkpoint as an HDF5 file image in memory (HDF5's core driver, nothing on disk):
 * *image (malloc'ed, caller frees) of *size bytes. */
static int build_image(const char *path, model *m, const optimizer *o, const train_state *st,
                       const char *config_text, unsigned char **image, size_t *size)
{
    int status = GEN_OK;
    hid_t file = -1;
    *image = NULL;
    h5par_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5_CHECK_GOTO(fapl >= 0 && H5Pset_fapl_core(fapl, 16u << 20, 0) >= 0,
                  "cannot set up the in-memory file for", path);
    CALL_GOTO(h5file_create(path, fapl, "cannot create in-memory checkpoint", &file));
    CALL_GOTO(write_contents(file, path, m, o, st, config_text));
    ssize_t bytes = H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 ? H5Fget_file_image(file, NULL, 0) : -1;
    if (bytes > 0) *image = malloc((size_t)bytes);
    CHECK_GOTO(*image && H5Fget_file_image(file, *image, (size_t)bytes) == bytes, GEN_ERR_NOMEM,
               "%s: cannot build the checkpoint image (%zd bytes)", path, bytes);
    *size = (size_t)bytes;
cleanup:
    H5_CLOSE_ALL(file, fapl);
    if (status != GEN_OK) free(*image), *image = NULL;
    return status;
}

/* The checkpoint is built in memory, then written with plain POSIX calls: a full disk or an I/O
 * error is then a clean error that HDF5 never sees, and nothing but the temporary file is touched
 * until the rename. */
int checkpoint_write(const char *path, model *m, const optimizer *o, const train_state *st,
                     const char *config_text)
{
    int status = GEN_OK, fd = -1, created = 0;
    unsigned char *image = NULL;
    size_t size = 0;
    char tmp[4200];
    CALL_GOTO(atomic_file_tmp_name(tmp, sizeof tmp, path));
    CALL_GOTO(build_image(path, m, o, st, config_text, &image, &size));
    /* tests can crash step checkpoints half-way through the disk write: "checkpoint.write.step" */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *site = !strncmp(base, "step-", 5) ? "checkpoint.write.step" : "checkpoint.write.other";
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK_GOTO(fd >= 0, GEN_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    created = 1;
    CALL_GOTO(write_all(fd, tmp, image, size, site));
    CHECK_GOTO(fsync(fd) == 0, GEN_ERR_IO, "cannot sync %s: %s (disk full?)", tmp, strerror(errno));
    int closed = close(fd);
    fd = -1;
    CHECK_GOTO(closed == 0, GEN_ERR_IO, "cannot close %s: %s (disk full?)", tmp, strerror(errno));
    CALL_GOTO(atomic_file_commit(tmp, path)); /* on failure the previous checkpoint at path is untouched */
cleanup:
    if (fd >= 0) close(fd);
    if (status != GEN_OK && created) unlink(tmp); /* gone already when the rename succeeded */
    free(image);
    return status;
}

/* ---- reading ---------------------------------------------------------------------------- */

static int read_tensor(hid_t group, const char *path, const char *where, const model_tensor *t, void *out)
{
    struct h5file_tensor_found found;
    switch (h5file_read_tensor(group, t, out, &found)) {
    case H5FILE_TENSOR_READ: return GEN_OK;
    case H5FILE_TENSOR_MISSING: FAIL(GEN_ERR_DATA, "%s: missing tensor %s/%s", path, where, t->name);
    case H5FILE_TENSOR_SHAPE:
        FAIL(GEN_ERR_DATA, "%s: tensor %s/%s has another shape than the model's", path, where, t->name);
    case H5FILE_TENSOR_UNREADABLE: break;
    }
    FAIL(GEN_ERR_DATA, "%s: cannot read %s/%s (corrupted? %s)", path, where, t->name, found.reason);
}

static int read_state(hid_t file, const char *path, train_state *st)
{
    int status = GEN_OK;
    hid_t state = H5Gopen2(file, "state", H5P_DEFAULT);
    CHECK_GOTO(state >= 0, GEN_ERR_DATA, "%s: not a genesis checkpoint (no /state)", path);
    int64_t version = 0;
    struct { const char *name; hid_t type; void *out; } attrs[] = {
        {"format_version", H5T_NATIVE_INT64, &version}, {"lr", H5T_NATIVE_DOUBLE, &st->lr},
        {"best_loss", H5T_NATIVE_DOUBLE, &st->best_loss}, {"config_hash", H5T_NATIVE_UINT64, &st->config_hash},
        {state_names[0], H5T_NATIVE_INT64, &st->epoch}, {state_names[1], H5T_NATIVE_INT64, &st->step_in_epoch},
        {state_names[2], H5T_NATIVE_INT64, &st->global_step}, {state_names[3], H5T_NATIVE_INT64, &st->bad_epochs},
        {state_names[4], H5T_NATIVE_INT64, &st->optimizer_steps},
        {state_names[5], H5T_NATIVE_INT64, &st->optimizer_kind}};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        CHECK_GOTO(h5file_read_attr(state, attrs[i].name, attrs[i].type, attrs[i].out) == GEN_OK, GEN_ERR_DATA,
                   "%s: cannot read state attribute '%s'", path, attrs[i].name);
    /* optional: checkpoints written before it have no identity baseline */
    st->best_identity = NAN;
    if (H5Aexists(state, "best_identity_loss") > 0)
        CHECK_GOTO(h5file_read_attr(state, "best_identity_loss", H5T_NATIVE_DOUBLE, &st->best_identity) == GEN_OK,
                   GEN_ERR_DATA, "%s: cannot read state attribute 'best_identity_loss'", path);
    CHECK_GOTO(version == CHECKPOINT_FORMAT_VERSION, GEN_ERR_DATA,
               "%s: checkpoint format version %lld; this genesis reads version %d", path, (long long)version,
               CHECKPOINT_FORMAT_VERSION);
cleanup:
    if (state >= 0) H5Gclose(state);
    return status;
}

#define OPEN_HINT " (truncated or corrupted?)"

int checkpoint_read_state(const char *path, train_state *st)
{
    hid_t file;
    CALL(h5file_open_read(path, OPEN_HINT, &file));
    int status = read_state(file, path, st);
    H5Fclose(file);
    return status;
}

int checkpoint_has_state(const char *path)
{
    hid_t file;
    if (h5file_open_read(path, "", &file) != GEN_OK) {
        gen_error_clear();
        return 0;
    }
    int yes = h5file_has(file, "state");
    H5Fclose(file);
    return yes;
}

int checkpoint_read(const char *path, model *m, optimizer *o, train_state *st)
{
    int status = GEN_OK;
    hid_t file = -1, params = -1, buffers = -1, slots[2] = {-1, -1};
    CALL_GOTO(h5file_open_read(path, OPEN_HINT, &file));
    train_state s;
    CALL_GOTO(read_state(file, path, &s));
    CHECK_GOTO(s.optimizer_kind == o->cfg.kind, GEN_ERR_DATA,
               "%s: written with another optimizer than the configured one", path);
    params = H5Gopen2(file, "params", H5P_DEFAULT), buffers = H5Gopen2(file, "buffers", H5P_DEFAULT);
    for (int k = 0; k < o->nstate; k++) {
        char name[32];
        snprintf(name, sizeof name, "optim/%d", k);
        slots[k] = H5Gopen2(file, name, H5P_DEFAULT);
    }
    int slots_ok = (o->nstate < 1 || slots[0] >= 0) && (o->nstate < 2 || slots[1] >= 0);
    CHECK_GOTO(params >= 0 && buffers >= 0 && slots_ok, GEN_ERR_DATA, "%s: missing /params, /buffers or /optim",
               path);
    for (int i = 0; i < model_tensor_count(m); i++) {
        model_tensor *t = model_tensor_at(m, i);
        if (t->kind != MODEL_PARAM) {
            void *out = t->kind == MODEL_COUNTER ? (void *)t->counter : (void *)t->data;
            CALL_GOTO(read_tensor(buffers, path, "buffers", t, out));
            continue;
        }
        CALL_GOTO(read_tensor(params, path, "params", t, t->data));
        for (int k = 0; k < o->nstate; k++)
            CALL_GOTO(read_tensor(slots[k], path, k ? "optim/1" : "optim/0", t,
                                  o->state + (size_t)k * o->n + t->offset));
    }
    *st = s;
    o->step = (long)s.optimizer_steps;
cleanup:
    H5_CLOSE_ALL(slots[0], slots[1], buffers, params, file);
    return status;
}
