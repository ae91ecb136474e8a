/* genesis preview: a PNG of corrupted inputs beside their targets for cubes of a cubes file. */
#include "cli/cli.h"

#include "genesis/atomic_file.h"
#include "genesis/corrupt.h"
#include "genesis/cubes.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/png.h"
#include "genesis/world.h"

#include <stdlib.h>
#include <string.h>

struct preview_args {
    const char *cubes_path, *output, *config_path;
    long count, first, epoch, seed;
    int split, force;
};

/* Renders samples of `split` starting at its `first`-th cube. Rank 0 alone. */
static int render(const struct preview_args *a, const struct config_corrupt *cc)
{
    int status = GEN_OK;
    const char *input_files[] = {a->cubes_path, a->config_path};
    CALL(output_check(a->output, a->force, "--force", input_files, 2));
    cubes_file f;
    CALL(cubes_open(&f, a->cubes_path, CUBES_THIS_RANK));
    struct corrupt_workspace *ws = NULL;
    float *cubes = NULL;
    unsigned *mask = NULL;
    int64_t *index = malloc(sizeof *index * (size_t)a->count);
    CHECK_GOTO(index, GEN_ERR_NOMEM, "out of memory");
    CALL_GOTO(cubes_check_trainable(&f, a->cubes_path));
    int64_t n = 0, seen = 0;
    for (int64_t i = 0; i < f.count && n < a->count; i++)
        if (f.split[i] == a->split && seen++ >= a->first) index[n++] = i;
    size_t cube = (size_t)f.rows * f.cols * f.deps;
    cubes = malloc(sizeof *cubes * cube * (size_t)(3 * (n ? n : 1)));
    mask = malloc(sizeof *mask * (size_t)(n ? n : 1));
    CHECK_GOTO(cubes && mask, GEN_ERR_NOMEM, "out of memory");
    CHECK_GOTO(n > 0, GEN_ERR_USAGE, "%s: no %s cubes from number %ld on", a->cubes_path,
               cube_split_name(a->split), a->first);
    CALL_GOTO(cubes_read(&f, cubes, index, n));
    CALL_GOTO(corrupt_workspace_create(&ws, cc, f.rows, f.cols, f.deps));
    float *inputs = cubes + cube * (size_t)n, *targets = inputs + cube * (size_t)n;
    for (int64_t i = 0; i < n; i++) {
        struct corrupt_record rec;
        CALL_GOTO(corrupt_sample(ws, (uint64_t)a->seed, (uint64_t)a->epoch, (uint64_t)index[i],
                                 cubes + cube * (size_t)i, inputs + cube * (size_t)i,
                                 targets + cube * (size_t)i, &rec));
        mask[i] = rec.mask;
    }
    CALL_GOTO(preview_write_png(a->output, inputs, targets, NULL, (int)n, f.rows, f.cols, f.deps, index, mask));
    log_info("preview: %s: %lld %s samples (corrupted input | target at depths 2/6..5/6)", a->output,
             (long long)n, cube_split_name(a->split));
cleanup:
    if (ws) corrupt_workspace_destroy(ws);
    free(mask), free(cubes), free(index);
    cubes_close(&f);
    return status;
}

int cmd_preview(int argc, char **argv)
{
    struct preview_args a = {.count = 4, .epoch = 0, .seed = 1, .split = SPLIT_TRAIN};
    char *sets[CLI_MAX_SETS];
    int set_count = 0;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (o[0] != '-') {
            if (a.cubes_path) FAIL_ALL(GEN_ERR_USAGE, "preview: more than one cubes file ('%s', '%s')", a.cubes_path, o);
            a.cubes_path = o;
            continue;
        }
        if (!strcmp(o, "--force")) {
            a.force = 1;
            continue;
        }
        if (i + 1 >= argc) FAIL_ALL(GEN_ERR_USAGE, "preview: unknown or incomplete option '%s'", o);
        const char *v = argv[++i];
        if (!strcmp(o, "-o")) a.output = v;
        else if (!strcmp(o, "-n")) CALL(cli_parse_long(o, v, 1, 64, &a.count));
        else if (!strcmp(o, "--first")) CALL(cli_parse_long(o, v, 0, 1L << 40, &a.first));
        else if (!strcmp(o, "--epoch")) CALL(cli_parse_long(o, v, 0, 1L << 31, &a.epoch));
        else if (!strcmp(o, "--seed")) CALL(cli_parse_long(o, v, 0, 2147483647, &a.seed));
        else if (!strcmp(o, "--config")) a.config_path = v;
        else if (!strcmp(o, "--set") && set_count < CLI_MAX_SETS) sets[set_count++] = argv[i];
        else if (!strcmp(o, "--split")) {
            if (!strcmp(v, "train")) a.split = SPLIT_TRAIN;
            else if (!strcmp(v, "validation")) a.split = SPLIT_VALIDATION;
            else if (!strcmp(v, "test")) a.split = SPLIT_TEST;
            else FAIL_ALL(GEN_ERR_USAGE, "preview: --split expects train, validation or test, got '%s'", v);
        } else FAIL_ALL(GEN_ERR_USAGE, "preview: unknown option '%s' (see genesis help preview)", o);
    }
    if (!a.cubes_path || !a.output)
        FAIL_ALL(GEN_ERR_USAGE, "usage: genesis preview CUBES.h5 -o OUT.png [--force] [-n N] [--split S] [--first I] "
                                "[--epoch E] [--seed S] [--config FILE] [--set corrupt.key=value]");
    genesis_config cfg;
    CALL(world_load_config(&cfg, a.config_path, sets, set_count));
    CALL(gen_error_collective(config_corrupt_check(&cfg.corrupt)));
    if (world_rank() != 0) return GEN_OK;
    return render(&a, &cfg.corrupt);
}
