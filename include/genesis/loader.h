/* The training data loader (src/train/loader.c).
 *
 * Every epoch has a permutation of the training cubes keyed by (seed, epoch); global step s of the
 * epoch trains on perm[s*B, (s+1)*B) and rank r takes the slice [r*b, (r+1)*b) of it, b = B / P.
 * Each rank reads only its own cubes, collectively, `window_steps` steps at a time (or all of the
 * training cubes once, when caching), and a worker thread corrupts the next step's batch while the
 * current one trains. HDF5 and MPI stay on the calling (main) thread. Validation batches are the
 * first floor(n_val / B) * B validation cubes, in file order, split the same way, with corruptions
 * keyed without the epoch (RNG_EPOCH_NONE): the same every epoch.
 */
#ifndef GENESIS_LOADER_H
#define GENESIS_LOADER_H

#include "genesis/corrupt.h"
#include "genesis/cubes.h"

#include <stdint.h>

typedef struct loader_options {
    int64_t batch;        /* global batch B */
    uint64_t seed;
    int64_t window_steps;
    int cache;            /* read all training cubes once and keep them */
    struct config_corrupt corrupt;
} loader_options;

typedef struct loader loader;

/* Collective over every rank of the job (the world). Refuses (GEN_ERR_USAGE/DATA, collective) an
 * empty split, a batch that does not split evenly over the ranks, fewer training cubes than one
 * batch; a failure on one rank (memory, worker thread) is agreed, so every rank returns it.
 * Test-only fault site (GENESIS_FAULT): loader.create. */
int loader_create(loader **out, cubes_file *file, const loader_options *opt);
void loader_free(loader *l);
int64_t loader_steps_per_epoch(const loader *l);
int64_t loader_validation_batches(const loader *l);
int64_t loader_local_batch(const loader *l);
/* Collective: positions the loader at step `step` of `epoch` and starts making that batch. */
int loader_begin_epoch(loader *l, int64_t epoch, int64_t step);
/* Collective: this rank's (inputs, targets) [b, rows, cols, deps] of the current step, and the
 * cube indices; then moves on to the next step of the epoch and starts making it. The returned
 * buffers stay valid until the next call. */
int loader_next(loader *l, const float **inputs, const float **targets, const int64_t **indices);
/* Collective: validation batch v (0 <= v < loader_validation_batches); *masks (masks may be NULL)
 * points at each sample's corrupt_record mask (the corruptions drawn), [b]. Valid until the next
 * call, like the other buffers. */
int loader_validation(loader *l, int64_t v, const float **inputs, const float **targets,
                      const int64_t **indices, const unsigned **masks);
/* Seconds spent waiting for the worker and reading cubes, summed. */
double loader_wait_seconds(const loader *l);
double loader_read_seconds(const loader *l);

#endif
