/* Cube extraction (src/data/extract.c) and normalisation (src/data/normalize.c), against SPEC.md
 * section 2 restated here in straightforward code: the corner draws are replayed from the same
 * keyed RNG, the lung score is recomputed for accepted AND rejected attempts. */
#include "check.h"

#include "genesis/config.h"
#include "genesis/error.h"
#include "genesis/extract.h"
#include "genesis/normalize.h"
#include "genesis/rng.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define AT(v, x, y, z) ((v)->data[((size_t)(x) * (v)->dim[1] + (size_t)(y)) * (v)->dim[2] + (size_t)(z)])

/* A normalised test scan whose dense-voxel fraction grows with x: cubes at small x pass the lung
 * filter, at large x they fail, so both outcomes occur. Values: low 0.1, dense 0.6. */
static void make_graded_scan(volume *v, int64_t nx, int64_t ny, int64_t nz, uint32_t seed)
{
    const int64_t dim[3] = {nx, ny, nz};
    const double sp[3] = {1, 1, 1};
    volume_alloc(v, dim, sp);
    uint32_t s = seed;
    for (int64_t x = 0; x < nx; x++)
        for (int64_t y = 0; y < ny; y++)
            for (int64_t z = 0; z < nz; z++) {
                s = s * 1664525u + 1013904223u;
                double p = 0.25 * (double)x / (double)nx; /* dense probability */
                AT(v, x, y, z) = ((double)(s >> 8) / 16777216.0 < p) ? 0.6f : 0.1f;
            }
}

/* SPEC.md's lung score of a 64x64x32 cube, written out literally: for each voxel, the first k of
 * 0, 1, 2 with crop[i, j, d + k] >= t (k = 2 if none), score 1 - k / 2, summed. */
static double spec_lung_score(const volume *v, int64_t x, int64_t y, int64_t z)
{
    const double t = (-150.0 + 1000.0) / 2000.0;
    double sum = 0.0;
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 64; j++)
            for (int d = 0; d < 32; d++) {
                int k;
                for (k = 0; k < 3; k++)
                    if (AT(v, x + i, y + j, z + d + k) >= t) break;
                if (k == 3) k = 2;
                sum += 1.0 - k / 2.0;
            }
    return sum;
}

static void test_lung_filter_replayed(void)
{
    volume v;
    make_graded_scan(&v, 200, 120, 90, 7);
    extract_options opt;
    extract_options_default(&opt);
    opt.border_xy = 10;
    opt.border_z = 5;
    opt.seed = 42;
    opt.cubes_per_scan = 8;
    opt.attempts_per_cube = 6;
    const uint64_t scan = 3;
    extract_result res;
    EXPECT_OK(extract_cubes(&res, &v, scan, &opt));

    /* Replay: same key, x, y, z per attempt; decide with the literal rule. */
    rng_stream r;
    rng_stream_init(&r, 42, 0, scan, RNG_PURPOSE_EXTRACT);
    int accepted = 0, rejected = 0, attempts = 0, mismatches = 0;
    const double limit = 0.15 * 64 * 64 * 32;
    while (attempts < 6 * 8 && accepted < 8) {
        attempts++;
        int64_t x = rng_randint(&r, 10, 200 - 64 - 1 - 10);
        int64_t y = rng_randint(&r, 10, 120 - 64 - 1 - 10);
        int64_t z = rng_randint(&r, 5, 90 - 32 - 3 - 1 - 5);
        double score = spec_lung_score(&v, x, y, z);
        const float *c = res.cubes ? res.cubes + (size_t)accepted * 64 * 64 * 32 : NULL;
        /* The library's own score function agrees with the literal one on this crop. */
        float *crop = malloc(sizeof(float) * 64 * 64 * 35);
        for (int i = 0; i < 64; i++)
            for (int j = 0; j < 64; j++)
                for (int d = 0; d < 35; d++) crop[(i * 64 + j) * 35 + d] = AT(&v, x + i, y + j, z + d);
        double lib = extract_lung_score(crop, 64, 64, 32, 3, opt.lung_threshold);
        free(crop);
        EXPECT_NEAR(lib, score, 1e-6, "extract_lung_score vs literal rule");
        if (score > limit) {
            rejected++;
            continue;
        }
        if (accepted >= res.count) {
            mismatches++;
            accepted++;
            continue;
        }
        const int32_t *k = res.corners + 3 * accepted;
        if (k[0] != x || k[1] != y || k[2] != z) mismatches++;
        int bad = 0;
        for (int i = 0; i < 64 && c; i++)
            for (int j = 0; j < 64; j++)
                for (int d = 0; d < 32; d++)
                    bad += c[(i * 64 + j) * 32 + d] != AT(&v, x + i, y + j, z + d);
        EXPECT(bad == 0, "cube %d differs from the scan in %d voxels", accepted, bad);
        accepted++;
    }
    EXPECT(mismatches == 0, "replayed accept decisions/corners differ %d times", mismatches);
    EXPECT(accepted == res.count && attempts == res.attempts,
           "replay: %d accepted in %d attempts; library: %d in %d", accepted, attempts, res.count,
           res.attempts);
    EXPECT(accepted > 0 && rejected > 0, "both outcomes exercised: %d accepted, %d rejected",
           accepted, rejected);
    printf("lung filter replay: %d accepted, %d rejected, %d attempts\n", accepted, rejected,
           attempts);
    EXPECT(res.crop[0] == 64 && res.crop[1] == 64 && res.crop[2] == 35, "crop size reported");

    /* Determinism by (seed, scan); other scans or seeds give other corners. */
    extract_result again, other;
    EXPECT_OK(extract_cubes(&again, &v, scan, &opt));
    EXPECT(again.count == res.count &&
               memcmp(again.corners, res.corners, sizeof(int32_t) * 3 * (size_t)res.count) == 0 &&
               memcmp(again.cubes, res.cubes, sizeof(float) * 64 * 64 * 32 * (size_t)res.count) == 0,
           "same (seed, scan) gives the same cubes");
    EXPECT_OK(extract_cubes(&other, &v, scan + 1, &opt));
    EXPECT(other.count == 0 || res.count == 0 ||
               memcmp(other.corners, res.corners, sizeof(int32_t) * 3) != 0,
           "another scan index gives other corners");
    extract_result_free(&again);
    extract_result_free(&other);
    extract_result_free(&res);
    volume_free(&v);
}

static void test_corners_and_limits(void)
{
    volume v;
    make_graded_scan(&v, 150, 140, 80, 11);
    extract_options opt;
    extract_options_default(&opt);
    opt.filter = EXTRACT_FILTER_NONE;
    opt.border_xy = 20;
    opt.border_z = 7;
    opt.cubes_per_scan = 40;
    extract_result res;
    EXPECT_OK(extract_cubes(&res, &v, 9, &opt));
    EXPECT(res.count == 40 && res.attempts == 40, "filter none: %d cubes in %d attempts", res.count,
           res.attempts);
    int outside = 0;
    int64_t lo[3] = {150, 140, 80}, hi[3] = {0, 0, 0};
    for (int c = 0; c < res.count; c++) {
        const int32_t *k = res.corners + 3 * c;
        outside += k[0] < 20 || k[0] > 150 - 64 - 1 - 20;
        outside += k[1] < 20 || k[1] > 140 - 64 - 1 - 20;
        outside += k[2] < 7 || k[2] > 80 - 32 - 3 - 1 - 7;
        for (int a = 0; a < 3; a++) {
            if (k[a] < lo[a]) lo[a] = k[a];
            if (k[a] > hi[a]) hi[a] = k[a];
        }
    }
    EXPECT(outside == 0, "%d corner coordinates outside the borders", outside);
    EXPECT(hi[0] > lo[0] && hi[2] > lo[2], "corners spread");
    extract_result_free(&res);

    /* A scan of exactly the minimum size has exactly one corner: (b, b, bz). */
    volume_free(&v);
    int64_t need[3];
    extract_min_dims(&opt, need);
    EXPECT(need[0] == 64 + 1 + 40 && need[2] == 32 + 3 + 1 + 14, "min dims %lld %lld",
           (long long)need[0], (long long)need[2]);
    make_graded_scan(&v, need[0], need[1], need[2], 1);
    opt.cubes_per_scan = 3;
    EXPECT_OK(extract_cubes(&res, &v, 0, &opt));
    EXPECT(res.count == 3 && res.corners[0] == 20 && res.corners[1] == 20 && res.corners[2] == 7,
           "minimum-size scan corner");
    extract_result_free(&res);
    volume_free(&v);

    /* One voxel less: too small, with a reason, and no attempt. */
    make_graded_scan(&v, need[0], need[1], need[2] - 1, 1);
    EXPECT_OK(extract_cubes(&res, &v, 0, &opt));
    EXPECT(res.count == 0 && res.attempts == 0 && res.outcome == EXTRACT_OUTCOME_TOO_SMALL &&
               strstr(res.why, "too small") != NULL,
           "too small: outcome %d, '%s'", res.outcome, res.why);
    printf("too-small reason: %s\n", res.why);
    extract_result_free(&res);
    volume_free(&v);

    /* The paper's defaults refuse an MRI-sized volume, with the sizes in the reason. */
    extract_options_default(&opt);
    const int64_t mri[3] = {181, 217, 181};
    char why[256];
    EXPECT(!extract_fits(&opt, mri, why, sizeof why) && strstr(why, "265x265x96"),
           "default borders vs 181x217x181: %s", why);

    /* Nothing passes: an all-dense scan under the lung filter uses every attempt. */
    const int64_t dim[3] = {100, 100, 60};
    const double sp[3] = {1, 1, 1};
    volume_alloc(&v, dim, sp);
    for (size_t i = 0; i < 100 * 100 * 60; i++) v.data[i] = 0.9f;
    opt.border_xy = 5;
    opt.border_z = 3;
    opt.cubes_per_scan = 4;
    opt.attempts_per_cube = 5;
    EXPECT_OK(extract_cubes(&res, &v, 0, &opt));
    EXPECT(res.count == 0 && res.attempts == 20 && res.outcome == EXTRACT_OUTCOME_NONE_PASSED &&
               strstr(res.why, "no cube passed the lung filter in 20 attempts"),
           "none passed: %d attempts, '%s'", res.attempts, res.why);
    extract_result_free(&res);

    /* Foreground filter: dense everywhere passes; nothing above threshold fails. */
    opt.filter = EXTRACT_FILTER_FOREGROUND;
    EXPECT_OK(extract_cubes(&res, &v, 0, &opt));
    EXPECT(res.count == 4 && res.attempts == 4, "foreground on dense: %d", res.count);
    extract_result_free(&res);
    for (size_t i = 0; i < 100 * 100 * 60; i++) v.data[i] = 0.05f;
    EXPECT_OK(extract_cubes(&res, &v, 0, &opt));
    EXPECT(res.count == 0 && res.outcome == EXTRACT_OUTCOME_NONE_PASSED &&
               strstr(res.why, "foreground"), "foreground on empty: %s", res.why);
    extract_result_free(&res);
    volume_free(&v);
}

/* Crops larger than the cube are resized in-plane (trilinear): a linear ramp stays a ramp within
 * the crop's range, and depth is untouched. */
static void test_resized_crops(void)
{
    const int64_t dim[3] = {160, 150, 50};
    const double sp[3] = {1, 1, 1};
    volume v;
    volume_alloc(&v, dim, sp);
    for (int x = 0; x < 160; x++)
        for (int y = 0; y < 150; y++)
            for (int z = 0; z < 50; z++) AT(&v, x, y, z) = (float)(x * 0.004 + y * 0.001 + z * 0.0001);
    extract_options opt;
    extract_options_default(&opt);
    opt.filter = EXTRACT_FILTER_NONE;
    opt.crop_rows = 96;
    opt.crop_cols = 128;
    opt.border_xy = 4;
    opt.border_z = 2;
    opt.cubes_per_scan = 5;
    extract_result res;
    EXPECT_OK(extract_cubes(&res, &v, 1, &opt));
    EXPECT(res.count == 5 && res.crop[0] == 96 && res.crop[1] == 128, "resized crops");
    double worst = 0;
    for (int c = 0; c < res.count; c++) {
        const int32_t *k = res.corners + 3 * c;
        EXPECT(k[0] <= 160 - 96 - 1 - 4 && k[1] <= 150 - 128 - 1 - 4, "resized corner range");
        const float *cube = res.cubes + (size_t)c * 64 * 64 * 32;
        for (int i = 0; i < 64; i++)
            for (int j = 0; j < 64; j++)
                for (int d = 0; d < 32; d++) {
                    /* half-voxel-centre mapping, clamped to the crop */
                    double xi = (i + 0.5) * 96.0 / 64.0 - 0.5, yj = (j + 0.5) * 128.0 / 64.0 - 0.5;
                    if (xi < 0) xi = 0;
                    if (yj < 0) yj = 0;
                    if (xi > 95) xi = 95;
                    if (yj > 127) yj = 127;
                    double want = (k[0] + xi) * 0.004 + (k[1] + yj) * 0.001 + (k[2] + d) * 0.0001;
                    double e = fabs(cube[(i * 64 + j) * 32 + d] - want);
                    if (e > worst) worst = e;
                }
    }
    EXPECT(worst < 1e-5, "resized ramp: worst error %g", worst);
    extract_result_free(&res);
    volume_free(&v);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_normalize(void)
{
    float ct[7] = {-3000, -1000, -500, 0, 500, 1000, 3071};
    norm_options o;
    norm_options_default(&o, NORM_CT);
    double w[2];
    EXPECT_OK(normalize_volume(ct, 7, &o, w, "ct"));
    const float want_ct[7] = {0, 0, 0.25f, 0.5f, 0.75f, 1, 1};
    for (int i = 0; i < 7; i++) EXPECT_NEAR(ct[i], want_ct[i], 1e-7, "ct window value");
    EXPECT(w[0] == -1000 && w[1] == 1000, "ct window");
    /* The lung threshold is -150 HU after normalisation. */
    float t = -150;
    EXPECT_OK(normalize_volume(&t, 1, &o, NULL, "t"));
    EXPECT_NEAR(t, 0.425, 1e-7, "-150 HU");

    float mri[5] = {-10, 0, 1000, 4000, 9000};
    norm_options_default(&o, NORM_MRI_WINDOW);
    EXPECT_OK(normalize_volume(mri, 5, &o, NULL, "mri"));
    const float want_mri[5] = {0, 0, 0.25f, 1, 1};
    for (int i = 0; i < 5; i++) EXPECT_NEAR(mri[i], want_mri[i], 1e-7, "mri window value");

    /* mri_minmax: percentiles against a sorted copy, numpy-style interpolation. */
    enum { N = 10001 };
    float *a = malloc(sizeof(float) * N), *sorted = malloc(sizeof(float) * N);
    uint32_t s = 99;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        a[i] = (float)((s >> 8) % 5000) - 700.0f;
    }
    memcpy(sorted, a, sizeof(float) * N);
    qsort(sorted, N, sizeof(float), cmp_float);
    const double qs[6] = {0, 0.5, 13.37, 50, 99.5, 100};
    for (int k = 0; k < 6; k++) {
        double p;
        EXPECT_OK(percentile(&p, a, N, qs[k]));
        double pos = qs[k] / 100.0 * (N - 1);
        int lo = (int)pos;
        double frac = pos - lo;
        double ref = sorted[lo] + (lo + 1 < N ? frac * (sorted[lo + 1] - sorted[lo]) : 0);
        EXPECT_NEAR(p, ref, 1e-6, "percentile");
    }
    norm_options_default(&o, NORM_MRI_MINMAX);
    o.pct_lo = 0.5;
    o.pct_hi = 99.5;
    double p_lo, p_hi;
    percentile(&p_lo, a, N, 0.5);
    percentile(&p_hi, a, N, 99.5);
    EXPECT_OK(normalize_volume(a, N, &o, w, "minmax"));
    EXPECT_NEAR(w[0], p_lo, 1e-9, "minmax lo");
    EXPECT_NEAR(w[1], p_hi, 1e-9, "minmax hi");
    float mn = 1, mx = 0;
    for (int i = 0; i < N; i++) {
        if (a[i] < mn) mn = a[i];
        if (a[i] > mx) mx = a[i];
    }
    EXPECT(mn == 0.0f && mx == 1.0f, "minmax range [%g, %g]", mn, mx);
    free(a);
    free(sorted);

    float flat[4] = {3, 3, 3, 3};
    int st = normalize_volume(flat, 4, &o, NULL, "flat.nii");
    EXPECT(st == GEN_ERR_DATA && strstr(gen_error_message(), "flat.nii"), "constant scan refused: %s",
           gen_error_message());
}

/* [prep] normalize and filter as the schema reads them, and normalize_options_from_config. */
static void test_options_from_config(void)
{
    genesis_config cfg;
    EXPECT_OK(config_defaults(&cfg));
    char set[128];
    for (int m = NORM_CT; m <= NORM_MRI_MINMAX; m++) { /* the names are the schema's choices */
        snprintf(set, sizeof set, "prep.normalize=%s", norm_mode_name((enum norm_mode)m));
        EXPECT_OK(config_set(&cfg, set));
        norm_options n;
        EXPECT_OK(normalize_options_from_config(&cfg.prep, &n));
        EXPECT(n.mode == (enum norm_mode)m, "%s: mode %d", set, (int)n.mode);
    }
    for (int f = EXTRACT_FILTER_LUNG; f <= EXTRACT_FILTER_NONE; f++) {
        snprintf(set, sizeof set, "prep.filter=%s", extract_filter_name((enum extract_filter)f));
        EXPECT_OK(config_set(&cfg, set));
        EXPECT(cfg.prep.filter == f, "%s: filter %d", set, cfg.prep.filter);
    }
    EXPECT(config_set(&cfg, "prep.normalize=hu") == GEN_ERR_USAGE, "unknown mode refused");
    EXPECT(config_set(&cfg, "prep.filter=lungs") == GEN_ERR_USAGE, "unknown filter refused");
    norm_options n;
    EXPECT_OK(config_set(&cfg, "prep.normalize=mri_window"));
    EXPECT_OK(normalize_options_from_config(&cfg.prep, &n));
    EXPECT(n.lo == 0 && n.hi == 4000, "mri_window: the unset window is [0, 4000], got [%g, %g]", n.lo, n.hi);
    EXPECT_OK(config_set(&cfg, "prep.window_hi=300"));
    EXPECT_OK(normalize_options_from_config(&cfg.prep, &n));
    EXPECT(n.lo == -1000 && n.hi == 300, "mri_window: a set window is kept, got [%g, %g]", n.lo, n.hi);
    EXPECT_OK(config_set(&cfg, "prep.window_lo=300"));
    EXPECT(normalize_options_from_config(&cfg.prep, &n) == GEN_ERR_USAGE, "empty window accepted");
    EXPECT_OK(config_defaults(&cfg));
    EXPECT_OK(config_set(&cfg, "prep.normalize=mri_minmax"));
    EXPECT_OK(config_set(&cfg, "prep.percentile_lo=0.5"));
    EXPECT_OK(config_set(&cfg, "prep.percentile_hi=99.5"));
    EXPECT_OK(normalize_options_from_config(&cfg.prep, &n));
    EXPECT(n.pct_lo == 0.5 && n.pct_hi == 99.5, "percentiles %g, %g", n.pct_lo, n.pct_hi);
    EXPECT_OK(config_set(&cfg, "prep.percentile_lo=99.5"));
    EXPECT(normalize_options_from_config(&cfg.prep, &n) == GEN_ERR_USAGE, "empty percentiles accepted");
}

int main(void)
{
    test_lung_filter_replayed();
    test_corners_and_limits();
    test_resized_crops();
    test_options_from_config();
    test_normalize();
    TEST_MAIN_END();
}
