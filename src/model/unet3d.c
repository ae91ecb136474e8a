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
 * Activation memory. The convolutions run one sample at a time, so that only one sample's conv
 * input, dz and concat gradient are ever materialised; what is kept for the whole batch is:
 *   - per LUConv, its normalised conv output xhat [N, cout, V] (the conv writes z there, BN
 *     normalises it in place); the ReLU output a = max(0, gamma*xhat + beta) is never kept but
 *     recomputed, one sample at a time, where a later layer needs it (the ReLU mask in backward
 *     comes from xhat too);
 *   - pooled outputs and their argmax (uint8, 0..7); the input, target, sigmoid output and its
 *     gradient; per-channel invstd of every BN;
 *   - one gradient buffer per level, G_l [N, 2c_l, V_l]: the gradient flowing through level l is
 *     transformed in place, sample by sample (BN backward needs the whole batch's sums first, then
 *     forms one sample's dz into a one-sample scratch; the conv's input gradient for that sample
 *     overwrites the consumed slice; input and output gradients of every in-place conv have equal
 *     or smaller per-sample size). G_l also carries the skip gradient from the up path down to
 *     the down path of level l.
 * The concat (upsampled, skip) of an up level exists for one sample at a time: the skip part is
 * recomputed from xhat, the upsampled part by the up-convolution (again in backward: ~1% more
 * FLOPs than a training step needs, for ~800 MB less at batch 6).
 * Per sample at w = 32, 64x64x32: xhat 38.7 M floats, G 11.2 M, the rest ~3 M; once: ~67 M
 * (one-sample scratches and the conv workspace); plus 3 x 19.07 M for parameters, gradients and
 * momentum. Measured: activation arena 1449 MB and peak RSS 1680 MB at batch 6 (PyTorch: 4.25 GB);
 * 657 MB / 885 MB at batch 2. Keeping whole-batch ReLU outputs, concats and ping-pong gradients
 * instead needed 2639 MB / 2870 MB at batch 6. */
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
    float *xin, *target, *out, *dout, *dxin; /* [N, 1, V0] */
    float *pool[3];      /* [N, 2c_l, V_{l+1}] */
    uint8_t *argmax[3];  /* same shape, bytes */
    float *G[4];         /* [N, 2c_l, V_l] gradient of level l */
    float *s_in;         /* one sample's conv input (a recomputed activation, or the concat) */
    float *s_up;         /* one sample's up-convolution input */
    float *s_dz;         /* one sample's dL/dz of an LUConv */
    float *s_dcat;       /* one sample's gradient of a concat */
    double *bn_sums; /* 2C + 1 doubles for BN backward sums, C <= 2c_3 */
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
    for (int i = 0; i < NLU; i++) {
        struct luconv *L = &m->lu[i];
        size_t v = V[L->level];
        L->xhat = carve(base, &off, N * (size_t)L->cout * v);
        L->invstd = carve(base, &off, (size_t)L->cout);
        s_in = max_sz(s_in, (size_t)L->cin * v);
        s_dz = max_sz(s_dz, (size_t)L->cout * v);
    }
    for (int l = 0; l < 4; l++) m->G[l] = carve(base, &off, N * 2 * (size_t)c[l] * V[l]);
    for (int l = 0; l < 3; l++) {
        size_t pooled = N * 2 * (size_t)c[l] * V[l + 1];
        m->pool[l] = carve(base, &off, pooled);
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
    m->bn_sums = calloc(4 * (size_t)m->c[3] + 1, sizeof *m->bn_sums);
    if (!m->params || !m->grads || !m->buffers || !m->acts || !m->bn_sums) {
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
    free(m->bn_sums);
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

/* dst [cout, V] = ReLU(gamma * xhat + beta) of sample k of LUConv i: bit-identical to what the
 * forward's batch norm + ReLU computes. */
static void lu_activation(float *dst, const model *m, int i, int k)
{
    const struct luconv *L = &m->lu[i];
    const float *g = P_(m, L->t_bn_w), *b = P_(m, L->t_bn_b);
    const size_t v = m->V[L->level];
    const float *xh = L->xhat + (size_t)k * L->cout * v;
    for (int c = 0; c < L->cout; c++) {
        const float gc = g[c], bc = b[c];
        for (size_t j = 0; j < v; j++) {
            float y = gc * xh[c * v + j] + bc;
            dst[c * v + j] = y < 0.0f ? 0.0f : y;
        }
    }
}

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

/* The LUConv feeding up level d's up-convolution: 7 (bottom), 9, 11. */
static int lu_below(int d) { return d == 2 ? 7 : 13 - 2 * (d + 1); }

/* One sample's concat (upsampled, skip) of up level d into s_in; s_up gets the up-convolution's
 * input (the activation of the LUConv below). prof_bwd: count the time as backward (recompute). */
static int concat_sample(model *m, int d, int k, int prof_bwd)
{
    struct upconv *U = &m->up[d];
    lu_activation(m->s_up, m, lu_below(d), k);
    conv_transpose3d_shape us = up_shape(m, d);
    double t0 = now_seconds();
    CALL(conv_transpose3d_forward(m->s_in, m->s_up, P_(m, U->t_w), P_(m, U->t_b), &us, &m->ws));
    prof_add(m, U->prof, prof_bwd, t0, 2.0 * 8 * U->cin * U->cout * (double)m->V[d + 1]);
    lu_activation(m->s_in + (size_t)U->cout * m->V[d], m, 2 * d + 1, k);
    return GEN_OK;
}

/* One sample's input of LUConv i's conv: a pointer to kept data, or a recomputation in s_in. */
static int lu_input(const float **inp, model *m, int i, int k)
{
    const struct luconv *L = &m->lu[i];
    const size_t v = m->V[L->level];
    if (i == 0) {
        *inp = m->xin + (size_t)k * v;
    } else if (i < 8 && (i & 1) == 0) { /* first LUConv of a lower down level: the pooled input */
        *inp = m->pool[L->level - 1] + (size_t)k * L->cin * v;
    } else if (i >= 8 && (i & 1) == 0) { /* first LUConv of an up level: the concat */
        CALL(concat_sample(m, L->level, k, 0));
        *inp = m->s_in;
    } else { /* second LUConv of a block: the first one's activation */
        lu_activation(m->s_in, m, i - 1, k);
        *inp = m->s_in;
    }
    return GEN_OK;
}

/* LUConv i forward: conv one sample at a time -> z in xhat; BN over the batch normalises xhat in
 * place (the activation is recomputed when needed). */
static int lu_forward(model *m, int i, int n)
{
    struct luconv *L = &m->lu[i];
    const size_t v = m->V[L->level];
    conv3d_shape cs = {1, L->cin, L->cout, m->Dl[L->level], m->Hl[L->level], m->Wl[L->level], 3};
    for (int k = 0; k < n; k++) {
        const float *inp = NULL;
        CALL(lu_input(&inp, m, i, k));
        double t0 = now_seconds();
        CALL(conv3d_forward(L->xhat + (size_t)k * L->cout * v, inp, P_(m, L->t_conv_w),
                            P_(m, L->t_conv_b), &cs, &m->ws));
        prof_add(m, L->prof_conv, 0, t0, conv_flops(L, v));
    }
    double t0 = now_seconds();
    batchnorm3d_shape bs = {n, L->cout, (long)v, BN_MOMENTUM, BN_EPS, 1};
    CALL(batchnorm3d_forward(NULL, L->xhat, NULL, L->invstd, P_(m, L->t_mean), P_(m, L->t_var),
                             L->xhat, P_(m, L->t_bn_w), P_(m, L->t_bn_b), &bs, &m->hook));
    prof_add(m, L->prof_bn, 0, t0, 0);
    return GEN_OK;
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
    for (int l = 0; l < 4; l++) { /* down path */
        CALL(lu_forward(m, 2 * l, n));
        CALL(lu_forward(m, 2 * l + 1, n));
        if (l == 3) break;
        maxpool3d_shape ps = pool_shape(m, l, 1);
        const size_t pooled = 2 * (size_t)c[l] * V[l + 1];
        for (int k = 0; k < n; k++) {
            lu_activation(m->s_in, m, 2 * l + 1, k);
            double t0 = now_seconds();
            CALL(maxpool3d_forward(m->pool[l] + k * pooled, m->argmax[l] + k * pooled, m->s_in, &ps));
            prof_add(m, m->prof_pool[l], 0, t0, 0);
        }
    }
    for (int d = 2; d >= 0; d--) { /* up path (the concat is formed inside lu_input) */
        CALL(lu_forward(m, 12 - 2 * d, n));
        CALL(lu_forward(m, 13 - 2 * d, n));
    }
    /* out_tr: 1x1x1 conv, sigmoid, MSE */
    conv3d_shape fs = {1, 2 * c[0], 1, m->Dl[0], m->Hl[0], m->Wl[0], 1};
    for (int k = 0; k < n; k++) {
        lu_activation(m->s_in, m, 13, k);
        double t0 = now_seconds();
        CALL(conv3d_forward(m->out + k * V[0], m->s_in, P_(m, m->t_final_w), P_(m, m->t_final_b),
                            &fs, &m->ws));
        prof_add(m, m->prof_final, 0, t0, 2.0 * 2 * c[0] * (double)V[0]);
    }
    double t0 = now_seconds();
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

static void zero(float *p, size_t n) { memset(p, 0, n * sizeof *p); }

/* Backward of LUConv i, whose output gradient dL/da is in g [n, cout, V]. The input gradient of
 * sample k goes to dx + k * cin * V (zeroed here, then accumulated), which may be g itself: the
 * slice of sample k is consumed (into s_dz) before it is written, and the slices written so far
 * only cover consumed samples because cin <= cout. dx NULL: no input gradient. For the first
 * LUConv of an up level, use lu_backward_up instead. */
static int lu_backward(model *m, int i, float *dx, float *g, int n)
{
    struct luconv *L = &m->lu[i];
    const size_t v = m->V[L->level];
    batchnorm3d_shape bs = {n, L->cout, (long)v, BN_MOMENTUM, BN_EPS, 1}, b1 = bs;
    b1.N = 1;
    conv3d_shape cs = {1, L->cin, L->cout, m->Dl[L->level], m->Hl[L->level], m->Wl[L->level], 3};
    double t0 = now_seconds();
    CALL(batchnorm3d_backward_reduce(m->bn_sums, G_(m, L->t_bn_w), G_(m, L->t_bn_b), g, L->xhat,
                                     P_(m, L->t_bn_w), P_(m, L->t_bn_b), &bs, &m->hook));
    prof_add(m, L->prof_bn, 1, t0, 0);
    for (int k = 0; k < n; k++) {
        const size_t out_k = (size_t)k * L->cout * v, in_k = (size_t)k * L->cin * v;
        t0 = now_seconds();
        zero(m->s_dz, (size_t)L->cout * v); /* apply accumulates */
        CALL(batchnorm3d_backward_apply(m->s_dz, g + out_k, L->xhat + out_k, L->invstd,
                                        P_(m, L->t_bn_w), P_(m, L->t_bn_b), m->bn_sums, &b1));
        prof_add(m, L->prof_bn, 1, t0, 0);
        const float *inp = NULL;
        CALL(lu_input(&inp, m, i, k));
        if (dx) zero(dx + in_k, (size_t)L->cin * v);
        t0 = now_seconds();
        CALL(conv3d_backward(dx ? dx + in_k : NULL, G_(m, L->t_conv_w), G_(m, L->t_conv_b),
                             m->s_dz, inp, P_(m, L->t_conv_w), &cs, &m->ws));
        prof_add(m, L->prof_conv, 1, t0, conv_flops(L, v) * (dx ? 2 : 1));
    }
    return GEN_OK;
}

/* Backward of the first LUConv of up level d (input: the concat), with its gradient in G[d]: per
 * sample, the concat gradient is split: the skip part overwrites the sample's (consumed) slice
 * of G[d] (it is the skip's gradient, used again by the down path), the upsampled part goes
 * through the up-convolution into G[d+1]. */
static int lu_backward_up(model *m, int d, int n)
{
    const int i = 12 - 2 * d;
    struct luconv *L = &m->lu[i];
    struct upconv *U = &m->up[d];
    const size_t v = m->V[d], up_in = (size_t)U->cin * m->V[d + 1], up_out = (size_t)U->cout * v;
    const size_t skip = (size_t)L->cout * v; /* = 2c_d V_d, the skip's size */
    float *g = m->G[d];
    batchnorm3d_shape bs = {n, L->cout, (long)v, BN_MOMENTUM, BN_EPS, 1}, b1 = bs;
    b1.N = 1;
    conv3d_shape cs = {1, L->cin, L->cout, m->Dl[d], m->Hl[d], m->Wl[d], 3};
    conv_transpose3d_shape us = up_shape(m, d);
    double t0 = now_seconds();
    CALL(batchnorm3d_backward_reduce(m->bn_sums, G_(m, L->t_bn_w), G_(m, L->t_bn_b), g, L->xhat,
                                     P_(m, L->t_bn_w), P_(m, L->t_bn_b), &bs, &m->hook));
    prof_add(m, L->prof_bn, 1, t0, 0);
    for (int k = 0; k < n; k++) {
        t0 = now_seconds();
        zero(m->s_dz, skip); /* apply accumulates */
        CALL(batchnorm3d_backward_apply(m->s_dz, g + k * skip, L->xhat + k * skip, L->invstd,
                                        P_(m, L->t_bn_w), P_(m, L->t_bn_b), m->bn_sums, &b1));
        prof_add(m, L->prof_bn, 1, t0, 0);
        CALL(concat_sample(m, d, k, 1));
        zero(m->s_dcat, up_out + skip);
        t0 = now_seconds();
        CALL(conv3d_backward(m->s_dcat, G_(m, L->t_conv_w), G_(m, L->t_conv_b), m->s_dz, m->s_in,
                             P_(m, L->t_conv_w), &cs, &m->ws));
        prof_add(m, L->prof_conv, 1, t0, 2 * conv_flops(L, v));
        memcpy(g + k * skip, m->s_dcat + up_out, skip * sizeof(float));
        float *dup = m->G[d + 1] + k * up_in;
        zero(dup, up_in);
        t0 = now_seconds();
        CALL(conv_transpose3d_backward(dup, G_(m, U->t_w), G_(m, U->t_b), m->s_dcat, m->s_up,
                                       P_(m, U->t_w), &us, &m->ws));
        prof_add(m, U->prof, 1, t0, 2 * 2.0 * 8 * U->cin * U->cout * (double)m->V[d + 1]);
    }
    return GEN_OK;
}

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
    /* out_tr: MSE -> sigmoid -> 1x1 conv into G[0] = dL/d(a of LUConv 13) */
    double t0 = now_seconds();
    zero(m->dout, (size_t)n * V[0]);
    CALL(mse_backward(m->dout, m->out, m->target, (size_t)n * V[0], 1.0f));
    for (size_t j = 0; j < (size_t)n * V[0]; j++) /* sigmoid backward (in place, so not nn's +=) */
        m->dout[j] *= m->out[j] * (1.0f - m->out[j]);
    prof_add(m, m->prof_loss, 1, t0, 0);
    conv3d_shape fs = {1, 2 * c[0], 1, m->Dl[0], m->Hl[0], m->Wl[0], 1};
    for (int k = 0; k < n; k++) {
        float *dx = m->G[0] + (size_t)k * 2 * c[0] * V[0];
        lu_activation(m->s_in, m, 13, k);
        zero(dx, 2 * (size_t)c[0] * V[0]);
        t0 = now_seconds();
        CALL(conv3d_backward(dx, G_(m, m->t_final_w), G_(m, m->t_final_b), m->dout + k * V[0],
                             m->s_in, P_(m, m->t_final_w), &fs, &m->ws));
        prof_add(m, m->prof_final, 1, t0, 2 * 2.0 * 2 * c[0] * (double)V[0]);
    }
    CALL(grad_ready(m, m->t_final_w));
    /* up path: G[d] holds dL/d(a of the block's last LUConv); afterwards G[d] holds the skip's
     * gradient and G[d+1] the gradient of the LUConv below */
    for (int d = 0; d < 3; d++) {
        CALL(lu_backward(m, 13 - 2 * d, m->G[d], m->G[d], n));
        CALL(lu_backward_up(m, d, n));
        CALL(grad_ready(m, m->up[d].t_w)); /* the block's first tensor in state_dict order */
    }
    /* down path: G[l] holds dL/d(skip of level l) (l < 3) and G[l+1] dL/d(pool_l) */
    for (int l = 3; l >= 0; l--) {
        if (l < 3) {
            t0 = now_seconds();
            maxpool3d_shape ps = pool_shape(m, l, n);
            CALL(maxpool3d_backward(m->G[l], m->G[l + 1], m->argmax[l], &ps));
            prof_add(m, m->prof_pool[l], 1, t0, 0);
        }
        CALL(lu_backward(m, 2 * l + 1, m->G[l], m->G[l], n));
        CALL(lu_backward(m, 2 * l, l ? m->G[l] : m->dxin, m->G[l], n));
        CALL(grad_ready(m, m->lu[2 * l].t_conv_w));
    }
    return GEN_OK;
}
