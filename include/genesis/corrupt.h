/* The four Models Genesis corruptions (SPEC.md section 3), keyed per sample (section 6).
 *
 * A cube is float32 [rows][cols][deps], deps fastest (64 x 64 x 32 by default), values in [0, 1].
 * corrupt_sample() turns a cube y into the pair (x = corrupted input, y' = target):
 *   1. flip (x and y' together), 2. local pixel shuffling, 3. Bezier non-linear intensity map,
 *   4. in-painting or out-painting; each drawn with the configured probability, in this order.
 * All randomness comes from one rng_stream keyed (seed, epoch, global sample index,
 * RNG_PURPOSE_CORRUPT); validation samples use epoch RNG_EPOCH_NONE. The result is therefore a pure
 * function of (config, seed, epoch, index, cube): it does not depend on the thread or rank.
 * No global state: each thread owns its own corrupt_workspace.
 *
 * The probabilities and counts are a struct config_corrupt (include/genesis/config.h): the
 * configuration schema holds their defaults (the paper's) and ranges.
 */
#ifndef GENESIS_CORRUPT_H
#define GENESIS_CORRUPT_H

#include <stddef.h>
#include <stdint.h>

#include "genesis/config.h"
#include "genesis/rng.h"

/* Bits of corrupt_record.mask: which corruptions were drawn for a sample. */
enum corrupt_kind {
    CORRUPT_FLIP = 1u << 0,      /* at least one flip was drawn */
    CORRUPT_LOCAL = 1u << 1,     /* local pixel shuffling */
    CORRUPT_NONLINEAR = 1u << 2, /* Bezier intensity map ... */
    CORRUPT_INVERT = 1u << 3,    /* ... its inverting variant (only x sorted); set with NONLINEAR */
    CORRUPT_INPAINT = 1u << 4,   /* in-painting was drawn (it may have painted 0 blocks) */
    CORRUPT_OUTPAINT = 1u << 5,  /* out-painting */
};

/* Upper bounds of the block counts (so that a record can list every painted block). */
enum {
    CORRUPT_MAX_INPAINT_BLOCKS = CONFIG_CORRUPT_MAX_INPAINT_BLOCKS,
    CORRUPT_MAX_OUTPAINT_EXTRA = CONFIG_CORRUPT_MAX_OUTPAINT_EXTRA,
    CORRUPT_MAX_BLOCKS = 16
};

/* A box of voxels: corner (row, col, dep) and size, the box is [corner, corner + size). */
struct corrupt_block {
    int corner[3];
    int size[3];
};

/* What was drawn for one sample (for labels, previews and tests). */
struct corrupt_record {
    unsigned mask;        /* enum corrupt_kind bits */
    int flips;            /* number of flips drawn, 0..flip_max */
    unsigned flip_axes;   /* axes flipped an odd number of times: bit 0 rows, 1 cols, 2 deps */
    double bezier[4];     /* control points P1 = (bezier[0], bezier[1]), P2 = (bezier[2], bezier[3]) */
    int paint_blocks;     /* blocks in `blocks`: in-painted (noise) or out-painting (kept) blocks */
    struct corrupt_block blocks[CORRUPT_MAX_BLOCKS];
};

/* GEN_ERR_USAGE if a value is outside the schema's range (config_corrupt_check), or if a cube of
 * this shape is too small for a corruption the config can draw:
 * every axis needs >= 10 voxels for local shuffling, >= 8 for in-painting, >= 14 for
 * out-painting (SPEC's randint ranges must not be empty). */
int corrupt_shape_check(const struct config_corrupt *cfg, int rows, int cols, int deps);

/* Per-thread scratch: the uncorrupted copy, curve tables, block scratch. Sized for one cube shape
 * and one config (copied). Never shared between threads. */
struct corrupt_workspace;
int corrupt_workspace_create(struct corrupt_workspace **out, const struct config_corrupt *cfg,
                             int rows, int cols, int deps);
void corrupt_workspace_destroy(struct corrupt_workspace *ws);
/* The workspace's cube shape and voxel count rows * cols * deps. */
void corrupt_workspace_shape(const struct corrupt_workspace *ws, int *rows, int *cols, int *deps);
size_t corrupt_workspace_voxels(const struct corrupt_workspace *ws);

/* Corrupts one sample. cube, input, target: [rows][cols][deps] of the workspace's shape, three
 * distinct non-overlapping arrays. target = cube flipped as drawn; input = the corrupted target.
 * record may be NULL. */
int corrupt_sample(struct corrupt_workspace *ws, uint64_t seed, uint64_t epoch, uint64_t index,
                   const float *cube, float *input, float *target, struct corrupt_record *record);

/* ---- The primitives, exposed for tests and tools ---------------------------------------------- */

/* Reverses a [rows][cols][deps] cube in place along axis 0 (rows), 1 (cols) or 2 (deps). */
int corrupt_flip_axis(float *cube, int rows, int cols, int deps, int axis);

/* Local pixel shuffling of one block: reads the block [corner, corner + size) of src, permutes its
 * voxels uniformly (Fisher-Yates over the block in C order: for i = n-1 .. 1 swap i with a uniform
 * j in [0, i], drawn from 16-bit halves of rng words, unbiased), and writes the result to the same
 * block of dst. scratch holds size[0]*size[1]*size[2] floats. dst may be src. */
int corrupt_shuffle_block(float *dst, const float *src, int rows, int cols, int deps,
                          const int corner[3], const int size[3], float *scratch, rng_stream *rng);

/* The Bezier intensity map on n values in place, with the workspace's bezier_samples (N).
 * p = (P1.x, P1.y, P2.x, P2.y). The curve, sampled at t_k = k * (1.0 / (N - 1)), t_{N-1} = 1:
 *   s = 1 - t; b1 = 3.0 * (t * t) * s; b2 = 3.0 * t * (s * s); b3 = s * s * s;
 *   x_k = p[0] * b1 + p[2] * b2 + b3;   y_k = p[1] * b1 + p[3] * b2 + b3
 * (P0 = (0, 0) contributes nothing; P3 = (1, 1) has weight b3, so t = 0 is P3). Then xs = sort(x);
 * ys = y in t order when invert, else sort(y); each value v becomes np.interp(v, xs, ys) evaluated
 * in double: ys[0] below xs[0], ys[N-1] above xs[N-1] or at xs[N-1], ys[j] where xs[j] == v, else
 * (ys[j+1]-ys[j])/(xs[j+1]-xs[j]) * (v - xs[j]) + ys[j] with j the last index with xs[j] <= v;
 * rounded to float. NaN stays NaN. */
int corrupt_nonlinear_map(struct corrupt_workspace *ws, const double p[4], int invert, float *data,
                          size_t n);

#endif
