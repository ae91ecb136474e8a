/* Weights files and checkpoint configurations (include/genesis/weights.h): a model written and
 * read back into a differently initialised model is bitwise the same (parameters, BN buffers,
 * counters); the width attribute and the inferred width; a model of another width is refused
 * naming the mis-shaped tensors; a checkpoint's config text parses back to the same
 * configuration (config_load_text), and model_load_file builds the checkpoint's width from it.
 * A tensor or an /input that HDF5 cannot read is refused with one message naming the file and
 * giving HDF5's reason (weights, checkpoint, genesis forward; the forward's input array is freed,
 * which the sanitizer build's LeakSanitizer checks); a failed tensor write names the file and
 * HDF5's reason too (h5file.h). */
#include "check.h"
#include "genesis/checkpoint.h"
#include "genesis/error.h"
#include "io/h5file.h"
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

/* A text dataset `name` of shape dims in loc: its name and shape can be right, but HDF5 cannot
 * convert it to numbers. */
static void text_dataset(hid_t loc, const char *name, int ndim, const hsize_t *dims)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 4);
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT(d >= 0, "text dataset %s", name);
    H5Dclose(d), H5Sclose(space), H5Tclose(type);
}

/* Replaces dataset `name` of group `where` in file path by a text dataset of the same shape. */
static void make_unreadable(const char *path, const char *where, const char *name, int ndim, const hsize_t *dims)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, where, H5P_DEFAULT);
    EXPECT(f >= 0 && g >= 0 && H5Ldelete(g, name, H5P_DEFAULT) >= 0, "delete %s/%s", where, name);
    text_dataset(g, name, ndim, dims);
    H5Gclose(g), H5Fclose(f);
}

/* The current error names the file and carries HDF5's reason for a failed type conversion. */
static int names_file_and_reason(const char *path)
{
    const char *m = gen_error_message();
    return strstr(m, path) != NULL && strstr(m, "conversion") != NULL;
}

/* A tensor HDF5 cannot read (weights file, checkpoint), an /input it cannot read (genesis
 * forward), a tensor it cannot write. */
static void unreadable_files(const char *dir, model *m, const char *weights, const char *ckpt)
{
    const char *conv1 = "down_tr64.ops.0.conv1.weight";
    hsize_t dims[5] = {3, 1, 3, 3, 3};
    char copy[256], input[256], output[256];
    snprintf(copy, sizeof copy, "%s/unreadable.h5", dir);
    EXPECT_OK(weights_write(copy, m));
    make_unreadable(copy, "/", conv1, 5, dims);
    int status = weights_read(copy, m);
    EXPECT(status == GEN_ERR_DATA && names_file_and_reason(copy), "unreadable weights tensor: %d %s", status,
           gen_error_message());
    gen_error_clear();

    make_unreadable(ckpt, "params", conv1, 5, dims);
    status = checkpoint_read_weights(ckpt, m);
    EXPECT(status == GEN_ERR_DATA && names_file_and_reason(ckpt), "unreadable checkpoint tensor: %d %s", status,
           gen_error_message());
    gen_error_clear();

    /* genesis forward: /input [1, 1, 8, 8, 8] of text */
    snprintf(input, sizeof input, "%s/input.h5", dir);
    snprintf(output, sizeof output, "%s/output.h5", dir);
    hid_t f = H5Fcreate(input, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t in_dims[5] = {1, 1, 8, 8, 8};
    text_dataset(f, "input", 5, in_dims);
    H5Fclose(f);
    status = weights_forward_file(weights, input, output, 0);
    EXPECT(status == GEN_ERR_DATA && strstr(gen_error_message(), "cannot read /input"),
           "unreadable /input: %d %s", status, gen_error_message());
    gen_error_clear();

    /* a tensor that cannot be written (its name is taken) */
    f = H5Fcreate(output, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    model_tensor *t = model_find_tensor(m, conv1);
    EXPECT_OK(h5file_write_tensor(f, output, t, t->data, H5FILE_PORTABLE));
    status = h5file_write_tensor(f, output, t, t->data, H5FILE_PORTABLE);
    EXPECT(status == GEN_ERR_IO && strstr(gen_error_message(), output) && strstr(gen_error_message(), "exists"),
           "tensor write failure: %d %s", status, gen_error_message());
    gen_error_clear();
    H5Fclose(f);
    unlink(copy), unlink(input), unlink(output);
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
    unreadable_files(dir, b, path, ckpt);

    model_free(d), model_free(c), model_free(b), model_free(a);
    optim_free(&o);
    free(text);
    unlink(path), unlink(ckpt), rmdir(dir);
    TEST_MAIN_END();
}
