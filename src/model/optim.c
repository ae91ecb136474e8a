/* Optimizers with PyTorch 1.13 semantics (torch.optim.SGD, torch.optim.Adam, single-tensor
 * path), in float32 like PyTorch's CPU kernels, and the StepLR schedule. */
#include "genesis/error.h"
#include "genesis/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optim_create(optimizer *o, const optim_config *cfg, size_t n)
{
    CHECK(o && cfg, GEN_ERR_USAGE, "optim_create: NULL argument");
    memset(o, 0, sizeof *o);
    CHECK(cfg->kind == OPTIM_SGD || cfg->kind == OPTIM_ADAM, GEN_ERR_USAGE,
          "optim_create: unknown optimizer kind %d", cfg->kind);
    CHECK(cfg->lr >= 0 && cfg->weight_decay >= 0, GEN_ERR_USAGE,
          "optimizer: lr %g and weight_decay %g must be >= 0", cfg->lr, cfg->weight_decay);
    if (cfg->kind == OPTIM_SGD)
        CHECK(cfg->momentum >= 0, GEN_ERR_USAGE, "SGD: momentum %g must be >= 0", cfg->momentum);
    else
        CHECK(cfg->beta1 >= 0 && cfg->beta1 < 1 && cfg->beta2 >= 0 && cfg->beta2 < 1 &&
                  cfg->eps > 0,
              GEN_ERR_USAGE, "Adam: betas (%g, %g) must be in [0, 1) and eps %g > 0", cfg->beta1,
              cfg->beta2, cfg->eps);
    o->cfg = *cfg;
    o->n = n;
    o->nstate = cfg->kind == OPTIM_ADAM ? 2 : (cfg->momentum != 0 ? 1 : 0);
    if (o->nstate) {
        size_t bytes = (size_t)o->nstate * (n ? n : 1) * sizeof(float);
        o->state = calloc(1, bytes);
        CHECK_ALLOC(o->state, bytes);
    }
    return GEN_OK;
}

void optim_free(optimizer *o)
{
    if (!o) return;
    free(o->state);
    o->state = NULL;
}

float *optim_state(optimizer *o, int k)
{
    return o && o->state && k >= 0 && k < o->nstate ? o->state + (size_t)k * o->n : NULL;
}

/* torch.optim.SGD: d = g + wd p; buf = d at the first step, else buf = momentum buf + d
 * (dampening 0); p -= lr buf. */
static void sgd_step(optimizer *o, float *p, const float *g, float lr)
{
    const float mom = (float)o->cfg.momentum, wd = (float)o->cfg.weight_decay;
    float *buf = o->state;
#pragma omp parallel for schedule(static) num_threads(nn_threads_for(o->n))
    for (size_t i = 0; i < o->n; i++) {
        float d = g[i];
        if (wd != 0.0f) d += wd * p[i];
        if (buf) {
            buf[i] = o->step == 0 ? d : mom * buf[i] + d;
            d = buf[i];
        }
        p[i] -= lr * d;
    }
}

/* torch.optim.Adam (amsgrad off): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
static void adam_step(optimizer *o, float *p, const float *g, double lr)
{
    const float b1 = (float)o->cfg.beta1, b2 = (float)o->cfg.beta2, eps = (float)o->cfg.eps;
    const float wd = (float)o->cfg.weight_decay;
    const double t = (double)(o->step + 1);
    const double bc1 = 1.0 - pow(o->cfg.beta1, t), bc2 = 1.0 - pow(o->cfg.beta2, t);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float *m = o->state, *v = o->state + o->n;
#pragma omp parallel for schedule(static) num_threads(nn_threads_for(o->n))
    for (size_t i = 0; i < o->n; i++) {
        float d = g[i];
        if (wd != 0.0f) d += wd * p[i];
        m[i] += (d - m[i]) * (1.0f - b1); /* PyTorch's lerp_ */
        v[i] = b2 * v[i] + (1.0f - b2) * d * d;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * (m[i] / denom);
    }
}

int optim_step(optimizer *o, float *params, const float *grads, double lr)
{
    CHECK(o && params && grads, GEN_ERR_USAGE, "optim_step: NULL argument");
    CHECK(lr >= 0 && isfinite(lr), GEN_ERR_USAGE, "optim_step: bad learning rate %g", lr);
    if (o->cfg.kind == OPTIM_SGD)
        sgd_step(o, params, grads, (float)lr);
    else
        adam_step(o, params, grads, lr);
    o->step++;
    return GEN_OK;
}

double steplr_lr(double base_lr, int step_size, double gamma, long epoch)
{
    if (step_size <= 0 || epoch < 0) return base_lr;
    return base_lr * pow(gamma, (double)(epoch / step_size));
}
