/* Building the UNet3D (src/model/unet3d.c has the network and its forward/backward): the tensor
 * table in PyTorch state_dict order with each tensor's name, shape and initialisation, the arenas
 * its tensors view, the activation arena's layout, the profile's layer events, and the accessors
 * of include/genesis/model.h. */
#include "genesis/config.h"
#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/nn.h"
#include "genesis/profile.h"
#include "genesis/rng.h"
#include "model/unet3d_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const DOWN_NAMES[4] = {"down_tr64", "down_tr128", "down_tr256", "down_tr512"};
static const char *const UP_NAMES[3] = {"up_tr64", "up_tr128", "up_tr256"}; /* by level d */

/* ---- the tensor table (state_dict order) -------------------------------------------------- */

/* Appends the table row prefix.leaf of `kind` and shape [ndim], initialised by `init` (bound:
 * INIT_UNIFORM's); its offset is the end of its arena so far. Returns its index, -1 when the
 * table is full or the name too long. */
static int add_tensor(model *m, int kind, const char *prefix, const char *leaf, int ndim,
                      const int *shape, enum tensor_init init, double bound)
{
    if (m->ntensors >= TENSORS_MAX) return -1;
    model_tensor *t = &m->tensors[m->ntensors];
    memset(t, 0, sizeof *t);
    int len = snprintf(t->name, sizeof t->name, "%s.%s", prefix, leaf);
    if (len < 0 || (size_t)len >= sizeof t->name) return -1;
    t->kind = kind;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    if (kind == MODEL_PARAM) {
        t->offset = m->nparams;
        m->nparams += t->numel;
    } else if (kind == MODEL_BUFFER) {
        t->offset = m->nbuffers;
        m->nbuffers += t->numel;
    } else {
        t->offset = (size_t)m->ncounters++;
    }
    m->init[m->ntensors] = (struct tensor_init_rule){init, bound};
    return m->ntensors++;
}

/* A Conv3d (weight [cout, cin, k, k, k]) or ConvTranspose3d (weight [cin, cout, k, k, k]) and its
 * bias [cout], both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = weight.size(1) * k^3. */
static int add_conv(model *m, const char *prefix, int cin, int cout, int k, int transposed,
                    int *t_w, int *t_b)
{
    int shape[5] = {transposed ? cin : cout, transposed ? cout : cin, k, k, k};
    size_t fan_in = (size_t)shape[1] * shape[2] * shape[3] * shape[4];
    double bound = 1.0 / sqrt((double)fan_in);
    *t_w = add_tensor(m, MODEL_PARAM, prefix, "weight", 5, shape, INIT_UNIFORM, bound);
    *t_b = add_tensor(m, MODEL_PARAM, prefix, "bias", 1, &cout, INIT_UNIFORM, bound);
    return *t_w < 0 || *t_b < 0 ? -1 : 0;
}

/* LUConv i = block.ops.op: conv1 (3x3x3) and bn1 (weight 1, bias 0, running mean 0, var 1). */
static int add_luconv(model *m, int i, const char *block, int op, int cin, int cout, int level)
{
    struct luconv *L = &m->lu[i];
    char prefix[64];
    L->cin = cin;
    L->cout = cout;
    L->level = level;
    snprintf(prefix, sizeof prefix, "%s.ops.%d.conv1", block, op);
    if (add_conv(m, prefix, cin, cout, 3, 0, &L->t_conv_w, &L->t_conv_b)) return -1;
    snprintf(prefix, sizeof prefix, "%s.ops.%d.bn1", block, op);
    L->t_bn_w = add_tensor(m, MODEL_PARAM, prefix, "weight", 1, &cout, INIT_ONE, 0);
    L->t_bn_b = add_tensor(m, MODEL_PARAM, prefix, "bias", 1, &cout, INIT_ZERO, 0);
    L->t_mean = add_tensor(m, MODEL_BUFFER, prefix, "running_mean", 1, &cout, INIT_ZERO, 0);
    L->t_var = add_tensor(m, MODEL_BUFFER, prefix, "running_var", 1, &cout, INIT_ONE, 0);
    if (add_tensor(m, MODEL_COUNTER, prefix, "num_batches_tracked", 0, NULL, INIT_ZERO, 0) < 0)
        return -1;
    return L->t_bn_w < 0 || L->t_bn_b < 0 || L->t_mean < 0 || L->t_var < 0 ? -1 : 0;
}

/* Registers layer `name` (printf-formatted with a and b): its events "NAME forward" and
 * "NAME backward" in the profile. */
static const char FORWARD_SUFFIX[] = " forward";

static struct layer_events add_layer(model *m, const char *fmt, const char *a, int b)
{
    char name[PROFILE_NAME_MAX], event[PROFILE_NAME_MAX + 16];
    snprintf(name, sizeof name, fmt, a, b);
    struct layer_events e;
    snprintf(event, sizeof event, "%s%s", name, FORWARD_SUFFIX);
    e.forward = profile_event(&m->profile, event);
    snprintf(event, sizeof event, "%s backward", name);
    e.backward = profile_event(&m->profile, event);
    if (m->nlayers < LAYERS_MAX) m->layers[m->nlayers++] = e;
    return e;
}

/* The network's layers and tensor table, in state_dict order; then the layers' profile events,
 * in forward order. */
static int build_layers(model *m)
{
    const int *c = m->c;
    for (int l = 0; l < 4; l++) {
        int i = 2 * l;
        if (add_luconv(m, i, DOWN_NAMES[l], 0, l ? c[l] : 1, c[l], l)) return -1;
        if (add_luconv(m, i + 1, DOWN_NAMES[l], 1, c[l], 2 * c[l], l)) return -1;
    }
    for (int d = 2; d >= 0; d--) {
        struct upconv *U = &m->up[d];
        char prefix[64];
        U->cin = U->cout = 2 * c[d + 1];
        snprintf(prefix, sizeof prefix, "%s.up_conv", UP_NAMES[d]);
        if (add_conv(m, prefix, U->cin, U->cout, 2, 1, &U->t_w, &U->t_b)) return -1;
        int i = 12 - 2 * d;
        if (add_luconv(m, i, UP_NAMES[d], 0, 2 * c[d + 1] + 2 * c[d], 2 * c[d], d)) return -1;
        if (add_luconv(m, i + 1, UP_NAMES[d], 1, 2 * c[d], 2 * c[d], d)) return -1;
    }
    if (add_conv(m, "out_tr.final_conv", 2 * c[0], 1, 1, 0, &m->t_final_w, &m->t_final_b))
        return -1;
    for (int i = 0; i < LUCONV_COUNT; i++) {
        struct luconv *L = &m->lu[i];
        const char *block = i < 8 ? DOWN_NAMES[i / 2] : UP_NAMES[(13 - i) / 2];
        int op = i & 1;
        if (i >= 8 && op == 0) m->up[L->level].events = add_layer(m, "%s.up_conv", block, 0);
        L->conv = add_layer(m, "%s.ops.%d.conv1", block, op);
        L->bn = add_layer(m, "%s.ops.%d.bn1+relu", block, op);
        if (i < 6 && op == 1) m->pool[i / 2] = add_layer(m, "%s.maxpool", block, 0);
    }
    m->final_conv = add_layer(m, "%s.final_conv", "out_tr", 0);
    m->loss = add_layer(m, "%s.sigmoid+mse", "out_tr", 0);
    return 0;
}

/* ---- the activation arena ----------------------------------------------------------------- */

/* Carves `floats` (rounded up to 16 for 64-byte alignment) from an arena; base NULL = sizing. */
static float *carve(float *base, size_t *off, size_t floats)
{
    float *p = base ? base + *off : NULL;
    *off += (floats + 15) / 16 * 16;
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Floats of conv workspace the largest layer needs. */
static size_t workspace_floats(const model *m)
{
    const size_t budget = m->ws.tile_budget_bytes;
    size_t ws = 0;
    for (int i = 0; i < LUCONV_COUNT; i++) {
        const struct luconv *L = &m->lu[i];
        int l = L->level;
        conv3d_shape s = {1, L->cin, L->cout, m->Dl[l], m->Hl[l], m->Wl[l], 3};
        ws = max_sz(ws, conv3d_workspace_floats(&s, budget));
    }
    for (int d = 0; d < 3; d++) {
        conv_transpose3d_shape s = {1, m->up[d].cin, m->up[d].cout, m->Dl[d + 1], m->Hl[d + 1],
                                    m->Wl[d + 1]};
        ws = max_sz(ws, conv_transpose3d_workspace_floats(&s, budget));
    }
    conv3d_shape s = {1, 2 * m->c[0], 1, m->Dl[0], m->Hl[0], m->Wl[0], 1};
    ws = max_sz(ws, conv3d_workspace_floats(&s, budget));
    return ws;
}

/* Lays out the activation arena (base NULL: only computes its size into m->act_floats). */
static void layout_activations(model *m, float *base)
{
    const size_t N = (size_t)m->cfg.batch;
    const int *c = m->c;
    const size_t *V = m->V;
    size_t off = 0, s_in = 0, s_dz = 0, s_dcat = 0, s_up = 0;
    m->xin = carve(base, &off, N * V[0]);
    m->target = carve(base, &off, N * V[0]);
    m->out = carve(base, &off, N * V[0]);
    m->dout = carve(base, &off, N * V[0]);
    m->dxin = m->cfg.input_grad ? carve(base, &off, N * V[0]) : NULL;
    for (int i = 0; i < LUCONV_COUNT; i++) {
        struct luconv *L = &m->lu[i];
        size_t v = V[L->level];
        L->xhat = carve(base, &off, N * (size_t)L->cout * v);
        L->invstd = carve(base, &off, (size_t)L->cout);
        s_in = max_sz(s_in, (size_t)L->cin * v);
        s_dz = max_sz(s_dz, (size_t)L->cout * v);
    }
    for (int l = 0; l < 4; l++) m->level_grad[l] = carve(base, &off, N * 2 * (size_t)c[l] * V[l]);
    for (int l = 0; l < 3; l++) {
        size_t pooled = N * 2 * (size_t)c[l] * V[l + 1];
        m->pool_out[l] = carve(base, &off, pooled);
        m->argmax[l] = (uint8_t *)carve(base, &off, (pooled + 3) / 4);
        s_dcat = max_sz(s_dcat, (2 * (size_t)c[l + 1] + 2 * (size_t)c[l]) * V[l]);
        s_up = max_sz(s_up, 2 * (size_t)c[l + 1] * V[l + 1]);
    }
    s_in = max_sz(s_in, 2 * (size_t)c[0] * V[0]); /* the final conv's input */
    m->s_in = carve(base, &off, s_in);
    m->s_up = carve(base, &off, s_up);
    m->s_dz = carve(base, &off, s_dz);
    m->s_dcat = carve(base, &off, s_dcat);
    m->ws.floats = workspace_floats(m);
    m->ws.data = carve(base, &off, m->ws.floats);
    m->act_floats = off;
}

/* ---- creation ------------------------------------------------------------------------------ */

static void *alloc_floats(size_t floats)
{
    size_t bytes = (floats ? floats : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, bytes);
}

static int check_config(const model_config *cfg)
{
    CHECK(cfg->width >= 1 && cfg->width <= CONFIG_WIDTH_MAX, GEN_ERR_USAGE,
          "model width %d must be in [1, %d]", cfg->width, CONFIG_WIDTH_MAX);
    CHECK(cfg->batch >= 1, GEN_ERR_USAGE, "model batch %d must be >= 1", cfg->batch);
    CHECK(cfg->D >= 8 && cfg->H >= 8 && cfg->W >= 8 && cfg->D % 8 == 0 && cfg->H % 8 == 0 &&
              cfg->W % 8 == 0,
          GEN_ERR_USAGE, "model input %dx%dx%d: each size must be a positive multiple of 8",
          cfg->D, cfg->H, cfg->W);
    CHECK((double)cfg->D * cfg->H * cfg->W * cfg->batch * cfg->width * 4.0 < 9e15, GEN_ERR_USAGE,
          "model input %dx%dx%d at batch %d is too large", cfg->D, cfg->H, cfg->W, cfg->batch);
    CHECK(cfg->threads >= 0 && cfg->threads <= NN_THREADS_MAX, GEN_ERR_USAGE,
          "model threads %d must be in [0, %d]", cfg->threads, NN_THREADS_MAX);
    return GEN_OK;
}

/* Points every tensor of the table at its arena. */
static void bind_tensors(model *m)
{
    for (int k = 0; k < m->ntensors; k++) {
        model_tensor *t = &m->tensors[k];
        if (t->kind == MODEL_PARAM) {
            t->data = m->params + t->offset;
            t->grad = m->grads + t->offset;
        } else if (t->kind == MODEL_BUFFER) {
            t->data = m->buffers + t->offset;
        } else {
            t->counter = &m->counters[t->offset];
        }
    }
}

/* Everything of model_create but the arenas: shapes, the tensor table, the arenas' sizes. */
static int plan_model(model *m, const model_config *cfg)
{
    CALL(check_config(cfg));
    m->cfg = *cfg;
    m->cfg.threads = cfg->threads ? cfg->threads : 1;
    CALL(nn_set_threads(m->cfg.threads)); /* before the workspace is sized for them */
    m->ws.tile_budget_bytes = cfg->tile_budget_bytes ? cfg->tile_budget_bytes : (size_t)4 << 20;
    m->layer_views = m->layer_view_storage;
    for (int l = 0; l < 4; l++) {
        m->Dl[l] = cfg->D >> l;
        m->Hl[l] = cfg->H >> l;
        m->Wl[l] = cfg->W >> l;
        m->V[l] = (size_t)m->Dl[l] * m->Hl[l] * m->Wl[l];
        m->c[l] = cfg->width << l;
    }
    CHECK(build_layers(m) == 0, GEN_ERR_INTERNAL, "model_create: tensor table overflow");
    layout_activations(m, NULL);
    return GEN_OK;
}

int model_plan(const model_config *cfg, size_t *params, size_t *buffers, size_t *activation_bytes)
{
    model *m = calloc(1, sizeof *m);
    CHECK_ALLOC(m, sizeof *m);
    int status = plan_model(m, cfg);
    *params = m->nparams, *buffers = m->nbuffers, *activation_bytes = m->act_floats * sizeof(float);
    free(m);
    return status;
}

int model_create(model **out, const model_config *cfg)
{
    CHECK(out && cfg, GEN_ERR_USAGE, "model_create: NULL argument");
    *out = NULL;
    int status = GEN_OK;
    model *m = calloc(1, sizeof *m);
    CHECK_ALLOC_GOTO(m, sizeof *m);
    CALL_GOTO(plan_model(m, cfg));
    m->params = alloc_floats(m->nparams);
    m->grads = alloc_floats(m->nparams);
    m->buffers = alloc_floats(m->nbuffers);
    m->acts = alloc_floats(m->act_floats);
    m->bn_sums = calloc(4 * (size_t)m->c[3] + 1, sizeof *m->bn_sums);
    CHECK_GOTO(m->params && m->grads && m->buffers && m->acts && m->bn_sums, GEN_ERR_NOMEM,
               "out of memory allocating the model's arenas (%zu bytes)",
               (2 * m->nparams + m->nbuffers + m->act_floats) * sizeof(float));
    layout_activations(m, m->acts);
    bind_tensors(m);
    model_zero_grad(m);
    CALL_GOTO(model_init_params(m, cfg->seed));
    *out = m;
    m = NULL;
cleanup:
    model_free(m);
    return status;
}

void model_free(model *m)
{
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->buffers);
    free(m->acts);
    free(m->bn_sums);
    free(m);
}

/* Every tensor as its table row says; parameter tensor k (k-th among the parameters) draws from
 * the keyed stream (seed, 0, k, RNG_PURPOSE_INIT). */
int model_init_params(model *m, uint64_t seed)
{
    CHECK(m != NULL, GEN_ERR_USAGE, "model_init_params: NULL model");
    int param_index = 0;
    for (int k = 0; k < m->ntensors; k++) {
        model_tensor *t = &m->tensors[k];
        const struct tensor_init_rule *rule = &m->init[k];
        int index = t->kind == MODEL_PARAM ? param_index++ : -1;
        if (t->kind == MODEL_COUNTER) {
            *t->counter = 0;
        } else if (rule->init == INIT_UNIFORM) {
            rng_stream rs;
            rng_stream_init(&rs, seed, 0, (uint64_t)index, RNG_PURPOSE_INIT);
            for (size_t i = 0; i < t->numel; i++)
                t->data[i] = (float)(rule->bound * (2.0 * rng_uniform(&rs) - 1.0));
        } else {
            const float v = rule->init == INIT_ONE ? 1.0f : 0.0f;
            for (size_t i = 0; i < t->numel; i++) t->data[i] = v;
        }
    }
    return GEN_OK;
}

/* ---- accessors ------------------------------------------------------------------------- */

void model_zero_grad(model *m) { nn_zero(m->grads, m->nparams); }
const float *model_output(const model *m) { return m->out; }
const float *model_input_grad(const model *m) { return m->dxin; }
void model_set_bn_hook(model *m, const nn_reduce_hook *hook)
{
    if (hook)
        m->hook = *hook;
    else
        memset(&m->hook, 0, sizeof m->hook);
}
void model_set_bn_running(model *m, int running) { m->bn_running = running != 0; }
void model_set_grad_ready_hook(model *m, model_grad_ready_fn fn, void *ctx)
{
    m->grad_ready = fn;
    m->grad_ready_ctx = ctx;
}
size_t model_num_params(const model *m) { return m->nparams; }
float *model_params(model *m) { return m->params; }
float *model_grads(model *m) { return m->grads; }
const model_config *model_get_config(const model *m) { return &m->cfg; }
size_t model_activation_bytes(const model *m) { return m->act_floats * sizeof(float); }
int model_tensor_count(const model *m) { return m->ntensors; }
model_tensor *model_tensor_at(model *m, int i)
{
    return i >= 0 && i < m->ntensors ? &m->tensors[i] : NULL;
}
model_tensor *model_find_tensor(model *m, const char *name)
{
    for (int k = 0; k < m->ntensors; k++)
        if (strcmp(m->tensors[k].name, name) == 0) return &m->tensors[k];
    return NULL;
}

/* ---- the profile, per layer ----------------------------------------------------------------- */

void model_profile_reset(model *m) { profile_reset(&m->profile); }
int model_layer_count(const model *m) { return m->nlayers; }

/* Layer i's view: the two events of the layer side by side (calls: forward calls). */
const model_layer_profile *model_layer_profile_at(const model *m, int i)
{
    if (i < 0 || i >= m->nlayers) return NULL;
    const profile_event_stats *f = profile_get(&m->profile, m->layers[i].forward);
    const profile_event_stats *b = profile_get(&m->profile, m->layers[i].backward);
    model_layer_profile *v = &m->layer_views[i];
    memset(v, 0, sizeof *v);
    if (f) {
        int len = (int)(strlen(f->name) - (sizeof FORWARD_SUFFIX - 1));
        snprintf(v->name, sizeof v->name, "%.*s", len, f->name);
        v->fwd_seconds = f->seconds, v->fwd_flops = f->flops, v->calls = f->calls;
    }
    if (b) v->bwd_seconds = b->seconds, v->bwd_flops = b->flops;
    return v;
}
