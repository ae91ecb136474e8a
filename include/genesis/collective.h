/* Checked collectives over every rank of the job (mpi/collective.c). The modules above mpi/
 * (train, prep, infer) talk MPI only through these and world.h: each returns a genesis status
 * that names the MPI call and its error on failure, and each is collective (every rank calls it,
 * in the same order).
 *
 * Values are updated in place: after world_sum_doubles(v, n) every rank holds the sums.
 * The "_to_root" forms leave the result on rank 0 only (the other ranks' buffers are unchanged).
 */
#ifndef GENESIS_COLLECTIVE_H
#define GENESIS_COLLECTIVE_H

#include <stddef.h>
#include <stdint.h>

int world_sum_doubles(double *values, int n);
int world_min_doubles(double *values, int n);
int world_max_doubles(double *values, int n);
int world_max_ints(int *values, int n);
int world_sum_int64(int64_t *values, int n);
/* Sums onto rank 0 (reduction order fixed by MPI for a given rank count). */
int world_sum_floats_to_root(float *values, int n);
int world_sum_doubles_to_root(double *values, int n);
/* Bitwise OR onto rank 0. */
int world_or_bytes_to_root(unsigned char *values, int n);
/* Copies `bytes` bytes of rank root's buffer into every rank's buffer. */
int world_broadcast(void *buffer, size_t bytes, int root);
/* Ranks 0 .. senders - 1 each contribute `bytes` bytes of `mine`; rank 0 receives them in rank order
 * into `all` (senders x bytes; unused elsewhere, may be NULL there). Ranks >= senders send nothing.
 * Every rank calls it with the same bytes and senders (1 <= senders <= ranks). */
int world_gather_to_root(const void *mine, void *all, size_t bytes, int senders);
/* Exclusive prefix sum: *before = sum of `mine` over the ranks below this one; *total = the sum
 * over every rank. */
int world_exscan_int64(int64_t mine, int64_t *before, int64_t *total);
/* Do all ranks hold the same 64-bit value? *same = 1 or 0 on every rank. */
int world_same_u64(uint64_t value, int *same);

#endif
