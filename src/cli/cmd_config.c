/* genesis config: every key with its default and meaning, or a file checked and resolved, with the
 * learning-rate schedule it gives. */
#include "cli/cli.h"

#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/world.h"

#include <stdio.h>
#include <string.h>

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
    }
    return GEN_OK;
}
