/* genesis bench: training-step speed of the full model on random data (one rank). */
#include "cli/cli.h"

#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/world.h"

#include <stdio.h>
#include <string.h>

int cmd_bench(int argc, char **argv)
{
    model_bench_options o;
    model_bench_defaults(&o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long v = 0;
        if (!strcmp(a, "--no-layers")) { o.per_layer = 0; continue; }
        if (!strcmp(a, "--no-sgemm")) { o.sgemm = 0; continue; }
        if (!strcmp(a, "--size")) {
            if (i + 3 >= argc) FAIL_ALL(GEN_ERR_USAGE, "bench: --size needs D H W");
            long d[3];
            for (int k = 0; k < 3; k++) CALL(cli_parse_long("--size", argv[++i], 8, 1024, &d[k]));
            if (d[0] % 8 || d[1] % 8 || d[2] % 8)
                FAIL_ALL(GEN_ERR_USAGE, "bench: --size values must be multiples of 8");
            o.D = (int)d[0], o.H = (int)d[1], o.W = (int)d[2];
            continue;
        }
        if (i + 1 >= argc)
            FAIL_ALL(GEN_ERR_USAGE, "bench: unknown or incomplete option '%s' (see genesis help bench)",
                     a);
        const char *text = argv[++i];
        int *target = !strcmp(a, "--batch") ? &o.batch : !strcmp(a, "--steps") ? &o.steps
                    : !strcmp(a, "--warmup") ? &o.warmup : !strcmp(a, "--width") ? &o.width
                    : !strcmp(a, "--threads") ? &o.threads : NULL;
        long lo = !strcmp(a, "--warmup") ? 0 : 1;
        if (target) {
            CALL(cli_parse_long(a, text, lo, !strcmp(a, "--threads") ? NN_THREADS_MAX : 100000, &v));
            *target = (int)v;
        } else FAIL_ALL(GEN_ERR_USAGE, "bench: unknown option '%s' (see genesis help bench)", a);
    }
    if (world_rank() != 0) return GEN_OK;
    return model_bench(&o, stdout);
}
