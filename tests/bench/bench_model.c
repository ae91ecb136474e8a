/* bench_model: standalone driver of model_bench (the core of `genesis bench`), until the CLI
 * subcommand exists. Usage:
 *   bench_model [--batch N] [--steps N] [--warmup N] [--width W] [--size D H W] [--no-layers]
 *               [--no-sgemm]
 * Run with OPENBLAS_NUM_THREADS=1. */
#include "genesis/error.h"
#include "genesis/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char *s, int *v)
{
    char *end;
    long x = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || x < 0 || x > 1 << 20) return -1;
    *v = (int)x;
    return 0;
}

int main(int argc, char **argv)
{
    model_bench_options o;
    model_bench_defaults(&o);
    for (int i = 1; i < argc; i++) {
        int ok = 0;
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) ok = !parse_int(argv[++i], &o.batch);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) ok = !parse_int(argv[++i], &o.steps);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) ok = !parse_int(argv[++i], &o.warmup);
        else if (!strcmp(argv[i], "--width") && i + 1 < argc) ok = !parse_int(argv[++i], &o.width);
        else if (!strcmp(argv[i], "--size") && i + 3 < argc)
            ok = !parse_int(argv[i + 1], &o.D) && !parse_int(argv[i + 2], &o.H) &&
                 !parse_int(argv[i + 3], &o.W), i += 3;
        else if (!strcmp(argv[i], "--no-layers")) o.per_layer = 0, ok = 1;
        else if (!strcmp(argv[i], "--no-sgemm")) o.sgemm = 0, ok = 1;
        if (!ok) {
            fprintf(stderr, "bench_model: bad argument '%s'\nusage: bench_model [--batch N] "
                    "[--steps N] [--warmup N] [--width W] [--size D H W] [--no-layers] [--no-sgemm]\n",
                    argv[i]);
            return 2;
        }
    }
    int status = model_bench(&o, stdout);
    if (status != GEN_OK) {
        fprintf(stderr, "bench_model: %s (%s)\n", gen_error_message(), gen_error_traceback());
        return gen_exit_code(status);
    }
    return 0;
}
