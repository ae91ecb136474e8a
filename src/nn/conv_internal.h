/* Internals shared by the convolution files (src/nn/conv*.c): workspace checks and the bias
 * gradient. Not a public header: nothing outside src/nn includes it. */
#ifndef GENESIS_NN_CONV_INTERNAL_H
#define GENESIS_NN_CONV_INTERNAL_H

#include <stddef.h>

#include "genesis/nn.h"

/* The tile budget in bytes a workspace stands for: its own, or the default when it is 0. */
static inline size_t conv_budget_bytes(size_t tile_budget_bytes)
{
    return tile_budget_bytes ? tile_budget_bytes : NN_TILE_BUDGET_DEFAULT_BYTES;
}

/* Checks that ws (may be NULL when need == 0) holds at least `need` floats; GEN_ERR_USAGE naming
 * `what` otherwise. */
int conv_check_workspace(const nn_workspace *ws, size_t need, const char *what);

/* dbias[c] += sum over n and voxels of dout [N][C][V]: 8 float lanes (vectorisable; a single
 * float chain ran at one add per 4 cycles, ~15 ms for 128 channels at 64x64x32) per block of 1024
 * voxels, blocks accumulated in double per channel. */
void conv_add_bias_grad(float *dbias, const float *dout, int N, int C, size_t V);

/* ---- the direct kernel (conv_direct.c) ---------------------------------------------------- */

/* 1 when a pass whose expanded tensor x has Cx channels and V voxels per channel runs on the
 * direct kernel (conv_set_direct's mode, the CPU, the shape). */
int conv_direct_use(int Cx, size_t V);
/* Floats of packed weights for y with Cy channels from x with Cx (a multiple of 16), and of the
 * whole workspace: packed weights, then one window buffer per thread. */
size_t conv_direct_packed_floats(int Cx, int Cy);
size_t conv_direct_workspace_floats(int Cx, int Cy, int W, int threads);
/* wp = the weights in the kernel's order: for the forward (input_grad 0) from weight
 * [Cy][Cx][27]; for the input gradient (input_grad 1) from weight [Cx][Cy][27] (the layer's
 * [Cout][Cin][27] with Cx = Cout, Cy = Cin), channel-transposed and flipped. */
void conv_direct_pack(float *wp, const float *weight, int Cx, int Cy, int input_grad);
/* y [N][Cy][D*H*W] += the 3x3x3 convolution (padding 1) of x [N][Cx][D*H*W] with packed weights
 * wp; windows: nn_threads() window buffers (conv_direct_workspace_floats). */
void conv_direct(float *y, const float *x, const float *wp, int N, int Cx, int Cy, int D, int H,
                 int W, float *windows);

#endif
