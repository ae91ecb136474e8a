/* Tensors and layers (src/nn/): float32, layout [N, C, D, H, W], W fastest.
 * Axes (STYLE.md's glossary, used by nn.h and model.h): N batch, C channels, D, H, W the three
 * spatial sizes, V = D*H*W voxels per channel. The data side (volume.h, the cubes) calls the axes
 * of a cube rows, cols, deps: a cube [rows, cols, deps] is a tensor's [D, H, W], deps fastest.
 * Forward/backward pairs, outputs first, then const inputs, weights, dimensions (STYLE.md).
 * Backward functions ACCUMULATE (+=) into every gradient they write (dinp, dweight, dbias), like
 * PyTorch's .grad: callers zero gradients before a step. Functions return a status (error.h).
 * src/nn knows only libc and BLAS: anything that crosses ranks leaves through a hook.
 */
#ifndef GENESIS_NN_H
#define GENESIS_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- threads (src/nn/threads.c) -------------------------------------------------------- */

/* Every layer splits its work across nn_threads() OpenMP threads (process-wide; 1 = serial), each
 * calling one-thread OpenBLAS GEMMs. Results are bitwise the same at any thread count: work is
 * split by ownership of outputs, and every GEMM and every sum has the same shape and order at any
 * count (partitions that would change a sum use fixed chunks, combined in a fixed order).
 * nn_set_threads also sets OpenBLAS to one thread (its own threads would oversubscribe). The
 * environment (OMP_NUM_THREADS) is not consulted. Set it before sizing workspaces (the
 * *_workspace_floats functions size for the current count), not while layers run.
 * GEN_ERR_USAGE unless 1 <= threads <= NN_THREADS_MAX. */
#define NN_THREADS_MAX 1024
int nn_set_threads(int threads);
int nn_threads(void);
/* The threads worth waking for `elements` of memory-bound work (elementwise layers, batch norm,
 * pooling, the optimizer): nn_threads(), or 1 below NN_PARALLEL_MIN_ELEMENTS (a parallel region's
 * start and end cost more than such work, and far more when the cores are shared). */
#define NN_PARALLEL_MIN_ELEMENTS ((size_t)1 << 16)
int nn_threads_for(size_t elements);
/* p[0, n) = 0 and dst[0, n) = src[0, n) (no overlap), split over nn_threads_for(n) threads: one
 * thread would leave the others idle through the ~100 MB buffers of the 64^2x32 level. */
void nn_zero(float *p, size_t n);
void nn_copy(float *restrict dst, const float *restrict src, size_t n);

/* ---- convolutions (src/nn/conv.c) ------------------------------------------------------- */

/* A 3D convolution with stride 1: k = 3 with padding 1, or k = 1 without padding.
 * inp [N, Cin, D, H, W], weight [Cout, Cin, k, k, k] (PyTorch layout), bias [Cout],
 * out [N, Cout, D, H, W]. */
typedef struct conv3d_shape {
    int N, Cin, Cout, D, H, W, k;
} conv3d_shape;

/* Scratch memory for the convolutions: the column tiles of im2col and their gradients, one per
 * thread. One workspace is shared by all layers (sized for the largest); its size is bounded by
 * the tile budget times the threads, never a whole volume's column matrix. */
typedef struct nn_workspace {
    float *data;
    size_t floats;
    size_t tile_budget_bytes; /* column-tile budget the plans were sized for (default 4 MiB) */
} nn_workspace;

/* The tile budget used when nn_workspace.tile_budget_bytes is 0. Tiles never shrink below one
 * row of W voxels (nor below the GEMM minimum of conv_set_gemm_tile_voxels), so a layer may
 * exceed a small budget: the *_workspace_floats functions return what a layer really needs.
 * conv3d with Cin > Cout also needs a weight-sized buffer (Cin*Cout*27 floats) for its backward. */
#define NN_TILE_BUDGET_DEFAULT_BYTES ((size_t)4 << 20)

/* Tuning knob, process-wide: the forward and backward-data GEMM tiles of conv3d cover between
 * min_voxels and max_voxels output voxels (rounded up to whole rows of W), within that range as
 * many as the tile budget allows; the minimum wins over the budget, because the GEMM loses ~30%
 * below ~256 voxels (measured; default 256..512). Set it before sizing workspaces, not while
 * convolutions run. GEN_ERR_USAGE unless 1 <= min_voxels <= max_voxels. */
int conv_set_gemm_tile_voxels(int min_voxels, int max_voxels);

/* Which engine computes a k = 3 convolution's three passes (forward, input gradient, weight
 * gradient): CONV_DIRECT_AUTO (default) uses the direct AVX-512 kernels (src/nn/conv_direct.c)
 * where they measured faster (>= 16 channels in the tensor read through the taps: Cin for the
 * forward and the weight gradient, Cout for the input gradient; >= 2048 voxels) on CPUs with
 * AVX-512, im2col + sgemm elsewhere; _OFF always im2col + sgemm; _ALWAYS the direct kernels for
 * every k = 3 shape (tests). Without AVX-512 (or with GENESIS_CONV_DIRECT=0 in the
 * environment) every mode is im2col + sgemm. Process-wide; set it before sizing workspaces.
 * GEN_ERR_USAGE for another mode. */
enum { CONV_DIRECT_OFF = 0, CONV_DIRECT_AUTO = 1, CONV_DIRECT_ALWAYS = 2 };
int conv_set_direct(int mode);
/* 1 when this CPU (and build) can run the direct kernel and GENESIS_CONV_DIRECT is not "0". */
int conv_direct_supported(void);
/* A short name of the engine in use, for benchmark and profile output. */
const char *conv_engine_name(void);

/* Floats of workspace conv3d_forward/backward need for shape s under the tile budget, at the
 * current nn_threads(). */
size_t conv3d_workspace_floats(const conv3d_shape *s, size_t tile_budget_bytes);
int conv3d_forward(float *out, const float *inp, const float *weight, const float *bias,
                   const conv3d_shape *s, nn_workspace *ws);
/* dinp may be NULL (first layer: no input gradient needed). */
int conv3d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                    const float *weight, const conv3d_shape *s, nn_workspace *ws);

/* A transposed 3D convolution, kernel 2, stride 2 (the U-Net's up-convolution).
 * inp [N, Cin, D, H, W], weight [Cin, Cout, 2, 2, 2] (PyTorch ConvTranspose3d layout), bias [Cout],
 * out [N, Cout, 2D, 2H, 2W]. */
typedef struct conv_transpose3d_shape {
    int N, Cin, Cout, D, H, W; /* input sizes */
} conv_transpose3d_shape;

/* Floats of workspace at the current nn_threads(), as conv3d_workspace_floats. */
size_t conv_transpose3d_workspace_floats(const conv_transpose3d_shape *s, size_t tile_budget_bytes);
int conv_transpose3d_forward(float *out, const float *inp, const float *weight, const float *bias,
                             const conv_transpose3d_shape *s, nn_workspace *ws);
int conv_transpose3d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight,
                              const conv_transpose3d_shape *s, nn_workspace *ws);

/* ---- other layers (src/nn/layers.c, src/nn/batchnorm.c) --------------------------------- */

/* A hook through which per-channel sums leave the layer before they are used, so that a caller can
 * all-reduce (sum) them across ranks and every rank normalises with the global batch's statistics.
 * `sums` holds `count` doubles laid out as documented at each call site; the hook replaces them in
 * place by their global sums and returns a status (0 = success). The last element is always the
 * number of elements per channel that went into the sums, so the element count becomes global too.
 * A NULL hook (or a NULL `fn`) means local statistics only. */
typedef int (*nn_reduce_fn)(double *sums, int count, void *ctx);
typedef struct nn_reduce_hook {
    nn_reduce_fn fn;
    void *ctx;
} nn_reduce_hook;

/* Batch normalisation with the statistics of the current batch, always (training and evaluation
 * alike, as the reference's ContBatchNorm3d), optionally fused with a ReLU after it.
 * inp/out/xhat are [N, C, S] with S = D*H*W voxels per channel (any [N, C, D, H, W] tensor). */
typedef struct batchnorm3d_shape {
    int N, C;
    long S;       /* voxels per channel and sample, D*H*W */
    double momentum; /* running-estimate momentum, PyTorch convention (0.1) */
    double eps;      /* added to the variance (1e-5) */
    int relu;        /* 1: out = max(0, bn(inp)) and backward applies the ReLU mask */
} batchnorm3d_shape;

/* Forward. Per channel c, with M = global element count (N*S summed over ranks by the hook):
 *   mean = sum x / M, var = sum x^2 / M - mean^2 (biased), invstd = 1/sqrt(var + eps),
 *   xhat = (x - mean) * invstd, out = weight * xhat + bias (then ReLU if s->relu).
 * The hook sees 2C+1 doubles: [0, C) sum x, [C, 2C) sum x^2 (accumulated in double), [2C] = N*S.
 * Outputs: out [N,C,S] or NULL (not wanted); xhat [N,C,S] or NULL (not kept); save_mean,
 * save_invstd [C] (for backward; either may be NULL); running_mean/running_var [C] updated as
 *   r = (1 - momentum) r + momentum * stat, with the UNBIASED variance var * M / (M - 1),
 * or left alone when NULL. Any of out, xhat may be the same array as inp (elementwise in place).
 * Fails with GEN_ERR_USAGE on bad shapes or M < 2 (PyTorch refuses one value per channel too). */
int batchnorm3d_forward(float *out, float *xhat, float *save_mean, float *save_invstd,
                        float *running_mean, float *running_var, const float *inp,
                        const float *weight, const float *bias, const batchnorm3d_shape *s,
                        const nn_reduce_hook *hook);

/* Evaluation-mode forward (PyTorch's BatchNorm3d in eval()): normalises with the given running
 * estimates instead of the batch's statistics, xhat = (x - running_mean) / sqrt(running_var + eps),
 * out = weight * xhat + bias (then ReLU if s->relu). No sums, no hook, nothing updated, and no
 * backward (invstd [C] is written if not NULL, for reference). out or xhat may be NULL or inp. */
int batchnorm3d_forward_running(float *out, float *xhat, float *invstd, const float *inp,
                                const float *running_mean, const float *running_var,
                                const float *weight, const float *bias, const batchnorm3d_shape *s);

/* Backward from the normalised input: dy = dout (times the ReLU mask weight*xhat+bias > 0 when
 * s->relu), then with global sums over the batch (the hook sees 2C+1 doubles: [0, C) sum dy,
 * [C, 2C) sum dy*xhat, [2C] = N*S):
 *   dinp = weight * invstd * (dy - sum dy / M - xhat * sum(dy*xhat) / M),
 *   dweight += sum dy*xhat, dbias += sum dy   (the LOCAL sums: parameter gradients are summed
 *   across ranks later, by the gradient all-reduce, so they must not be summed here as well).
 * dinp is accumulated (+=) as every gradient in this header, except when dinp is the same array
 * as dout: then it is overwritten in place with the input gradient. dweight/dbias may be NULL. */
int batchnorm3d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *xhat, const float *save_invstd, const float *weight,
                         const float *bias, const batchnorm3d_shape *s, const nn_reduce_hook *hook);

/* batchnorm3d_backward in two halves, for callers that form the input gradient one sample at a
 * time (to keep one sample's dz instead of a batch's):
 *   reduce: over the whole batch s->N, the local sums -> dweight/dbias (+=), then the hook;
 *           sums [2C + 1] receives the global sums (layout above).
 *   apply:  the input gradient of the s->N samples whose dout/xhat/dinp are passed (e.g. one
 *           sample, s->N = 1), with the global sums of reduce; same += / in-place rule. */
int batchnorm3d_backward_reduce(double *sums, float *dweight, float *dbias, const float *dout,
                                const float *xhat, const float *weight, const float *bias,
                                const batchnorm3d_shape *s, const nn_reduce_hook *hook);
int batchnorm3d_backward_apply(float *dinp, const float *dout, const float *xhat,
                               const float *save_invstd, const float *weight, const float *bias,
                               const double *sums, const batchnorm3d_shape *s);

/* ReLU over n elements: out = max(0, inp) (NaN propagates, as torch.relu). out may be inp. */
int relu_forward(float *out, const float *inp, size_t n);
/* dinp += dout * (out > 0), from the forward OUTPUT. */
int relu_backward(float *dinp, const float *dout, const float *out, size_t n);

/* Sigmoid over n elements: out = 1 / (1 + exp(-inp)). out may be inp. */
int sigmoid_forward(float *out, const float *inp, size_t n);
/* dinp += dout * out * (1 - out), from the forward OUTPUT. */
int sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);

/* Max pooling, kernel 2, stride 2 (floor mode: an odd last D, H or W slice is dropped, as
 * PyTorch's MaxPool3d(2)). inp [N, C, D, H, W], out [N, C, D/2, H/2, W/2]; argmax (same size as
 * out) is the position of the maximum inside its 2x2x2 window, (dd*2 + dh)*2 + dw in 0..7; the
 * first maximum in that order wins, and a NaN wins over numbers (the last NaN), as in PyTorch.
 * Fails if a pooled size is 0. */
typedef struct maxpool3d_shape {
    int N, C, D, H, W; /* input sizes */
} maxpool3d_shape;
int maxpool3d_forward(float *out, uint8_t *argmax, const float *inp, const maxpool3d_shape *s);
/* dinp [N, C, D, H, W] += dout routed to the argmax of each window. */
int maxpool3d_backward(float *dinp, const float *dout, const uint8_t *argmax,
                       const maxpool3d_shape *s);

/* Concatenation along channels in the order (a, b): a [N, Ca, S], b [N, Cb, S],
 * out [N, Ca + Cb, S] (S voxels per channel). */
int concat_forward(float *out, const float *a, const float *b, int N, int Ca, int Cb, long S);
/* da += dout[:, :Ca], db += dout[:, Ca:]; either may be NULL (gradient not needed). */
int concat_backward(float *da, float *db, const float *dout, int N, int Ca, int Cb, long S);

/* Mean squared error over n elements, as torch.nn.MSELoss(): loss = sum (pred - target)^2 / n,
 * accumulated in double. */
int mse_forward(double *loss, const float *pred, const float *target, size_t n);
/* dpred += dloss * 2 (pred - target) / n  (dloss = 1 for the loss itself). */
int mse_backward(float *dpred, const float *pred, const float *target, size_t n, float dloss);

#endif
