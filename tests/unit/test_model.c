/* The UNet3D model: parameter count at w = 32, state_dict names and shapes, bad configurations,
 * and a central-difference gradient check of a tiny network (w = 2, 16x16x16, batch 3: odd, so the
 * in-place per-sample gradient slices overlap unevenly) on a sample of parameters and input
 * voxels. */
#include "check.h"
#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/rng.h"

#include <string.h>

static void names_and_count(void)
{
    model_config cfg = {.width = 32, .batch = 1, .D = 8, .H = 8, .W = 8, .seed = 1};
    model *m = NULL;
    EXPECT_OK(model_create(&m, &cfg));
    if (!m) return;
    EXPECT(model_num_params(m) == 19073665, "w=32 has %zu parameters, the paper 19073665",
           model_num_params(m));
    struct { const char *name; int ndim; int shape[5]; int kind; } want[] = {
        {"down_tr64.ops.0.conv1.weight", 5, {32, 1, 3, 3, 3}, MODEL_PARAM},
        {"down_tr64.ops.0.conv1.bias", 1, {32}, MODEL_PARAM},
        {"down_tr64.ops.0.bn1.weight", 1, {32}, MODEL_PARAM},
        {"down_tr64.ops.0.bn1.running_mean", 1, {32}, MODEL_BUFFER},
        {"down_tr64.ops.0.bn1.running_var", 1, {32}, MODEL_BUFFER},
        {"down_tr64.ops.0.bn1.num_batches_tracked", 0, {0}, MODEL_COUNTER},
        {"down_tr64.ops.1.conv1.weight", 5, {64, 32, 3, 3, 3}, MODEL_PARAM},
        {"down_tr128.ops.0.conv1.weight", 5, {64, 64, 3, 3, 3}, MODEL_PARAM},
        {"down_tr512.ops.1.conv1.weight", 5, {512, 256, 3, 3, 3}, MODEL_PARAM},
        {"down_tr512.ops.1.bn1.bias", 1, {512}, MODEL_PARAM},
        {"up_tr256.up_conv.weight", 5, {512, 512, 2, 2, 2}, MODEL_PARAM},
        {"up_tr256.up_conv.bias", 1, {512}, MODEL_PARAM},
        {"up_tr256.ops.0.conv1.weight", 5, {256, 768, 3, 3, 3}, MODEL_PARAM},
        {"up_tr256.ops.1.conv1.weight", 5, {256, 256, 3, 3, 3}, MODEL_PARAM},
        {"up_tr128.up_conv.weight", 5, {256, 256, 2, 2, 2}, MODEL_PARAM},
        {"up_tr128.ops.0.conv1.weight", 5, {128, 384, 3, 3, 3}, MODEL_PARAM},
        {"up_tr64.up_conv.weight", 5, {128, 128, 2, 2, 2}, MODEL_PARAM},
        {"up_tr64.ops.0.conv1.weight", 5, {64, 192, 3, 3, 3}, MODEL_PARAM},
        {"up_tr64.ops.1.bn1.running_var", 1, {64}, MODEL_BUFFER},
        {"out_tr.final_conv.weight", 5, {1, 64, 1, 1, 1}, MODEL_PARAM},
        {"out_tr.final_conv.bias", 1, {1}, MODEL_PARAM},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        model_tensor *t = model_find_tensor(m, want[i].name);
        EXPECT(t != NULL, "no tensor %s", want[i].name);
        if (!t) continue;
        int same = t->ndim == want[i].ndim && t->kind == want[i].kind;
        for (int k = 0; same && k < t->ndim; k++) same = t->shape[k] == want[i].shape[k];
        EXPECT(same, "%s: wrong shape/kind", want[i].name);
    }
    /* 14 LUConvs x (2 conv + 2 bn params, 2 buffers, 1 counter) + 3 x 2 up_conv + 2 final */
    EXPECT(model_tensor_count(m) == 14 * 7 + 6 + 2, "%d state_dict entries", model_tensor_count(m));
    size_t sum = 0;
    int names_unique = 1;
    for (int k = 0; k < model_tensor_count(m); k++) {
        model_tensor *t = model_tensor_at(m, k);
        if (t->kind == MODEL_PARAM) {
            EXPECT(t->offset == sum, "%s: offset %zu, expected %zu (contiguous arena)", t->name,
                   t->offset, sum);
            sum += t->numel;
        }
        for (int j = 0; j < k; j++) names_unique &= strcmp(model_tensor_at(m, j)->name, t->name) != 0;
    }
    EXPECT(names_unique, "state_dict names are not unique");
    /* PyTorch default init: conv weights within 1/sqrt(fan_in), BN weight 1, running_var 1 */
    model_tensor *w = model_find_tensor(m, "up_tr64.ops.0.conv1.weight");
    float bound = 1.0f / sqrtf(192 * 27), mx = 0;
    for (size_t i = 0; i < w->numel; i++) mx = fmaxf(mx, fabsf(w->data[i]));
    EXPECT(mx <= bound && mx > 0.99f * bound, "init bound %g vs %g", mx, bound);
    model_tensor *u = model_find_tensor(m, "up_tr64.up_conv.bias");
    bound = 1.0f / sqrtf(128 * 8), mx = 0; /* ConvTranspose3d: fan_in = weight.size(1) * 8 */
    for (size_t i = 0; i < u->numel; i++) mx = fmaxf(mx, fabsf(u->data[i]));
    EXPECT(mx <= bound && mx > 0.8f * bound, "up_conv bias bound %g vs %g", mx, bound);
    EXPECT(model_find_tensor(m, "down_tr64.ops.0.bn1.weight")->data[5] == 1.0f, "bn weight");
    EXPECT(model_find_tensor(m, "down_tr64.ops.0.bn1.running_var")->data[5] == 1.0f, "running_var");
    model_free(m);
}

static void bad_configs(void)
{
    model *m = NULL;
    model_config cfg = {.width = 2, .batch = 1, .D = 12, .H = 8, .W = 8};
    EXPECT(model_create(&m, &cfg) == GEN_ERR_USAGE && m == NULL, "D=12 accepted");
    cfg.D = 8, cfg.width = 0;
    EXPECT(model_create(&m, &cfg) == GEN_ERR_USAGE, "width 0 accepted");
    cfg.width = 2, cfg.batch = 0;
    EXPECT(model_create(&m, &cfg) == GEN_ERR_USAGE, "batch 0 accepted");
    cfg.batch = 2;
    EXPECT_OK(model_create(&m, &cfg));
    float x[2 * 512] = {0}, t[2 * 512] = {0};
    double loss;
    EXPECT(model_forward(m, &loss, x, t, 3) == GEN_ERR_USAGE, "batch 3 > 2 accepted");
    EXPECT(model_backward(m) == GEN_ERR_USAGE, "backward without forward accepted");
    EXPECT(model_forward(m, &loss, x, t, 1) == GEN_ERR_USAGE, "BN with one value per channel");
    model_free(m);
}

/* Central differences (L(p + h) - L(p - h)) / 2h with the float forward pass. Measured on this
 * tiny network (w = 2, 16^3, batch 3; loss ~0.08, gradients 1e-7..3e-2): the loss carries float
 * rounding noise of ~1e-10..1e-9, i.e. ~1e-7 in a difference quotient at h = 1e-3, and BN over
 * few values per channel plus ReLU/maxpool switches inside [p - h, p + h] give truncation errors
 * of a few percent on the first layers (up to ~4% seen). Hence:
 *   - one element at a time (h = 1e-3): |fd - an| <= 5e-6 + 0.1 |an| (5e-6: the float32 noise
 *     floor of the quotient, measured 1e-6..4e-6), at most 4 misses of the ~86 samples allowed;
 *   - per tensor, along its own gradient direction u = g/|g| (step 1e-3 in L2): the derivative
 *     must equal |g| within 10% + 1e-5 (the first BN's parameters have |g| ~4e-5 and are
 *     dominated by ReLU switches: 13% off at batch 3);
 * and the same checks must reject the analytic gradient scaled by 1.25 (so they can fail). The
 * exact check of every gradient is the PyTorch comparison in test_golden.c. */
static double loss_at(model *m, const float *x, const float *t, int n)
{
    double l = 0;
    if (model_forward(m, &l, x, t, n) != GEN_OK) return NAN;
    return l;
}

static void gradient_check(int threads)
{
    enum { N = 3, D = 16, V = N * D * D * D };
    model_config cfg = {.width = 2, .batch = N, .D = D, .H = D, .W = D, .seed = 7, .input_grad = 1,
                        .threads = threads};
    model *m = NULL;
    EXPECT_OK(model_create(&m, &cfg));
    if (!m) return;
    static float x[V], t[V];
    rng_stream rs;
    rng_stream_init(&rs, 3, 0, 0, RNG_PURPOSE_TEST);
    for (int i = 0; i < V; i++) {
        x[i] = rng_uniform_float(&rs);
        t[i] = 0.5f * x[i] + 0.5f * rng_uniform_float(&rs);
    }
    double loss = 0;
    model_zero_grad(m);
    EXPECT_OK(model_forward(m, &loss, x, t, N));
    EXPECT_OK(model_backward(m));
    EXPECT(loss > 0.01 && loss < 1, "loss %g", loss);
    /* snapshot the analytic gradients: forwards below do not touch them */
    size_t np = model_num_params(m);
    float *grad = malloc(np * sizeof *grad), *dx = malloc(sizeof x);
    memcpy(grad, model_grads(m), np * sizeof *grad);
    memcpy(dx, model_input_grad(m), sizeof x);
    float gmax = 0;
    for (size_t i = 0; i < np; i++) gmax = fmaxf(gmax, fabsf(grad[i]));
    /* atol: the float32 noise floor of (L+ - L-) / 2h, measured at 1e-6..4e-6 */
    const double h = getenv("GRADCHECK_H") ? strtod(getenv("GRADCHECK_H"), NULL) : 1e-3;
    const double atol = 5e-6, rtol = 0.1;
    /* A conv bias feeding a batch norm cannot change the loss: its gradient must vanish (the finite
     * difference of such a bias is pure noise, so it is checked here instead). */
    for (int k = 0; k < model_tensor_count(m); k++) {
        model_tensor *tn = model_tensor_at(m, k);
        size_t len = strlen(tn->name);
        if (tn->kind != MODEL_PARAM || len < 10 || strcmp(tn->name + len - 10, "conv1.bias")) continue;
        float bmax = 0;
        for (size_t i = 0; i < tn->numel; i++) bmax = fmaxf(bmax, fabsf(grad[tn->offset + i]));
        EXPECT(bmax <= 1e-5f * gmax, "%s: gradient %g, expected ~0 (it feeds a batch norm)", tn->name, bmax);
    }
    int checked = 0, failed = 0, scaled_caught = 0, detectable = 0;
    float *p = model_params(m);
    for (int s = 0; s < 160; s++) {
        /* every tensor gets at least one sample; then random ones */
        int k = s < model_tensor_count(m) ? s : (int)rng_randint(&rs, 0, model_tensor_count(m) - 1);
        model_tensor *tn = model_tensor_at(m, k);
        if (tn->kind != MODEL_PARAM || strstr(tn->name, "conv1.bias")) continue;
        size_t i = tn->offset + (size_t)rng_randint(&rs, 0, (int64_t)tn->numel - 1);
        float save = p[i];
        p[i] = save + (float)h;
        double lp = loss_at(m, x, t, N);
        p[i] = save - (float)h;
        double lm = loss_at(m, x, t, N);
        p[i] = save;
        double fd = (lp - lm) / (2 * h), an = grad[i];
        double tol = atol + rtol * fabs(an);
        checked++;
        if (getenv("GRADCHECK_VERBOSE"))
            fprintf(stderr, "  %-40s fd %+.6e an %+.6e diff %.2e\n", tn->name, fd, an, fabs(fd - an));
        if (fabs(fd - an) > tol) {
            failed++;
            fprintf(stderr, "  %s[%zu]: fd %.6g analytic %.6g\n", tn->name, i - tn->offset, fd, an);
        }
        if (fabs(an) * 0.25 > 2 * tol) { /* a 25% error is well above the tolerance here */
            detectable++;
            scaled_caught += fabs(fd - 1.25 * an) > atol + rtol * 1.25 * fabs(an);
        }
    }
    for (int s = 0; s < 12; s++) {
        int i = (int)rng_randint(&rs, 0, V - 1);
        float save = x[i];
        x[i] = save + (float)h;
        double lp = loss_at(m, x, t, N);
        x[i] = save - (float)h;
        double lm = loss_at(m, x, t, N);
        x[i] = save;
        double fd = (lp - lm) / (2 * h), an = dx[i];
        checked++;
        if (fabs(fd - an) > atol + rtol * fabs(an)) {
            failed++;
            fprintf(stderr, "  input[%d]: fd %.6g analytic %.6g\n", i, fd, an);
        }
    }
    /* per tensor: the derivative along the tensor's own gradient direction u = g/|g| must be |g|
     * (a wrong gradient with the same norm would fail too: the projection drops). */
    int dir_checked = 0, dir_failed = 0, dir_scaled_caught = 0, dir_detectable = 0;
    const double hd = getenv("GRADCHECK_HD") ? strtod(getenv("GRADCHECK_HD"), NULL) : 1e-3;
    float *save = malloc(np * sizeof *save);
    memcpy(save, p, np * sizeof *save);
    for (int k = 0; k < model_tensor_count(m); k++) {
        model_tensor *tn = model_tensor_at(m, k);
        if (tn->kind != MODEL_PARAM) continue;
        const float *gt = grad + tn->offset;
        double norm = 0;
        for (size_t i = 0; i < tn->numel; i++) norm += (double)gt[i] * gt[i];
        norm = sqrt(norm);
        if (norm < 1e-3 * gmax) continue; /* conv biases before BN: gradient 0 by construction */
        double lpm[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            for (size_t i = 0; i < tn->numel; i++)
                p[tn->offset + i] = save[tn->offset + i] + (float)((sgn ? -hd : hd) * gt[i] / norm);
            lpm[sgn] = loss_at(m, x, t, N);
        }
        memcpy(p + tn->offset, save + tn->offset, tn->numel * sizeof *p);
        double fd = (lpm[0] - lpm[1]) / (2 * hd);
        dir_checked++;
        if (getenv("GRADCHECK_VERBOSE"))
            fprintf(stderr, "  dir %-36s fd %.6e |g| %.6e rel %.2e\n", tn->name, fd, norm,
                    fabs(fd - norm) / norm);
        const double dtol = 0.1 * norm + 1e-5;
        if (0.25 * norm > 2 * dtol) {
            dir_detectable++;
            dir_scaled_caught += fabs(fd - 1.25 * norm) > 0.1 * 1.25 * norm + 1e-5;
        }
        if (fabs(fd - norm) > dtol) {
            dir_failed++;
            fprintf(stderr, "  %s: derivative along its gradient %.6g, |grad| %.6g\n", tn->name, fd,
                    norm);
        }
    }
    free(save);
    EXPECT(dir_checked >= 30 && dir_failed == 0,
           "%d of %d directional derivative checks failed (10%% + 1e-5 tolerance)", dir_failed,
           dir_checked);
    EXPECT(dir_detectable >= 15 && dir_scaled_caught == dir_detectable,
           "a 25%% gradient error passed %d of %d directional checks",
           dir_detectable - dir_scaled_caught, dir_detectable);
    printf("directional check: %d tensors, %d outside 10%% + 1e-5; a 25%% error caught in %d of %d\n",
           dir_checked, dir_failed, dir_scaled_caught, dir_detectable);
    /* a ReLU/maxpool switch inside [p - h, p + h] can spoil a sample now and then (see the
     * tolerances above): more than 4 misses is a bug */
    EXPECT(failed <= 4, "%d of %d finite-difference checks failed", failed, checked);
    EXPECT(detectable >= 10 && scaled_caught >= detectable - 1,
           "a 25%% gradient error would pass %d of %d samples", detectable - scaled_caught, detectable);
    printf("gradient check: %d samples, %d outside tolerance (atol %.3g, rtol %.3g); a 25%% error "
           "caught in %d of %d large-gradient samples\n", checked, failed, atol, rtol, scaled_caught,
           detectable);
    free(grad);
    free(dx);
    model_free(m);
}

struct hook_count {
    int calls, fail_at;
};
static int count_hook(double *sums, int count, void *ctx)
{
    struct hook_count *h = ctx;
    (void)sums;
    (void)count;
    return ++h->calls == h->fail_at ? GEN_ERR_MPI : GEN_OK;
}

/* Non-cubic input, a batch smaller than the model's, identical results whatever the capacity;
 * the BN hook is called once per BN in forward and in backward, and its failure propagates. */
static void shapes_and_hook(void)
{
    enum { D = 8, H = 16, W = 24, V = 2 * D * H * W };
    model_config small = {.width = 2, .batch = 2, .D = D, .H = H, .W = W, .seed = 5};
    model_config big = small;
    big.batch = 5;
    model *a = NULL, *b = NULL;
    EXPECT_OK(model_create(&a, &small));
    EXPECT_OK(model_create(&b, &big));
    if (!a || !b) return;
    static float x[V], t[V];
    for (int i = 0; i < V; i++) x[i] = (float)((i * 37) % 101) / 101.0f, t[i] = (float)((i * 13) % 7) / 7.0f;
    double la = 0, lb = 0;
    struct hook_count hc = {0, 0};
    nn_reduce_hook hook = {count_hook, &hc};
    model_set_bn_hook(b, &hook);
    EXPECT_OK(model_forward(a, &la, x, t, 2));
    EXPECT_OK(model_backward(a));
    EXPECT_OK(model_forward(b, &lb, x, t, 2));
    EXPECT_OK(model_backward(b));
    EXPECT(hc.calls == 28, "BN hook called %d times in a step, expected 14 + 14", hc.calls);
    EXPECT(la == lb, "loss %.9g with capacity 2, %.9g with capacity 5", la, lb);
    EXPECT(memcmp(model_grads(a), model_grads(b), model_num_params(a) * sizeof(float)) == 0,
           "gradients depend on the model's batch capacity");
    EXPECT(memcmp(model_output(a), model_output(b), V * sizeof(float)) == 0, "outputs differ");
    hc.calls = 0, hc.fail_at = 20; /* a failing all-reduce inside backward */
    EXPECT_OK(model_forward(b, &lb, x, t, 2));
    EXPECT(model_backward(b) == GEN_ERR_MPI, "hook failure not propagated from backward");
    hc.calls = 0, hc.fail_at = 3;
    EXPECT(model_forward(b, &lb, x, t, 2) == GEN_ERR_MPI, "hook failure not propagated from forward");
    model_free(a);
    model_free(b);
}

int main(void)
{
    shapes_and_hook();
    names_and_count();
    bad_configs();
    gradient_check(1);
    gradient_check(3); /* the layers split across threads */
    TEST_MAIN_END();
}
