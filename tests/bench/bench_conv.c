/* bench_conv: per-layer time and GFLOP/s of the conv engine on the U-Net's layer shapes (SPEC.md
 * section 4, width 32, input 64x64x32), plus OpenBLAS's own sgemm 2048^3 in the same run as the
 * ceiling. Not a test: a measurement tool. Run with OPENBLAS_NUM_THREADS=1 (and e.g.
 * OPENBLAS_CORETYPE=Haswell, which must be set before the program starts).
 *
 *   bench_conv [-n batch] [-r min_seconds] [-b tile_budget_bytes] [-l layer_substring] [-s] [-w]
 *              [-t threads]
 *     -s  skip the sgemm ceiling
 *     -w  wall-clock times (default: this thread's CPU time, see now_s)
 *     -t  threads in the layers (nn_set_threads; implies -w), and the sgemm ceiling at as many
 *         OpenBLAS threads
 *
 * GFLOP/s are nominal: 2 * N * Vout * Cout * Cin * taps per pass (taps in the zero padding are
 * counted, as PyTorch's and the paper's counts do), the same for forward, backward data and
 * backward weight. Times are the best of the repetitions (medians drift with the shared cores).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h> /* Debian's (OpenBLAS) declares openblas_get_corename */

#include "genesis/error.h"
#include "genesis/nn.h"

/* The clock: this thread's CPU time by default (the cores are shared with other jobs, and CPU
 * time leaves out the time slices they take; it needs OPENBLAS_NUM_THREADS=1), wall time with -w. */
static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *alloc_random(size_t n, unsigned seed)
{
    /* 64-byte aligned, as the model allocates its tensors and workspace (unet3d_build.c) */
    float *p = aligned_alloc(64, ((n ? n : 1) * sizeof *p + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory (%zu floats)\n", n);
        exit(1);
    }
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) * (1.0 / 16777216.0) - 0.5);
    }
    return p;
}

enum { KIND_CONV, KIND_CONVT };
struct layer {
    const char *name;
    int kind, Cin, Cout, D, H, W, k; /* for KIND_CONVT, D, H, W are the input sizes */
};

static const struct layer layers[] = {
    {"down64.conv1", KIND_CONV, 1, 32, 64, 64, 32, 3},
    {"down64.conv2", KIND_CONV, 32, 64, 64, 64, 32, 3},
    {"down128.conv1", KIND_CONV, 64, 64, 32, 32, 16, 3},
    {"down128.conv2", KIND_CONV, 64, 128, 32, 32, 16, 3},
    {"down256.conv1", KIND_CONV, 128, 128, 16, 16, 8, 3},
    {"down256.conv2", KIND_CONV, 128, 256, 16, 16, 8, 3},
    {"down512.conv1", KIND_CONV, 256, 256, 8, 8, 4, 3},
    {"down512.conv2", KIND_CONV, 256, 512, 8, 8, 4, 3},
    {"up256.upconv", KIND_CONVT, 512, 512, 8, 8, 4, 2},
    {"up256.conv1", KIND_CONV, 768, 256, 16, 16, 8, 3},
    {"up256.conv2", KIND_CONV, 256, 256, 16, 16, 8, 3},
    {"up128.upconv", KIND_CONVT, 256, 256, 16, 16, 8, 2},
    {"up128.conv1", KIND_CONV, 384, 128, 32, 32, 16, 3},
    {"up128.conv2", KIND_CONV, 128, 128, 32, 32, 16, 3},
    {"up64.upconv", KIND_CONVT, 128, 128, 32, 32, 16, 2},
    {"up64.conv1", KIND_CONV, 192, 64, 64, 64, 32, 3},
    {"up64.conv2", KIND_CONV, 64, 64, 64, 64, 32, 3},
    {"out.conv", KIND_CONV, 64, 1, 64, 64, 32, 1},
};

/* Best time of repeated calls of pass `which` (0 forward, 1 backward data, 2 backward weight),
 * repeating until min_seconds have passed (at least twice). Exits on an error status. */
struct bufs {
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
};
static int run_pass(const struct layer *L, int N, int which, struct bufs *B, nn_workspace *ws)
{
    if (L->kind == KIND_CONV) {
        conv3d_shape s = {N, L->Cin, L->Cout, L->D, L->H, L->W, L->k};
        if (which == 0) return conv3d_forward(B->y, B->x, B->w, B->b, &s, ws);
        if (which == 1) return conv3d_backward(B->dx, NULL, NULL, B->dy, B->x, B->w, &s, ws);
        return conv3d_backward(NULL, B->dw, B->db, B->dy, B->x, B->w, &s, ws);
    }
    conv_transpose3d_shape s = {N, L->Cin, L->Cout, L->D, L->H, L->W};
    if (which == 0) return conv_transpose3d_forward(B->y, B->x, B->w, B->b, &s, ws);
    if (which == 1) return conv_transpose3d_backward(B->dx, NULL, NULL, B->dy, B->x, B->w, &s, ws);
    return conv_transpose3d_backward(NULL, B->dw, B->db, B->dy, B->x, B->w, &s, ws);
}

static double best_time(const struct layer *L, int N, int which, struct bufs *B, nn_workspace *ws,
                        double min_seconds)
{
    double best = 1e30, start = now_s();
    for (int rep = 0; rep < 2 || now_s() - start < min_seconds; rep++) {
        double t0 = now_s();
        if (run_pass(L, N, which, B, ws) != GEN_OK) {
            fprintf(stderr, "bench_conv: %s: %s\n", L->name, gen_error_message());
            exit(1);
        }
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

static double sgemm_gflops(int n, double min_seconds)
{
    float *a = alloc_random((size_t)n * n, 1), *b = alloc_random((size_t)n * n, 2);
    float *c = alloc_random((size_t)n * n, 3);
    double best = 1e30, start = now_s();
    for (int rep = 0; rep < 2 || now_s() - start < min_seconds; rep++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n / best * 1e-9;
}

int main(int argc, char **argv)
{
    int N = 1, skip_sgemm = 0, threads = 1;
    double min_seconds = 0.3;
    size_t budget = 0;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) N = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) min_seconds = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) budget = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-l") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "-s")) skip_sgemm = 1;
        else if (!strcmp(argv[i], "-g")) conv_set_direct(CONV_DIRECT_OFF);
        else if (!strcmp(argv[i], "-d")) conv_set_direct(CONV_DIRECT_ALWAYS);
        else if (!strcmp(argv[i], "-w")) bench_clock = CLOCK_MONOTONIC;
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-v") && i + 1 < argc) {
            int lo = 0, hi = 0;
            if (sscanf(argv[++i], "%d:%d", &lo, &hi) != 2 || conv_set_gemm_tile_voxels(lo, hi)) {
                fprintf(stderr, "bench_conv: -v wants MIN:MAX voxels per GEMM tile, 1 <= MIN <= MAX\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bench_conv [-n batch] [-r min_seconds] [-b tile_budget_bytes] "
                            "[-l layer_substring] [-s] [-w] [-t threads] [-v min:max tile voxels] "
                            "[-g | -d]\n  -g: im2col+sgemm only; -d: the direct kernels for "
                            "every 3x3x3 layer (default: by shape)\n");
            return 2;
        }
    }
    if (N < 1) {
        fprintf(stderr, "bench_conv: batch must be >= 1\n");
        return 2;
    }
    if (threads > 1) bench_clock = CLOCK_MONOTONIC; /* CPU time of one thread says nothing */
    if (!skip_sgemm) {
        openblas_set_num_threads(threads);
        printf("sgemm 2048^3 at %d OpenBLAS thread(s): %.1f GFLOP/s\n", threads,
               sgemm_gflops(2048, min_seconds));
    }
    if (nn_set_threads(threads) != GEN_OK) { /* also sets OpenBLAS to one thread */
        fprintf(stderr, "bench_conv: %s\n", gen_error_message());
        return 2;
    }
    printf("threads %d; conv engine: %s; openblas core: %s, batch %d, tile budget %zu bytes "
           "(0 = default %zu), %s time\n", threads, conv_engine_name(), openblas_get_corename(), N,
           budget, (size_t)NN_TILE_BUDGET_DEFAULT_BYTES,
           bench_clock == CLOCK_MONOTONIC ? "wall" : "thread CPU");
    printf("%-14s %-18s %9s %6s %9s %6s %9s %6s %9s\n", "layer", "Cin>Cout DxHxW", "fwd ms", "GF/s",
           "bwd-d ms", "GF/s", "bwd-w ms", "GF/s", "total ms");

    double sum[3] = {0, 0, 0}, flops_all = 0;
    for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
        const struct layer *L = &layers[li];
        if (filter && !strstr(L->name, filter)) continue;
        size_t V = (size_t)L->D * L->H * L->W, Vout = L->kind == KIND_CONVT ? 8 * V : V;
        size_t taps = L->kind == KIND_CONVT ? 8 : (size_t)L->k * L->k * L->k;
        size_t nx = (size_t)N * L->Cin * V, ny = (size_t)N * L->Cout * Vout;
        size_t nw = (size_t)L->Cin * L->Cout * taps;
        struct bufs B = {alloc_random(nx, 1), alloc_random(nw, 2), alloc_random(L->Cout, 3),
                         alloc_random(ny, 4), alloc_random(ny, 5), alloc_random(nx, 6),
                         alloc_random(nw, 7), alloc_random(L->Cout, 8)};
        size_t need;
        if (L->kind == KIND_CONV) {
            conv3d_shape s = {N, L->Cin, L->Cout, L->D, L->H, L->W, L->k};
            need = conv3d_workspace_floats(&s, budget);
        } else {
            conv_transpose3d_shape s = {N, L->Cin, L->Cout, L->D, L->H, L->W};
            need = conv_transpose3d_workspace_floats(&s, budget);
        }
        nn_workspace ws = {alloc_random(need, 9), need, budget};
        /* nominal flops: every (output voxel, tap, cin, cout) multiply-add */
        double flops = 2.0 * N * (L->kind == KIND_CONVT ? V : Vout) * L->Cout * L->Cin * taps;
        double t[3];
        /* the first layer needs no input gradient in the model: its bwd-data is not timed */
        for (int p = 0; p < 3; p++)
            t[p] = p == 1 && li == 0 ? 0.0 : best_time(L, N, p, &B, &ws, min_seconds);
        char shape[32];
        snprintf(shape, sizeof shape, "%d>%d %dx%dx%d", L->Cin, L->Cout, L->D, L->H, L->W);
        printf("%-14s %-18s %9.2f %6.1f %9.2f %6.1f %9.2f %6.1f %9.2f\n", L->name, shape,
               t[0] * 1e3, flops / t[0] * 1e-9, t[1] * 1e3, t[1] > 0 ? flops / t[1] * 1e-9 : 0.0, t[2] * 1e3,
               flops / t[2] * 1e-9, (t[0] + t[1] + t[2]) * 1e3);
        fflush(stdout);
        for (int p = 0; p < 3; p++) sum[p] += t[p];
        flops_all += (t[1] > 0 ? 3 : 2) * flops;
        free(B.x), free(B.w), free(B.b), free(B.y), free(B.dy), free(B.dx), free(B.dw), free(B.db);
        free(ws.data);
    }
    double total = sum[0] + sum[1] + sum[2];
    printf("%-33s %9.2f %6s %9.2f %6s %9.2f %6s %9.2f  (%.1f GFLOP/s overall)\n", "sum", sum[0] * 1e3,
           "", sum[1] * 1e3, "", sum[2] * 1e3, "", total * 1e3, flops_all / total * 1e-9);
    return 0;
}
