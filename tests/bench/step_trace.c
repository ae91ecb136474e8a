/* The timeline of one training step of the real model, for the cluster simulation (mpi/sim/,
 * scripts/scale_sim): which communications the step issues, in order, and the compute time
 * between them, measured on this machine.
 *
 *   build/tests/step_trace [--width W] [--batch B] [--threads T] [--size DxHxW] [--steps S]
 *                          [--clock cpu|wall] > trace.txt
 *
 * It runs zero_grad + forward + backward + an SGD step of the model (src/model) with the two hooks
 * the trainer installs (src/train/train.c): the batch-norm reduce hook (nn.h: 2C+1 doubles, in
 * every BN forward and backward) and the gradient-ready hook (model.h: every gradient at arena
 * offset >= f is final). Each hook call becomes an event line; the wall time since the previous
 * event becomes a "compute SECONDS" line. Per event the mean over S timed steps (after one
 * untimed) is printed. Lines (seconds, floats):
 *   params N | batch B | threads T | width W     the model and the measurement
 *   forward | backward                           where each pass starts
 *   compute S                                    local work between two events
 *   bn COUNT                                     one BN statistics all-reduce of COUNT doubles
 *   ready F                                      gradients at offsets >= F are final
 *   finish                                       end of backward: the trainer's gradsync_finish
 *   optim S                                      the optimizer step (SGD with momentum)
 *   scale_per_float S | reduce_per_float S       g *= 1/ranks, and a += b, per float
 * The event sequence comes from the model code itself, so it cannot drift from the trainer's.
 * Times are the CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID) with --threads 1, so that
 * other jobs on a shared machine do not inflate them; with more threads, wall time (profile_now);
 * --clock wall to compare with real runs made under the same load (scripts/scale_sim --validate).
 */
#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EVENTS_MAX = 512 };

static int use_cpu_time = -2; /* --clock cpu|wall; default: cpu at --threads 1, else wall */

static double now(void)
{
    if (!use_cpu_time) return profile_now();
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

enum event_kind { EV_FORWARD, EV_BACKWARD, EV_COMPUTE, EV_BN, EV_READY, EV_FINISH, EV_OPTIM };

struct event {
    enum event_kind kind;
    double value; /* seconds (compute, optim), doubles (bn) or the offset (ready) */
};

struct recorder {
    struct event ev[EVENTS_MAX];
    int count;
    int overflow;
    double last; /* profile_now() of the previous event */
};

static void add(struct recorder *r, enum event_kind kind, double value)
{
    if (r->count == EVENTS_MAX) {
        r->overflow = 1;
        return;
    }
    r->ev[r->count++] = (struct event){kind, value};
}

/* The compute since the previous event, then the event. */
static void mark(struct recorder *r, enum event_kind kind, double value)
{
    double t = now();
    add(r, EV_COMPUTE, t - r->last);
    add(r, kind, value);
    r->last = now();
}

static int on_bn(double *sums, int count, void *ctx)
{
    (void)sums;
    mark(ctx, EV_BN, count);
    return GEN_OK;
}

static int on_ready(void *ctx, size_t first_final)
{
    mark(ctx, EV_READY, (double)first_final);
    return GEN_OK;
}

static int one_step(model *m, optimizer *o, struct recorder *r, const float *x, const float *y, int batch)
{
    double loss = 0;
    r->count = 0;
    add(r, EV_FORWARD, 0);
    r->last = now();
    model_zero_grad(m);
    CALL(model_forward(m, &loss, x, y, batch));
    add(r, EV_COMPUTE, now() - r->last);
    add(r, EV_BACKWARD, 0);
    r->last = now();
    CALL(model_backward(m));
    mark(r, EV_FINISH, 0);
    double t0 = now();
    CALL(optim_step(o, model_params(m), model_grads(m), 0.01));
    add(r, EV_OPTIM, now() - t0);
    CHECK(!r->overflow, GEN_ERR_INTERNAL, "more than %d events in one step", EVENTS_MAX);
    return GEN_OK;
}

/* Seconds per float of g *= s and of a += b over n floats (best of 3). */
static void arithmetic_rates(size_t n, double *scale, double *reduce)
{
    float *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b);
    *scale = *reduce = 0;
    if (!a || !b) goto done;
    double best_s = 1e30, best_r = 1e30;
    for (int k = 0; k < 3; k++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++) a[i] *= 0.5f;
        double t1 = now();
        for (size_t i = 0; i < n; i++) a[i] += b[i];
        double t2 = now();
        if (t1 - t0 < best_s) best_s = t1 - t0;
        if (t2 - t1 < best_r) best_r = t2 - t1;
    }
    *scale = best_s / (double)n, *reduce = best_r / (double)n;
done:
    free(a), free(b);
}

static const char *const kind_names[] = {"forward", "backward", "compute", "bn", "ready", "finish", "optim"};

static int run(const model_config *mc, int steps)
{
    int status = GEN_OK;
    model *m = NULL;
    optimizer o;
    memset(&o, 0, sizeof o);
    struct recorder *r = calloc(1, sizeof *r);
    double *sum = calloc(EVENTS_MAX, sizeof *sum);
    size_t cube = (size_t)mc->D * mc->H * mc->W * (size_t)mc->batch;
    float *x = malloc(cube * sizeof *x), *y = malloc(cube * sizeof *y);
    CHECK_GOTO(r && sum && x && y, GEN_ERR_NOMEM, "out of memory for %zu voxels", cube);
    for (size_t i = 0; i < cube; i++) x[i] = (float)(i % 97) / 97.0f, y[i] = (float)(i % 89) / 89.0f;
    CALL_GOTO(model_create(&m, mc));
    optim_config oc = {.kind = OPTIM_SGD, .lr = 0.01, .momentum = 0.9};
    CALL_GOTO(optim_create(&o, &oc, model_num_params(m)));
    nn_reduce_hook hook = {on_bn, r};
    model_set_bn_hook(m, &hook);
    model_set_grad_ready_hook(m, on_ready, r);
    int count = -1;
    for (int s = 0; s <= steps; s++) { /* step 0 warms up */
        CALL_GOTO(one_step(m, &o, r, x, y, mc->batch));
        CHECK_GOTO(count < 0 || count == r->count, GEN_ERR_INTERNAL, "the event sequence changed");
        count = r->count;
        for (int i = 0; s > 0 && i < count; i++) sum[i] += r->ev[i].value;
    }
    double scale = 0, reduce = 0;
    arithmetic_rates(model_num_params(m), &scale, &reduce);
    printf("# genesis step trace (tests/bench/step_trace.c): one training step, mean of %d\n", steps);
    printf("params %zu\nbatch %d\nthreads %d\nwidth %d\nsize %dx%dx%d\nclock %s\n", model_num_params(m),
           mc->batch, mc->threads, mc->width, mc->D, mc->H, mc->W, use_cpu_time ? "thread_cpu" : "wall");
    for (int i = 0; i < count; i++) {
        const struct event *e = &r->ev[i];
        if (e->kind == EV_COMPUTE || e->kind == EV_OPTIM)
            printf("%s %.6f\n", kind_names[e->kind], sum[i] / steps);
        else if (e->kind == EV_BN || e->kind == EV_READY) printf("%s %.0f\n", kind_names[e->kind], e->value);
        else printf("%s\n", kind_names[e->kind]);
    }
    printf("scale_per_float %.4e\nreduce_per_float %.4e\n", scale, reduce);
cleanup:
    optim_free(&o);
    model_free(m);
    free(r), free(sum), free(x), free(y);
    return status;
}

/* A positive int, or -1. */
static int positive(const char *text)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    return end != text && *end == '\0' && v > 0 && v < 1000000 ? (int)v : -1;
}

int main(int argc, char **argv)
{
    model_config mc = {.width = 32, .batch = 1, .D = 64, .H = 64, .W = 32, .seed = 1, .threads = 1};
    int steps = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--width")) mc.width = positive(v);
        else if (!strcmp(k, "--batch")) mc.batch = positive(v);
        else if (!strcmp(k, "--threads")) mc.threads = positive(v);
        else if (!strcmp(k, "--steps")) steps = positive(v);
        else if (!strcmp(k, "--size")) sscanf(v, "%dx%dx%d", &mc.D, &mc.H, &mc.W);
        else if (!strcmp(k, "--clock")) use_cpu_time = !strcmp(v, "cpu") ? 1 : !strcmp(v, "wall") ? 0 : -1;
        else {
            fprintf(stderr, "step_trace: unknown option %s\n", k);
            return 2;
        }
    }
    if (mc.width < 1 || mc.batch < 1 || mc.threads < 1 || steps < 1) {
        fprintf(stderr, "step_trace: --width, --batch, --threads and --steps take positive integers\n");
        return 2;
    }
    if (use_cpu_time == -2) use_cpu_time = mc.threads == 1;
    if (use_cpu_time < 0) {
        fprintf(stderr, "step_trace: --clock is cpu or wall\n");
        return 2;
    }
    if (run(&mc, steps) != GEN_OK) {
        fprintf(stderr, "step_trace: %s\n", gen_error_message());
        return 1;
    }
    return 0;
}
