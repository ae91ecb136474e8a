/* genesis train: the epoch/step loop (include/genesis/train.h). Reads as the algorithm: next batch,
 * zero grad, forward, backward (gradient buckets all-reduced as they complete), optimizer step;
 * validation, StepLR, early stopping and checkpoints at their boundaries. */
#include "genesis/train.h"

#include "genesis/checkpoint.h"
#include "genesis/cubes.h"
#include "genesis/error.h"
#include "genesis/gradsync.h"
#include "genesis/loader.h"
#include "genesis/log.h"
#include "genesis/model.h"
#include "genesis/png.h"
#include "genesis/signals.h"
#include "genesis/weights.h"
#include "genesis/world.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum phase { PHASE_DATA, PHASE_FORWARD, PHASE_BACKWARD, PHASE_COMM, PHASE_OPTIM, PHASE_VALIDATION,
             PHASE_CHECKPOINT, PHASE_COUNT };
static const char *const phase_names[PHASE_COUNT] = {"data (wait + read)", "forward", "backward",
                                                     "all-reduce wait", "optimizer", "validation",
                                                     "checkpoint"};

struct trainer {
    const genesis_config *cfg;
    const struct train_options *opt;
    int rank, ranks;
    MPI_Comm comm;
    cubes_file data;
    loader *loader;
    model *model;
    optimizer optim;
    gradsync sync;
    train_state st;
    char dir[CONFIG_PATH_MAX], ckpt_dir[CONFIG_PATH_MAX + 8];
    char *config_text;
    FILE *metrics, *logfile; /* rank 0 */
    double phase[PHASE_COUNT];
    long phase_calls[PHASE_COUNT];
    double last_checkpoint; /* MPI_Wtime */
    double deadline;        /* MPI_Wtime by which to have stopped (margin included); 0 = none */
};

/* Progress and information: stdout on rank 0, and the run's train.log. */
static void say(struct trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct trainer *t, const char *fmt, ...)
{
    if (t->rank != 0) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_info("%s", line);
    if (t->logfile) {
        fprintf(t->logfile, "%s\n", line);
        fflush(t->logfile);
    }
}

static void charge(struct trainer *t, enum phase p, double since)
{
    t->phase[p] += MPI_Wtime() - since;
    t->phase_calls[p]++;
}

/* ---- the run folder ---------------------------------------------------------------------- */

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        FAIL(GEN_ERR_IO, "cannot create folder %s: %s", path, strerror(errno));
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode), GEN_ERR_IO, "%s is not a folder", path);
    CHECK(access(path, W_OK) == 0, GEN_ERR_IO, "folder %s is not writable", path);
    return GEN_OK;
}

static int prepare_folder(struct trainer *t)
{
    snprintf(t->dir, sizeof t->dir, "%s", t->cfg->train.output);
    snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/ckpt", t->dir);
    int status = GEN_OK;
    if (t->rank == 0) {
        status = make_dir(t->dir);
        if (status == GEN_OK) status = make_dir(t->ckpt_dir);
    }
    return world_agree_shared(status);
}

static int open_run_files(struct trainer *t, int resumed)
{
    int status = GEN_OK;
    if (t->rank == 0) {
        char path[CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/config.ini", t->dir);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(t->config_text, f);
            status = fclose(f) == 0 ? GEN_OK : gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot write %s", path);
        } else status = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
        snprintf(path, sizeof path, "%s/metrics.csv", t->dir);
        int fresh = !resumed || access(path, F_OK) != 0;
        if (status == GEN_OK) t->metrics = fopen(path, fresh ? "w" : "a");
        if (status == GEN_OK && !t->metrics)
            status = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
        if (status == GEN_OK && fresh)
            fprintf(t->metrics, "step,epoch,lr,train_loss,validation_loss,samples_per_s,data_s,compute_s,comm_s\n");
        snprintf(path, sizeof path, "%s/train.log", t->dir);
        if (status == GEN_OK) t->logfile = fopen(path, resumed ? "a" : "w");
    }
    return world_agree_shared(status);
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The step checkpoints in the folder, sorted oldest first (names are zero-padded step numbers). */
static int list_checkpoints(const char *dir, char ***names, int *count)
{
    *names = NULL, *count = 0;
    DIR *d = opendir(dir);
    if (!d) return GEN_OK;
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "step-", 5) || len < 8 || strcmp(e->d_name + len - 3, ".h5")) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(*names, sizeof *grown * (size_t)cap);
            if (!grown) break;
            *names = grown;
        }
        (*names)[(*count)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*count) qsort(*names, (size_t)*count, sizeof **names, compare_names);
    return GEN_OK;
}

static void free_names(char **names, int count)
{
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

/* Rank 0 writes ckpt/step-N.h5 (and best.h5 when asked), points `latest` at it, keeps the newest
 * K; every rank learns the outcome. */
static int save_checkpoint(struct trainer *t, int best_only)
{
    double t0 = MPI_Wtime();
    int status = GEN_OK;
    if (t->rank == 0) {
        char path[CONFIG_PATH_MAX + 128], name[64];
        if (best_only) {
            snprintf(path, sizeof path, "%s/best.h5", t->ckpt_dir);
            status = checkpoint_write(path, t->model, &t->optim, &t->st, t->config_text);
        } else {
            snprintf(name, sizeof name, "step-%08lld.h5", (long long)t->st.global_step);
            snprintf(path, sizeof path, "%s/%s", t->ckpt_dir, name);
            status = checkpoint_write(path, t->model, &t->optim, &t->st, t->config_text);
            char latest[CONFIG_PATH_MAX + 64], tmp[CONFIG_PATH_MAX + 80];
            snprintf(latest, sizeof latest, "%s/latest", t->ckpt_dir);
            snprintf(tmp, sizeof tmp, "%s.tmp", latest);
            FILE *f = status == GEN_OK ? fopen(tmp, "w") : NULL;
            if (status == GEN_OK && (!f || fprintf(f, "%s\n", name) < 0 || fflush(f) || fsync(fileno(f)) ||
                                     fclose(f) || rename(tmp, latest))) {
                status = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot update %s: %s", latest, strerror(errno));
                if (f) fclose(f);
            }
            char **names;
            int count;
            if (status == GEN_OK && list_checkpoints(t->ckpt_dir, &names, &count) == GEN_OK) {
                for (int i = 0; i + t->cfg->train.keep_checkpoints < count; i++) {
                    snprintf(path, sizeof path, "%s/%s", t->ckpt_dir, names[i]);
                    unlink(path);
                }
                free_names(names, count);
            }
            if (status == GEN_OK) say(t, "train: checkpoint %s/%s", t->ckpt_dir, name);
        }
    }
    status = world_agree_shared(status);
    t->last_checkpoint = MPI_Wtime();
    charge(t, PHASE_CHECKPOINT, t0);
    return status;
}

/* resume = auto: continue from ckpt/latest, or from an older checkpoint when the newest cannot be
 * read (truncated, corrupted), with a warning. Returns in *resumed whether a checkpoint was used. */
static int try_resume(struct trainer *t, int *resumed)
{
    *resumed = 0;
    if (t->cfg->train.resume != RESUME_AUTO) return GEN_OK;
    /* rank 0 lists the candidates, newest first: `latest`, then the step files, newest first */
    enum { MAX_CANDIDATES = 16 };
    char candidates[MAX_CANDIDATES][CONFIG_PATH_MAX + 64];
    int count = 0;
    if (t->rank == 0) {
        char path[CONFIG_PATH_MAX + 64], name[256] = "";
        snprintf(path, sizeof path, "%s/latest", t->ckpt_dir);
        FILE *f = fopen(path, "r");
        if (f && fgets(name, sizeof name, f)) {
            name[strcspn(name, "\n")] = '\0';
            snprintf(candidates[count++], sizeof candidates[0], "%s/%s", t->ckpt_dir, name);
        }
        if (f) fclose(f);
        char **names;
        int n;
        list_checkpoints(t->ckpt_dir, &names, &n);
        for (int i = n - 1; i >= 0 && count < MAX_CANDIDATES; i--) {
            if (!strcmp(names[i], name)) continue;
            snprintf(candidates[count++], sizeof candidates[0], "%s/%s", t->ckpt_dir, names[i]);
        }
        free_names(names, n);
    }
    MPI_CALL(MPI_Bcast(&count, 1, MPI_INT, 0, t->comm));
    MPI_CALL(MPI_Bcast(candidates, (int)sizeof candidates, MPI_CHAR, 0, t->comm));
    for (int i = 0; i < count; i++) {
        int status = world_agree_shared(checkpoint_read(candidates[i], t->model, &t->optim, &t->st));
        if (status == GEN_OK) {
            if (t->st.config_hash != config_hash(t->cfg))
                say(t, "train: note: the configuration differs from the checkpoint's (resuming anyway)");
            say(t, "train: resuming from %s: epoch %lld, step %lld of the epoch, %lld steps done",
                candidates[i], (long long)t->st.epoch, (long long)t->st.step_in_epoch,
                (long long)t->st.global_step);
            *resumed = 1;
            return GEN_OK;
        }
        if (t->rank == 0) log_warn("cannot resume from %s: %s; trying an older checkpoint", candidates[i], gen_error_message());
        gen_error_clear();
    }
    if (count > 0) FAIL_ALL(GEN_ERR_DATA, "no readable checkpoint in %s (set resume = never to start over)", t->ckpt_dir);
    return GEN_OK;
}

/* ---- one step, one validation ------------------------------------------------------------ */

static int on_grads_ready(void *ctx, size_t first_final)
{
    return gradsync_ready((gradsync *)ctx, first_final);
}

static int global_mean(struct trainer *t, double *value)
{
    double local = *value;
    MPI_CALL(MPI_Allreduce(&local, value, 1, MPI_DOUBLE, MPI_SUM, t->comm));
    *value /= t->ranks;
    return GEN_OK;
}

static int train_step(struct trainer *t, double *loss, double *seconds_data, double *seconds_comm)
{
    const float *x, *y;
    const int64_t *index;
    double t0 = MPI_Wtime();
    CALL(loader_next(t->loader, &x, &y, &index));
    charge(t, PHASE_DATA, t0);
    *seconds_data = MPI_Wtime() - t0;
    int b = (int)loader_local_batch(t->loader);
    t0 = MPI_Wtime();
    model_zero_grad(t->model);
    CALL(model_forward(t->model, loss, x, y, b));
    charge(t, PHASE_FORWARD, t0);
    t0 = MPI_Wtime();
    double waited = t->sync.wait_seconds;
    CALL(model_backward(t->model));
    charge(t, PHASE_BACKWARD, t0);
    t0 = MPI_Wtime();
    CALL(gradsync_finish(&t->sync));
    charge(t, PHASE_COMM, t0);
    *seconds_comm = t->sync.wait_seconds - waited;
    t0 = MPI_Wtime();
    CALL(optim_step(&t->optim, model_params(t->model), model_grads(t->model), t->st.lr));
    charge(t, PHASE_OPTIM, t0);
    t->st.optimizer_steps = t->optim.step;
    return global_mean(t, loss);
}

static int write_preview(struct trainer *t, const float *x, const float *y, const int64_t *index,
                         const unsigned *masks, int b)
{
    const model_config *mc = model_get_config(t->model);
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/preview.png", t->dir);
    return preview_write_png(path, x, y, model_output(t->model), b, mc->D, mc->H, mc->W, index, masks);
}

static int validate(struct trainer *t, int preview, double *loss)
{
    double t0 = MPI_Wtime(), sum = 0;
    int64_t batches = loader_validation_batches(t->loader);
    int b = (int)loader_local_batch(t->loader), status = GEN_OK;
    for (int64_t v = 0; v < batches; v++) {
        const float *x, *y;
        const int64_t *index;
        double l = 0;
        unsigned masks[b];
        CALL(loader_validation(t->loader, v, &x, &y, &index, masks));
        CALL(model_forward(t->model, &l, x, y, b));
        sum += l;
        if (v == 0 && preview && t->rank == 0) status = write_preview(t, x, y, index, masks, b);
    }
    *loss = batches ? sum / (double)batches : NAN;
    CALL(global_mean(t, loss));
    charge(t, PHASE_VALIDATION, t0);
    return world_agree_shared(status);
}

/* Debug: all ranks must hold bitwise identical parameters. */
static int check_replicas(struct trainer *t)
{
    const unsigned char *p = (const unsigned char *)model_params(t->model);
    size_t bytes = model_num_params(t->model) * sizeof(float);
    unsigned long h = 1469598103934665603ul, lo, hi;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ul;
    MPI_CALL(MPI_Allreduce(&h, &lo, 1, MPI_UNSIGNED_LONG, MPI_MIN, t->comm));
    MPI_CALL(MPI_Allreduce(&h, &hi, 1, MPI_UNSIGNED_LONG, MPI_MAX, t->comm));
    if (lo != hi) FAIL_ALL(GEN_ERR_INTERNAL, "replicas diverged at step %lld: parameter checksums differ across ranks",
                           (long long)t->st.global_step);
    say(t, "train: replicas identical at step %lld (checksum %016lx)", (long long)t->st.global_step, h);
    return GEN_OK;
}

/* ---- the run ------------------------------------------------------------------------------- */

static void print_profile(struct trainer *t, double total)
{
    if (t->rank != 0) return;
    printf("\n---- genesis train profile (rank 0, %d rank(s)) ----\n", t->ranks);
    printf("%-22s %10s %8s %7s\n", "phase", "seconds", "calls", "share");
    for (int p = 0; p < PHASE_COUNT; p++)
        printf("%-22s %10.3f %8ld %6.1f%%\n", phase_names[p], t->phase[p], t->phase_calls[p],
               100.0 * t->phase[p] / total);
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

static int setup(struct trainer *t)
{
    const struct config_train *c = &t->cfg->train;
    if (getenv("OPENBLAS_NUM_THREADS") == NULL) openblas_set_num_threads((int)c->threads);
    size_t len = 0;
    FILE *mem = open_memstream(&t->config_text, &len);
    CHECK(mem != NULL, GEN_ERR_NOMEM, "out of memory");
    config_print(t->cfg, mem);
    fclose(mem);
    CALL(prepare_folder(t));
    CALL(world_agree_shared(cubes_open(&t->data, c->data, CUBES_ALL_RANKS)));
    loader_options lo = {.batch = c->batch, .seed = (uint64_t)c->seed, .window_steps = c->window_steps,
                         .cache = c->cache_shard, .corrupt = t->cfg->corrupt};
    CALL(gen_error_collective(config_corrupt_check(&lo.corrupt)));
    CALL(loader_create(&t->loader, &t->data, &lo, t->comm));
    model_config mc = {.width = (int)t->cfg->model.width, .batch = (int)loader_local_batch(t->loader),
                       .D = t->data.rows, .H = t->data.cols, .W = t->data.deps, .seed = (uint64_t)c->seed,
                       .tile_budget_bytes = (size_t)c->tile_kib * 1024};
    CALL(world_agree_shared(model_create(&t->model, &mc)));
    optim_config oc = {.kind = c->optimizer == OPTIMIZER_ADAM ? OPTIM_ADAM : OPTIM_SGD, .lr = c->learning_rate,
                       .momentum = c->momentum, .weight_decay = c->weight_decay,
                       .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    CALL(world_agree_shared(optim_create(&t->optim, &oc, model_num_params(t->model))));
    CALL(gradsync_init(&t->sync, model_grads(t->model), model_num_params(t->model),
                       (size_t)c->bucket_kib * 1024 / sizeof(float), c->overlap, t->comm));
    model_set_grad_ready_hook(t->model, on_grads_ready, &t->sync);
    if (c->batchnorm == BATCHNORM_SYNC && t->ranks > 1) {
        nn_reduce_hook hook = {gradsync_bn_allreduce, &t->sync};
        model_set_bn_hook(t->model, &hook);
    }
    t->st = (train_state){.lr = c->learning_rate, .best_loss = HUGE_VAL,
                          .optimizer_kind = oc.kind, .config_hash = config_hash(t->cfg)};
    /* deadlines: the configured budget, and Slurm's end time, each minus the margin */
    double now = MPI_Wtime(), margin = 60 * c->deadline_margin_minutes;
    if (c->deadline_minutes > 0) t->deadline = now + 60 * c->deadline_minutes - margin;
    const char *end = getenv("SLURM_JOB_END_TIME");
    char *tail = NULL;
    double end_time = end ? strtod(end, &tail) : 0;
    if (end && tail != end && end_time > 0) {
        double slurm = now + (end_time - (double)time(NULL)) - margin;
        if (t->deadline == 0 || slurm < t->deadline) t->deadline = slurm;
    }
    signals_install();
    int resumed = 0;
    CALL(try_resume(t, &resumed));
    if (!resumed && c->init_from[0]) CALL(init_from_weights(t->model, c->init_from, t->rank));
    t->st.config_hash = config_hash(t->cfg);
    CALL(open_run_files(t, resumed));
    say(t, "train: %s: %lld training cubes, %lld steps per epoch of %ld cubes (%lld per rank on %d rank(s)), "
           "%lld validation batches; width %ld, %zu parameters, %s BN",
        c->data, (long long)loader_steps_per_epoch(t->loader) * c->batch, (long long)loader_steps_per_epoch(t->loader),
        c->batch, (long long)loader_local_batch(t->loader), t->ranks, (long long)loader_validation_batches(t->loader),
        t->cfg->model.width, model_num_params(t->model), c->batchnorm == BATCHNORM_SYNC ? "synchronised" : "per-rank");
    return GEN_OK;
}

static void teardown(struct trainer *t)
{
    if (t->metrics) fclose(t->metrics);
    if (t->logfile) fclose(t->logfile);
    gradsync_free(&t->sync);
    optim_free(&t->optim);
    model_free(t->model);
    loader_free(t->loader);
    cubes_close(&t->data);
    free(t->config_text);
}

/* A stop request agreed at a step boundary: checkpoint, then exit 75 (continue me) or 0. */
static int stop_now(struct trainer *t, int request)
{
    const char *why = signals_first_name()[0] ? signals_first_name() : "the deadline";
    CALL(save_checkpoint(t, 0));
    if (request == STOP_FINISH) {
        say(t, "train: stopped by %s after step %lld; checkpoint written; run the same command to continue",
            why, (long long)t->st.global_step);
        return GEN_OK;
    }
    say(t, "train: %s: checkpoint written after step %lld; exiting with status %d (continue me)", why,
        (long long)t->st.global_step, GEN_EXIT_CONTINUE);
    return GEN_CONTINUE;
}

/* Peak resident memory of the largest rank, MB. */
static double peak_rss_mb(struct trainer *t)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mine = (double)ru.ru_maxrss / 1024.0, most = mine;
    MPI_Allreduce(&mine, &most, 1, MPI_DOUBLE, MPI_MAX, t->comm);
    return most;
}

static int run(struct trainer *t)
{
    const struct config_train *c = &t->cfg->train;
    CALL(setup(t));
    const int64_t steps = loader_steps_per_epoch(t->loader);
    const double start = MPI_Wtime();
    t->last_checkpoint = start;
    int stop = 0;
    while (!stop && t->st.epoch < c->max_epochs) {
        t->st.lr = steplr_lr(c->learning_rate, (int)c->lr_step_epochs, c->lr_gamma, (long)t->st.epoch);
        CALL(loader_begin_epoch(t->loader, t->st.epoch, t->st.step_in_epoch));
        double epoch_start = MPI_Wtime(), window_start = epoch_start, window_loss = 0, window_comm = 0;
        int64_t first_step = t->st.step_in_epoch, window_steps = 0;
        while (t->st.step_in_epoch < steps) {
            double step_start = MPI_Wtime(), loss = 0, data_s = 0, comm_s = 0;
            CALL(train_step(t, &loss, &data_s, &comm_s));
            t->st.step_in_epoch++;
            t->st.global_step++;
            double step_s = MPI_Wtime() - step_start;
            window_loss += loss, window_comm += comm_s, window_steps++;
            if (t->rank == 0)
                fprintf(t->metrics, "%lld,%lld,%.9g,%.9g,,%.4f,%.4f,%.4f,%.4f\n", (long long)t->st.global_step,
                        (long long)t->st.epoch, t->st.lr, loss, (double)c->batch / step_s, data_s,
                        step_s - data_s - comm_s, comm_s);
            int done_steps = c->max_steps > 0 && t->st.global_step >= c->max_steps;
            if (t->st.global_step % c->log_every == 0 || t->st.step_in_epoch == steps || done_steps) {
                double now = MPI_Wtime(), per_step = (now - epoch_start) / (double)(t->st.step_in_epoch - first_step);
                say(t, "train: epoch %lld step %lld/%lld loss %.6f lr %g | %.3f samples/s | epoch ETA %.0f s | comm %.1f%%",
                    (long long)t->st.epoch, (long long)t->st.step_in_epoch, (long long)steps,
                    window_loss / (double)window_steps, t->st.lr,
                    (double)(c->batch * window_steps) / (now - window_start),
                    per_step * (double)(steps - t->st.step_in_epoch), 100.0 * window_comm / (now - window_start));
                window_start = now, window_loss = 0, window_comm = 0, window_steps = 0;
                if (t->metrics) fflush(t->metrics);
            }
            if (c->check_replicas > 0 && t->st.global_step % c->check_replicas == 0) CALL(check_replicas(t));
            /* The step boundary: checkpoints by steps or minutes (rank 0's clock decides), stop
             * requests from signals on any rank or from the deadline (rank 0's clock). */
            int local[2] = {0, signals_pending()}, agreed[2];
            if (t->rank == 0) {
                local[0] = (c->checkpoint_steps > 0 && t->st.global_step % c->checkpoint_steps == 0) ||
                           (c->checkpoint_minutes > 0 && MPI_Wtime() - t->last_checkpoint > 60 * c->checkpoint_minutes);
                if (t->deadline > 0 && MPI_Wtime() >= t->deadline && local[1] < STOP_CONTINUE) local[1] = STOP_CONTINUE;
            }
            MPI_CALL(MPI_Allreduce(local, agreed, 2, MPI_INT, MPI_MAX, t->comm));
            if (agreed[1] != STOP_NONE) return stop_now(t, agreed[1]);
            if (agreed[0] && !done_steps) CALL(save_checkpoint(t, 0));
            if (done_steps) {
                stop = 1;
                break;
            }
        }
        if (t->st.step_in_epoch < steps) break; /* stopped mid-epoch */
        int preview = c->preview_epochs > 0 && (t->st.epoch + 1) % c->preview_epochs == 0;
        double val_loss;
        CALL(validate(t, preview, &val_loss));
        int improved = val_loss < t->st.best_loss;
        if (improved) t->st.best_loss = val_loss, t->st.bad_epochs = 0;
        else t->st.bad_epochs++;
        say(t, "train: epoch %lld done: validation loss %.6f%s (best %.6f), %.1f s", (long long)t->st.epoch, val_loss,
            improved ? " (improved)" : "", t->st.best_loss, MPI_Wtime() - epoch_start);
        if (t->rank == 0) {
            fprintf(t->metrics, "%lld,%lld,%.9g,,%.9g,,,,\n", (long long)t->st.global_step, (long long)t->st.epoch,
                    t->st.lr, val_loss);
            fflush(t->metrics);
        }
        t->st.epoch++, t->st.step_in_epoch = 0;
        if (improved) CALL(save_checkpoint(t, 1));
        if (t->st.bad_epochs >= c->patience) {
            say(t, "train: stopping early: %lld epochs without a better validation loss", (long long)t->st.bad_epochs);
            stop = 1;
        }
    }
    CALL(save_checkpoint(t, 0));
    double total = MPI_Wtime() - start, rss = peak_rss_mb(t);
    say(t, "train: done: %lld steps, epoch %lld, best validation loss %.6f, %.1f s, all-reduce wait %.2f s, "
           "BN all-reduce %.2f s, peak RSS per rank %.0f MB; resume with the same command (resume = auto "
           "continues from %s/latest)",
        (long long)t->st.global_step, (long long)t->st.epoch, t->st.best_loss, total, t->sync.wait_seconds,
        t->sync.bn_seconds, rss,
        t->ckpt_dir);
    if (t->opt->profile) print_profile(t, total);
    return GEN_OK;
}

int train_run(const genesis_config *cfg, const struct train_options *opt)
{
    struct trainer t = {.cfg = cfg, .opt = opt, .comm = MPI_COMM_WORLD};
    MPI_Comm_rank(t.comm, &t.rank);
    MPI_Comm_size(t.comm, &t.ranks);
    int status = run(&t);
    teardown(&t);
    return status;
}
