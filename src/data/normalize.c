/* Intensity normalisation (include/genesis/normalize.h). */
#include "genesis/normalize.h"

#include "genesis/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void norm_options_default(norm_options *opt, enum norm_mode mode)
{
    memset(opt, 0, sizeof *opt);
    opt->mode = mode;
    opt->lo = mode == NORM_CT ? -1000.0 : 0.0;
    opt->hi = mode == NORM_CT ? 1000.0 : 4000.0;
    opt->pct_lo = 0.0;
    opt->pct_hi = 100.0;
}

static const char *const mode_names[] = {"ct", "mri_window", "mri_minmax"};

const char *norm_mode_name(enum norm_mode mode)
{
    return (unsigned)mode < 3 ? mode_names[mode] : "?";
}

int normalize_options_from_config(const struct config_prep *p, norm_options *out)
{
    enum norm_mode mode = p->normalize == NORMALIZE_CT ? NORM_CT
                        : p->normalize == NORMALIZE_MRI_WINDOW ? NORM_MRI_WINDOW : NORM_MRI_MINMAX;
    norm_options_default(out, mode);
    /* an unset window keeps the mode's default (ct [-1000, 1000], mri_window [0, 4000]) */
    int window_is_default = p->window_lo == -1000 && p->window_hi == 1000;
    if (!(mode == NORM_MRI_WINDOW && window_is_default)) out->lo = p->window_lo, out->hi = p->window_hi;
    CHECK(out->lo < out->hi, GEN_ERR_USAGE, "[prep] window_lo (%g) must be below window_hi (%g)",
          out->lo, out->hi);
    out->pct_lo = p->percentile_lo, out->pct_hi = p->percentile_hi;
    CHECK(p->percentile_lo < p->percentile_hi, GEN_ERR_USAGE,
          "[prep] percentile_lo (%g) must be below percentile_hi (%g)", p->percentile_lo, p->percentile_hi);
    return GEN_OK;
}

/* The k-th smallest of a[0..n) (0-based); reorders a (Hoare partition quickselect). */
static float select_kth(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

int percentile(double *out, const float *data, size_t n, double q)
{
    CHECK(n > 0, GEN_ERR_DATA, "percentile of an empty array");
    CHECK(q >= 0.0 && q <= 100.0, GEN_ERR_USAGE, "percentile %g outside [0, 100]", q);
    float *copy = malloc(n * sizeof(float));
    CHECK_ALLOC(copy, n * sizeof(float));
    memcpy(copy, data, n * sizeof(float));
    double pos = q / 100.0 * (double)(n - 1);
    size_t k = (size_t)floor(pos);
    if (k > n - 1) k = n - 1;
    double frac = pos - (double)k;
    double a = select_kth(copy, n, k);
    double b = a;
    if (frac > 0.0 && k + 1 < n) { /* the (k+1)-th smallest is the minimum of the upper part */
        b = copy[k + 1];
        for (size_t i = k + 1; i < n; i++)
            if (copy[i] < b) b = copy[i];
    }
    free(copy);
    *out = a + frac * (b - a);
    return GEN_OK;
}

int normalize_volume(float *data, size_t n, const norm_options *opt, double window_out[2],
                     const char *what)
{
    if (what == NULL) what = "volume";
    double lo = opt->lo, hi = opt->hi;
    if (opt->mode == NORM_MRI_MINMAX) {
        CHECK(opt->pct_lo >= 0 && opt->pct_hi <= 100 && opt->pct_lo < opt->pct_hi, GEN_ERR_USAGE,
              "mri_minmax percentiles must satisfy 0 <= lo < hi <= 100 (got %g, %g)", opt->pct_lo,
              opt->pct_hi);
        CALL(percentile(&lo, data, n, opt->pct_lo));
        CALL(percentile(&hi, data, n, opt->pct_hi));
    } else {
        CHECK(opt->mode == NORM_CT || opt->mode == NORM_MRI_WINDOW, GEN_ERR_USAGE,
              "unknown normalisation mode %d", (int)opt->mode);
        CHECK(isfinite(lo) && isfinite(hi) && lo < hi, GEN_ERR_USAGE,
              "normalisation window [%g, %g] is empty", lo, hi);
    }
    CHECK(hi > lo, GEN_ERR_DATA, "%s: constant intensity within percentiles %g..%g (%g); cannot "
          "normalise", what, opt->pct_lo, opt->pct_hi, lo);
    /* (v - lo) / (hi - lo) after clipping to [lo, hi]: in double, then rounded once to float. */
    double inv = 1.0 / (hi - lo);
    for (size_t i = 0; i < n; i++) {
        double v = data[i];
        v = v < lo ? lo : (v > hi ? hi : v);
        float f = (float)((v - lo) * inv);
        data[i] = f > 1.0f ? 1.0f : f;
    }
    if (window_out != NULL) {
        window_out[0] = lo;
        window_out[1] = hi;
    }
    return GEN_OK;
}
