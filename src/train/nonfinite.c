/* Non-finite numbers in training (README "Non-finite numbers"): the starting weights, every step's
 * input, loss and gradients, and the validation loss are checked; the verdict of a step is folded
 * into the all-reduce of its loss, so every rank learns it at the same step. [train] nonfinite =
 * stop ends the run with GEN_ERR_NONFINITE (exit status 65) before anything of the bad step is
 * written; skip drops the step's update on every rank (the batch-norm running statistics its
 * forward touched are put back), and CONFIG_NONFINITE_SKIP_LIMIT skips in a row stop anyway. A step
 * whose gradients are all exactly zero while its loss is not (a saturated, dead model: what a far too
 * high learning rate leaves when the numbers stay finite) stops the run the same way, in both modes. */
#include "trainer.h"

#include "genesis/collective.h"
#include "genesis/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 when any of the n floats is NaN or infinite. */
static int any_nonfinite(const float *v, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= !isfinite(v[i]);
    return bad;
}

/* One pass over the gradients: *nonfinite = 1 when any is NaN/Inf, *zero = 1 when every one is 0. */
static void gradient_state(const float *g, size_t n, int *nonfinite, int *zero)
{
    int bad = 0, nonzero = 0;
    for (size_t i = 0; i < n; i++) bad |= !isfinite(g[i]), nonzero |= g[i] != 0.0f;
    *nonfinite = bad, *zero = !nonzero;
}

/* Fills `where` with what the run folder keeps after a stop: the last good checkpoint, or none. */
static void kept_checkpoint(const struct trainer *t, char *where, size_t size)
{
    char latest[CONFIG_PATH_MAX + 16];
    snprintf(latest, sizeof latest, "%s/latest", t->ckpt_dir);
    if (access(latest, F_OK) == 0)
        snprintf(where, size, "the last good checkpoint stays %s", latest);
    else
        snprintf(where, size, "no checkpoint had been written yet");
}

/* Every floating value of the model's state: parameters and batch-norm running statistics. */
static int model_state_nonfinite(struct trainer *t)
{
    int bad = any_nonfinite(model_params(t->model), model_num_params(t->model));
    for (int k = 0; k < model_tensor_count(t->model); k++) {
        const model_tensor *x = model_tensor_at(t->model, k);
        if (x->kind == MODEL_BUFFER) bad |= any_nonfinite(x->data, x->numel);
    }
    return bad;
}

int nonfinite_check_weights(struct trainer *t, const char *source)
{
    double bad = model_state_nonfinite(t);
    CALL(world_sum_doubles(&bad, 1));
    if (bad > 0)
        FAIL_ALL(GEN_ERR_NONFINITE,
                 "the starting weights (%s) hold non-finite values (NaN/Inf): nothing was trained; use other "
                 "weights (a checkpoint written before the run diverged, or genesis export of a good one)",
                 source);
    return GEN_OK;
}

int nonfinite_begin_step(struct trainer *t)
{
    if (t->cfg->train.nonfinite != NONFINITE_SKIP) return GEN_OK;
    size_t at = 0;
    for (int k = 0; k < model_tensor_count(t->model); k++) {
        const model_tensor *x = model_tensor_at(t->model, k);
        if (x->kind != MODEL_BUFFER) continue;
        if (at + x->numel > t->buffers_saved_floats) {
            size_t floats = at + x->numel;
            float *grown = realloc(t->buffers_saved, floats * sizeof *grown);
            CHECK_ALLOC(grown, floats * sizeof *grown);
            t->buffers_saved = grown, t->buffers_saved_floats = floats;
        }
        memcpy(t->buffers_saved + at, x->data, x->numel * sizeof *x->data);
        at += x->numel;
    }
    return GEN_OK;
}

/* Puts back the batch-norm running statistics saved by nonfinite_begin_step. */
static void restore_buffers(struct trainer *t)
{
    size_t at = 0;
    for (int k = 0; k < model_tensor_count(t->model); k++) {
        model_tensor *x = model_tensor_at(t->model, k);
        if (x->kind != MODEL_BUFFER) continue;
        memcpy(x->data, t->buffers_saved + at, x->numel * sizeof *x->data);
        at += x->numel;
    }
}

/* The message of a bad step: what was not finite (counts of ranks), the likely cause and what to do. */
static void describe_step(const struct trainer *t, const double *verdict, char *out, size_t size)
{
    const struct config_train *c = &t->cfg->train;
    int64_t step = t->st.global_step + 1;
    int used = snprintf(out, size, "step %lld (epoch %lld): ", (long long)step, (long long)t->st.epoch);
    if (verdict[1] > 0)
        used += snprintf(out + used, size - (size_t)used,
                         "the batch's cubes hold non-finite voxels (NaN/Inf) on %.0f of %d rank(s); likely "
                         "cause: non-finite input: the cubes file %s is damaged or was not written by genesis "
                         "prep (prep refuses such scans): write it again",
                         verdict[1], t->ranks, c->data);
    else if (t->steps_this_run == 0)
        used += snprintf(out + used, size - (size_t)used,
                         "loss %g (not finite on %.0f of %d rank(s)), gradients not finite on %.0f rank(s), at "
                         "the first step from the starting weights; likely cause: the weights (%s) or a learning "
                         "rate of %g", verdict[0] / t->ranks, verdict[2], t->ranks, verdict[3],
                         c->init_from[0] ? c->init_from : "random or resumed", t->st.lr);
    else
        used += snprintf(out + used, size - (size_t)used,
                         "loss %g (not finite on %.0f of %d rank(s)), gradients not finite on %.0f rank(s); likely "
                         "cause: the learning rate is too high (lr %g at this step; [train] learning_rate = %g, "
                         "weight_decay = %g): lower learning_rate or add warmup_steps",
                         verdict[0] / t->ranks, verdict[2], t->ranks, verdict[3], t->st.lr, c->learning_rate,
                         c->weight_decay);
    (void)used;
}

int nonfinite_end_step(struct trainer *t, const float *x, const float *y, int batch, double *loss, int *skip)
{
    const size_t voxels = (size_t)batch * t->data.rows * t->data.cols * t->data.deps;
    /* [loss, ranks with a non-finite input, ... loss, ... gradient, ranks whose (all-reduced)
     * gradients are all exactly 0]: one all-reduce, so every rank holds the same verdict; the loss is
     * summed as before (the sums are element-wise). */
    int grad_nonfinite, grad_zero;
    gradient_state(model_grads(t->model), model_num_params(t->model), &grad_nonfinite, &grad_zero);
    double verdict[5] = {*loss, any_nonfinite(x, voxels) || any_nonfinite(y, voxels), !isfinite(*loss),
                         grad_nonfinite, grad_zero};
    CALL(world_sum_doubles(verdict, 5));
    *loss = verdict[0] / t->ranks;
    *skip = verdict[1] + verdict[2] + verdict[3] > 0;
    if (!*skip && verdict[4] == t->ranks && *loss > 0) {
        /* Finite but dead: a loss and not one non-zero gradient means the sigmoid output has
         * saturated (exactly 0 or 1 in float32 everywhere), which a healthy model never does; no
         * later step can change it. Stopped before this step's update, as a non-finite step is. */
        char kept[CONFIG_PATH_MAX + 96];
        kept_checkpoint(t, kept, sizeof kept);
        FAIL_ALL(GEN_ERR_NONFINITE, "training stopped at step %lld (epoch %lld): the run diverged: the loss is %g "
                 "but every gradient is exactly 0: the model's output has saturated and it cannot learn any "
                 "more; likely cause: the learning rate is too high (lr %g at this step; [train] learning_rate "
                 "= %g): lower learning_rate or add warmup_steps; %s",
                 (long long)(t->st.global_step + 1), (long long)t->st.epoch, *loss, t->st.lr,
                 t->cfg->train.learning_rate, kept);
    }
    if (!*skip) {
        t->skipped_in_a_row = 0;
        return GEN_OK;
    }
    char what[2 * CONFIG_PATH_MAX + 1024], kept[CONFIG_PATH_MAX + 96];
    describe_step(t, verdict, what, sizeof what);
    kept_checkpoint(t, kept, sizeof kept);
    if (t->cfg->train.nonfinite != NONFINITE_SKIP)
        FAIL_ALL(GEN_ERR_NONFINITE, "training stopped at %s; %s (nothing of this step was written; [train] "
                 "nonfinite = skip would drop such steps)",
                 what, kept);
    t->skipped_in_a_row++, t->skipped_steps++, t->skipped_in_epoch++;
    restore_buffers(t);
    if (t->skipped_in_a_row >= CONFIG_NONFINITE_SKIP_LIMIT)
        FAIL_ALL(GEN_ERR_NONFINITE, "training stopped: %d steps in a row skipped (nonfinite = skip), the last at "
                 "%s; %s", CONFIG_NONFINITE_SKIP_LIMIT, what, kept);
    if (t->rank == 0) warn_run(t, "skipped %s (%lld skipped so far)", what, (long long)t->skipped_steps);
    return GEN_OK;
}

int nonfinite_check_validation(struct trainer *t, double loss)
{
    if (isfinite(loss)) return GEN_OK;
    char kept[CONFIG_PATH_MAX + 96];
    kept_checkpoint(t, kept, sizeof kept);
    FAIL_ALL(GEN_ERR_NONFINITE,
             "training stopped: the validation loss of epoch %lld (after step %lld) is not finite (%g); likely "
             "cause: the weights diverged (learning rate too high: lr %g) or the validation cubes of %s hold "
             "NaN/Inf voxels; %s, best.h5 is not replaced",
             (long long)t->st.epoch, (long long)t->st.global_step, loss, t->st.lr, t->cfg->train.data, kept);
}
