/* Synthetic chest-CT phantoms in Hounsfield units (include/genesis/phantom.h).
 *
 * Geometry is evaluated in normalised coordinates: u, v = position in mm from the volume centre
 * divided by half the smaller in-plane field of view (so about [-1, 1]; u toward the right, v
 * anterior), w = z / (nz - 1) in [0, 1] (inferior to superior). A first pass labels every voxel
 * with a tissue; vessels are then drawn into lung voxels; a last pass turns labels into HU plus
 * noise.
 */
#include "genesis/phantom.h"

#include "genesis/error.h"
#include "genesis/rng.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum tissue {
    T_AIR = 0, T_FAT, T_SOFT, T_LUNG, T_HEART, T_AORTA, T_CORTEX, T_MARROW, T_CANAL,
    T_VESSEL0 = 16 /* vessel v has label T_VESSEL0 + v */
};
enum { MAX_VESSELS_PER_LUNG = 100 };

void phantom_options_default(phantom_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->dim[0] = 256;
    opt->dim[1] = 256;
    opt->dim[2] = 96;
    opt->seed = 0;
    opt->noise_sd = 20.0;
    opt->vessels_per_lung = 16;
}

/* One phantom's random shape parameters (all drawn first, in a fixed order). */
typedef struct anatomy {
    double body_a, body_b;        /* body ellipse semi-axes (u, v) */
    double lung_cu, lung_a, lung_b; /* lungs centred at u = +-lung_cu, v = 0; superellipse axes */
    double lung_top, lung_base;   /* w of the apex and of the diaphragm's lowest point */
    double lung_hu;               /* parenchyma HU at v = 0 */
    double heart_u, heart_v, heart_w;
    double rib_phase_mm, rib_period_mm, rib_thick_mm;
} anatomy;

static double jitter(rng_stream *r, double centre, double rel)
{
    return centre * (1.0 + rel * (2.0 * rng_uniform(r) - 1.0));
}

static void draw_anatomy(anatomy *a, rng_stream *r)
{
    a->body_a = jitter(r, 0.90, 0.03);
    a->body_b = jitter(r, 0.68, 0.04);
    a->lung_cu = jitter(r, 0.40, 0.03);
    a->lung_a = jitter(r, 0.33, 0.04);
    a->lung_b = jitter(r, 0.48, 0.04);
    a->lung_top = jitter(r, 0.97, 0.02);
    a->lung_base = jitter(r, 0.04, 0.25);
    a->lung_hu = -800.0 + 20.0 * (2.0 * rng_uniform(r) - 1.0);
    a->heart_u = -0.10 + 0.02 * (2.0 * rng_uniform(r) - 1.0);
    a->heart_v = 0.18 + 0.02 * (2.0 * rng_uniform(r) - 1.0);
    a->heart_w = 0.30 + 0.04 * (2.0 * rng_uniform(r) - 1.0);
    a->rib_period_mm = jitter(r, 25.0, 0.08);
    a->rib_phase_mm = a->rib_period_mm * rng_uniform(r);
    a->rib_thick_mm = jitter(r, 8.0, 0.1);
}

/* Is (u, v, w) inside lung `side` (+1 right, -1 left), ignoring heart and bones? */
static int in_lung(const anatomy *a, double u, double v, double w, int side)
{
    if (w >= a->lung_top) return 0;
    double taper = w > a->lung_top - 0.25 ? sqrt((a->lung_top - w) / 0.25) : 1.0;
    double du = fabs(u - side * a->lung_cu) / (a->lung_a * taper);
    double dv = fabs(v) / (a->lung_b * taper);
    double q = pow(du, 2.5) + pow(dv, 2.5); /* superellipse: squarer than an ellipse */
    if (q > 1.0) return 0;
    /* Diaphragm dome: highest under the lung's centre. */
    return w > a->lung_base + 0.15 * (1.0 - q);
}

static enum tissue tissue_at(const anatomy *a, double u, double v, double w, double z_mm)
{
    double rb = sqrt((u / a->body_a) * (u / a->body_a) + (v / a->body_b) * (v / a->body_b));
    if (rb > 1.0) return T_AIR;
    /* Spine: vertebral body with cortex and marrow, canal behind it. */
    double su = u, sv = v + 0.52, sr = sqrt(su * su + sv * sv);
    if (sr < 0.11) return sr > 0.085 ? T_CORTEX : T_MARROW;
    double cv = v + 0.68, cr = sqrt(u * u + cv * cv);
    if (cr < 0.045) return T_CANAL;
    if (cr < 0.07 && v < -0.60) return T_CORTEX; /* posterior arch */
    /* Ribs: bands every rib_period_mm in z, on the posterior and lateral arc. */
    double rib_z = fmod(z_mm + a->rib_phase_mm, a->rib_period_mm);
    if (rb > 0.84 && rb < 0.90 && v < 0.35 && rib_z < a->rib_thick_mm) return T_CORTEX;
    /* Sternum. */
    if (fabs(u) < 0.07 && v > a->body_b * 0.86 && v < a->body_b * 0.93) return T_CORTEX;
    if (rb > 0.93) return T_FAT;
    double hu = (u - a->heart_u) / 0.26, hv = (v - a->heart_v) / 0.22, hw = (w - a->heart_w) / 0.28;
    if (hu * hu + hv * hv + hw * hw < 1.0) return T_HEART;
    double au = u + 0.06, av = v + 0.22;
    if (au * au + av * av < 0.07 * 0.07) return T_AORTA;
    if (in_lung(a, u, v, w, +1) || in_lung(a, u, v, w, -1)) return T_LUNG;
    return T_SOFT;
}

typedef struct frame {
    int64_t n[3];
    double s[3];    /* spacing, mm */
    double half;    /* half the smaller in-plane field of view, mm */
} frame;

static double coord_u(const frame *f, int64_t x) { return ((double)x - 0.5 * (double)(f->n[0] - 1)) * f->s[0] / f->half; }
static double coord_v(const frame *f, int64_t y) { return ((double)y - 0.5 * (double)(f->n[1] - 1)) * f->s[1] / f->half; }
static double coord_w(const frame *f, int64_t z) { return f->n[2] > 1 ? (double)z / (double)(f->n[2] - 1) : 0.5; }

/* Draws a tapered tube (radius r0 mm at p0 to r1 at p1; points in mm from the volume centre) into
 * the voxels labelled T_LUNG. */
static void draw_vessel(uint8_t *label, const frame *f, const double p0[3], const double p1[3],
                        double r0, double r1, uint8_t id)
{
    double d[3], len2 = 0.0;
    for (int a = 0; a < 3; a++) {
        d[a] = p1[a] - p0[a];
        len2 += d[a] * d[a];
    }
    if (len2 <= 0.0) return;
    int64_t lo[3], hi[3];
    double rmax = r0 > r1 ? r0 : r1;
    for (int a = 0; a < 3; a++) {
        double c0 = (p0[a] < p1[a] ? p0[a] : p1[a]) - rmax, c1 = (p0[a] > p1[a] ? p0[a] : p1[a]) + rmax;
        double centre = 0.5 * (double)(f->n[a] - 1);
        lo[a] = (int64_t)floor(c0 / f->s[a] + centre);
        hi[a] = (int64_t)ceil(c1 / f->s[a] + centre);
        if (lo[a] < 0) lo[a] = 0;
        if (hi[a] > f->n[a] - 1) hi[a] = f->n[a] - 1;
    }
    for (int64_t x = lo[0]; x <= hi[0]; x++)
        for (int64_t y = lo[1]; y <= hi[1]; y++)
            for (int64_t z = lo[2]; z <= hi[2]; z++) {
                size_t o = (size_t)((x * f->n[1] + y) * f->n[2] + z);
                if (label[o] != T_LUNG) continue;
                double p[3] = {((double)x - 0.5 * (double)(f->n[0] - 1)) * f->s[0],
                               ((double)y - 0.5 * (double)(f->n[1] - 1)) * f->s[1],
                               ((double)z - 0.5 * (double)(f->n[2] - 1)) * f->s[2]};
                double t = 0.0;
                for (int a = 0; a < 3; a++) t += (p[a] - p0[a]) * d[a];
                t /= len2;
                t = t < 0 ? 0 : (t > 1 ? 1 : t);
                double dist2 = 0.0;
                for (int a = 0; a < 3; a++) {
                    double e = p[a] - (p0[a] + t * d[a]);
                    dist2 += e * e;
                }
                double r = r0 + t * (r1 - r0);
                if (dist2 <= r * r) label[o] = id;
            }
}

/* mm position (from the volume centre) of normalised (u, v, w). */
static void to_mm(double out[3], const frame *f, double u, double v, double w)
{
    out[0] = u * f->half;
    out[1] = v * f->half;
    out[2] = (w - 0.5) * (double)(f->n[2] - 1) * f->s[2];
}

static int check_options(const phantom_options *opt)
{
    for (int a = 0; a < 3; a++)
        CHECK(opt->dim[a] >= 2 && opt->dim[a] <= 4096, GEN_ERR_USAGE,
              "phantom size must be 2..4096 per axis (axis %d: %lld)", a, (long long)opt->dim[a]);
    CHECK(opt->noise_sd >= 0 && isfinite(opt->noise_sd), GEN_ERR_USAGE,
          "phantom noise_sd must be >= 0 (got %g)", opt->noise_sd);
    CHECK(opt->vessels_per_lung >= 0 && opt->vessels_per_lung <= MAX_VESSELS_PER_LUNG,
          GEN_ERR_USAGE, "vessels_per_lung must be 0..%d (got %d)", MAX_VESSELS_PER_LUNG,
          opt->vessels_per_lung);
    return GEN_OK;
}

int phantom_make(volume *v, uint64_t index, const phantom_options *opt)
{
    phantom_options defaults;
    if (opt == NULL) {
        phantom_options_default(&defaults);
        opt = &defaults;
    }
    memset(v, 0, sizeof *v);
    CALL(check_options(opt));
    frame f;
    for (int a = 0; a < 3; a++) {
        f.n[a] = opt->dim[a];
        f.s[a] = opt->spacing[a] > 0 ? opt->spacing[a] : (a < 2 ? 384.0 / (double)opt->dim[a] : 1.5);
    }
    double fov_x = (double)f.n[0] * f.s[0], fov_y = (double)f.n[1] * f.s[1];
    f.half = 0.5 * (fov_x < fov_y ? fov_x : fov_y);

    rng_stream rng;
    rng_stream_init(&rng, opt->seed, 0, index, RNG_PURPOSE_PHANTOM);
    anatomy an;
    draw_anatomy(&an, &rng);

    size_t n = (size_t)(f.n[0] * f.n[1] * f.n[2]);
    int status = GEN_OK;
    uint8_t *label = malloc(n);
    CHECK_ALLOC_GOTO(label, n);
    CALL_GOTO(volume_alloc(v, f.n, f.s));
    for (int64_t x = 0; x < f.n[0]; x++) {
        double u = coord_u(&f, x);
        for (int64_t y = 0; y < f.n[1]; y++) {
            double vv = coord_v(&f, y);
            uint8_t *line = label + (size_t)((x * f.n[1] + y) * f.n[2]);
            for (int64_t z = 0; z < f.n[2]; z++)
                line[z] = (uint8_t)tissue_at(&an, u, vv, coord_w(&f, z), (double)z * f.s[2]);
        }
    }
    /* Vessels: from each hilum to random points inside the same lung. */
    int nv = opt->vessels_per_lung;
    double vessel_hu[2 * MAX_VESSELS_PER_LUNG];
    for (int side = 0; side < 2; side++) {
        int sign = side == 0 ? +1 : -1;
        for (int k = 0; k < nv; k++) {
            int id = side * nv + k;
            double hu = sign * (an.lung_cu - 0.22), hv = 0.02, hw = 0.55;
            double p0[3], p1[3];
            to_mm(p0, &f, hu + 0.03 * (2 * rng_uniform(&rng) - 1), hv + 0.05 * (2 * rng_uniform(&rng) - 1),
                  hw + 0.08 * (2 * rng_uniform(&rng) - 1));
            double eu = 0, ev = 0, ew = 0.5;
            for (int tries = 0; tries < 1000; tries++) {
                eu = sign * an.lung_cu + an.lung_a * (2 * rng_uniform(&rng) - 1);
                ev = an.lung_b * (2 * rng_uniform(&rng) - 1);
                ew = rng_uniform(&rng);
                if (in_lung(&an, eu, ev, ew, sign)) break;
            }
            to_mm(p1, &f, eu, ev, ew);
            double r0 = 1.5 + 1.5 * rng_uniform(&rng), r1 = 0.6 + 0.4 * rng_uniform(&rng);
            vessel_hu[id] = 40.0 + 160.0 * rng_uniform(&rng);
            draw_vessel(label, &f, p0, p1, r0, r1, (uint8_t)(T_VESSEL0 + id));
        }
    }
    /* Labels -> HU, plus Gaussian noise (Box-Muller pairs). */
    static const double tissue_hu[] = {
        [T_AIR] = -1000.0, [T_FAT] = -100.0, [T_SOFT] = 40.0, [T_LUNG] = -800.0,
        [T_HEART] = 40.0, [T_AORTA] = 45.0, [T_CORTEX] = 700.0, [T_MARROW] = 300.0,
        [T_CANAL] = 10.0};
    double spare = 0.0;
    int have_spare = 0;
    for (int64_t x = 0; x < f.n[0]; x++)
        for (int64_t y = 0; y < f.n[1]; y++) {
            double vv = coord_v(&f, y);
            size_t base = (size_t)((x * f.n[1] + y) * f.n[2]);
            for (int64_t z = 0; z < f.n[2]; z++) {
                uint8_t t = label[base + (size_t)z];
                double hu;
                if (t >= T_VESSEL0)
                    hu = vessel_hu[t - T_VESSEL0];
                else if (t == T_LUNG)
                    hu = an.lung_hu - 30.0 * vv; /* denser posteriorly (v < 0) */
                else
                    hu = tissue_hu[t];
                double g;
                if (have_spare) {
                    g = spare;
                    have_spare = 0;
                } else {
                    double u1 = 1.0 - rng_uniform(&rng), u2 = rng_uniform(&rng);
                    double r = sqrt(-2.0 * log(u1));
                    g = r * cos(6.283185307179586 * u2);
                    spare = r * sin(6.283185307179586 * u2);
                    have_spare = 1;
                }
                v->data[base + (size_t)z] = (float)(hu + opt->noise_sd * g);
            }
        }
cleanup:
    free(label);
    return status;
}

int phantom_write_series(const char *output_dir, int count, uint64_t first_index,
                         const phantom_options *opt, phantom_progress_fn progress, void *user)
{
    phantom_options defaults;
    if (opt == NULL) {
        phantom_options_default(&defaults);
        opt = &defaults;
    }
    CHECK(count >= 0, GEN_ERR_USAGE, "phantom count must be >= 0 (got %d)", count);
    CHECK(output_dir != NULL && output_dir[0] != '\0', GEN_ERR_USAGE, "phantom: empty output dir");
    CALL(check_options(opt));
    struct stat st;
    CHECK(stat(output_dir, &st) == 0, GEN_ERR_IO, "%s: cannot use as output directory: %s",
          output_dir, strerror(errno));
    CHECK(S_ISDIR(st.st_mode), GEN_ERR_IO, "%s: not a directory", output_dir);
    CHECK(access(output_dir, W_OK) == 0, GEN_ERR_IO, "%s: not writable: %s", output_dir,
          strerror(errno));
    int status = GEN_OK;
    volume v = {0};
    for (int k = 0; k < count; k++) {
        uint64_t index = first_index + (uint64_t)k;
        char path[4096], descrip[80];
        int len = snprintf(path, sizeof path, "%s/phantom_%04llu.nii.gz", output_dir,
                           (unsigned long long)index);
        CHECK_GOTO(len > 0 && (size_t)len < sizeof path, GEN_ERR_USAGE, "%s: path too long", output_dir);
        snprintf(descrip, sizeof descrip, "genesis phantom seed %llu index %llu",
                 (unsigned long long)opt->seed, (unsigned long long)index);
        CALL_GOTO(phantom_make(&v, index, opt));
        volume_write_options wo = {VOLUME_INT16, 0, NULL, descrip, 1}; /* gzip -1: 4x faster */
        CALL_GOTO(volume_write(&v, path, &wo));
        volume_free(&v);
        if (progress != NULL) progress(k + 1, count, path, user);
    }
cleanup:
    volume_free(&v);
    return status;
}
