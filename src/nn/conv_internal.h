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

/* ---- the direct kernels (conv_direct.c) --------------------------------------------------- */

/* Floats of workspace the direct kernels need for the k = 3 shape s (checked) at nn_threads():
 * pass 0 the forward, 1 the input gradient, 2 the weight gradient, 3 the largest of the three; 0
 * when that pass does not run on a direct kernel (conv_set_direct's mode, the CPU, the shape). */
size_t conv_direct_need(const conv3d_shape *s, int pass);
/* Pass 0: out += conv(inp, weight); pass 1: dinp += the input gradient from dout; (y, x) are
 * (out, inp) or (dinp, dout), weight is the layer's [Cout][Cin][27]; ws holds
 * conv_direct_need(s, pass) floats. Returns GEN_OK. */
int conv_direct_run(float *y, const float *x, const float *weight, const conv3d_shape *s,
                    int pass, float *ws);
/* dweight [Cout][Cin][27] += the weight gradient from dout and inp; ws holds
 * conv_direct_need(s, 2) floats. Returns GEN_OK. */
int conv_direct_wgrad(float *dweight, const float *dout, const float *inp, const conv3d_shape *s,
                      float *ws);

#endif
