/* The training data loader (include/genesis/loader.h). */
#include "genesis/loader.h"

#include "genesis/batch.h"
#include "genesis/error.h"
#include "genesis/rng.h"
#include "genesis/world.h"

#include <stdlib.h>
#include <string.h>

struct loader {
    cubes_file *file;
    loader_options opt;
    MPI_Comm comm;
    int rank, ranks;
    int64_t b;                 /* local batch */
    size_t cube;               /* floats per cube */
    int64_t *train, n_train;   /* file indices of the training cubes */
    int64_t *perm;             /* [n_train] this epoch's order (file indices) */
    int64_t epoch, step;       /* the step whose batch is being made (or is ready) */
    int64_t steps;             /* per epoch */
    /* cubes of steps [window_first, window_first + window_count), this rank's slices */
    float *window;
    int64_t *window_index;
    int64_t window_first, window_count;
    float *cache;              /* cache mode: [n_train] cubes by training position */
    int64_t *cache_pos;        /* file index -> training position (cache mode) */
    /* two batch buffers: the current one and the one being made */
    float *inputs[2], *targets[2];
    int64_t *indices[2];
    const float **cube_ptrs;
    int current;               /* buffer of the step being made */
    int pending;               /* a worker job is running */
    struct batch_worker *worker;
    /* validation: this rank's cubes of every validation batch */
    int64_t val_batches;
    float *val_cubes;
    int64_t *val_index;
    struct corrupt_workspace *val_ws;
    double wait_seconds, read_seconds;
};

int64_t loader_steps_per_epoch(const loader *l) { return l->steps; }
int64_t loader_validation_batches(const loader *l) { return l->val_batches; }
int64_t loader_local_batch(const loader *l) { return l->b; }
double loader_wait_seconds(const loader *l) { return l->wait_seconds; }
double loader_read_seconds(const loader *l) { return l->read_seconds; }

static int timed_read(loader *l, float *out, const int64_t *indices, int64_t n)
{
    double t0 = MPI_Wtime();
    CALL(cubes_read(l->file, out, indices, n));
    l->read_seconds += MPI_Wtime() - t0;
    return GEN_OK;
}

int loader_create(loader **out, cubes_file *file, const loader_options *opt, MPI_Comm comm)
{
    *out = NULL;
    loader *l = calloc(1, sizeof *l);
    CHECK_ALLOC(l, sizeof *l);
    l->file = file, l->opt = *opt, l->comm = comm;
    MPI_Comm_rank(comm, &l->rank);
    MPI_Comm_size(comm, &l->ranks);
    l->cube = (size_t)file->rows * file->cols * file->deps;
    int64_t n_val = 0;
    for (int64_t i = 0; i < file->count; i++) {
        l->n_train += file->split[i] == SPLIT_TRAIN;
        n_val += file->split[i] == SPLIT_VALIDATION;
    }
    const int64_t B = opt->batch;
    /* Every rank sees the same file and options: these are collective errors. */
    int status = GEN_OK;
    if (B < l->ranks)
        status = gen_error_set(GEN_ERR_USAGE, __FILE__, __LINE__,
                               "more ranks (%d) than samples per batch ([train] batch = %lld): use at most "
                               "%lld ranks or a larger batch", l->ranks, (long long)B, (long long)B);
    else if (B % l->ranks)
        status = gen_error_set(GEN_ERR_USAGE, __FILE__, __LINE__,
                               "[train] batch = %lld does not split evenly over %d ranks: use a batch that "
                               "is a multiple of the rank count", (long long)B, l->ranks);
    else if (l->n_train == 0)
        status = gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__, "the cubes file has no training cubes (empty split)");
    else if (n_val == 0)
        status = gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__, "the cubes file has no validation cubes (empty split)");
    else if (l->n_train < B)
        status = gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__,
                               "%lld training cubes are fewer than one batch (%lld)", (long long)l->n_train, (long long)B);
    if (status) {
        free(l);
        return gen_error_collective(status);
    }
    l->b = B / l->ranks;
    l->steps = l->n_train / B;
    l->val_batches = n_val / B > 0 ? n_val / B : 0;
    l->train = malloc(sizeof *l->train * (size_t)l->n_train);
    l->perm = malloc(sizeof *l->perm * (size_t)l->n_train);
    int64_t window_cubes = (opt->cache ? 1 : opt->window_steps) * l->b;
    l->window = malloc(sizeof *l->window * l->cube * (size_t)window_cubes);
    l->window_index = malloc(sizeof *l->window_index * (size_t)window_cubes);
    l->cube_ptrs = malloc(sizeof *l->cube_ptrs * (size_t)l->b);
    for (int k = 0; k < 2; k++) {
        l->inputs[k] = malloc(sizeof(float) * l->cube * (size_t)l->b);
        l->targets[k] = malloc(sizeof(float) * l->cube * (size_t)l->b);
        l->indices[k] = malloc(sizeof(int64_t) * (size_t)l->b);
    }
    int64_t val_local = l->val_batches * l->b;
    l->val_cubes = malloc(sizeof(float) * l->cube * (size_t)(val_local > 0 ? val_local : 1));
    l->val_index = malloc(sizeof(int64_t) * (size_t)(val_local > 0 ? val_local : 1));
    int ok = l->train && l->perm && l->window && l->window_index && l->cube_ptrs && l->val_cubes && l->val_index;
    for (int k = 0; k < 2; k++) ok = ok && l->inputs[k] && l->targets[k] && l->indices[k];
    if (!ok) {
        loader_free(l);
        FAIL(GEN_ERR_NOMEM, "out of memory for the data loader (batch %lld, window %lld steps)",
             (long long)B, (long long)opt->window_steps);
    }
    for (int64_t i = 0, t = 0, v = 0; i < file->count; i++) {
        if (file->split[i] == SPLIT_TRAIN) l->train[t++] = i;
        if (file->split[i] == SPLIT_VALIDATION && v < l->val_batches * B) {
            int64_t batch = v / B, slot = v % B; /* rank slot / b takes it */
            if (slot / l->b == l->rank) l->val_index[batch * l->b + slot % l->b] = i;
            v++;
        }
    }
    status = batch_worker_create(&l->worker, &opt->corrupt, file->rows, file->cols, file->deps);
    if (status == GEN_OK) status = corrupt_workspace_create(&l->val_ws, &opt->corrupt, file->rows, file->cols, file->deps);
    if (status == GEN_OK) status = world_agree_shared(status);
    if (status == GEN_OK) status = timed_read(l, l->val_cubes, l->val_index, val_local);
    if (status == GEN_OK && opt->cache) {
        float *all = malloc(sizeof(float) * l->cube * (size_t)l->n_train);
        l->cache_pos = malloc(sizeof(int64_t) * (size_t)file->count);
        status = world_agree_shared(all && l->cache_pos ? GEN_OK
                                    : gen_error_set(GEN_ERR_NOMEM, __FILE__, __LINE__,
                                                    "cache_shard: %lld cubes do not fit in memory", (long long)l->n_train));
        if (status == GEN_OK) {
            l->cache = all;
            for (int64_t t = 0; t < l->n_train; t++) l->cache_pos[l->train[t]] = t;
            status = timed_read(l, l->cache, l->train, l->n_train);
        } else free(all);
    }
    if (status) {
        loader_free(l);
        return status;
    }
    *out = l;
    return GEN_OK;
}

void loader_free(loader *l)
{
    if (!l) return;
    batch_worker_destroy(l->worker);
    if (l->val_ws) corrupt_workspace_destroy(l->val_ws);
    free(l->train), free(l->perm), free(l->window), free(l->window_index), free(l->cube_ptrs);
    for (int k = 0; k < 2; k++) free(l->inputs[k]), free(l->targets[k]), free(l->indices[k]);
    free(l->val_cubes), free(l->val_index), free(l->cache), free(l->cache_pos);
    free(l);
}

/* This rank's cube of `slot` (0..b-1) at `step`: a pointer into the window or the cache.
 * Collective when the step is outside the window (it reads the next window). */
static int step_cubes(loader *l, int64_t step)
{
    const int64_t B = l->opt.batch;
    if (l->cache) {
        for (int64_t k = 0; k < l->b; k++) {
            int64_t index = l->perm[step * B + l->rank * l->b + k];
            l->indices[l->current][k] = index;
            l->cube_ptrs[k] = l->cache + l->cube * (size_t)l->cache_pos[index];
        }
        return GEN_OK;
    }
    if (step < l->window_first || step >= l->window_first + l->window_count) {
        l->window_first = step;
        l->window_count = l->opt.window_steps < l->steps - step ? l->opt.window_steps : l->steps - step;
        for (int64_t s = 0; s < l->window_count; s++)
            for (int64_t k = 0; k < l->b; k++)
                l->window_index[s * l->b + k] = l->perm[(step + s) * B + l->rank * l->b + k];
        CALL(timed_read(l, l->window, l->window_index, l->window_count * l->b));
    }
    for (int64_t k = 0; k < l->b; k++) {
        int64_t at = (step - l->window_first) * l->b + k;
        l->indices[l->current][k] = l->window_index[at];
        l->cube_ptrs[k] = l->window + l->cube * (size_t)at;
    }
    return GEN_OK;
}

/* Starts making the batch of l->step into buffer l->current. */
static int start_batch(loader *l)
{
    CALL(step_cubes(l, l->step));
    struct batch_job job = {.seed = l->opt.seed, .epoch = (uint64_t)l->epoch, .n = (int)l->b,
                            .sample_index = l->indices[l->current], .cubes = l->cube_ptrs,
                            .inputs = l->inputs[l->current], .targets = l->targets[l->current]};
    CALL(batch_worker_start(l->worker, &job));
    l->pending = 1;
    return GEN_OK;
}

int loader_begin_epoch(loader *l, int64_t epoch, int64_t step)
{
    if (l->pending) {
        l->pending = 0;
        CALL(batch_worker_wait(l->worker));
    }
    l->epoch = epoch;
    for (int64_t i = 0; i < l->n_train; i++) l->perm[i] = l->train[i];
    rng_stream rng;
    rng_stream_init(&rng, l->opt.seed, (uint64_t)epoch, 0, RNG_PURPOSE_PERMUTE);
    for (int64_t i = l->n_train - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = rng_randint(&rng, 0, i), t = l->perm[i];
        l->perm[i] = l->perm[j], l->perm[j] = t;
    }
    l->window_first = l->window_count = 0;
    l->step = step;
    if (step < l->steps) CALL(start_batch(l));
    return GEN_OK;
}

int loader_next(loader *l, const float **inputs, const float **targets, const int64_t **indices)
{
    CHECK(l->pending, GEN_ERR_INTERNAL, "loader_next past the end of the epoch");
    double t0 = MPI_Wtime();
    l->pending = 0;
    CALL(batch_worker_wait(l->worker));
    l->wait_seconds += MPI_Wtime() - t0;
    int ready = l->current;
    *inputs = l->inputs[ready], *targets = l->targets[ready], *indices = l->indices[ready];
    l->step++;
    l->current = 1 - ready;
    if (l->step < l->steps) CALL(start_batch(l));
    return GEN_OK;
}

int loader_validation(loader *l, int64_t v, const float **inputs, const float **targets,
                      const int64_t **indices, unsigned *masks)
{
    CHECK(v >= 0 && v < l->val_batches, GEN_ERR_INTERNAL, "validation batch %lld of %lld", (long long)v,
          (long long)l->val_batches);
    /* Validation runs between epochs, when no training batch is being made: it uses the buffers
     * of the last training batch, which is done with. */
    CHECK(!l->pending, GEN_ERR_INTERNAL, "validation while a training batch is being made");
    const float *cubes[l->b];
    for (int64_t k = 0; k < l->b; k++) cubes[k] = l->val_cubes + l->cube * (size_t)(v * l->b + k);
    float *in = l->inputs[1 - l->current], *tg = l->targets[1 - l->current];
    struct corrupt_record records[l->b];
    struct batch_job job = {.seed = l->opt.seed, .epoch = RNG_EPOCH_NONE, .n = (int)l->b,
                            .sample_index = l->val_index + v * l->b, .cubes = cubes,
                            .inputs = in, .targets = tg, .records = records};
    CALL(batch_make(l->val_ws, &job));
    for (int64_t k = 0; masks && k < l->b; k++) masks[k] = records[k].mask;
    *inputs = in, *targets = tg, *indices = l->val_index + v * l->b;
    return GEN_OK;
}
