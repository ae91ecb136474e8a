/* Checked collectives over MPI_COMM_WORLD (include/genesis/collective.h). */
#include "genesis/collective.h"

#include "genesis/error.h"
#include "genesis/world.h"

#include <limits.h>
#include <mpi.h>
#include <string.h>

static int allreduce(void *values, int n, MPI_Datatype type, MPI_Op op)
{
    MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, values, n, type, op, MPI_COMM_WORLD));
    return GEN_OK;
}

static int reduce_to_root(void *values, int n, MPI_Datatype type, MPI_Op op)
{
    if (world_rank() == 0) MPI_CALL(MPI_Reduce(MPI_IN_PLACE, values, n, type, op, 0, MPI_COMM_WORLD));
    else MPI_CALL(MPI_Reduce(values, NULL, n, type, op, 0, MPI_COMM_WORLD));
    return GEN_OK;
}

int world_sum_doubles(double *values, int n) { return allreduce(values, n, MPI_DOUBLE, MPI_SUM); }
int world_min_doubles(double *values, int n) { return allreduce(values, n, MPI_DOUBLE, MPI_MIN); }
int world_max_doubles(double *values, int n) { return allreduce(values, n, MPI_DOUBLE, MPI_MAX); }
int world_max_ints(int *values, int n) { return allreduce(values, n, MPI_INT, MPI_MAX); }
int world_sum_int64(int64_t *values, int n) { return allreduce(values, n, MPI_INT64_T, MPI_SUM); }

int world_sum_floats_to_root(float *values, int n) { return reduce_to_root(values, n, MPI_FLOAT, MPI_SUM); }
int world_sum_doubles_to_root(double *values, int n) { return reduce_to_root(values, n, MPI_DOUBLE, MPI_SUM); }
int world_or_bytes_to_root(unsigned char *values, int n)
{
    return reduce_to_root(values, n, MPI_UNSIGNED_CHAR, MPI_BOR);
}

int world_broadcast(void *buffer, size_t bytes, int root)
{
    unsigned char *p = buffer;
    while (bytes > 0) { /* MPI counts are int: large buffers go in pieces */
        int piece = bytes > (size_t)INT_MAX ? INT_MAX : (int)bytes;
        MPI_CALL(MPI_Bcast(p, piece, MPI_BYTE, root, MPI_COMM_WORLD));
        p += piece, bytes -= (size_t)piece;
    }
    return GEN_OK;
}

/* MPI counts are int: a message of any size goes in pieces of at most INT_MAX bytes. */
static int send_bytes(const unsigned char *p, size_t bytes, int to)
{
    for (; bytes > 0;) {
        int piece = bytes > (size_t)INT_MAX ? INT_MAX : (int)bytes;
        MPI_CALL(MPI_Send(p, piece, MPI_BYTE, to, 0, MPI_COMM_WORLD));
        p += piece, bytes -= (size_t)piece;
    }
    return GEN_OK;
}

static int recv_bytes(unsigned char *p, size_t bytes, int from)
{
    for (; bytes > 0;) {
        int piece = bytes > (size_t)INT_MAX ? INT_MAX : (int)bytes;
        MPI_CALL(MPI_Recv(p, piece, MPI_BYTE, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        p += piece, bytes -= (size_t)piece;
    }
    return GEN_OK;
}

int world_gather_to_root(const void *mine, void *all, size_t bytes, int senders)
{
    const int rank = world_rank();
    CHECK(senders >= 1 && senders <= world_size(), GEN_ERR_USAGE, "world_gather_to_root: %d senders of %d ranks",
          senders, world_size());
    if (rank > 0) return rank < senders ? send_bytes(mine, bytes, 0) : GEN_OK;
    unsigned char *out = all;
    if (bytes) memcpy(out, mine, bytes);
    for (int r = 1; r < senders; r++) CALL(recv_bytes(out + (size_t)r * bytes, bytes, r));
    return GEN_OK;
}

int world_exscan_int64(int64_t mine, int64_t *before, int64_t *total)
{
    *before = 0; /* MPI_Exscan leaves rank 0's result undefined */
    int64_t scanned = 0;
    MPI_CALL(MPI_Exscan(&mine, &scanned, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
    if (world_rank() > 0) *before = scanned;
    *total = mine;
    return world_sum_int64(total, 1);
}

int world_same_u64(uint64_t value, int *same)
{
    uint64_t range[2] = {value, ~value}; /* max of v and of ~v: min = ~max(~v) */
    CALL(allreduce(range, 2, MPI_UINT64_T, MPI_MAX));
    *same = range[0] == (uint64_t)~range[1];
    return GEN_OK;
}
