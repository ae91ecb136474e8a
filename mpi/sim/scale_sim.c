/* One training step of genesis on a simulated cluster (SimGrid SMPI), replaying the trainer's own
 * communication code: mpi/gradsync.c (buckets, non-blocking all-reduce, overlap, the synchronised
 * batch-norm hook) and mpi/collective.c (the loss mean and the stop agreement), compiled unchanged
 * with smpicc (scripts/scale_sim builds it). Compute is not run: the time between two
 * communications is injected (smpi_execute) from a step trace measured on a real node
 * (tests/bench/step_trace), so 1024 ranks simulate in seconds.
 *
 *   smpirun -np P -platform X.xml -hostfile H scale_sim --trace T1 [--trace2 T2] [options]
 *
 * The step, in the trainer's order (src/train/train.c, train_step and run):
 *   data       loader_next: --data-seconds of local work; every --window-steps steps the window of
 *              the next steps is read by a collective H5Dread (src/io/cubes.c), modelled as ROMIO's
 *              two-phase read of this rank's cubes (--sample-bytes x batch x window): the access
 *              exchange and the data redistribution from the aggregators (collective_read); the
 *              file itself is a node-local copy (README "Parallel and network file systems"), its
 *              read time is part of --data-seconds.
 *   forward    the trace's compute segments and its BN all-reduces (gradsync_bn_allreduce), only
 *              when P > 1, as the trainer installs the hook only then
 *   backward   compute, BN all-reduces and gradsync_ready(first_final) at each block's end
 *   finish     gradsync_finish, then its 1/P scaling as injected compute (see below)
 *   optim      the optimizer step
 *   agreement  world_sum_doubles(loss) and world_max_ints(checkpoint/stop): 2 small all-reduces
 * Two steps are simulated: one that reads a window and one that does not; the mean step is
 * (read + (W - 1) x plain) / W.
 *
 * Trace times are for the trace's batch and threads; --batch b scales each segment linearly
 * between the batch-1 and batch-2 traces (t1 + (b - 1)(t2 - t1)); --speedup s divides compute by
 * the threads' speed-up over the trace's threads; --serial-speedup divides the single-threaded work
 * (libnbc's reductions, the staging copies, the 1/P scaling: one thread in the real trainer too).
 *
 * The gradient scaling loop of gradsync_finish (g->grads[i] *= 1/P over every parameter) is the only
 * arithmetic of gradsync.c: the driver sets g.n = 0 after gradsync_init (n is used by nothing but
 * that loop) and injects n x scale_per_float seconds instead, so that 1024 simulated ranks do not
 * each run a 19 M-float loop on this machine. Likewise the copies into the staging send buffer
 * (from GRADSYNC_STAGING_RANKS ranks on) are charged once per step at the finish, and scale_sim runs
 * with smpi/auto-shared-malloc-thresh so that the staging buffer, like the gradient arena, is one
 * shared mapping for all simulated ranks.
 *
 * --fold K: gradsync.c is compiled with MPI_FLOAT as sim_float_block (-DSIM_FOLD_FLOAT), K floats
 * made here, and sees an arena of ceil(n / K) "floats" and buckets of bucket / K: the same bytes move
 * in the same buckets (a bucket boundary moves by less than K floats), but each simulated rank maps
 * K times less memory (SMPI's shared allocations are populated per rank). Default: the largest
 * power of 2 up to 256 that keeps a bucket at >= 1024 (gradsync's minimum); --fold 1 is exact.
 */
#include "genesis/collective.h"
#include "genesis/error.h"
#include "genesis/gradsync.h"
#include "genesis/world.h"
#include "nbc_allreduce.h"

#include <smpi/smpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the parts of mpi/world.c that gradsync.c and collective.c use (world.c itself pulls in
 * HDF5, BLAS and the logger) ---- */
static int rank_, size_ = 1;
int world_rank(void) { return rank_; }
int world_size(void) { return size_; }
int world_mpi_error(int mpi_code, const char *what, const char *file, int line)
{
    return gen_error_set(GEN_ERR_MPI, file, line, "MPI call failed: %s: code %d", what, mpi_code);
}

MPI_Datatype sim_float_block; /* K floats: gradsync.c's MPI_FLOAT in the simulation build */

/* ---- the step trace ---- */
enum { EVENTS_MAX = 512 };
enum kind { FORWARD, BACKWARD, COMPUTE, BN, READY, FINISH, OPTIM };

struct trace {
    int count;
    enum kind kind[EVENTS_MAX];
    double value[EVENTS_MAX];
    size_t params;
    double scale_per_float, reduce_per_float;
};

static int read_trace(const char *path, struct trace *t)
{
    static const char *const names[] = {"forward", "backward", "compute", "bn", "ready", "finish", "optim"};
    FILE *f = fopen(path, "r");
    CHECK(f, GEN_ERR_IO, "cannot open the step trace %s", path);
    memset(t, 0, sizeof *t);
    char line[256], word[64];
    double v;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        int fields = sscanf(line, "%63s %lf", word, &v);
        if (fields < 1) continue;
        if (!strcmp(word, "params")) t->params = (size_t)v;
        else if (!strcmp(word, "scale_per_float")) t->scale_per_float = v;
        else if (!strcmp(word, "reduce_per_float")) t->reduce_per_float = v;
        for (int k = 0; k <= OPTIM; k++)
            if (!strcmp(word, names[k]) && t->count < EVENTS_MAX)
                t->kind[t->count] = (enum kind)k, t->value[t->count++] = fields == 2 ? v : 0;
    }
    fclose(f);
    CHECK(t->params > 0 && t->count > 0, GEN_ERR_DATA, "%s: not a step trace (no params or events)", path);
    return GEN_OK;
}

struct options {
    const char *trace1, *trace2;
    int batch, bucket_kib, overlap, window_steps, sync_bn, read_exchange, fold;
    double speedup, serial_speedup, data_seconds, sample_bytes;
};

/* Compute seconds of event i at the simulated batch and threads. */
static double seconds_at(const struct options *o, const struct trace *t1, const struct trace *t2, int i)
{
    double s = t1->value[i];
    if (t2) s += (o->batch - 1) * (t2->value[i] - t1->value[i]);
    return s > 0 ? s / o->speedup : 0;
}

struct totals {
    double step[2], wait[2], bn[2];
};

/* ROMIO's two-phase collective read of this rank's window, as the network sees it: the exchange of
 * the access lists (MPI_Alltoall of one int per pair), then each of this rank's cubes (batch x
 * window of them, --sample-bytes each) comes from the aggregator that read its file domain; the
 * cubes are in random order, so they come from aggregators spread over the job: cube k of rank r
 * from rank r + 1 + k P / cubes (mod P), and rank r serves the mirror image. */
static int collective_read(const struct options *o)
{
    int *counts = calloc((size_t)size_, sizeof *counts);
    CHECK(counts, GEN_ERR_NOMEM, "out of memory");
    int rc = MPI_Alltoall(MPI_IN_PLACE, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD);
    free(counts);
    CHECK(rc == MPI_SUCCESS, GEN_ERR_MPI, "MPI_Alltoall failed");
    if (!o->read_exchange || size_ == 1) return GEN_OK;
    int cubes = o->batch * o->window_steps, bytes = (int)o->sample_bytes;
    size_t window = (size_t)bytes * (size_t)cubes;
    char *send = SMPI_SHARED_MALLOC(window), *recv = SMPI_SHARED_MALLOC(window);
    MPI_Request *q = malloc(sizeof *q * (size_t)(2 * cubes));
    CHECK(send && recv && q, GEN_ERR_NOMEM, "out of memory");
    for (int k = 0; k < cubes && rc == MPI_SUCCESS; k++) {
        int hop = 1 + (int)((long long)k * size_ / cubes) % (size_ - 1 > 0 ? size_ - 1 : 1);
        rc = MPI_Irecv(recv + (size_t)k * (size_t)bytes, bytes, MPI_BYTE, (rank_ + hop) % size_, 900 + k,
                       MPI_COMM_WORLD, &q[2 * k]);
        if (rc == MPI_SUCCESS)
            rc = MPI_Isend(send + (size_t)k * (size_t)bytes, bytes, MPI_BYTE, (rank_ - hop + size_) % size_,
                           900 + k, MPI_COMM_WORLD, &q[2 * k + 1]);
    }
    if (rc == MPI_SUCCESS) rc = MPI_Waitall(2 * cubes, q, MPI_STATUSES_IGNORE);
    free(q);
    SMPI_SHARED_FREE(send);
    SMPI_SHARED_FREE(recv);
    CHECK(rc == MPI_SUCCESS, GEN_ERR_MPI, "the collective read's exchange failed");
    return GEN_OK;
}

static int one_step(const struct options *o, const struct trace *t1, const struct trace *t2, gradsync *g,
                    int reads, struct totals *tot, int which)
{
    static double bn_sums[4096];
    double t0 = MPI_Wtime(), wait0 = g->wait_seconds, bn0 = g->bn_seconds;
    if (o->data_seconds > 0) smpi_execute(o->data_seconds);
    if (reads) CALL(collective_read(o));
    for (int i = 0; i < t1->count; i++) {
        switch (t1->kind[i]) {
        case COMPUTE:
        case OPTIM: {
            double s = seconds_at(o, t1, t2, i);
            if (s > 0) smpi_execute(s);
            break;
        }
        case BN:
            if (size_ > 1 && o->sync_bn) CALL(gradsync_bn_allreduce(bn_sums, (int)t1->value[i], g));
            break;
        case READY: CALL(gradsync_ready(g, (size_t)t1->value[i] / (size_t)o->fold)); break;
        case FINISH:
            CALL(gradsync_finish(g));
            if (size_ > 1) smpi_execute((double)t1->params * t1->scale_per_float / o->serial_speedup);
            if (g->staging) /* the copies into the send buffer */
                smpi_execute((double)t1->params * t1->scale_per_float / o->serial_speedup);
            break;
        default: break;
        }
    }
    double loss = 1;
    int decision[2] = {0, 0};
    CALL(world_sum_doubles(&loss, 1));
    CALL(world_max_ints(decision, 2));
    tot->step[which] = MPI_Wtime() - t0;
    tot->wait[which] = g->wait_seconds - wait0;
    tot->bn[which] = g->bn_seconds - bn0;
    return GEN_OK;
}

static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.fold = 0, .batch = 1, .bucket_kib = 8192, .overlap = 1, .window_steps = 16,
                          .sync_bn = 1,
                          .read_exchange = 1, .speedup = 1, .serial_speedup = 1, .sample_bytes = 512 * 1024};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        char *end = NULL;
        double x = strtod(v, &end);
        int number = end != v && *end == '\0';
        if (!strcmp(k, "--trace")) o->trace1 = v;
        else if (!strcmp(k, "--trace2")) o->trace2 = v;
        else if (!number) FAIL(GEN_ERR_USAGE, "scale_sim: %s needs a number, not '%s'", k, v);
        else if (!strcmp(k, "--batch")) o->batch = (int)x;
        else if (!strcmp(k, "--bucket-kib")) o->bucket_kib = (int)x;
        else if (!strcmp(k, "--overlap")) o->overlap = (int)x;
        else if (!strcmp(k, "--window-steps")) o->window_steps = (int)x;
        else if (!strcmp(k, "--sync-bn")) o->sync_bn = (int)x;
        else if (!strcmp(k, "--read-exchange")) o->read_exchange = (int)x;
        else if (!strcmp(k, "--fold")) o->fold = (int)x;
        else if (!strcmp(k, "--speedup")) o->speedup = x;
        else if (!strcmp(k, "--serial-speedup")) o->serial_speedup = x;
        else if (!strcmp(k, "--data-seconds")) o->data_seconds = x;
        else if (!strcmp(k, "--sample-bytes")) o->sample_bytes = x;
        else FAIL(GEN_ERR_USAGE, "scale_sim: unknown option %s", k);
    }
    CHECK(o->trace1, GEN_ERR_USAGE, "scale_sim: --trace FILE is required");
    CHECK(o->batch >= 1 && o->speedup > 0 && o->window_steps >= 1 && o->bucket_kib >= 1, GEN_ERR_USAGE,
          "scale_sim: batch, speedup, window-steps and bucket-kib must be positive");
    return GEN_OK;
}

static int run(int argc, char **argv)
{
    struct options o;
    CALL(parse(argc, argv, &o));
    static struct trace t1, t2; /* per simulated rank (SMPI privatises globals) */
    CALL(read_trace(o.trace1, &t1));
    if (o.trace2) {
        CALL(read_trace(o.trace2, &t2));
        CHECK(t2.count == t1.count && !memcmp(t1.kind, t2.kind, sizeof(enum kind) * (size_t)t1.count),
              GEN_ERR_DATA, "the traces %s and %s have different event sequences", o.trace1, o.trace2);
    }
    size_t bucket_floats = (size_t)o.bucket_kib * 1024 / sizeof(float);
    if (o.fold <= 0)
        for (o.fold = 256; o.fold > 1 && bucket_floats / (size_t)o.fold < 1024;) o.fold /= 2;
    CHECK(bucket_floats % (size_t)o.fold == 0 && bucket_floats / (size_t)o.fold >= 1024, GEN_ERR_USAGE,
          "scale_sim: --fold %d must divide the bucket (%zu floats) and leave >= 1024", o.fold, bucket_floats);
    MPI_Type_contiguous(o.fold, MPI_FLOAT, &sim_float_block);
    MPI_Type_commit(&sim_float_block);
    nbc_set_reduce_cost(t1.reduce_per_float * o.fold / o.serial_speedup); /* per element of K floats */
    size_t folded = (t1.params + (size_t)o.fold - 1) / (size_t)o.fold;
    float *grads = SMPI_SHARED_MALLOC(folded * sizeof *grads);
    gradsync g;
    CALL(gradsync_init(&g, grads, folded, bucket_floats / (size_t)o.fold, o.overlap));
    g.n = 0; /* the 1/P scaling loop is injected, see the header */
    struct totals tot = {0};
    CALL(one_step(&o, &t1, o.trace2 ? &t2 : NULL, &g, 1, &tot, 0));
    CALL(one_step(&o, &t1, o.trace2 ? &t2 : NULL, &g, 0, &tot, 1));
    long long bytes = nbc_bytes_sent(), messages = nbc_messages_sent();
    int buckets = g.buckets;
    gradsync_free(&g);
    SMPI_SHARED_FREE(grads);
    MPI_Type_free(&sim_float_block);
    if (rank_ == 0) {
        double w = o.window_steps;
        printf("result ranks %d step %.6f step_read %.6f step_plain %.6f wait %.6f bn %.6f bn_calls %ld "
               "buckets %d nbc_bytes %lld nbc_messages %lld algorithm %s params %zu fold %d\n",
               size_, (tot.step[0] + (w - 1) * tot.step[1]) / w, tot.step[0], tot.step[1], tot.wait[1],
               tot.bn[1],
               g.bn_calls / 2, buckets, bytes / 2, messages / 2,
               size_ == 1 ? "none" : nbc_last_algorithm() == NBC_BINOMIAL ? "binomial" : "redscat_allgather",
               t1.params, o.fold);
    }
    return GEN_OK;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    int status = run(argc, argv);
    if (status != GEN_OK) fprintf(stderr, "scale_sim: rank %d: %s\n", rank_, gen_error_message());
    MPI_Finalize();
    return status == GEN_OK ? 0 : 1;
}
