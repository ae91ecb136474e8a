/* genesis prep: NIfTI scans -> one cubes file (MPI-parallel). */
#include "cli/cli.h"

#include "genesis/cubes.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/prep.h"
#include "genesis/world.h"

int cmd_prep(int argc, char **argv)
{
    struct cli_config_args args;
    CALL(cli_parse_config_args(argc, argv, &args));
    if (args.rest_count) FAIL_ALL(GEN_ERR_USAGE, "prep: unknown option '%s' (see genesis help prep)", args.rest[0]);
    genesis_config cfg;
    CALL(world_load_config(&cfg, args.config_path, args.sets, args.set_count));
    struct prep_report r;
    CALL(prep_run(&cfg, &r));
    log_info("prep: wrote %s: %lld cubes (train %lld, validation %lld, test %lld) from %lld of %lld "
             "scans in %.1f s (%.2f scans/s, %.1f MB/s read)",
             cfg.prep.output, (long long)r.cubes, (long long)r.cubes_per_split[SPLIT_TRAIN],
             (long long)r.cubes_per_split[SPLIT_VALIDATION], (long long)r.cubes_per_split[SPLIT_TEST],
             (long long)r.scans_used, (long long)r.scans, r.seconds, (double)r.scans / r.seconds,
             r.bytes_read / 1e6 / r.seconds);
    return GEN_OK;
}
