/* Direct 3x3x3 convolution (stride 1, padding 1) with hand-written AVX-512 kernels: the forward,
 * the input gradient and the weight gradient of conv3d without im2col and without a GEMM
 * library's packing.
 *
 *   y [N][Cy][V] += sum over x channel cx and tap t of w'[cy][cx][t] * x [N][Cx][V] at v + off(t)
 *
 * off(t) = (kd - 1, kh - 1, kw - 1) for t = kd*9 + kh*3 + kw, zero outside the volume. The
 * forward is (x = inp, y = out, w' = weight); the input gradient is the same sum with x = dout,
 * y = dinp and w'[ci][co][t] = weight[co][ci][26 - t] (the channel-transposed, flipped kernel: -off(t) is
 * off(26 - t)), so one kernel serves both (conv_direct_pack builds w').
 *
 * Why: im2col copies the input 27 times and the GEMM library then copies that copy again into its
 * packed panels (~16% of a training step in perf). Here the kernel reads the input in place
 * through masked vector loads at the 27 voxel offsets, an output block is MR = 8 channels x
 * TILE = 48 voxels (24 AVX-512 accumulators), and the weights are packed once per call in the
 * order the kernel reads them. Measured with bench_conv (tests/bench/RESULTS_conv.md).
 *
 * Layout of the work (all sizes depend on the shape only):
 *   super tile  SUB*TILE consecutive voxels of one sample (flattened d, h, w: a tile may cross rows
 *               and planes; the masks say which of its lanes each tap may read);
 *   window      per super tile, x's voxels [vs + p*HW - front, ... + span) for the planes
 *               p = -1, 0, 1 of every channel, copied into a thread's buffer (zeros outside the
 *               volume). Without the copy, channels V floats apart (a power of two) fell into the
 *               same cache sets and the kernel ran at 60% of its speed on the 64x64x32 layers;
 *   blocks      the window and the weights in blocks of CB x channels, laid out so that each tap
 *               walks a block's channels at a fixed stride (the block stays in L1 for its 27 taps).
 * Each output element is the sum over (block, tap, channel) in one fixed order, computed by one
 * kernel call whatever the thread count or partition: results are the same bits at any thread
 * count. Threads own (sample, super tile, output-channel range) items.
 *
 * The weight gradient, dweight[co][ci][t] += sum over n, v of dout[co][v] * inp[ci][v + off(t)],
 * is a sum over voxels; its kernel puts 16 input channels in the vector lanes, so no sum ever
 * crosses lanes: per voxel it broadcasts dout of WG_CO = 2 output channels and multiplies 9 taps
 * (one kd plane) of a transposed, zero-padded window of the input ([3 planes][R + 2 rows]
 * [W + 2][16 channels], R whole rows of one plane per tile): 18 accumulators, and the compiler
 * keeps the x vectors a voxel shares with its neighbour in registers (3 output channels, 27
 * accumulators, spilled them: 195 against 220 GFLOP/s). Each (tile, channel pair, plane) adds its
 * 18 sums into a partial [Cout][27][Cin] of its part of the tiles; parts (fixed by the shape) are
 * added into dweight in order, so the sums too are the same bits at any thread count.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "genesis/error.h"
#include "genesis/nn.h"
#include "nn/conv_internal.h"
#include "nn/threads_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CONV_DIRECT_COMPILED 1
#else
#define CONV_DIRECT_COMPILED 0
#endif

enum {
    MR = 8,           /* output channels per kernel call (rows of the output block) */
    NV = 3,           /* 16-float vectors per sub-tile */
    TILE = 16 * NV,   /* voxels per kernel call */
    SUB = 4,          /* sub-tiles per super tile (they share one window copy) */
    CB = 16,          /* x channels per block */
    DIRECT_MIN_CX = 16,   /* auto mode: x channels at least this ... */
    DIRECT_MIN_V = 2048,  /* ... and at least this many voxels (8x8x4 ran faster as GEMMs) */
    WG_LANES = 16,        /* weight gradient: input channels per vector */
    WG_CO = 2,            /* weight gradient: output channels per kernel call */
    WG_TILE_VOXELS = 256, /* weight gradient: about this many voxels (whole rows) per tile */
    WG_ITEMS = 8          /* weight gradient: at least this many (channel block, part) items */
};

static int direct_mode = CONV_DIRECT_AUTO;

int conv_set_direct(int mode)
{
    CHECK(mode == CONV_DIRECT_OFF || mode == CONV_DIRECT_AUTO || mode == CONV_DIRECT_ALWAYS,
          GEN_ERR_USAGE, "conv_set_direct: mode %d (need CONV_DIRECT_OFF, _AUTO or _ALWAYS)", mode);
    direct_mode = mode;
    return GEN_OK;
}

int conv_direct_supported(void)
{
#if CONV_DIRECT_COMPILED
    static int supported = -1;
    if (supported < 0) {
        __builtin_cpu_init();
        const char *off = getenv("GENESIS_CONV_DIRECT");
        supported = __builtin_cpu_supports("avx512f") && !(off && strcmp(off, "0") == 0);
    }
    return supported;
#else
    return 0;
#endif
}

const char *conv_engine_name(void)
{
    if (!conv_direct_supported() || direct_mode == CONV_DIRECT_OFF) return "im2col+sgemm";
    return direct_mode == CONV_DIRECT_ALWAYS ? "direct AVX-512 (all 3x3x3)"
                                             : "direct AVX-512 + im2col+sgemm";
}

static int conv_direct_use(int Cx, size_t V)
{
    if (!conv_direct_supported()) return 0;
    if (direct_mode == CONV_DIRECT_ALWAYS) return 1;
    return direct_mode == CONV_DIRECT_AUTO && Cx >= DIRECT_MIN_CX && V >= DIRECT_MIN_V;
}

/* Floats before voxel vs in a window row (a multiple of 16, so the centre taps load aligned) and
 * floats per window row (an odd number of 64-byte lines: a block's rows then spread over all
 * cache sets). */
static long window_front(int W) { return ((long)W + 1 + 15) / 16 * 16; }
static long window_span(int W)
{
    return ((SUB * TILE + window_front(W) + W + 1 + 15) / 16 | 1) * 16;
}

static size_t conv_direct_packed_floats(int Cx, int Cy)
{
    size_t f = (size_t)(Cy + MR - 1) / MR * MR * Cx * 27;
    return (f + 15) / 16 * 16;
}

static size_t conv_direct_workspace_floats(int Cx, int Cy, int W, int threads)
{
    return conv_direct_packed_floats(Cx, Cy) + (size_t)threads * Cx * 3 * window_span(W);
}

/* wp = the weights in the kernel's order: for the forward (input_grad 0) from weight
 * [Cy][Cx][27]; for the input gradient (input_grad 1) from weight [Cx][Cy][27] (the layer's
 * [Cout][Cin][27] with Cx = Cout, Cy = Cin), channel-transposed and flipped. */
static void conv_direct_pack(float *wp, const float *weight, int Cx, int Cy, int input_grad)
{
    const int cobs = (Cy + MR - 1) / MR;
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)Cx * Cy * 27))
    for (int cob = 0; cob < cobs; cob++) {
        float *wc = wp + (size_t)cob * Cx * 27 * MR;
        for (int cb0 = 0; cb0 < Cx; cb0 += CB) {
            const int cbn = Cx - cb0 < CB ? Cx - cb0 : CB;
            float *blk = wc + (size_t)cb0 * 27 * MR; /* [27][cbn][MR] */
            for (int t = 0; t < 27; t++)
                for (int c = 0; c < cbn; c++)
                    for (int m = 0; m < MR; m++) {
                        const int cy = cob * MR + m, cx = cb0 + c;
                        float v = 0.0f; /* rows past Cy: zero weights, never stored */
                        if (cy < Cy)
                            v = input_grad ? weight[((size_t)cx * Cy + cy) * 27 + 26 - t]
                                           : weight[((size_t)cy * Cx + cx) * 27 + t];
                        blk[((size_t)t * cbn + c) * MR + m] = v;
                    }
        }
    }
}

#if CONV_DIRECT_COMPILED

/* One tap of a sub-tile: which window plane (0..2) it reads, at which offset inside the plane's
 * row, its weight index, and the lanes of each vector that are inside the volume. */
typedef struct direct_tap {
    long off;
    int plane, tap;
    __mmask16 mask[NV];
} direct_tap;

/* y block [MR rows, `rows` of them stored][TILE voxels] (row stride V) += the sum over the blocks
 * of x's window (Cx channels, rows of `span` floats) and the taps of the sub-tile. wp is the
 * output-channel block's packed weights ([Cx blocks][27][cbn][MR]). ymask: lanes inside V. */
__attribute__((target("avx512f"))) static void
direct_kernel(float *y, size_t V, int rows, const float *xw, long span, const float *wp, int Cx,
              const direct_tap *taps, int ntaps, const __mmask16 *ymask)
{
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00,
           a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00, a40 = a00,
           a41 = a00, a42 = a00, a50 = a00, a51 = a00, a52 = a00, a60 = a00, a61 = a00,
           a62 = a00, a70 = a00, a71 = a00, a72 = a00;
    for (int c0 = 0; c0 < Cx; c0 += CB) {
        const int cbn = Cx - c0 < CB ? Cx - c0 : CB;
        const float *xblk = xw + (size_t)c0 * 3 * span, *wblk = wp + (size_t)c0 * 27 * MR;
        for (int t = 0; t < ntaps; t++) {
            const __mmask16 k0 = taps[t].mask[0], k1 = taps[t].mask[1], k2 = taps[t].mask[2];
            const float *xs = xblk + (long)taps[t].plane * cbn * span + taps[t].off;
            const float *w = wblk + (size_t)taps[t].tap * cbn * MR;
            for (int c = 0; c < cbn; c++, xs += span, w += MR) {
                const __m512 x0 = _mm512_maskz_loadu_ps(k0, xs);
                const __m512 x1 = _mm512_maskz_loadu_ps(k1, xs + 16);
                const __m512 x2 = _mm512_maskz_loadu_ps(k2, xs + 32);
                __m512 b;
#define DIRECT_ROW(m)                                                                            \
    b = _mm512_set1_ps(w[m]);                                                                    \
    a##m##0 = _mm512_fmadd_ps(b, x0, a##m##0);                                                   \
    a##m##1 = _mm512_fmadd_ps(b, x1, a##m##1);                                                   \
    a##m##2 = _mm512_fmadd_ps(b, x2, a##m##2);
                DIRECT_ROW(0) DIRECT_ROW(1) DIRECT_ROW(2) DIRECT_ROW(3)
                DIRECT_ROW(4) DIRECT_ROW(5) DIRECT_ROW(6) DIRECT_ROW(7)
#undef DIRECT_ROW
            }
        }
    }
#define DIRECT_STORE(m)                                                                          \
    if (m < rows) {                                                                              \
        float *p = y + (size_t)m * V;                                                            \
        _mm512_mask_storeu_ps(p, ymask[0],                                                       \
                              _mm512_add_ps(_mm512_maskz_loadu_ps(ymask[0], p), a##m##0));       \
        _mm512_mask_storeu_ps(p + 16, ymask[1],                                                  \
                              _mm512_add_ps(_mm512_maskz_loadu_ps(ymask[1], p + 16), a##m##1));  \
        _mm512_mask_storeu_ps(p + 32, ymask[2],                                                  \
                              _mm512_add_ps(_mm512_maskz_loadu_ps(ymask[2], p + 32), a##m##2));  \
    }
    DIRECT_STORE(0) DIRECT_STORE(1) DIRECT_STORE(2) DIRECT_STORE(3)
    DIRECT_STORE(4) DIRECT_STORE(5) DIRECT_STORE(6) DIRECT_STORE(7)
#undef DIRECT_STORE
}

/* xw [Cx blocks][3 planes][cbn][span] = x's voxels [vs + (p - 1)*HW - front, + span) of sample
 * xn [Cx][V], zero outside [0, V). */
static void direct_window(float *xw, const float *xn, int Cx, size_t V, size_t HW, size_t vs,
                          long front, long span)
{
    for (int cx = 0; cx < Cx; cx++) {
        const int cb0 = cx / CB * CB, cbn = Cx - cb0 < CB ? Cx - cb0 : CB;
        for (int p = 0; p < 3; p++) {
            float *dst = xw + (size_t)cb0 * 3 * span + ((size_t)p * cbn + cx - cb0) * span;
            const long s0 = (long)vs + (long)(p - 1) * (long)HW - front;
            const long a = s0 < 0 ? 0 : s0, b = s0 + span < (long)V ? s0 + span : (long)V;
            if (b <= a) {
                memset(dst, 0, sizeof(float) * span);
                continue;
            }
            memset(dst, 0, sizeof(float) * (a - s0));
            memcpy(dst + (a - s0), xn + (size_t)cx * V + a, sizeof(float) * (b - a));
            memset(dst + (b - s0), 0, sizeof(float) * (s0 + span - b));
        }
    }
}

/* The taps of the sub-tile at voxel v0 (super tile at vs) that read any voxel inside the volume,
 * in tap order, and the sub-tile's lanes inside V. Returns the number of taps. */
static int direct_taps(direct_tap *taps, __mmask16 *ymask, size_t v0, size_t vs, int D, int H,
                       int W, long front)
{
    const size_t HW = (size_t)H * W, V = HW * D;
    int dl[TILE], hl[TILE], wl[TILE];
    for (int q = 0; q < TILE; q++) {
        const size_t v = v0 + q, r = v % HW;
        dl[q] = v < V ? (int)(v / HW) : -2; /* -2: outside for every tap */
        hl[q] = (int)(r / W);
        wl[q] = (int)(r % W);
    }
    for (int j = 0; j < NV; j++) {
        unsigned m = 0;
        for (int l = 0; l < 16; l++) m |= (unsigned)(v0 + 16 * j + l < V) << l;
        ymask[j] = (__mmask16)m;
    }
    int n = 0;
    for (int t = 0; t < 27; t++) {
        const int sd = t / 9 - 1, sh = t / 3 % 3 - 1, sw = t % 3 - 1;
        direct_tap tp = {front + (long)sh * W + sw + (long)(v0 - vs), sd + 1, t, {0}};
        unsigned any = 0;
        for (int j = 0; j < NV; j++) {
            unsigned m = 0;
            for (int l = 0; l < 16; l++) {
                const int q = 16 * j + l, dd = dl[q] + sd, hh = hl[q] + sh, ww = wl[q] + sw;
                m |= (unsigned)(dl[q] >= 0 && dd >= 0 && dd < D && hh >= 0 && hh < H && ww >= 0 &&
                                ww < W)
                     << l;
            }
            tp.mask[j] = (__mmask16)m;
            any |= m;
        }
        if (any) taps[n++] = tp;
    }
    return n;
}

/* y [N][Cy][D*H*W] += the 3x3x3 convolution (padding 1) of x [N][Cx][D*H*W] with packed weights
 * wp; windows: nn_threads() window buffers. */
static void conv_direct(float *y, const float *x, const float *wp, int N, int Cx, int Cy, int D,
                        int H, int W, float *windows)
{
    const size_t HW = (size_t)H * W, V = HW * D;
    const long front = window_front(W), span = window_span(W);
    const size_t window_floats = (size_t)Cx * 3 * span;
    const int cobs = (Cy + MR - 1) / MR, threads = nn_threads();
    const int supers = (int)((V + SUB * TILE - 1) / (SUB * TILE));
    /* enough items for every thread: split the output channels when there are few super tiles */
    int parts = 1;
    while (parts < cobs && (long)N * supers * parts < 4L * threads) parts++;
    const int items = N * supers * parts;
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int it = 0; it < items; it++) {
        const int part = it % parts, st = it / parts % supers, n = it / parts / supers;
        int cob0, cob1;
        nn_split(cobs, part, parts, &cob0, &cob1);
        float *xw = windows + (size_t)omp_get_thread_num() * window_floats;
        const size_t vs = (size_t)st * SUB * TILE;
        direct_window(xw, x + (size_t)n * Cx * V, Cx, V, HW, vs, front, span);
        direct_tap taps[SUB][27];
        __mmask16 ymask[SUB][NV];
        int ntaps[SUB], subs = 0;
        for (; subs < SUB && vs + (size_t)subs * TILE < V; subs++)
            ntaps[subs] = direct_taps(taps[subs], ymask[subs], vs + (size_t)subs * TILE, vs, D, H,
                                      W, front);
        for (int cob = cob0; cob < cob1; cob++) {
            const int rows = Cy - cob * MR < MR ? Cy - cob * MR : MR;
            float *yb = y + ((size_t)n * Cy + (size_t)cob * MR) * V + vs;
            for (int s = 0; s < subs; s++)
                direct_kernel(yb + (size_t)s * TILE, V, rows, xw, span,
                              wp + (size_t)cob * Cx * 27 * MR, Cx, taps[s], ntaps[s], ymask[s]);
        }
    }
}

/* P [WG_CO rows, `Cinp` apart, of 27][16 lanes] += for the 9 taps (kh, kw) of plane kd, the sum
 * over the tile's nr x W voxels of g_m[voxel] * xw at the voxel shifted by (kh - 1, kw - 1); xw is
 * the window's plane kd, [nr + 2][W + 2][16]. */
__attribute__((target("avx512f"))) static void
wgrad_kernel(float *P, size_t Cinp, const float *xw, int nr, int W, const float *g0,
             const float *g1, int kd)
{
    __m512 a[WG_CO][9];
    for (int m = 0; m < WG_CO; m++)
        for (int j = 0; j < 9; j++) a[m][j] = _mm512_setzero_ps();
    const long rs = (long)(W + 2) * WG_LANES; /* floats per window row */
    for (int i = 0; i < nr; i++) {
        const float *xr = xw + i * rs, *gr0 = g0 + (size_t)i * W, *gr1 = g1 + (size_t)i * W;
        for (int w = 0; w < W; w++) {
            const float *xp = xr + (long)w * WG_LANES;
            const __m512 b0 = _mm512_set1_ps(gr0[w]), b1 = _mm512_set1_ps(gr1[w]);
#pragma GCC unroll 9
            for (int j = 0; j < 9; j++) {
                const __m512 xv = _mm512_loadu_ps(xp + (j / 3) * rs + (j % 3) * WG_LANES);
                a[0][j] = _mm512_fmadd_ps(b0, xv, a[0][j]);
                a[1][j] = _mm512_fmadd_ps(b1, xv, a[1][j]);
            }
        }
    }
    for (int m = 0; m < WG_CO; m++)
        for (int j = 0; j < 9; j++) {
            float *p = P + ((size_t)m * 27 + kd * 9 + j) * Cinp;
            _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), a[m][j]));
        }
}

/* xw [3][nr + 2][W + 2][16] = channels [cb, cb + 16) of sample xn [Cin][V] around rows
 * [h0, h0 + nr) of plane d, transposed (channels fastest), zero outside the volume and past Cin. */
static void wgrad_window(float *xw, const float *xn, int Cin, int cb, int D, int H, int W, int d,
                         int h0, int nr)
{
    const size_t HW = (size_t)H * W, V = HW * D;
    const long rs = (long)(W + 2) * WG_LANES, ps = (nr + 2) * rs;
    memset(xw, 0, sizeof(float) * 3 * ps);
    for (int p = 0; p < 3; p++) {
        const int dd = d + p - 1;
        if (dd < 0 || dd >= D) continue;
        for (int r = 0; r < nr + 2; r++) {
            const int hh = h0 + r - 1;
            if (hh < 0 || hh >= H) continue;
            float *dst = xw + p * ps + r * rs + WG_LANES;
            for (int c = 0; c < WG_LANES && cb + c < Cin; c++) {
                const float *src = xn + (size_t)(cb + c) * V + (size_t)dd * HW + (size_t)hh * W;
                for (int w = 0; w < W; w++) dst[w * WG_LANES + c] = src[w];
            }
        }
    }
}

#endif

/* The weight gradient's layout for shape s: R rows per tile, tiles per sample, parts. */
typedef struct wgrad_plan {
    int rows, tiles, blocks, parts;
    size_t Cinp, Coutp, window_floats, part_floats;
} wgrad_plan;

static wgrad_plan wgrad_make_plan(const conv3d_shape *s)
{
    wgrad_plan p;
    p.rows = WG_TILE_VOXELS / s->W;
    if (p.rows < 1) p.rows = 1;
    if (p.rows > s->H) p.rows = s->H;
    p.tiles = s->D * ((s->H + p.rows - 1) / p.rows);
    p.blocks = (s->Cin + WG_LANES - 1) / WG_LANES;
    p.Cinp = (size_t)p.blocks * WG_LANES;
    p.Coutp = (size_t)(s->Cout + WG_CO - 1) / WG_CO * WG_CO;
    /* parts of the N * tiles tiles: enough (block, part) items, each part >= 4 tiles */
    p.parts = p.blocks >= WG_ITEMS ? 1 : (WG_ITEMS + p.blocks - 1) / p.blocks;
    if (p.parts > s->N * p.tiles / 4) p.parts = s->N * p.tiles / 4;
    if (p.parts < 1) p.parts = 1;
    p.window_floats = (size_t)3 * (p.rows + 2) * (s->W + 2) * WG_LANES;
    p.part_floats = p.Coutp * 27 * p.Cinp;
    return p;
}

/* Floats of the zero row (dout of a missing odd channel): rows * W, rounded up to 16. */
static size_t zero_row_floats(const wgrad_plan *p, int W)
{
    return ((size_t)p->rows * W + 15) / 16 * 16;
}

#if CONV_DIRECT_COMPILED

/* ws: parts x part_floats partial sums, one zero row of rows * W floats (rounded up to 16), then
 * nn_threads() windows. */
int conv_direct_wgrad(float *dweight, const float *dout, const float *inp,
                      const conv3d_shape *s, float *ws)
{
    const wgrad_plan p = wgrad_make_plan(s);
    const int Cin = s->Cin, Cout = s->Cout, W = s->W, rblocks = (s->H + p.rows - 1) / p.rows;
    const size_t V = (size_t)s->D * s->H * W, HW = (size_t)s->H * W;
    float *partial = ws, *zero_row = ws + p.parts * p.part_floats;
    float *windows = zero_row + zero_row_floats(&p, W); /* 64-byte aligned when ws is */
    memset(zero_row, 0, sizeof(float) * zero_row_floats(&p, W));
    const int tiles_all = s->N * p.tiles, items = p.blocks * p.parts;
#pragma omp parallel for schedule(dynamic) num_threads(nn_threads())
    for (int it = 0; it < items; it++) {
        const int cb = it % p.blocks * WG_LANES, q = it / p.blocks;
        const int t0 = (int)((long)tiles_all * q / p.parts);
        const int t1 = (int)((long)tiles_all * (q + 1) / p.parts);
        float *xw = windows + (size_t)omp_get_thread_num() * p.window_floats;
        float *Pq = partial + q * p.part_floats + cb;
        for (size_t r = 0; r < p.Coutp * 27; r++) /* the item's lanes of its partial sums */
            memset(Pq + r * p.Cinp, 0, sizeof(float) * WG_LANES);
        for (int t = t0; t < t1; t++) { /* tile t: sample n, plane d, rows [h0, h0 + nr) */
            const int n = t / p.tiles, d = t % p.tiles / rblocks;
            const int h0 = t % p.tiles % rblocks * p.rows;
            const int nr = s->H - h0 < p.rows ? s->H - h0 : p.rows;
            wgrad_window(xw, inp + (size_t)n * Cin * V, Cin, cb, s->D, s->H, W, d, h0, nr);
            const float *gn = dout + (size_t)n * Cout * V + (size_t)d * HW + (size_t)h0 * W;
            const long plane = (long)(nr + 2) * (W + 2) * WG_LANES;
            for (int co = 0; co < Cout; co += WG_CO) {
                const float *g1 = co + 1 < Cout ? gn + (size_t)(co + 1) * V : zero_row;
                for (int kd = 0; kd < 3; kd++)
                    if (d + kd - 1 >= 0 && d + kd - 1 < s->D)
                        wgrad_kernel(Pq + (size_t)co * 27 * p.Cinp, p.Cinp, xw + kd * plane, nr,
                                     W, gn + (size_t)co * V, g1, kd);
            }
        }
    }
    /* dweight[co][ci][t] += partial q [co][t][ci], q in order */
#pragma omp parallel for schedule(static) num_threads(nn_threads_for((size_t)Cout * Cin * 27))
    for (int co = 0; co < Cout; co++)
        for (int q = 0; q < p.parts; q++) {
            const float *Pc = partial + q * p.part_floats + (size_t)co * 27 * p.Cinp;
            for (int ci = 0; ci < Cin; ci++)
                for (int t = 0; t < 27; t++)
                    dweight[((size_t)co * Cin + ci) * 27 + t] += Pc[(size_t)t * p.Cinp + ci];
        }
    return GEN_OK;
}

#else /* no AVX-512 kernel in this build: conv_direct_use() is 0, nothing calls these */

int conv_direct_wgrad(float *dweight, const float *dout, const float *inp,
                      const conv3d_shape *s, float *ws)
{
    (void)dweight, (void)dout, (void)inp, (void)s, (void)ws;
    return GEN_OK;
}

static void conv_direct(float *y, const float *x, const float *wp, int N, int Cx, int Cy, int D,
                        int H, int W, float *windows)
{
    (void)y, (void)x, (void)wp, (void)N, (void)Cx, (void)Cy, (void)D, (void)H, (void)W;
    (void)windows;
}

#endif

size_t conv_direct_need(const conv3d_shape *s, int pass)
{
    const size_t V = (size_t)s->D * s->H * s->W;
    size_t f = 0, b = 0, g = 0;
    if ((pass == 0 || pass == 3) && conv_direct_use(s->Cin, V))
        f = conv_direct_workspace_floats(s->Cin, s->Cout, s->W, nn_threads());
    if ((pass == 1 || pass == 3) && conv_direct_use(s->Cout, V))
        b = conv_direct_workspace_floats(s->Cout, s->Cin, s->W, nn_threads());
    if ((pass == 2 || pass == 3) && conv_direct_use(s->Cin, V)) {
        const wgrad_plan p = wgrad_make_plan(s);
        g = p.parts * p.part_floats + zero_row_floats(&p, s->W) + nn_threads() * p.window_floats;
    }
    return f > b ? (f > g ? f : g) : (b > g ? b : g);
}

int conv_direct_run(float *y, const float *x, const float *weight, const conv3d_shape *s,
                    int pass, float *ws)
{
    const int Cx = pass ? s->Cout : s->Cin, Cy = pass ? s->Cin : s->Cout;
    conv_direct_pack(ws, weight, Cx, Cy, pass);
    conv_direct(y, x, ws, s->N, Cx, Cy, s->D, s->H, s->W, ws + conv_direct_packed_floats(Cx, Cy));
    return GEN_OK;
}
