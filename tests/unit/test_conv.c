/* The convolution engine (src/nn/conv*.c) against naive direct loops with double accumulation.
 *
 * Every forward and backward is compared on random shapes (odd sizes, odd channel counts, N 1..3,
 * k 3 and 1, the transposed conv) under several tile budgets (1 byte = one row per tile, a middle
 * one, the default), so single-row, multi-row and whole-volume tiles all run.
 * Backward outputs are pre-filled with random values to check that they accumulate (+=).
 *
 * Tolerance: an element is a float sum of terms t_i; the reference sums them in double and also
 * sums |t_i|. We accept |got - ref| <= 1e-5 * sum|t_i| + 1e-6 (float rounding of a sum of n terms
 * is bounded by about n * 6e-8 * sum|t_i|; blocked GEMM summation is far below that in practice).
 * The element furthest beyond its tolerance is reported with its tensor name and index.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "genesis/error.h"
#include "genesis/nn.h"

/* ---- a small deterministic generator (64-bit LCG, top bits) ------------------------------ */
static uint64_t lcg_state = 0x9E3779B97F4A7C15ull;
static uint32_t lcg_next(void)
{
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(lcg_state >> 33);
}
static float lcg_uniform(void) /* in [-1, 1) */
{
    return (float)((double)lcg_next() / 2147483648.0 * 2.0 - 1.0);
}
static int lcg_int(int lo, int hi) /* in [lo, hi] */
{
    return lo + (int)(lcg_next() % (uint32_t)(hi - lo + 1));
}
static float *random_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = lcg_uniform();
    return p;
}
static float *copy_floats(const float *src, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) exit(1);
    memcpy(p, src, n * sizeof *p);
    return p;
}

/* Compares got[n] with ref[n]: |got - ref| <= 1e-5 abs[i] + 1e-6 (see the top). */
static void expect_tensor(const char *name, const char *ctx, const float *got, const double *ref,
                          const double *abs, size_t n)
{
    char what[256];
    snprintf(what, sizeof what, "%s (%s)", name, ctx);
    expect_tensor_close_scaled(what, got, ref, n, 1e-5, 1e-6, 0, abs);
}

/* ---- naive conv3d (stride 1, padding (k-1)/2) ------------------------------------------- */
struct ref_out {
    double *val, *abs;
};
static struct ref_out ref_alloc(size_t n, const float *init)
{
    struct ref_out r = {calloc(n ? n : 1, sizeof(double)), calloc(n ? n : 1, sizeof(double))};
    if (!r.val || !r.abs) exit(1);
    for (size_t i = 0; init && i < n; i++) {
        r.val[i] = init[i];
        r.abs[i] = fabs(init[i]);
    }
    return r;
}
static void ref_free(struct ref_out r)
{
    free(r.val);
    free(r.abs);
}
static void ref_add(struct ref_out r, size_t i, double t)
{
    r.val[i] += t;
    r.abs[i] += fabs(t);
}

/* Calls f(n, co, ci, output index, input index, weight index) for every (output, tap) pair whose
 * input voxel lies inside the volume: the definition of the convolution. */
#define CONV3D_FOR_EACH(s, BODY)                                                               \
    do {                                                                                       \
        const int k_ = (s).k, p_ = (k_ - 1) / 2, D_ = (s).D, H_ = (s).H, W_ = (s).W;           \
        const size_t V_ = (size_t)D_ * H_ * W_;                                                \
        for (int n = 0; n < (s).N; n++)                                                        \
            for (int co = 0; co < (s).Cout; co++)                                              \
                for (int ci = 0; ci < (s).Cin; ci++)                                           \
                    for (int d = 0; d < D_; d++)                                               \
                        for (int h = 0; h < H_; h++)                                           \
                            for (int w = 0; w < W_; w++)                                       \
                                for (int kd = 0; kd < k_; kd++)                                \
                                    for (int kh = 0; kh < k_; kh++)                            \
                                        for (int kw = 0; kw < k_; kw++) {                      \
                                            int id = d + kd - p_, ih = h + kh - p_,            \
                                                iw = w + kw - p_;                              \
                                            if (id < 0 || id >= D_ || ih < 0 || ih >= H_ ||    \
                                                iw < 0 || iw >= W_)                            \
                                                continue;                                      \
                                            size_t oi = ((size_t)n * (s).Cout + co) * V_ +     \
                                                        ((size_t)d * H_ + h) * W_ + w;         \
                                            size_t ii = ((size_t)n * (s).Cin + ci) * V_ +      \
                                                        ((size_t)id * H_ + ih) * W_ + iw;      \
                                            size_t wi =                                        \
                                                (((size_t)co * (s).Cin + ci) * k_ + kd) * k_ * \
                                                    k_ +                                       \
                                                (size_t)kh * k_ + kw;                          \
                                            BODY;                                              \
                                        }                                                      \
    } while (0)

static nn_workspace make_ws(size_t floats, size_t budget)
{
    nn_workspace ws = {malloc((floats ? floats : 1) * sizeof(float)), floats, budget};
    if (!ws.data) exit(1);
    return ws;
}

static void test_conv3d_case(conv3d_shape s, size_t budget)
{
    char ctx[160];
    snprintf(ctx, sizeof ctx, "N%d Cin%d Cout%d D%d H%d W%d k%d budget %zu", s.N, s.Cin, s.Cout,
             s.D, s.H, s.W, s.k, budget);
    const size_t V = (size_t)s.D * s.H * s.W, taps = (size_t)s.k * s.k * s.k;
    const size_t n_in = (size_t)s.N * s.Cin * V, n_out = (size_t)s.N * s.Cout * V;
    const size_t n_w = (size_t)s.Cout * s.Cin * taps;
    float *x = random_floats(n_in), *wgt = random_floats(n_w), *b = random_floats(s.Cout);
    float *dy = random_floats(n_out);
    float *dx = random_floats(n_in), *dw = random_floats(n_w), *db = random_floats(s.Cout);
    float *dx0 = copy_floats(dx, n_in), *dw0 = copy_floats(dw, n_w), *db0 = copy_floats(db, s.Cout);
    float *y = malloc(n_out * sizeof *y);
    nn_workspace ws = make_ws(conv3d_workspace_floats(&s, budget), budget);

    /* forward */
    struct ref_out ry = ref_alloc(n_out, NULL);
    for (int n = 0; n < s.N; n++)
        for (int co = 0; co < s.Cout; co++)
            for (size_t v = 0; v < V; v++) ref_add(ry, ((size_t)n * s.Cout + co) * V + v, b[co]);
    CONV3D_FOR_EACH(s, ref_add(ry, oi, (double)x[ii] * wgt[wi]));
    EXPECT_OK(conv3d_forward(y, x, wgt, b, &s, &ws));
    expect_tensor("conv3d out", ctx, y, ry.val, ry.abs, n_out);

    /* backward, accumulating onto the random initial gradients */
    struct ref_out rdx = ref_alloc(n_in, dx0), rdw = ref_alloc(n_w, dw0),
                   rdb = ref_alloc(s.Cout, db0);
    CONV3D_FOR_EACH(s, {
        ref_add(rdx, ii, (double)dy[oi] * wgt[wi]);
        ref_add(rdw, wi, (double)dy[oi] * x[ii]);
    });
    for (int n = 0; n < s.N; n++)
        for (int co = 0; co < s.Cout; co++)
            for (size_t v = 0; v < V; v++) ref_add(rdb, co, dy[((size_t)n * s.Cout + co) * V + v]);
    EXPECT_OK(conv3d_backward(dx, dw, db, dy, x, wgt, &s, &ws));
    expect_tensor("conv3d dinp", ctx, dx, rdx.val, rdx.abs, n_in);
    expect_tensor("conv3d dweight", ctx, dw, rdw.val, rdw.abs, n_w);
    expect_tensor("conv3d dbias", ctx, db, rdb.val, rdb.abs, s.Cout);

    /* dinp NULL: weight and bias gradients alone (accumulate again onto the results above) */
    for (size_t i = 0; i < n_w; i++) rdw.val[i] += rdw.val[i] - dw0[i], rdw.abs[i] *= 2;
    for (int i = 0; i < s.Cout; i++) rdb.val[i] += rdb.val[i] - db0[i], rdb.abs[i] *= 2;
    EXPECT_OK(conv3d_backward(NULL, dw, db, dy, x, wgt, &s, &ws));
    expect_tensor("conv3d dweight (dinp NULL, second accumulation)", ctx, dw, rdw.val, rdw.abs,
                  n_w);
    expect_tensor("conv3d dbias (dinp NULL, second accumulation)", ctx, db, rdb.val, rdb.abs,
                  s.Cout);

    ref_free(ry), ref_free(rdx), ref_free(rdw), ref_free(rdb);
    free(x), free(wgt), free(b), free(dy), free(dx), free(dw), free(db), free(dx0), free(dw0);
    free(db0), free(y), free(ws.data);
}

/* ---- naive transposed conv (k 2, s 2) ----------------------------------------------------- */
#define CONVT_FOR_EACH(s, BODY)                                                                \
    do {                                                                                       \
        const size_t V_ = (size_t)(s).D * (s).H * (s).W;                                       \
        for (int n = 0; n < (s).N; n++)                                                        \
            for (int ci = 0; ci < (s).Cin; ci++)                                               \
                for (int co = 0; co < (s).Cout; co++)                                          \
                    for (int d = 0; d < (s).D; d++)                                            \
                        for (int h = 0; h < (s).H; h++)                                        \
                            for (int w = 0; w < (s).W; w++)                                    \
                                for (int a = 0; a < 2; a++)                                    \
                                    for (int bb = 0; bb < 2; bb++)                             \
                                        for (int c = 0; c < 2; c++) {                          \
                                            size_t ii = ((size_t)n * (s).Cin + ci) * V_ +      \
                                                        ((size_t)d * (s).H + h) * (s).W + w;   \
                                            size_t oi = ((size_t)n * (s).Cout + co) * 8 * V_ + \
                                                        ((size_t)(2 * d + a) * 2 * (s).H +     \
                                                         2 * h + bb) * 2 * (s).W +             \
                                                        2 * w + c;                             \
                                            size_t wi = ((size_t)ci * (s).Cout + co) * 8 +     \
                                                        a * 4 + bb * 2 + c;                    \
                                            BODY;                                              \
                                        }                                                      \
    } while (0)

static void test_convt_case(conv_transpose3d_shape s, size_t budget)
{
    char ctx[160];
    snprintf(ctx, sizeof ctx, "N%d Cin%d Cout%d D%d H%d W%d budget %zu", s.N, s.Cin, s.Cout, s.D,
             s.H, s.W, budget);
    const size_t V = (size_t)s.D * s.H * s.W;
    const size_t n_in = (size_t)s.N * s.Cin * V, n_out = (size_t)s.N * s.Cout * 8 * V;
    const size_t n_w = (size_t)s.Cin * s.Cout * 8;
    float *x = random_floats(n_in), *wgt = random_floats(n_w), *b = random_floats(s.Cout);
    float *dy = random_floats(n_out);
    float *dx = random_floats(n_in), *dw = random_floats(n_w), *db = random_floats(s.Cout);
    float *y = malloc(n_out * sizeof *y);
    nn_workspace ws = make_ws(conv_transpose3d_workspace_floats(&s, budget), budget);

    struct ref_out ry = ref_alloc(n_out, NULL);
    for (int n = 0; n < s.N; n++)
        for (int co = 0; co < s.Cout; co++)
            for (size_t v = 0; v < 8 * V; v++)
                ref_add(ry, ((size_t)n * s.Cout + co) * 8 * V + v, b[co]);
    CONVT_FOR_EACH(s, ref_add(ry, oi, (double)x[ii] * wgt[wi]));
    EXPECT_OK(conv_transpose3d_forward(y, x, wgt, b, &s, &ws));
    expect_tensor("conv_transpose3d out", ctx, y, ry.val, ry.abs, n_out);

    struct ref_out rdx = ref_alloc(n_in, dx), rdw = ref_alloc(n_w, dw), rdb = ref_alloc(s.Cout, db);
    CONVT_FOR_EACH(s, {
        ref_add(rdx, ii, (double)dy[oi] * wgt[wi]);
        ref_add(rdw, wi, (double)dy[oi] * x[ii]);
    });
    for (int n = 0; n < s.N; n++)
        for (int co = 0; co < s.Cout; co++)
            for (size_t v = 0; v < 8 * V; v++)
                ref_add(rdb, co, dy[((size_t)n * s.Cout + co) * 8 * V + v]);
    EXPECT_OK(conv_transpose3d_backward(dx, dw, db, dy, x, wgt, &s, &ws));
    expect_tensor("conv_transpose3d dinp", ctx, dx, rdx.val, rdx.abs, n_in);
    expect_tensor("conv_transpose3d dweight", ctx, dw, rdw.val, rdw.abs, n_w);
    expect_tensor("conv_transpose3d dbias", ctx, db, rdb.val, rdb.abs, s.Cout);

    ref_free(ry), ref_free(rdx), ref_free(rdw), ref_free(rdb);
    free(x), free(wgt), free(b), free(dy), free(dx), free(dw), free(db), free(y), free(ws.data);
}

/* ---- errors, not crashes -------------------------------------------------------------------- */
static void test_bad_arguments(void)
{
    float buf[4096] = {0};
    nn_workspace tiny = {buf, 1, 0};
    conv3d_shape ok = {1, 2, 3, 4, 5, 6, 3};
    nn_workspace ws = {malloc(conv3d_workspace_floats(&ok, 0) * sizeof(float)),
                       conv3d_workspace_floats(&ok, 0), 0};

    conv3d_shape bad_k = ok;
    bad_k.k = 5;
    EXPECT(conv3d_forward(buf, buf, buf, buf, &bad_k, &ws) == GEN_ERR_USAGE, "k = 5 accepted");
    EXPECT(strstr(gen_error_message(), "kernel size 5") != NULL, "message: %s",
           gen_error_message());
    conv3d_shape zero = ok;
    zero.H = 0;
    EXPECT(conv3d_forward(buf, buf, buf, buf, &zero, &ws) == GEN_ERR_USAGE, "H = 0 accepted");
    conv3d_shape neg = ok;
    neg.Cin = -3;
    EXPECT(conv3d_backward(buf, buf, buf, buf, buf, buf, &neg, &ws) == GEN_ERR_USAGE,
           "Cin = -3 accepted");
    EXPECT(conv3d_forward(buf, buf, buf, buf, NULL, &ws) == GEN_ERR_USAGE, "NULL shape accepted");
    EXPECT(conv3d_forward(NULL, buf, buf, buf, &ok, &ws) == GEN_ERR_USAGE, "NULL out accepted");
    EXPECT(conv3d_forward(buf, buf, buf, buf, &ok, &tiny) == GEN_ERR_USAGE,
           "too small workspace accepted");
    EXPECT(strstr(gen_error_message(), "workspace") != NULL, "message: %s", gen_error_message());
    EXPECT(conv3d_backward(buf, buf, buf, buf, buf, buf, &ok, &tiny) == GEN_ERR_USAGE,
           "too small workspace accepted (backward)");
    EXPECT(conv3d_forward(buf, buf, buf, buf, &ok, NULL) == GEN_ERR_USAGE, "NULL workspace accepted");
    conv3d_shape huge = {1, 1, 1, 100000, 100000, 100000, 3};
    EXPECT(conv3d_forward(buf, buf, buf, buf, &huge, &ws) == GEN_ERR_USAGE, "huge shape accepted");

    conv_transpose3d_shape tok = {1, 2, 3, 2, 2, 2};
    conv_transpose3d_shape tbad = tok;
    tbad.W = 0;
    EXPECT(conv_transpose3d_forward(buf, buf, buf, buf, &tbad, &ws) == GEN_ERR_USAGE,
           "transposed W = 0 accepted");
    EXPECT(conv_transpose3d_forward(buf, buf, buf, buf, &tok, &tiny) == GEN_ERR_USAGE,
           "transposed too small workspace accepted");
    EXPECT(conv_transpose3d_backward(buf, buf, buf, buf, buf, buf, &tok, &tiny) == GEN_ERR_USAGE,
           "transposed too small workspace accepted (backward)");

    /* k = 1 needs no workspace */
    conv3d_shape one = {1, 2, 3, 4, 5, 6, 1};
    EXPECT(conv3d_workspace_floats(&one, 0) == 0, "k = 1 asks for workspace");
    EXPECT_OK(conv3d_forward(buf, buf, buf, buf, &one, NULL));
    free(ws.data);
}

int main(void)
{
    /* every case with both engines of the k = 3 passes (im2col + sgemm, and the direct kernels
     * where the CPU has AVX-512), at 1 thread and at 3 (test_threads: the same bits) */
    const int modes[] = {CONV_DIRECT_OFF, CONV_DIRECT_ALWAYS};
    if (!conv_direct_supported())
        printf("note: no AVX-512 here: the direct kernels are not tested\n");
    for (int mi = 0; mi < 2 && (mi == 0 || conv_direct_supported()); mi++)
    for (int threads = 1; threads <= 3; threads += 2) {
        EXPECT_OK(conv_set_direct(modes[mi]));
        EXPECT_OK(nn_set_threads(threads));
        /* Fixed shapes that name the interesting cases, then random ones. */
        const conv3d_shape fixed[] = {
            {1, 1, 1, 1, 1, 1, 3},  /* a single voxel: only the centre tap is inside */
            {2, 3, 5, 5, 7, 3, 3},  /* odd everything */
            {1, 4, 2, 2, 2, 1, 3},  /* W = 1: both w-shifted taps are padding */
            {3, 5, 3, 3, 4, 5, 1},  /* kernel 1 */
            {1, 16, 8, 4, 4, 4, 3}, /* Cout < Cin */
            {1, 2, 17, 3, 3, 6, 3}, /* Cout > Cin */
            {2, 6, 6, 3, 5, 7, 3},  /* Cin = Cout (scatter forward, col2im backward data), odd sizes */
            {1, 5, 5, 1, 1, 2, 3},  /* Cin = Cout, D = H = 1, W = 2 */
            {1, 7, 3, 2, 1, 5, 3},  /* Cin > Cout (weight gradient from im2col of dout), H = 1 */
            {2, 3, 7, 1, 2, 3, 3},  /* Cin < Cout (weight gradient from im2col of inp), D = 1 */
            {3, 9, 4, 2, 3, 1, 3},  /* Cin > Cout, W = 1, N = 3 */
        };
        /* Small tiles (the budget alone decides: one row per tile at budget 1) and the defaults. */
        const size_t budgets[] = {1, 3000, 0};
        EXPECT_OK(conv_set_gemm_tile_voxels(1, 1 << 30));
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            for (size_t j = 0; j < 3; j++) test_conv3d_case(fixed[i], budgets[j]);
        EXPECT_OK(conv_set_gemm_tile_voxels(256, 512));
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) test_conv3d_case(fixed[i], 0);
        EXPECT_OK(conv_set_gemm_tile_voxels(1, 1 << 30));
        for (int r = 0; r < 12; r++) {
            conv3d_shape s = {lcg_int(1, 3), lcg_int(1, 9), lcg_int(1, 9), lcg_int(1, 7),
                              lcg_int(1, 7), lcg_int(1, 7), lcg_int(0, 3) ? 3 : 1};
            test_conv3d_case(s, budgets[r % 3]);
        }

        const conv_transpose3d_shape tfixed[] = {
            {1, 1, 1, 1, 1, 1},
            {2, 3, 5, 3, 2, 5},
            {1, 8, 8, 4, 4, 2},
            {2, 20, 19, 2, 3, 4}, /* > 8 channels each way: channel chunks in a one-tile sample */
        };
        for (size_t i = 0; i < sizeof tfixed / sizeof tfixed[0]; i++)
            for (size_t j = 0; j < 3; j++) test_convt_case(tfixed[i], budgets[j]);
        for (int r = 0; r < 8; r++) {
            conv_transpose3d_shape s = {lcg_int(1, 3), lcg_int(1, 9), lcg_int(1, 9),
                                        lcg_int(1, 5), lcg_int(1, 5), lcg_int(1, 5)};
            test_convt_case(s, budgets[r % 3]);
        }

        EXPECT(conv_set_gemm_tile_voxels(0, 5) == GEN_ERR_USAGE, "min 0 accepted");
        EXPECT(conv_set_gemm_tile_voxels(9, 5) == GEN_ERR_USAGE, "min > max accepted");
        EXPECT_OK(conv_set_gemm_tile_voxels(256, 512));
        test_conv3d_case((conv3d_shape){2, 5, 3, 9, 8, 33, 3}, 0); /* rows of 33 > 512 / 16 */
        test_bad_arguments();
    }
    /* the default mode takes the direct kernels (on AVX-512) for >= 16 channels and >= 2048
     * voxels: the forward and weight gradient of the first (Cin = 16), the input gradient of the
     * second (Cout = 16) */
    EXPECT_OK(conv_set_direct(CONV_DIRECT_AUTO));
    EXPECT_OK(nn_set_threads(2));
    test_conv3d_case((conv3d_shape){1, 16, 5, 8, 16, 16, 3}, 0);
    test_conv3d_case((conv3d_shape){1, 3, 16, 16, 8, 17, 3}, 0);
    EXPECT(conv_set_direct(3) == GEN_ERR_USAGE, "direct mode 3 accepted");
    TEST_MAIN_END();
}
