/* mpi/gradsync.c at 1, 2 and 4 ranks: the bucketed all-reduce gives every rank the mean gradient
 * (against a sum of doubles over the ranks, computed independently with world_sum_doubles), the
 * same bits on every rank, with and without overlap; from GRADSYNC_STAGING_RANKS ranks on it reduces
 * through the staging send buffer (README "Scaling"), below that in place, and leaves the
 * gradients' own copy in the staging buffer untouched by the reduction. */
#include "genesis/collective.h"
#include "genesis/error.h"
#include "genesis/gradsync.h"
#include "genesis/world.h"
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float value(int rank, size_t i) { return (float)((rank + 1) * 0.25 + (double)(i % 37) * 0.01); }

static void check_mean(size_t n, size_t bucket_floats, int overlap)
{
    int rank = world_rank(), ranks = world_size();
    float *g = malloc(sizeof *g * n);
    double *sum = malloc(sizeof *sum * n);
    for (size_t i = 0; i < n; i++) g[i] = value(rank, i), sum[i] = g[i];
    EXPECT_OK(world_sum_doubles(sum, (int)n));
    gradsync s;
    EXPECT_OK(gradsync_init(&s, g, n, bucket_floats, overlap));
    EXPECT((s.staging != NULL) == (ranks >= GRADSYNC_STAGING_RANKS), "%d ranks, staging %p", ranks,
           (void *)s.staging);
    /* backward finalises from the end of the arena: report it in three pieces */
    EXPECT_OK(gradsync_ready(&s, n - n / 3));
    EXPECT_OK(gradsync_ready(&s, n / 3));
    EXPECT_OK(gradsync_finish(&s));
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g[i] - sum[i] / ranks));
    EXPECT(worst < 1e-5, "n %zu overlap %d: worst error %g", n, overlap, worst);
    if (s.staging) EXPECT(s.staging[0] == value(rank, 0), "staging[0] %g", s.staging[0]); /* rank's own */
    unsigned long h = 1469598103934665603ul;
    const unsigned char *p = (const unsigned char *)g;
    for (size_t i = 0; i < n * sizeof *g; i++) h = (h ^ p[i]) * 1099511628211ul;
    int same = 0;
    EXPECT_OK(world_same_u64(h, &same));
    EXPECT(same, "the ranks hold different gradients (n %zu overlap %d)", n, overlap);
    gradsync_free(&s);
    free(g), free(sum);
}

int main(int argc, char **argv)
{
    if (world_init(&argc, &argv, 0) != GEN_OK) return 1;
    check_mean(100000, 16384, 1);
    check_mean(100000, 16384, 0);
    check_mean(5000, 1024, 1); /* buckets smaller than libnbc's 64 KiB threshold */
    MPI_TEST_MAIN_END(world_rank());
}
