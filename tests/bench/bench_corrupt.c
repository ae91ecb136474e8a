/* Benchmark: average time to corrupt one cube with all four corruptions drawn (and with the
 * paper's rates). Not part of ctest; build by hand:
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude tests/bench/bench_corrupt.c \
 *      src/data/corrupt.c src/util/rng.c src/util/error.c -lm -o build/bench_corrupt
 *   build/bench_corrupt [rows cols deps [samples]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "genesis/config.h"
#include "genesis/corrupt.h"
#include "genesis/error.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU time of this thread: less disturbed than wall time on a shared machine */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int run(const char *what, struct config_corrupt cfg, int rows, int cols, int deps, int n)
{
    size_t nv = (size_t)rows * cols * deps;
    float *cube = malloc(nv * sizeof *cube), *in = malloc(nv * sizeof *in),
          *tg = malloc(nv * sizeof *tg);
    if (!cube || !in || !tg) return 1;
    for (size_t v = 0; v < nv; v++) cube[v] = (float)((v * 2654435761u) % 1000) / 1000.0f;
    struct corrupt_workspace *ws;
    if (corrupt_workspace_create(&ws, &cfg, rows, cols, deps)) {
        fprintf(stderr, "%s\n", gen_error_message());
        return 1;
    }
    struct corrupt_record rec;
    corrupt_sample(ws, 1, 0, 0, cube, in, tg, &rec); /* warm up */
    double best = 1e9, total = 0, cpu_total = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now(), c0 = cpu_now();
        if (corrupt_sample(ws, 1, 0, (uint64_t)i, cube, in, tg, &rec)) return 1;
        double dt = now() - t0;
        cpu_total += cpu_now() - c0;
        total += dt;
        if (dt < best) best = dt;
    }
    printf("%-26s %dx%dx%d: mean %.3f ms/cube wall, %.3f ms cpu, best %.3f ms (%d cubes)\n",
           what, rows, cols, deps, 1e3 * total / n, 1e3 * cpu_total / n, 1e3 * best, n);
    corrupt_workspace_destroy(ws);
    free(cube);
    free(in);
    free(tg);
    return 0;
}

int main(int argc, char **argv)
{
    int rows = argc > 3 ? (int)strtol(argv[1], NULL, 10) : 64, cols = argc > 3 ? (int)strtol(argv[2], NULL, 10) : 64;
    int deps = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 32, n = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 200;
    genesis_config defaults;
    if (config_defaults(&defaults) != GEN_OK) return 1;
    struct config_corrupt all = defaults.corrupt; /* the paper's rates, then every corruption always */
    all.flip_rate = 1;
    all.local_rate = 1;
    all.nonlinear_rate = 1;
    all.paint_rate = 1;
    all.inpaint_rate = 0; /* out-painting: the costlier of the two (noise for the whole cube) */
    if (run("all four (out-painting)", all, rows, cols, deps, n)) return 1;
    all.inpaint_rate = 1;
    if (run("all four (in-painting)", all, rows, cols, deps, n)) return 1;
    struct config_corrupt nl = all;
    nl.flip_rate = nl.local_rate = nl.paint_rate = 0;
    if (run("non-linear only", nl, rows, cols, deps, n)) return 1;
    struct config_corrupt loc = all;
    loc.flip_rate = loc.nonlinear_rate = loc.paint_rate = 0;
    if (run("local shuffling only", loc, rows, cols, deps, n)) return 1;
    if (run("paper's rates", defaults.corrupt, rows, cols, deps, n)) return 1;
    return 0;
}
