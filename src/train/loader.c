/* The training data loader (include/genesis/loader.h). */
#include "genesis/loader.h"

#include "genesis/batch.h"
#include "genesis/error.h"
#include "genesis/profile.h"
#include "genesis/rng.h"
#include "genesis/world.h"

#include <stdlib.h>
#include <string.h>

struct loader {
    cubes_file *file;
    loader_options opt;
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
    const float **val_cube_ptrs;        /* [b] */
    struct corrupt_record *val_records; /* [b] */
    unsigned *val_masks;                /* [b] */
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
    double t0 = profile_now();
    CALL(cubes_read(l->file, out, indices, n));
    l->read_seconds += profile_now() - t0;
    return GEN_OK;
}

static int check_allocated(const void *p, size_t bytes)
{
    CHECK_ALLOC(p, bytes);
    return GEN_OK;
}

/* The batch and the split against the rank count. Every rank sees the same file and options:
 * these are collective errors. */
static int check_split(const loader *l, int64_t n_val)
{
    const int64_t B = l->opt.batch;
    if (B < l->ranks)
        FAIL_ALL(GEN_ERR_USAGE, "more ranks (%d) than samples per batch ([train] batch = %lld): use at most "
                                "%lld ranks or a larger batch", l->ranks, (long long)B, (long long)B);
    if (B % l->ranks)
        FAIL_ALL(GEN_ERR_USAGE, "[train] batch = %lld does not split evenly over %d ranks: use a batch that "
                                "is a multiple of the rank count", (long long)B, l->ranks);
    if (l->n_train == 0) FAIL_ALL(GEN_ERR_DATA, "the cubes file has no training cubes (empty split)");
    if (n_val == 0) FAIL_ALL(GEN_ERR_DATA, "the cubes file has no validation cubes (empty split)");
    if (l->n_train < B)
        FAIL_ALL(GEN_ERR_DATA, "%lld training cubes are fewer than one batch (%lld)", (long long)l->n_train,
                 (long long)B);
    return GEN_OK;
}

/* Every buffer, sized once from the local batch b, the window and the validation batches. */
static int allocate_buffers(loader *l)
{
    const size_t b = (size_t)l->b;
    l->train = malloc(sizeof *l->train * (size_t)l->n_train);
    l->perm = malloc(sizeof *l->perm * (size_t)l->n_train);
    int64_t window_cubes = (l->opt.cache ? 1 : l->opt.window_steps) * l->b;
    l->window = malloc(sizeof *l->window * l->cube * (size_t)window_cubes);
    l->window_index = malloc(sizeof *l->window_index * (size_t)window_cubes);
    l->cube_ptrs = malloc(sizeof *l->cube_ptrs * b);
    for (int k = 0; k < 2; k++) {
        l->inputs[k] = malloc(sizeof(float) * l->cube * b);
        l->targets[k] = malloc(sizeof(float) * l->cube * b);
        l->indices[k] = malloc(sizeof(int64_t) * b);
    }
    int64_t val_local = l->val_batches * l->b;
    l->val_cubes = malloc(sizeof(float) * l->cube * (size_t)(val_local > 0 ? val_local : 1));
    l->val_index = malloc(sizeof(int64_t) * (size_t)(val_local > 0 ? val_local : 1));
    l->val_cube_ptrs = malloc(sizeof *l->val_cube_ptrs * b);
    l->val_records = malloc(sizeof *l->val_records * b);
    l->val_masks = malloc(sizeof *l->val_masks * b);
    int ok = l->train && l->perm && l->window && l->window_index && l->cube_ptrs && l->val_cubes &&
             l->val_index && l->val_cube_ptrs && l->val_records && l->val_masks;
    for (int k = 0; k < 2; k++) ok = ok && l->inputs[k] && l->targets[k] && l->indices[k];
    CHECK(ok, GEN_ERR_NOMEM, "out of memory for the data loader (batch %lld, window %lld steps)",
          (long long)l->opt.batch, (long long)l->opt.window_steps);
    return GEN_OK;
}

/* The training cubes' file indices, and this rank's slots of every validation batch. */
static void assign_cubes(loader *l)
{
    const cubes_file *file = l->file;
    const int64_t B = l->opt.batch;
    for (int64_t i = 0, t = 0, v = 0; i < file->count; i++) {
        if (file->split[i] == SPLIT_TRAIN) l->train[t++] = i;
        if (file->split[i] == SPLIT_VALIDATION && v < l->val_batches * B) {
            int64_t batch = v / B, slot = v % B; /* rank slot / b takes it */
            if (slot / l->b == l->rank) l->val_index[batch * l->b + slot % l->b] = i;
            v++;
        }
    }
}

static int create_workers(loader *l)
{
    const cubes_file *f = l->file;
    CALL(batch_worker_create(&l->worker, &l->opt.corrupt, f->rows, f->cols, f->deps));
    CALL(corrupt_workspace_create(&l->val_ws, &l->opt.corrupt, f->rows, f->cols, f->deps));
    CALL(fault_point("loader.create"));
    return GEN_OK;
}

static int allocate_cache(loader *l)
{
    l->cache = malloc(sizeof(float) * l->cube * (size_t)l->n_train);
    l->cache_pos = malloc(sizeof(int64_t) * (size_t)l->file->count);
    CHECK(l->cache && l->cache_pos, GEN_ERR_NOMEM, "cache_shard: %lld cubes do not fit in memory",
          (long long)l->n_train);
    return GEN_OK;
}

/* cache_shard: every training cube read once, kept by training position. Collective. */
static int read_cache(loader *l)
{
    CALL(world_agree_shared(allocate_cache(l)));
    for (int64_t t = 0; t < l->n_train; t++) l->cache_pos[l->train[t]] = t;
    return timed_read(l, l->cache, l->train, l->n_train);
}

int loader_create(loader **out, cubes_file *file, const loader_options *opt)
{
    *out = NULL;
    int status = GEN_OK;
    loader *l = calloc(1, sizeof *l);
    CALL_GOTO(world_agree_shared(check_allocated(l, sizeof *l)));
    l->file = file, l->opt = *opt;
    l->rank = world_rank(), l->ranks = world_size();
    l->cube = (size_t)file->rows * file->cols * file->deps;
    int64_t n_val = 0;
    for (int64_t i = 0; i < file->count; i++) {
        l->n_train += file->split[i] == SPLIT_TRAIN;
        n_val += file->split[i] == SPLIT_VALIDATION;
    }
    CALL_GOTO(check_split(l, n_val));
    l->b = opt->batch / l->ranks;
    l->steps = l->n_train / opt->batch;
    l->val_batches = n_val / opt->batch > 0 ? n_val / opt->batch : 0;
    /* From here on a rank may fail alone (memory, threads, an injected fault): every rank takes
     * part in each agreement, whatever its own status, before the next collective. */
    CALL_GOTO(world_agree_shared(allocate_buffers(l)));
    assign_cubes(l);
    CALL_GOTO(world_agree_shared(create_workers(l)));
    CALL_GOTO(timed_read(l, l->val_cubes, l->val_index, l->val_batches * l->b));
    if (opt->cache) CALL_GOTO(read_cache(l));
    *out = l;
    return GEN_OK;
cleanup:
    loader_free(l);
    return status;
}

void loader_free(loader *l)
{
    if (!l) return;
    batch_worker_destroy(l->worker);
    if (l->val_ws) corrupt_workspace_destroy(l->val_ws);
    free(l->train), free(l->perm), free(l->window), free(l->window_index), free(l->cube_ptrs);
    for (int k = 0; k < 2; k++) free(l->inputs[k]), free(l->targets[k]), free(l->indices[k]);
    free(l->val_cubes), free(l->val_index), free(l->cache), free(l->cache_pos);
    free(l->val_cube_ptrs), free(l->val_records), free(l->val_masks);
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
    double t0 = profile_now();
    l->pending = 0;
    CALL(batch_worker_wait(l->worker));
    l->wait_seconds += profile_now() - t0;
    int ready = l->current;
    *inputs = l->inputs[ready], *targets = l->targets[ready], *indices = l->indices[ready];
    l->step++;
    l->current = 1 - ready;
    if (l->step < l->steps) CALL(start_batch(l));
    return GEN_OK;
}

int loader_validation(loader *l, int64_t v, const float **inputs, const float **targets,
                      const int64_t **indices, const unsigned **masks)
{
    CHECK(v >= 0 && v < l->val_batches, GEN_ERR_INTERNAL, "validation batch %lld of %lld", (long long)v,
          (long long)l->val_batches);
    /* Validation runs between epochs, when no training batch is being made: it uses the buffers
     * of the last training batch, which is done with. */
    CHECK(!l->pending, GEN_ERR_INTERNAL, "validation while a training batch is being made");
    for (int64_t k = 0; k < l->b; k++) l->val_cube_ptrs[k] = l->val_cubes + l->cube * (size_t)(v * l->b + k);
    float *in = l->inputs[1 - l->current], *tg = l->targets[1 - l->current];
    struct batch_job job = {.seed = l->opt.seed, .epoch = RNG_EPOCH_NONE, .n = (int)l->b,
                            .sample_index = l->val_index + v * l->b, .cubes = l->val_cube_ptrs,
                            .inputs = in, .targets = tg, .records = l->val_records};
    CALL(batch_make(l->val_ws, &job));
    for (int64_t k = 0; k < l->b; k++) l->val_masks[k] = l->val_records[k].mask;
    *inputs = in, *targets = tg, *indices = l->val_index + v * l->b;
    if (masks) *masks = l->val_masks;
    return GEN_OK;
}
