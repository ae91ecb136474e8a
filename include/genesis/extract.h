/* Cube extraction from one normalised scan (src/data/extract.c), exactly as SPEC.md section 2:
 *
 *   up to `attempts_per_cube * cubes_per_scan` attempts, stopping at `cubes_per_scan` accepted cubes;
 *   each attempt draws a corner
 *       x in [border_xy, nx - crop_rows - 1 - border_xy]
 *       y in [border_xy, ny - crop_cols - 1 - border_xy]
 *       z in [border_z,  nz - deps - depth_extra - 1 - border_z]       (both ends inclusive)
 *   takes the crop vol[x : x+crop_rows, y : y+crop_cols, z : z+deps+depth_extra], resizes it
 *   (trilinear, range preserving) to rows x cols x (deps + depth_extra) when the crop differs from
 *   rows x cols, applies the filter to it, and keeps its first `deps` slices as the cube.
 *
 * Draws come from rng_stream_init(seed, scale_index, scan_index, RNG_PURPOSE_EXTRACT) in a fixed
 * order (x, y, z per attempt), so a scan's cubes depend only on (seed, scale_index, scan_index) and
 * the options: never on the rank that processes the scan.
 *
 * Cube layout: [rows][cols][deps] float32 with deps fastest; corners are (x, y, z) voxel indices of
 * the crop's first voxel in the scan as passed in (after any reorientation/resampling).
 */
#ifndef GENESIS_EXTRACT_H
#define GENESIS_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "genesis/volume.h"

enum extract_filter {
    EXTRACT_FILTER_LUNG = 0,       /* the reference chest-CT rule (SPEC.md): reject dense cubes */
    EXTRACT_FILTER_FOREGROUND = 1, /* accept if >= fg_min_fraction of cube voxels are > fg_threshold */
    EXTRACT_FILTER_NONE = 2,       /* accept every cube */
};

typedef struct extract_options {
    int rows, cols, deps;      /* cube shape: 64 x 64 x 32 */
    int depth_extra;           /* extra crop slices, the lung filter's look-ahead (len_depth): 3 */
    int crop_rows, crop_cols;  /* crop size in the scan, resized to rows x cols: 64 x 64 */
    int cubes_per_scan;        /* `scale` of the reference: 32 */
    int attempts_per_cube;     /* give up after attempts_per_cube * cubes_per_scan attempts: 50 */
    int border_xy, border_z;   /* margins kept free at both ends of x/y and of z: 100 and 30 */
    enum extract_filter filter;
    double lung_threshold;     /* normalised units: (-150 + 1000) / 2000 = 0.425 */
    double lung_max;           /* reject when the score sum > lung_max * rows*cols*deps: 0.15 */
    double fg_threshold;       /* normalised units: 0.1 */
    double fg_min_fraction;    /* 0.5 */
    uint64_t seed;             /* 0 */
    uint64_t scale_index;      /* RNG epoch field: 0; distinct values give independent corners when
                                * one scan is extracted at several crop sizes */
} extract_options;

void extract_options_default(extract_options *opt);
/* Checks the options themselves (sizes >= 1, thresholds in range): GEN_ERR_USAGE naming the key. */
int extract_options_check(const extract_options *opt);

/* "lung", "foreground", "none" (the schema's texts of [prep] filter); "?" otherwise. */
const char *extract_filter_name(enum extract_filter filter);

enum extract_outcome {
    EXTRACT_OUTCOME_OK = 0,         /* at least one cube */
    EXTRACT_OUTCOME_TOO_SMALL = 1,  /* the scan cannot hold a crop and its borders: no attempt made */
    EXTRACT_OUTCOME_NONE_PASSED = 2 /* every attempt was rejected by the filter */
};

typedef struct extract_result {
    float *cubes;         /* [count][rows][cols][deps]; owned (extract_result_free) */
    int32_t *corners;     /* [count][3]: x, y, z of each crop's first voxel */
    int count;            /* accepted cubes, 0..cubes_per_scan */
    int attempts;         /* attempts made */
    int crop[3];          /* crop size in scan voxels: crop_rows, crop_cols, deps + depth_extra */
    enum extract_outcome outcome;
    char why[256];        /* "" when count > 0; otherwise the reason, e.g. "too small: ..." */
} extract_result;

/* The minimum scan size (voxels per axis) that admits at least one corner. */
void extract_min_dims(const extract_options *opt, int64_t min_dim[3]);

/* 1 if a scan of dims `dim` can hold a crop and its borders; otherwise 0 and, when why != NULL, the
 * reason ("too small for a 64x64x35 crop with borders 100 (x, y) and 30 (z): 181x217x181 voxels,
 * need at least 265x265x96"). */
int extract_fits(const extract_options *opt, const int64_t dim[3], char *why, size_t why_size);

/* Extracts cubes from v (already normalised to [0, 1]) of scan `scan_index`. Returns GEN_OK also
 * when no cube results: then res->outcome and res->why say why (the caller skips or fails the scan).
 * res must be released with extract_result_free. */
int extract_cubes(extract_result *res, const volume *v, uint64_t scan_index,
                  const extract_options *opt);
void extract_result_free(extract_result *res);

/* The lung filter's score of one crop [rows][cols][deps + depth_extra]: the sum over the cube's
 * voxels (i, j, d < deps) of 1 - k / (depth_extra - 1), where k is the first of 0 .. depth_extra-1
 * with crop[i, j, d + k] >= threshold (k = depth_extra - 1 if none is). With depth_extra = 3 this is
 * SPEC.md's 1 - k / 2 over k = 0, 1, 2. Needs depth_extra >= 2. Exposed for tests and diagnostics. */
double extract_lung_score(const float *crop, int rows, int cols, int deps, int depth_extra,
                          double threshold);

#endif
