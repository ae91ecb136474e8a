/* The reference UNet3D of SPEC.md section 4 on the layers of src/nn, with llm.c-style arenas:
 * its forward and backward. The tensor table, the arenas and initialisation are built in
 * unet3d_build.c; the state both share is unet3d_internal.h.
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
 *   - one gradient buffer per level, G[l] = level_grad[l] [N, 2c_l, V_l]: the gradient flowing
 *     through level l is transformed in place, sample by sample (BN backward needs the whole
 *     batch's sums first, then forms one sample's dz into a one-sample scratch; the conv's input
 *     gradient for that sample overwrites the consumed slice; input and output gradients of every
 *     in-place conv have equal or smaller per-sample size). G[l] also carries the skip gradient
 *     from the up path down to the down path of level l.
 * The concat (upsampled, skip) of an up level exists for one sample at a time: the skip part is
 * recomputed from xhat, the upsampled part by the up-convolution (again in backward: ~1% more
 * FLOPs than a training step needs, for ~800 MB less at batch 6).
 * Per sample at w = 32, 64x64x32: xhat 38.7 M floats, G 11.2 M, the rest ~3 M; once: ~67 M
 * (one-sample scratches and the conv workspace); plus 3 x 19.07 M for parameters, gradients and
 * momentum. Measured: activation arena 1449 MB and peak RSS 1680 MB at batch 6 (PyTorch: 4.25 GB);
 * 657 MB / 885 MB at batch 2. Keeping whole-batch ReLU outputs, concats and ping-pong gradients
 * instead needed 2639 MB / 2870 MB at batch 6.
 *
 * Timing: each layer call is wrapped in TIMED_CALL, which adds its time and FLOPs to the layer's
 * forward or backward event of the model's profile (recomputations count where they happen). */
#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/nn.h"
#include "genesis/profile.h"
#include "model/unet3d_internal.h"

#include <string.h>

static const double BN_MOMENTUM = 0.1, BN_EPS = 1e-5;

/* CALL(expr), its wall time and `flops` (2 per multiply-add) added to profile event `event`. */
#define TIMED_CALL(m, event, flops, expr)                                                      \
    do {                                                                                       \
        const double timed_start_ = profile_now();                                             \
        CALL(expr);                                                                            \
        profile_stop(&(m)->profile, (event), timed_start_, (flops));                           \
    } while (0)

/* ---- FLOPs ---------------------------------------------------------------------------------- */

/* Forward FLOPs of one sample of LUConv L's conv, of up level d's up-convolution, of out_tr's
 * 1x1 conv. Backward: input gradient + weight gradient, twice as many. */
static double luconv_flops(const model *m, const struct luconv *L)
{
    return 2.0 * 27 * L->cin * L->cout * (double)m->V[L->level];
}
static double upconv_flops(const model *m, int d)
{
    return 2.0 * 8 * m->up[d].cin * m->up[d].cout * (double)m->V[d + 1];
}
static double final_conv_flops(const model *m) { return 2.0 * 2 * m->c[0] * (double)m->V[0]; }

double model_forward_flops_per_sample(const model *m)
{
    double f = 0;
    for (int i = 0; i < LUCONV_COUNT; i++) f += luconv_flops(m, &m->lu[i]);
    for (int d = 0; d < 3; d++) f += upconv_flops(m, d);
    f += final_conv_flops(m);
    return f;
}

/* ---- shapes ---------------------------------------------------------------------------------- */

static conv3d_shape luconv_shape(const model *m, const struct luconv *L)
{
    conv3d_shape s = {1, L->cin, L->cout, m->Dl[L->level], m->Hl[L->level], m->Wl[L->level], 3};
    return s;
}

static conv3d_shape final_conv_shape(const model *m)
{
    conv3d_shape s = {1, 2 * m->c[0], 1, m->Dl[0], m->Hl[0], m->Wl[0], 1};
    return s;
}

static batchnorm3d_shape bn_shape(const model *m, const struct luconv *L, int n)
{
    batchnorm3d_shape s = {n, L->cout, (long)m->V[L->level], BN_MOMENTUM, BN_EPS, 1};
    return s;
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

/* ---- forward ------------------------------------------------------------------------------ */

/* dst [cout, V] = ReLU(gamma * xhat + beta) of sample k of LUConv i: bit-identical to what the
 * forward's batch norm + ReLU computes. */
static void lu_activation(float *dst, const model *m, int i, int k)
{
    const struct luconv *L = &m->lu[i];
    const float *g = tensor_data(m, L->t_bn_w), *b = tensor_data(m, L->t_bn_b);
    const size_t v = m->V[L->level];
    const float *xh = L->xhat + (size_t)k * L->cout * v;
#pragma omp parallel for schedule(static) num_threads(nn_threads_for(L->cout * v))
    for (int c = 0; c < L->cout; c++) {
        const float gc = g[c], bc = b[c];
        for (size_t j = 0; j < v; j++) {
            float y = gc * xh[c * v + j] + bc;
            dst[c * v + j] = y < 0.0f ? 0.0f : y;
        }
    }
}

/* The LUConv feeding up level d's up-convolution: 7 (bottom), 9, 11. */
static int lu_below(int d) { return d == 2 ? 7 : 13 - 2 * (d + 1); }

/* One sample's concat (upsampled, skip) of up level d into s_in; s_up gets the up-convolution's
 * input (the activation of the LUConv below). event: where the up-convolution's time goes (its
 * forward, or its backward when recomputed there). */
static int concat_sample(model *m, int d, int k, int event)
{
    struct upconv *U = &m->up[d];
    lu_activation(m->s_up, m, lu_below(d), k);
    conv_transpose3d_shape us = up_shape(m, d);
    TIMED_CALL(m, event, upconv_flops(m, d),
               conv_transpose3d_forward(m->s_in, m->s_up, tensor_data(m, U->t_w),
                                        tensor_data(m, U->t_b), &us, &m->ws));
    lu_activation(m->s_in + (size_t)U->cout * m->V[d], m, 2 * d + 1, k);
    return GEN_OK;
}

/* One sample's input of LUConv i's conv: a pointer to kept data, or a recomputation in s_in.
 * event: as for concat_sample. */
static int lu_input(const float **inp, model *m, int i, int k, int event)
{
    const struct luconv *L = &m->lu[i];
    const size_t v = m->V[L->level];
    if (i == 0) {
        *inp = m->xin + (size_t)k * v;
    } else if (i < 8 && (i & 1) == 0) { /* first LUConv of a lower down level: the pooled input */
        *inp = m->pool_out[L->level - 1] + (size_t)k * L->cin * v;
    } else if (i >= 8 && (i & 1) == 0) { /* first LUConv of an up level: the concat */
        CALL(concat_sample(m, L->level, k, event));
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
    const size_t out_floats = (size_t)L->cout * m->V[L->level];
    const conv3d_shape cs = luconv_shape(m, L);
    const int upconv_event = i >= 8 ? m->up[L->level].events.forward : -1;
    for (int k = 0; k < n; k++) {
        const float *inp = NULL;
        CALL(lu_input(&inp, m, i, k, upconv_event));
        TIMED_CALL(m, L->conv.forward, luconv_flops(m, L),
                   conv3d_forward(L->xhat + k * out_floats, inp, tensor_data(m, L->t_conv_w),
                                  tensor_data(m, L->t_conv_b), &cs, &m->ws));
    }
    const batchnorm3d_shape bs = bn_shape(m, L, n);
    if (m->bn_running)
        TIMED_CALL(m, L->bn.forward, 0,
                   batchnorm3d_forward_running(NULL, L->xhat, L->invstd, L->xhat, tensor_data(m, L->t_mean),
                                               tensor_data(m, L->t_var), tensor_data(m, L->t_bn_w),
                                               tensor_data(m, L->t_bn_b), &bs));
    else
        TIMED_CALL(m, L->bn.forward, 0,
                   batchnorm3d_forward(NULL, L->xhat, NULL, L->invstd, tensor_data(m, L->t_mean),
                                       tensor_data(m, L->t_var), L->xhat, tensor_data(m, L->t_bn_w),
                                       tensor_data(m, L->t_bn_b), &bs, &m->hook));
    return GEN_OK;
}

/* Max pooling of level l's skip (the activation of LUConv 2l+1), one sample at a time. */
static int pool_forward(model *m, int l, int n)
{
    const maxpool3d_shape ps = pool_shape(m, l, 1);
    const size_t pooled = 2 * (size_t)m->c[l] * m->V[l + 1];
    for (int k = 0; k < n; k++) {
        lu_activation(m->s_in, m, 2 * l + 1, k);
        TIMED_CALL(m, m->pool[l].forward, 0,
                   maxpool3d_forward(m->pool_out[l] + k * pooled, m->argmax[l] + k * pooled,
                                     m->s_in, &ps));
    }
    return GEN_OK;
}

/* out_tr's 1x1x1 conv of the activation of LUConv 13 into out, one sample at a time. */
static int final_conv_forward(model *m, int n)
{
    const conv3d_shape fs = final_conv_shape(m);
    const size_t v = m->V[0];
    for (int k = 0; k < n; k++) {
        lu_activation(m->s_in, m, 13, k);
        TIMED_CALL(m, m->final_conv.forward, final_conv_flops(m),
                   conv3d_forward(m->out + k * v, m->s_in, tensor_data(m, m->t_final_w),
                                  tensor_data(m, m->t_final_b), &fs, &m->ws));
    }
    return GEN_OK;
}

/* out = sigmoid(out) in place; with a target, *loss = MSE(out, target) (loss may be NULL). */
static int loss_forward(model *m, double *loss, const float *target, int n)
{
    const size_t count = (size_t)n * m->V[0];
    CALL(sigmoid_forward(m->out, m->out, count));
    if (target) {
        memcpy(m->target, target, count * sizeof *target);
        double l2 = 0;
        CALL(mse_forward(&l2, m->out, m->target, count));
        if (loss) *loss = l2;
        m->has_target = 1;
    }
    return GEN_OK;
}

int model_forward(model *m, double *loss, const float *x, const float *target, int n)
{
    CHECK(m && x, GEN_ERR_USAGE, "model_forward: NULL argument");
    CHECK(n >= 1 && n <= m->cfg.batch, GEN_ERR_USAGE,
          "model_forward: batch %d outside [1, %d] (the model was built for batch %d)", n,
          m->cfg.batch, m->cfg.batch);
    CALL(nn_set_threads(m->cfg.threads)); /* the layers' count is process-wide */
    m->n_last = n;
    m->has_target = 0;
    memcpy(m->xin, x, (size_t)n * m->V[0] * sizeof *x);
    for (int l = 0; l < 4; l++) { /* down path */
        CALL(lu_forward(m, 2 * l, n));
        CALL(lu_forward(m, 2 * l + 1, n));
        if (l < 3) CALL(pool_forward(m, l, n));
    }
    for (int d = 2; d >= 0; d--) { /* up path (the concat is formed inside lu_input) */
        CALL(lu_forward(m, 12 - 2 * d, n));
        CALL(lu_forward(m, 13 - 2 * d, n));
    }
    CALL(final_conv_forward(m, n)); /* out_tr: 1x1x1 conv, sigmoid, MSE */
    TIMED_CALL(m, m->loss.forward, 0, loss_forward(m, loss, target, n));
    return GEN_OK;
}

/* ---- backward ----------------------------------------------------------------------------- */


/* s_dz = dL/dz of sample k of LUConv L from its output gradient g (the whole batch's, [n, cout,
 * V]) and the batch sums of batchnorm3d_backward_reduce in bn_sums. */
static int bn_backward_sample(model *m, const struct luconv *L, const float *g, int k, int n)
{
    const size_t out_k = (size_t)k * L->cout * m->V[L->level];
    batchnorm3d_shape b1 = bn_shape(m, L, n);
    b1.N = 1;
    nn_zero(m->s_dz, (size_t)L->cout * m->V[L->level]); /* apply accumulates */
    CALL(batchnorm3d_backward_apply(m->s_dz, g + out_k, L->xhat + out_k, L->invstd,
                                    tensor_data(m, L->t_bn_w), tensor_data(m, L->t_bn_b),
                                    m->bn_sums, &b1));
    return GEN_OK;
}

/* The batch sums of LUConv L's batch norm backward into bn_sums (and its parameter gradients). */
static int bn_backward_reduce(model *m, const struct luconv *L, const float *g, int n)
{
    const batchnorm3d_shape bs = bn_shape(m, L, n);
    CALL(batchnorm3d_backward_reduce(m->bn_sums, tensor_grad(m, L->t_bn_w), tensor_grad(m, L->t_bn_b),
                                     g, L->xhat, tensor_data(m, L->t_bn_w),
                                     tensor_data(m, L->t_bn_b), &bs, &m->hook));
    return GEN_OK;
}

/* Backward of LUConv i, whose output gradient dL/da is in g [n, cout, V]. The input gradient of
 * sample k goes to dx + k * cin * V (zeroed here, then accumulated), which may be g itself: the
 * slice of sample k is consumed (into s_dz) before it is written, and the slices written so far
 * only cover consumed samples because cin <= cout. dx NULL: no input gradient. For the first
 * LUConv of an up level, use lu_backward_up instead. */
static int lu_backward(model *m, int i, float *dx, float *g, int n)
{
    struct luconv *L = &m->lu[i];
    const size_t v = m->V[L->level];
    const conv3d_shape cs = luconv_shape(m, L);
    TIMED_CALL(m, L->bn.backward, 0, bn_backward_reduce(m, L, g, n));
    for (int k = 0; k < n; k++) {
        const size_t in_k = (size_t)k * L->cin * v;
        TIMED_CALL(m, L->bn.backward, 0, bn_backward_sample(m, L, g, k, n));
        const float *inp = NULL;
        CALL(lu_input(&inp, m, i, k, -1)); /* -1: never a concat here (lu_backward_up's) */
        if (dx) nn_zero(dx + in_k, (size_t)L->cin * v);
        TIMED_CALL(m, L->conv.backward, luconv_flops(m, L) * (dx ? 2 : 1),
                   conv3d_backward(dx ? dx + in_k : NULL, tensor_grad(m, L->t_conv_w),
                                   tensor_grad(m, L->t_conv_b), m->s_dz, inp,
                                   tensor_data(m, L->t_conv_w), &cs, &m->ws));
    }
    return GEN_OK;
}

/* Backward of the first LUConv of up level d (input: the concat), with its gradient in
 * level_grad[d]: per sample, the concat gradient is split: the skip part overwrites the sample's
 * (consumed) slice of level_grad[d] (it is the skip's gradient, used again by the down path), the
 * upsampled part goes through the up-convolution into level_grad[d+1]. */
static int lu_backward_up(model *m, int d, int n)
{
    struct luconv *L = &m->lu[12 - 2 * d];
    struct upconv *U = &m->up[d];
    const size_t v = m->V[d], up_in = (size_t)U->cin * m->V[d + 1], up_out = (size_t)U->cout * v;
    const size_t skip = (size_t)L->cout * v; /* = 2c_d V_d, the skip's size */
    float *g = m->level_grad[d];
    const conv3d_shape cs = luconv_shape(m, L);
    const conv_transpose3d_shape us = up_shape(m, d);
    TIMED_CALL(m, L->bn.backward, 0, bn_backward_reduce(m, L, g, n));
    for (int k = 0; k < n; k++) {
        TIMED_CALL(m, L->bn.backward, 0, bn_backward_sample(m, L, g, k, n));
        CALL(concat_sample(m, d, k, U->events.backward));
        nn_zero(m->s_dcat, up_out + skip);
        TIMED_CALL(m, L->conv.backward, 2 * luconv_flops(m, L),
                   conv3d_backward(m->s_dcat, tensor_grad(m, L->t_conv_w),
                                   tensor_grad(m, L->t_conv_b), m->s_dz, m->s_in,
                                   tensor_data(m, L->t_conv_w), &cs, &m->ws));
        nn_copy(g + k * skip, m->s_dcat + up_out, skip);
        float *dup = m->level_grad[d + 1] + k * up_in;
        nn_zero(dup, up_in);
        TIMED_CALL(m, U->events.backward, 2 * upconv_flops(m, d),
                   conv_transpose3d_backward(dup, tensor_grad(m, U->t_w), tensor_grad(m, U->t_b),
                                             m->s_dcat, m->s_up, tensor_data(m, U->t_w), &us,
                                             &m->ws));
    }
    return GEN_OK;
}

/* dout = dL/d(pre-sigmoid output) of the MSE loss. */
static int loss_backward(model *m, int n)
{
    const size_t count = (size_t)n * m->V[0];
    nn_zero(m->dout, count);
    CALL(mse_backward(m->dout, m->out, m->target, count, 1.0f));
#pragma omp parallel for schedule(static) num_threads(nn_threads_for(count))
    for (size_t j = 0; j < count; j++) /* sigmoid backward (in place, so not nn's +=) */
        m->dout[j] *= m->out[j] * (1.0f - m->out[j]);
    return GEN_OK;
}

/* out_tr's 1x1 conv backward into level_grad[0] = dL/d(a of LUConv 13). */
static int final_conv_backward(model *m, int n)
{
    const conv3d_shape fs = final_conv_shape(m);
    const size_t v = m->V[0], in_floats = 2 * (size_t)m->c[0] * v;
    for (int k = 0; k < n; k++) {
        float *dx = m->level_grad[0] + k * in_floats;
        lu_activation(m->s_in, m, 13, k);
        nn_zero(dx, in_floats);
        TIMED_CALL(m, m->final_conv.backward, 2 * final_conv_flops(m),
                   conv3d_backward(dx, tensor_grad(m, m->t_final_w), tensor_grad(m, m->t_final_b),
                                   m->dout + k * v, m->s_in, tensor_data(m, m->t_final_w), &fs,
                                   &m->ws));
    }
    return GEN_OK;
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
    CHECK(!m->bn_running, GEN_ERR_USAGE,
          "model_backward: batch norm uses the running estimates (model_set_bn_running): no backward");
    CALL(nn_set_threads(m->cfg.threads));
    const int n = m->n_last;
    float *const *G = m->level_grad;
    /* out_tr: MSE -> sigmoid -> 1x1 conv into G[0] = dL/d(a of LUConv 13) */
    TIMED_CALL(m, m->loss.backward, 0, loss_backward(m, n));
    CALL(final_conv_backward(m, n));
    CALL(grad_ready(m, m->t_final_w));
    /* up path: G[d] holds dL/d(a of the block's last LUConv); afterwards G[d] holds the skip's
     * gradient and G[d+1] the gradient of the LUConv below */
    for (int d = 0; d < 3; d++) {
        CALL(lu_backward(m, 13 - 2 * d, G[d], G[d], n));
        CALL(lu_backward_up(m, d, n));
        CALL(grad_ready(m, m->up[d].t_w)); /* the block's first tensor in state_dict order */
    }
    /* down path: G[l] holds dL/d(skip of level l) (l < 3) and G[l+1] dL/d(pool_l) */
    for (int l = 3; l >= 0; l--) {
        if (l < 3) {
            const maxpool3d_shape ps = pool_shape(m, l, n);
            TIMED_CALL(m, m->pool[l].backward, 0, maxpool3d_backward(G[l], G[l + 1], m->argmax[l], &ps));
        }
        CALL(lu_backward(m, 2 * l + 1, G[l], G[l], n));
        CALL(lu_backward(m, 2 * l, l ? G[l] : m->dxin, G[l], n));
        CALL(grad_ready(m, m->lu[2 * l].t_conv_w));
    }
    return GEN_OK;
}
