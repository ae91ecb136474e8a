/* Bucketed, overlapped gradient all-reduce and the synchronised BN hook (include/genesis/gradsync.h). */
#include "genesis/gradsync.h"

#include "genesis/error.h"
#include "genesis/profile.h"
#include "genesis/world.h"

#include <stdlib.h>
#include <string.h>

/* Bucket b covers the arena's floats [begin[b + 1], begin[b]); begin[0] = n, begin[buckets] = 0. */
int gradsync_init(gradsync *g, float *grads, size_t n, size_t bucket_floats, int overlap)
{
    g->comm = MPI_COMM_WORLD;
    MPI_CALL(MPI_Comm_size(g->comm, &g->ranks));
    g->grads = grads;
    g->n = n;
    g->overlap = overlap;
    g->started = 0;
    g->wait_seconds = 0;
    g->bn_seconds = 0;
    g->bn_calls = 0;
    g->staging = NULL;
    if (bucket_floats < 1024) bucket_floats = 1024;
    g->buckets = (int)((n + bucket_floats - 1) / bucket_floats);
    if (g->buckets < 1) g->buckets = 1;
    g->begin = malloc(sizeof *g->begin * (size_t)(g->buckets + 1));
    g->requests = malloc(sizeof *g->requests * (size_t)g->buckets);
    CHECK(g->begin && g->requests, GEN_ERR_NOMEM, "out of memory for %d gradient buckets", g->buckets);
    for (int b = 0; b <= g->buckets; b++) {
        size_t from_end = (size_t)b * bucket_floats;
        g->begin[b] = from_end >= n ? 0 : n - from_end;
    }
    g->begin[g->buckets] = 0;
    if (g->ranks >= GRADSYNC_STAGING_RANKS) {
        g->staging = malloc(sizeof *g->staging * (n > 0 ? n : 1));
        CHECK(g->staging, GEN_ERR_NOMEM, "out of memory for the all-reduce's send buffer (%zu floats)", n);
    }
    return GEN_OK;
}

void gradsync_free(gradsync *g)
{
    free(g->begin);
    free(g->requests);
    free(g->staging);
    g->begin = NULL, g->requests = NULL, g->staging = NULL;
}

/* MPICH defines MPI_STATUSES_IGNORE as (MPI_Status *)1, which GCC 12's -Wstringop-overflow takes for
 * an array of size 0 when MPI_Testall/MPI_Waitall write statuses; they do not write through it. */
#if defined(MPICH) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

static int start_bucket(gradsync *g)
{
    int b = g->started++;
    size_t lo = g->begin[b + 1], count = g->begin[b] - lo;
    if (g->ranks == 1) {
        g->requests[b] = MPI_REQUEST_NULL;
        return GEN_OK;
    }
    const void *send = MPI_IN_PLACE;
    if (g->staging) { /* a separate send buffer: Open MPI then reduces by halving and doubling */
        memcpy(g->staging + lo, g->grads + lo, sizeof *g->grads * count);
        send = g->staging + lo;
    }
    MPI_CALL(MPI_Iallreduce(send, g->grads + lo, (int)count, MPI_FLOAT, MPI_SUM, g->comm, &g->requests[b]));
    return GEN_OK;
}

int gradsync_ready(gradsync *g, size_t first_final)
{
    if (!g->overlap) return GEN_OK;
    while (g->started < g->buckets && g->begin[g->started + 1] >= first_final) CALL(start_bucket(g));
    /* let the started all-reduces progress while backward goes on */
    if (g->started > 0 && g->ranks > 1) {
        int done;
        MPI_CALL(MPI_Testall(g->started, g->requests, &done, MPI_STATUSES_IGNORE));
    }
    return GEN_OK;
}

int gradsync_finish(gradsync *g)
{
    while (g->started < g->buckets) CALL(start_bucket(g));
    double t0 = profile_now();
    if (g->ranks > 1) MPI_CALL(MPI_Waitall(g->buckets, g->requests, MPI_STATUSES_IGNORE));
    g->wait_seconds += profile_now() - t0;
    g->started = 0;
    if (g->ranks > 1) {
        const float scale = 1.0f / (float)g->ranks;
        for (size_t i = 0; i < g->n; i++) g->grads[i] *= scale;
    }
    return GEN_OK;
}

int gradsync_bn_allreduce(double *sums, int count, void *ctx)
{
    gradsync *g = ctx;
    double t0 = profile_now();
    MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, sums, count, MPI_DOUBLE, MPI_SUM, g->comm));
    g->bn_seconds += profile_now() - t0;
    g->bn_calls++;
    return GEN_OK;
}
