/* Optimizers and the LR schedule against the PyTorch 1.13 update rules written out in double:
 * SGD with momentum (first step: buffer = gradient; no dampening/Nesterov), with and without
 * weight decay; Adam (bias corrections, eps after the square root); StepLR. Tolerance: 1e-6
 * relative (float32 updates vs the double formulas over 5 steps). SGD is also checked against
 * PyTorch itself in test_golden.c.
 * LARS against a NumPy reference of three steps (tests/golden/make_lars_golden.py, which writes
 * tests/golden/lars_reference.h); its layer table from the model (BN and biases excluded); the
 * learning-rate scaling and the warm-up. */
#include "check.h"
#include "genesis/error.h"
#include "genesis/model.h"

#include "../golden/lars_reference.h"

#include <string.h>

enum { N = 257, STEPS = 5 };

static float grad_at(int step, int i) { return (float)sin(0.7 * i + 1.3 * step) * (1 + i % 5); }

static void test_sgd(double wd)
{
    float p[N], g[N];
    double rp[N], rb[N];
    for (int i = 0; i < N; i++) p[i] = (float)cos(i), rp[i] = p[i];
    optimizer o;
    optim_config c = {.kind = OPTIM_SGD, .lr = 0.3, .momentum = 0.9, .weight_decay = wd};
    EXPECT_OK(optim_create(&o, &c, N));
    double err = 0;
    for (int s = 0; s < STEPS; s++) {
        double lr = 0.3 / (1 + s);
        for (int i = 0; i < N; i++) {
            g[i] = grad_at(s, i);
            double d = g[i] + wd * rp[i];
            rb[i] = s == 0 ? d : 0.9 * rb[i] + d;
            rp[i] -= lr * rb[i];
        }
        EXPECT_OK(optim_step(&o, p, g, lr));
    }
    for (int i = 0; i < N; i++) err = fmax(err, fabs(p[i] - rp[i]) / fmax(1, fabs(rp[i])));
    EXPECT(err < 1e-6, "SGD (wd %g) differs from the PyTorch rule by %g", wd, err);
    EXPECT(o.step == STEPS, "step count %ld", o.step);
    float *buf = optim_state(&o, 0);
    EXPECT(buf && fabs(buf[3] - rb[3]) < 1e-5 * fmax(1, fabs(rb[3])), "momentum buffer");
    optim_free(&o);
}

static void test_adam(double wd)
{
    float p[N], g[N];
    double rp[N], m[N] = {0}, v[N] = {0};
    for (int i = 0; i < N; i++) p[i] = (float)cos(i), rp[i] = p[i];
    optimizer o;
    optim_config c = {.kind = OPTIM_ADAM, .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                      .weight_decay = wd};
    EXPECT_OK(optim_create(&o, &c, N));
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < N; i++) {
            g[i] = grad_at(s, i);
            double d = g[i] + wd * rp[i];
            m[i] = 0.9 * m[i] + 0.1 * d;
            v[i] = 0.999 * v[i] + 0.001 * d * d;
            double bc1 = 1 - pow(0.9, s + 1), bc2 = 1 - pow(0.999, s + 1);
            rp[i] -= 1e-2 / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + 1e-8);
        }
        EXPECT_OK(optim_step(&o, p, g, 1e-2));
    }
    double err = 0;
    for (int i = 0; i < N; i++) err = fmax(err, fabs(p[i] - rp[i]) / fmax(1, fabs(rp[i])));
    EXPECT(err < 1e-6, "Adam (wd %g) differs from the PyTorch rule by %g", wd, err);
    EXPECT(optim_state(&o, 1) != NULL && optim_state(&o, 2) == NULL, "Adam state arrays");
    optim_free(&o);
}

/* Three LARS steps against NumPy's: within 1e-6 of each layer's update size (the same float32
 * operations in the same order, so in practice identical; FMA contraction may differ by an ulp). */
static void test_lars_reference(void)
{
    float p[LARS_N];
    memcpy(p, lars_params0, sizeof p);
    optimizer o;
    optim_config c = {.kind = OPTIM_LARS, .lr = lars_lr[0], .momentum = lars_momentum,
                      .weight_decay = lars_weight_decay, .trust_coefficient = lars_eta};
    EXPECT_OK(optim_create(&o, &c, LARS_N));
    optim_layer layers[LARS_LAYERS];
    for (int l = 0; l < LARS_LAYERS; l++)
        layers[l] = (optim_layer){lars_layer_offset[l], lars_layer_numel[l], lars_layer_adapt[l]};
    EXPECT(optim_step(&o, p, lars_grads, 0.5) == GEN_ERR_USAGE, "LARS stepped without its layer table");
    EXPECT_OK(optim_set_layers(&o, layers, LARS_LAYERS));
    int identical = 1;
    for (int s = 0; s < LARS_STEPS; s++) {
        EXPECT_OK(optim_step(&o, p, lars_grads + (size_t)s * LARS_N, lars_lr[s]));
        const float *want = lars_params_after + (size_t)s * LARS_N;
        for (int l = 0; l < LARS_LAYERS; l++) {
            size_t a = lars_layer_offset[l], n = lars_layer_numel[l];
            double moved = 0, err = 0;
            for (size_t i = a; i < a + n; i++) {
                moved = fmax(moved, fabs((double)want[i] - lars_params0[i]));
                err = fmax(err, fabs((double)p[i] - want[i]));
                identical &= p[i] == want[i];
            }
            EXPECT(err <= 1e-6 * moved + 1e-9, "LARS step %d layer %d: %g from NumPy's (moved %g)", s + 1, l,
                   err, moved);
        }
    }
    float *buf = optim_state(&o, 0);
    double err = 0;
    for (int i = 0; i < LARS_N; i++) err = fmax(err, fabs((double)buf[i] - lars_momentum_after[i]));
    EXPECT(err < 1e-7, "LARS momentum buffer %g from NumPy's", err);
    printf("LARS vs NumPy over %d steps: %s\n", LARS_STEPS,
           identical ? "bitwise identical" : "within tolerance");
    optim_layer gap[2] = {{0, 50, 1}, {54, LARS_N - 54, 0}};
    EXPECT(optim_set_layers(&o, gap, 2) == GEN_ERR_USAGE, "layers with a gap accepted");
    optim_layer short_of[1] = {{0, LARS_N - 1, 1}};
    EXPECT(optim_set_layers(&o, short_of, 1) == GEN_ERR_USAGE, "layers short of n accepted");
    optim_free(&o);
    optim_config eta0 = c;
    eta0.trust_coefficient = 0;
    EXPECT(optim_create(&o, &eta0, 4) == GEN_ERR_USAGE, "LARS trust coefficient 0 accepted");
}

/* The model's LARS layers: one per parameter tensor in arena order; exactly the batch-norm
 * parameters and the biases (the 1-D parameters of the U-Net) excluded. */
static void test_lars_model_layers(void)
{
    model *m = NULL;
    model_config mc = {.width = 2, .batch = 1, .D = 8, .H = 8, .W = 8, .seed = 1};
    EXPECT_OK(model_create(&m, &mc));
    if (!m) return;
    optimizer o;
    optim_config c = {.kind = OPTIM_LARS, .lr = 1, .momentum = 0.9, .trust_coefficient = 0.001};
    EXPECT_OK(optim_create(&o, &c, model_num_params(m)));
    EXPECT_OK(optim_set_model_layers(&o, m));
    int l = 0, excluded = 0, bn = 0;
    for (int i = 0; i < model_tensor_count(m); i++) {
        const model_tensor *t = model_tensor_at(m, i);
        if (t->kind != MODEL_PARAM) continue;
        EXPECT(l < o.nlayers && o.layers[l].offset == t->offset && o.layers[l].numel == t->numel,
               "layer %d is not tensor %s", l, t->name);
        EXPECT(l < o.nlayers && o.layers[l].adapt == (t->ndim >= 2), "%s: adapt %d, ndim %d", t->name,
               l < o.nlayers ? o.layers[l].adapt : -1, t->ndim);
        excluded += l < o.nlayers && !o.layers[l].adapt;
        bn += strstr(t->name, ".bn1.") != NULL;
        l++;
    }
    EXPECT(l == o.nlayers && bn > 0 && excluded > bn, "%d layers of %d, %d excluded, %d BN", o.nlayers, l,
           excluded, bn);
    optim_free(&o);
    model_free(m);
}

/* lr_scaling, warm-up and StepLR; with neither scaling nor warm-up exactly StepLR. */
static void test_schedule(void)
{
    lr_schedule s;
    EXPECT_OK(lr_schedule_init(&s, 0.1, LR_SCALING_NONE, 48, 6, 0, 40, 0.5));
    for (long e = 0; e < 130; e += 13)
        EXPECT(lr_schedule_at(&s, e, e * 7) == steplr_lr(0.1, 40, 0.5, e), "no scaling, no warm-up: epoch %ld",
               e);
    EXPECT_OK(lr_schedule_init(&s, 0.1, LR_SCALING_LINEAR, 48, 6, 0, 40, 0.5));
    EXPECT_NEAR(s.base_lr, 0.8, 1e-15, "linear 48/6");
    EXPECT_OK(lr_schedule_init(&s, 0.1, LR_SCALING_SQRT, 48, 6, 0, 40, 0.5));
    EXPECT_NEAR(s.base_lr, 0.1 * sqrt(8.0), 1e-15, "sqrt 48/6");
    EXPECT_OK(lr_schedule_init(&s, 0.1, LR_SCALING_LINEAR, 3, 6, 0, 40, 0.5));
    EXPECT_NEAR(s.base_lr, 0.05, 1e-15, "linear 3/6 scales down");
    EXPECT_OK(lr_schedule_init(&s, 1.0, LR_SCALING_LINEAR, 192, 6, 10, 2, 0.5));
    EXPECT_NEAR(lr_schedule_at(&s, 0, 0), 3.2, 1e-12, "warm-up step 1: base / warmup_steps");
    EXPECT_NEAR(lr_schedule_at(&s, 0, 4), 16.0, 1e-12, "warm-up step 5");
    EXPECT_NEAR(lr_schedule_at(&s, 0, 9), 32.0, 1e-12, "warm-up step 10: base");
    EXPECT_NEAR(lr_schedule_at(&s, 0, 10), 32.0, 0, "after the warm-up: base");
    EXPECT_NEAR(lr_schedule_at(&s, 2, 10), 16.0, 0, "StepLR after the warm-up");
    EXPECT_NEAR(lr_schedule_at(&s, 2, 4), 8.0, 1e-12, "StepLR during the warm-up multiplies");
    char text[512];
    lr_schedule_describe(&s, text, sizeof text);
    EXPECT(strstr(text, "learning rate 32 = 1 x (192 / 6) (lr_scaling = linear)") &&
               strstr(text, "warm-up over 10 steps: 3.2 at step 1, 32 at step 10") &&
               strstr(text, "x 0.5 every 2"),
           "description: %s", text);
    EXPECT(lr_schedule_init(&s, 1.0, 7, 6, 6, 0, 40, 0.5) == GEN_ERR_USAGE, "unknown scaling accepted");
    EXPECT(lr_schedule_init(&s, 1.0, LR_SCALING_LINEAR, 6, 0, 0, 40, 0.5) == GEN_ERR_USAGE,
           "reference 0 accepted");
    EXPECT(!strcmp(optim_kind_name(OPTIM_LARS), "lars") && !strcmp(optim_kind_name(OPTIM_SGD), "sgd"),
           "kind names");
}

int main(void)
{
    test_lars_reference();
    test_lars_model_layers();
    test_schedule();
    test_sgd(0);
    test_sgd(1e-2);
    test_adam(0);
    test_adam(1e-2);
    EXPECT_NEAR(steplr_lr(1.0, 40, 0.5, 0), 1.0, 0, "StepLR epoch 0");
    EXPECT_NEAR(steplr_lr(1.0, 40, 0.5, 39), 1.0, 0, "StepLR epoch 39");
    EXPECT_NEAR(steplr_lr(1.0, 40, 0.5, 40), 0.5, 0, "StepLR epoch 40");
    EXPECT_NEAR(steplr_lr(1.0, 40, 0.5, 125), 0.125, 0, "StepLR epoch 125");
    optimizer o;
    optim_config bad = {.kind = 9, .lr = 1};
    EXPECT(optim_create(&o, &bad, 4) == GEN_ERR_USAGE, "unknown optimizer accepted");
    optim_config neg = {.kind = OPTIM_SGD, .lr = -1};
    EXPECT(optim_create(&o, &neg, 4) == GEN_ERR_USAGE, "negative lr accepted");
    optim_config adam0 = {.kind = OPTIM_ADAM, .lr = 1, .beta1 = 0.9, .beta2 = 0.999, .eps = 0};
    EXPECT(optim_create(&o, &adam0, 4) == GEN_ERR_USAGE, "Adam eps 0 accepted");
    TEST_MAIN_END();
}
