/* Validation (src/train/trainer.h): the model's loss on the fixed validation batches, beside two
 * baselines on the same batches and the split by corruption (README "The run folder").
 *
 * Per cube (V voxels, x the corrupted input, y the target, o the model's output):
 *   model MSE    sum (o - y)^2 / V
 *   identity MSE sum (x - y)^2 / V      (the corrupted input itself as the output)
 * and over every validation voxel of every rank, for the mean baseline, sum y and sum y^2. The
 * sums (double) are added up over the ranks in one all-reduce (MPI's reduction order is fixed for a
 * given rank count), then:
 *   identity = identity MSE summed / cubes
 *   mean     = sum y^2 / N - (sum y / N)^2, N = cubes * V: the MSE of the best constant output (the
 *              mean of all validation target voxels), i.e. their variance
 *   gain     = 1 - loss / identity (the share of the corruption's error the model removes)
 * The validation loss itself is computed as it always was (the mean over batches of the batch MSE,
 * averaged over the ranks), so early stopping and best.h5 are unchanged; with equal cube sizes it
 * equals the mean of the per-cube model MSEs up to rounding.
 *
 * GENESIS_VALIDATION_DUMP=PATH (tests, debugging): each rank r appends every validation batch to
 * PATH.r as raw native float32/uint32: x [b][V], y [b][V], o [b][V], then the corruption masks
 * (enum corrupt_kind bits) [b]. */
#include "trainer.h"

#include "genesis/collective.h"
#include "genesis/error.h"
#include "genesis/png.h"
#include "genesis/signals.h"
#include "genesis/world.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const breakdown_names[BREAKDOWN_COUNT] = {"in-painting", "out-painting", "non-linear",
                                                      "local shuffle"};
const char *const breakdown_keys[BREAKDOWN_COUNT] = {"inpaint", "outpaint", "nonlinear", "local"};
static const unsigned breakdown_masks[BREAKDOWN_COUNT] = {CORRUPT_INPAINT, CORRUPT_OUTPAINT, CORRUPT_NONLINEAR,
                                                          CORRUPT_LOCAL};

/* The sums of one validation pass, one all-reduce: totals, then (count, model, identity) per
 * corruption. */
enum { SUM_CUBES, SUM_MODEL, SUM_IDENTITY, SUM_Y, SUM_Y2, SUM_VOXELS, SUM_BREAKDOWN,
       SUM_COUNT = SUM_BREAKDOWN + 3 * BREAKDOWN_COUNT };

static double mse(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s / (double)n;
}

/* Adds one batch of b cubes of V voxels to sums[SUM_COUNT]. */
static void add_batch(double *sums, const float *x, const float *y, const float *o, const unsigned *masks,
                      int b, size_t V)
{
    for (int k = 0; k < b; k++) {
        const float *xk = x + (size_t)k * V, *yk = y + (size_t)k * V, *ok = o + (size_t)k * V;
        double model = mse(ok, yk, V), identity = mse(xk, yk, V);
        sums[SUM_CUBES] += 1, sums[SUM_MODEL] += model, sums[SUM_IDENTITY] += identity;
        for (size_t i = 0; i < V; i++) sums[SUM_Y] += yk[i], sums[SUM_Y2] += (double)yk[i] * yk[i];
        sums[SUM_VOXELS] += (double)V;
        for (int c = 0; c < BREAKDOWN_COUNT; c++) {
            if (!(masks[k] & breakdown_masks[c])) continue;
            double *at = sums + SUM_BREAKDOWN + 3 * c;
            at[0] += 1, at[1] += model, at[2] += identity;
        }
    }
}

static void finish(const double *sums, double loss, struct validation_result *r)
{
    r->loss = loss;
    r->identity = sums[SUM_CUBES] > 0 ? sums[SUM_IDENTITY] / sums[SUM_CUBES] : NAN;
    double n = sums[SUM_VOXELS], mean_y = n > 0 ? sums[SUM_Y] / n : NAN;
    r->mean = n > 0 ? sums[SUM_Y2] / n - mean_y * mean_y : NAN;
    r->gain = 1.0 - loss / r->identity;
    for (int c = 0; c < BREAKDOWN_COUNT; c++) {
        const double *at = sums + SUM_BREAKDOWN + 3 * c;
        r->count[c] = (int64_t)at[0];
        r->model[c] = at[0] > 0 ? at[1] / at[0] : NAN;
        r->identity_of[c] = at[0] > 0 ? at[2] / at[0] : NAN;
    }
}

static int dump_batch(FILE *dump, const char *path, const float *x, const float *y, const float *o,
                      const unsigned *masks, int b, size_t V)
{
    size_t n = (size_t)b * V;
    int ok = fwrite(x, sizeof *x, n, dump) == n && fwrite(y, sizeof *y, n, dump) == n &&
             fwrite(o, sizeof *o, n, dump) == n && fwrite(masks, sizeof *masks, (size_t)b, dump) == (size_t)b;
    CHECK(ok, GEN_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return GEN_OK;
}

/* The preview shows the first validation batch of rank 0 and of the next ranks, up to this many
 * samples in all (but always rank 0's whole batch). */
#define PREVIEW_SAMPLES 4

/* Collective (every rank calls it at the first validation batch of a preview epoch): ranks 0 .. k-1
 * send their b samples (input x, target y, output, index, corruption mask) to rank 0, which writes
 * RUN_DIR/preview.png of the k b samples in rank order. Each array is gathered on its own: rank r's
 * [b][...] block lands at sample r b of rank 0's [k b][...] array. *side: rank 0's status of the
 * picture. */
static int write_preview(struct trainer *t, const float *x, const float *y, const int64_t *index,
                         const unsigned *masks, int b, int *side)
{
    const model_config *mc = model_get_config(t->model);
    const size_t V = (size_t)mc->D * mc->H * mc->W, nf = (size_t)b * V;
    int senders = PREVIEW_SAMPLES / b;
    senders = senders < 1 ? 1 : senders > t->ranks ? t->ranks : senders;
    const int n = senders * b, root = t->rank == 0;
    float *px = root ? malloc(3 * sizeof(float) * V * (size_t)n) : NULL; /* x, y, output [n][V] */
    int64_t *pindex = root ? malloc(sizeof(int64_t) * (size_t)n) : NULL;
    unsigned *pmasks = root ? malloc(sizeof(unsigned) * (size_t)n) : NULL;
    int status = GEN_OK;
    /* every rank agrees on rank 0's buffers before the messages: a failed allocation must not leave
     * the senders waiting */
    int have = !root || (px && pindex && pmasks);
    if (!have)
        gen_error_set(GEN_ERR_NOMEM, __FILE__, __LINE__, "out of memory for the preview (%d samples)", n);
    CALL_GOTO(world_agree(have ? GEN_OK : GEN_ERR_NOMEM));
    float *py = root ? px + V * (size_t)n : NULL, *po = root ? py + V * (size_t)n : NULL;
    CALL_GOTO(world_gather_to_root(x, px, nf * sizeof(float), senders));
    CALL_GOTO(world_gather_to_root(y, py, nf * sizeof(float), senders));
    CALL_GOTO(world_gather_to_root(model_output(t->model), po, nf * sizeof(float), senders));
    CALL_GOTO(world_gather_to_root(index, pindex, (size_t)b * sizeof(int64_t), senders));
    CALL_GOTO(world_gather_to_root(masks, pmasks, (size_t)b * sizeof(unsigned), senders));
    if (root && *side == GEN_OK) {
        char path[CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/preview.png", t->dir);
        *side = preview_write_png(path, px, py, po, n, mc->D, mc->H, mc->W, pindex, pmasks);
    }
cleanup:
    free(px), free(pindex), free(pmasks);
    return status;
}

/* GENESIS_VALIDATION_DUMP: this rank's dump file (*dump NULL when the variable is unset). */
static int open_dump(const struct trainer *t, FILE **dump, char *path, size_t size)
{
    const char *dump_path = getenv("GENESIS_VALIDATION_DUMP");
    *dump = NULL;
    if (!dump_path || !dump_path[0]) return GEN_OK;
    snprintf(path, size, "%s.%d", dump_path, t->rank);
    *dump = fopen(path, "ab");
    CHECK(*dump != NULL, GEN_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return GEN_OK;
}

/* This rank's pass over the validation batches (collective: the loader and batch norm are):
 * *local_loss = mean of the batch losses, sums += the batches; *side = the status of what only
 * this rank does (the preview, the dump), agreed on afterwards. */
static int validate_batches(struct trainer *t, int preview, FILE *dump, const char *dump_path,
                            double *local_loss, double *sums, int *side, struct validation_result *r)
{
    const model_config *mc = model_get_config(t->model);
    size_t V = (size_t)mc->D * mc->H * mc->W;
    int64_t batches = loader_validation_batches(t->loader);
    int b = (int)loader_local_batch(t->loader);
    double sum = 0, batch_start = profile_now();
    for (int64_t v = 0; v < batches; v++) {
        const float *x, *y;
        const int64_t *index;
        const unsigned *masks;
        double l = 0;
        CALL(loader_validation(t->loader, v, &x, &y, &index, &masks));
        CALL(model_forward(t->model, &l, x, y, b));
        sum += l;
        add_batch(sums, x, y, model_output(t->model), masks, b, V);
        if (dump && *side == GEN_OK) *side = dump_batch(dump, dump_path, x, y, model_output(t->model), masks, b, V);
        if (v == 0 && preview) CALL(write_preview(t, x, y, index, masks, b, side));
        r->batches_done = v + 1;
        int checkpoint_due; /* unused here: validation ends with the epoch's checkpoint decisions */
        CALL(stop_policy_agree(t, &checkpoint_due, &r->stop_request));
        if (r->stop_request != STOP_NONE) return GEN_OK;
        double now = profile_now();
        if (now - batch_start > t->longest_stretch) t->longest_stretch = now - batch_start;
        batch_start = now;
    }
    *local_loss = batches ? sum / (double)batches : NAN;
    return GEN_OK;
}

int trainer_validate(struct trainer *t, int preview, struct validation_result *r)
{
    double t0 = profile_now(), loss = 0, sums[SUM_COUNT] = {0};
    char dump_path[CONFIG_PATH_MAX + 32];
    FILE *dump = NULL;
    int opened = world_agree(open_dump(t, &dump, dump_path, sizeof dump_path));
    if (opened != GEN_OK && dump) fclose(dump); /* another rank could not open its own */
    CALL(opened);
    r->stop_request = STOP_NONE, r->batches_done = 0;
    int side = GEN_OK, status = validate_batches(t, preview, dump, dump_path, &loss, sums, &side, r);
    if (dump && fclose(dump) != 0 && side == GEN_OK)
        side = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot write %s: %s", dump_path, strerror(errno));
    CALL(status);
    r->seconds = profile_now() - t0;
    if (r->stop_request != STOP_NONE) { /* every rank agreed to stop after the same batch */
        trainer_phase_stop(t, PHASE_VALIDATION, t0);
        return world_agree_shared(side);
    }
    CALL(world_sum_doubles(&loss, 1)); /* the loss exactly as before: mean over batches, then ranks */
    loss /= t->ranks;
    CALL(world_sum_doubles(sums, SUM_COUNT));
    finish(sums, loss, r);
    trainer_phase_stop(t, PHASE_VALIDATION, t0);
    return world_agree_shared(side);
}
