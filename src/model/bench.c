/* The training-step benchmark behind `genesis bench`: per-layer forward/backward time and GFLOP/s,
 * whole step time, samples/s, GFLOP/s (SPEC.md's nominal ~244 GFLOP forward per 64x64x32 sample,
 * 3x per step), OpenBLAS's own sgemm 2048^3 in the same run as the ceiling, and peak RSS. */
#include "genesis/blas_core.h"
#include "genesis/config.h"
#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/profile.h"
#include "genesis/rng.h"

#include <cblas.h> /* Debian's (OpenBLAS) declares openblas_get_corename, openblas_get_num_threads */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double peak_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

void model_bench_defaults(model_bench_options *o)
{
    memset(o, 0, sizeof *o);
    o->width = 32;
    o->batch = 2;
    o->D = 64, o->H = 64, o->W = 32;
    o->steps = 3;
    o->warmup = 1;
    o->per_layer = 1;
    o->sgemm = 1;
    o->seed = 1;
    o->threads = 1;
}

/* Best of 5 timed runs of C = A B, 2048^3 (after one untimed run), on `threads` OpenBLAS
 * threads, or `*gflops` if that is higher (the caller measures before and after the steps, so a
 * slow spell of a shared machine at either end does not lower the ceiling); OpenBLAS is left at
 * one thread (the layers' setting, nn.h). */
static int sgemm_gflops(double *gflops, int threads)
{
    const int n = 2048;
    const size_t bytes = (size_t)n * n * sizeof(float);
    int status = GEN_OK;
    float *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes);
    CHECK_GOTO(a && b && c, GEN_ERR_NOMEM,
               "out of memory allocating 3 x %zu bytes for the sgemm ceiling", bytes);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f, c[i] = 0;
    double best = 1e30;
    openblas_set_num_threads(threads);
    for (int r = 0; r < 6; r++) {
        double t0 = profile_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = profile_now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    double g = 2.0 * n * (double)n * n / best * 1e-9;
    if (g > *gflops) *gflops = g;
cleanup:
    openblas_set_num_threads(1);
    free(a), free(b), free(c);
    return status;
}

static int bench_check(const model_bench_options *o)
{
    CHECK(o->width >= 1 && o->batch >= 1 && o->steps >= 1 && o->warmup >= 0, GEN_ERR_USAGE,
          "bench: width %d, batch %d, steps %d must be >= 1 and warm-up %d >= 0", o->width,
          o->batch, o->steps, o->warmup);
    CHECK(o->width <= CONFIG_WIDTH_MAX, GEN_ERR_USAGE, "bench: width %d must be in [1, %d] (as [model] width)",
          o->width, CONFIG_WIDTH_MAX);
    CHECK(o->threads >= 1 && o->threads <= NN_THREADS_MAX, GEN_ERR_USAGE,
          "bench: threads %d must be in [1, %d]", o->threads, NN_THREADS_MAX);
    return GEN_OK;
}

/* The per-layer table: milliseconds and GFLOP/s per timed step, forward and backward. */
static void print_layers(const model *m, int steps, FILE *out)
{
    fprintf(out, "%-32s %10s %8s %10s %8s\n", "layer (per step)", "fwd ms", "GFLOP/s", "bwd ms",
            "GFLOP/s");
    double fs = 0, bs = 0;
    for (int i = 0; i < model_layer_count(m); i++) {
        const model_layer_profile *p = model_layer_profile_at(m, i);
        fs += p->fwd_seconds, bs += p->bwd_seconds;
        char fg[16] = "", bg[16] = "";
        if (p->fwd_flops > 0) snprintf(fg, sizeof fg, "%.1f", p->fwd_flops / p->fwd_seconds * 1e-9);
        if (p->bwd_flops > 0) snprintf(bg, sizeof bg, "%.1f", p->bwd_flops / p->bwd_seconds * 1e-9);
        fprintf(out, "%-32s %10.1f %8s %10.1f %8s\n", p->name, 1e3 * p->fwd_seconds / steps, fg,
                1e3 * p->bwd_seconds / steps, bg);
    }
    fprintf(out, "%-32s %10.1f %8s %10.1f\n", "sum of layers", 1e3 * fs / steps, "", 1e3 * bs / steps);
}

/* The summary and the machine-readable lines (model.h), from the mean and best step seconds. */
static void print_summary(const model_bench_options *o, const model *m, double mean, double best,
                          double ceiling, FILE *out)
{
    /* SPEC.md: ~244 GFLOP per 64x64x32 sample at w = 32; scales with voxels and w^2 */
    double nominal = 244e9 * ((double)o->D * o->H * o->W / (64.0 * 64 * 32)) *
                     ((double)o->width * o->width / (32.0 * 32.0));
    double counted = model_forward_flops_per_sample(m);
    double gf = 3 * nominal * o->batch / mean * 1e-9;
    fprintf(out, "forward GFLOP per sample: nominal %.1f (SPEC.md, scaled to this input), "
            "counted %.1f (convolutions, padding taps included)\n", nominal * 1e-9, counted * 1e-9);
    fprintf(out, "training step: mean %.3f s, best %.3f s; %.4f samples/s; %.1f GFLOP/s nominal "
            "(3x forward)", mean, best, o->batch / mean, gf);
    if (ceiling > 0) fprintf(out, " = %.0f%% of sgemm", 100 * gf / ceiling);
    fprintf(out, "\n");
    fprintf(out, "peak RSS %.0f MB (batch %d)\n", peak_rss_mb(), o->batch);
    fprintf(out, "samples_per_s: %.6f\nstep_seconds: %.6f\n", o->batch / mean, mean);
    fprintf(out, "samples_per_s_best: %.6f\nstep_seconds_best: %.6f\n", o->batch / best, best);
    fprintf(out, "peak_rss_mb: %.0f\nthreads: %d\n", peak_rss_mb(), o->threads);
    if (ceiling > 0) fprintf(out, "sgemm_gflops: %.2f\n", ceiling);
}

int model_bench(const model_bench_options *o, FILE *out)
{
    CHECK(o && out, GEN_ERR_USAGE, "model_bench: NULL argument");
    CALL(bench_check(o));
    double ceiling = 0;
    fprintf(out, "genesis bench: width %d, batch %d, input %dx%dx%d, %d warm-up + %d timed steps\n",
            o->width, o->batch, o->D, o->H, o->W, o->warmup, o->steps);
    fprintf(out, "threads %d (OpenMP in the layers, one-thread GEMMs); conv engine %s; "
            "OpenBLAS core %s%s\n", o->threads, conv_engine_name(), openblas_get_corename(),
            blas_core_note());
    if (o->sgemm) {
        CALL(sgemm_gflops(&ceiling, o->threads));
        fprintf(out, "sgemm 2048^3 at %d OpenBLAS thread(s): %.1f GFLOP/s (ceiling, same run)\n",
                o->threads, ceiling);
    }
    int status = GEN_OK;
    model_config cfg = {.width = o->width, .batch = o->batch, .D = o->D, .H = o->H, .W = o->W,
                        .seed = o->seed, .threads = o->threads};
    model *m = NULL;
    float *x = NULL, *t = NULL;
    optimizer opt = {0};
    CALL_GOTO(model_create(&m, &cfg));
    const size_t V = (size_t)o->batch * o->D * o->H * o->W;
    x = malloc(V * sizeof *x), t = malloc(V * sizeof *t);
    CHECK_GOTO(x && t, GEN_ERR_NOMEM, "out of memory for the bench batch");
    optim_config oc = {.kind = OPTIM_SGD, .lr = 0.01, .momentum = 0.9};
    CALL_GOTO(optim_create(&opt, &oc, model_num_params(m)));
    rng_stream rs;
    rng_stream_init(&rs, o->seed, 0, 0, RNG_PURPOSE_TEST);
    for (size_t i = 0; i < V; i++) {
        x[i] = rng_uniform_float(&rs);
        t[i] = 0.5f * x[i] + 0.5f * rng_uniform_float(&rs);
    }
    fprintf(out, "parameters %zu; activation arena %.1f MB\n", model_num_params(m),
            (double)model_activation_bytes(m) / 1048576.0);
    double loss = 0, total = 0, best = 1e30;
    for (int s = 0; s < o->warmup + o->steps; s++) {
        if (s == o->warmup) model_profile_reset(m);
        double t0 = profile_now();
        model_zero_grad(m);
        CALL_GOTO(model_forward(m, &loss, x, t, o->batch));
        CALL_GOTO(model_backward(m));
        CALL_GOTO(optim_step(&opt, model_params(m), model_grads(m), oc.lr));
        double dt = profile_now() - t0;
        fprintf(out, "step %d%s: %.3f s, loss %.6f\n", s, s < o->warmup ? " (warm-up)" : "", dt, loss);
        fflush(out);
        if (s >= o->warmup) {
            total += dt;
            if (dt < best) best = dt;
        }
    }
    if (o->sgemm) {
        double before = ceiling;
        CALL_GOTO(sgemm_gflops(&ceiling, o->threads));
        fprintf(out, "sgemm 2048^3 again after the steps: best %.1f GFLOP/s (before %.1f)\n", ceiling,
                before);
    }
    if (o->per_layer) print_layers(m, o->steps, out);
    print_summary(o, m, total / o->steps, best, ceiling, out);
cleanup:
    optim_free(&opt);
    free(x), free(t);
    model_free(m);
    return status;
}
