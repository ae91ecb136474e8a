/* The batch maker: (input, target) pairs for a batch of samples, and a worker thread that makes
 * the next batch while the current one trains. No MPI, no HDF5: the caller supplies the cubes.
 *
 * Shapes: a cube is float32 [rows][cols][deps]; a batch buffer is [n][rows][cols][deps].
 * Sample i of the batch is corrupted with the stream (seed, epoch, sample_index[i], CORRUPT), so a
 * batch's content depends only on its sample indices, never on the thread or rank making it.
 */
#ifndef GENESIS_BATCH_H
#define GENESIS_BATCH_H

#include <stdint.h>

#include "genesis/corrupt.h"

struct batch_job {
    uint64_t seed;
    uint64_t epoch;                 /* RNG_EPOCH_NONE for validation */
    int n;                          /* samples in the batch, >= 0 */
    const int64_t *sample_index;    /* [n] global sample indices, >= 0 */
    const float *const *cubes;      /* [n] pointers to the uncorrupted cubes */
    float *inputs;                  /* [n][rows][cols][deps] out: corrupted inputs */
    float *targets;                 /* [n][rows][cols][deps] out: targets (flipped cubes) */
    struct corrupt_record *records; /* [n] out, or NULL */
};

/* Makes the batch sequentially on the calling thread with workspace ws (whose shape is the cubes'). */
int batch_make(struct corrupt_workspace *ws, const struct batch_job *job);

/* A worker thread with its own workspace. Use: start(job); ... train on the previous batch ...;
 * wait() -> the job's status. Between start and wait the job's arrays belong to the worker (the
 * job struct itself is copied). One job at a time. An error in the worker is re-recorded in the
 * waiting thread's error record ("batch worker: <message>"). */
struct batch_worker;
int batch_worker_create(struct batch_worker **out, const struct config_corrupt *cfg, int rows,
                        int cols, int deps);
int batch_worker_start(struct batch_worker *w, const struct batch_job *job);
int batch_worker_wait(struct batch_worker *w);
/* Waits for a running job (its status is lost), stops the thread, frees everything. NULL is ok. */
void batch_worker_destroy(struct batch_worker *w);

#endif
