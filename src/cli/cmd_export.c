/* genesis export: a checkpoint's weights as a weights file named by PyTorch state_dict keys;
 * genesis forward: the model of a checkpoint or weights file on arrays (checks against PyTorch). */
#include "cli/cli.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/infer.h"
#include "genesis/weights.h"
#include "genesis/world.h"

#include <string.h>

/* Rank 0 does the work; the outcome is shared so that every rank ends alike. */
static int on_rank0(int status) { return world_agree_shared(status); }

static int export_weights(const char *ckpt, const char *output, int force)
{
    const char *inputs[] = {ckpt};
    CALL(output_check(output, force, "--force", inputs, 1));
    /* the model is built for the smallest input: only its parameters matter here */
    model_config shape = {.batch = 1, .D = 8, .H = 8, .W = 8};
    int status = GEN_OK;
    model *m = NULL;
    CALL(model_load_file(&m, ckpt, &shape, NULL));
    CALL_GOTO(weights_write(output, m));
    log_info("export: %s: %d tensors of the width-%d U-Net (%zu parameters), named as PyTorch's state_dict",
             output, model_tensor_count(m), model_get_config(m)->width, model_num_params(m));
cleanup:
    model_free(m);
    return status;
}

int cmd_export(int argc, char **argv)
{
    const char *ckpt = NULL, *output = NULL;
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) output = argv[++i];
        else if (!strcmp(argv[i], "--force")) force = 1;
        else if (argv[i][0] == '-') FAIL_ALL(GEN_ERR_USAGE, "export: unknown or incomplete option '%s'", argv[i]);
        else if (ckpt) FAIL_ALL(GEN_ERR_USAGE, "export: more than one checkpoint ('%s', '%s')", ckpt, argv[i]);
        else ckpt = argv[i];
    }
    if (!ckpt || !output) FAIL_ALL(GEN_ERR_USAGE, "usage: genesis export CKPT.h5 -o WEIGHTS.h5 [--force]");
    return on_rank0(world_rank() == 0 ? export_weights(ckpt, output, force) : GEN_OK);
}

int cmd_forward(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL}, *output = NULL;
    int count = 0, force = 0, bn_running = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) output = argv[++i];
        else if (!strcmp(argv[i], "--force")) force = 1;
        else if (!strcmp(argv[i], "--bn") && i + 1 < argc) CALL(cli_parse_bn("forward: --bn", argv[++i], &bn_running));
        else if (argv[i][0] == '-') FAIL_ALL(GEN_ERR_USAGE, "forward: unknown or incomplete option '%s'", argv[i]);
        else if (count < 2) paths[count++] = argv[i];
        else FAIL_ALL(GEN_ERR_USAGE, "forward: too many arguments ('%s')", argv[i]);
    }
    if (count != 2 || !output)
        FAIL_ALL(GEN_ERR_USAGE, "usage: genesis forward MODEL.h5 INPUT.h5 -o OUTPUT.h5 [--force] [--bn batch|running]");
    int status = GEN_OK;
    if (world_rank() == 0) {
        status = output_check(output, force, "--force", paths, 2);
        if (status == GEN_OK) status = weights_forward_file(paths[0], paths[1], output, bn_running);
    }
    if (status == GEN_OK && world_rank() == 0) log_info("forward: %s: /output of %s on %s", output, paths[0], paths[1]);
    return on_rank0(status);
}
