/* Element-wise and data-movement layers: ReLU, sigmoid, maxpool3d(2), channel concat, MSE.
 * Shapes and conventions: include/genesis/nn.h. Backward functions accumulate (+=).
 * Threads: static partitions of elements or (n, c) volumes; the MSE sum in fixed chunks. */
#include "genesis/error.h"
#include "genesis/nn.h"

#include "nn/threads_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a static partition of the loop that follows, over nn_threads_for(elements) threads */
#define PRAGMA(x) _Pragma(#x)
#define PARALLEL_FOR(elements) PRAGMA(omp parallel for schedule(static) num_threads(nn_threads_for(elements)))

void nn_zero(float *p, size_t n)
{
PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++) p[i] = 0.0f;
}

void nn_copy(float *restrict dst, const float *restrict src, size_t n)
{
PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

int relu_forward(float *out, const float *inp, size_t n)
{
    CHECK(out && inp, GEN_ERR_USAGE, "relu_forward: NULL tensor");
PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x < 0.0f ? 0.0f : x; /* NaN stays NaN */
    }
    return GEN_OK;
}

int relu_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    CHECK(dinp && dout && out, GEN_ERR_USAGE, "relu_backward: NULL tensor");
PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
    return GEN_OK;
}

int sigmoid_forward(float *out, const float *inp, size_t n)
{
    CHECK(out && inp, GEN_ERR_USAGE, "sigmoid_forward: NULL tensor");
PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-inp[i]));
    return GEN_OK;
}

int sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    CHECK(dinp && dout && out, GEN_ERR_USAGE, "sigmoid_backward: NULL tensor");
PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
    return GEN_OK;
}

static int maxpool3d_check(const maxpool3d_shape *s, const char *who)
{
    CHECK(s != NULL, GEN_ERR_USAGE, "%s: NULL shape", who);
    CHECK(s->N > 0 && s->C > 0 && s->D >= 2 && s->H >= 2 && s->W >= 2, GEN_ERR_USAGE,
          "%s: bad shape N=%d C=%d D=%d H=%d W=%d (need N, C >= 1 and D, H, W >= 2)", who, s->N,
          s->C, s->D, s->H, s->W);
    return GEN_OK;
}

int maxpool3d_forward(float *out, uint8_t *argmax, const float *inp, const maxpool3d_shape *s)
{
    CALL(maxpool3d_check(s, "maxpool3d_forward"));
    CHECK(out && argmax && inp, GEN_ERR_USAGE, "maxpool3d_forward: NULL tensor");
    const int D = s->D, H = s->H, W = s->W;
    const int Do = D / 2, Ho = H / 2, Wo = W / 2;
    const size_t in_plane = (size_t)D * H * W, out_plane = (size_t)Do * Ho * Wo;
PARALLEL_FOR((size_t)s->N * s->C * s->D * s->H * s->W)
    for (size_t p = 0; p < (size_t)s->N * s->C; p++) { /* one (n, c) volume at a time */
        const float *x = inp + p * in_plane;
        for (int od = 0; od < Do; od++)
            for (int oh = 0; oh < Ho; oh++) {
                /* the window's four input rows, in the order k = (dd * 2 + dh) * 2 + dw */
                const float *r[4];
                for (int j = 0; j < 4; j++)
                    r[j] = x + ((size_t)(2 * od + (j >> 1)) * H + 2 * oh + (j & 1)) * W;
                float *y = out + p * out_plane + ((size_t)od * Ho + oh) * Wo;
                uint8_t *am = argmax + p * out_plane + ((size_t)od * Ho + oh) * Wo;
                for (int ow = 0; ow < Wo; ow++) {
                    /* PyTorch's rule: scan k = 0..7, take v if v > best or v is NaN (so the
                     * first maximum wins, and the last NaN) */
                    float best = -INFINITY;
                    int best_k = 0;
                    for (int k = 0; k < 8; k++) {
                        float v = r[k >> 1][2 * ow + (k & 1)];
                        if (v > best || v != v) best = v, best_k = k;
                    }
                    y[ow] = best;
                    am[ow] = (uint8_t)best_k;
                }
            }
    }
    return GEN_OK;
}

int maxpool3d_backward(float *dinp, const float *dout, const uint8_t *argmax,
                       const maxpool3d_shape *s)
{
    CALL(maxpool3d_check(s, "maxpool3d_backward"));
    CHECK(dinp && dout && argmax, GEN_ERR_USAGE, "maxpool3d_backward: NULL tensor");
    const int D = s->D, H = s->H, W = s->W;
    const int Do = D / 2, Ho = H / 2, Wo = W / 2;
    const size_t in_plane = (size_t)D * H * W, out_plane = (size_t)Do * Ho * Wo;
PARALLEL_FOR((size_t)s->N * s->C * s->D * s->H * s->W)
    for (size_t p = 0; p < (size_t)s->N * s->C; p++) {
        float *dx = dinp + p * in_plane;
        const float *dy = dout + p * out_plane;
        const uint8_t *am = argmax + p * out_plane;
        for (int od = 0; od < Do; od++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    size_t o = ((size_t)od * Ho + oh) * Wo + ow;
                    int k = am[o];
                    DEBUG_ASSERT(k < 8); /* maxpool3d_forward writes 0..7 */
                    int d = 2 * od + (k >> 2), h = 2 * oh + ((k >> 1) & 1), w = 2 * ow + (k & 1);
                    dx[((size_t)d * H + h) * W + w] += dy[o];
                }
    }
    return GEN_OK;
}

int concat_forward(float *out, const float *a, const float *b, int N, int Ca, int Cb, long S)
{
    CHECK(out && a && b, GEN_ERR_USAGE, "concat_forward: NULL tensor");
    CHECK(N > 0 && Ca > 0 && Cb > 0 && S > 0, GEN_ERR_USAGE,
          "concat_forward: bad shape N=%d Ca=%d Cb=%d S=%ld", N, Ca, Cb, S);
    const int C = Ca + Cb;
PARALLEL_FOR((size_t)N * C * S)
    for (int nc = 0; nc < N * C; nc++) { /* one channel of one sample */
        const int n = nc / C, c = nc % C;
        const float *src = c < Ca ? a + ((size_t)n * Ca + c) * S : b + ((size_t)n * Cb + c - Ca) * S;
        memcpy(out + (size_t)nc * S, src, (size_t)S * sizeof *out);
    }
    return GEN_OK;
}

int concat_backward(float *da, float *db, const float *dout, int N, int Ca, int Cb, long S)
{
    CHECK(dout != NULL, GEN_ERR_USAGE, "concat_backward: NULL dout");
    CHECK(N > 0 && Ca > 0 && Cb > 0 && S > 0, GEN_ERR_USAGE,
          "concat_backward: bad shape N=%d Ca=%d Cb=%d S=%ld", N, Ca, Cb, S);
    const int C = Ca + Cb;
PARALLEL_FOR((size_t)N * C * S)
    for (int nc = 0; nc < N * C; nc++) { /* one channel of one sample */
        const int n = nc / C, c = nc % C;
        float *dst = c < Ca ? da ? da + ((size_t)n * Ca + c) * S : NULL
                            : db ? db + ((size_t)n * Cb + c - Ca) * S : NULL;
        const float *g = dout + (size_t)nc * S;
        if (dst)
            for (long i = 0; i < S; i++) dst[i] += g[i];
    }
    return GEN_OK;
}

int mse_forward(double *loss, const float *pred, const float *target, size_t n)
{
    CHECK(loss && pred && target, GEN_ERR_USAGE, "mse_forward: NULL argument");
    CHECK(n > 0, GEN_ERR_USAGE, "mse_forward: empty tensors");
    /* partial sums of fixed chunks of NN_SUM_CHUNK elements, added in chunk order */
    const size_t chunks = (n + NN_SUM_CHUNK - 1) / NN_SUM_CHUNK;
    double *part = malloc(chunks * sizeof *part);
    CHECK(part != NULL, GEN_ERR_NOMEM, "mse_forward: out of memory for %zu partial sums", chunks);
PARALLEL_FOR(n)
    for (size_t k = 0; k < chunks; k++) {
        const size_t i1 = (k + 1) * NN_SUM_CHUNK < n ? (k + 1) * NN_SUM_CHUNK : n;
        double sum = 0.0;
        for (size_t i = k * NN_SUM_CHUNK; i < i1; i++) {
            double d = (double)pred[i] - (double)target[i];
            sum += d * d;
        }
        part[k] = sum;
    }
    double sum = 0.0;
    for (size_t k = 0; k < chunks; k++) sum += part[k];
    free(part);
    *loss = sum / (double)n;
    return GEN_OK;
}

int mse_backward(float *dpred, const float *pred, const float *target, size_t n, float dloss)
{
    CHECK(dpred && pred && target, GEN_ERR_USAGE, "mse_backward: NULL argument");
    CHECK(n > 0, GEN_ERR_USAGE, "mse_backward: empty tensors");
    const float scale = (float)(2.0 * (double)dloss / (double)n);
PARALLEL_FOR(n)
    for (size_t i = 0; i < n; i++) dpred[i] += scale * (pred[i] - target[i]);
    return GEN_OK;
}
