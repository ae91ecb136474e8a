/* Optimizers and the LR schedule against the PyTorch 1.13 update rules written out in double:
 * SGD with momentum (first step: buffer = gradient; no dampening/Nesterov), with and without
 * weight decay; Adam (bias corrections, eps after the square root); StepLR. Tolerance: 1e-6
 * relative (float32 updates vs the double formulas over 5 steps). SGD is also checked against
 * PyTorch itself in test_golden.c. */
#include "check.h"
#include "genesis/error.h"
#include "genesis/model.h"

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

int main(void)
{
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
