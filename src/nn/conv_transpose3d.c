/* Transposed 3D convolution, kernel 2, stride 2, no padding (the U-Net's up-convolution).
 *
 * Every output voxel (2d+a, 2h+b, 2w+c) receives exactly one input voxel (d, h, w) through the
 * kernel offset p = a*4 + b*2 + c, so the layer is one GEMM per tile of input voxels:
 *   Y [Cout*8][T] = weight^T [Cout*8][Cin] . inp tile [Cin][T]     (weight is [Cin][Cout*8])
 * with Y row co*8 + p, followed by a scatter of Y into out (no overlaps, no accumulation).
 * A tile is a run of whole input (d, h) rows, T = rows * W; Y takes Cout*8*T floats of workspace
 * per thread.
 * Threads: the forward's threads own tiles of input rows (their outputs do not overlap), and so
 * do the backward-data's (dinp of a tile depends on that tile's Y only). The weight gradient, a sum
 * over every tile, is owned by fixed chunks of output channels (CT_CHUNKS chunks of >= CT_MIN_CHANS
 * channels, a size set by the shape only, so every GEMM has the same shape at any thread count):
 * a chunk's thread walks every tile in order, gathers the chunk's rows of Y and adds into its
 * columns of dweight. (Chunks of input channels instead gave GEMMs of 16 rows, 2-4x slower.)
 * A sample of one tile (the 8x8x4 input level: the model calls one sample at a time) has no tiles
 * to share, so its forward and backward data are split by the same fixed channel chunks instead.
 */
#include <limits.h>
#include <string.h>

#include <cblas.h>

#include "genesis/error.h"
#include "genesis/nn.h"
#include "nn/conv_internal.h"
#include "nn/threads_internal.h"

#include <omp.h>

enum { CT_CHUNKS = 8, CT_MIN_CHANS = 8 };

static int convt_check_shape(const conv_transpose3d_shape *s)
{
    CHECK(s != NULL, GEN_ERR_USAGE, "conv_transpose3d: shape is NULL");
    CHECK(s->N >= 1 && s->Cin >= 1 && s->Cout >= 1 && s->D >= 1 && s->H >= 1 && s->W >= 1,
          GEN_ERR_USAGE,
          "conv_transpose3d: sizes must be positive (N %d, Cin %d, Cout %d, D %d, H %d, W %d)",
          s->N, s->Cin, s->Cout, s->D, s->H, s->W);
    size_t v_out = (size_t)8 * s->D * s->H * s->W;
    CHECK(v_out <= INT_MAX && (size_t)s->Cout * 8 <= INT_MAX / 64 && (size_t)s->Cin <= INT_MAX / 64,
          GEN_ERR_USAGE, "conv_transpose3d: shape too large (output voxels %zu, Cin %d, Cout %d)",
          v_out, s->Cin, s->Cout);
    return GEN_OK;
}

/* Output channels per chunk of the weight gradient (and of a one-tile sample's passes): about
 * CT_CHUNKS chunks of >= CT_MIN_CHANS channels, set by Cout only. */
static int convt_chunk_chans(int Cout)
{
    int per_chunk = (Cout + CT_CHUNKS - 1) / CT_CHUNKS;
    if (per_chunk < CT_MIN_CHANS) per_chunk = CT_MIN_CHANS < Cout ? CT_MIN_CHANS : Cout;
    return per_chunk;
}

/* Input rows per tile: floor(budget / (Cout*8 * W * 4)), in [1, D*H]. */
static int convt_tile_rows(const conv_transpose3d_shape *s, size_t budget_bytes)
{
    size_t row_bytes = (size_t)s->Cout * 8 * s->W * sizeof(float);
    size_t rows = budget_bytes / row_bytes;
    size_t all = (size_t)s->D * s->H;
    if (rows < 1) rows = 1;
    if (rows > all) rows = all;
    return (int)rows;
}

size_t conv_transpose3d_workspace_floats(const conv_transpose3d_shape *s, size_t tile_budget_bytes)
{
    if (s == NULL || s->Cout < 1 || s->W < 1 || s->D < 1 || s->H < 1) return 0;
    size_t budget = conv_budget_bytes(tile_budget_bytes);
    return (size_t)s->Cout * 8 * (size_t)convt_tile_rows(s, budget) * s->W * nn_threads();
}

/* Y [nco*8][T] (tile of input rows [r0, r0+nr)) <-> output channels [co0, co0 + nco) of
 * out [Cout][2D][2H][2W] of one sample. scatter: out = Y + bias; gather: Y = dout. */
static void convt_scatter(float *out, const float *Y, const float *bias,
                          const conv_transpose3d_shape *s, int co0, int nco, int r0, int nr)
{
    const int H = s->H, W = s->W, Ho = 2 * H, Wo = 2 * W;
    const size_t T = (size_t)nr * W, Vo = (size_t)8 * s->D * H * W;
    for (int co = co0; co < co0 + nco; co++) {
        const float b = bias ? bias[co] : 0.0f;
        for (int p = 0; p < 8; p++) {
            const int a = p >> 2, bb = (p >> 1) & 1, c = p & 1;
            const float *src = Y + ((size_t)(co - co0) * 8 + p) * T;
            for (int i = 0, d = r0 / H, h = r0 % H; i < nr; i++, h == H - 1 ? (h = 0, d++) : h++) {
                float *dst = out + co * Vo + ((size_t)(2 * d + a) * Ho + 2 * h + bb) * Wo + c;
                for (int w = 0; w < W; w++) dst[2 * w] = src[(size_t)i * W + w] + b;
            }
        }
    }
}

/* Y [nco*8][T] = the rows of output channels [co0, co0 + nco) of dout (one sample) for the tile
 * of input rows [r0, r0 + nr): Y row (co - co0)*8 + p. */
static void convt_gather(float *Y, const float *dout, const conv_transpose3d_shape *s, int co0,
                         int nco, int r0, int nr)
{
    const int H = s->H, W = s->W, Ho = 2 * H, Wo = 2 * W;
    const size_t T = (size_t)nr * W, Vo = (size_t)8 * s->D * H * W;
    for (int co = co0; co < co0 + nco; co++)
        for (int p = 0; p < 8; p++) {
            const int a = p >> 2, bb = (p >> 1) & 1, c = p & 1;
            float *dst = Y + ((size_t)(co - co0) * 8 + p) * T;
            for (int i = 0, d = r0 / H, h = r0 % H; i < nr; i++, h == H - 1 ? (h = 0, d++) : h++) {
                const float *src =
                    dout + co * Vo + ((size_t)(2 * d + a) * Ho + 2 * h + bb) * Wo + c;
                for (int w = 0; w < W; w++) dst[(size_t)i * W + w] = src[2 * w];
            }
        }
}

int conv_transpose3d_forward(float *out, const float *inp, const float *weight, const float *bias,
                             const conv_transpose3d_shape *s, nn_workspace *ws)
{
    CALL(convt_check_shape(s));
    CHECK(out && inp && weight, GEN_ERR_USAGE,
          "conv_transpose3d_forward: out, inp and weight are required");
    const size_t budget = conv_budget_bytes(ws ? ws->tile_budget_bytes : 0);
    CALL(conv_check_workspace(ws, conv_transpose3d_workspace_floats(s, budget),
                              "conv_transpose3d_forward"));
    const int Cin = s->Cin, M = s->Cout * 8, rows_all = s->D * s->H;
    const int tile_rows = convt_tile_rows(s, budget), tiles = (rows_all + tile_rows - 1) / tile_rows;
    const size_t V = (size_t)s->D * s->H * s->W, y_floats = (size_t)M * tile_rows * s->W;
    if (tiles == 1) { /* threads own (sample, output channel chunk) pairs: GEMMs of M = nco*8 */
        const int per_chunk = convt_chunk_chans(s->Cout);
        const int chunks = (s->Cout + per_chunk - 1) / per_chunk;
        const int T = (int)V;
#pragma omp parallel for schedule(dynamic) num_threads(nn_threads())
        for (int j = 0; j < s->N * chunks; j++) {
            const int n = j / chunks, co0 = j % chunks * per_chunk;
            const int nco = s->Cout - co0 < per_chunk ? s->Cout - co0 : per_chunk;
            float *Y = ws->data + (size_t)omp_get_thread_num() * y_floats; /* [nco*8][T] */
            /* Y = weight^T rows [co0*8, (co0 + nco)*8) [nco*8][Cin] . x [Cin][T] */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nco * 8, T, Cin, 1.0f,
                        weight + (size_t)co0 * 8, M, inp + (size_t)n * Cin * V, T, 0.0f, Y, T);
            convt_scatter(out + (size_t)n * s->Cout * 8 * V, Y, bias, s, co0, nco, 0, rows_all);
        }
        return GEN_OK;
    }
#pragma omp parallel num_threads(nn_threads())
    {
        float *Y = ws->data + (size_t)omp_get_thread_num() * y_floats;
#pragma omp for schedule(dynamic)
        for (int j = 0; j < s->N * tiles; j++) {
            const int n = j / tiles, r0 = j % tiles * tile_rows;
            const int nr = rows_all - r0 < tile_rows ? rows_all - r0 : tile_rows;
            const int T = nr * s->W;
            /* Y [M][T] = weight^T [M][Cin] . x tile [Cin][T] (ld V) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, T, Cin, 1.0f, weight, M,
                        inp + (size_t)n * Cin * V + (size_t)r0 * s->W, (int)V, 0.0f, Y, T);
            convt_scatter(out + (size_t)n * s->Cout * 8 * V, Y, bias, s, 0, s->Cout, r0, nr);
        }
    }
    return GEN_OK;
}

int conv_transpose3d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight,
                              const conv_transpose3d_shape *s, nn_workspace *ws)
{
    CALL(convt_check_shape(s));
    CHECK(dout != NULL, GEN_ERR_USAGE, "conv_transpose3d_backward: dout is required");
    CHECK(dweight == NULL || inp != NULL, GEN_ERR_USAGE,
          "conv_transpose3d_backward: dweight needs inp");
    CHECK(dinp == NULL || weight != NULL, GEN_ERR_USAGE,
          "conv_transpose3d_backward: dinp needs weight");
    const int Cin = s->Cin, Cout = s->Cout, M = Cout * 8, rows_all = s->D * s->H;
    const size_t V = (size_t)s->D * s->H * s->W, Vo = 8 * V;

    if (dbias) conv_add_bias_grad(dbias, dout, s->N, Cout, Vo); /* sum over n and output voxels */
    if (!dinp && !dweight) return GEN_OK;

    const size_t budget = conv_budget_bytes(ws ? ws->tile_budget_bytes : 0);
    CALL(conv_check_workspace(ws, conv_transpose3d_workspace_floats(s, budget),
                              "conv_transpose3d_backward"));
    const int tile_rows = convt_tile_rows(s, budget), tiles = (rows_all + tile_rows - 1) / tile_rows;
    const size_t y_floats = (size_t)M * tile_rows * s->W; /* per thread */
    if (dweight) {
        const int per_chunk = convt_chunk_chans(Cout); /* output channels per chunk */
        const int chunks = (Cout + per_chunk - 1) / per_chunk;
#pragma omp parallel for schedule(dynamic) num_threads(nn_threads())
        for (int chunk = 0; chunk < chunks; chunk++) {
            const int co0 = chunk * per_chunk, nco = Cout - co0 < per_chunk ? Cout - co0 : per_chunk;
            float *Y = ws->data + (size_t)omp_get_thread_num() * y_floats; /* [nco*8][T] */
            for (int n = 0; n < s->N; n++)
                for (int r0 = 0; r0 < rows_all; r0 += tile_rows) {
                    const int nr = rows_all - r0 < tile_rows ? rows_all - r0 : tile_rows;
                    const int T = nr * s->W;
                    convt_gather(Y, dout + (size_t)n * Cout * Vo, s, co0, nco, r0, nr);
                    /* dweight [Cin][nco*8] (columns co0*8.., ld M) += x tile [Cin][T] (ld V) .
                     * Y^T [T][nco*8] */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cin, nco * 8, T, 1.0f,
                                inp + (size_t)n * Cin * V + (size_t)r0 * s->W, (int)V, Y, T, 1.0f,
                                dweight + (size_t)co0 * 8, M);
                }
        }
    }
    if (!dinp) return GEN_OK;
    if (tiles == 1) { /* threads gather output channel chunks into one shared Y (the first
                       * thread's), then own chunks of input channels: GEMMs of M = nci */
        const int co_chunk = convt_chunk_chans(Cout), co_chunks = (Cout + co_chunk - 1) / co_chunk;
        const int ci_chunk = convt_chunk_chans(Cin), ci_chunks = (Cin + ci_chunk - 1) / ci_chunk;
        const int T = (int)V;
        float *Y = ws->data; /* [M][T] */
#pragma omp parallel num_threads(nn_threads())
        for (int n = 0; n < s->N; n++) {
#pragma omp for schedule(static)
            for (int c = 0; c < co_chunks; c++) {
                const int co0 = c * co_chunk, nco = Cout - co0 < co_chunk ? Cout - co0 : co_chunk;
                convt_gather(Y + (size_t)co0 * 8 * T, dout + (size_t)n * Cout * Vo, s, co0, nco,
                             0, rows_all);
            }
#pragma omp for schedule(dynamic)
            for (int c = 0; c < ci_chunks; c++) {
                const int ci0 = c * ci_chunk, nci = Cin - ci0 < ci_chunk ? Cin - ci0 : ci_chunk;
                /* dinp rows [ci0, ci0 + nci) [nci][T] += weight rows [nci][M] . Y [M][T] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nci, T, M, 1.0f,
                            weight + (size_t)ci0 * M, M, Y, T, 1.0f,
                            dinp + ((size_t)n * Cin + ci0) * V, T);
            }
        }
        return GEN_OK;
    }
#pragma omp parallel for schedule(dynamic) num_threads(nn_threads())
    for (int j = 0; j < s->N * tiles; j++) {
        const int n = j / tiles, r0 = j % tiles * tile_rows;
        const int nr = rows_all - r0 < tile_rows ? rows_all - r0 : tile_rows;
        const int T = nr * s->W;
        float *Y = ws->data + (size_t)omp_get_thread_num() * y_floats; /* [M][T] */
        convt_gather(Y, dout + (size_t)n * Cout * Vo, s, 0, Cout, r0, nr);
        /* dinp tile [Cin][T] (ld V) += weight [Cin][M] . Y [M][T] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cin, T, M, 1.0f, weight, M, Y, T,
                    1.0f, dinp + (size_t)n * Cin * V + (size_t)r0 * s->W, (int)V);
    }
    return GEN_OK;
}
