/* Intensity normalisation of a scan to [0, 1] (src/data/normalize.c), SPEC.md section 2.
 *
 *   ct          clip Hounsfield units to [lo, hi] (default [-1000, 1000]), then (v - lo) / (hi - lo)
 *   mri_window  the same with default window [0, 4000]
 *   mri_minmax  per scan: lo, hi = the pct_lo-th and pct_hi-th percentiles of the scan's voxels
 *               (default 0 and 100: min and max; e.g. 0.5 and 99.5 to ignore outliers; numpy's
 *               linear-interpolation percentile), then clip and scale as above
 *
 * After normalisation every voxel is in [0, 1]. A scan whose lo == hi (constant intensity, or a
 * window of zero width) is refused with GEN_ERR_DATA.
 */
#ifndef GENESIS_NORMALIZE_H
#define GENESIS_NORMALIZE_H

#include <stddef.h>

#include "genesis/config.h"

enum norm_mode {
    NORM_CT = 0,
    NORM_MRI_WINDOW = 1,
    NORM_MRI_MINMAX = 2,
};

typedef struct norm_options {
    enum norm_mode mode;
    double lo, hi;         /* window in input units (ct, mri_window) */
    double pct_lo, pct_hi; /* percentiles in [0, 100], pct_lo < pct_hi (mri_minmax) */
} norm_options;

/* Defaults for a mode: ct [-1000, 1000]; mri_window [0, 4000]; mri_minmax percentiles 0 / 100. */
void norm_options_default(norm_options *opt, enum norm_mode mode);

/* The normalisation of a [prep] section (normalize, window_lo/hi, percentile_lo/hi), as genesis prep
 * applies it and genesis restore undoes it: with mri_window, the unset window [-1000, 1000] keeps
 * the mode's [0, 4000]. GEN_ERR_USAGE if window_lo >= window_hi or percentile_lo >= percentile_hi. */
int normalize_options_from_config(const struct config_prep *p, norm_options *out);
/* "ct", "mri_window", "mri_minmax" (the schema's texts of [prep] normalize); "?" otherwise. */
const char *norm_mode_name(enum norm_mode mode);

/* Normalises data[n] in place. window_out (may be NULL) receives the [lo, hi] actually used, in input
 * units (for mri_minmax the scan's percentiles). `what` names the scan in error messages. */
int normalize_volume(float *data, size_t n, const norm_options *opt, double window_out[2],
                     const char *what);

/* The q-th percentile (q in [0, 100]) of data[n] with numpy's default linear interpolation.
 * Does not modify data (works on a copy). */
int percentile(double *out, const float *data, size_t n, double q);

#endif
