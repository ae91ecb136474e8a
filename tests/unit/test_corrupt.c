/* The four corruptions (include/genesis/corrupt.h): config, geometry, the non-linear map against a
 * naive np.interp, rates, determinism across keys and threads. */
#include "check.h"
#include "genesis/config.h"
#include "genesis/corrupt.h"
#include "genesis/error.h"
#include "genesis/rng.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { R = 64, C = 64, D = 32, NV = R * C * D };

static size_t at(int i, int j, int k, int cols, int deps)
{
    return ((size_t)i * cols + j) * deps + k;
}

/* A cube of distinct values in [0, 1): v * golden ratio mod 1 (distinct for NV < 2^24). */
static void fill_distinct(float *cube, size_t n)
{
    for (size_t v = 0; v < n; v++) {
        double x = (double)v * 0.6180339887498949;
        cube[v] = (float)(x - floor(x));
    }
}

/* The paper's corruption settings: the defaults of the configuration schema. */
static struct config_corrupt paper(void)
{
    genesis_config cfg;
    if (config_defaults(&cfg) != GEN_OK) abort();
    return cfg.corrupt;
}

static struct config_corrupt only(void)
{
    struct config_corrupt c = paper();
    c.flip_rate = c.local_rate = c.nonlinear_rate = c.paint_rate = 0;
    return c;
}

static void test_config(void)
{
    struct config_corrupt c = paper();
    EXPECT(c.flip_rate == 0.4 && c.flip_max == 3 && c.local_rate == 0.5 &&
               c.local_blocks == 10000 && c.nonlinear_rate == 0.9 && c.bezier_samples == 100000 &&
               c.invert_rate == 0.5 && c.paint_rate == 0.9 && c.inpaint_rate == 0.2 &&
               c.inpaint_max_blocks == 5 && c.inpaint_continue == 0.95 &&
               c.outpaint_extra_blocks == 4 && c.outpaint_continue == 0.95,
           "defaults are the paper's");
    EXPECT_OK(config_corrupt_check(&c));
    /* the schema's ranges bound what a record can hold */
    struct config_corrupt bad = c;
    bad.inpaint_max_blocks = CORRUPT_MAX_INPAINT_BLOCKS;
    bad.outpaint_extra_blocks = CORRUPT_MAX_OUTPAINT_EXTRA;
    EXPECT_OK(config_corrupt_check(&bad));
    bad = c;
    bad.flip_rate = 1.5;
    EXPECT(config_corrupt_check(&bad) == GEN_ERR_USAGE, "flip_rate 1.5 accepted");
    EXPECT(strstr(gen_error_message(), "flip_rate") != NULL, "message names the key: %s",
           gen_error_message());
    bad = c;
    bad.bezier_samples = 1;
    EXPECT(config_corrupt_check(&bad) == GEN_ERR_USAGE, "bezier_samples 1 accepted");
    bad = c;
    bad.inpaint_max_blocks = CORRUPT_MAX_INPAINT_BLOCKS + 1;
    EXPECT(config_corrupt_check(&bad) == GEN_ERR_USAGE, "too many in-painting blocks accepted");
    bad = c;
    bad.outpaint_extra_blocks = CORRUPT_MAX_OUTPAINT_EXTRA + 1;
    EXPECT(corrupt_shape_check(&bad, 64, 64, 32) == GEN_ERR_USAGE,
           "the shape check accepts too many out-painting blocks");

    EXPECT(corrupt_shape_check(&c, 64, 64, 32) == GEN_OK, "64x64x32");
    EXPECT(corrupt_shape_check(&c, 64, 64, 12) == GEN_ERR_USAGE, "deps 12 is too small to "
                                                                 "out-paint");
    struct config_corrupt none = only();
    EXPECT(corrupt_shape_check(&none, 3, 5, 2) == GEN_OK, "nothing to draw: any shape");
    struct corrupt_workspace *ws = NULL;
    EXPECT(corrupt_workspace_create(&ws, &c, 9, 64, 32) == GEN_ERR_USAGE && ws == NULL,
           "9 rows accepted for local shuffling");
}

static void test_flip_primitive(void)
{
    int dims[3] = {7, 4, 5};
    size_t n = 7 * 4 * 5;
    float a[140], b[140];
    fill_distinct(a, n);
    for (int axis = 0; axis < 3; axis++) {
        memcpy(b, a, sizeof a);
        EXPECT_OK(corrupt_flip_axis(b, dims[0], dims[1], dims[2], axis));
        int wrong = 0;
        for (int i = 0; i < dims[0]; i++)
            for (int j = 0; j < dims[1]; j++)
                for (int k = 0; k < dims[2]; k++) {
                    int s[3] = {i, j, k};
                    s[axis] = dims[axis] - 1 - s[axis];
                    wrong += b[at(i, j, k, 4, 5)] != a[at(s[0], s[1], s[2], 4, 5)];
                }
        EXPECT(wrong == 0, "axis %d: %d voxels not reversed", axis, wrong);
        EXPECT_OK(corrupt_flip_axis(b, dims[0], dims[1], dims[2], axis));
        EXPECT(memcmp(a, b, sizeof a) == 0, "axis %d: flip is not an involution", axis);
    }
    EXPECT(corrupt_flip_axis(b, 7, 4, 5, 3) == GEN_ERR_USAGE, "axis 3 accepted");
}

/* Flips drawn in corrupt_sample apply to input and target alike. */
static void test_flip_in_sample(float *cube, float *in, float *tg, float *ref)
{
    struct config_corrupt c = only();
    c.flip_rate = 0.7;
    struct corrupt_workspace *ws;
    EXPECT_OK(corrupt_workspace_create(&ws, &c, R, C, D));
    int seen_axes = 0, seen_flips[4] = {0};
    for (uint64_t s = 0; s < 40; s++) {
        struct corrupt_record rec;
        EXPECT_OK(corrupt_sample(ws, 11, 0, s, cube, in, tg, &rec));
        memcpy(ref, cube, NV * sizeof *ref);
        for (int a = 0; a < 3; a++)
            if (rec.flip_axes & (1u << a)) corrupt_flip_axis(ref, R, C, D, a);
        EXPECT(memcmp(ref, tg, NV * sizeof *tg) == 0, "sample %d: target is not the flipped cube",
               (int)s);
        EXPECT(memcmp(tg, in, NV * sizeof *tg) == 0, "sample %d: input differs from target",
               (int)s);
        EXPECT(((rec.mask & CORRUPT_FLIP) != 0) == (rec.flips > 0), "flip bit vs count");
        seen_axes |= 1 << rec.flip_axes;
        seen_flips[rec.flips]++;
    }
    EXPECT(seen_flips[0] && seen_flips[1] && seen_flips[2] && seen_flips[3],
           "flip counts 0..3 all occur in 40 samples");
    EXPECT(__builtin_popcount((unsigned)seen_axes) >= 6, "flip axis sets seen: %x", seen_axes);
    corrupt_workspace_destroy(ws);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_shuffle_block(void)
{
    enum { SR = 12, SC = 11, SD = 10, SN = SR * SC * SD };
    static float src[SN], dst[SN], before[SN], scratch[SN], got[SN], want[SN];
    fill_distinct(src, SN);
    rng_stream rng;
    rng_stream_init(&rng, 5, 0, 0, RNG_PURPOSE_TEST);
    const int corners[][3] = {{0, 0, 0}, {3, 2, 7}, {9, 10, 0}, {5, 5, 5}};
    const int sizes[][3] = {{2, 3, 2}, {6, 1, 3}, {3, 1, 10}, {1, 1, 1}};
    for (int b = 0; b < 4; b++) {
        for (size_t v = 0; v < SN; v++) dst[v] = before[v] = 2.0f + (float)v;
        EXPECT_OK(corrupt_shuffle_block(dst, src, SR, SC, SD, corners[b], sizes[b], scratch, &rng));
        size_t n = 0, outside_changed = 0, moved = 0;
        for (int i = 0; i < SR; i++)
            for (int j = 0; j < SC; j++)
                for (int k = 0; k < SD; k++) {
                    size_t v = at(i, j, k, SC, SD);
                    int inside = i >= corners[b][0] && i < corners[b][0] + sizes[b][0] &&
                                 j >= corners[b][1] && j < corners[b][1] + sizes[b][1] &&
                                 k >= corners[b][2] && k < corners[b][2] + sizes[b][2];
                    if (inside) {
                        got[n] = dst[v];
                        want[n++] = src[v];
                        moved += dst[v] != src[v];
                    } else {
                        outside_changed += dst[v] != before[v];
                    }
                }
        qsort(got, n, sizeof *got, cmp_float);
        qsort(want, n, sizeof *want, cmp_float);
        EXPECT(memcmp(got, want, n * sizeof *got) == 0, "block %d is not a permutation", b);
        EXPECT(outside_changed == 0, "block %d: %zu voxels outside changed", b, outside_changed);
        if (n >= 18) EXPECT(moved > 0, "block %d of %zu voxels left in order", b, n);
    }
    const int bad_corner[3] = {11, 0, 0}, bad_size[3] = {2, 1, 1};
    EXPECT(corrupt_shuffle_block(dst, src, SR, SC, SD, bad_corner, bad_size, scratch, &rng) ==
               GEN_ERR_USAGE,
           "block outside the cube accepted");

    /* Uniform permutations: a 1x1x3 block has 6 orders, each with probability 1/6. */
    long counts[6] = {0};
    const int corner[3] = {0, 0, 0}, size[3] = {1, 1, 3};
    float s3[3] = {0, 1, 2}, d3[3];
    enum { TRIALS = 60000 };
    for (int t = 0; t < TRIALS; t++) {
        corrupt_shuffle_block(d3, s3, 1, 1, 3, corner, size, scratch, &rng);
        int a = (int)d3[0], b = (int)d3[1];
        counts[a * 2 + b - (b > a)]++; /* (0,1) (0,2) (1,0) (1,2) (2,0) (2,1) -> 0..5 */
    }
    long total = 0;
    for (int p = 0; p < 6; p++) {
        double mean = TRIALS / 6.0, sigma = sqrt(TRIALS * (1 / 6.0) * (5 / 6.0));
        EXPECT(fabs(counts[p] - mean) <= 4 * sigma, "permutation %d: %ld of %d", p, counts[p],
               TRIALS);
        total += counts[p];
    }
    EXPECT(total == TRIALS, "permutations counted %ld", total);
}

/* Local shuffling inside corrupt_sample reads blocks from the uncorrupted cube. */
static void test_local_in_sample(float *cube, float *in, float *tg)
{
    struct config_corrupt c = only();
    c.local_rate = 1;
    struct corrupt_workspace *ws;
    EXPECT_OK(corrupt_workspace_create(&ws, &c, R, C, D));
    struct corrupt_record rec;
    EXPECT_OK(corrupt_sample(ws, 3, 1, 7, cube, in, tg, &rec));
    EXPECT(rec.mask == CORRUPT_LOCAL, "mask %x", rec.mask);
    EXPECT(memcmp(tg, cube, NV * sizeof *tg) == 0, "target must be the cube");
    size_t changed = 0, moved_far = 0;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            for (int k = 0; k < D; k++) {
                size_t v = at(i, j, k, C, D);
                if (in[v] == tg[v]) continue;
                changed++;
                /* the value must come from within one block's reach: |offset| < axis / 10 */
                int found = 0;
                for (int di = -(R / 10 - 1); di <= R / 10 - 1 && !found; di++)
                    for (int dj = -(C / 10 - 1); dj <= C / 10 - 1 && !found; dj++)
                        for (int dk = -(D / 10 - 1); dk <= D / 10 - 1 && !found; dk++) {
                            int a = i + di, b = j + dj, e = k + dk;
                            if (a < 0 || b < 0 || e < 0 || a >= R || b >= C || e >= D) continue;
                            found = tg[at(a, b, e, C, D)] == in[v];
                        }
                moved_far += !found;
            }
    EXPECT(changed > NV / 4, "only %zu of %d voxels shuffled", changed, NV);
    EXPECT(moved_far == 0, "%zu voxels came from farther than one block", moved_far);
    corrupt_workspace_destroy(ws);
}

/* ---- the non-linear map against a naive np.interp ---------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The curve as corrupt.h documents it, sorted with qsort; np.interp by plain bisection. */
static void naive_tables(const double p[4], int invert, int n, double *xs, double *ys)
{
    for (int k = 0; k < n; k++) {
        double t = k == n - 1 ? 1.0 : (double)k * (1.0 / (double)(n - 1));
        double s = 1.0 - t;
        double b1 = 3.0 * (t * t) * s, b2 = 3.0 * t * (s * s), b3 = s * s * s;
        xs[k] = p[0] * b1 + p[2] * b2 + b3;
        ys[k] = p[1] * b1 + p[3] * b2 + b3;
    }
    qsort(xs, (size_t)n, sizeof *xs, cmp_double);
    if (!invert) qsort(ys, (size_t)n, sizeof *ys, cmp_double);
}

static double naive_interp(double v, const double *xs, const double *ys, int n)
{
    if (isnan(v)) return v;
    if (v < xs[0]) return ys[0];
    if (v >= xs[n - 1]) return ys[n - 1];
    int lo = 0, hi = n - 1; /* xs[lo] <= v < xs[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (xs[mid] <= v) lo = mid;
        else hi = mid;
    }
    if (xs[lo] == v) return ys[lo];
    return (ys[lo + 1] - ys[lo]) / (xs[lo + 1] - xs[lo]) * (v - xs[lo]) + ys[lo];
}

static void test_nonlinear(void)
{
    enum { NS = 100000, NVAL = 40000 };
    static double xs[NS], ys[NS];
    static float vals[NVAL], mapped[NVAL];
    struct config_corrupt c = paper();
    struct corrupt_workspace *ws;
    EXPECT_OK(corrupt_workspace_create(&ws, &c, R, C, D));
    /* control points: random ones, a non-monotone x (S-shaped back and forth), flat ends */
    /* Control points in [0, 1) (what corrupt_sample draws) always give monotone x(t) and y(t):
     * the derivative's Bernstein coefficients (a, c - a, 1 - c) satisfy (a - c)^2 <= a (1 - c).
     * So the sort is mostly a reversal; points outside [0, 1] (sets 8..) make the curve turn
     * back and exercise the merge sort and unsorted-y interpolation. */
    enum { SETS = 12, IN_RANGE = 8 };
    double sets[SETS][4] = {{0.3, 0.6, 0.7, 0.2}, {0.95, 0.1, 0.05, 0.9}, {0.99, 0.99, 0.0, 0.0},
                            {0.0, 0.0, 0.0, 0.0}, {0.5, 0.5, 0.5, 0.5},   {0.9, 0.3, 0.1, 0.6},
                            {0},                  {0},                    {2.0, -1.0, -1.0, 2.0},
                            {3.0, 0.5, -2.0, 0.5}, {-0.5, 1.7, 1.5, -0.7}, {2.0, 0.2, 1.5, 0.4}};
    rng_stream rng;
    rng_stream_init(&rng, 99, 0, 0, RNG_PURPOSE_TEST);
    for (int s = 6; s < 8; s++)
        for (int q = 0; q < 4; q++) sets[s][q] = rng_uniform(&rng);
    for (int s = 0; s < SETS; s++)
        for (int invert = 0; invert < 2; invert++) {
            naive_tables(sets[s], invert, NS, xs, ys);
            /* values: a grid over [-0.05, 1.05], exact sample x values, random ones, NaN */
            for (int i = 0; i < NVAL; i++) {
                if (i < 10000) vals[i] = (float)(-0.05 + 1.1 * i / 9999.0);
                else if (i < 12000) vals[i] = (float)xs[(size_t)rng_randint(&rng, 0, NS - 1)];
                else vals[i] = rng_uniform_float(&rng);
            }
            vals[0] = 0.0f;
            vals[1] = 1.0f;
            vals[2] = NAN;
            memcpy(mapped, vals, sizeof vals);
            EXPECT_OK(corrupt_nonlinear_map(ws, sets[s], invert, mapped, NVAL));
            int mismatches = 0, first = -1;
            for (int i = 0; i < NVAL; i++) {
                float want = (float)naive_interp(vals[i], xs, ys, NS);
                int same = (isnan(want) && isnan(mapped[i])) || want == mapped[i];
                if (!same && first < 0) first = i;
                mismatches += !same;
            }
            EXPECT(mismatches == 0, "set %d invert %d: %d values differ from naive interp (first "
                                    "at %g: %.9g vs %.9g)", s, invert, mismatches,
                   first >= 0 ? vals[first] : 0.0, first >= 0 ? mapped[first] : 0.0,
                   first >= 0 ? naive_interp(vals[first], xs, ys, NS) : 0.0);

            if (s >= IN_RANGE) continue;
            /* end values and monotonicity over the grid part of vals (ascending) */
            double at0 = mapped[0], at1 = mapped[1];
            EXPECT_NEAR(at0, invert ? 1.0 : 0.0, 1e-6, "map(0)");
            EXPECT_NEAR(at1, invert ? 0.0 : 1.0, 1e-6, "map(1)");
            /* The inverting map pairs sorted x with y in t order (the reference's behaviour): it
             * decreases because y(t) is monotone for these control points; the other map
             * increases because both tables are sorted. */
            {
                int wrong = 0;
                for (int i = 4; i < 10000; i++)
                    wrong += invert ? mapped[i] > mapped[i - 1] : mapped[i] < mapped[i - 1];
                EXPECT(wrong == 0, "set %d invert %d: map not monotone at %d places", s, invert,
                       wrong);
            }
        }
    corrupt_workspace_destroy(ws);
}

/* ---- painting -------------------------------------------------------------------------------- */

static int inside_block(const struct corrupt_block *b, int i, int j, int k)
{
    return i >= b->corner[0] && i < b->corner[0] + b->size[0] && j >= b->corner[1] &&
           j < b->corner[1] + b->size[1] && k >= b->corner[2] && k < b->corner[2] + b->size[2];
}

static void test_painting(float *in, float *tg)
{
    /* a cube outside [0, 1) so that every noise voxel is told apart from the cube */
    static float cube[NV];
    for (size_t v = 0; v < NV; v++) cube[v] = 2.0f + (float)v;
    const int dims[3] = {R, C, D};
    for (int mode = 0; mode < 2; mode++) { /* 0 in-painting, 1 out-painting */
        struct config_corrupt c = only();
        c.paint_rate = 1;
        c.inpaint_rate = mode == 0 ? 1 : 0;
        struct corrupt_workspace *ws;
        EXPECT_OK(corrupt_workspace_create(&ws, &c, R, C, D));
        int block_counts[CORRUPT_MAX_BLOCKS + 1] = {0};
        for (uint64_t s = 0; s < 60; s++) {
            struct corrupt_record rec;
            EXPECT_OK(corrupt_sample(ws, 8, 2, s, cube, in, tg, &rec));
            EXPECT(rec.mask == (mode == 0 ? CORRUPT_INPAINT : CORRUPT_OUTPAINT), "mask %x",
                   rec.mask);
            EXPECT(memcmp(tg, cube, NV * sizeof *tg) == 0, "target changed");
            int max_blocks = mode == 0 ? c.inpaint_max_blocks : 1 + c.outpaint_extra_blocks;
            EXPECT(rec.paint_blocks >= (mode == 1) && rec.paint_blocks <= max_blocks,
                   "%d blocks", rec.paint_blocks);
            block_counts[rec.paint_blocks]++;
            for (int b = 0; b < rec.paint_blocks; b++)
                for (int a = 0; a < 3; a++) {
                    int size = rec.blocks[b].size[a], corner = rec.blocks[b].corner[a];
                    int lo = mode == 0 ? dims[a] / 6 : dims[a] - 4 * dims[a] / 7;
                    int hi = mode == 0 ? dims[a] / 3 : dims[a] - 3 * dims[a] / 7;
                    EXPECT(size >= lo && size <= hi, "block %d axis %d size %d not in [%d, %d]",
                           b, a, size, lo, hi);
                    EXPECT(corner >= 3 && corner <= dims[a] - size - 3,
                           "block %d axis %d corner %d not in [3, %d]", b, a, corner,
                           dims[a] - size - 3);
                }
            long bad_in = 0, bad_out = 0;
            for (int i = 0; i < R; i++)
                for (int j = 0; j < C; j++)
                    for (int k = 0; k < D; k++) {
                        size_t v = at(i, j, k, C, D);
                        int in_any = 0;
                        for (int b = 0; b < rec.paint_blocks; b++)
                            in_any |= inside_block(&rec.blocks[b], i, j, k);
                        int noise = in[v] >= 0.0f && in[v] < 1.0f;
                        int kept = in[v] == cube[v];
                        /* in-painting: blocks are noise, the rest unchanged;
                         * out-painting: blocks are kept, the rest noise */
                        if (in_any) bad_in += mode == 0 ? !noise : !kept;
                        else bad_out += mode == 0 ? !kept : !noise;
                    }
            EXPECT(bad_in == 0 && bad_out == 0,
                   "sample %d mode %d: %ld wrong voxels in blocks, %ld outside", (int)s, mode,
                   bad_in, bad_out);
        }
        int kinds = 0;
        for (int b = 0; b <= CORRUPT_MAX_BLOCKS; b++) kinds += block_counts[b] > 0;
        EXPECT(kinds >= 2, "mode %d: block counts never vary", mode);
        corrupt_workspace_destroy(ws);
    }
}

/* ---- rates ----------------------------------------------------------------------------------- */

static int within_4_sigma(long observed, long n, double p)
{
    double sigma = sqrt(n * p * (1 - p));
    return fabs((double)observed - n * p) <= 4 * sigma;
}

static void test_rates(void)
{
    enum { S = 16, N = 4000 };
    static float cube[S * S * S], in[S * S * S], tg[S * S * S];
    fill_distinct(cube, S * S * S);
    struct config_corrupt c = paper();
    c.local_blocks = 4; /* rates do not depend on the counts; keep the test fast */
    c.bezier_samples = 64;
    struct corrupt_workspace *ws;
    EXPECT_OK(corrupt_workspace_create(&ws, &c, S, S, S));
    long flip = 0, flip2 = 0, local = 0, nl = 0, inv = 0, paint = 0, inpaint = 0, blocks = 0;
    long in_zero = 0;
    for (int s = 0; s < N; s++) {
        struct corrupt_record rec;
        EXPECT_OK(corrupt_sample(ws, 1234, 5, (uint64_t)s, cube, in, tg, &rec));
        flip += (rec.mask & CORRUPT_FLIP) != 0;
        flip2 += rec.flips >= 2;
        local += (rec.mask & CORRUPT_LOCAL) != 0;
        nl += (rec.mask & CORRUPT_NONLINEAR) != 0;
        inv += (rec.mask & CORRUPT_INVERT) != 0;
        int p = (rec.mask & (CORRUPT_INPAINT | CORRUPT_OUTPAINT)) != 0;
        paint += p;
        inpaint += (rec.mask & CORRUPT_INPAINT) != 0;
        if (rec.mask & CORRUPT_INPAINT) {
            blocks += rec.paint_blocks;
            in_zero += rec.paint_blocks == 0;
        }
        EXPECT(!((rec.mask & CORRUPT_INPAINT) && (rec.mask & CORRUPT_OUTPAINT)), "both paints");
    }
    EXPECT(within_4_sigma(flip, N, c.flip_rate), "flip %ld of %d", flip, N);
    EXPECT(within_4_sigma(flip2, N, c.flip_rate * c.flip_rate), "2+ flips %ld of %d", flip2, N);
    EXPECT(within_4_sigma(local, N, c.local_rate), "local %ld of %d", local, N);
    EXPECT(within_4_sigma(nl, N, c.nonlinear_rate), "non-linear %ld of %d", nl, N);
    EXPECT(within_4_sigma(inv, nl, c.invert_rate), "inverting %ld of %ld", inv, nl);
    EXPECT(within_4_sigma(paint, N, c.paint_rate), "painting %ld of %d", paint, N);
    EXPECT(within_4_sigma(inpaint, paint, c.inpaint_rate), "in-painting %ld of %ld", inpaint,
           paint);
    EXPECT(within_4_sigma(in_zero, inpaint, 1 - c.inpaint_continue),
           "in-painting with no block %ld of %ld", in_zero, inpaint);
    corrupt_workspace_destroy(ws);
}

/* Odd and minimal shapes: every corruption drawn, nothing outside the cube touched (ASan). */
static void test_odd_shapes(void)
{
    const int shapes[][3] = {{14, 14, 14}, {17, 23, 15}, {31, 14, 40}};
    for (int s = 0; s < 3; s++) {
        int r = shapes[s][0], c = shapes[s][1], d = shapes[s][2];
        size_t nv = (size_t)r * c * d;
        float *cube = malloc(nv * sizeof *cube), *in = malloc(nv * sizeof *in);
        float *tg = malloc(nv * sizeof *tg);
        if (!cube || !in || !tg) return;
        fill_distinct(cube, nv);
        struct config_corrupt cfg = paper();
        cfg.flip_rate = cfg.local_rate = cfg.nonlinear_rate = cfg.paint_rate = 1;
        cfg.bezier_samples = 1000;
        struct corrupt_workspace *ws;
        EXPECT_OK(corrupt_workspace_create(&ws, &cfg, r, c, d));
        int bad = 0;
        for (uint64_t i = 0; i < 100; i++) {
            EXPECT_OK(corrupt_sample(ws, 3, 0, i, cube, in, tg, NULL));
            for (size_t v = 0; v < nv; v++) bad += !(in[v] >= 0.0f && in[v] <= 1.0f);
        }
        EXPECT(bad == 0, "%d x %d x %d: %d input values outside [0, 1]", r, c, d, bad);
        corrupt_workspace_destroy(ws);
        free(cube);
        free(in);
        free(tg);
    }
}

/* ---- determinism ----------------------------------------------------------------------------- */

struct thread_job {
    const float *cube;
    float *inputs, *targets; /* [8][NV] */
    int first, stride, status;
};

static void *thread_main(void *arg)
{
    struct thread_job *job = arg;
    struct config_corrupt c = paper();
    struct corrupt_workspace *ws;
    job->status = corrupt_workspace_create(&ws, &c, R, C, D);
    if (job->status) return NULL;
    for (int s = job->first; s < 8 && !job->status; s += job->stride)
        job->status = corrupt_sample(ws, 77, 3, (uint64_t)(1000 + s), job->cube,
                                     job->inputs + (size_t)s * NV, job->targets + (size_t)s * NV,
                                     NULL);
    corrupt_workspace_destroy(ws);
    return NULL;
}

static void test_determinism(float *cube, float *in, float *tg)
{
    struct config_corrupt c = paper();
    struct corrupt_workspace *ws;
    EXPECT_OK(corrupt_workspace_create(&ws, &c, R, C, D));
    float *in2 = malloc(NV * sizeof *in2), *tg2 = malloc(NV * sizeof *tg2);
    EXPECT(in2 && tg2, "allocation");
    struct corrupt_record r1, r2;
    EXPECT_OK(corrupt_sample(ws, 77, 3, 1000, cube, in, tg, &r1));
    EXPECT_OK(corrupt_sample(ws, 77, 3, 1001, cube, in2, tg2, &r2)); /* workspace reuse */
    EXPECT_OK(corrupt_sample(ws, 77, 3, 1000, cube, in2, tg2, &r2));
    EXPECT(memcmp(in, in2, NV * sizeof *in) == 0 && memcmp(tg, tg2, NV * sizeof *tg) == 0 &&
               memcmp(&r1, &r2, sizeof r1) == 0,
           "same key, different output");
    EXPECT_OK(corrupt_sample(ws, 77, 3, 1001, cube, in2, tg2, NULL));
    EXPECT(memcmp(in, in2, NV * sizeof *in) != 0, "sample index does not change the output");
    EXPECT_OK(corrupt_sample(ws, 77, 4, 1000, cube, in2, tg2, NULL));
    EXPECT(memcmp(in, in2, NV * sizeof *in) != 0, "epoch does not change the output");
    EXPECT_OK(corrupt_sample(ws, 78, 3, 1000, cube, in2, tg2, NULL));
    EXPECT(memcmp(in, in2, NV * sizeof *in) != 0, "seed does not change the output");
    EXPECT(corrupt_sample(ws, 77, 3, 1000, cube, in, in, NULL) == GEN_ERR_USAGE,
           "aliased input and target accepted");

    /* sequential reference for samples 1000..1007, then two threads interleaved */
    float *seq_in = malloc(8 * (size_t)NV * sizeof(float)), *seq_tg = malloc(8 * (size_t)NV * 4);
    float *par_in = malloc(8 * (size_t)NV * sizeof(float)), *par_tg = malloc(8 * (size_t)NV * 4);
    EXPECT(seq_in && seq_tg && par_in && par_tg, "allocation");
    for (int s = 0; s < 8; s++)
        EXPECT_OK(corrupt_sample(ws, 77, 3, (uint64_t)(1000 + s), cube, seq_in + (size_t)s * NV,
                                 seq_tg + (size_t)s * NV, NULL));
    struct thread_job jobs[2] = {{cube, par_in, par_tg, 0, 2, 0}, {cube, par_in, par_tg, 1, 2, 0}};
    pthread_t threads[2];
    for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, thread_main, &jobs[t]);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    EXPECT(jobs[0].status == 0 && jobs[1].status == 0, "thread status %d %d", jobs[0].status,
           jobs[1].status);
    EXPECT(memcmp(seq_in, par_in, 8 * (size_t)NV * sizeof(float)) == 0 &&
               memcmp(seq_tg, par_tg, 8 * (size_t)NV * sizeof(float)) == 0,
           "threads give different corruptions");
    free(seq_in);
    free(seq_tg);
    free(par_in);
    free(par_tg);
    free(in2);
    free(tg2);
    corrupt_workspace_destroy(ws);
}

int main(void)
{
    float *cube = malloc(NV * sizeof *cube), *in = malloc(NV * sizeof *in);
    float *tg = malloc(NV * sizeof *tg), *ref = malloc(NV * sizeof *ref);
    if (!cube || !in || !tg || !ref) return 1;
    fill_distinct(cube, NV);
    test_config();
    test_flip_primitive();
    test_flip_in_sample(cube, in, tg, ref);
    test_shuffle_block();
    test_local_in_sample(cube, in, tg);
    test_nonlinear();
    test_painting(in, tg);
    test_rates();
    test_odd_shapes();
    test_determinism(cube, in, tg);
    free(cube);
    free(in);
    free(tg);
    free(ref);
    TEST_MAIN_END();
}
