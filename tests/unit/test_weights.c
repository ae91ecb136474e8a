/* Weights files and checkpoint configurations (include/genesis/weights.h): a model written and
 * read back into a differently initialised model is bitwise the same (parameters, BN buffers,
 * counters); the width attribute and the inferred width; a model of another width is refused
 * naming the mis-shaped tensors; a checkpoint's config text parses back to the same
 * configuration (config_load_text), and model_load_file builds the checkpoint's width from it. */
#include "check.h"
#include "genesis/checkpoint.h"
#include "genesis/error.h"
#include "genesis/infer.h"
#include "genesis/weights.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static model *make(int width, uint64_t seed)
{
    model_config c = {.width = width, .batch = 1, .D = 8, .H = 8, .W = 8, .seed = seed};
    model *m = NULL;
    EXPECT_OK(model_create(&m, &c));
    return m;
}

static int same_model(model *a, model *b)
{
    if (model_tensor_count(a) != model_tensor_count(b)) return 0;
    for (int i = 0; i < model_tensor_count(a); i++) {
        model_tensor *x = model_tensor_at(a, i), *y = model_tensor_at(b, i);
        if (strcmp(x->name, y->name)) return 0;
        if (x->kind == MODEL_COUNTER ? *x->counter != *y->counter
                                     : memcmp(x->data, y->data, sizeof(float) * x->numel) != 0)
            return 0;
    }
    return 1;
}

int main(void)
{
    char dir[] = "/tmp/test_weights_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[256], ckpt[256];
    snprintf(path, sizeof path, "%s/w.h5", dir);
    snprintf(ckpt, sizeof ckpt, "%s/c.h5", dir);

    model *a = make(3, 1), *b = make(3, 2);
    /* non-trivial buffers and counters */
    for (int i = 0; i < model_tensor_count(a); i++) {
        model_tensor *t = model_tensor_at(a, i);
        if (t->kind == MODEL_COUNTER) *t->counter = 100 + i;
        else if (t->kind == MODEL_BUFFER) for (size_t k = 0; k < t->numel; k++) t->data[k] = 0.5f + 0.01f * (float)k;
    }
    EXPECT(!same_model(a, b), "two seeds give two models");
    EXPECT_OK(weights_write(path, a));
    EXPECT_OK(weights_read(path, b));
    EXPECT(same_model(a, b), "weights file round trip is bitwise");
    int w = 0;
    EXPECT_OK(weights_file_width(path, &w));
    EXPECT(w == 3, "width attribute %d", w);
    int is_ckpt = 1;
    EXPECT_OK(weights_is_checkpoint(path, &is_ckpt));
    EXPECT(!is_ckpt, "a weights file is not a checkpoint");

    /* without the width attribute: inferred from down_tr64.ops.0.conv1.weight */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT(f >= 0 && H5Adelete(f, "width") >= 0, "delete the width attribute");
    H5Fclose(f);
    w = 0;
    EXPECT_OK(weights_file_width(path, &w));
    EXPECT(w == 3, "inferred width %d", w);

    /* another width: refused, naming the mis-shaped tensors */
    model *c = make(4, 1);
    int status = weights_read(path, c);
    EXPECT(status == GEN_ERR_DATA, "width 3 file into a width 4 model: status %d", status);
    EXPECT(strstr(gen_error_message(), "down_tr64.ops.0.conv1.weight [3, 1, 3, 3, 3] (expected [4, 1, 3, 3, 3])"),
           "message names the tensor and both shapes: %s", gen_error_message());
    gen_error_clear();

    /* a checkpoint's config text parses back to the same configuration */
    genesis_config cfg, back;
    EXPECT_OK(config_defaults(&cfg));
    EXPECT_OK(config_set(&cfg, "model.width=3"));
    EXPECT_OK(config_set(&cfg, "prep.normalize=mri_minmax"));
    EXPECT_OK(config_set(&cfg, "train.init_from=/some where/w.h5"));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    config_print(&cfg, mem);
    fclose(mem);
    optimizer o;
    optim_config oc = {.kind = OPTIM_SGD, .lr = 0.1, .momentum = 0.9};
    EXPECT_OK(optim_create(&o, &oc, model_num_params(a)));
    train_state st = {.optimizer_kind = OPTIM_SGD};
    EXPECT_OK(checkpoint_write(ckpt, a, &o, &st, text));
    EXPECT_OK(checkpoint_read_config(ckpt, &back));
    EXPECT(config_hash(&back) == config_hash(&cfg), "config round trip through the checkpoint");
    EXPECT(!strcmp(back.train.init_from, "/some where/w.h5"), "init_from '%s'", back.train.init_from);
    model_config shape = {.batch = 2, .D = 16, .H = 8, .W = 8};
    model *d = NULL;
    EXPECT_OK(model_load_file(&d, ckpt, &shape, NULL));
    EXPECT(d && model_get_config(d)->width == 3 && same_model(a, d), "model_load_file of a checkpoint");
    model_free(d);
    d = NULL;
    EXPECT_OK(model_load_file(&d, path, &shape, NULL));
    EXPECT(d && same_model(a, d), "model_load_file of a weights file");

    model_free(d), model_free(c), model_free(b), model_free(a);
    optim_free(&o);
    free(text);
    unlink(path), unlink(ckpt), rmdir(dir);
    TEST_MAIN_END();
}
