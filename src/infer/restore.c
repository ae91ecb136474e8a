/* genesis restore: a model over a whole scan in blended windows (include/genesis/restore.h). */
#include "genesis/restore.h"

#include "genesis/collective.h"
#include "genesis/config.h"
#include "genesis/corrupt.h"
#include "genesis/error.h"
#include "genesis/infer.h"
#include "genesis/log.h"
#include "genesis/model.h"
#include "genesis/normalize.h"
#include "genesis/png.h"
#include "genesis/profile.h"
#include "genesis/volume.h"
#include "genesis/weights.h"
#include "genesis/world.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The window corners along one axis of n voxels for window size c and stride s: 0, s, 2s, ...
 * and n - c last (clamped), or the single corner 0 when n <= c. Returns their count. */
static int axis_corners(int64_t n, int c, int s, int64_t *corners, int max)
{
    if (n <= c) {
        corners[0] = 0;
        return 1;
    }
    int count = 0;
    for (int64_t p = 0; p < n - c && count < max - 1; p += s) corners[count++] = p;
    corners[count++] = n - c;
    return count;
}

/* Triangular blending weight of offset i in a window of c voxels: min(i, c - 1 - i) + 1. */
static float blend_weight(int i, int c) { return (float)((i < c - 1 - i ? i : c - 1 - i) + 1); }

struct windows {
    int c[3];                  /* window size rows, cols, deps */
    int count[3];              /* corners per axis */
    int64_t *corner[3];        /* corner[a][k] */
    int64_t total;             /* count[0] * count[1] * count[2] */
};

static void window_corner(const struct windows *w, int64_t k, int64_t out[3])
{
    int64_t kz = k % w->count[2], ky = (k / w->count[2]) % w->count[1], kx = k / w->count[2] / w->count[1];
    out[0] = w->corner[0][kx], out[1] = w->corner[1][ky], out[2] = w->corner[2][kz];
}

/* Copies window k of vol [nx][ny][nz] into cube [c0][c1][c2]; voxels beyond the scan repeat its
 * edge voxels (an axis shorter than the window). */
static void cut_window(float *cube, const float *vol, const int64_t dim[3], const struct windows *w, int64_t k)
{
    int64_t p[3];
    window_corner(w, k, p);
    for (int i = 0; i < w->c[0]; i++) {
        int64_t x = p[0] + i < dim[0] ? p[0] + i : dim[0] - 1;
        for (int j = 0; j < w->c[1]; j++) {
            int64_t y = p[1] + j < dim[1] ? p[1] + j : dim[1] - 1;
            const float *src = vol + (x * dim[1] + y) * dim[2];
            float *dst = cube + ((size_t)i * w->c[1] + j) * w->c[2];
            for (int d = 0; d < w->c[2]; d++) dst[d] = src[p[2] + d < dim[2] ? p[2] + d : dim[2] - 1];
        }
    }
}

/* acc[v] += weight * cube, wsum[v] += weight, over the window's voxels inside the scan. */
static void add_window(float *acc, float *wsum, const float *cube, const int64_t dim[3],
                       const struct windows *w, int64_t k)
{
    int64_t p[3];
    window_corner(w, k, p);
    for (int i = 0; i < w->c[0] && p[0] + i < dim[0]; i++)
        for (int j = 0; j < w->c[1] && p[1] + j < dim[1]; j++) {
            float wij = blend_weight(i, w->c[0]) * blend_weight(j, w->c[1]);
            size_t row = (size_t)(((p[0] + i) * dim[1] + p[1] + j) * dim[2] + p[2]);
            const float *src = cube + ((size_t)i * w->c[1] + j) * w->c[2];
            for (int d = 0; d < w->c[2] && p[2] + d < dim[2]; d++) {
                float wt = wij * blend_weight(d, w->c[2]);
                acc[row + d] += wt * src[d];
                if (wsum) wsum[row + d] += wt;
            }
        }
}

static double sq_error(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

/* The picture: three axial slices (z = nz/4, nz/2, 3nz/4), one row each, panels input | corrupted
 * | restored (or input | restored), normalised values clamped to [0, 1] as gray; pixel (x, y) =
 * vol[x][y][z]. */
static int write_png(const char *path, const float *const *panels, int npanels, const int64_t dim[3])
{
    const int gap = 4, rows = 3;
    int64_t width = npanels * dim[0] + (npanels - 1) * gap, height = rows * dim[1] + (rows - 1) * gap;
    CHECK(width < 20000 && height < 20000, GEN_ERR_USAGE, "restore: scan too large for a picture");
    uint8_t *px = calloc((size_t)(width * height), 1);
    CHECK_ALLOC(px, width * height);
    for (int r = 0; r < rows; r++) {
        int64_t z = dim[2] * (r + 1) / 4;
        for (int p = 0; p < npanels; p++)
            for (int64_t y = 0; y < dim[1]; y++)
                for (int64_t x = 0; x < dim[0]; x++) {
                    float v = panels[p][(x * dim[1] + y) * dim[2] + z];
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    px[(r * (dim[1] + gap) + y) * width + p * (dim[0] + gap) + x] = (uint8_t)lrintf(255 * v);
                }
    }
    int status = image_write_png(path, px, (int)width, (int)height, 1);
    free(px);
    return status;
}

struct restore_state {
    genesis_config cfg;
    volume vol;          /* the scan, normalised in place */
    double window[2];    /* normalisation window lo, hi in input units */
    struct windows win;
    model *model;
    struct corrupt_workspace *ws;
    float *acc, *wsum, *cacc; /* weighted sums of outputs, weights, corrupted inputs [nx][ny][nz] */
    double err[3];            /* window sums: output vs clean, corrupted vs clean, voxels */
};

/* A plan this many times the windows of the default stride (half a window) is called huge; rank 0
 * prints the progress every RESTORE_PROGRESS_SECONDS and at the end. */
enum { HUGE_PLAN_FACTOR = 8, RESTORE_PROGRESS_SECONDS = 10 };

/* Windows along an axis of n voxels at stride `stride` (axis_corners' count). */
static int64_t axis_window_count(int64_t n, int c, int stride)
{
    return n <= c ? 1 : (n - c + stride - 1) / stride + 1;
}

/* Rank 0: the plan, and a warning when it is huge (e.g. --stride 1: tens of thousands of windows). */
static void report_plan(const struct restore_state *s, const struct restore_options *o)
{
    int64_t usual = 1;
    int stride[3];
    for (int a = 0; a < 3; a++) {
        stride[a] = o->stride[a] ? o->stride[a] : s->win.c[a] / 2;
        usual *= axis_window_count(s->vol.dim[a], s->win.c[a], s->win.c[a] / 2);
    }
    log_info("restore: %lld windows (%d x %d x %d) of %dx%dx%d voxels at stride %d,%d,%d on %d rank(s)",
             (long long)s->win.total, s->win.count[0], s->win.count[1], s->win.count[2], s->win.c[0], s->win.c[1],
             s->win.c[2], stride[0], stride[1], stride[2], world_size());
    if (s->win.total > HUGE_PLAN_FACTOR * usual)
        log_warn("restore: a huge plan: %lld windows, %.0f times the %lld of the default stride (half a window): "
                 "it takes that many times longer (progress every %d s)",
                 (long long)s->win.total, (double)s->win.total / (double)usual, (long long)usual,
                 RESTORE_PROGRESS_SECONDS);
}

static int prepare(struct restore_state *s, const struct restore_options *o)
{
    CALL(checkpoint_read_config(o->checkpoint, &s->cfg));
    const struct config_prep *p = &s->cfg.prep;
    if (p->reorient_ras || p->spacing_x > 0 || p->spacing_y > 0 || p->spacing_z > 0)
        if (world_rank() == 0)
            log_warn("restore: the model was trained on reoriented or resampled scans; restore works in the "
                     "scan's own voxel grid");
    norm_options norm;
    CALL(normalize_options_from_config(p, &norm));
    volume_read_options ro;
    volume_read_options_default(&ro);
    ro.verify_gzip = p->verify_gzip;
    CALL(volume_read(&s->vol, o->input, &ro));
    size_t n = (size_t)(s->vol.dim[0] * s->vol.dim[1] * s->vol.dim[2]);
    CALL(normalize_volume(s->vol.data, n, &norm, s->window, o->input));
    int c[3] = {o->cube[0] ? o->cube[0] : (int)p->cube_rows, o->cube[1] ? o->cube[1] : (int)p->cube_cols,
                o->cube[2] ? o->cube[2] : (int)p->cube_deps};
    for (int a = 0; a < 3; a++) {
        int stride = o->stride[a] ? o->stride[a] : c[a] / 2;
        CHECK(c[a] >= 8 && c[a] % 8 == 0, GEN_ERR_USAGE, "restore: window size %d is not a positive multiple of 8", c[a]);
        CHECK(stride >= 1 && stride <= c[a], GEN_ERR_USAGE, "restore: stride %d must be in [1, %d]", stride, c[a]);
        int max = (int)((s->vol.dim[a] + stride - 1) / stride) + 2;
        s->win.corner[a] = malloc(sizeof(int64_t) * (size_t)max);
        CHECK_ALLOC(s->win.corner[a], max * sizeof(int64_t));
        s->win.c[a] = c[a];
        s->win.count[a] = axis_corners(s->vol.dim[a], c[a], stride, s->win.corner[a], max);
    }
    s->win.total = (int64_t)s->win.count[0] * s->win.count[1] * s->win.count[2];
    if (world_rank() == 0) report_plan(s, o);
    model_config shape = {.batch = o->batch, .D = c[0], .H = c[1], .W = c[2]};
    CALL(model_load_file(&s->model, o->checkpoint, &shape, NULL));
    model_set_bn_running(s->model, o->bn_running);
    if (o->corrupt) {
        struct config_corrupt cc = s->cfg.corrupt;
        cc.flip_rate = 0; /* a flip moves the target too: nothing to restore */
        CALL(corrupt_shape_check(&cc, c[0], c[1], c[2]));
        CALL(corrupt_workspace_create(&s->ws, &cc, c[0], c[1], c[2]));
    }
    s->acc = calloc(n, sizeof(float));
    s->wsum = calloc(n, sizeof(float));
    s->cacc = o->corrupt ? calloc(n, sizeof(float)) : NULL;
    CHECK(s->acc && s->wsum && (s->cacc || !o->corrupt), GEN_ERR_NOMEM, "out of memory (3 x %zu floats)", n);
    return GEN_OK;
}

/* Rank 0: windows done (rank 0's count times the ranks: they run in step) of total, after seconds. */
static void report_progress(int64_t done, int64_t total, double seconds)
{
    double rate = (double)done / seconds;
    log_info("restore: windows %lld/%lld (%.0f%%), %.2f windows/s, ETA %.0f s", (long long)done, (long long)total,
             100.0 * (double)done / (double)total, rate, rate > 0 ? (double)(total - done) / rate : 0.0);
}

int restore_batch_windows(int64_t g, int64_t windows, int batch, int64_t *j)
{
    const int64_t batches = (windows + batch - 1) / batch;
    int real = 0; /* the members g + b G < windows come first */
    while (real < batch && g + real * batches < windows) real++;
    for (int b = 0; b < batch; b++) j[b] = g + (int64_t)(b < real ? b : b % real) * batches;
    return real;
}

/* This rank's windows k = rank + j P (j = 0 .. mine - 1) through the model, batch g holding the
 * windows j of restore_batch_windows (restore.h). */
static int run_windows(struct restore_state *s, const struct restore_options *o, int rank, int ranks)
{
    size_t cube = (size_t)s->win.c[0] * s->win.c[1] * s->win.c[2];
    int B = o->batch, status = GEN_OK;
    float *clean = malloc(sizeof(float) * cube * (size_t)B), *x = malloc(sizeof(float) * cube * (size_t)B);
    float *target = malloc(sizeof(float) * cube);
    int64_t *index = malloc(sizeof(int64_t) * (size_t)B);
    CHECK_GOTO(clean && x && target && index, GEN_ERR_NOMEM, "out of memory");
    int64_t mine = s->win.total > rank ? (s->win.total - rank + ranks - 1) / ranks : 0;
    double start = profile_now(), last_report = start;
    const int64_t batches = (mine + B - 1) / B;
    for (int64_t g = 0; g < batches; g++) {
        double now = profile_now();
        if (rank == 0 && now - last_report >= RESTORE_PROGRESS_SECONDS) {
            report_progress(g * B * ranks, s->win.total, now - start);
            last_report = now;
        }
        int real = restore_batch_windows(g, mine, B, index);
        for (int b = 0; b < B; b++) index[b] = rank + index[b] * ranks;
        for (int b = 0; b < B; b++) {
            float *cb = clean + cube * (size_t)b, *xb = x + cube * (size_t)b;
            cut_window(cb, s->vol.data, s->vol.dim, &s->win, index[b]);
            if (s->ws)
                CALL_GOTO(corrupt_sample(s->ws, o->seed, RNG_EPOCH_NONE, (uint64_t)index[b], cb, xb, target, NULL));
            else memcpy(xb, cb, sizeof(float) * cube);
        }
        CALL_GOTO(model_forward(s->model, NULL, x, NULL, B));
        const float *y = model_output(s->model);
        for (int b = 0; b < real; b++) {
            const float *cb = clean + cube * (size_t)b, *xb = x + cube * (size_t)b, *yb = y + cube * (size_t)b;
            add_window(s->acc, s->wsum, yb, s->vol.dim, &s->win, index[b]);
            if (s->cacc) add_window(s->cacc, NULL, xb, s->vol.dim, &s->win, index[b]);
            s->err[0] += sq_error(yb, cb, cube);
            s->err[1] += sq_error(xb, cb, cube);
            s->err[2] += (double)cube;
        }
    }
    if (rank == 0 && mine > 0) report_progress(s->win.total, s->win.total, profile_now() - start);
cleanup:
    free(clean), free(x), free(target), free(index);
    return status;
}

/* Sums every rank's a [n] into rank 0's (in place there), in pieces that fit an MPI count. */
static int sum_to_root(float *a, size_t n)
{
    for (size_t done = 0; done < n;) {
        int count = n - done > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)(n - done);
        CALL(world_sum_floats_to_root(a + done, count));
        done += (size_t)count;
    }
    return GEN_OK;
}

static int finish(struct restore_state *s, const struct restore_options *o, struct restore_report *r)
{
    size_t n = (size_t)(s->vol.dim[0] * s->vol.dim[1] * s->vol.dim[2]);
    double corrupt_sum = 0, restored_sum = 0, scan_sum = 0, scan_sq_sum = 0;
    for (size_t i = 0; i < n; i++) {
        scan_sum += s->vol.data[i], scan_sq_sum += (double)s->vol.data[i] * s->vol.data[i];
        s->acc[i] /= s->wsum[i]; /* every voxel lies in a window, with weight >= 1 */
        restored_sum += ((double)s->acc[i] - s->vol.data[i]) * ((double)s->acc[i] - s->vol.data[i]);
        if (s->cacc) {
            s->cacc[i] /= s->wsum[i];
            corrupt_sum += ((double)s->cacc[i] - s->vol.data[i]) * ((double)s->cacc[i] - s->vol.data[i]);
        }
    }
    r->mse_volume = restored_sum / (double)n;
    r->mse_corrupt_volume = s->cacc ? corrupt_sum / (double)n : 0;
    r->mse_mean_volume = scan_sq_sum / (double)n - (scan_sum / (double)n) * (scan_sum / (double)n);
    r->gain_volume = s->cacc ? 1.0 - r->mse_volume / r->mse_corrupt_volume : NAN;
    r->gain_window = s->cacc ? 1.0 - r->mse_window / r->mse_corrupt_window : NAN;
    if (o->png) {
        const float *panels[3] = {s->vol.data, s->cacc ? s->cacc : s->acc, s->acc};
        CALL(write_png(o->png, panels, s->cacc ? 3 : 2, s->vol.dim));
    }
    /* back to input units, in place: the output volume shares the input's geometry */
    double lo = s->window[0], hi = s->window[1];
    volume out = s->vol;
    for (size_t i = 0; i < n; i++) s->acc[i] = (float)(lo + (double)s->acc[i] * (hi - lo));
    out.data = s->acc;
    /* a NIfTI input lends its header (units, intent, descrip, ...); any other the volume's geometry */
    const char *header_from = s->vol.source_format == VOLUME_FORMAT_NIFTI ? o->input : NULL;
    volume_write_options wo = {.dtype = VOLUME_FLOAT32, .header_from = header_from,
                               .descrip = o->corrupt ? "genesis restore --corrupt" : "genesis restore"};
    CALL(volume_write(&out, o->output, &wo));
    return GEN_OK;
}

/* The window sums of every rank added up on rank 0, which writes the outputs. */
static int gather_and_finish(struct restore_state *s, const struct restore_options *o, struct restore_report *r,
                             int rank)
{
    size_t n = (size_t)(s->vol.dim[0] * s->vol.dim[1] * s->vol.dim[2]);
    CALL(sum_to_root(s->acc, n));
    CALL(sum_to_root(s->wsum, n));
    if (s->cacc) CALL(sum_to_root(s->cacc, n));
    CALL(world_sum_doubles_to_root(s->err, 3)); /* on rank 0: the sums over every rank */
    if (rank != 0) return GEN_OK;
    r->windows = s->win.total;
    r->mse_window = s->err[0] / s->err[2];
    r->mse_corrupt_window = s->err[1] / s->err[2];
    return finish(s, o, r);
}

int restore_run(const struct restore_options *o, struct restore_report *r)
{
    memset(r, 0, sizeof *r);
    double t0 = profile_now();
    int rank = world_rank(), ranks = world_size();
    CHECK(o->batch >= 1 && o->batch <= 256, GEN_ERR_USAGE, "restore: --batch must be in [1, 256]");
    struct restore_state s;
    memset(&s, 0, sizeof s);
    int status = GEN_OK;
    CALL_GOTO(world_agree_shared(prepare(&s, o))); /* every rank reads the same files */
    CALL_GOTO(world_agree(run_windows(&s, o, rank, ranks)));
    CALL_GOTO(world_agree_shared(gather_and_finish(&s, o, r, rank)));
cleanup:
    r->seconds = profile_now() - t0;
    for (int a = 0; a < 3; a++) free(s.win.corner[a]);
    free(s.acc), free(s.wsum), free(s.cacc);
    if (s.ws) corrupt_workspace_destroy(s.ws);
    model_free(s.model);
    volume_free(&s.vol);
    return status;
}
