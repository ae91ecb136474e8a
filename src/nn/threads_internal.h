/* Threading helpers shared by the files of src/nn (not a public header). */
#ifndef GENESIS_NN_THREADS_INTERNAL_H
#define GENESIS_NN_THREADS_INTERNAL_H

#include <stddef.h>

/* [*begin, *end) = part `part` of `parts` near-equal contiguous parts of [0, count). Only for
 * splitting work whose results do not depend on the split (owned outputs, elementwise ops). */
void nn_split(int count, int part, int parts, int *begin, int *end);

/* Elements per chunk of the fixed-chunk sums (the MSE loss): a chunk's partial sum is the same at
 * any thread count, and chunks are combined in index order. */
enum { NN_SUM_CHUNK = 1 << 16 };

#endif
