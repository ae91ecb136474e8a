/* Optimizers with PyTorch 1.13 semantics (torch.optim.SGD, torch.optim.Adam, single-tensor
 * path), in float32 like PyTorch's CPU kernels; LARS on top of SGD momentum (include/genesis/model.h);
 * the StepLR schedule, learning-rate scaling with the batch and the linear warm-up. */
#include "genesis/error.h"
#include "genesis/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optim_create(optimizer *o, const optim_config *cfg, size_t n)
{
    CHECK(o && cfg, GEN_ERR_USAGE, "optim_create: NULL argument");
    memset(o, 0, sizeof *o);
    CHECK(cfg->kind == OPTIM_SGD || cfg->kind == OPTIM_ADAM || cfg->kind == OPTIM_LARS, GEN_ERR_USAGE,
          "optim_create: unknown optimizer kind %d", cfg->kind);
    CHECK(cfg->lr >= 0 && cfg->weight_decay >= 0, GEN_ERR_USAGE,
          "optimizer: lr %g and weight_decay %g must be >= 0", cfg->lr, cfg->weight_decay);
    if (cfg->kind == OPTIM_LARS)
        CHECK(cfg->trust_coefficient > 0 && isfinite(cfg->trust_coefficient), GEN_ERR_USAGE,
              "LARS: trust coefficient %g must be > 0", cfg->trust_coefficient);
    if (cfg->kind != OPTIM_ADAM)
        CHECK(cfg->momentum >= 0, GEN_ERR_USAGE, "%s: momentum %g must be >= 0",
              cfg->kind == OPTIM_LARS ? "LARS" : "SGD", cfg->momentum);
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
    free(o->layers);
    o->state = NULL;
    o->layers = NULL;
    o->nlayers = 0;
}

int optim_set_layers(optimizer *o, const optim_layer *layers, int count)
{
    CHECK(o && (layers || count == 0) && count >= 0, GEN_ERR_USAGE, "optim_set_layers: bad argument");
    size_t end = 0;
    for (int i = 0; i < count; i++) {
        CHECK(layers[i].offset == end && layers[i].numel > 0, GEN_ERR_USAGE,
              "optim_set_layers: layer %d at %zu (%zu values) does not follow the previous one (ends at %zu)",
              i, layers[i].offset, layers[i].numel, end);
        end += layers[i].numel;
    }
    CHECK(end == o->n, GEN_ERR_USAGE, "optim_set_layers: the layers cover %zu of %zu parameters", end, o->n);
    optim_layer *copy = malloc(sizeof *copy * (size_t)(count ? count : 1));
    CHECK_ALLOC(copy, sizeof *copy * (size_t)(count ? count : 1));
    if (count) memcpy(copy, layers, sizeof *copy * (size_t)count);
    free(o->layers);
    o->layers = copy;
    o->nlayers = count;
    return GEN_OK;
}

/* Batch-norm parameters (module bnN: "...bn1.weight") and biases keep plain SGD under LARS. */
static int lars_excluded(const char *name)
{
    const char *leaf = strrchr(name, '.');
    if (leaf && !strcmp(leaf + 1, "bias")) return 1;
    for (const char *p = name; (p = strstr(p, ".bn")) != NULL; p++)
        if (p[3] >= '0' && p[3] <= '9') return 1;
    return !strncmp(name, "bn", 2);
}

int optim_set_model_layers(optimizer *o, model *m)
{
    CHECK(o && m, GEN_ERR_USAGE, "optim_set_model_layers: NULL argument");
    int count = 0, status = GEN_OK;
    size_t bytes = sizeof(optim_layer) * (size_t)(model_tensor_count(m) + 1);
    optim_layer *layers = malloc(bytes);
    CHECK_ALLOC_GOTO(layers, bytes);
    for (int i = 0; i < model_tensor_count(m); i++) {
        const model_tensor *t = model_tensor_at(m, i);
        if (t->kind != MODEL_PARAM) continue;
        layers[count++] =
            (optim_layer){.offset = t->offset, .numel = t->numel, .adapt = !lars_excluded(t->name)};
    }
    CALL_GOTO(optim_set_layers(o, layers, count));
cleanup:
    free(layers);
    return status;
}

float *optim_state(optimizer *o, int k)
{
    return o && o->state && k >= 0 && k < o->nstate ? o->state + (size_t)k * o->n : NULL;
}

/* torch.optim.SGD over [begin, end): d = g + wd p (LARS: times trust); buf = d at the first step,
 * else buf = momentum buf + d (dampening 0); p -= lr buf. */
static void sgd_range(optimizer *o, float *p, const float *g, float lr, size_t begin, size_t end, float trust)
{
    const float mom = (float)o->cfg.momentum, wd = (float)o->cfg.weight_decay;
    float *buf = o->state;
#pragma omp parallel for schedule(static) num_threads(nn_threads_for(end - begin))
    for (size_t i = begin; i < end; i++) {
        float d = g[i];
        if (wd != 0.0f) d += wd * p[i];
        if (trust != 1.0f) d *= trust;
        if (buf) {
            buf[i] = o->step == 0 ? d : mom * buf[i] + d;
            d = buf[i];
        }
        p[i] -= lr * d;
    }
}

/* sqrt(sum of x^2) over [0, n), summed in double in index order (the same at any rank count). */
static double norm2(const float *x, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * (double)x[i];
    return sqrt(sum);
}

/* LARS: each adapted layer's trust ratio eta ||w|| / (||g|| + wd ||w||), 1 when either norm is 0. */
static void lars_step(optimizer *o, float *p, const float *g, float lr)
{
    const double eta = o->cfg.trust_coefficient, wd = o->cfg.weight_decay;
    for (int l = 0; l < o->nlayers; l++) {
        const optim_layer *L = &o->layers[l];
        float trust = 1.0f;
        if (L->adapt) {
            double w_norm = norm2(p + L->offset, L->numel), g_norm = norm2(g + L->offset, L->numel);
            if (w_norm > 0 && g_norm > 0) trust = (float)(eta * w_norm / (g_norm + wd * w_norm));
        }
        sgd_range(o, p, g, lr, L->offset, L->offset + L->numel, trust);
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
    CHECK(o->cfg.kind != OPTIM_LARS || o->layers, GEN_ERR_USAGE, "optim_step: LARS without its layer table");
    if (o->cfg.kind == OPTIM_SGD)
        sgd_range(o, params, grads, (float)lr, 0, o->n, 1.0f);
    else if (o->cfg.kind == OPTIM_LARS)
        lars_step(o, params, grads, (float)lr);
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

const char *optim_kind_name(int kind)
{
    return kind == OPTIM_SGD ? "sgd" : kind == OPTIM_ADAM ? "adam" : kind == OPTIM_LARS ? "lars" : "?";
}

/* ---- the learning-rate schedule ---------------------------------------------------------- */

static const char *const scaling_names[] = {"none", "linear", "sqrt"};

int lr_schedule_init(lr_schedule *s, double learning_rate, int scaling, long batch, long reference_batch,
                     long warmup_steps, int step_epochs, double gamma)
{
    CHECK(s, GEN_ERR_USAGE, "lr_schedule_init: NULL argument");
    CHECK(scaling >= LR_SCALING_NONE && scaling <= LR_SCALING_SQRT, GEN_ERR_USAGE,
          "lr_schedule: unknown lr_scaling %d", scaling);
    CHECK(learning_rate >= 0 && batch > 0 && reference_batch > 0 && warmup_steps >= 0, GEN_ERR_USAGE,
          "lr_schedule: learning rate %g, batch %ld, reference batch %ld, warm-up %ld steps out of range",
          learning_rate, batch, reference_batch, warmup_steps);
    double ratio = (double)batch / (double)reference_batch;
    double factor = scaling == LR_SCALING_LINEAR ? ratio : scaling == LR_SCALING_SQRT ? sqrt(ratio) : 1.0;
    *s = (lr_schedule){.learning_rate = learning_rate, .scaling = scaling, .batch = batch,
                       .reference_batch = reference_batch,
                       .base_lr = scaling == LR_SCALING_NONE ? learning_rate : learning_rate * factor,
                       .warmup_steps = warmup_steps, .step_epochs = step_epochs, .gamma = gamma};
    return GEN_OK;
}

double lr_schedule_at(const lr_schedule *s, long epoch, long steps_done)
{
    double lr = steplr_lr(s->base_lr, s->step_epochs, s->gamma, epoch);
    if (steps_done < s->warmup_steps) lr = lr * (double)(steps_done + 1) / (double)s->warmup_steps;
    return lr;
}

void lr_schedule_describe(const lr_schedule *s, char *out, size_t size)
{
    int n;
    if (s->scaling == LR_SCALING_NONE)
        n = snprintf(out, size, "learning rate %g (lr_scaling = none: reference_batch unused)", s->base_lr);
    else
        n = snprintf(out, size, "learning rate %g = %g x %s(%ld / %ld) (lr_scaling = %s)", s->base_lr,
                     s->learning_rate, s->scaling == LR_SCALING_SQRT ? "sqrt" : "", s->batch,
                     s->reference_batch, scaling_names[s->scaling]);
    if (n < 0 || (size_t)n >= size) return;
    if (s->warmup_steps > 0)
        n += snprintf(out + n, size - (size_t)n,
                      "; linear warm-up over %ld steps: %g at step 1, %g at step %ld", s->warmup_steps,
                      lr_schedule_at(s, 0, 0), s->base_lr, s->warmup_steps);
    else
        n += snprintf(out + n, size - (size_t)n, "; no warm-up");
    if (n < 0 || (size_t)n >= size) return;
    snprintf(out + n, size - (size_t)n, "; then StepLR: x %g every %d epochs", s->gamma, s->step_epochs);
}
