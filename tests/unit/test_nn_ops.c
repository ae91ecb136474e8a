/* The layers of src/nn other than convolutions, against naive double-precision implementations on
 * random shapes (odd sizes and channel counts included): batchnorm3d (+ReLU) forward/backward and
 * its reduce hook, ReLU, sigmoid, maxpool3d(2) with argmax, concat, MSE; bad arguments.
 * Tolerances: float results vs double references within a few float ulps of the values involved
 * (1e-5 relative to the tensor's scale; 1e-4 for BN backward, which subtracts means). */
#include "check.h"
#include "genesis/error.h"
#include "genesis/nn.h"
#include "genesis/rng.h"

#include <string.h>

static rng_stream rs;
static float frand(float lo, float hi) { return lo + (hi - lo) * rng_uniform_float(&rs); }
static int irand(int lo, int hi) { return (int)rng_randint(&rs, lo, hi); }
static float *rand_tensor(size_t n, float lo, float hi)
{
    float *p = calloc(1, (n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand(lo, hi);
    return p;
}
/* ---- batch norm --------------------------------------------------------------------------- */

/* naive: two-pass mean/var in double; out = relu?(g xhat + b) */
static void bn_ref_forward(double *out, double *xhat, double *mean, double *var, const float *x,
                           const float *g, const float *b, int N, int C, long S, double eps, int relu)
{
    double M = (double)N * S;
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < S; i++) s += x[((size_t)n * C + c) * S + i];
        mean[c] = s / M;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < S; i++) {
                double d = x[((size_t)n * C + c) * S + i] - mean[c];
                q += d * d;
            }
        var[c] = q / M;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < S; i++) {
                size_t k = ((size_t)n * C + c) * S + i;
                xhat[k] = (x[k] - mean[c]) / sqrt(var[c] + eps);
                double y = g[c] * xhat[k] + b[c];
                out[k] = relu && y < 0 ? 0 : y;
            }
    }
}

/* naive backward: the analytic BN gradient in double, ReLU mask from the reference output */
static void bn_ref_backward(double *dx, double *dg, double *db, const float *dy_in,
                            const double *xhat, const double *out, const double *var,
                            const float *g, int N, int C, long S, double eps, int relu)
{
    double M = (double)N * S;
    for (int c = 0; c < C; c++) {
        double sd = 0, sdx = 0;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < S; i++) {
                size_t k = ((size_t)n * C + c) * S + i;
                double dy = relu && !(out[k] > 0) ? 0 : dy_in[k];
                sd += dy;
                sdx += dy * xhat[k];
            }
        dg[c] = sdx;
        db[c] = sd;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < S; i++) {
                size_t k = ((size_t)n * C + c) * S + i;
                double dy = relu && !(out[k] > 0) ? 0 : dy_in[k];
                dx[k] = g[c] / sqrt(var[c] + eps) * (dy - sd / M - xhat[k] * sdx / M);
            }
    }
}

struct hook_ctx { /* adds another "rank's" sums: simulates an all-reduce over two ranks */
    double *other;
    int calls;
    int fail;
};
static int add_other(double *sums, int count, void *ctx)
{
    struct hook_ctx *h = ctx;
    h->calls++;
    if (h->fail) return GEN_ERR_MPI;
    for (int i = 0; i < count; i++) sums[i] += h->other[i];
    return GEN_OK;
}
static int capture(double *sums, int count, void *ctx)
{
    struct hook_ctx *h = ctx;
    memcpy(h->other, sums, (size_t)count * sizeof *sums);
    h->calls++;
    return GEN_OK;
}

static void test_batchnorm(int N, int C, long S, int relu)
{
    size_t n = (size_t)N * C * S;
    const double eps = 1e-5, mom = 0.1;
    float *x = rand_tensor(n, -2.f, 3.f), *g = rand_tensor(C, 0.5f, 1.5f), *b = rand_tensor(C, -.5f, .5f);
    for (int c = 0; c < C; c++) /* channel offsets and scales like real activations */
        for (int k = 0; k < N; k++)
            for (long i = 0; i < S; i++) {
                float *xi = &x[((size_t)k * C + c) * S + i];
                *xi = *xi * (1 + c % 3) + (float)c;
            }
    float *out = calloc(1, n * sizeof *out), *xhat = calloc(1, n * sizeof *xhat);
    float *rm = rand_tensor(C, -1, 1), *rv = rand_tensor(C, 0.5f, 2), *invstd = calloc(1, C * sizeof *invstd);
    float *rm0 = calloc(1, C * sizeof *rm0), *rv0 = calloc(1, C * sizeof *rv0);
    memcpy(rm0, rm, C * sizeof *rm0);
    memcpy(rv0, rv, C * sizeof *rv0);
    double *ro = calloc(1, n * sizeof *ro), *rx = calloc(1, n * sizeof *rx),
           *mean = calloc(1, C * sizeof *mean), *var = calloc(1, C * sizeof *var),
           *want = calloc(1, (n > (size_t)C ? n : (size_t)C) * sizeof *want);
    batchnorm3d_shape s = {N, C, S, mom, eps, relu};
    EXPECT_OK(batchnorm3d_forward(out, xhat, NULL, invstd, rm, rv, x, g, b, &s, NULL));
    bn_ref_forward(ro, rx, mean, var, x, g, b, N, C, S, eps, relu);
    char what[96];
    snprintf(what, sizeof what, "bn%s forward out N=%d C=%d S=%ld", relu ? "+relu" : "", N, C, S);
    expect_tensor_close(what, out, ro, n, 1e-5, 0);
    expect_tensor_close("bn forward xhat", xhat, rx, n, 1e-5, 0);
    double M = (double)N * S;
    for (int c = 0; c < C; c++) want[c] = (1 - mom) * rm0[c] + mom * mean[c];
    expect_tensor_close("bn running_mean", rm, want, C, 1e-5, 0);
    for (int c = 0; c < C; c++) want[c] = (1 - mom) * rv0[c] + mom * var[c] * M / (M - 1);
    expect_tensor_close("bn running_var (unbiased)", rv, want, C, 1e-5, 0);
    /* backward, accumulating into dinp / dweight / dbias that hold 1.0 already */
    float *dy = rand_tensor(n, -1, 1), *dx = calloc(1, n * sizeof *dx), *dg = calloc(1, C * sizeof *dg),
          *db = calloc(1, C * sizeof *db);
    for (size_t i = 0; i < n; i++) dx[i] = 1.0f;
    for (int c = 0; c < C; c++) dg[c] = db[c] = 1.0f;
    EXPECT_OK(batchnorm3d_backward(dx, dg, db, dy, xhat, invstd, g, b, &s, NULL));
    double *rdx = calloc(1, n * sizeof *rdx), *rdg = calloc(1, C * sizeof *rdg),
           *rdb = calloc(1, C * sizeof *rdb);
    bn_ref_backward(rdx, rdg, rdb, dy, rx, ro, var, g, N, C, S, eps, relu);
    for (size_t i = 0; i < n; i++) rdx[i] += 1.0;
    for (int c = 0; c < C; c++) rdg[c] += 1.0, rdb[c] += 1.0;
    expect_tensor_close("bn backward dinp (+=)", dx, rdx, n, 1e-4, 0);
    expect_tensor_close("bn backward dweight (+=)", dg, rdg, C, 1e-4, 0);
    expect_tensor_close("bn backward dbias (+=)", db, rdb, C, 1e-4, 0);
    /* in place: dinp == dout overwrites */
    EXPECT_OK(batchnorm3d_backward(dy, NULL, NULL, dy, xhat, invstd, g, b, &s, NULL));
    for (size_t i = 0; i < n; i++) rdx[i] -= 1.0;
    /* the input gradient is a difference of terms of size |g| invstd |dy| (dy in [-1, 1]); with
     * two values per channel it is ~0, so the scale is that of the terms */
    double term = 0;
    for (int c = 0; c < C; c++) term = fmax(term, fabs(g[c]) / sqrt(var[c] + eps));
    expect_tensor_close_scaled("bn backward in place", dy, rdx, n, 1e-4, 0, term, NULL);
    /* the two halves: whole-batch reduce, then one sample at a time (dinp zeroed: += rule) */
    double *sums = calloc(2 * (size_t)C + 1, sizeof *sums);
    float *dy2 = rand_tensor(n, -1, 1), *dx2 = calloc(n, sizeof *dx2);
    bn_ref_backward(rdx, rdg, rdb, dy2, rx, ro, var, g, N, C, S, eps, relu);
    EXPECT_OK(batchnorm3d_backward_reduce(sums, NULL, NULL, dy2, xhat, g, b, &s, NULL));
    batchnorm3d_shape one = s;
    one.N = 1;
    for (int k = 0; k < N; k++)
        EXPECT_OK(batchnorm3d_backward_apply(dx2 + (size_t)k * C * S, dy2 + (size_t)k * C * S,
                                             xhat + (size_t)k * C * S, invstd, g, b, sums, &one));
    expect_tensor_close_scaled("bn backward reduce + per-sample apply", dx2, rdx, n, 1e-4, 0, term,
                               NULL);
    EXPECT(sums[2 * C] == (double)N * S, "reduce count %g", sums[2 * C]);
    free(sums), free(dy2), free(dx2);
    free(dy), free(dx), free(dg), free(db), free(rdx), free(rdg), free(rdb);
    free(x), free(g), free(b), free(out), free(xhat), free(rm), free(rv), free(invstd), free(rm0),
        free(rv0), free(ro), free(rx), free(mean), free(var), free(want);
}

/* Two "ranks" hold the two halves of a batch; with the hook adding the other's sums, each half
 * is normalised with the whole batch's statistics, and backward too. */
/* Evaluation mode against the formula in double: out = g (x - rm) / sqrt(rv + eps) + b (ReLU), in
 * place too; one value per channel is fine here (no batch statistics), and rm/rv stay unchanged. */
static void test_batchnorm_running(int N, int C, long S, int relu)
{
    size_t n = (size_t)N * C * S;
    const double eps = 1e-5;
    float *x = rand_tensor(n, -2.f, 3.f), *g = rand_tensor(C, 0.5f, 1.5f), *b = rand_tensor(C, -.5f, .5f);
    float *rm = rand_tensor(C, -1, 1), *rv = rand_tensor(C, 0.f, 2), *invstd = calloc(1, C * sizeof *invstd);
    float *out = calloc(1, n * sizeof *out), *xhat = calloc(1, n * sizeof *xhat), *inplace = malloc(n * sizeof *inplace);
    float *rm0 = malloc(C * sizeof *rm0), *rv0 = malloc(C * sizeof *rv0);
    double *want = calloc(1, n * sizeof *want), *want_xhat = calloc(1, n * sizeof *want_xhat);
    memcpy(rm0, rm, C * sizeof *rm0);
    memcpy(rv0, rv, C * sizeof *rv0);
    memcpy(inplace, x, n * sizeof *inplace);
    for (int k = 0; k < N; k++)
        for (int c = 0; c < C; c++)
            for (long i = 0; i < S; i++) {
                size_t j = ((size_t)k * C + c) * S + i;
                want_xhat[j] = ((double)x[j] - rm[c]) / sqrt((double)rv[c] + eps);
                want[j] = g[c] * want_xhat[j] + b[c];
                if (relu && want[j] < 0) want[j] = 0;
            }
    batchnorm3d_shape s = {N, C, S, 0.1, eps, relu};
    EXPECT_OK(batchnorm3d_forward_running(out, xhat, invstd, x, rm, rv, g, b, &s));
    expect_tensor_close("bn running out", out, want, n, 1e-5, 0);
    expect_tensor_close("bn running xhat", xhat, want_xhat, n, 1e-5, 0);
    EXPECT(!memcmp(rm, rm0, C * sizeof *rm) && !memcmp(rv, rv0, C * sizeof *rv), "running estimates changed");
    for (int c = 0; c < C; c++)
        EXPECT(fabs(invstd[c] - 1 / sqrt(rv[c] + eps)) <= 1e-5 / sqrt(rv[c] + eps), "invstd[%d]", c);
    EXPECT_OK(batchnorm3d_forward_running(NULL, inplace, NULL, inplace, rm, rv, g, b, &s));
    expect_tensor_close("bn running xhat in place", inplace, want_xhat, n, 1e-5, 0);
    free(x), free(g), free(b), free(rm), free(rv), free(invstd), free(out), free(xhat), free(inplace);
    free(rm0), free(rv0), free(want), free(want_xhat);
}

static void test_batchnorm_hook(void)
{
    const int N = 4, C = 3, h = 2;
    const long S = 37;
    size_t n = (size_t)N * C * S, half = (size_t)h * C * S;
    float *x = rand_tensor(n, -1, 2), *g = rand_tensor(C, .5f, 1.5f), *b = rand_tensor(C, -.5f, .5f);
    float *dy = rand_tensor(n, -1, 1);
    float *out = calloc(1, n * sizeof *out), *xh = calloc(1, n * sizeof *xh), *is = calloc(1, C * sizeof *is);
    float *outh = calloc(1, n * sizeof *outh), *xhh = calloc(1, n * sizeof *xhh),
          *ish = calloc(1, C * sizeof *ish);
    float *dx = calloc(n, sizeof *dx), *dxh = calloc(n, sizeof *dxh);
    batchnorm3d_shape full = {N, C, S, 0.1, 1e-5, 1}, part = {h, C, S, 0.1, 1e-5, 1};
    EXPECT_OK(batchnorm3d_forward(out, xh, NULL, is, NULL, NULL, x, g, b, &full, NULL));
    EXPECT_OK(batchnorm3d_backward(dx, NULL, NULL, dy, xh, is, g, b, &full, NULL));
    struct hook_ctx hc = {NULL, 0, 0};
    /* rank r holds half r. Its local sums are captured first (what an all-reduce would receive
     * from it); then each rank runs with a hook adding the other rank's sums. */
    double local[2][2 * 3 + 1];
    float *scr = calloc(half, sizeof *scr), *scr2 = calloc(half, sizeof *scr2), sis[3], sg[8];
    for (int r = 0; r < 2; r++) {
        struct hook_ctx cc = {local[r], 0, 0};
        nn_reduce_hook cap = {capture, &cc};
        EXPECT_OK(batchnorm3d_forward(scr, scr2, NULL, sis, NULL, NULL, x + r * half, g, b, &part, &cap));
    }
    for (int r = 0; r < 2; r++) {
        hc.other = local[1 - r];
        nn_reduce_hook add = {add_other, &hc};
        EXPECT_OK(batchnorm3d_forward(outh + r * half, xhh + r * half, NULL, ish, NULL, NULL,
                                      x + r * half, g, b, &part, &add));
    }
    EXPECT(local[0][2 * C] == (double)h * S, "hook count %g", local[0][2 * C]);
    for (int r = 0; r < 2; r++) { /* backward: local sums from the globally normalised xhat */
        struct hook_ctx cc = {local[r], 0, 0};
        nn_reduce_hook cap = {capture, &cc};
        EXPECT_OK(batchnorm3d_backward(scr, sg, sg + 4, dy + r * half, xhh + r * half, ish, g, b, &part,
                                       &cap));
    }
    for (int r = 0; r < 2; r++) {
        hc.other = local[1 - r];
        nn_reduce_hook add = {add_other, &hc};
        EXPECT_OK(batchnorm3d_backward(dxh + r * half, NULL, NULL, dy + r * half, xhh + r * half, ish,
                                       g, b, &part, &add));
    }
    free(scr), free(scr2);
    double *w = calloc(1, n * sizeof *w);
    for (size_t i = 0; i < n; i++) w[i] = out[i];
    expect_tensor_close("bn with hook: forward = whole batch", outh, w, n, 1e-5, 0);
    for (size_t i = 0; i < n; i++) w[i] = dx[i];
    expect_tensor_close("bn with hook: backward = whole batch", dxh, w, n, 1e-4, 0);
    EXPECT(hc.calls == 4, "hook called %d times", hc.calls);
    hc.fail = 1; /* a failing hook is propagated */
    nn_reduce_hook add = {add_other, &hc};
    EXPECT(batchnorm3d_forward(out, NULL, NULL, is, NULL, NULL, x, g, b, &full, &add) == GEN_ERR_MPI,
           "hook failure not propagated");
    free(w), free(x), free(g), free(b), free(dy), free(out), free(xh), free(is), free(outh),
        free(xhh), free(ish), free(dx), free(dxh);
}

/* ---- element-wise, maxpool, concat, MSE ---------------------------------------------------- */

static void test_elementwise(size_t n)
{
    float *x = rand_tensor(n, -4, 4), *y = calloc(1, n * sizeof *y), *dy = rand_tensor(n, -1, 1);
    float *dx = calloc(1, n * sizeof *dx);
    double *w = calloc(1, n * sizeof *w);
    x[0] = 0.0f;
    EXPECT_OK(relu_forward(y, x, n));
    for (size_t i = 0; i < n; i++) w[i] = x[i] > 0 ? x[i] : 0;
    expect_tensor_close("relu forward", y, w, n, 0, 0);
    for (size_t i = 0; i < n; i++) dx[i] = 0.5f;
    EXPECT_OK(relu_backward(dx, dy, y, n));
    for (size_t i = 0; i < n; i++) w[i] = 0.5 + (x[i] > 0 ? dy[i] : 0);
    expect_tensor_close("relu backward (+=)", dx, w, n, 1e-7, 0);
    EXPECT_OK(sigmoid_forward(y, x, n));
    for (size_t i = 0; i < n; i++) w[i] = 1 / (1 + exp(-(double)x[i]));
    expect_tensor_close("sigmoid forward", y, w, n, 1e-6, 0);
    for (size_t i = 0; i < n; i++) dx[i] = 0.5f;
    EXPECT_OK(sigmoid_backward(dx, dy, y, n));
    for (size_t i = 0; i < n; i++) {
        double s = 1 / (1 + exp(-(double)x[i]));
        w[i] = 0.5 + dy[i] * s * (1 - s);
    }
    expect_tensor_close("sigmoid backward (+=)", dx, w, n, 1e-6, 0);
    /* MSE */
    float *t = rand_tensor(n, 0, 1);
    double loss = 0, want = 0;
    EXPECT_OK(mse_forward(&loss, x, t, n));
    for (size_t i = 0; i < n; i++) want += ((double)x[i] - t[i]) * ((double)x[i] - t[i]);
    want /= (double)n;
    EXPECT_NEAR(loss, want, 1e-12 * want, "mse forward");
    for (size_t i = 0; i < n; i++) dx[i] = 0.25f;
    EXPECT_OK(mse_backward(dx, x, t, n, 3.0f));
    for (size_t i = 0; i < n; i++) w[i] = 0.25 + 3.0 * 2.0 * ((double)x[i] - t[i]) / (double)n;
    expect_tensor_close("mse backward (+=)", dx, w, n, 1e-6, 0);
    /* NaN propagates through ReLU like torch.relu */
    float nan_in = NAN, nan_out = 0;
    relu_forward(&nan_out, &nan_in, 1);
    EXPECT(isnan(nan_out), "relu(NaN) = %g", nan_out);
    free(x), free(y), free(dy), free(dx), free(w), free(t);
}

static void test_maxpool(int N, int C, int D, int H, int W)
{
    size_t n = (size_t)N * C * D * H * W;
    int Do = D / 2, Ho = H / 2, Wo = W / 2;
    size_t no = (size_t)N * C * Do * Ho * Wo;
    float *x = rand_tensor(n, -1, 1);
    for (size_t i = 0; i < n; i += 7) x[i] = x[i + 1 < n ? i + 1 : i]; /* some ties */
    float *y = calloc(1, no * sizeof *y), *dy = rand_tensor(no, -1, 1), *dx = calloc(1, n * sizeof *dx);
    uint8_t *am = calloc(1, no);
    double *wy = calloc(1, no * sizeof *wy), *wdx = calloc(1, n * sizeof *wdx);
    maxpool3d_shape s = {N, C, D, H, W};
    EXPECT_OK(maxpool3d_forward(y, am, x, &s));
    for (size_t i = 0; i < n; i++) dx[i] = 1.0f, wdx[i] = 1.0;
    size_t o = 0;
    int am_ok = 1;
    for (int p = 0; p < N * C; p++)
        for (int od = 0; od < Do; od++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++, o++) {
                    double best = -INFINITY;
                    size_t at = 0;
                    int k = 0, bestk = 0;
                    for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++)
                            for (int c = 0; c < 2; c++, k++) {
                                size_t i = (((size_t)p * D + 2 * od + a) * H + 2 * oh + b) * W + 2 * ow + c;
                                if (x[i] > best) best = x[i], at = i, bestk = k; /* first max wins */
                            }
                    wy[o] = best;
                    wdx[at] += dy[o];
                    am_ok &= am[o] == bestk;
                }
    char what[96];
    snprintf(what, sizeof what, "maxpool forward %dx%dx%dx%dx%d", N, C, D, H, W);
    expect_tensor_close(what, y, wy, no, 0, 0);
    EXPECT(am_ok, "maxpool argmax is not the first maximum");
    EXPECT_OK(maxpool3d_backward(dx, dy, am, &s));
    expect_tensor_close("maxpool backward (+=)", dx, wdx, n, 1e-7, 0);
    free(x), free(y), free(dy), free(dx), free(am), free(wy), free(wdx);
}

/* NaN handling as PyTorch's loop: a NaN beats numbers, a later NaN beats an earlier one */
static void test_maxpool_nan(void)
{
    float x[8] = {1, NAN, 3, 2, NAN, 0, 5, 4}, y = 0;
    uint8_t am = 9;
    maxpool3d_shape s = {1, 1, 2, 2, 2};
    EXPECT_OK(maxpool3d_forward(&y, &am, x, &s));
    EXPECT(isnan(y) && am == 4, "maxpool with NaNs: %g at %d (want NaN at 4)", y, am);
}

static void test_concat(int N, int Ca, int Cb, long S)
{
    size_t na = (size_t)N * Ca * S, nb = (size_t)N * Cb * S, no = na + nb;
    float *a = rand_tensor(na, -1, 1), *b = rand_tensor(nb, -1, 1), *o = calloc(1, no * sizeof *o);
    double *w = calloc(1, no * sizeof *w);
    EXPECT_OK(concat_forward(o, a, b, N, Ca, Cb, S));
    for (int n = 0; n < N; n++)
        for (int c = 0; c < Ca + Cb; c++)
            for (long i = 0; i < S; i++)
                w[((size_t)n * (Ca + Cb) + c) * S + i] =
                    c < Ca ? a[((size_t)n * Ca + c) * S + i] : b[((size_t)n * Cb + c - Ca) * S + i];
    expect_tensor_close("concat forward (upsampled, skip)", o, w, no, 0, 0);
    float *da = calloc(1, na * sizeof *da), *db = calloc(1, nb * sizeof *db);
    double *wa = calloc(1, na * sizeof *wa), *wb = calloc(1, nb * sizeof *wb);
    for (size_t i = 0; i < na; i++) da[i] = 2, wa[i] = 2 + a[i];
    for (size_t i = 0; i < nb; i++) db[i] = 2, wb[i] = 2 + b[i];
    EXPECT_OK(concat_backward(da, db, o, N, Ca, Cb, S));
    expect_tensor_close("concat backward a (+=)", da, wa, na, 1e-7, 0);
    expect_tensor_close("concat backward b (+=)", db, wb, nb, 1e-7, 0);
    free(a), free(b), free(o), free(w), free(da), free(db), free(wa), free(wb);
}

static void test_bad_arguments(void)
{
    float v[64] = {0};
    uint8_t am[8];
    batchnorm3d_shape bs = {1, 2, 1, 0.1, 1e-5, 0};
    EXPECT(batchnorm3d_forward(v, NULL, NULL, v, NULL, NULL, v, v, v, &bs, NULL) == GEN_ERR_USAGE,
           "BN with one value per channel accepted");
    bs.S = 0;
    EXPECT(batchnorm3d_forward(v, NULL, NULL, v, NULL, NULL, v, v, v, &bs, NULL) == GEN_ERR_USAGE,
           "BN with S = 0 accepted");
    bs.S = 4, bs.eps = 0;
    EXPECT(batchnorm3d_forward(v, NULL, NULL, v, NULL, NULL, v, v, v, &bs, NULL) == GEN_ERR_USAGE,
           "BN with eps 0 accepted");
    bs.eps = 1e-5;
    EXPECT(batchnorm3d_forward(v, NULL, NULL, v, NULL, NULL, NULL, v, v, &bs, NULL) == GEN_ERR_USAGE,
           "BN with NULL input accepted");
    EXPECT(strlen(gen_error_message()) > 0, "no message");
    maxpool3d_shape ps = {1, 1, 1, 2, 2};
    EXPECT(maxpool3d_forward(v, am, v, &ps) == GEN_ERR_USAGE, "maxpool of D = 1 accepted");
    ps.D = 2, ps.C = 0;
    EXPECT(maxpool3d_forward(v, am, v, &ps) == GEN_ERR_USAGE, "maxpool of C = 0 accepted");
    EXPECT(concat_forward(v, v, v, 1, 0, 1, 4) == GEN_ERR_USAGE, "concat Ca = 0 accepted");
    EXPECT(mse_forward(NULL, v, v, 4) == GEN_ERR_USAGE, "mse NULL loss accepted");
    EXPECT(mse_forward((double *)v, v, v, 0) == GEN_ERR_USAGE, "mse n = 0 accepted");
    EXPECT(relu_forward(NULL, v, 4) == GEN_ERR_USAGE, "relu NULL accepted");
}

int main(void)
{
    /* every case at 1 thread and at 3 (tests/unit/test_threads.c: the same bits) */
    for (int threads = 1; threads <= 3; threads += 2) {
        EXPECT_OK(nn_set_threads(threads));
        rng_stream_init(&rs, 11, 0, 0, RNG_PURPOSE_TEST);
        test_batchnorm(2, 3, 5 * 7 * 3, 0);
        test_batchnorm(3, 5, 1, 1); /* one voxel per sample */
        test_batchnorm(1, 2, 2, 0); /* two values per channel */
        for (int r = 0; r < 6; r++)
            test_batchnorm(irand(1, 4), irand(1, 9), irand(2, 300), r & 1);
        test_batchnorm(2, 4, 16 * 16 * 8, 1);
        test_batchnorm_hook();
        test_batchnorm_running(2, 3, 5 * 7 * 3, 0);
        test_batchnorm_running(1, 4, 1, 1);
        test_batchnorm_running(irand(1, 4), irand(1, 9), irand(1, 300), 1);
        test_elementwise(1);
        test_elementwise(1001);
        test_maxpool(2, 3, 4, 6, 8);
        test_maxpool(1, 1, 2, 2, 2);
        test_maxpool_nan();
        for (int r = 0; r < 6; r++)
            test_maxpool(irand(1, 3), irand(1, 5), irand(2, 9), irand(2, 9), irand(2, 9));
        test_concat(2, 3, 5, 7);
        test_concat(1, 1, 1, 1);
        test_concat(3, 7, 2, 33);
        test_bad_arguments();
    }
    TEST_MAIN_END();
}
