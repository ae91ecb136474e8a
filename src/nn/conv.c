/* 3D convolution, stride 1: kernel 3 with padding 1 (tiled im2col / col2im + cblas_sgemm) and
 * kernel 1 (a plain GEMM per sample, no im2col). Where conv_direct_need() says so (an AVX-512
 * CPU, >= 16 channels in the tensor read through the taps, >= 2048 voxels), a k = 3 pass runs on
 * the direct kernels of conv_direct.c instead.
 *
 * Glossary: N batch, Cin/Cout channels, D/H/W spatial sizes (W fastest), V = D*H*W voxels per
 * channel, K = Cin*27 the im2col depth, T the voxels of one output tile.
 *
 * Tiling: an output tile is a run of whole (d, h) rows, T = rows * W voxels, contiguous in every
 * channel. A column matrix col[C*27][T] (row c*27 + kd*9 + kh*3 + kw, the order of a PyTorch
 * weight row) holds the 27 shifted copies of C channels of one tensor over the tile. Each pass
 * pairs two tensors through the 27 taps; the one with fewer channels is the one expanded 27x
 * (im2col before the GEMM, or col2im of the GEMM's output), the other is read by the GEMM in
 * place (conv3d_plan). The passes are tiled separately.
 *
 * Why: the expanded copy is the memory traffic of a pass, so it is made of the smaller tensor;
 * tiles of whole rows let im2col/col2im walk the rows without a division per row; the GEMM tile
 * sizes are the measured optimum of OpenBLAS's kernel (conv3d_plan). The weight gradient is a
 * GEMM-only sweep into acc [Ce*27][Co] (the long dimension as M), added into dweight once per
 * call; col2im adds the three kw taps of a row in one pass; bias-gradient sums run in
 * vectorisable lanes. What was measured, what gained and what did not:
 * tests/bench/RESULTS_conv.md.
 */
#include <limits.h>
#include <string.h>

#include <cblas.h>

#include "genesis/error.h"
#include "genesis/nn.h"
#include "nn/conv_internal.h"
#include "nn/threads_internal.h"

#include <omp.h>

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

/* How one k = 3 layer is tiled under a budget (counts in voxels, rows of W voxels, channels).
 * Every pass walks output tiles of whole (d, h) rows, T = rows * W voxels. Of the two tensors a
 * pass pairs through the 27 taps, the one with fewer channels is the one expanded 27x (by im2col,
 * or by col2im from the GEMM's output), the other is read by the GEMM in place:
 *   fwd_scatter  forward as col2im(wr [Cout*27][Cin] . inp tile) (K = Cin), when Cin >= Cout;
 *                otherwise out += weight [Cout][Cin*27] . im2col(inp tile). At Cin = Cout both
 *                copy as much, and the scatter GEMM (M = Cout*27) runs faster than M = Cout.
 *   bwd_flip     backward data as a forward convolution of dout with the flipped,
 *                channel-transposed weight wt [Cin][Cout*27] (im2col of dout), when Cin > Cout;
 *                otherwise dinp += col2im(weight^T [Cin*27][Cout] . dout tile) (K = Cout).
 *   wgt_dout     weight gradient from im2col of dout (sign -1) times inp^T, when Cin > Cout;
 *                otherwise from im2col of inp times dout^T. The GEMM, inner dimension T, writes
 *                acc [Ce*27][Co] (Ce the im2col'd tensor's channels, Co the other's, so the long
 *                dimension is M: 5-15% faster than dweight [Cout][Cin*27] as C), and acc is added
 *                into dweight once per call. wgt_chans channels of the im2col'd tensor per tile.
 *                The tiles (of every sample of the call) are cut into wgt_parts contiguous parts,
 *                each summed into its own acc; dweight += acc of part 0, then of part 1, ...
 *   fwd_rows, bwd_rows, wgt_rows  rows per tile of each pass.
 * Workspace: col_floats (the largest column tile) per thread + aux_floats (wr or wt: Cin*Cout*27;
 * acc: wgt_parts times that; shared). */
typedef struct conv3d_plan {
    int fwd_scatter, fwd_rows, bwd_flip, bwd_rows, wgt_dout, wgt_rows, wgt_chans, wgt_parts;
    size_t col_floats, aux_floats;
} conv3d_plan;

/* Tile sizes measured with bench_conv (OpenBLAS Cooperlake kernel, 1 thread, Zen 5):
 * forward / backward-data GEMMs ran best at T = 128..512 voxels; T = 48 (what a 4 MiB budget gives
 * at K = 768*27) lost 30%, and T >= 1024 lost 10-25% at 64x64x32. So the budget picks T, clamped
 * to [256, 512] voxels (the minimum wins over the budget; conv_set_gemm_tile_voxels). Column
 * chunks of the scatter GEMMs sized for L2 (512 KiB) lost 5-15% to whole tiles (M = C*27).
 * The weight-gradient GEMM (inner dimension T) ran best at T = 256 (512: same, 4096: -15-20%)
 * with as many channels as the budget holds. */
enum { WGT_TARGET_VOXELS = 256 };
/* The weight gradient's work items, each one thread's: (channel chunk of the im2col'd tensor, part
 * of the tiles), sizes that depend on the shape only (threads_internal.h). A chunk is
 * ceil(channels / WGT_ITEMS) channels, at least WGT_MIN_CHANS (or all of them): the GEMM's
 * M = chans*27 rows share one packing of the other tensor's tile, and 8-channel chunks (M = 216)
 * repacked it 8 times per tile (bench_conv, 2 threads, the 64^2x32 layers' weight gradients:
 * 32-channel chunks 8-20% faster, in three interleaved rounds). When that leaves fewer than
 * WGT_ITEMS chunks, the tiles are cut into parts (at most WGT_ITEMS / chunks, at least
 * WGT_MIN_PART_TILES tiles each) so that threads still share the work. */
enum { WGT_ITEMS = 8, WGT_MIN_CHANS = 32, WGT_MIN_PART_TILES = 4 };
/* Channel chunks of the scatter passes (conv3d_tiled_gemm_scatter), and of both GEMM forms when a
 * sample is a single tile (the 8x8x4 level: threads then split the tile's GEMM by channels). */
enum { SCATTER_CHUNKS = 8 };
/* Channels per chunk when C channels are cut into (about) SCATTER_CHUNKS chunks. */
static int chunk_chans(int C) { return (C + SCATTER_CHUNKS - 1) / SCATTER_CHUNKS; }
/* Voxels per GEMM of a k = 1 convolution's forward and input gradient (threads own chunks). */
enum { K1_CHUNK = 4096 };
static int gemm_min_voxels = 256, gemm_max_voxels = 512; /* conv_set_gemm_tile_voxels */

int conv_set_gemm_tile_voxels(int min_voxels, int max_voxels)
{
    CHECK(min_voxels >= 1 && max_voxels >= min_voxels, GEN_ERR_USAGE,
          "conv_set_gemm_tile_voxels: need 1 <= min (%d) <= max (%d)", min_voxels, max_voxels);
    gemm_min_voxels = min_voxels;
    gemm_max_voxels = max_voxels;
    return GEN_OK;
}

/* floor(budget / row_bytes) clamped to [1, rows_all]. */
static int rows_in_budget(size_t budget_bytes, size_t row_bytes, int rows_all)
{
    size_t rows = budget_bytes / row_bytes;
    if (rows < 1) rows = 1;
    if (rows > (size_t)rows_all) rows = (size_t)rows_all;
    return (int)rows;
}

/* Rows of W voxels per GEMM tile with `k_rows` column rows per voxel: the budget's count clamped
 * to [ceil(min_voxels / W), ceil(max_voxels / W)], then to [1, rows_all]. */
static int gemm_tile_rows(size_t budget_bytes, size_t k_rows, int W, int rows_all)
{
    size_t rows = budget_bytes / (k_rows * W * sizeof(float));
    size_t lo = ((size_t)gemm_min_voxels + W - 1) / W, hi = ((size_t)gemm_max_voxels + W - 1) / W;
    if (rows < lo) rows = lo;
    if (rows > hi) rows = hi;
    if (rows > (size_t)rows_all) rows = (size_t)rows_all;
    return rows < 1 ? 1 : (int)rows;
}

/* The plan of a k = 3 shape (already checked) under budget_bytes. */
static conv3d_plan conv3d_make_plan(const conv3d_shape *s, size_t budget_bytes)
{
    conv3d_plan p;
    const int rows_all = s->D * s->H, W = s->W;
    const size_t row_floats = (size_t)27 * W; /* one channel, one row of voxels */
    const int small = s->Cin < s->Cout ? s->Cin : s->Cout; /* the channels expanded 27x */
    p.fwd_scatter = s->Cin >= s->Cout;
    p.bwd_flip = p.wgt_dout = s->Cin > s->Cout;
    p.fwd_rows = gemm_tile_rows(budget_bytes, (size_t)small * 27, W, rows_all);
    p.bwd_rows = gemm_tile_rows(budget_bytes, (size_t)small * 27, W, rows_all);
    int target_rows = (WGT_TARGET_VOXELS + W - 1) / W;
    p.wgt_rows = rows_in_budget(budget_bytes, row_floats * sizeof(float),
                                target_rows < rows_all ? target_rows : rows_all);
    size_t chans = budget_bytes / (row_floats * p.wgt_rows * sizeof(float));
    /* at most ceil(small / WGT_ITEMS) channels (but >= WGT_MIN_CHANS): threads own chunks */
    size_t chunk = ((size_t)small + WGT_ITEMS - 1) / WGT_ITEMS;
    if (chunk < WGT_MIN_CHANS) chunk = WGT_MIN_CHANS;
    if (chans > chunk) chans = chunk;
    p.wgt_chans = chans < 1 ? 1 : chans > (size_t)small ? small : (int)chans;
    const int chunks = (small + p.wgt_chans - 1) / p.wgt_chans;
    const int tiles = s->N * ((rows_all + p.wgt_rows - 1) / p.wgt_rows); /* of the whole call */
    p.wgt_parts = chunks >= WGT_ITEMS ? 1 : (WGT_ITEMS + chunks - 1) / chunks;
    if (p.wgt_parts > tiles / WGT_MIN_PART_TILES) p.wgt_parts = tiles / WGT_MIN_PART_TILES;
    if (p.wgt_parts < 1) p.wgt_parts = 1;
    size_t f = (size_t)small * row_floats * p.fwd_rows;
    size_t b = (size_t)small * row_floats * p.bwd_rows;
    size_t g = (size_t)p.wgt_chans * row_floats * p.wgt_rows;
    p.col_floats = f > b ? (f > g ? f : g) : (b > g ? b : g);
    p.aux_floats = (size_t)p.wgt_parts * s->Cin * s->Cout * 27;
    return p;
}

size_t conv3d_workspace_floats(const conv3d_shape *s, size_t tile_budget_bytes)
{
    if (s == NULL || s->k != 3 || s->Cin < 1 || s->Cout < 1 || s->W < 1 || s->D < 1 || s->H < 1)
        return 0;
    conv3d_plan p = conv3d_make_plan(s, conv_budget_bytes(tile_budget_bytes));
    const size_t need = p.col_floats * nn_threads() + p.aux_floats, direct = conv_direct_need(s, 3);
    return need > direct ? need : direct; /* the direct passes use the same workspace */
}

/* Column layout shared by im2col_rows and col2im_rows_add: col[c*27 + tap][i*W + w], tap =
 * kd*9 + kh*3 + kw, for channel c of the tile and tile row i (output row r0 + i = (d, h), walked
 * incrementally, never divided per row). Tap (kd, kh, kw) pairs output voxel (d, h, w) with the
 * voxel (d, h, w) + sign * (kd - 1, kh - 1, kw - 1) of the other tensor: sign +1 is the
 * convolution, sign -1 the flipped one. Of the two w-shifted taps, kw_m = (sign > 0 ? 0 : 2)
 * is the one at w - 1 and 2 - kw_m the one at w + 1. */

/* col[c*27 + tap][T] = x chan (c0 + c) at the tap's voxel (0 in the padding), for channels
 * [c0, c0 + nc) and output rows [r0, r0 + nr) of one sample x [C][D][H][W]; T = nr * W. */
static void im2col_rows(float *col, const float *x, int D, int H, int W, int c0, int nc, int r0,
                        int nr, int sign)
{
    const size_t T = (size_t)nr * W, V = (size_t)D * H * W;
    const int kw_m = sign > 0 ? 0 : 2;
    for (int c = 0; c < nc; c++) {
        const float *chan = x + (size_t)(c0 + c) * V;
        for (int kdh = 0; kdh < 9; kdh++) {
            const int sd = sign * (kdh / 3 - 1), sh = sign * (kdh % 3 - 1);
            float *const base = col + ((size_t)c * 27 + kdh * 3) * T;
            float *restrict m = base + T, *restrict lo = base + kw_m * T;
            float *restrict hi = base + (2 - kw_m) * T;
            int d = r0 / H, h = r0 % H;
            for (int i = 0; i < nr; i++, m += W, lo += W, hi += W) {
                const int dd = d + sd, hh = h + sh;
                if (++h == H) h = 0, d++;
                if (dd < 0 || dd >= D || hh < 0 || hh >= H) {
                    for (int w = 0; w < W; w++) m[w] = lo[w] = hi[w] = 0.0f;
                    continue;
                }
                const float *restrict src = chan + ((size_t)dd * H + hh) * W;
                for (int w = 0; w < W; w++) m[w] = src[w];
                lo[0] = 0.0f;
                for (int w = 1; w < W; w++) lo[w] = src[w - 1];
                for (int w = 0; w < W - 1; w++) hi[w] = src[w + 1];
                hi[W - 1] = 0.0f;
            }
        }
    }
}

/* The adjoint of im2col_rows for channels [0, nc) of y (one sample, [nc...][D][H][W]): the voxel
 * of each tap += col[c*27 + tap][i*W + w] where it is inside. The three kw taps of a row are
 * added in one pass over the destination row. */
static void col2im_rows_add(float *y, const float *col, int nc, int D, int H, int W, int r0,
                            int nr, int sign)
{
    const size_t T = (size_t)nr * W, V = (size_t)D * H * W;
    const int kw_m = sign > 0 ? 0 : 2;
    for (int c = 0; c < nc; c++) {
        float *chan = y + (size_t)c * V;
        for (int kdh = 0; kdh < 9; kdh++) {
            const int sd = sign * (kdh / 3 - 1), sh = sign * (kdh % 3 - 1);
            const float *const base = col + ((size_t)c * 27 + kdh * 3) * T;
            const float *restrict m = base + T, *restrict lo = base + kw_m * T;
            const float *restrict hi = base + (2 - kw_m) * T;
            int d = r0 / H, h = r0 % H;
            for (int i = 0; i < nr; i++, m += W, lo += W, hi += W) {
                const int dd = d + sd, hh = h + sh;
                if (++h == H) h = 0, d++;
                if (dd < 0 || dd >= D || hh < 0 || hh >= H) continue;
                float *restrict dst = chan + ((size_t)dd * H + hh) * W;
                if (W == 1) {
                    dst[0] += m[0];
                    continue;
                }
                /* dst[w] += m[w] + lo[w + 1] + hi[w - 1] (lo's tap reads w - 1: it lands there) */
                dst[0] += m[0] + lo[1];
                for (int w = 1; w < W - 1; w++) dst[w] += m[w] + lo[w + 1] + hi[w - 1];
                dst[W - 1] += m[W - 1] + hi[W - 2];
            }
        }
    }
}

/* The calling thread's column tile: the workspace holds one of col_floats per thread. */
static inline float *thread_col(float *col, size_t col_floats)
{
    return col + (size_t)omp_get_thread_num() * col_floats;
}

/* y [N][Cy][V] += col2im(a [Cy*27][Cx] . x tile) for every sample: the GEMM needs no im2col
 * (x's tile [Cx][T] is the B matrix in place, K = Cx) and col2im scatters its result
 * col [Cy*27][T] into y, which must hold the whole sample (contributions leave the tile). Shared by
 * the forward in its scatter form (a = wr [Cout*27][Cin], sign -1) and backward data (a =
 * weight^T, a transposed view, sign +1). a is [Cy*27][Cx] with leading dimension lda.
 * Threads: tiles are taken in groups of one per thread; first each thread forms the whole column
 * matrix of its tile (one GEMM of M = Cy*27, the shape of the one-thread engine), then threads own
 * chunks of y's channels (SCATTER_CHUNKS chunks, a size set by Cy only; statically, so a thread
 * writes the same channels of y in every group and their lines stay in its cache) and scatter
 * every tile of the group into them in tile order. Each voxel receives the same GEMM results in
 * the same order at any thread count. (Owning channel chunks in the GEMM too, M = Cy*27 / 8,
 * packed x's tile 8 times and ran 10-20% slower.) A sample of one tile (a shape decision, the same
 * at any thread count) has no tiles to share: then each (sample, channel chunk) is one thread's
 * whole job, its GEMM (M = nc*27) and its scatter into its own channels. */
static void conv3d_tiled_gemm_scatter(float *y, const float *x, const float *a, int trans_a,
                                      int lda, int N, int Cx, int Cy, int D, int H, int W,
                                      int sign, int rows, float *col, size_t col_floats)
{
    const int rows_all = D * H, tiles = (rows_all + rows - 1) / rows;
    const int per_chunk = chunk_chans(Cy);
    const int chunks = (Cy + per_chunk - 1) / per_chunk, group = nn_threads();
    const size_t V = (size_t)D * H * W;
    if (tiles == 1) {
#pragma omp parallel for schedule(dynamic) num_threads(group)
        for (int j = 0; j < N * chunks; j++) {
            const int n = j / chunks, c0 = j % chunks * per_chunk;
            const int nc = Cy - c0 < per_chunk ? Cy - c0 : per_chunk;
            /* rows [c0*27, (c0 + nc)*27) of a: of a row-major a, or of the transposed view */
            const float *a_c = a + (trans_a ? (size_t)c0 * 27 : (size_t)c0 * 27 * lda);
            float *mine = thread_col(col, col_floats); /* [nc*27][V] */
            cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, nc * 27,
                        (int)V, Cx, 1.0f, a_c, lda, x + (size_t)n * Cx * V, (int)V, 0.0f, mine,
                        (int)V);
            col2im_rows_add(y + ((size_t)n * Cy + c0) * V, mine, nc, D, H, W, 0, rows_all, sign);
        }
        return;
    }
#pragma omp parallel num_threads(group)
    for (int n = 0; n < N; n++) {
        float *yn = y + (size_t)n * Cy * V;
        for (int g0 = 0; g0 < tiles; g0 += group) {
            const int in_group = tiles - g0 < group ? tiles - g0 : group;
#pragma omp for schedule(static)
            for (int k = 0; k < in_group; k++) { /* col k [Cy*27][T] = a . x tile (ld V) */
                const int r0 = (g0 + k) * rows, nr = rows_all - r0 < rows ? rows_all - r0 : rows;
                const float *x_tile = x + (size_t)n * Cx * V + (size_t)r0 * W;
                cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans,
                            Cy * 27, nr * W, Cx, 1.0f, a, lda, x_tile, (int)V, 0.0f,
                            col + (size_t)k * col_floats, nr * W);
            }
#pragma omp for schedule(static)
            for (int c = 0; c < chunks; c++) { /* channels [c0, c0 + nc), every tile in order */
                const int c0 = c * per_chunk, nc = Cy - c0 < per_chunk ? Cy - c0 : per_chunk;
                for (int k = 0; k < in_group; k++) {
                    const int r0 = (g0 + k) * rows;
                    const int nr = rows_all - r0 < rows ? rows_all - r0 : rows;
                    const float *col_k = col + (size_t)k * col_floats + (size_t)c0 * 27 * nr * W;
                    col2im_rows_add(yn + (size_t)c0 * V, col_k, nc, D, H, W, r0, nr, sign);
                }
            }
        }
    }
}

/* y [Cy][D][H][W] += a [Cy][Cx*27] . im2col(x) for every sample: the tiled forward GEMM, shared
 * by the forward (a = weight, sign +1) and the flipped backward data (a = wt, sign -1).
 * x is [N][Cx][V], y is [N][Cy][V]; col holds Cx*27*rows*W floats per thread (col_floats apart).
 * Threads own whole output tiles (of every sample). A sample of one tile (a shape decision) is
 * split by channels instead: threads im2col chunks of x's channels into one shared column matrix
 * (the first thread's), then own chunks of y's channels (GEMMs of M = nc, the same at any thread
 * count). */
static void conv3d_tiled_gemm(float *y, const float *x, const float *a, int N, int Cx, int Cy,
                              int D, int H, int W, int sign, int rows, float *col,
                              size_t col_floats)
{
    const int K = Cx * 27, rows_all = D * H, tiles = (rows_all + rows - 1) / rows;
    const size_t V = (size_t)D * H * W;
    if (tiles == 1) {
        const int x_chunk = chunk_chans(Cx), y_chunk = chunk_chans(Cy);
        const int x_chunks = (Cx + x_chunk - 1) / x_chunk, y_chunks = (Cy + y_chunk - 1) / y_chunk;
#pragma omp parallel num_threads(nn_threads())
        for (int n = 0; n < N; n++) {
            const float *xn = x + (size_t)n * Cx * V;
#pragma omp for schedule(static)
            for (int c = 0; c < x_chunks; c++) { /* col rows [c0*27, (c0 + nc)*27) */
                const int c0 = c * x_chunk, nc = Cx - c0 < x_chunk ? Cx - c0 : x_chunk;
                im2col_rows(col + (size_t)c0 * 27 * V, xn, D, H, W, c0, nc, 0, rows_all, sign);
            }
#pragma omp for schedule(dynamic)
            for (int c = 0; c < y_chunks; c++) { /* y rows [c0, c0 + nc) += a rows . col */
                const int c0 = c * y_chunk, nc = Cy - c0 < y_chunk ? Cy - c0 : y_chunk;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nc, (int)V, K, 1.0f,
                            a + (size_t)c0 * K, K, col, (int)V, 1.0f,
                            y + ((size_t)n * Cy + c0) * V, (int)V);
            }
        }
        return;
    }
#pragma omp parallel num_threads(nn_threads())
    {
        float *mine = thread_col(col, col_floats);
#pragma omp for schedule(dynamic)
        for (int j = 0; j < N * tiles; j++) {
            const int n = j / tiles, r0 = j % tiles * rows;
            const int nr = rows_all - r0 < rows ? rows_all - r0 : rows;
            const int T = nr * W;
            im2col_rows(mine, x + (size_t)n * Cx * V, D, H, W, 0, Cx, r0, nr, sign);
            /* yn[:, tile] [Cy][T] (ld V) += a [Cy][K] . col [K][T] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cy, T, K, 1.0f, a, K, mine, T,
                        1.0f, y + (size_t)n * Cy * V + (size_t)r0 * W, (int)V);
        }
    }
}

/* acc [parts][Ce*27][Co]: part q = sum over its tiles of im2col(e) [Ce*27][T] . o tile^T [T][Co],
 * the weight gradient with the im2col'd tensor e [N][Ce][V] (sign as in im2col_rows) and the other
 * one, o [N][Co][V], read in place. The N * tiles tiles of the call, in (sample, tile) order, are
 * cut into `parts` contiguous parts; a work item (chunk of `chans` channels of e, part), sizes
 * fixed by the shape, is one thread's: it sums its part's tiles in order, the first overwriting. */
static void conv3d_tiled_wgrad(float *acc, const float *e, const float *o, int N, int Ce, int Co,
                               int D, int H, int W, int sign, int rows, int chans, int parts,
                               float *col, size_t col_floats)
{
    const int rows_all = D * H, chunks = (Ce + chans - 1) / chans;
    const int tiles = (rows_all + rows - 1) / rows, tiles_all = N * tiles;
    const size_t V = (size_t)D * H * W, part_floats = (size_t)Ce * 27 * Co;
#pragma omp parallel num_threads(nn_threads())
    {
        float *mine = thread_col(col, col_floats);
#pragma omp for schedule(dynamic)
        for (int item = 0; item < chunks * parts; item++) {
            const int c0 = item % chunks * chans, nc = Ce - c0 < chans ? Ce - c0 : chans;
            const int q = item / chunks;
            const int t0 = (int)((long)tiles_all * q / parts);
            const int t1 = (int)((long)tiles_all * (q + 1) / parts);
            float *acc_c = acc + q * part_floats + (size_t)c0 * 27 * Co;
            for (int t = t0; t < t1; t++) {
                const int n = t / tiles, r0 = t % tiles * rows;
                const int nr = rows_all - r0 < rows ? rows_all - r0 : rows;
                const int T = nr * W;
                im2col_rows(mine, e + (size_t)n * Ce * V, D, H, W, c0, nc, r0, nr, sign);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nc * 27, Co, T, 1.0f, mine,
                            T, o + (size_t)n * Co * V + (size_t)r0 * W, (int)V,
                            t == t0 ? 0.0f : 1.0f, acc_c, Co);
            }
        }
    }
}

/* dst [cols][rows] (row stride ldd) += src [rows][cols]^T, in cache-sized blocks. */
static void add_transposed(float *dst, size_t ldd, const float *src, int rows, int cols)
{
    enum { B = 32 };
    for (int r0 = 0; r0 < rows; r0 += B)
        for (int c0 = 0; c0 < cols; c0 += B) {
            const int r1 = r0 + B < rows ? r0 + B : rows, c1 = c0 + B < cols ? c0 + B : cols;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++) dst[(size_t)c * ldd + r] += src[(size_t)r * cols + c];
        }
}

/* out[n][co][v] = bias[co] for every voxel (0 when bias is NULL); GEMMs then add with beta = 1. */
static void fill_bias(float *out, const float *bias, int N, int C, size_t V)
{
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)N * C * V))
    for (int nc = 0; nc < N * C; nc++) {
        float *o = out + (size_t)nc * V;
        const float b = bias ? bias[nc % C] : 0.0f;
        for (size_t v = 0; v < V; v++) o[v] = b;
    }
}

void conv_add_bias_grad(float *dbias, const float *dout, int N, int C, size_t V)
{
    enum { LANES = 8, BLOCK = 1024 };
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)N * C * V))
    for (int c = 0; c < C; c++) {
        double sum = 0.0;
        for (int n = 0; n < N; n++) {
            const float *g = dout + ((size_t)n * C + c) * V;
            for (size_t v0 = 0; v0 < V; v0 += BLOCK) {
                const size_t v1 = v0 + BLOCK < V ? v0 + BLOCK : V;
                float lane[LANES] = {0};
                size_t v = v0;
                for (; v + LANES <= v1; v += LANES)
                    for (int j = 0; j < LANES; j++) lane[j] += g[v + j];
                for (; v < v1; v++) lane[0] += g[v];
                for (int j = 0; j < LANES; j++) sum += lane[j];
            }
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
    const conv3d_plan p = conv3d_make_plan(s, conv_budget_bytes(ws ? ws->tile_budget_bytes : 0));
    const size_t cols = p.col_floats * nn_threads(); /* one column tile per thread */
    const size_t direct = s->k == 3 ? conv_direct_need(s, 0) : 0; /* 0: GEMM engine */
    if (s->k == 3)
        CALL(conv_check_workspace(ws, direct ? direct : cols + p.aux_floats, "conv3d_forward"));
    fill_bias(out, bias, s->N, Cout, V);
    if (direct) return conv_direct_run(out, inp, weight, s, 0, ws->data);

    if (s->k == 1) { /* out[n] [Cout][V] += weight [Cout][Cin] . inp[n] [Cin][V], in fixed
                      * chunks of K1_CHUNK voxels owned by threads */
        const int chunks = (int)((V + K1_CHUNK - 1) / K1_CHUNK);
#pragma omp parallel for schedule(static) num_threads(nn_threads())
        for (int j = 0; j < s->N * chunks; j++) {
            const size_t n = (size_t)(j / chunks), v0 = (size_t)(j % chunks) * K1_CHUNK;
            const int nv = (int)(V - v0 < K1_CHUNK ? V - v0 : K1_CHUNK);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, nv, Cin, 1.0f, weight,
                        Cin, inp + n * Cin * V + v0, (int)V, 1.0f, out + n * Cout * V + v0,
                        (int)V);
        }
        return GEN_OK;
    }

    if (!p.fwd_scatter) {
        conv3d_tiled_gemm(out, inp, weight, s->N, Cin, Cout, s->D, s->H, s->W, +1, p.fwd_rows,
                          ws->data, p.col_floats);
        return GEN_OK;
    }
    /* scatter form: wr [Cout*27][Cin], wr[co*27 + tap][ci] = weight[co][ci][tap] */
    float *wr = ws->data + cols;
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)Cout * Cin * 27))
    for (int co = 0; co < Cout; co++)
        for (int ci = 0; ci < Cin; ci++)
            for (int tap = 0; tap < 27; tap++)
                wr[((size_t)co * 27 + tap) * Cin + ci] = weight[((size_t)co * Cin + ci) * 27 + tap];
    conv3d_tiled_gemm_scatter(out, inp, wr, 0, Cin, s->N, Cin, Cout, s->D, s->H, s->W, -1,
                              p.fwd_rows, ws->data, p.col_floats);
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
    if (dbias) conv_add_bias_grad(dbias, dout, s->N, Cout, V);

    if (s->k == 1) {
        /* dweight [Cout][Cin] += dout[n] [Cout][V] . inp[n]^T [V][Cin]: one GEMM per sample (a
         * sum over V; small: the model's only k = 1 conv has Cout = 1) */
        for (int n = 0; dweight && n < s->N; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, Cin, (int)V, 1.0f,
                        dout + (size_t)n * Cout * V, (int)V, inp + (size_t)n * Cin * V, (int)V,
                        1.0f, dweight, Cin);
        if (!dinp) return GEN_OK;
        /* dinp[n] [Cin][V] += weight^T [Cin][Cout] . dout[n] [Cout][V], in fixed voxel chunks */
        const int chunks = (int)((V + K1_CHUNK - 1) / K1_CHUNK);
#pragma omp parallel for schedule(static) num_threads(nn_threads())
        for (int j = 0; j < s->N * chunks; j++) {
            const size_t n = (size_t)(j / chunks), v0 = (size_t)(j % chunks) * K1_CHUNK;
            const int nv = (int)(V - v0 < K1_CHUNK ? V - v0 : K1_CHUNK);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cin, nv, Cout, 1.0f, weight, Cin,
                        dout + n * Cout * V + v0, (int)V, 1.0f, dinp + n * Cin * V + v0, (int)V);
        }
        return GEN_OK;
    }
    if (!dinp && !dweight) return GEN_OK;

    const conv3d_plan p = conv3d_make_plan(s, conv_budget_bytes(ws ? ws->tile_budget_bytes : 0));
    const size_t cols = p.col_floats * nn_threads(); /* one column tile per thread */
    const size_t direct = dinp ? conv_direct_need(s, 1) : 0; /* 0: GEMM engine */
    const size_t wdirect = dweight ? conv_direct_need(s, 2) : 0;
    if ((dweight && !wdirect) || (dinp && !direct))
        CALL(conv_check_workspace(ws, cols + p.aux_floats, "conv3d_backward"));
    CALL(conv_check_workspace(ws, direct > wdirect ? direct : wdirect, "conv3d_backward"));
    const int K = Cin * 27, W = s->W;
    float *col = ws->data, *aux = ws->data + cols;

    if (wdirect) CALL(conv_direct_wgrad(dweight, dout, inp, s, ws->data));
    if (dweight && !wdirect) {
        if (p.wgt_dout) {
            /* acc [Cout*27][Cin], acc[co*27 + tap][ci] = sum_u dout[co][u - off(tap)] inp[ci][u];
             * per co, dweight [Cin][27] += acc block [27][Cin]^T, part by part */
            conv3d_tiled_wgrad(aux, dout, inp, s->N, Cout, Cin, s->D, s->H, W, -1, p.wgt_rows,
                               p.wgt_chans, p.wgt_parts, col, p.col_floats);
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)K * Cout))
            for (int co = 0; co < Cout; co++)
                for (int q = 0; q < p.wgt_parts; q++)
                    add_transposed(dweight + (size_t)co * K, 27,
                                   aux + ((size_t)q * Cout + co) * K, 27, Cin);
        } else {
            /* acc [Cin*27][Cout], acc[ci*27 + tap][co] = sum_v inp[ci][v + off(tap)] dout[co][v];
             * dweight [Cout][K] += acc^T, part by part */
            conv3d_tiled_wgrad(aux, inp, dout, s->N, Cin, Cout, s->D, s->H, W, +1, p.wgt_rows,
                               p.wgt_chans, p.wgt_parts, col, p.col_floats);
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)K * Cout))
            for (int r0 = 0; r0 < K; r0 += 32) /* threads own column blocks of dweight */
                for (int q = 0; q < p.wgt_parts; q++)
                    add_transposed(dweight + r0, K, aux + ((size_t)q * K + r0) * Cout,
                                   K - r0 < 32 ? K - r0 : 32, Cout);
        }
    }
    if (!dinp) return GEN_OK;

    if (direct) return conv_direct_run(dinp, dout, weight, s, 1, ws->data);
    if (p.bwd_flip) {
        /* dinp[ci][v] = sum over co, tap of weight[co][ci][tap] * dout[co][v - offset(tap)]:
         * a convolution of dout (sign -1) with wt [Cin][Cout*27], wt[ci][co*27 + tap] =
         * weight[co][ci][tap]. */
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)Cout * Cin * 27))
        for (int co = 0; co < Cout; co++)
            for (int ci = 0; ci < Cin; ci++)
                memcpy(aux + ((size_t)ci * Cout + co) * 27, weight + ((size_t)co * Cin + ci) * 27,
                       27 * sizeof(float));
        conv3d_tiled_gemm(dinp, dout, aux, s->N, Cout, Cin, s->D, s->H, W, -1, p.bwd_rows, col,
                          p.col_floats);
        return GEN_OK;
    }
    /* dinp += col2im(weight^T [Cin*27][Cout] . dout tile), weight^T a transposed view */
    conv3d_tiled_gemm_scatter(dinp, dout, weight, 1, K, s->N, Cout, Cin, s->D, s->H, W, +1,
                              p.bwd_rows, col, p.col_floats);
    return GEN_OK;
}
