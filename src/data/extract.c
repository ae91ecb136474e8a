/* Cube extraction (include/genesis/extract.h, SPEC.md section 2). */
#include "genesis/extract.h"

#include "genesis/error.h"
#include "genesis/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void extract_options_default(extract_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->rows = 64;
    opt->cols = 64;
    opt->deps = 32;
    opt->depth_extra = 3;
    opt->crop_rows = 64;
    opt->crop_cols = 64;
    opt->cubes_per_scan = 32;
    opt->attempts_per_cube = 50;
    opt->border_xy = 100;
    opt->border_z = 30;
    opt->filter = EXTRACT_FILTER_LUNG;
    opt->lung_threshold = (-150.0 + 1000.0) / 2000.0;
    opt->lung_max = 0.15;
    opt->fg_threshold = 0.1;
    opt->fg_min_fraction = 0.5;
    opt->seed = 0;
    opt->scale_index = 0;
}

int extract_options_check(const extract_options *opt)
{
    CHECK(opt->rows >= 1 && opt->cols >= 1 && opt->deps >= 1, GEN_ERR_USAGE,
          "cube shape must be positive (rows %d, cols %d, deps %d)", opt->rows, opt->cols,
          opt->deps);
    CHECK(opt->crop_rows >= 1 && opt->crop_cols >= 1, GEN_ERR_USAGE,
          "crop_rows and crop_cols must be >= 1 (got %d, %d)", opt->crop_rows, opt->crop_cols);
    CHECK(opt->depth_extra >= 0, GEN_ERR_USAGE, "depth_extra must be >= 0 (got %d)",
          opt->depth_extra);
    CHECK(opt->filter != EXTRACT_FILTER_LUNG || opt->depth_extra >= 2, GEN_ERR_USAGE,
          "the lung filter needs depth_extra >= 2 (got %d)", opt->depth_extra);
    CHECK(opt->cubes_per_scan >= 1, GEN_ERR_USAGE, "cubes_per_scan must be >= 1 (got %d)",
          opt->cubes_per_scan);
    CHECK(opt->attempts_per_cube >= 1 && opt->attempts_per_cube <= 100000000 / opt->cubes_per_scan,
          GEN_ERR_USAGE, "attempts_per_cube must be in [1, 1e8 / cubes_per_scan] (got %d)",
          opt->attempts_per_cube);
    CHECK(opt->border_xy >= 0 && opt->border_z >= 0, GEN_ERR_USAGE,
          "borders must be >= 0 (got border_xy %d, border_z %d)", opt->border_xy, opt->border_z);
    CHECK(opt->filter == EXTRACT_FILTER_LUNG || opt->filter == EXTRACT_FILTER_FOREGROUND ||
              opt->filter == EXTRACT_FILTER_NONE,
          GEN_ERR_USAGE, "unknown filter %d", (int)opt->filter);
    CHECK(isfinite(opt->lung_threshold) && opt->lung_max >= 0 && opt->lung_max <= 1, GEN_ERR_USAGE,
          "lung_max must be in [0, 1] (got %g)", opt->lung_max);
    CHECK(isfinite(opt->fg_threshold) && opt->fg_min_fraction >= 0 && opt->fg_min_fraction <= 1,
          GEN_ERR_USAGE, "fg_min_fraction must be in [0, 1] (got %g)", opt->fg_min_fraction);
    return GEN_OK;
}

static const char *const filter_names[] = {"lung", "foreground", "none"};

const char *extract_filter_name(enum extract_filter filter)
{
    return (unsigned)filter < 3 ? filter_names[filter] : "?";
}

void extract_min_dims(const extract_options *opt, int64_t min_dim[3])
{
    /* The corner range [b, n - c - 1 - b] is non-empty iff n >= c + 1 + 2b. */
    min_dim[0] = (int64_t)opt->crop_rows + 1 + 2 * (int64_t)opt->border_xy;
    min_dim[1] = (int64_t)opt->crop_cols + 1 + 2 * (int64_t)opt->border_xy;
    min_dim[2] = (int64_t)opt->deps + opt->depth_extra + 1 + 2 * (int64_t)opt->border_z;
}

int extract_fits(const extract_options *opt, const int64_t dim[3], char *why, size_t why_size)
{
    int64_t need[3];
    extract_min_dims(opt, need);
    if (dim[0] >= need[0] && dim[1] >= need[1] && dim[2] >= need[2]) return 1;
    if (why != NULL && why_size > 0)
        snprintf(why, why_size,
                 "too small for a %dx%dx%d crop with borders %d (x, y) and %d (z): %lldx%lldx%lld "
                 "voxels, need at least %lldx%lldx%lld",
                 opt->crop_rows, opt->crop_cols, opt->deps + opt->depth_extra, opt->border_xy,
                 opt->border_z, (long long)dim[0], (long long)dim[1], (long long)dim[2],
                 (long long)need[0], (long long)need[1], (long long)need[2]);
    return 0;
}

double extract_lung_score(const float *crop, int rows, int cols, int deps, int depth_extra,
                          double threshold)
{
    /* crop [rows][cols][deps + depth_extra]; score per cube voxel 1 - k / (depth_extra - 1). */
    int dz = deps + depth_extra, kmax = depth_extra - 1;
    double sum = 0.0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            const float *line = crop + ((size_t)i * cols + j) * dz;
            long line_k = 0; /* sum of k over this line's cube voxels */
            for (int d = 0; d < deps; d++) {
                int k = 0;
                while (k < kmax && !(line[d + k] >= threshold)) k++;
                line_k += k;
            }
            sum += (double)deps - (double)line_k / kmax;
        }
    return sum;
}

/* Fraction of the cube's voxels (first deps slices of crop) above threshold. */
static double foreground_fraction(const float *crop, int rows, int cols, int deps, int dz,
                                  double threshold)
{
    size_t above = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            const float *line = crop + ((size_t)i * cols + j) * dz;
            for (int d = 0; d < deps; d++) above += line[d] > threshold;
        }
    return (double)above / ((double)rows * cols * deps);
}

/* Copies the crop vol[x : x+cr, y : y+cc, z : z+cd] into out [cr][cc][cd]. */
static void copy_crop(float *out, const volume *v, int64_t x, int64_t y, int64_t z, int cr, int cc,
                      int cd)
{
    int64_t ny = v->dim[1], nz = v->dim[2];
    for (int i = 0; i < cr; i++)
        for (int j = 0; j < cc; j++)
            memcpy(out + ((size_t)i * cc + j) * cd,
                   v->data + (size_t)(((x + i) * ny + (y + j)) * nz + z), (size_t)cd * sizeof(float));
}

void extract_result_free(extract_result *res)
{
    if (res == NULL) return;
    free(res->cubes);
    free(res->corners);
    memset(res, 0, sizeof *res);
}

int extract_cubes(extract_result *res, const volume *v, uint64_t scan_index,
                  const extract_options *opt)
{
    memset(res, 0, sizeof *res);
    CALL(extract_options_check(opt));
    CHECK(v != NULL && v->data != NULL, GEN_ERR_INTERNAL, "extract_cubes: empty volume");
    const int rows = opt->rows, cols = opt->cols, deps = opt->deps;
    const int cr = opt->crop_rows, cc = opt->crop_cols, dz = deps + opt->depth_extra;
    res->crop[0] = cr;
    res->crop[1] = cc;
    res->crop[2] = dz;
    if (!extract_fits(opt, v->dim, res->why, sizeof res->why)) {
        res->outcome = EXTRACT_OUTCOME_TOO_SMALL;
        return GEN_OK;
    }
    const size_t cube_floats = (size_t)rows * cols * deps;
    const int resize = cr != rows || cc != cols;
    const size_t crop_floats = (size_t)cr * cc * dz, sized_floats = (size_t)rows * cols * dz;
    res->cubes = malloc((size_t)opt->cubes_per_scan * cube_floats * sizeof(float));
    res->corners = malloc((size_t)opt->cubes_per_scan * 3 * sizeof(int32_t));
    float *crop = malloc(crop_floats * sizeof(float));
    float *sized = resize ? malloc(sized_floats * sizeof(float)) : crop;
    int status = GEN_OK;
    CHECK_GOTO(res->cubes != NULL && res->corners != NULL && crop != NULL && sized != NULL,
               GEN_ERR_NOMEM, "out of memory for %d cubes of %zu floats", opt->cubes_per_scan,
               cube_floats);
    /* Half-voxel-centre mapping (scikit-image's resize): input = (i + 0.5) * in / out - 0.5. */
    const int64_t idim[3] = {cr, cc, dz}, odim[3] = {rows, cols, dz};
    const double scale[3] = {(double)cr / rows, (double)cc / cols, 1.0};
    const double offset[3] = {0.5 * scale[0] - 0.5, 0.5 * scale[1] - 0.5, 0.0};
    const double lung_limit = opt->lung_max * (double)rows * cols * deps;

    rng_stream rng;
    rng_stream_init(&rng, opt->seed, opt->scale_index, scan_index, RNG_PURPOSE_EXTRACT);
    const int64_t max_attempts = (int64_t)opt->attempts_per_cube * opt->cubes_per_scan;
    while (res->attempts < max_attempts && res->count < opt->cubes_per_scan) {
        res->attempts++;
        int64_t x = rng_randint(&rng, opt->border_xy, v->dim[0] - cr - 1 - opt->border_xy);
        int64_t y = rng_randint(&rng, opt->border_xy, v->dim[1] - cc - 1 - opt->border_xy);
        int64_t z = rng_randint(&rng, opt->border_z, v->dim[2] - dz - 1 - opt->border_z);
        copy_crop(crop, v, x, y, z, cr, cc, dz);
        if (resize) CALL_GOTO(trilinear_resize(sized, odim, crop, idim, scale, offset));
        int accept = 1;
        if (opt->filter == EXTRACT_FILTER_LUNG)
            accept = extract_lung_score(sized, rows, cols, deps, opt->depth_extra,
                                        opt->lung_threshold) <= lung_limit;
        else if (opt->filter == EXTRACT_FILTER_FOREGROUND)
            accept = foreground_fraction(sized, rows, cols, deps, dz, opt->fg_threshold) >=
                     opt->fg_min_fraction;
        if (!accept) continue;
        float *cube = res->cubes + (size_t)res->count * cube_floats;
        for (size_t line = 0; line < (size_t)rows * cols; line++)
            memcpy(cube + line * deps, sized + line * dz, (size_t)deps * sizeof(float));
        res->corners[3 * res->count + 0] = (int32_t)x;
        res->corners[3 * res->count + 1] = (int32_t)y;
        res->corners[3 * res->count + 2] = (int32_t)z;
        res->count++;
    }
    if (res->count == 0) {
        res->outcome = EXTRACT_OUTCOME_NONE_PASSED;
        snprintf(res->why, sizeof res->why, "no cube passed the %s filter in %d attempts",
                 extract_filter_name(opt->filter), res->attempts);
    }
cleanup:
    free(crop);
    if (resize) free(sized);
    if (status != GEN_OK) extract_result_free(res);
    return status;
}
