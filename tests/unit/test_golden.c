/* genesis's UNet3D against PyTorch reference tensors (tests/golden/unet3d_w4.h5, made by
 * tests/golden/make_golden.py with Debian's torch 1.13): width 4, input 16x16x8, batch 2.
 * Loads every state_dict entry by name, runs forward, backward and 3 SGD steps (lr 0.1, momentum
 * 0.9), and compares tensor by tensor, naming the tensor that differs.
 *
 * Tolerances, per tensor: max |genesis - torch| <= rtol * max |torch| (+ a tiny atol for tensors
 * that are ~0). Both sides compute in float32 with different summation orders (PyTorch: oneDNN /
 * its own conv kernels; genesis: BLAS sgemm in another order, BN sums in double), so differences
 * are rounding noise, amplified by batch norm on few values per channel at the deepest level:
 *   output, loss: rtol 1e-5; running stats: 1e-5;
 *   gradients: rtol 1e-4 (measured 3.5e-6) of the tensor's largest gradient, + 1e-7: the conv
 *     biases in front of a batch norm have an exact gradient of 0, and both sides give rounding
 *     noise (~1e-9);
 *   parameters after 3 SGD steps (lr 0.1): rtol 2e-5 (measured 1.2e-6) of the tensor's largest
 *     value.
 * The file is found through GENESIS_SOURCE_DIR (set by ctest) or GENESIS_GOLDEN_FILE. */
#include "check.h"
#include "genesis/error.h"
#include "genesis/model.h"

#include <hdf5.h>
#include <string.h>

static double worst_rel_grad, worst_rel_param;

/* Reads dataset `path` of `numel` elements as `mem_type` into data. */
static int read_h5_as(hid_t f, const char *path, hid_t mem_type, void *data, size_t numel)
{
    if (H5Lexists(f, path, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    herr_t st = n == (hssize_t)numel ? H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    H5Dclose(d);
    return st < 0 ? -1 : 0;
}

/* Reads dataset `path` of `numel` elements as float (or int64 when i64 != NULL). */
static int read_h5(hid_t f, const char *path, float *data, int64_t *i64, size_t numel)
{
    return i64 ? read_h5_as(f, path, H5T_NATIVE_INT64, i64, numel)
               : read_h5_as(f, path, H5T_NATIVE_FLOAT, data, numel);
}

/* Reads reference tensor `path` (float32 in the file) exactly, as double. */
static int read_h5_doubles(hid_t f, const char *path, double *data, size_t numel)
{
    return read_h5_as(f, path, H5T_NATIVE_DOUBLE, data, numel);
}

/* max |genesis - torch| <= rtol max |torch| + atol; worst (if given) tracks the largest error
 * relative to max |torch| over tensors whose max |torch| > 1e-6. */
static void compare(const char *what, const char *name, const float *got, const double *want,
                    size_t n, double rtol, double atol, double *worst)
{
    char label[256];
    snprintf(label, sizeof label, "%s %s", what, name);
    tensor_diff r = expect_tensor_close(label, got, want, n, rtol, atol);
    if (worst && r.scale > 1e-6) *worst = fmax(*worst, r.max_abs / r.scale);
}

static void run(const char *path)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    EXPECT(f >= 0, "cannot open %s (make it with tests/golden/make_golden.py)", path);
    if (f < 0) return;
    enum { N = 2, D = 16, H = 16, W = 8, V = N * D * H * W };
    model_config cfg = {.width = 4, .batch = N, .D = D, .H = H, .W = W, .seed = 1};
    model *m = NULL;
    EXPECT_OK(model_create(&m, &cfg));
    if (!m) return;
    static float x[V], target[V];
    static double want[V];
    EXPECT(read_h5(f, "/input", x, NULL, V) == 0 && read_h5(f, "/target", target, NULL, V) == 0,
           "input/target missing");
    /* every state_dict entry by name; and every /init entry must be one of ours */
    char key[160];
    for (int k = 0; k < model_tensor_count(m); k++) {
        model_tensor *t = model_tensor_at(m, k);
        snprintf(key, sizeof key, "/init/%s", t->name);
        EXPECT(read_h5(f, key, t->data, t->counter, t->numel) == 0,
               "%s missing from the reference or of another size", key);
    }
    hid_t g = H5Gopen2(f, "/init", H5P_DEFAULT);
    H5G_info_t info;
    H5Gget_info(g, &info);
    H5Gclose(g);
    EXPECT((int)info.nlinks == model_tensor_count(m), "reference has %d state_dict entries, genesis %d",
           (int)info.nlinks, model_tensor_count(m));
    size_t np = model_num_params(m);
    double *buf = malloc(np * sizeof *buf);

    double loss = 0, want_loss = 0;
    EXPECT_OK(model_forward(m, &loss, x, target, N));
    read_h5_doubles(f, "/output", want, V);
    compare("output", "", model_output(m), want, V, 1e-5, 0, NULL);
    hid_t d = H5Dopen2(f, "/loss", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &want_loss);
    H5Dclose(d);
    EXPECT_NEAR(loss, want_loss, 1e-5 * want_loss, "loss");
    model_zero_grad(m);
    EXPECT_OK(model_backward(m));
    for (int k = 0; k < model_tensor_count(m); k++) {
        model_tensor *t = model_tensor_at(m, k);
        if (t->kind == MODEL_PARAM) {
            snprintf(key, sizeof key, "/grad/%s", t->name);
            EXPECT(read_h5_doubles(f, key, buf, t->numel) == 0, "%s missing", key);
            compare("gradient", t->name, t->grad, buf, t->numel, 1e-4, 1e-7, &worst_rel_grad);
        } else if (t->kind == MODEL_BUFFER) {
            snprintf(key, sizeof key, "/bn_after_forward/%s", t->name);
            EXPECT(read_h5_doubles(f, key, buf, t->numel) == 0, "%s missing", key);
            compare("running stat", t->name, t->data, buf, t->numel, 1e-5, 1e-7, NULL);
        } else {
            int64_t c = -1;
            snprintf(key, sizeof key, "/bn_after_forward/%s", t->name);
            EXPECT(read_h5(f, key, NULL, &c, 1) == 0 && c == *t->counter,
                   "%s: genesis %lld, torch %lld", t->name, (long long)*t->counter, (long long)c);
        }
    }
    /* 3 SGD steps: the first with the gradient above */
    optimizer opt;
    optim_config oc = {.kind = OPTIM_SGD, .lr = 0.1, .momentum = 0.9};
    EXPECT_OK(optim_create(&opt, &oc, np));
    double losses[3] = {loss, 0, 0}, want_losses[3] = {0};
    for (int step = 0; step < 3; step++) {
        if (step > 0) {
            model_zero_grad(m);
            EXPECT_OK(model_forward(m, &losses[step], x, target, N));
            EXPECT_OK(model_backward(m));
        }
        EXPECT_OK(optim_step(&opt, model_params(m), model_grads(m), 0.1));
    }
    d = H5Dopen2(f, "/sgd3_losses", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, want_losses);
    H5Dclose(d);
    for (int s = 0; s < 3; s++) EXPECT_NEAR(losses[s], want_losses[s], 1e-5 * want_losses[s], "loss of step");
    for (int k = 0; k < model_tensor_count(m); k++) {
        model_tensor *t = model_tensor_at(m, k);
        if (t->kind == MODEL_COUNTER) continue;
        snprintf(key, sizeof key, "/sgd3/%s", t->name);
        EXPECT(read_h5_doubles(f, key, buf, t->numel) == 0, "%s missing", key);
        compare("after 3 SGD steps", t->name, t->data, buf, t->numel, 2e-5, 1e-7,
                t->kind == MODEL_PARAM ? &worst_rel_param : NULL);
    }
    printf("golden: loss %.9g (torch %.9g); worst gradient error %.3g, worst parameter error %.3g "
           "after 3 steps (relative to each tensor's max)\n", loss, want_loss, worst_rel_grad,
           worst_rel_param);
    optim_free(&opt);
    free(buf);
    model_free(m);
    H5Fclose(f);
}

int main(void)
{
    char path[4096];
    const char *file = getenv("GENESIS_GOLDEN_FILE"), *src = getenv("GENESIS_SOURCE_DIR");
    if (file)
        snprintf(path, sizeof path, "%s", file);
    else
        snprintf(path, sizeof path, "%s/tests/golden/unet3d_w4.h5", src ? src : ".");
    run(path);
    TEST_MAIN_END();
}
