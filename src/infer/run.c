/* Running a trained model (include/genesis/infer.h). */
#include "genesis/infer.h"

#include "genesis/error.h"
#include "genesis/weights.h"

#include <stdint.h>
#include <stdlib.h>

int model_load_file(model **out, const char *path, const model_config *shape, genesis_config *cfg)
{
    int status = GEN_OK;
    model *m = NULL;
    *out = NULL;
    int is_checkpoint = 0;
    CALL(weights_is_checkpoint(path, &is_checkpoint));
    genesis_config local;
    genesis_config *c = cfg ? cfg : &local;
    model_config mc = *shape;
    if (is_checkpoint) {
        CALL(checkpoint_read_config(path, c));
        mc.width = (int)c->model.width;
    } else {
        CALL(config_defaults(c));
        CALL(weights_file_width(path, &mc.width));
        c->model.width = mc.width;
    }
    CALL(model_create(&m, &mc));
    CALL_GOTO(is_checkpoint ? checkpoint_read_weights(path, m) : weights_read(path, m));
    *out = m;
    m = NULL;
cleanup:
    model_free(m);
    return status;
}

/* ---- a forward pass on arrays from a file (io/weights.c reads and writes them) ----------- */

int weights_forward_file(const char *model_path, const char *input_path, const char *output_path,
                         int bn_running)
{
    int status = GEN_OK;
    float *x = NULL;
    model *m = NULL;
    int64_t dims[5] = {0};
    CALL_GOTO(forward_file_read_input(input_path, &x, dims));
    model_config shape = {.batch = (int)dims[0], .D = (int)dims[2], .H = (int)dims[3], .W = (int)dims[4]};
    CALL_GOTO(model_load_file(&m, model_path, &shape, NULL));
    model_set_bn_running(m, bn_running);
    CALL_GOTO(model_forward(m, NULL, x, NULL, (int)dims[0]));
    CALL_GOTO(forward_file_write_output(output_path, model_output(m), dims));
cleanup:
    model_free(m);
    free(x);
    return status;
}
