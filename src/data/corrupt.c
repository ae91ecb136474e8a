/* The four Models Genesis corruptions (include/genesis/corrupt.h, SPEC.md section 3).
 *
 * Draw order within a sample's stream (one rng_stream keyed (seed, epoch, index, CORRUPT)):
 *   flip:      U [, axis = randint(0, 2), U]...            while flips < flip_max and U < flip_rate
 *   local:     U; if < local_rate: local_blocks x (bx, by, bz, corner x, y, z, Fisher-Yates draws),
 *              these from 16-bit halves of words (see struct draw_pool)
 *   nonlinear: U; if < nonlinear_rate: P1.x, P1.y, P2.x, P2.y, U (< invert_rate: inverting)
 *   painting:  U; if < paint_rate: U (< inpaint_rate: in-painting, else out-painting), then
 *              in:  [U, bx, by, bz, corner x, y, z, noise bx*by*bz in C order]...
 *              out: noise rows*cols*deps in C order, bx, by, bz, corner, [U, bx, ..., corner]...
 * Uniforms U are rng_uniform (53 bits); randint is rng_randint; noise voxels are
 * rng_uniform_float (rng_fill_uniform_float), in [0, 1).
 */
#include "genesis/corrupt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "genesis/error.h"

int corrupt_shape_check(const struct config_corrupt *cfg, int rows, int cols, int deps)
{
    CALL(config_corrupt_check(cfg));
    int dims[3] = {rows, cols, deps};
    int smallest = rows < cols ? rows : cols;
    if (deps < smallest) smallest = deps;
    CHECK(smallest >= 1 && (int64_t)rows * cols * deps <= INT32_MAX, GEN_ERR_USAGE,
          "corrupt: bad cube shape %d x %d x %d", rows, cols, deps);
    for (int a = 0; a < 3; a++)
        CHECK(dims[a] <= 65536, GEN_ERR_USAGE,
              "corrupt: cube axis %d has %d voxels; at most 65536 are supported", a, dims[a]);
    int local = cfg->local_rate > 0 && cfg->local_blocks > 0;
    int paint = cfg->paint_rate > 0;
    int inpaint = paint && cfg->inpaint_rate > 0 && cfg->inpaint_max_blocks > 0 &&
                  cfg->inpaint_continue > 0;
    int outpaint = paint && cfg->inpaint_rate < 1;
    CHECK(!local || smallest >= 10, GEN_ERR_USAGE,
          "corrupt: a %d x %d x %d cube is too small for local pixel shuffling (every axis needs "
          ">= 10 voxels; set corrupt.local_rate = 0 to disable it)", rows, cols, deps);
    CHECK(!inpaint || smallest >= 8, GEN_ERR_USAGE,
          "corrupt: a %d x %d x %d cube is too small for in-painting (every axis needs >= 8 "
          "voxels)", rows, cols, deps);
    CHECK(!outpaint || smallest >= 14, GEN_ERR_USAGE,
          "corrupt: a %d x %d x %d cube is too small for out-painting (every axis needs >= 14 "
          "voxels; set corrupt.inpaint_rate = 1 or corrupt.paint_rate = 0 to disable it)",
          rows, cols, deps);
    return GEN_OK;
}

/* ---- Workspace ------------------------------------------------------------------------------- */

struct corrupt_workspace {
    struct config_corrupt cfg;
    int rows, cols, deps;
    size_t voxels;       /* rows * cols * deps */
    float *keep;         /* [voxels]: the input before out-painting */
    float *block;        /* [(rows/10) * (cols/10) * (deps/10)]: one shuffled block */
    /* Bezier tables, N = cfg.bezier_samples */
    double *xs, *ys;     /* [N] sorted x, and y (sorted or in t order) */
    double *tmp;         /* [N] merge buffer */
    size_t *runs;        /* [N/2 + 2] run boundaries for the natural merge sort */
    int32_t *bucket_start; /* [buckets + 1]: first k with bucket(xs[k]) >= g */
    int buckets;
};

void corrupt_workspace_destroy(struct corrupt_workspace *ws)
{
    if (!ws) return;
    free(ws->keep);
    free(ws->block);
    free(ws->xs);
    free(ws->ys);
    free(ws->tmp);
    free(ws->runs);
    free(ws->bucket_start);
    free(ws);
}

int corrupt_workspace_create(struct corrupt_workspace **out, const struct config_corrupt *cfg,
                             int rows, int cols, int deps)
{
    CHECK(out != NULL, GEN_ERR_USAGE, "corrupt_workspace_create: no output pointer");
    *out = NULL;
    CALL(corrupt_shape_check(cfg, rows, cols, deps));
    int status = GEN_OK;
    struct corrupt_workspace *ws = calloc(1, sizeof *ws);
    CHECK_ALLOC_GOTO(ws, sizeof *ws);
    ws->cfg = *cfg;
    ws->rows = rows;
    ws->cols = cols;
    ws->deps = deps;
    ws->voxels = (size_t)rows * cols * deps;
    size_t n = (size_t)cfg->bezier_samples;
    size_t block = (size_t)(rows / 10 > 0 ? rows / 10 : 1) * (cols / 10 > 0 ? cols / 10 : 1) *
                   (deps / 10 > 0 ? deps / 10 : 1);
    ws->buckets = (int)n; /* about one curve sample per bucket */
    ws->keep = malloc(ws->voxels * sizeof *ws->keep);
    ws->block = malloc(block * sizeof *ws->block);
    ws->xs = malloc(n * sizeof *ws->xs);
    ws->ys = malloc(n * sizeof *ws->ys);
    ws->tmp = malloc(n * sizeof *ws->tmp);
    ws->runs = malloc((n / 2 + 2) * sizeof *ws->runs);
    ws->bucket_start = malloc(((size_t)ws->buckets + 1) * sizeof *ws->bucket_start);
    CHECK_GOTO(ws->keep && ws->block && ws->xs && ws->ys && ws->tmp && ws->runs && ws->bucket_start,
               GEN_ERR_NOMEM, "out of memory for a corruption workspace (%d x %d x %d cube, %zu "
               "curve samples)", rows, cols, deps, n);
    *out = ws;
    ws = NULL;
cleanup:
    corrupt_workspace_destroy(ws);
    return status;
}

void corrupt_workspace_shape(const struct corrupt_workspace *ws, int *rows, int *cols, int *deps)
{
    *rows = ws->rows;
    *cols = ws->cols;
    *deps = ws->deps;
}

size_t corrupt_workspace_voxels(const struct corrupt_workspace *ws) { return ws->voxels; }

/* ---- Flip ------------------------------------------------------------------------------------ */

int corrupt_flip_axis(float *cube, int rows, int cols, int deps, int axis)
{
    CHECK(cube != NULL && rows > 0 && cols > 0 && deps > 0, GEN_ERR_USAGE,
          "corrupt_flip_axis: bad cube %d x %d x %d", rows, cols, deps);
    CHECK(axis >= 0 && axis <= 2, GEN_ERR_USAGE, "corrupt_flip_axis: axis %d is not 0, 1 or 2",
          axis);
    size_t plane = (size_t)cols * deps;
    if (axis == 0) {
        for (int i = 0; i < rows / 2; i++) {
            float *a = cube + (size_t)i * plane, *b = cube + (size_t)(rows - 1 - i) * plane;
            for (size_t v = 0; v < plane; v++) {
                float t = a[v];
                a[v] = b[v];
                b[v] = t;
            }
        }
    } else if (axis == 1) {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols / 2; j++) {
                float *a = cube + (size_t)i * plane + (size_t)j * deps;
                float *b = cube + (size_t)i * plane + (size_t)(cols - 1 - j) * deps;
                for (int k = 0; k < deps; k++) {
                    float t = a[k];
                    a[k] = b[k];
                    b[k] = t;
                }
            }
    } else {
        for (size_t line = 0; line < (size_t)rows * cols; line++) {
            float *a = cube + line * deps;
            for (int k = 0; k < deps / 2; k++) {
                float t = a[k];
                a[k] = a[deps - 1 - k];
                a[deps - 1 - k] = t;
            }
        }
    }
    return GEN_OK;
}

/* dst = src flipped along the axes in `axes` (bit 0 rows, 1 cols, 2 deps), in one pass. */
static void copy_flipped(float *dst, const float *src, int rows, int cols, int deps, unsigned axes)
{
    for (int i = 0; i < rows; i++) {
        int si = (axes & 1u) ? rows - 1 - i : i;
        for (int j = 0; j < cols; j++) {
            int sj = (axes & 2u) ? cols - 1 - j : j;
            const float *s = src + ((size_t)si * cols + sj) * deps;
            float *d = dst + ((size_t)i * cols + j) * deps;
            if (axes & 4u)
                for (int k = 0; k < deps; k++) d[k] = s[deps - 1 - k];
            else
                memcpy(d, s, (size_t)deps * sizeof *d);
        }
    }
}

/* ---- Local pixel shuffling ------------------------------------------------------------------- */

/* The shuffling's draws: 16-bit halves (low half first) of stream words fetched POOL_WORDS at a
 * time. A draw below `range` uses one half when range <= 2^16 (else two halves, low first), with
 * Lemire's multiply-shift and rejection, so it is exactly uniform. Words left in the pool when a
 * shuffling ends are discarded; the stream position stays a pure function of the draws. */
enum { POOL_WORDS = 256 };
struct draw_pool {
    rng_stream *rng;
    uint32_t words[POOL_WORDS];
    int halves_left; /* unread halves at the end of `words` */
};

static inline uint32_t pool_half(struct draw_pool *p)
{
    if (p->halves_left == 0) {
        rng_fill_u32(p->rng, p->words, POOL_WORDS);
        p->halves_left = 2 * POOL_WORDS;
    }
    int at = 2 * POOL_WORDS - p->halves_left--;
    uint32_t w = p->words[at >> 1];
    return (at & 1) ? w >> 16 : w & 0xFFFFu;
}

/* Uniform in [0, range), 1 <= range <= 2^32. */
static inline uint32_t pool_below(struct draw_pool *p, uint64_t range)
{
    if (range <= 65536) {
        uint32_t r = (uint32_t)range;
        uint32_t m = pool_half(p) * r, low = m & 0xFFFFu;
        if (low < r) {
            uint32_t threshold = 65536u % r;
            while (low < threshold) {
                m = pool_half(p) * r;
                low = m & 0xFFFFu;
            }
        }
        return m >> 16;
    }
    uint64_t m = (uint64_t)(pool_half(p) | pool_half(p) << 16) * range;
    uint32_t low = (uint32_t)m;
    if (low < range) {
        uint32_t threshold = (uint32_t)((UINT64_C(1) << 32) % range);
        while (low < threshold) {
            m = (uint64_t)(pool_half(p) | pool_half(p) << 16) * range;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

static int block_in_cube(const int dims[3], const int corner[3], const int size[3])
{
    for (int a = 0; a < 3; a++)
        if (size[a] < 1 || corner[a] < 0 || corner[a] > dims[a] - size[a]) return 0;
    return 1;
}

/* Gather the block of src, Fisher-Yates it (j = below(i + 1) for i = n-1 .. 1), scatter to dst. */
static void shuffle_block(float *dst, const float *src, int cols, int deps, const int corner[3],
                          const int size[3], float *scratch, struct draw_pool *pool)
{
    size_t n = 0;
    for (int i = 0; i < size[0]; i++)
        for (int j = 0; j < size[1]; j++) {
            const float *s =
                src + ((size_t)(corner[0] + i) * cols + corner[1] + j) * deps + corner[2];
            for (int k = 0; k < size[2]; k++) scratch[n++] = s[k];
        }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = pool_below(pool, (uint64_t)i + 1);
        float t = scratch[i];
        scratch[i] = scratch[j];
        scratch[j] = t;
    }
    n = 0;
    for (int i = 0; i < size[0]; i++)
        for (int j = 0; j < size[1]; j++) {
            float *d = dst + ((size_t)(corner[0] + i) * cols + corner[1] + j) * deps + corner[2];
            for (int k = 0; k < size[2]; k++) d[k] = scratch[n++];
        }
}

int corrupt_shuffle_block(float *dst, const float *src, int rows, int cols, int deps,
                          const int corner[3], const int size[3], float *scratch, rng_stream *rng)
{
    int dims[3] = {rows, cols, deps};
    CHECK(dst && src && corner && size && scratch && rng, GEN_ERR_USAGE,
          "corrupt_shuffle_block: null argument");
    CHECK(block_in_cube(dims, corner, size), GEN_ERR_USAGE,
          "corrupt_shuffle_block: block at (%d, %d, %d) of size %d x %d x %d is not inside the "
          "%d x %d x %d cube", corner[0], corner[1], corner[2], size[0], size[1], size[2], rows,
          cols, deps);
    CHECK((int64_t)size[0] * size[1] * size[2] <= (INT64_C(1) << 32), GEN_ERR_USAGE,
          "corrupt_shuffle_block: block too large");
    struct draw_pool pool = {.rng = rng, .halves_left = 0};
    shuffle_block(dst, src, cols, deps, corner, size, scratch, &pool);
    return GEN_OK;
}

/* Draw order: per block bx, by, bz (below(d/10) + 1), corner x, y, z (below(d - size + 1)), then
 * the block's Fisher-Yates draws; all from one pool. */
static void local_shuffle(struct corrupt_workspace *ws, float *input, const float *original,
                          rng_stream *rng)
{
    int dims[3] = {ws->rows, ws->cols, ws->deps};
    struct draw_pool pool = {.rng = rng, .halves_left = 0};
    for (int b = 0; b < ws->cfg.local_blocks; b++) {
        int size[3], corner[3];
        for (int a = 0; a < 3; a++) size[a] = 1 + (int)pool_below(&pool, (uint64_t)(dims[a] / 10));
        for (int a = 0; a < 3; a++)
            corner[a] = (int)pool_below(&pool, (uint64_t)(dims[a] - size[a] + 1));
        shuffle_block(input, original, ws->cols, ws->deps, corner, size, ws->block, &pool);
    }
}

/* ---- Non-linear intensity map ------------------------------------------------------------------ */

static void reverse(double *a, size_t n)
{
    for (size_t i = 0, j = n - 1; i < j; i++, j--) {
        double t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Sorts a[0..n) ascending: a natural merge sort. A cubic sampled in t has at most three monotone
 * runs (plus rare rounding wiggles where it is flat), so this is O(n) in practice; the result is
 * the unique ascending order of the values, i.e. exactly what any sort gives (no NaN here). */
static void sort_samples(double *a, double *tmp, size_t *runs, size_t n)
{
    size_t nruns = 0, i = 0;
    while (i < n) {
        size_t start = i;
        if (i + 1 < n && a[i + 1] < a[i]) {
            while (i + 1 < n && a[i + 1] < a[i]) i++;
            reverse(a + start, i - start + 1);
        } else {
            while (i + 1 < n && a[i + 1] >= a[i]) i++;
        }
        i++;
        runs[nruns++] = start;
        /* merge a new run into the previous one when it only continues it */
        if (nruns >= 2 && a[start - 1] <= a[start]) nruns--;
    }
    runs[nruns] = n;
    double *src = a, *dst = tmp;
    while (nruns > 1) {
        size_t out = 0;
        for (size_t r = 0; r < nruns; r += 2) {
            size_t lo = runs[r], mid = runs[r + 1], hi = r + 2 <= nruns ? runs[r + 2] : n;
            if (r + 1 >= nruns) { /* odd run out: copy */
                memcpy(dst + lo, src + lo, (mid - lo) * sizeof *dst);
                runs[out++] = lo;
                continue;
            }
            size_t p = lo, q = mid, k = lo;
            while (p < mid && q < hi) dst[k++] = src[q] < src[p] ? src[q++] : src[p++];
            while (p < mid) dst[k++] = src[p++];
            while (q < hi) dst[k++] = src[q++];
            runs[out++] = lo;
        }
        nruns = out;
        runs[nruns] = n;
        double *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

/* Bucket of a value in [xs[0], xs[n-1]]: a monotone non-decreasing function of v. */
static inline int32_t bucket_of(double v, double x0, double scale, int32_t last)
{
    double g = (v - x0) * scale;
    if (!(g > 0)) return 0;
    if (g >= (double)last) return last;
    return (int32_t)g;
}

int corrupt_nonlinear_map(struct corrupt_workspace *ws, const double p[4], int invert, float *data,
                          size_t n)
{
    CHECK(ws != NULL && p != NULL && (data != NULL || n == 0), GEN_ERR_USAGE,
          "corrupt_nonlinear_map: bad arguments");
    const size_t ns = (size_t)ws->cfg.bezier_samples;
    double *xs = ws->xs, *ys = ws->ys;
    const double step = 1.0 / (double)(ns - 1);
    for (size_t k = 0; k < ns; k++) { /* t = k * step, except t = 1 exactly at the end */
        double t = (double)k * step;
        double s = 1.0 - t;
        double b1 = 3.0 * (t * t) * s, b2 = 3.0 * t * (s * s), b3 = s * s * s;
        xs[k] = p[0] * b1 + p[2] * b2 + b3;
        ys[k] = p[1] * b1 + p[3] * b2 + b3;
    }
    /* t = 1: s = 0, so b1 = b2 = b3 = 0 and the curve is at P0 = (0, 0) */
    xs[ns - 1] = p[0] * 0.0 + p[2] * 0.0 + 0.0;
    ys[ns - 1] = p[1] * 0.0 + p[3] * 0.0 + 0.0;
    sort_samples(xs, ws->tmp, ws->runs, ns);
    if (!invert) sort_samples(ys, ws->tmp, ws->runs, ns);

    /* Uniform-grid index: bucket_start[g] = first k with bucket(xs[k]) >= g. Since bucket() is
     * monotone, every k < bucket_start[g] has xs[k] < v and every k >= bucket_start[g + 1] has
     * xs[k] > v for a value v in bucket g; so j + 1 (the first k with xs[k] > v) lies in
     * [bucket_start[g], bucket_start[g + 1]]. */
    const double x0 = xs[0], x1 = xs[ns - 1];
    const int32_t last = ws->buckets - 1;
    const double scale = x1 > x0 ? (double)ws->buckets / (x1 - x0) : 0.0;
    int32_t *start = ws->bucket_start;
    int32_t g = 0;
    start[0] = 0;
    for (size_t k = 0; k < ns; k++) {
        int32_t b = bucket_of(xs[k], x0, scale, last);
        while (g < b) start[++g] = (int32_t)k;
    }
    while (g < ws->buckets) start[++g] = (int32_t)ns;

    const double y_first = ys[0], y_last = ys[ns - 1];
    for (size_t i = 0; i < n; i++) {
        double v = data[i];
        double r;
        if (v != v) r = v;
        else if (v < x0) r = y_first;
        else if (v >= x1) r = y_last; /* v == xs[n-1] also takes ys[n-1] */
        else {
            int32_t b = bucket_of(v, x0, scale, last);
            /* first k in [lo, hi) with xs[k] > v, else hi: a branch-free bisection keeping
             * xs[< at] <= v and xs[>= at + len] > v */
            const double *at = xs + start[b];
            size_t len = (size_t)(start[b + 1] - start[b]);
            while (len > 1) {
                size_t half = len >> 1;
                at = at[half] <= v ? at + half : at;
                len -= half;
            }
            size_t first_above = (size_t)(at - xs) + (len == 1 && at[0] <= v);
            size_t j = first_above - 1; /* >= 0 as xs[0] <= v; j + 1 < ns as v < xs[ns-1] */
            if (xs[j] == v) r = ys[j];
            else {
                double slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]);
                r = slope * (v - xs[j]) + ys[j];
                if (r != r) {
                    r = slope * (v - xs[j + 1]) + ys[j + 1];
                    if (r != r && ys[j] == ys[j + 1]) r = ys[j];
                }
            }
        }
        data[i] = (float)r;
    }
    return GEN_OK;
}

/* ---- In-painting and out-painting ------------------------------------------------------------ */

static void fill_noise(float *cube, int rows, int cols, int deps, const struct corrupt_block *blk,
                       rng_stream *rng)
{
    for (int i = 0; i < blk->size[0]; i++)
        for (int j = 0; j < blk->size[1]; j++) {
            float *d = cube + ((size_t)(blk->corner[0] + i) * cols + blk->corner[1] + j) * deps +
                       blk->corner[2];
            rng_fill_uniform_float(rng, d, (size_t)blk->size[2]);
        }
    (void)rows;
}

static void copy_block(float *dst, const float *src, int cols, int deps,
                       const struct corrupt_block *blk)
{
    for (int i = 0; i < blk->size[0]; i++)
        for (int j = 0; j < blk->size[1]; j++) {
            size_t at = ((size_t)(blk->corner[0] + i) * cols + blk->corner[1] + j) * deps +
                        blk->corner[2];
            memcpy(dst + at, src + at, (size_t)blk->size[2] * sizeof *dst);
        }
}

static void draw_inpaint_block(struct corrupt_block *blk, const int dims[3], rng_stream *rng)
{
    for (int a = 0; a < 3; a++)
        blk->size[a] = (int)rng_randint(rng, dims[a] / 6, dims[a] / 3);
    for (int a = 0; a < 3; a++)
        blk->corner[a] = (int)rng_randint(rng, 3, dims[a] - blk->size[a] - 3);
}

static void draw_outpaint_block(struct corrupt_block *blk, const int dims[3], rng_stream *rng)
{
    for (int a = 0; a < 3; a++)
        blk->size[a] = dims[a] - (int)rng_randint(rng, 3 * dims[a] / 7, 4 * dims[a] / 7);
    for (int a = 0; a < 3; a++)
        blk->corner[a] = (int)rng_randint(rng, 3, dims[a] - blk->size[a] - 3);
}

static void inpaint(struct corrupt_workspace *ws, float *input, struct corrupt_record *rec,
                    rng_stream *rng)
{
    int dims[3] = {ws->rows, ws->cols, ws->deps};
    for (int n = 0; n < ws->cfg.inpaint_max_blocks && rng_uniform(rng) < ws->cfg.inpaint_continue;
         n++) {
        struct corrupt_block *blk = &rec->blocks[rec->paint_blocks++];
        draw_inpaint_block(blk, dims, rng);
        fill_noise(input, ws->rows, ws->cols, ws->deps, blk, rng);
    }
}

static void outpaint(struct corrupt_workspace *ws, float *input, struct corrupt_record *rec,
                     rng_stream *rng)
{
    int dims[3] = {ws->rows, ws->cols, ws->deps};
    memcpy(ws->keep, input, ws->voxels * sizeof *input);
    rng_fill_uniform_float(rng, input, ws->voxels);
    struct corrupt_block *blk = &rec->blocks[rec->paint_blocks++];
    draw_outpaint_block(blk, dims, rng);
    copy_block(input, ws->keep, ws->cols, ws->deps, blk);
    for (int n = 0;
         n < ws->cfg.outpaint_extra_blocks && rng_uniform(rng) < ws->cfg.outpaint_continue; n++) {
        blk = &rec->blocks[rec->paint_blocks++];
        draw_outpaint_block(blk, dims, rng);
        copy_block(input, ws->keep, ws->cols, ws->deps, blk);
    }
}

/* ---- One sample ------------------------------------------------------------------------------ */

static int overlaps(const float *a, const float *b, size_t n)
{
    return a < b + n && b < a + n;
}

int corrupt_sample(struct corrupt_workspace *ws, uint64_t seed, uint64_t epoch, uint64_t index,
                   const float *cube, float *input, float *target, struct corrupt_record *record)
{
    CHECK(ws != NULL && cube != NULL && input != NULL && target != NULL, GEN_ERR_USAGE,
          "corrupt_sample: null argument");
    const size_t nv = ws->voxels;
    CHECK(!overlaps(cube, input, nv) && !overlaps(cube, target, nv) && !overlaps(input, target, nv),
          GEN_ERR_USAGE, "corrupt_sample: cube, input and target must not overlap");
    const struct config_corrupt *cfg = &ws->cfg;
    struct corrupt_record local_record;
    struct corrupt_record *rec = record ? record : &local_record;
    memset(rec, 0, sizeof *rec);
    rng_stream rng;
    rng_stream_init(&rng, seed, epoch, index, RNG_PURPOSE_CORRUPT);

    /* 1. flip: the composition of the drawn flips is a flip along the odd-count axes */
    unsigned axes = 0;
    while (rec->flips < cfg->flip_max && rng_uniform(&rng) < cfg->flip_rate) {
        axes ^= 1u << rng_randint(&rng, 0, 2);
        rec->flips++;
    }
    if (rec->flips > 0) rec->mask |= CORRUPT_FLIP;
    rec->flip_axes = axes;
    copy_flipped(target, cube, ws->rows, ws->cols, ws->deps, axes);
    memcpy(input, target, nv * sizeof *input);

    /* 2. local pixel shuffling: blocks read from the uncorrupted input, which is `target` */
    if (rng_uniform(&rng) < cfg->local_rate) {
        rec->mask |= CORRUPT_LOCAL;
        local_shuffle(ws, input, target, &rng);
    }

    /* 3. non-linear intensity map */
    if (rng_uniform(&rng) < cfg->nonlinear_rate) {
        rec->mask |= CORRUPT_NONLINEAR;
        for (int c = 0; c < 4; c++) rec->bezier[c] = rng_uniform(&rng);
        int invert = rng_uniform(&rng) < cfg->invert_rate;
        if (invert) rec->mask |= CORRUPT_INVERT;
        CALL(corrupt_nonlinear_map(ws, rec->bezier, invert, input, nv));
    }

    /* 4. in-painting or out-painting */
    if (rng_uniform(&rng) < cfg->paint_rate) {
        if (rng_uniform(&rng) < cfg->inpaint_rate) {
            rec->mask |= CORRUPT_INPAINT;
            inpaint(ws, input, rec, &rng);
        } else {
            rec->mask |= CORRUPT_OUTPAINT;
            outpaint(ws, input, rec, &rng);
        }
    }
    return GEN_OK;
}
