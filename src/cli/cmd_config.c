/* genesis config: every key with its default and meaning, or a file checked and resolved, with the
 * learning-rate schedule it gives. */
#include "cli/cli.h"

#include "genesis/cubes.h"
#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/train.h"
#include "genesis/world.h"

#include <stdio.h>
#include <string.h>

/* "; memory: ..." lines: the trainer's estimate per rank (README "Sizing a run") at 1 rank and at the
 * rank counts up to 64 that divide the batch, with the cube counts and shape of [train] data when it
 * can be read (else [prep]'s cube size and no data terms). Never an error: --check is about the
 * configuration. */
static void print_memory_estimate(const genesis_config *cfg)
{
    cubes_file f;
    long long n_train = 0, n_val = 0;
    int rows = 0, cols = 0, deps = 0, have_data = cubes_open(&f, cfg->train.data, CUBES_THIS_RANK) == GEN_OK;
    if (have_data) {
        for (int64_t i = 0; i < f.count; i++)
            n_train += f.split[i] == SPLIT_TRAIN, n_val += f.split[i] == SPLIT_VALIDATION;
        rows = f.rows, cols = f.cols, deps = f.deps;
        cubes_close(&f);
    }
    gen_error_clear();
    printf("; memory: estimated peak of one rank of genesis train, %s:\n",
           have_data ? "with the cubes of [train] data" : "[train] data not readable: without the data terms");
    for (int ranks = 1; ranks <= 64 && ranks <= cfg->train.batch; ranks *= 2) {
        if (cfg->train.batch % ranks) continue;
        struct train_memory m;
        char text[256];
        if (train_memory_estimate(cfg, ranks, n_train, n_val, rows, cols, deps, &m) != GEN_OK) {
            printf(";   (no estimate: %s)\n", gen_error_message());
            gen_error_clear();
            return;
        }
        train_memory_describe(&m, text, sizeof text);
        printf(";   %d rank(s): %s\n", ranks, text);
    }
}

int cmd_config(int argc, char **argv)
{
    struct cli_config_args args;
    CALL(cli_parse_config_args(argc, argv, &args));
    int defaults = 0, check = 0;
    for (int i = 0; i < args.rest_count; i++) {
        if (!strcmp(args.rest[i], "--defaults")) defaults = 1;
        else if (!strcmp(args.rest[i], "--check")) check = 1;
        else FAIL_ALL(GEN_ERR_USAGE, "config: unknown option '%s'", args.rest[i]);
    }
    if (defaults + check != 1 || (defaults && (args.config_path || args.set_count)) ||
        (check && !args.config_path))
        FAIL_ALL(GEN_ERR_USAGE,
                 "usage: genesis config --defaults | genesis config --check FILE [--set ...]");
    if (defaults) {
        if (world_rank() == 0) config_print_defaults(stdout);
        return GEN_OK;
    }
    genesis_config cfg;
    CALL(world_load_config(&cfg, args.config_path, args.sets, args.set_count));
    CALL(gen_error_collective(config_train_check(&cfg)));
    const struct config_train *c = &cfg.train;
    lr_schedule schedule;
    CALL(gen_error_collective(lr_schedule_init(&schedule, c->learning_rate, c->lr_scaling, c->batch,
                                               c->reference_batch, c->warmup_steps, (int)c->lr_step_epochs,
                                               c->lr_gamma)));
    if (world_rank() == 0) {
        char text[512];
        lr_schedule_describe(&schedule, text, sizeof text);
        printf("; %s: valid; resolved configuration (hash %016lx):\n", args.config_path,
               config_hash(&cfg));
        config_print(&cfg, stdout);
        printf("\n; schedule: %s\n", text);
        print_memory_estimate(&cfg);
    }
    return GEN_OK;
}
