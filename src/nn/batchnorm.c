/* Batch normalisation with the current batch's statistics (the reference's ContBatchNorm3d),
 * optionally fused with the ReLU that follows it in every LUConv. The per-channel sums pass through
 * one caller-supplied hook (nn_reduce_hook) so that they can be summed across ranks.
 * Conventions: include/genesis/nn.h. Tensors are [N, C, S]; a (n, c) slab of S voxels is
 * contiguous. Sums are accumulated in double. Threads own channels for the sums (each channel's
 * samples summed in order, as with one thread) and (n, c) slabs for the elementwise passes. */
#include "genesis/error.h"
#include "genesis/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int bn_check(const batchnorm3d_shape *s, const char *who)
{
    CHECK(s != NULL, GEN_ERR_USAGE, "%s: NULL shape", who);
    CHECK(s->N > 0 && s->C > 0 && s->S > 0, GEN_ERR_USAGE, "%s: bad shape N=%d C=%d S=%ld", who,
          s->N, s->C, s->S);
    CHECK(s->eps > 0.0 && s->momentum >= 0.0 && s->momentum <= 1.0, GEN_ERR_USAGE,
          "%s: eps %g must be > 0 and momentum %g in [0, 1]", who, s->eps, s->momentum);
    return GEN_OK;
}

/* Applies the hook (if any) to the 2C+1 sums and checks the global count it returns. */
static int bn_reduce(double *sums, int C, const nn_reduce_hook *hook, const char *who)
{
    if (hook && hook->fn) CALL(hook->fn(sums, 2 * C + 1, hook->ctx));
    CHECK(sums[2 * C] >= 2.0, GEN_ERR_USAGE,
          "%s: batch norm needs more than one value per channel (got %.0f)", who, sums[2 * C]);
    return GEN_OK;
}

/* sum and sum of squares of one contiguous slab, in double with four partial sums */
static void slab_sums(const float *x, long S, double *sum, double *sumsq)
{
    double s[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
    long i = 0;
    for (; i + 4 <= S; i += 4)
        for (int k = 0; k < 4; k++) {
            double v = x[i + k];
            s[k] += v;
            q[k] += v * v;
        }
    for (; i < S; i++) {
        double v = x[i];
        s[0] += v;
        q[0] += v * v;
    }
    *sum += (s[0] + s[1]) + (s[2] + s[3]);
    *sumsq += (q[0] + q[1]) + (q[2] + q[3]);
}

/* The elementwise pass: per (n, c) slab, xhat = (x - mean[c]) * invstd[c], out = weight[c] * xhat +
 * bias[c] (ReLU if s->relu). out or xhat may be NULL or the same array as inp. */
static void normalise(float *out, float *xhat, const float *inp, const double *mean_c,
                      const double *invstd_c, const float *weight, const float *bias,
                      const batchnorm3d_shape *s)
{
    const int N = s->N, C = s->C;
    const long S = s->S;
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)N * C * S))
    for (int nc = 0; nc < N * C; nc++) {
        const int c = nc % C;
        const size_t base = (size_t)nc * S;
        const float mean = (float)mean_c[c], invstd = (float)invstd_c[c];
        const float g = weight[c], b = bias[c];
        if (xhat && !out) { /* normalise only (the model's in-place use) */
            for (long i = 0; i < S; i++) xhat[base + i] = (inp[base + i] - mean) * invstd;
            continue;
        }
        for (long i = 0; i < S; i++) {
            float xh = (inp[base + i] - mean) * invstd;
            float y = g * xh + b;
            if (xhat) xhat[base + i] = xh;
            if (s->relu) y = y < 0.0f ? 0.0f : y;
            if (out) out[base + i] = y;
        }
    }
}

int batchnorm3d_forward(float *out, float *xhat, float *save_mean, float *save_invstd,
                        float *running_mean, float *running_var, const float *inp,
                        const float *weight, const float *bias, const batchnorm3d_shape *s,
                        const nn_reduce_hook *hook)
{
    CALL(bn_check(s, "batchnorm3d_forward"));
    CHECK(inp && weight && bias, GEN_ERR_USAGE, "batchnorm3d_forward: NULL tensor");
    const int N = s->N, C = s->C;
    const long S = s->S;
    int status = GEN_OK;
    double *sums = calloc(2 * (size_t)C + 1, sizeof *sums);
    CHECK_ALLOC_GOTO(sums, (2 * (size_t)C + 1) * sizeof *sums);
    /* sums: [0, C) sum x, [C, 2C) sum x^2, [2C] element count per channel */
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)N * C * S))
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++)
            slab_sums(inp + ((size_t)n * C + c) * S, S, &sums[c], &sums[C + c]);
    sums[2 * C] = (double)N * (double)S;
    CALL_GOTO(bn_reduce(sums, C, hook, "batchnorm3d_forward"));
    const double M = sums[2 * C];
    for (int c = 0; c < C; c++) {
        double mean = sums[c] / M;
        double var = sums[C + c] / M - mean * mean; /* biased: used to normalise */
        if (var < 0.0) var = 0.0;
        double invstd = 1.0 / sqrt(var + s->eps);
        if (save_mean) save_mean[c] = (float)mean;
        if (save_invstd) save_invstd[c] = (float)invstd;
        if (running_mean)
            running_mean[c] = (float)((1.0 - s->momentum) * running_mean[c] + s->momentum * mean);
        if (running_var)
            running_var[c] = (float)((1.0 - s->momentum) * running_var[c] +
                                     s->momentum * var * M / (M - 1.0)); /* unbiased */
        sums[c] = mean;     /* reuse the array: mean and invstd per channel */
        sums[C + c] = invstd;
    }
    normalise(out, xhat, inp, sums, sums + C, weight, bias, s);
cleanup:
    free(sums);
    return status;
}

int batchnorm3d_forward_running(float *out, float *xhat, float *invstd, const float *inp,
                                const float *running_mean, const float *running_var,
                                const float *weight, const float *bias, const batchnorm3d_shape *s)
{
    CALL(bn_check(s, "batchnorm3d_forward_running"));
    CHECK(inp && running_mean && running_var && weight && bias, GEN_ERR_USAGE,
          "batchnorm3d_forward_running: NULL tensor");
    const int C = s->C;
    double *stats = malloc(2 * (size_t)C * sizeof *stats); /* [0, C) mean, [C, 2C) invstd */
    CHECK_ALLOC(stats, 2 * (size_t)C * sizeof *stats);
    for (int c = 0; c < C; c++) {
        const double var = running_var[c] > 0.0f ? running_var[c] : 0.0; /* a variance: >= 0 */
        stats[c] = running_mean[c];
        stats[C + c] = 1.0 / sqrt(var + s->eps);
        if (invstd) invstd[c] = (float)stats[C + c];
    }
    normalise(out, xhat, inp, stats, stats + C, weight, bias, s);
    free(stats);
    return GEN_OK;
}

enum { SUM_LANES = 8 };

/* s[j] += dy, q[j] += dy * xhat over n voxels (a multiple of SUM_LANES) in SUM_LANES lanes, dy =
 * dout masked by the ReLU (g xhat + b > 0). Both inputs are loaded and the mask is a select, so
 * the loop vectorises (a branch per voxel ran scalar, ~5 ns per voxel, mispredicted on real
 * activations). noinline: inlined into its caller, GCC 12 no longer vectorises it. */
__attribute__((noinline)) static void lane_sums_relu(const float *restrict dout,
                                                     const float *restrict xhat, long n, float g,
                                                     float b, float *restrict s, float *restrict q)
{
    float ls[SUM_LANES] = {0}, lq[SUM_LANES] = {0};
    for (long i = 0; i < n; i += SUM_LANES)
        for (int j = 0; j < SUM_LANES; j++) {
            const float xh = xhat[i + j], d = dout[i + j];
            const float dy = g * xh + b > 0.0f ? d : 0.0f;
            ls[j] += dy;
            lq[j] += dy * xh;
        }
    for (int j = 0; j < SUM_LANES; j++) s[j] += ls[j], q[j] += lq[j];
}

/* lane_sums_relu without the mask: dy = dout. */
static void lane_sums(const float *restrict dout, const float *restrict xhat, long n,
                      float *restrict s, float *restrict q)
{
    float ls[SUM_LANES] = {0}, lq[SUM_LANES] = {0};
    for (long i = 0; i < n; i += SUM_LANES)
        for (int j = 0; j < SUM_LANES; j++) {
            ls[j] += dout[i + j];
            lq[j] += dout[i + j] * xhat[i + j];
        }
    for (int j = 0; j < SUM_LANES; j++) s[j] += ls[j], q[j] += lq[j];
}

/* Local backward sums of one slab: sum dy and sum dy * xhat, dy = dout masked by the ReLU when
 * relu. Blocks of 256 voxels are summed in float over SUM_LANES lanes (32 terms per lane,
 * relative error ~1e-6 of sum |dy|), blocks are added in double. */
static void slab_backward_sums(const float *dout, const float *xhat, long S, float g, float b,
                               int relu, double *sum_dy, double *sum_dyx)
{
    enum { BLOCK = 256 };
    double sd = 0, sdx = 0;
    for (long i0 = 0; i0 < S; i0 += BLOCK) {
        const long i1 = i0 + BLOCK < S ? i0 + BLOCK : S;
        float s[SUM_LANES] = {0}, q[SUM_LANES] = {0};
        const long n = (i1 - i0) / SUM_LANES * SUM_LANES;
        if (relu)
            lane_sums_relu(dout + i0, xhat + i0, n, g, b, s, q);
        else
            lane_sums(dout + i0, xhat + i0, n, s, q);
        for (long i = i0 + n; i < i1; i++) {
            float xh = xhat[i], dy = dout[i];
            if (relu) dy = g * xh + b > 0.0f ? dy : 0.0f;
            s[0] += dy;
            q[0] += dy * xh;
        }
        for (int j = 0; j < SUM_LANES; j++) sd += s[j], sdx += q[j];
    }
    *sum_dy += sd;
    *sum_dyx += sdx;
}

/* dinp (=, or += when accumulate) k (dy - mean_dy - xhat mean_dyx) over one slab */
static void slab_backward_dx(float *dinp, const float *dout, const float *xhat, long S, float g,
                             float b, int relu, float k, float mean_dy, float mean_dyx,
                             int accumulate)
{
    if (accumulate) {
        for (long i = 0; i < S; i++) {
            float xh = xhat[i], dy = dout[i];
            if (relu) dy = g * xh + b > 0.0f ? dy : 0.0f;
            dinp[i] += k * (dy - mean_dy - xh * mean_dyx);
        }
    } else { /* dinp may be dout: each element is read before it is written */
        for (long i = 0; i < S; i++) {
            float xh = xhat[i], dy = dout[i];
            if (relu) dy = g * xh + b > 0.0f ? dy : 0.0f;
            dinp[i] = k * (dy - mean_dy - xh * mean_dyx);
        }
    }
}

int batchnorm3d_backward_reduce(double *sums, float *dweight, float *dbias, const float *dout,
                                const float *xhat, const float *weight, const float *bias,
                                const batchnorm3d_shape *s, const nn_reduce_hook *hook)
{
    CALL(bn_check(s, "batchnorm3d_backward_reduce"));
    CHECK(sums && dout && xhat && weight, GEN_ERR_USAGE, "batchnorm3d_backward_reduce: NULL tensor");
    CHECK(!s->relu || bias, GEN_ERR_USAGE, "batchnorm3d_backward: the ReLU mask needs the bias");
    const int N = s->N, C = s->C;
    const long S = s->S;
    /* sums: [0, C) sum dy, [C, 2C) sum dy * xhat, [2C] element count; dy = masked dout */
    memset(sums, 0, (2 * (size_t)C + 1) * sizeof *sums);
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)N * C * S))
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++) {
            size_t base = ((size_t)n * C + c) * S;
            slab_backward_sums(dout + base, xhat + base, S, weight[c], s->relu ? bias[c] : 0.0f,
                               s->relu, &sums[c], &sums[C + c]);
        }
    sums[2 * C] = (double)N * (double)S;
    /* parameter gradients take the local sums, before the hook */
    for (int c = 0; c < C; c++) {
        if (dbias) dbias[c] += (float)sums[c];
        if (dweight) dweight[c] += (float)sums[C + c];
    }
    CALL(bn_reduce(sums, C, hook, "batchnorm3d_backward"));
    return GEN_OK;
}

int batchnorm3d_backward_apply(float *dinp, const float *dout, const float *xhat,
                               const float *save_invstd, const float *weight, const float *bias,
                               const double *sums, const batchnorm3d_shape *s)
{
    CALL(bn_check(s, "batchnorm3d_backward_apply"));
    CHECK(dinp && dout && xhat && save_invstd && weight && sums, GEN_ERR_USAGE,
          "batchnorm3d_backward_apply: NULL tensor");
    CHECK(!s->relu || bias, GEN_ERR_USAGE, "batchnorm3d_backward: the ReLU mask needs the bias");
    const int N = s->N, C = s->C;
    const long S = s->S;
    const double M = sums[2 * C];
    CHECK(M >= 2.0, GEN_ERR_USAGE, "batchnorm3d_backward_apply: global count %g < 2", M);
    const int accumulate = dinp != dout;
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)N * C * S))
    for (int nc = 0; nc < N * C; nc++) {
        const int c = nc % C;
        const size_t base = (size_t)nc * S;
        slab_backward_dx(dinp + base, dout + base, xhat + base, S, weight[c],
                         s->relu ? bias[c] : 0.0f, s->relu, weight[c] * save_invstd[c],
                         (float)(sums[c] / M), (float)(sums[C + c] / M), accumulate);
    }
    return GEN_OK;
}

int batchnorm3d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *xhat, const float *save_invstd, const float *weight,
                         const float *bias, const batchnorm3d_shape *s, const nn_reduce_hook *hook)
{
    CALL(bn_check(s, "batchnorm3d_backward"));
    int status = GEN_OK;
    double *sums = calloc(2 * (size_t)s->C + 1, sizeof *sums);
    CHECK_ALLOC_GOTO(sums, (2 * (size_t)s->C + 1) * sizeof *sums);
    CALL_GOTO(batchnorm3d_backward_reduce(sums, dweight, dbias, dout, xhat, weight, bias, s, hook));
    CALL_GOTO(batchnorm3d_backward_apply(dinp, dout, xhat, save_invstd, weight, bias, sums, s));
cleanup:
    free(sums);
    return status;
}
