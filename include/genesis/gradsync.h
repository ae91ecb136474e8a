/* Gradient all-reduce in buckets, overlapped with backward, and the synchronised batch-norm hook
 * (mpi/gradsync.c).
 *
 * The gradient arena [n] is cut into buckets of about bucket_floats, from the END of the arena:
 * backward finalises gradients from the last parameter (out_tr) toward the first (down_tr64), so
 * bucket 0 holds the arena's tail. When backward reports that every gradient at offset >= f is
 * final (gradsync_ready), each bucket lying entirely in [f, n) starts a non-blocking
 * MPI_Iallreduce (sum, in place); gradsync_finish starts the rest, waits for all and scales the
 * result to the mean over ranks. Every rank then holds the same gradient, bitwise.
 *
 * From GRADSYNC_STAGING_RANKS ranks on, each bucket is first copied into a send buffer of its own
 * (staging, n floats more per rank) instead of being reduced in place: Open MPI's non-blocking
 * all-reduce (libnbc) reduces an MPI_IN_PLACE buffer along a binomial tree, each round moving the
 * whole bucket (2 log2 P bucket sizes through the root's link), but a separate send buffer by
 * recursive halving and doubling (about 2 bucket sizes per rank): at 1024 ranks the gradient
 * all-reduce is 5x shorter (README "Scaling", scripts/scale_sim). Below 4 ranks libnbc uses the
 * binomial tree either way, so 1- to 3-rank runs keep the in-place path (and their results).
 */
#ifndef GENESIS_GRADSYNC_H
#define GENESIS_GRADSYNC_H

#include "genesis/nn.h"

#include <mpi.h>
#include <stddef.h>

enum { GRADSYNC_STAGING_RANKS = 4 };

typedef struct gradsync {
    MPI_Comm comm;         /* MPI_COMM_WORLD */
    int ranks;
    float *grads;
    size_t n;
    int buckets;
    size_t *begin;         /* [buckets + 1]: bucket b is [begin[b + 1], begin[b]) ... see .c */
    MPI_Request *requests; /* [buckets] */
    int started;           /* buckets started this step (they start in order 0, 1, ...) */
    int overlap;           /* 0: everything starts in gradsync_finish */
    double wait_seconds;   /* time blocked in gradsync_finish, summed */
    double bn_seconds;     /* time in the batch-norm all-reduces (waiting for the other ranks
                              included), summed; bn_calls of them */
    long bn_calls;
    float *staging;        /* [n] the all-reduces' send buffer from GRADSYNC_STAGING_RANKS ranks on; else NULL */
} gradsync;

/* Over every rank of the job (MPI_COMM_WORLD). */
int gradsync_init(gradsync *g, float *grads, size_t n, size_t bucket_floats, int overlap);
void gradsync_free(gradsync *g);
/* Every gradient at offset >= first_final is final: start the buckets that are complete. */
int gradsync_ready(gradsync *g, size_t first_final);
/* Starts the remaining buckets, waits for all, divides by the rank count. */
int gradsync_finish(gradsync *g);

/* The batch-norm hook: sums the per-channel statistics over the ranks of g->comm (synchronised
 * BN) and times it into g->bn_seconds. ctx is the gradsync g. */
int gradsync_bn_allreduce(double *sums, int count, void *ctx);

#endif
