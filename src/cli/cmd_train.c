/* genesis train: data-parallel pretraining. */
#include "cli/cli.h"

#include "genesis/error.h"
#include "genesis/train.h"
#include "genesis/world.h"

#include <string.h>

int cmd_train(int argc, char **argv)
{
    struct cli_config_args args;
    CALL(cli_parse_config_args(argc, argv, &args));
    struct train_options opt = {0};
    for (int i = 0; i < args.rest_count; i++) {
        if (!strcmp(args.rest[i], "--profile")) opt.profile = 1;
        else if (!strcmp(args.rest[i], "--fresh")) opt.fresh = 1;
        else FAIL_ALL(GEN_ERR_USAGE, "train: unknown option '%s' (see genesis help train)", args.rest[i]);
    }
    genesis_config cfg;
    CALL(world_load_config(&cfg, args.config_path, args.sets, args.set_count));
    return train_run(&cfg, &opt);
}
