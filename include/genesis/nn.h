/* Tensors and layers (src/nn/): float32, layout [N, C, D, H, W], W (deps) fastest.
 * Forward/backward pairs, outputs first, then const inputs, weights, dimensions (STYLE.md).
 * Backward functions ACCUMULATE (+=) into every gradient they write (dinp, dweight, dbias), like
 * PyTorch's .grad: callers zero gradients before a step. Functions return a status (error.h).
 * src/nn knows only libc and BLAS: anything that crosses ranks leaves through a hook.
 */
#ifndef GENESIS_NN_H
#define GENESIS_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- convolutions (src/nn/conv.c) ------------------------------------------------------- */

/* A 3D convolution with stride 1: k = 3 with padding 1, or k = 1 without padding.
 * inp [N, Cin, D, H, W], weight [Cout, Cin, k, k, k] (PyTorch layout), bias [Cout],
 * out [N, Cout, D, H, W]. */
typedef struct conv3d_shape {
    int N, Cin, Cout, D, H, W, k;
} conv3d_shape;

/* Scratch memory for the convolutions: the column tiles of im2col and their gradients.
 * One workspace is shared by all layers (sized for the largest); its size is bounded by the tile
 * budget, never a whole volume's column matrix. */
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

/* Floats of workspace conv3d_forward/backward need for shape s under the tile budget. */
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

size_t conv_transpose3d_workspace_floats(const conv_transpose3d_shape *s, size_t tile_budget_bytes);
int conv_transpose3d_forward(float *out, const float *inp, const float *weight, const float *bias,
                             const conv_transpose3d_shape *s, nn_workspace *ws);
int conv_transpose3d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight,
                              const conv_transpose3d_shape *s, nn_workspace *ws);

/* ---- end of convolutions ---------------------------------------------------------------- */



/* ---- other layers (src/nn/layers.c, src/nn/batchnorm.c) --------------------------------- */

/* ---- end of other layers ---------------------------------------------------------------- */

#endif
