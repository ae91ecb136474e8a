/* Threads give the same bits: every layer's forward and backward, the optimizer step, and a full
 * model step (width 4, forward + backward + SGD) at 2 and 3 threads are compared bitwise
 * (memcmp) with 1 thread, on odd sizes, at batch 1 and 2, with tiles small enough that every
 * parallel loop has more items than threads. The environment's OMP_NUM_THREADS is 1 under ctest:
 * the layers must follow nn_set_threads, not it. */
#include "check.h"
#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/nn.h"
#include "genesis/rng.h"

#include <stdint.h>
#include <string.h>

enum { MAX_OUTS = 4 };

/* Up to MAX_OUTS result tensors of one run (sizes in bytes), compared across thread counts. */
struct run {
    void *out[MAX_OUTS];
    size_t bytes[MAX_OUTS];
    int nout;
};

static rng_stream rs;

static float *rand_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = 2.0f * rng_uniform_float(&rs) - 1.0f;
    return p;
}

static float *copy_floats(const float *src, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static void keep(struct run *r, void *p, size_t bytes)
{
    r->out[r->nout] = p;
    r->bytes[r->nout++] = bytes;
}

static void free_run(struct run *r)
{
    for (int i = 0; i < r->nout; i++) free(r->out[i]);
    r->nout = 0;
}

/* Expects runs b and a to hold bitwise-equal results; frees b. */
static void expect_same(const char *what, int threads, struct run *a, struct run *b)
{
    EXPECT(a->nout == b->nout, "%s: %d vs %d results", what, a->nout, b->nout);
    for (int i = 0; i < a->nout && i < b->nout; i++)
        EXPECT(a->bytes[i] == b->bytes[i] && !memcmp(a->out[i], b->out[i], a->bytes[i]),
               "%s: result %d at %d threads differs from 1 thread", what, i, threads);
    free_run(b);
}

/* ---- convolutions ------------------------------------------------------------------------ */

/* One convolution case, plain (k 3 or 1) or transposed, with its inputs and gradient seeds. */
struct conv_case {
    int transposed;
    conv3d_shape s;              /* !transposed */
    conv_transpose3d_shape t;    /* transposed */
    size_t budget, ni, no, nw, nb; /* floats of input, output, weight, bias */
    float *inp, *weight, *bias, *dout, *dinp0, *dw0, *db0;
};

static struct run conv_run(const struct conv_case *c)
{
    size_t need = c->transposed ? conv_transpose3d_workspace_floats(&c->t, c->budget)
                                : conv3d_workspace_floats(&c->s, c->budget);
    nn_workspace ws = {malloc((need ? need : 1) * sizeof(float)), need, c->budget};
    struct run r = {0};
    float *out = malloc(c->no * sizeof *out), *dinp = copy_floats(c->dinp0, c->ni);
    float *dw = copy_floats(c->dw0, c->nw), *db = copy_floats(c->db0, c->nb);
    if (c->transposed) {
        EXPECT_OK(conv_transpose3d_forward(out, c->inp, c->weight, c->bias, &c->t, &ws));
        EXPECT_OK(conv_transpose3d_backward(dinp, dw, db, c->dout, c->inp, c->weight, &c->t, &ws));
    } else {
        EXPECT_OK(conv3d_forward(out, c->inp, c->weight, c->bias, &c->s, &ws));
        EXPECT_OK(conv3d_backward(dinp, dw, db, c->dout, c->inp, c->weight, &c->s, &ws));
    }
    keep(&r, out, c->no * sizeof *out);
    keep(&r, dinp, c->ni * sizeof *dinp);
    keep(&r, dw, c->nw * sizeof *dw);
    keep(&r, db, c->nb * sizeof *db);
    free(ws.data);
    return r;
}

/* Fills the case's tensors for N, Cin, Cout and V input voxels, runs it at 1, 2 and 3 threads. */
static void conv_compare(struct conv_case *c, int N, int Cin, int Cout, size_t V, int taps,
                         size_t out_per_in, const char *what)
{
    c->ni = (size_t)N * Cin * V, c->no = (size_t)N * Cout * V * out_per_in;
    c->nw = (size_t)Cin * Cout * taps, c->nb = (size_t)Cout;
    c->inp = rand_floats(c->ni), c->weight = rand_floats(c->nw), c->bias = rand_floats(c->nb);
    c->dout = rand_floats(c->no), c->dinp0 = rand_floats(c->ni), c->dw0 = rand_floats(c->nw);
    c->db0 = rand_floats(c->nb);
    EXPECT_OK(nn_set_threads(1));
    struct run one = conv_run(c);
    for (int t = 2; t <= 3; t++) {
        EXPECT_OK(nn_set_threads(t));
        struct run more = conv_run(c);
        expect_same(what, t, &one, &more);
    }
    free_run(&one);
    free(c->inp), free(c->weight), free(c->bias), free(c->dout), free(c->dinp0), free(c->dw0);
    free(c->db0);
}

static void test_conv3d(conv3d_shape s, size_t budget)
{
    struct conv_case c = {.s = s, .budget = budget};
    char what[96];
    snprintf(what, sizeof what, "conv3d N%d Cin%d Cout%d %dx%dx%d k%d budget %zu", s.N, s.Cin,
             s.Cout, s.D, s.H, s.W, s.k, budget);
    conv_compare(&c, s.N, s.Cin, s.Cout, (size_t)s.D * s.H * s.W, s.k * s.k * s.k, 1, what);
}

static void test_convt(conv_transpose3d_shape s, size_t budget)
{
    struct conv_case c = {.transposed = 1, .t = s, .budget = budget};
    char what[96];
    snprintf(what, sizeof what, "conv_transpose3d N%d Cin%d Cout%d %dx%dx%d budget %zu", s.N,
             s.Cin, s.Cout, s.D, s.H, s.W, budget);
    conv_compare(&c, s.N, s.Cin, s.Cout, (size_t)s.D * s.H * s.W, 8, 8, what);
}

/* ---- batch norm, elementwise layers, pooling, concat, loss, optimizer -------------------- */

/* Everything but the convolutions on one [N, C, D, H, W] tensor; `relu` for the batch norm. */
static struct run layers_run(int N, int C, int D, int H, int W, int relu, const float *x,
                             const float *g, const float *dy, const float *gamma, const float *beta)
{
    const size_t S = (size_t)D * H * W, n = (size_t)N * C * S;
    const size_t pooled = (size_t)N * C * (D / 2) * (H / 2) * (W / 2);
    batchnorm3d_shape bs = {N, C, (long)S, 0.1, 1e-5, relu};
    maxpool3d_shape ps = {N, C, D, H, W};
    struct run r = {0};
    float *bn = malloc(n * sizeof *bn), *xhat = malloc(n * sizeof *xhat);
    float *mean = malloc(C * sizeof *mean), *invstd = malloc(C * sizeof *invstd);
    float *dparams = calloc(2 * (size_t)C, sizeof *dparams);
    float *dx = copy_floats(dy, n), *act = malloc(n * sizeof *act);
    float *pool = malloc(pooled * sizeof *pool);
    uint8_t *argmax = malloc(pooled ? pooled : 1);
    float *cat = malloc(2 * n * sizeof *cat), *dcat = copy_floats(g, n);
    double *loss = malloc(sizeof *loss);
    EXPECT_OK(batchnorm3d_forward(bn, xhat, mean, invstd, NULL, NULL, x, gamma, beta, &bs, NULL));
    EXPECT_OK(batchnorm3d_backward(dx, dparams, dparams + C, g, xhat, invstd, gamma, beta, &bs,
                                   NULL));
    EXPECT_OK(relu_forward(act, x, n));
    EXPECT_OK(relu_backward(dx, g, act, n));
    EXPECT_OK(sigmoid_forward(act, x, n));
    EXPECT_OK(sigmoid_backward(dx, g, act, n));
    EXPECT_OK(maxpool3d_forward(pool, argmax, x, &ps));
    EXPECT_OK(maxpool3d_backward(dx, g, argmax, &ps));
    EXPECT_OK(concat_forward(cat, x, bn, N, C, C, (long)S));
    EXPECT_OK(concat_backward(dx, dcat, cat, N, C, C, (long)S));
    EXPECT_OK(mse_forward(loss, bn, x, n));
    EXPECT_OK(mse_backward(dx, bn, x, n, 0.5f));
    keep(&r, bn, n * sizeof *bn);
    keep(&r, dx, n * sizeof *dx);
    keep(&r, dparams, 2 * (size_t)C * sizeof *dparams);
    keep(&r, loss, sizeof *loss);
    free(xhat), free(mean), free(invstd), free(act), free(pool), free(argmax), free(cat), free(dcat);
    return r;
}

static void test_layers(int N, int C, int D, int H, int W, int relu)
{
    const size_t n = (size_t)N * C * D * H * W;
    float *x = rand_floats(n), *g = rand_floats(n), *dy = rand_floats(n);
    float *gamma = rand_floats(C), *beta = rand_floats(C);
    char what[80];
    snprintf(what, sizeof what, "layers N%d C%d %dx%dx%d relu %d", N, C, D, H, W, relu);
    EXPECT_OK(nn_set_threads(1));
    struct run one = layers_run(N, C, D, H, W, relu, x, g, dy, gamma, beta);
    for (int t = 2; t <= 3; t++) {
        EXPECT_OK(nn_set_threads(t));
        struct run more = layers_run(N, C, D, H, W, relu, x, g, dy, gamma, beta);
        expect_same(what, t, &one, &more);
    }
    free_run(&one);
    free(x), free(g), free(dy), free(gamma), free(beta);
}

static struct run optim_run(int kind, size_t n, const float *p0, const float *g)
{
    optim_config oc = {.kind = kind, .lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4,
                       .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    optimizer o = {0};
    struct run r = {0};
    float *p = copy_floats(p0, n);
    EXPECT_OK(optim_create(&o, &oc, n));
    for (int step = 0; step < 3; step++) EXPECT_OK(optim_step(&o, p, g, 0.01));
    keep(&r, p, n * sizeof *p);
    keep(&r, copy_floats(o.state, n * o.nstate), n * o.nstate * sizeof(float));
    optim_free(&o);
    return r;
}

static void test_optim(int kind)
{
    const size_t n = 10007;
    float *p = rand_floats(n), *g = rand_floats(n);
    EXPECT_OK(nn_set_threads(1));
    struct run one = optim_run(kind, n, p, g);
    for (int t = 2; t <= 3; t++) {
        EXPECT_OK(nn_set_threads(t));
        struct run more = optim_run(kind, n, p, g);
        expect_same(kind == OPTIM_SGD ? "SGD step" : "Adam step", t, &one, &more);
    }
    free_run(&one);
    free(p), free(g);
}

/* ---- the whole model ---------------------------------------------------------------------- */

static struct run model_run(int threads, int batch, const float *x, const float *target)
{
    model_config cfg = {.width = 4, .batch = batch, .D = 16, .H = 8, .W = 24, .seed = 5,
                        .input_grad = 1, .threads = threads, .tile_budget_bytes = 20000};
    struct run r = {0};
    model *m = NULL;
    EXPECT_OK(model_create(&m, &cfg));
    if (!m) return r;
    optim_config oc = {.kind = OPTIM_SGD, .lr = 0.01, .momentum = 0.9};
    optimizer o = {0};
    EXPECT_OK(optim_create(&o, &oc, model_num_params(m)));
    const size_t np = model_num_params(m), nx = (size_t)batch * 16 * 8 * 24;
    double *loss = malloc(2 * sizeof *loss);
    for (int step = 0; step < 2; step++) {
        model_zero_grad(m);
        EXPECT_OK(model_forward(m, &loss[step], x, target, batch));
        EXPECT_OK(model_backward(m));
        EXPECT_OK(optim_step(&o, model_params(m), model_grads(m), 0.01));
    }
    keep(&r, loss, 2 * sizeof *loss);
    keep(&r, copy_floats(model_params(m), np), np * sizeof(float));
    keep(&r, copy_floats(model_grads(m), np), np * sizeof(float));
    keep(&r, copy_floats(model_input_grad(m), nx), nx * sizeof(float));
    optim_free(&o);
    model_free(m);
    return r;
}

static void test_model(int batch)
{
    const size_t nx = (size_t)batch * 16 * 8 * 24;
    float *x = rand_floats(nx), *t = rand_floats(nx);
    struct run one = model_run(1, batch, x, t);
    for (int threads = 2; threads <= 3; threads++) {
        struct run more = model_run(threads, batch, x, t);
        char what[64];
        snprintf(what, sizeof what, "model step, batch %d (loss, params, grads, dx)", batch);
        expect_same(what, threads, &one, &more);
    }
    free_run(&one);
    free(x), free(t);
}

int main(void)
{
    rng_stream_init(&rs, 12, 0, 0, RNG_PURPOSE_TEST);
    EXPECT(nn_set_threads(0) == GEN_ERR_USAGE, "0 threads accepted");
    /* tiles from the budget alone (down to one row), so small shapes have many tiles */
    EXPECT_OK(conv_set_gemm_tile_voxels(1, 1 << 30));
    const conv3d_shape shapes[] = {
        {1, 3, 5, 5, 7, 3, 3},   /* Cin < Cout: forward im2col, backward-data scatter */
        {2, 6, 6, 3, 5, 7, 3},   /* Cin = Cout: scatter forward */
        {1, 9, 4, 5, 3, 5, 3},   /* Cin > Cout: flipped backward data, weight grad from dout */
        {2, 1, 7, 4, 5, 3, 3},   /* one input channel (the first layer) */
        {1, 33, 20, 3, 5, 3, 3}, /* several weight-gradient chunks */
        {2, 5, 3, 5, 3, 7, 1},   /* kernel 1 */
        {1, 7, 1, 33, 17, 9, 1}, /* kernel 1, more voxels than a chunk, one output channel */
    };
    const size_t budgets[] = {1, 3000, 0};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (size_t j = 0; j < 3; j++) test_conv3d(shapes[i], budgets[j]);
    /* the direct kernels (where the CPU has them): every k = 3 shape above, one that splits its
     * output channels between threads (one super tile, 40 channels), and one whose weight
     * gradient sums its tiles in parts */
    if (conv_direct_supported()) {
        EXPECT_OK(conv_set_direct(CONV_DIRECT_ALWAYS));
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) test_conv3d(shapes[i], 0);
        test_conv3d((conv3d_shape){1, 24, 40, 2, 5, 6, 3}, 0);
        test_conv3d((conv3d_shape){2, 5, 3, 9, 8, 33, 3}, 0); /* weight gradient in 8 parts */
        EXPECT_OK(conv_set_direct(CONV_DIRECT_AUTO));
    } else {
        printf("note: no AVX-512 here: the direct conv kernels are not tested\n");
    }
    EXPECT_OK(conv_set_gemm_tile_voxels(256, 512));
    const conv_transpose3d_shape tshapes[] = {{1, 5, 3, 3, 5, 7}, {2, 40, 3, 2, 3, 5},
                                              {1, 17, 6, 4, 4, 2}, {2, 20, 19, 2, 3, 4}};
    for (size_t i = 0; i < sizeof tshapes / sizeof tshapes[0]; i++)
        for (size_t j = 0; j < 3; j++) test_convt(tshapes[i], budgets[j]);
    test_layers(1, 5, 6, 5, 7, 1);
    test_layers(2, 3, 4, 7, 9, 0);
    test_layers(1, 2, 64, 64, 9, 1); /* more voxels than one loss chunk */
    test_optim(OPTIM_SGD);
    test_optim(OPTIM_ADAM);
    test_model(1);
    test_model(2);
    EXPECT_OK(nn_set_threads(1));
    TEST_MAIN_END();
}
