/* The reference UNet3D of SPEC.md section 4 on the layers of src/nn, with llm.c-style arenas.
 *
 * Network (c_l = w * 2^l, V_l = voxels at level l = D*H*W / 8^l):
 *   down level l (down_tr64/128/256/512): LUConv(l ? c_l : 1 -> c_l), LUConv(c_l -> 2 c_l);
 *     MaxPool3d(2) for l < 3; the second LUConv's output is the skip of level l.
 *   up level d = 2, 1, 0 (up_tr256/128/64): ConvTranspose3d(2c_{d+1} -> 2c_{d+1}, k 2, s 2);
 *     concat (upsampled, skip); LUConv(2c_{d+1} + 2c_d -> 2c_d), LUConv(2c_d -> 2c_d).
 *   out_tr: Conv3d(2c_0 -> 1, k 1) -> sigmoid; loss MSE.
 *   LUConv = conv 3x3x3 (pad 1, bias) -> batch norm with batch statistics -> ReLU.
 * LUConvs are numbered 0..13 in forward order: down l -> 2l, 2l+1; up level d -> 12-2d, 13-2d.
 *
 * Activation memory (what is kept between forward and backward, per sample):
 *   - one tensor per LUConv: the normalised conv output xhat (conv writes z there, BN overwrites it
 *     with xhat in place); its ReLU output a = max(0, gamma*xhat + beta) is NOT kept but recomputed
 *     into the shared scratch A when a later layer needs it (backward's ReLU mask comes from xhat);
 *   - per up level d a concat buffer [2c_{d+1} + 2c_d, V_d] holding (upsampled, skip): the skip's
 *     ReLU output is written there once, maxpool reads it, and the up LUConv reads the concat
 *     without a copy (the up-convolution writes its output straight into it, sample by sample);
 *   - pooled outputs and their argmax (uint8, 0..7), the input copy, target copy and sigmoid output;
 *   - per-channel invstd of every BN.
 * Gradient memory: two ping-pong buffers P, Q sized for the largest LUConv output/input gradient,
 * one skip-gradient buffer per level (kept from the up path until the down path), and one sample's
 * concat gradient (the up LUConv's input gradient is formed sample by sample and split at once).
 * At w = 32, 64x64x32, that is ~57 M floats per sample + ~13 M once, plus 3 x 19.07 M for
 * parameters, gradients and momentum. */
#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/nn.h"
#include "genesis/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NLU = 14, MAX_TENSORS = 160, MAX_PROF = 40 };
static const double BN_MOMENTUM = 0.1, BN_EPS = 1e-5;
static const char *const DOWN_NAMES[4] = {"down_tr64", "down_tr128", "down_tr256", "down_tr512"};
static const char *const UP_NAMES[3] = {"up_tr64", "up_tr128", "up_tr256"}; /* by level d */

struct luconv {
    int cin, cout, level;
    int t_conv_w, t_conv_b, t_bn_w, t_bn_b, t_mean, t_var; /* tensor indices */
    float *xhat;   /* [N, cout, V_level] */
    float *invstd; /* [cout] */
    int prof_conv, prof_bn;
};

struct upconv { /* up level d: input at level d+1, output into cat[d] */
    int cin, cout;
    int t_w, t_b;
    int prof;
};

struct model {
    model_config cfg;
    int Dl[4], Hl[4], Wl[4];
    size_t V[4];
    int c[4]; /* c_l = w * 2^l */
    struct luconv lu[NLU];
    struct upconv up[3];
    int t_final_w, t_final_b, prof_final, prof_pool[3], prof_loss;

    model_tensor tensors[MAX_TENSORS];
    int ntensors;
    float *params, *grads; /* arenas of nparams floats */
    size_t nparams;
    float *buffers; /* BN running stats */
    size_t nbuffers;
    int64_t counters[NLU]; /* num_batches_tracked */
    int ncounters;

    float *acts; /* activation arena */
    size_t act_floats;
    float *xin, *target, *out, *dxin;
    float *pool[3];
    uint8_t *argmax[3];
    float *cat[3];
    float *A, *P, *Q;
    float *dskip[3], *dcat;
    size_t pq_floats;
    nn_workspace ws;

    nn_reduce_hook hook;
    model_grad_ready_fn grad_ready; /* NULL: nobody listens */
    void *grad_ready_ctx;
    int n_last, has_target;
    model_layer_profile prof[MAX_PROF];
    int nprof;
};

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- building: tensor table (state_dict order), arenas ------------------------------------ */

static int add_tensor(model *m, int kind, const char *prefix, const char *leaf, int ndim,
                      const int *shape)
{
    if (m->ntensors >= MAX_TENSORS) return -1;
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
    return m->ntensors++;
}

static int add_conv(model *m, const char *prefix, int cin, int cout, int k, int transposed,
                    int *t_w, int *t_b)
{
    int shape[5] = {transposed ? cin : cout, transposed ? cout : cin, k, k, k};
    *t_w = add_tensor(m, MODEL_PARAM, prefix, "weight", 5, shape);
    *t_b = add_tensor(m, MODEL_PARAM, prefix, "bias", 1, &cout);
    return *t_w < 0 || *t_b < 0 ? -1 : 0;
}

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
    L->t_bn_w = add_tensor(m, MODEL_PARAM, prefix, "weight", 1, &cout);
    L->t_bn_b = add_tensor(m, MODEL_PARAM, prefix, "bias", 1, &cout);
    L->t_mean = add_tensor(m, MODEL_BUFFER, prefix, "running_mean", 1, &cout);
    L->t_var = add_tensor(m, MODEL_BUFFER, prefix, "running_var", 1, &cout);
    if (add_tensor(m, MODEL_COUNTER, prefix, "num_batches_tracked", 0, NULL) < 0) return -1;
    return L->t_bn_w < 0 || L->t_bn_b < 0 || L->t_mean < 0 || L->t_var < 0 ? -1 : 0;
}

static int add_prof(model *m, const char *fmt, const char *a, int b)
{
    model_layer_profile *p = &m->prof[m->nprof];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, fmt, a, b);
    return m->nprof++;
}

/* The network's layers and tensor table, in state_dict order. */
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
    /* profile entries in forward order */
    for (int i = 0; i < NLU; i++) {
        struct luconv *L = &m->lu[i];
        const char *block = i < 8 ? DOWN_NAMES[i / 2] : UP_NAMES[(13 - i) / 2];
        int op = i & 1;
        if (i >= 8 && op == 0) m->up[L->level].prof = add_prof(m, "%s.up_conv", block, 0);
        L->prof_conv = add_prof(m, "%s.ops.%d.conv1", block, op);
        L->prof_bn = add_prof(m, "%s.ops.%d.bn1+relu", block, op);
        if (i < 6 && op == 1) m->prof_pool[i / 2] = add_prof(m, "%s.maxpool", block, 0);
    }
    m->prof_final = add_prof(m, "%s.final_conv", "out_tr", 0);
    m->prof_loss = add_prof(m, "%s.sigmoid+mse", "out_tr", 0);
    return 0;
}

/* Carves `floats` (rounded up to 16 for 64-byte alignment) from an arena; base NULL = sizing. */
static float *carve(float *base, size_t *off, size_t floats)
{
    float *p = base ? base + *off : NULL;
    *off += (floats + 15) / 16 * 16;
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static size_t workspace_floats(const model *m)
{
    const size_t budget = m->ws.tile_budget_bytes;
    size_t ws = 0;
    for (int i = 0; i < NLU; i++) {
        const struct luconv *L = &m->lu[i];
        int l = L->level;
        for (int n = 1; n <= m->cfg.batch; n += m->cfg.batch > 1 ? m->cfg.batch - 1 : 1) {
            conv3d_shape s = {n, L->cin, L->cout, m->Dl[l], m->Hl[l], m->Wl[l], 3};
            ws = max_sz(ws, conv3d_workspace_floats(&s, budget));
        }
    }
    for (int d = 0; d < 3; d++) {
        conv_transpose3d_shape s = {1, m->up[d].cin, m->up[d].cout, m->Dl[d + 1], m->Hl[d + 1],
                                    m->Wl[d + 1]};
        ws = max_sz(ws, conv_transpose3d_workspace_floats(&s, budget));
    }
    conv3d_shape s = {m->cfg.batch, 2 * m->c[0], 1, m->Dl[0], m->Hl[0], m->Wl[0], 1};
    ws = max_sz(ws, conv3d_workspace_floats(&s, budget));
    return ws;
}

/* Lays out the activation arena (base NULL: only computes its size into m->act_floats). */
static void layout_activations(model *m, float *base)
{
    const size_t N = (size_t)m->cfg.batch;
    const int *c = m->c;
    const size_t *V = m->V;
    size_t off = 0, amax = 0, pq = 0, dcat = 0;
    m->xin = carve(base, &off, N * V[0]);
    m->target = carve(base, &off, N * V[0]);
    m->out = carve(base, &off, N * V[0]);
    m->dxin = m->cfg.input_grad ? carve(base, &off, N * V[0]) : NULL;
    for (int i = 0; i < NLU; i++) {
        struct luconv *L = &m->lu[i];
        size_t v = V[L->level];
        L->xhat = carve(base, &off, N * (size_t)L->cout * v);
        L->invstd = carve(base, &off, (size_t)L->cout);
        amax = max_sz(amax, (size_t)L->cout * v);
        pq = max_sz(pq, (size_t)L->cout * v);
        int up_first = i >= 8 && (i & 1) == 0; /* its input is a concat: gradient goes to dcat */
        if (!up_first) pq = max_sz(pq, (size_t)L->cin * v);
    }
    for (int l = 0; l < 3; l++) {
        size_t pooled = N * 2 * (size_t)c[l] * V[l + 1];
        m->pool[l] = carve(base, &off, pooled);
        m->argmax[l] = (uint8_t *)carve(base, &off, (pooled + 3) / 4);
        size_t ccat = 2 * (size_t)c[l + 1] + 2 * (size_t)c[l];
        m->cat[l] = carve(base, &off, N * ccat * V[l]);
        m->dskip[l] = carve(base, &off, N * 2 * (size_t)c[l] * V[l]);
        dcat = max_sz(dcat, ccat * V[l]);
    }
    m->A = carve(base, &off, N * amax);
    m->P = carve(base, &off, N * pq);
    m->Q = carve(base, &off, N * pq);
    m->pq_floats = N * pq;
    m->dcat = carve(base, &off, dcat);
    m->ws.floats = workspace_floats(m);
    m->ws.data = carve(base, &off, m->ws.floats);
    m->act_floats = off;
}

static void *alloc_floats(size_t floats)
{
    size_t bytes = (floats ? floats : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, bytes);
}

int model_create(model **out, const model_config *cfg)
{
    CHECK(out && cfg, GEN_ERR_USAGE, "model_create: NULL argument");
    *out = NULL;
    CHECK(cfg->width >= 1 && cfg->width <= 1024, GEN_ERR_USAGE,
          "model width %d must be in [1, 1024]", cfg->width);
    CHECK(cfg->batch >= 1, GEN_ERR_USAGE, "model batch %d must be >= 1", cfg->batch);
    CHECK(cfg->D >= 8 && cfg->H >= 8 && cfg->W >= 8 && cfg->D % 8 == 0 && cfg->H % 8 == 0 &&
              cfg->W % 8 == 0,
          GEN_ERR_USAGE, "model input %dx%dx%d: each size must be a positive multiple of 8",
          cfg->D, cfg->H, cfg->W);
    CHECK((double)cfg->D * cfg->H * cfg->W * cfg->batch * cfg->width * 4.0 < 9e15, GEN_ERR_USAGE,
          "model input %dx%dx%d at batch %d is too large", cfg->D, cfg->H, cfg->W, cfg->batch);
    model *m = calloc(1, sizeof *m);
    CHECK_ALLOC(m, sizeof *m);
    m->cfg = *cfg;
    m->ws.tile_budget_bytes = cfg->tile_budget_bytes ? cfg->tile_budget_bytes : (size_t)4 << 20;
    for (int l = 0; l < 4; l++) {
        m->Dl[l] = cfg->D >> l;
        m->Hl[l] = cfg->H >> l;
        m->Wl[l] = cfg->W >> l;
        m->V[l] = (size_t)m->Dl[l] * m->Hl[l] * m->Wl[l];
        m->c[l] = cfg->width << l;
    }
    if (build_layers(m)) {
        free(m);
        FAIL(GEN_ERR_INTERNAL, "model_create: tensor table overflow");
    }
    layout_activations(m, NULL);
    m->params = alloc_floats(m->nparams);
    m->grads = alloc_floats(m->nparams);
    m->buffers = alloc_floats(m->nbuffers);
    m->acts = alloc_floats(m->act_floats);
    if (!m->params || !m->grads || !m->buffers || !m->acts) {
        size_t bytes = (2 * m->nparams + m->nbuffers + m->act_floats) * sizeof(float);
        model_free(m);
        FAIL(GEN_ERR_NOMEM, "out of memory allocating the model's arenas (%zu bytes)", bytes);
    }
    layout_activations(m, m->acts);
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
    model_zero_grad(m);
    int status = model_init_params(m, cfg->seed);
    if (status != GEN_OK) {
        model_free(m);
        return gen_error_trace(status, __FILE__, __LINE__);
    }
    *out = m;
    return GEN_OK;
}

void model_free(model *m)
{
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->buffers);
    free(m->acts);
    free(m);
}

int model_init_params(model *m, uint64_t seed)
{
    CHECK(m != NULL, GEN_ERR_USAGE, "model_init_params: NULL model");
    int param_index = 0;
    for (int k = 0; k < m->ntensors; k++) {
        model_tensor *t = &m->tensors[k];
        if (t->kind == MODEL_COUNTER) {
            *t->counter = 0;
            continue;
        }
        if (t->kind == MODEL_BUFFER) {
            float v = strstr(t->name, "running_var") ? 1.0f : 0.0f;
            for (size_t i = 0; i < t->numel; i++) t->data[i] = v;
            continue;
        }
        int index = param_index++;
        const char *leaf = strrchr(t->name, '.') + 1;
        int is_bn = strstr(t->name, ".bn1.") != NULL;
        if (is_bn) { /* BatchNorm: weight 1, bias 0 */
            float v = strcmp(leaf, "weight") == 0 ? 1.0f : 0.0f;
            for (size_t i = 0; i < t->numel; i++) t->data[i] = v;
            continue;
        }
        /* Conv3d / ConvTranspose3d: fan_in = weight.size(1) * k^3; the bias shares its weight's
         * bound; the weight is the tensor just before its bias. */
        const model_tensor *w = strcmp(leaf, "bias") == 0 ? t - 1 : t;
        size_t fan_in = (size_t)w->shape[1] * w->shape[2] * w->shape[3] * w->shape[4];
        double bound = 1.0 / sqrt((double)fan_in);
        rng_stream rs;
        rng_stream_init(&rs, seed, 0, (uint64_t)index, RNG_PURPOSE_INIT);
        for (size_t i = 0; i < t->numel; i++)
            t->data[i] = (float)(bound * (2.0 * rng_uniform(&rs) - 1.0));
    }
    return GEN_OK;
}

/* ---- accessors ------------------------------------------------------------------------- */

void model_zero_grad(model *m) { memset(m->grads, 0, m->nparams * sizeof *m->grads); }
const float *model_output(const model *m) { return m->out; }
const float *model_input_grad(const model *m) { return m->dxin; }
void model_set_bn_hook(model *m, const nn_reduce_hook *hook)
{
    if (hook)
        m->hook = *hook;
    else
        memset(&m->hook, 0, sizeof m->hook);
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
int model_layer_count(const model *m) { return m->nprof; }
const model_layer_profile *model_layer_profile_at(const model *m, int i)
{
    return i >= 0 && i < m->nprof ? &m->prof[i] : NULL;
}
void model_profile_reset(model *m)
{
    for (int i = 0; i < m->nprof; i++) {
        m->prof[i].fwd_seconds = m->prof[i].bwd_seconds = 0;
        m->prof[i].fwd_flops = m->prof[i].bwd_flops = 0;
        m->prof[i].calls = 0;
    }
}

static double conv_flops(const struct luconv *L, size_t v) { return 2.0 * 27 * L->cin * L->cout * (double)v; }

double model_forward_flops_per_sample(const model *m)
{
    double f = 0;
    for (int i = 0; i < NLU; i++) f += conv_flops(&m->lu[i], m->V[m->lu[i].level]);
    for (int d = 0; d < 3; d++) f += 2.0 * 8 * m->up[d].cin * m->up[d].cout * (double)m->V[d + 1];
    f += 2.0 * 2 * m->c[0] * (double)m->V[0];
    return f;
}

/* ---- forward ------------------------------------------------------------------------------ */

#define P_(m, k) ((m)->tensors[(k)].data)
#define G_(m, k) ((m)->tensors[(k)].grad)

static void prof_add(model *m, int p, int bwd, double t0, double flops)
{
    double dt = now_seconds() - t0;
    if (bwd) {
        m->prof[p].bwd_seconds += dt;
        m->prof[p].bwd_flops += flops;
    } else {
        m->prof[p].fwd_seconds += dt;
        m->prof[p].fwd_flops += flops;
        m->prof[p].calls++;
    }
}

static batchnorm3d_shape bn_shape(const model *m, const struct luconv *L, int n)
{
    batchnorm3d_shape s = {n, L->cout, (long)m->V[L->level], BN_MOMENTUM, BN_EPS, 1};
    return s;
}

static conv3d_shape lu_conv_shape(const model *m, const struct luconv *L, int n)
{
    int l = L->level;
    conv3d_shape s = {n, L->cin, L->cout, m->Dl[l], m->Hl[l], m->Wl[l], 3};
    return s;
}

/* LUConv i: conv(inp) -> z in xhat; BN normalises in place to xhat and writes a = ReLU(BN) to A. */
static int lu_forward(model *m, int i, const float *inp, int n)
{
    struct luconv *L = &m->lu[i];
    conv3d_shape cs = lu_conv_shape(m, L, n);
    double t0 = now_seconds();
    CALL(conv3d_forward(L->xhat, inp, P_(m, L->t_conv_w), P_(m, L->t_conv_b), &cs, &m->ws));
    prof_add(m, L->prof_conv, 0, t0, conv_flops(L, m->V[L->level]) * n);
    t0 = now_seconds();
    batchnorm3d_shape bs = bn_shape(m, L, n);
    CALL(batchnorm3d_forward(m->A, L->xhat, NULL, L->invstd, P_(m, L->t_mean), P_(m, L->t_var),
                             L->xhat, P_(m, L->t_bn_w), P_(m, L->t_bn_b), &bs, &m->hook));
    prof_add(m, L->prof_bn, 0, t0, 0);
    return GEN_OK;
}

/* dst [n, cout, V] = ReLU(gamma * xhat + beta) of LUConv i: bit-identical to the forward's A. */
static void lu_activation(float *dst, const model *m, int i, int n)
{
    const struct luconv *L = &m->lu[i];
    const float *g = P_(m, L->t_bn_w), *b = P_(m, L->t_bn_b);
    const size_t v = m->V[L->level];
    for (int k = 0; k < n; k++)
        for (int c = 0; c < L->cout; c++) {
            size_t base = ((size_t)k * L->cout + c) * v;
            for (size_t j = 0; j < v; j++) {
                float y = g[c] * L->xhat[base + j] + b[c];
                dst[base + j] = y < 0.0f ? 0.0f : y;
            }
        }
}

static size_t cat_channels(const model *m, int d) { return 2 * (size_t)m->c[d + 1] + 2 * (size_t)m->c[d]; }
/* sample k of the concat buffer of level d, and its skip part */
static float *cat_sample(const model *m, int d, int k) { return m->cat[d] + (size_t)k * cat_channels(m, d) * m->V[d]; }
static float *cat_skip(const model *m, int d, int k) { return cat_sample(m, d, k) + 2 * (size_t)m->c[d + 1] * m->V[d]; }

static maxpool3d_shape pool_shape(const model *m, int l, int n)
{
    maxpool3d_shape s = {n, 2 * m->c[l], m->Dl[l], m->Hl[l], m->Wl[l]};
    return s;
}

static conv_transpose3d_shape up_shape(const model *m, int d)
{
    conv_transpose3d_shape s = {1, m->up[d].cin, m->up[d].cout, m->Dl[d + 1], m->Hl[d + 1], m->Wl[d + 1]};
    return s;
}

int model_forward(model *m, double *loss, const float *x, const float *target, int n)
{
    CHECK(m && x, GEN_ERR_USAGE, "model_forward: NULL argument");
    CHECK(n >= 1 && n <= m->cfg.batch, GEN_ERR_USAGE,
          "model_forward: batch %d outside [1, %d] (the model was built for batch %d)", n,
          m->cfg.batch, m->cfg.batch);
    const size_t *V = m->V;
    const int *c = m->c;
    m->n_last = n;
    m->has_target = 0;
    memcpy(m->xin, x, (size_t)n * V[0] * sizeof *x);
    /* down path */
    for (int l = 0; l < 4; l++) {
        CALL(lu_forward(m, 2 * l, l == 0 ? m->xin : m->pool[l - 1], n));
        CALL(lu_forward(m, 2 * l + 1, m->A, n));
        if (l == 3) break; /* the bottom LUConv's output stays in A for up_tr256 */
        double t0 = now_seconds();
        const size_t skip = 2 * (size_t)c[l] * V[l];
        for (int k = 0; k < n; k++) {
            memcpy(cat_skip(m, l, k), m->A + k * skip, skip * sizeof(float));
            maxpool3d_shape ps = pool_shape(m, l, 1);
            CALL(maxpool3d_forward(m->pool[l] + k * skip / 8, m->argmax[l] + k * skip / 8,
                                   cat_skip(m, l, k), &ps));
        }
        prof_add(m, m->prof_pool[l], 0, t0, 0);
    }
    /* up path: A holds the input of the up-convolution */
    for (int d = 2; d >= 0; d--) {
        struct upconv *U = &m->up[d];
        conv_transpose3d_shape us = up_shape(m, d);
        double t0 = now_seconds();
        for (int k = 0; k < n; k++)
            CALL(conv_transpose3d_forward(cat_sample(m, d, k), m->A + (size_t)k * U->cin * V[d + 1],
                                          P_(m, U->t_w), P_(m, U->t_b), &us, &m->ws));
        prof_add(m, U->prof, 0, t0, 2.0 * 8 * U->cin * U->cout * (double)V[d + 1] * n);
        int i = 12 - 2 * d;
        CALL(lu_forward(m, i, m->cat[d], n));
        CALL(lu_forward(m, i + 1, m->A, n));
    }
    /* out_tr: 1x1x1 conv, sigmoid, MSE */
    conv3d_shape fs = {n, 2 * c[0], 1, m->Dl[0], m->Hl[0], m->Wl[0], 1};
    double t0 = now_seconds();
    CALL(conv3d_forward(m->out, m->A, P_(m, m->t_final_w), P_(m, m->t_final_b), &fs, &m->ws));
    prof_add(m, m->prof_final, 0, t0, 2.0 * 2 * c[0] * (double)V[0] * n);
    t0 = now_seconds();
    CALL(sigmoid_forward(m->out, m->out, (size_t)n * V[0]));
    if (target) {
        memcpy(m->target, target, (size_t)n * V[0] * sizeof *target);
        double l2 = 0;
        CALL(mse_forward(&l2, m->out, m->target, (size_t)n * V[0]));
        if (loss) *loss = l2;
        m->has_target = 1;
    }
    prof_add(m, m->prof_loss, 0, t0, 0);
    return GEN_OK;
}

/* ---- backward ----------------------------------------------------------------------------- */

/* BN (+ReLU) backward of LUConv i, in place: g holds dL/da on entry and dL/dz on return. */
static int lu_bn_backward(model *m, int i, float *g, int n)
{
    struct luconv *L = &m->lu[i];
    double t0 = now_seconds();
    batchnorm3d_shape bs = bn_shape(m, L, n);
    CALL(batchnorm3d_backward(g, G_(m, L->t_bn_w), G_(m, L->t_bn_b), g, L->xhat, L->invstd,
                              P_(m, L->t_bn_w), P_(m, L->t_bn_b), &bs, &m->hook));
    prof_add(m, L->prof_bn, 1, t0, 0);
    return GEN_OK;
}

/* Conv backward of LUConv i over samples [k0, k0 + n): dx (zeroed by the caller, or NULL) +=
 * input gradient, weight/bias gradients +=. */
static int lu_conv_backward(model *m, int i, float *dx, const float *g, const float *inp, int n)
{
    struct luconv *L = &m->lu[i];
    conv3d_shape cs = lu_conv_shape(m, L, n);
    double t0 = now_seconds();
    CALL(conv3d_backward(dx, G_(m, L->t_conv_w), G_(m, L->t_conv_b), g, inp, P_(m, L->t_conv_w),
                         &cs, &m->ws));
    prof_add(m, L->prof_conv, 1, t0, conv_flops(L, m->V[L->level]) * n * (dx ? 2 : 1));
    return GEN_OK;
}

static void zero(float *p, size_t n) { memset(p, 0, n * sizeof *p); }

void model_set_grad_ready_hook(model *m, model_grad_ready_fn fn, void *ctx)
{
    m->grad_ready = fn;
    m->grad_ready_ctx = ctx;
}

/* Tells the listener that every gradient from tensor k's offset to the arena's end is final. */
static int grad_ready(model *m, int k)
{
    return m->grad_ready ? m->grad_ready(m->grad_ready_ctx, m->tensors[k].offset) : GEN_OK;
}

int model_backward(model *m)
{
    CHECK(m != NULL, GEN_ERR_USAGE, "model_backward: NULL model");
    CHECK(m->has_target, GEN_ERR_USAGE,
          "model_backward: needs a forward pass with a target just before");
    const int n = m->n_last;
    const size_t *V = m->V;
    const int *c = m->c;
    float *g = m->P, *h = m->Q, *tmp;
    /* out_tr: MSE -> sigmoid -> 1x1 conv; g = dL/d(a of LUConv 13) */
    double t0 = now_seconds();
    zero(h, (size_t)n * V[0]);
    CALL(mse_backward(h, m->out, m->target, (size_t)n * V[0], 1.0f));
    zero(g, (size_t)n * V[0]);
    CALL(sigmoid_backward(g, h, m->out, (size_t)n * V[0]));
    prof_add(m, m->prof_loss, 1, t0, 0);
    lu_activation(m->A, m, 13, n);
    zero(h, (size_t)n * 2 * c[0] * V[0]);
    conv3d_shape fs = {n, 2 * c[0], 1, m->Dl[0], m->Hl[0], m->Wl[0], 1};
    t0 = now_seconds();
    CALL(conv3d_backward(h, G_(m, m->t_final_w), G_(m, m->t_final_b), g, m->A,
                         P_(m, m->t_final_w), &fs, &m->ws));
    prof_add(m, m->prof_final, 1, t0, 2 * 2.0 * 2 * c[0] * (double)V[0] * n);
    CALL(grad_ready(m, m->t_final_w));
    tmp = g, g = h, h = tmp;
    /* up path, d = 0, 1, 2; g = dL/d(a of the block's last LUConv) */
    for (int d = 0; d < 3; d++) {
        const int ia = 12 - 2 * d, ib = ia + 1;
        const int below = ib - 2; /* the LUConv feeding up[d]: 11, 9, 7 */
        struct luconv *La = &m->lu[ia];
        struct upconv *U = &m->up[d];
        /* second LUConv: input a_ia */
        CALL(lu_bn_backward(m, ib, g, n));
        lu_activation(m->A, m, ia, n);
        zero(h, (size_t)n * La->cout * V[d]);
        CALL(lu_conv_backward(m, ib, h, g, m->A, n));
        tmp = g, g = h, h = tmp;
        /* first LUConv: input concat(up, skip), input gradient formed one sample at a time */
        CALL(lu_bn_backward(m, ia, g, n));
        lu_activation(m->A, m, below, n);
        const size_t up_in = (size_t)U->cin * V[d + 1], up_out = (size_t)U->cout * V[d];
        const size_t skip = 2 * (size_t)c[d] * V[d];
        zero(h, (size_t)n * up_in);
        conv_transpose3d_shape us = up_shape(m, d);
        for (int k = 0; k < n; k++) {
            zero(m->dcat, up_out + skip);
            CALL(lu_conv_backward(m, ia, m->dcat, g + (size_t)k * La->cout * V[d],
                                  cat_sample(m, d, k), 1));
            memcpy(m->dskip[d] + k * skip, m->dcat + up_out, skip * sizeof(float));
            t0 = now_seconds();
            CALL(conv_transpose3d_backward(h + k * up_in, G_(m, U->t_w), G_(m, U->t_b), m->dcat,
                                           m->A + k * up_in, P_(m, U->t_w), &us, &m->ws));
            prof_add(m, U->prof, 1, t0, 2 * 2.0 * 8 * U->cin * U->cout * (double)V[d + 1]);
        }
        CALL(grad_ready(m, U->t_w)); /* the block's first tensor in state_dict order */
        tmp = g, g = h, h = tmp;
    }
    /* down path; g = dL/d(a of LUConv 7) at level 3 */
    for (int l = 3; l >= 0; l--) {
        const int i1 = 2 * l, i2 = i1 + 1;
        if (l < 3) { /* the skip's gradient: from the concat, plus the pool's */
            double t1 = now_seconds();
            maxpool3d_shape ps = pool_shape(m, l, n);
            CALL(maxpool3d_backward(m->dskip[l], g, m->argmax[l], &ps));
            prof_add(m, m->prof_pool[l], 1, t1, 0);
            g = m->dskip[l];
        }
        CALL(lu_bn_backward(m, i2, g, n));
        lu_activation(m->A, m, i1, n);
        float *dx = g == m->P ? m->Q : m->P;
        zero(dx, (size_t)n * m->lu[i1].cout * V[l]);
        CALL(lu_conv_backward(m, i2, dx, g, m->A, n));
        g = dx;
        CALL(lu_bn_backward(m, i1, g, n));
        dx = l == 0 ? m->dxin : (g == m->P ? m->Q : m->P);
        if (dx) zero(dx, (size_t)n * m->lu[i1].cin * V[l]);
        CALL(lu_conv_backward(m, i1, dx, g, l == 0 ? m->xin : m->pool[l - 1], n));
        CALL(grad_ready(m, m->lu[i1].t_conv_w));
        g = dx;
    }
    return GEN_OK;
}
