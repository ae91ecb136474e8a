/* genesis train: the epoch/step loop (include/genesis/train.h). Reads as the algorithm: next batch,
 * zero grad, forward, backward (gradient buckets all-reduced as they complete), optimizer step;
 * validation, StepLR, early stopping and checkpoints at their boundaries. Validation with its
 * baselines (validation.c), the run folder, the checkpoints and the stop policy live beside it
 * (src/train/trainer.h). */
#include "trainer.h"

#include "genesis/collective.h"
#include "genesis/cores.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/nn.h"
#include "genesis/plot.h"
#include "genesis/signals.h"
#include "genesis/weights.h"
#include "genesis/world.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static const char *const phase_names[PHASE_COUNT] = {"data (wait + read)", "forward", "backward",
                                                     "all-reduce wait", "optimizer", "validation",
                                                     "checkpoint"};

void trainer_phase_stop(struct trainer *t, enum phase p, double start)
{
    profile_stop(&t->prof, t->phase_event[p], start, 0);
}

/* ---- one step, one validation ------------------------------------------------------------ */

static int on_grads_ready(void *ctx, size_t first_final)
{
    return gradsync_ready((gradsync *)ctx, first_final);
}

/* One step; *skipped: its update was dropped on every rank (non-finite numbers, nonfinite = skip). */
static int train_step(struct trainer *t, double *loss, int *skipped, double *seconds_data, double *seconds_comm)
{
    const float *x, *y;
    const int64_t *index;
    double t0 = profile_now();
    CALL(loader_next(t->loader, &x, &y, &index));
    trainer_phase_stop(t, PHASE_DATA, t0);
    *seconds_data = profile_now() - t0;
    int b = (int)loader_local_batch(t->loader);
    CALL(nonfinite_begin_step(t));
    t0 = profile_now();
    model_zero_grad(t->model);
    CALL(model_forward(t->model, loss, x, y, b));
    trainer_phase_stop(t, PHASE_FORWARD, t0);
    t0 = profile_now();
    double waited = t->sync.wait_seconds;
    CALL(model_backward(t->model));
    trainer_phase_stop(t, PHASE_BACKWARD, t0);
    t0 = profile_now();
    CALL(gradsync_finish(&t->sync));
    trainer_phase_stop(t, PHASE_COMM, t0);
    *seconds_comm = t->sync.wait_seconds - waited;
    CALL(nonfinite_end_step(t, x, y, b, loss, skipped));
    t->steps_this_run++;
    if (*skipped) return GEN_OK;
    t0 = profile_now();
    CALL(optim_step(&t->optim, model_params(t->model), model_grads(t->model), t->st.lr));
    trainer_phase_stop(t, PHASE_OPTIM, t0);
    t->st.optimizer_steps = t->optim.step;
    return GEN_OK;
}

/* Rank 0: RUN_DIR/curves.png redrawn from metrics.csv (flushed first), beside preview.png. A failure
 * is a warning: the pictures never stop training. */
static void refresh_curves(struct trainer *t)
{
    char metrics[CONFIG_PATH_MAX + 32], png[CONFIG_PATH_MAX + 32], name[256];
    metrics_flush(t);
    snprintf(metrics, sizeof metrics, "%s/metrics.csv", t->dir);
    snprintf(png, sizeof png, "%s/curves.png", t->dir);
    if (curves_write_png(metrics, png, curves_run_name(t->dir, name, sizeof name), NULL) != GEN_OK) {
        warn_run(t, "curves.png not refreshed (training goes on): %s", gen_error_message());
        gen_error_clear();
    }
}

/* Debug: all ranks must hold bitwise identical parameters. */
static int check_replicas(struct trainer *t)
{
    const unsigned char *p = (const unsigned char *)model_params(t->model);
    size_t bytes = model_num_params(t->model) * sizeof(float);
    unsigned long h = 1469598103934665603ul;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ul;
    int same = 0;
    CALL(world_same_u64(h, &same));
    if (!same)
        FAIL_ALL(GEN_ERR_INTERNAL, "replicas diverged at step %lld: parameter checksums differ across ranks",
                 (long long)t->st.global_step);
    log_run(t, "train: replicas identical at step %lld (checksum %016lx)", (long long)t->st.global_step, h);
    return GEN_OK;
}

/* ---- set-up and tear-down ------------------------------------------------------------------ */

/* More threads than the cores this rank may run on (its CPU binding) is the classic silent 10x
 * slowdown: say so, on every rank where it happens. */
static void warn_if_oversubscribed(struct trainer *t)
{
    long threads = t->cfg->train.threads;
    int cores = process_allowed_cores();
    if (cores > 0 && threads > cores)
        warn_run(t, "train.threads = %ld, but this rank may run on only %d core(s) (its CPU binding): the "
                 "threads will share them, which is much slower. Give each rank its cores (mpirun "
                 "--map-by slot:PE=%ld --bind-to core, or srun -c %ld --cpu-bind=cores) or lower "
                 "train.threads", threads, cores, threads, threads);
}

_Static_assert((int)LR_SCALE_NONE == (int)LR_SCALING_NONE && (int)LR_SCALE_LINEAR == (int)LR_SCALING_LINEAR &&
                   (int)LR_SCALE_SQRT == (int)LR_SCALING_SQRT,
               "config.h's lr_scaling choices follow model.h's enum lr_scaling");

static int optimizer_kind(int config_optimizer)
{
    return config_optimizer == OPTIMIZER_ADAM ? OPTIM_ADAM : config_optimizer == OPTIMIZER_LARS ? OPTIM_LARS
                                                                                                 : OPTIM_SGD;
}

/* The schedule; a warm-up longer than the whole run (max_epochs) is an error, one longer
 * than this invocation (max_steps) a warning: the run stops while still warming up, and a resumed
 * run with more steps continues the warm-up. */
static int create_schedule(struct trainer *t)
{
    const struct config_train *c = &t->cfg->train;
    CALL(lr_schedule_init(&t->schedule, c->learning_rate, c->lr_scaling, c->batch, c->reference_batch,
                          c->warmup_steps, (int)c->lr_step_epochs, c->lr_gamma));
    char where[CONFIG_PATH_MAX + 32];
    const long steps_per_epoch = (long)loader_steps_per_epoch(t->loader);
    const double all_epochs = (double)c->max_epochs * (double)steps_per_epoch;
    CONFIG_ORIGIN(t->cfg, train.warmup_steps, where, sizeof where);
    if ((double)c->warmup_steps > all_epochs)
        FAIL_ALL(GEN_ERR_USAGE,
                 "%s: [train] warmup_steps = %ld is longer than the whole run (max_epochs %ld x %ld steps per "
                 "epoch): the learning rate would never reach %g",
                 where, c->warmup_steps, c->max_epochs, steps_per_epoch, t->schedule.base_lr);
    if (c->max_steps > 0 && c->warmup_steps > c->max_steps && t->rank == 0)
        warn_run(t, "%s: [train] warmup_steps = %ld is longer than this run (max_steps = %ld): it stops while "
                 "the learning rate is still warming up (a resumed run continues the warm-up)",
                 where, c->warmup_steps, c->max_steps);
    return GEN_OK;
}

static int create_model_and_optimizer(struct trainer *t)
{
    const struct config_train *c = &t->cfg->train;
    model_config mc = {.width = (int)t->cfg->model.width, .batch = (int)loader_local_batch(t->loader),
                       .D = t->data.rows, .H = t->data.cols, .W = t->data.deps, .seed = (uint64_t)c->seed,
                       .tile_budget_bytes = (size_t)c->tile_kib * 1024, .threads = (int)c->threads};
    CALL(world_agree_shared(model_create(&t->model, &mc)));
    optim_config oc = {.kind = optimizer_kind(c->optimizer), .lr = c->learning_rate,
                       .momentum = c->momentum, .weight_decay = c->weight_decay,
                       .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .trust_coefficient = c->trust_coefficient};
    CALL(world_agree_shared(optim_create(&t->optim, &oc, model_num_params(t->model))));
    if (oc.kind == OPTIM_LARS) CALL(world_agree_shared(optim_set_model_layers(&t->optim, t->model)));
    CALL(gradsync_init(&t->sync, model_grads(t->model), model_num_params(t->model),
                       (size_t)c->bucket_kib * 1024 / sizeof(float), c->overlap));
    model_set_grad_ready_hook(t->model, on_grads_ready, &t->sync);
    if (c->batchnorm == BATCHNORM_SYNC && t->ranks > 1) {
        nn_reduce_hook hook = {gradsync_bn_allreduce, &t->sync};
        model_set_bn_hook(t->model, &hook);
    }
    t->st = (train_state){.lr = c->learning_rate, .best_loss = HUGE_VAL, .best_identity = NAN,
                          .optimizer_kind = oc.kind, .config_hash = config_hash(t->cfg)};
    return GEN_OK;
}

static int setup(struct trainer *t)
{
    const struct config_train *c = &t->cfg->train;
    for (int p = 0; p < PHASE_COUNT; p++) t->phase_event[p] = profile_event(&t->prof, phase_names[p]);
    warn_if_oversubscribed(t);
    size_t len = 0;
    FILE *mem = open_memstream(&t->config_text, &len);
    CHECK(mem != NULL, GEN_ERR_NOMEM, "out of memory");
    config_print(t->cfg, mem);
    fclose(mem);
    CALL(run_folder_prepare(t));
    CALL(world_agree_shared(cubes_open(&t->data, c->data, CUBES_ALL_RANKS)));
    CALL(gen_error_collective(cubes_check_trainable(&t->data, c->data)));
    loader_options lo = {.batch = c->batch, .seed = (uint64_t)c->seed, .window_steps = c->window_steps,
                         .cache = c->cache_shard, .corrupt = t->cfg->corrupt};
    CALL(gen_error_collective(config_corrupt_check(&lo.corrupt)));
    CALL(gen_error_collective(config_train_check(t->cfg)));
    CALL(trainer_check_memory(t));
    CALL(loader_create(&t->loader, &t->data, &lo));
    CALL(create_model_and_optimizer(t));
    CALL(create_schedule(t));
    stop_policy_start(t);
    int resumed = 0;
    CALL(trainer_resume(t, &resumed));
    if (!resumed && c->init_from[0]) CALL(init_from_weights(t->model, c->init_from, t->rank));
    if (resumed || c->init_from[0])
        CALL(nonfinite_check_weights(t, resumed ? "the resumed checkpoint" : c->init_from));
    t->st.config_hash = config_hash(t->cfg);
    CALL(run_folder_open_files(t, resumed));
    log_run(t, "train: %s: %lld training cubes, %lld steps per epoch of %ld cubes (%lld per rank on %d rank(s)), "
               "%lld validation batches; width %ld, %zu parameters, %s BN, %ld thread(s) per rank "
               "(conv engine: %s)",
            c->data, (long long)loader_steps_per_epoch(t->loader) * c->batch,
            (long long)loader_steps_per_epoch(t->loader), c->batch, (long long)loader_local_batch(t->loader),
            t->ranks, (long long)loader_validation_batches(t->loader), t->cfg->model.width,
            model_num_params(t->model), c->batchnorm == BATCHNORM_SYNC ? "synchronised" : "per-rank",
            c->threads, conv_engine_name());
    char schedule[512];
    lr_schedule_describe(&t->schedule, schedule, sizeof schedule);
    log_run(t, "train: %s; optimizer %s", schedule, optim_kind_name(t->optim.cfg.kind));
    run_folder_heartbeat(t);
    return GEN_OK;
}

static void teardown(struct trainer *t)
{
    run_folder_close_files(t);
    gradsync_free(&t->sync);
    optim_free(&t->optim);
    model_free(t->model);
    loader_free(t->loader);
    cubes_close(&t->data);
    free(t->config_text);
    free(t->buffers_saved);
}

/* ---- the run ------------------------------------------------------------------------------- */

static void print_profile(struct trainer *t, double total)
{
    if (t->rank != 0) return;
    printf("\n---- genesis train profile (rank 0, %d rank(s) x %ld thread(s), conv engine %s) "
           "----\n", t->ranks, t->cfg->train.threads, conv_engine_name());
    printf("%-22s %10s %8s %7s\n", "phase", "seconds", "calls", "share");
    for (int p = 0; p < PHASE_COUNT; p++) {
        const profile_event_stats *e = profile_get(&t->prof, t->phase_event[p]);
        printf("%-22s %10.3f %8ld %6.1f%%\n", phase_names[p], e->seconds, e->calls, 100.0 * e->seconds / total);
    }
    printf("%-22s %10.3f %8ld %6.1f%%  (inside forward and backward)\n", "BN statistics all-reduce",
           t->sync.bn_seconds, t->sync.bn_calls, 100.0 * t->sync.bn_seconds / total);
    printf("\n%-26s %9s %9s %9s %9s %7s\n", "layer", "fwd s", "fwd GF/s", "bwd s", "bwd GF/s", "calls");
    for (int i = 0; i < model_layer_count(t->model); i++) {
        const model_layer_profile *lp = model_layer_profile_at(t->model, i);
        printf("%-26s %9.3f %9.1f %9.3f %9.1f %7ld\n", lp->name, lp->fwd_seconds,
               lp->fwd_seconds > 0 ? lp->fwd_flops / lp->fwd_seconds / 1e9 : 0.0, lp->bwd_seconds,
               lp->bwd_seconds > 0 ? lp->bwd_flops / lp->bwd_seconds / 1e9 : 0.0, lp->calls);
    }
    printf("total %.3f s\n", total);
}

/* Peak resident memory of the largest rank, MB. */
static int peak_rss_mb(double *most)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *most = (double)ru.ru_maxrss / 1024.0;
    return world_max_doubles(most, 1);
}

/* The progress line of the last `window` steps, every log_every steps and at the end of an epoch. */
struct progress_window {
    double epoch_start, start, loss, comm_seconds;
    int64_t first_step, steps, skipped; /* skipped: steps whose loss is not in `loss` */
};

static void log_progress(struct trainer *t, struct progress_window *w, int64_t steps)
{
    const struct config_train *c = &t->cfg->train;
    double now = profile_now();
    double per_step = (now - w->epoch_start) / (double)(t->st.step_in_epoch - w->first_step);
    log_run(t, "train: epoch %lld step %lld/%lld loss %.6f lr %g | %.3f samples/s (%dx%ld) | epoch ETA %.0f s | "
               "comm %.1f%%",
            (long long)t->st.epoch, (long long)t->st.step_in_epoch, (long long)steps,
            w->steps > w->skipped ? w->loss / (double)(w->steps - w->skipped) : NAN, t->st.lr,
            (double)(c->batch * w->steps) / (now - w->start),
            t->ranks, c->threads,
            per_step * (double)(steps - t->st.step_in_epoch), 100.0 * w->comm_seconds / (now - w->start));
    w->start = now, w->loss = 0, w->comm_seconds = 0, w->steps = 0, w->skipped = 0;
    metrics_flush(t);
}

/* train.log's line of the per-corruption split: "validation by corruption: in-painting 12 cubes loss L
 * identity I | ..." */
static void log_breakdown(struct trainer *t, const struct validation_result *v)
{
    char line[768];
    int used = snprintf(line, sizeof line, "train: validation by corruption:");
    for (int c = 0; c < BREAKDOWN_COUNT && used > 0 && (size_t)used < sizeof line; c++)
        used += snprintf(line + used, sizeof line - (size_t)used, "%s %s %lld cubes loss %.6f identity %.6f",
                         c ? " |" : "", breakdown_names[c], (long long)v->count[c], v->model[c], v->identity_of[c]);
    log_run(t, "%s", line);
}

/* The stop rule (README "Long runs"): after a stop request the run needs at most one training step
 * or one validation batch, then a checkpoint; warns once when deadline_margin_minutes is shorter
 * than the longest of each measured so far. */
static void check_stop_margin(struct trainer *t)
{
    double margin = 60 * t->cfg->train.deadline_margin_minutes, need = t->longest_stretch + t->longest_checkpoint;
    if (t->rank != 0 || t->margin_warned || t->longest_checkpoint == 0 || need <= margin) return;
    t->margin_warned = 1;
    double advice = ceil(1.5 * need); /* seconds, with room for slower steps to come */
    warn_run(t, "[train] deadline_margin_minutes = %g (%.0f s) is shorter than what a stop needs here: the "
                "longest step or validation batch (%.1f s) and a checkpoint (%.1f s); send the job's signal at "
                "least %.0f s before its time limit (sbatch --signal=B:USR1@%.0f) and set deadline_margin_minutes "
                ">= %.2g",
             t->cfg->train.deadline_margin_minutes, margin, t->longest_stretch, t->longest_checkpoint, advice,
             advice, advice / 60);
}

/* End of an epoch: validation (and the preview), early-stopping bookkeeping, best.h5. A stop request
 * during the validation ends it at once: *stop_request is set and the epoch is left as it was (its
 * steps done, its validation still to run), so the checkpoint resumes into the validation. */
static int end_epoch(struct trainer *t, double epoch_start, int *stop, int *stop_request)
{
    const struct config_train *c = &t->cfg->train;
    int preview = c->preview_epochs > 0 && (t->st.epoch + 1) % c->preview_epochs == 0;
    struct validation_result v;
    CALL(trainer_validate(t, preview, &v));
    *stop_request = v.stop_request;
    if (v.stop_request != STOP_NONE) {
        log_run(t, "train: stop requested during the validation of epoch %lld (after %lld of %lld batches, %.1f s): "
                   "it runs again on resume", (long long)t->st.epoch, (long long)v.batches_done,
                (long long)loader_validation_batches(t->loader), v.seconds);
        return GEN_OK;
    }
    CALL(nonfinite_check_validation(t, v.loss));
    char skipped[96] = "";
    if (t->skipped_in_epoch > 0)
        snprintf(skipped, sizeof skipped, ", %lld step(s) skipped (non-finite)", (long long)t->skipped_in_epoch);
    t->skipped_in_epoch = 0;
    int improved = v.loss < t->st.best_loss;
    if (improved) t->st.best_loss = v.loss, t->st.best_identity = v.identity, t->st.bad_epochs = 0;
    else t->st.bad_epochs++;
    log_run(t, "train: epoch %lld done: validation loss %.6f (identity %.6f, mean %.6f, gain %.3f)%s (best %.6f), "
               "%.1f s (validation %.1f s)%s", (long long)t->st.epoch, v.loss, v.identity, v.mean, v.gain,
            improved ? " (improved)" : "", t->st.best_loss, profile_now() - epoch_start, v.seconds, skipped);
    log_breakdown(t, &v);
    metrics_validation_row(t, &v);
    run_folder_heartbeat(t);
    if (preview && t->rank == 0) refresh_curves(t);
    t->st.epoch++, t->st.step_in_epoch = 0;
    if (improved) CALL(trainer_save_checkpoint(t, 1));
    check_stop_margin(t);
    if (t->st.bad_epochs >= c->patience) {
        log_run(t, "train: stopping early: %lld epochs without a better validation loss",
                (long long)t->st.bad_epochs);
        *stop = 1;
    }
    return GEN_OK;
}

static int run(struct trainer *t)
{
    const struct config_train *c = &t->cfg->train;
    CALL(setup(t));
    const int64_t steps = loader_steps_per_epoch(t->loader);
    const double start = profile_now();
    t->last_checkpoint = start;
    int stop = 0;
    while (!stop && t->st.epoch < c->max_epochs) {
        t->st.lr = lr_schedule_at(&t->schedule, (long)t->st.epoch, (long)t->st.global_step);
        CALL(loader_begin_epoch(t->loader, t->st.epoch, t->st.step_in_epoch));
        double epoch_start = profile_now();
        struct progress_window window = {.epoch_start = epoch_start, .start = epoch_start,
                                         .first_step = t->st.step_in_epoch};
        while (t->st.step_in_epoch < steps) {
            double step_start = profile_now(), loss = 0, data_s = 0, comm_s = 0;
            int skipped = 0;
            t->st.lr = lr_schedule_at(&t->schedule, (long)t->st.epoch, (long)t->st.global_step);
            CALL(train_step(t, &loss, &skipped, &data_s, &comm_s));
            t->st.step_in_epoch++;
            t->st.global_step++;
            double step_seconds = profile_now() - step_start;
            if (step_seconds > t->longest_stretch) t->longest_stretch = step_seconds;
            metrics_step_row(t, skipped ? NAN : loss, step_seconds, data_s, comm_s);
            run_folder_heartbeat(t);
            if (!skipped) window.loss += loss;
            window.comm_seconds += comm_s, window.steps++, window.skipped += skipped;
            int done_steps = c->max_steps > 0 && t->st.global_step >= c->max_steps;
            if (t->st.global_step % c->log_every == 0 || t->st.step_in_epoch == steps || done_steps)
                log_progress(t, &window, steps);
            if (c->check_replicas > 0 && t->st.global_step % c->check_replicas == 0) CALL(check_replicas(t));
            int checkpoint_now, stop_request;
            CALL(stop_policy_agree(t, &checkpoint_now, &stop_request));
            if (stop_request != STOP_NONE) return stop_now(t, stop_request);
            if (checkpoint_now && !done_steps) {
                CALL(trainer_save_checkpoint(t, 0));
                check_stop_margin(t);
            }
            if (done_steps) {
                stop = 1;
                break;
            }
        }
        if (t->st.step_in_epoch < steps) break; /* stopped mid-epoch */
        int stop_request = STOP_NONE;
        CALL(end_epoch(t, epoch_start, &stop, &stop_request));
        if (stop_request != STOP_NONE) return stop_now(t, stop_request);
    }
    CALL(trainer_save_checkpoint(t, 0));
    double total = profile_now() - start, rss = 0;
    CALL(peak_rss_mb(&rss));
    char best[64], skipped[96] = "";
    if (t->st.best_loss < HUGE_VAL) snprintf(best, sizeof best, "best validation loss %.6f", t->st.best_loss);
    else snprintf(best, sizeof best, "no validation yet");
    if (t->skipped_steps > 0)
        snprintf(skipped, sizeof skipped, ", %lld step(s) skipped (non-finite numbers, nonfinite = skip)",
                 (long long)t->skipped_steps);
    log_run(t, "train: done: %lld steps%s, epoch %lld, %s, %.1f s, all-reduce wait %.2f s, "
               "BN all-reduce %.2f s, peak RSS per rank %.0f MB; resume with the same command (resume = auto "
               "continues from %s/latest)",
            (long long)t->st.global_step, skipped, (long long)t->st.epoch, best, total, t->sync.wait_seconds,
            t->sync.bn_seconds, rss, t->ckpt_dir);
    if (t->opt->profile) print_profile(t, total);
    return GEN_OK;
}

int train_run(const genesis_config *cfg, const struct train_options *opt)
{
    struct trainer t = {.cfg = cfg, .opt = opt, .rank = world_rank(), .ranks = world_size()};
    int status = run(&t);
    if (status != GEN_OK && status != GEN_CONTINUE) run_folder_log_error(&t, gen_error_message());
    teardown(&t);
    if (status != GEN_OK && status != GEN_CONTINUE) run_folder_remove_if_empty(&t);
    return status;
}
