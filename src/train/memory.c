/* Memory checked up front (include/genesis/train.h struct train_memory; README "Sizing a run"): the
 * estimate of a rank's peak from the configuration, and the trainer's check of it against what the
 * node offers, before anything large is allocated. */
#include "trainer.h"

#include "genesis/collective.h"
#include "genesis/cores.h"
#include "genesis/error.h"
#include "genesis/world.h"

#include <stdio.h>

/* The process itself before any of genesis's arrays: MPI, HDF5, OpenBLAS's buffers, code (measured:
 * peak RSS of a width-1 run of 8^3 cubes, README "Sizing a run"). */
#define PROCESS_BASE_BYTES (48.0 * 1048576)
/* Cube-sized buffers of the corruption workspaces (the training worker's and the validation's). */
#define CORRUPT_WORKSPACE_CUBES 4
/* HDF5's file image of a checkpoint beyond its tensors (attributes, config text, metadata). */
#define CHECKPOINT_OVERHEAD_BYTES (1.0 * 1048576)

int train_memory_estimate(const genesis_config *cfg, int ranks, long long train_cubes,
                          long long validation_cubes, int rows, int cols, int deps, struct train_memory *m)
{
    const struct config_train *c = &cfg->train;
    *m = (struct train_memory){0};
    if (rows <= 0)
        rows = (int)cfg->prep.cube_rows, cols = (int)cfg->prep.cube_cols, deps = (int)cfg->prep.cube_deps;
    const long long b = ranks > 0 && c->batch % ranks == 0 ? c->batch / ranks : c->batch;
    model_config mc = {.width = (int)cfg->model.width, .batch = (int)b, .D = rows, .H = cols, .W = deps,
                       .tile_budget_bytes = (size_t)c->tile_kib * 1024, .threads = (int)c->threads};
    size_t params = 0, buffers = 0, activation_bytes = 0;
    CALL(model_plan(&mc, &params, &buffers, &activation_bytes));
    const double cube = (double)rows * cols * deps * sizeof(float);
    const int states = c->optimizer == OPTIMIZER_ADAM ? 2 : c->momentum != 0 ? 1 : 0;
    m->model = (2.0 * (double)params + (double)buffers) * sizeof(float);
    m->optimizer = states * (double)params * sizeof(float);
    m->activations = (double)activation_bytes;
    /* the window (and the reader's buffer of as many cubes while it is filled), or the shard; the
     * inputs and targets of two batches; the corruption workspaces */
    double shard = train_cubes > 0 ? (double)((train_cubes + ranks - 1) / ranks) : 0;
    long long epoch_steps = train_cubes / c->batch, window_steps = c->window_steps;
    if (epoch_steps > 0 && epoch_steps < window_steps)
        window_steps = epoch_steps; /* a window ends with its epoch */
    double window = c->cache_shard ? shard + (double)b : 2.0 * (double)(window_steps * b);
    m->data = train_cubes > 0 ? cube * (window + 4.0 * (double)b + 2 * CORRUPT_WORKSPACE_CUBES) : 0;
    long long val_batches = validation_cubes / c->batch;
    m->validation = cube * (double)(val_batches * b);
    double image =
        (double)(params * (1 + (size_t)states) + buffers) * sizeof(float) + CHECKPOINT_OVERHEAD_BYTES;
    m->checkpoint = 2 * image;
    m->base = PROCESS_BASE_BYTES;
    double sum = m->model + m->optimizer + m->activations + m->data + m->validation + m->checkpoint + m->base;
    m->total = sum * (1 + 0.01 * (double)(c->threads - 1));
    return GEN_OK;
}

void train_memory_describe(const struct train_memory *m, char *out, size_t size)
{
    const double mb = 1048576;
    snprintf(out, size,
             "%.0f MB per rank (model %.0f, optimizer %.0f, activations %.0f, data %.0f, validation %.0f, "
             "checkpoint %.0f, process %.0f)",
             m->total / mb, m->model / mb, m->optimizer / mb, m->activations / mb, m->data / mb,
             m->validation / mb, m->checkpoint / mb, m->base / mb);
}

int trainer_check_memory(struct trainer *t)
{
    const cubes_file *f = &t->data;
    long long n_train = 0, n_val = 0;
    for (int64_t i = 0; i < f->count; i++) {
        n_train += f->split[i] == SPLIT_TRAIN;
        n_val += f->split[i] == SPLIT_VALIDATION;
    }
    struct train_memory m;
    CALL(gen_error_collective(
        train_memory_estimate(t->cfg, t->ranks, n_train, n_val, f->rows, f->cols, f->deps, &m)));
    char source[1024], text[256];
    int on_node = 1;
    CALL(world_ranks_on_node(&on_node));
    double node = node_memory_limit(source, sizeof source);
    /* [the largest estimate / share ratio, the smallest share]; 0 limit: unknown, not checked */
    double ratio = node > 0 ? m.total / (node / on_node) : 0, share = node > 0 ? node / on_node : 1e300;
    CALL(world_max_doubles(&ratio, 1));
    CALL(world_min_doubles(&share, 1));
    train_memory_describe(&m, text, sizeof text);
    if (ratio <= 1) {
        char offered[64] = "limit unknown";
        if (share < 1e300) snprintf(offered, sizeof offered, "%.0f MB per rank offered", share / 1048576);
        log_run(t, "train: memory: estimated peak %s; %s", text, offered);
        return GEN_OK;
    }
    const long long b = t->cfg->train.batch / t->ranks;
    FAIL_ALL(GEN_ERR_USAGE,
             "not enough memory: genesis train needs about %s, but the node offers %.0f MB per rank (%s, shared by "
             "the %d rank(s) on the node); use a smaller per-rank batch (now %lld: more ranks on more nodes, "
             "or a smaller [train] batch), fewer ranks per node, a smaller [train] window_steps (now %ld)%s, "
             "or ask the scheduler for more memory (README: Sizing a run)",
             text, share / 1048576, source, on_node, b, t->cfg->train.window_steps,
             t->cfg->train.cache_shard ? ", cache_shard = false" : "");
}
