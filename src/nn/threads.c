/* The layers' thread count (nn.h) and the fixed partitions they share (nn/threads_internal.h).
 *
 * Mechanism: OpenMP threads inside the layers, each calling cblas_sgemm with OpenBLAS at one
 * thread (scripts/bench_threads measures it against OpenBLAS's own 2-thread sgemm). Debian's
 * default OpenBLAS is the pthread build (libopenblas0-pthread): at one thread it runs a call
 * entirely in the calling thread, so concurrent calls from OpenMP threads are correct (the layer
 * tests pass at 3 threads, bitwise equal to 1 thread) and no OpenMP build of OpenBLAS is needed.
 * The alternative, OpenBLAS's own threads on the GEMMs of a serial engine, gained nothing (issue
 * 12: 0.210 vs 0.212 samples/s at 2 vs 1 OpenBLAS threads): it leaves im2col/col2im, batch norm
 * and the elementwise layers serial, and its GEMM tiles are too small to split well.
 *
 * Why fixed shapes: OpenBLAS 0.3.21's Haswell sgemm kernel (OPENBLAS_CORETYPE=Haswell, the
 * fastest here) gives C elements that differ in the last bits when the same GEMM is split into row
 * or column blocks (measured on every shape tried; Cooperlake and SkylakeX did not, but nothing
 * promises it), so a thread never computes a different-shaped GEMM than one thread would: threads
 * own whole tiles, or fixed chunks of channels whose size depends on the shape only.
 */
#include <cblas.h>
#include <omp.h>

#include "genesis/error.h"
#include "genesis/nn.h"
#include "nn/threads_internal.h"

static int layer_threads = 1;

int nn_set_threads(int threads)
{
    CHECK(threads >= 1 && threads <= NN_THREADS_MAX, GEN_ERR_USAGE,
          "nn_set_threads: %d threads (need 1..%d)", threads, NN_THREADS_MAX);
    layer_threads = threads;
    openblas_set_num_threads(1);
    return GEN_OK;
}

int nn_threads(void) { return layer_threads; }

int nn_threads_for(size_t elements)
{
    return elements < NN_PARALLEL_MIN_ELEMENTS ? 1 : layer_threads;
}

void nn_split(int count, int part, int parts, int *begin, int *end)
{
    const int base = count / parts, extra = count % parts;
    *begin = part * base + (part < extra ? part : extra);
    *end = *begin + base + (part < extra ? 1 : 0);
}
