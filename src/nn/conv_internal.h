/* Internals shared by the convolution files (src/nn/conv*.c): workspace checks and the im2col /
 * col2im kernels. Not a public header: nothing outside src/nn includes it. */
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

#endif
