/* genesis train (src/train/train.c, the loop; run_folder.c, checkpoints.c, stop_policy.c beside it):
 * data-parallel Models Genesis pretraining.
 *
 * One run folder ([train] output) holds: config.ini (resolved), metrics.csv, train.log, ckpt/
 * (step-NNNNNNNN.h5, the newest K kept, `latest` naming the newest complete one, best.h5 with the
 * best validation loss) and preview.png. With resume = auto a run continues from ckpt/latest, at
 * any number of ranks (same global batch), as the same run. A folder that holds a run (a checkpoint in
 * ckpt/) is never started over silently: resume = never there, or a checkpoint that does not fit
 * the configuration (e.g. another [model] width, named in the error), is refused unless --fresh,
 * which first moves the old run aside (RUN_DIR/previous-YYYYmmdd-HHMMSS/).
 *
 * Test-only fault site (GENESIS_FAULT): checkpoint.latest, on rank 0 after ckpt/latest.tmp is
 * written and closed, before it is renamed over `latest`.
 */
#ifndef GENESIS_TRAIN_H
#define GENESIS_TRAIN_H

#include "genesis/config.h"

struct train_options {
    int profile; /* print a table of time per phase and layer at the end */
    int fresh;   /* --fresh: start over in a folder that holds a run, after moving that run's files to
                    RUN_DIR/previous-YYYYmmdd-HHMMSS/ (without it such a start is refused) */
};

/* The estimated peak memory of one rank of `genesis train` (src/train/memory.c; README "Sizing a
 * run"), bytes, term by term; the largest rank's: rank 0 also builds the checkpoint image. */
struct train_memory {
    double model;       /* weights, gradients, batch-norm buffers */
    double optimizer;   /* momentum (SGD, LARS) or the two Adam moments */
    double activations; /* the local batch's activations and the layers' workspaces (model_plan) */
    double data;        /* the window of training cubes (read and in use) or the cached shard, the
                           batch buffers, the corruption workspaces */
    double validation;  /* this rank's slots of every validation batch */
    double checkpoint;  /* rank 0: the checkpoint's in-memory image and its copy */
    double base;        /* the process itself: MPI, HDF5, OpenBLAS, code (measured) */
    double total;       /* the sum, with 1% per thread beyond the first */
};
/* From the configuration, the rank count and the cubes file's counts (pass 0 cubes when unknown:
 * the data terms are then left out) and cube shape (0: [prep] cube_rows...). */
int train_memory_estimate(const genesis_config *cfg, int ranks, long long train_cubes,
                          long long validation_cubes, int rows, int cols, int deps, struct train_memory *m);
/* "1234 MB per rank (model 229, optimizer 76, activations 657, data 33, validation 8, checkpoint 306,
 * process 60)" */
void train_memory_describe(const struct train_memory *m, char *out, size_t size);

/* Collective on MPI_COMM_WORLD. */
int train_run(const genesis_config *cfg, const struct train_options *opt);

#endif
