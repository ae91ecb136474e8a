/* 3D convolution, stride 1: kernel 3 with padding 1 (tiled im2col + cblas_sgemm) and kernel 1
 * (a plain GEMM per sample, no im2col).
 *
 * Glossary: N batch, Cin/Cout channels, D/H/W spatial sizes (W fastest), V = D*H*W voxels per
 * channel, K = Cin*27 the im2col depth, T the voxels of one output tile.
 *
 * Tiling: an output tile is a run of whole (d, h) rows, T = rows * W voxels, contiguous in every
 * channel of out. Its column matrix col[K][T] (row k = ci*27 + kd*9 + kh*3 + kw, the order of a
 * PyTorch weight row, so the weight is used in place) takes K*T floats of the workspace, and
 * rows is the largest count whose column matrix fits the tile budget (at least 1).
 */
#include <limits.h>
#include <string.h>

#include <cblas.h>

#include "genesis/error.h"
#include "genesis/nn.h"
#include "nn/conv_internal.h"

int conv_check_workspace(const nn_workspace *ws, size_t need, const char *what)
{
    if (need == 0) return GEN_OK;
    CHECK(ws != NULL && ws->data != NULL, GEN_ERR_USAGE,
          "%s needs a workspace of %zu floats, got none", what, need);
    CHECK(ws->floats >= need, GEN_ERR_USAGE,
          "%s needs a workspace of %zu floats (tile budget %zu bytes), got %zu", what, need,
          conv_budget_bytes(ws->tile_budget_bytes), ws->floats);
    return GEN_OK;
}

/* Shape check shared by every conv3d entry point: positive sizes, k in {1, 3}, and every GEMM
 * dimension and leading dimension within the int range of cblas. */
static int conv3d_check_shape(const conv3d_shape *s)
{
    CHECK(s != NULL, GEN_ERR_USAGE, "conv3d: shape is NULL");
    CHECK(s->N >= 1 && s->Cin >= 1 && s->Cout >= 1 && s->D >= 1 && s->H >= 1 && s->W >= 1,
          GEN_ERR_USAGE, "conv3d: sizes must be positive (N %d, Cin %d, Cout %d, D %d, H %d, W %d)",
          s->N, s->Cin, s->Cout, s->D, s->H, s->W);
    CHECK(s->k == 1 || s->k == 3, GEN_ERR_USAGE,
          "conv3d: kernel size %d not supported (only 3 with padding 1, or 1)", s->k);
    size_t v = (size_t)s->D * s->H * s->W;
    size_t taps = (size_t)s->k * s->k * s->k;
    CHECK(v <= INT_MAX && (size_t)s->Cin * taps <= INT_MAX / 64 && (size_t)s->Cout <= INT_MAX / 64,
          GEN_ERR_USAGE, "conv3d: shape too large (V %zu, Cin %d, Cout %d)", v, s->Cin, s->Cout);
    return GEN_OK;
}

/* Rows of W voxels per output tile under the budget: floor(budget / (K * W * 4)), in [1, D*H]. */
static int conv3d_tile_rows(const conv3d_shape *s, size_t budget_bytes)
{
    size_t row_bytes = (size_t)s->Cin * 27 * s->W * sizeof(float);
    size_t rows = budget_bytes / row_bytes;
    size_t all = (size_t)s->D * s->H;
    if (rows < 1) rows = 1;
    if (rows > all) rows = all;
    return (int)rows;
}

size_t conv3d_workspace_floats(const conv3d_shape *s, size_t tile_budget_bytes)
{
    if (s == NULL || s->k != 3 || s->Cin < 1 || s->W < 1 || s->D < 1 || s->H < 1) return 0;
    size_t budget = conv_budget_bytes(tile_budget_bytes);
    return (size_t)s->Cin * 27 * (size_t)conv3d_tile_rows(s, budget) * s->W;
}

/* One im2col row: dst[w] = src[w + shift] for w in [0, W), 0 where w + shift leaves [0, W).
 * src NULL means the whole input row lies in the padding. */
static inline void shifted_row_copy(float *dst, const float *src, int W, int shift)
{
    if (src == NULL) {
        memset(dst, 0, (size_t)W * sizeof(float));
    } else if (shift == 0) {
        memcpy(dst, src, (size_t)W * sizeof(float));
    } else if (shift < 0) { /* shift = -1 */
        dst[0] = 0.0f;
        memcpy(dst + 1, src, (size_t)(W - 1) * sizeof(float));
    } else { /* shift = +1 */
        memcpy(dst, src + 1, (size_t)(W - 1) * sizeof(float));
        dst[W - 1] = 0.0f;
    }
}

/* The reverse of shifted_row_copy: dst[w + shift] += src[w] where w + shift is inside [0, W). */
static inline void shifted_row_add(float *dst, const float *src, int W, int shift)
{
    if (shift == 0) {
        for (int w = 0; w < W; w++) dst[w] += src[w];
    } else if (shift < 0) {
        for (int w = 1; w < W; w++) dst[w - 1] += src[w];
    } else {
        for (int w = 0; w < W - 1; w++) dst[w + 1] += src[w];
    }
}

/* col[K][T] for the output rows [r0, r0 + nr) of one sample; inp is that sample [Cin, D, H, W].
 * Row r is (d, h) = (r / H, r % H); T = nr * W. */
static void im2col_rows(float *col, const float *inp, const conv3d_shape *s, int r0, int nr)
{
    const int D = s->D, H = s->H, W = s->W;
    const size_t T = (size_t)nr * W;
    for (int ci = 0; ci < s->Cin; ci++) {
        const float *chan = inp + (size_t)ci * D * H * W;
        for (int tap = 0; tap < 27; tap++) {
            const int kd = tap / 9, kh = tap / 3 % 3, kw = tap % 3;
            float *dst = col + ((size_t)ci * 27 + tap) * T;
            for (int i = 0; i < nr; i++) {
                const int d = (r0 + i) / H + kd - 1, h = (r0 + i) % H + kh - 1;
                const float *src = (d >= 0 && d < D && h >= 0 && h < H)
                                       ? chan + ((size_t)d * H + h) * W : NULL;
                shifted_row_copy(dst + (size_t)i * W, src, W, kw - 1);
            }
        }
    }
}

/* dinp (one sample, [Cin, D, H, W]) += the col2im of dcol[K][T] for output rows [r0, r0 + nr). */
static void col2im_rows_add(float *dinp, const float *dcol, const conv3d_shape *s, int r0, int nr)
{
    const int D = s->D, H = s->H, W = s->W;
    const size_t T = (size_t)nr * W;
    for (int ci = 0; ci < s->Cin; ci++) {
        float *chan = dinp + (size_t)ci * D * H * W;
        for (int tap = 0; tap < 27; tap++) {
            const int kd = tap / 9, kh = tap / 3 % 3, kw = tap % 3;
            const float *src = dcol + ((size_t)ci * 27 + tap) * T;
            for (int i = 0; i < nr; i++) {
                const int d = (r0 + i) / H + kd - 1, h = (r0 + i) % H + kh - 1;
                if (d < 0 || d >= D || h < 0 || h >= H) continue;
                shifted_row_add(chan + ((size_t)d * H + h) * W, src + (size_t)i * W, W, kw - 1);
            }
        }
    }
}

/* out[n][co][v] = bias[co] for every voxel (0 when bias is NULL); GEMMs then add with beta = 1. */
static void fill_bias(float *out, const float *bias, int N, int C, size_t V)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float *o = out + ((size_t)n * C + c) * V;
            const float b = bias ? bias[c] : 0.0f;
            for (size_t v = 0; v < V; v++) o[v] = b;
        }
}

/* dbias[co] += sum over n and voxels of dout[n][co][v] (accumulated in double per channel). */
static void add_bias_grad(float *dbias, const float *dout, int N, int C, size_t V)
{
    for (int c = 0; c < C; c++) {
        double sum = 0.0;
        for (int n = 0; n < N; n++) {
            const float *g = dout + ((size_t)n * C + c) * V;
            float part = 0.0f;
            for (size_t v = 0; v < V; v++) part += g[v];
            sum += part;
        }
        dbias[c] += (float)sum;
    }
}

int conv3d_forward(float *out, const float *inp, const float *weight, const float *bias,
                   const conv3d_shape *s, nn_workspace *ws)
{
    CALL(conv3d_check_shape(s));
    CHECK(out && inp && weight, GEN_ERR_USAGE, "conv3d_forward: out, inp and weight are required");
    const int Cin = s->Cin, Cout = s->Cout;
    const size_t V = (size_t)s->D * s->H * s->W;
    fill_bias(out, bias, s->N, Cout, V);

    if (s->k == 1) { /* out[n] [Cout][V] += weight [Cout][Cin] . inp[n] [Cin][V] */
        for (int n = 0; n < s->N; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)V, Cin, 1.0f, weight,
                        Cin, inp + (size_t)n * Cin * V, (int)V, 1.0f, out + (size_t)n * Cout * V,
                        (int)V);
        return GEN_OK;
    }

    const size_t budget = conv_budget_bytes(ws ? ws->tile_budget_bytes : 0);
    CALL(conv_check_workspace(ws, conv3d_workspace_floats(s, budget), "conv3d_forward"));
    const int K = Cin * 27, rows_all = s->D * s->H, tile_rows = conv3d_tile_rows(s, budget);
    float *col = ws->data;
    for (int n = 0; n < s->N; n++) {
        const float *x = inp + (size_t)n * Cin * V;
        float *y = out + (size_t)n * Cout * V;
        for (int r0 = 0; r0 < rows_all; r0 += tile_rows) {
            const int nr = rows_all - r0 < tile_rows ? rows_all - r0 : tile_rows;
            const int T = nr * s->W;
            im2col_rows(col, x, s, r0, nr);
            /* y[:, tile] [Cout][T] (ld V) += weight [Cout][K] . col [K][T] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, T, K, 1.0f, weight, K,
                        col, T, 1.0f, y + (size_t)r0 * s->W, (int)V);
        }
    }
    return GEN_OK;
}

int conv3d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                    const float *weight, const conv3d_shape *s, nn_workspace *ws)
{
    CALL(conv3d_check_shape(s));
    CHECK(dout != NULL, GEN_ERR_USAGE, "conv3d_backward: dout is required");
    CHECK(dweight == NULL || inp != NULL, GEN_ERR_USAGE, "conv3d_backward: dweight needs inp");
    CHECK(dinp == NULL || weight != NULL, GEN_ERR_USAGE, "conv3d_backward: dinp needs weight");
    const int Cin = s->Cin, Cout = s->Cout;
    const size_t V = (size_t)s->D * s->H * s->W;
    if (dbias) add_bias_grad(dbias, dout, s->N, Cout, V);

    if (s->k == 1) {
        for (int n = 0; n < s->N; n++) {
            const float *g = dout + (size_t)n * Cout * V;
            /* dweight [Cout][Cin] += dout[n] [Cout][V] . inp[n]^T [V][Cin] */
            if (dweight)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, Cin, (int)V, 1.0f, g,
                            (int)V, inp + (size_t)n * Cin * V, (int)V, 1.0f, dweight, Cin);
            /* dinp[n] [Cin][V] += weight^T [Cin][Cout] . dout[n] [Cout][V] */
            if (dinp)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cin, (int)V, Cout, 1.0f,
                            weight, Cin, g, (int)V, 1.0f, dinp + (size_t)n * Cin * V, (int)V);
        }
        return GEN_OK;
    }
    if (!dinp && !dweight) return GEN_OK;

    const size_t budget = conv_budget_bytes(ws ? ws->tile_budget_bytes : 0);
    CALL(conv_check_workspace(ws, conv3d_workspace_floats(s, budget), "conv3d_backward"));
    const int K = Cin * 27, rows_all = s->D * s->H, tile_rows = conv3d_tile_rows(s, budget);
    float *col = ws->data; /* col for dweight, then reused as dcol for dinp */
    for (int n = 0; n < s->N; n++) {
        const float *g = dout + (size_t)n * Cout * V;
        for (int r0 = 0; r0 < rows_all; r0 += tile_rows) {
            const int nr = rows_all - r0 < tile_rows ? rows_all - r0 : tile_rows;
            const int T = nr * s->W;
            const float *gt = g + (size_t)r0 * s->W; /* dout tile [Cout][T], ld V */
            if (dweight) {
                im2col_rows(col, inp + (size_t)n * Cin * V, s, r0, nr);
                /* dweight [Cout][K] += dout tile [Cout][T] . col^T [T][K] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, K, T, 1.0f, gt, (int)V,
                            col, T, 1.0f, dweight, K);
            }
            if (dinp) {
                /* dcol [K][T] = weight^T [K][Cout] . dout tile [Cout][T] */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, T, Cout, 1.0f, weight, K,
                            gt, (int)V, 0.0f, col, T);
                col2im_rows_add(dinp + (size_t)n * Cin * V, col, s, r0, nr);
            }
        }
    }
    return GEN_OK;
}
