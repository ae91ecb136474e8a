/* genesis restore (src/infer/restore.c): a trained model run over a whole scan.
 *
 * The scan is normalised as prep did (the checkpoint's [prep] normalize, window, percentiles; in the
 * file's voxel grid, without prep's optional reorientation or resampling), cut into overlapping
 * windows of the training cube size (default [prep] cube_rows x cube_cols x cube_deps, e.g.
 * 64x64x32) at a stride (default half a cube), the last window of each axis clamped to the scan's
 * end; an axis shorter than a cube is padded by repeating its edge voxels. Windows go through the
 * model in batches of `batch` windows spread over the scan (restore_batch_windows; batch-norm
 * statistics of the batch, as the reference's ContBatchNorm3d: use batch >= 2). Outputs are blended with triangular weights (w(i) = min(i, c - 1 - i) + 1
 * per axis, multiplied over the axes), accumulated, divided by the summed weights, mapped back to
 * input units (v = lo + y * (hi - lo), the window used for normalising) and written as float32
 * NIfTI with the input's header (dims, qform/sform).
 *
 * --corrupt: each window is first corrupted as in training (SPEC.md section 3, the checkpoint's
 * [corrupt] settings without flips, which would move the target too), keyed by (seed,
 * RNG_EPOCH_NONE, window index), to show what the model restores.
 *
 * Under MPI, window k goes to rank k mod P; the weighted sums are added up on rank 0 (collective.h),
 * which writes the outputs. Errors (mean squared, in normalised units) are printed by rank 0.
 */
#ifndef GENESIS_RESTORE_H
#define GENESIS_RESTORE_H

#include <stdint.h>

struct restore_options {
    const char *checkpoint, *input, *output;
    const char *png;     /* NULL: no picture; else slices input | corrupted | restored */
    int corrupt;         /* corrupt every window before the model */
    uint64_t seed;       /* corruption seed */
    int batch;           /* windows per forward (>= 1; 2 or more recommended) */
    int bn_running;      /* 1: batch norm with the checkpoint's running estimates (eval mode);
                            0: each batch's own statistics, as in training (batch 2 or more then) */
    int cube[3];         /* window size; 0: the checkpoint's [prep] cube size */
    int stride[3];       /* 0: half the window */
};

/* What restore measured (normalised units, [0, 1]). */
struct restore_report {
    int64_t windows;
    double mse_volume;          /* restored volume vs normalised input, over the scan's voxels */
    double mse_corrupt_volume;  /* blended corrupted windows vs input (with corrupt) */
    double mse_window;          /* model output vs clean window, over every window voxel */
    double mse_corrupt_window;  /* corrupted window vs clean window (with corrupt) */
    double mse_mean_volume;     /* the mean baseline: the scan's mean voxel as a constant output vs the
                                   input, over the scan's voxels (the normalised scan's variance) */
    double gain_volume;         /* 1 - mse_volume / mse_corrupt_volume (with corrupt; else NaN) */
    double gain_window;         /* 1 - mse_window / mse_corrupt_window (with corrupt; else NaN) */
    double seconds;
};

/* The windows of batch g (0 <= g < G = ceil(windows / batch)) of one rank's `windows` windows:
 * j[b] = g + b G for the first `real` members (the return value, >= 1), the others repeat them
 * (j[b] = j[b mod real]; their outputs are discarded). Each window is a real member of exactly one
 * batch. Why spread, not neighbours: batch norm uses the batch's statistics (as the reference's
 * ContBatchNorm3d) and training batches are cubes from all over the scans; B neighbouring windows
 * of empty background, which training never shows together, are normalised by statistics of
 * nothing and come out grey (measured on inia19 at batch 2: volume error 0.099 with neighbours,
 * 0.083 spread). */
int restore_batch_windows(int64_t g, int64_t windows, int batch, int64_t *j);

/* Collective on MPI_COMM_WORLD. */
int restore_run(const struct restore_options *opt, struct restore_report *report);

#endif
