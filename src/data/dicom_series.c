/* DICOM series -> volumes (include/genesis/dicom.h): finding the series of a folder, and assembling
 * one series from its slices, which src/data/dicom_gdcm.cpp reads with GDCM.
 *
 * Geometry. Each slice carries ImagePositionPatient p (centre of its first pixel), the unit vectors
 * r (along a row: increasing column index) and c (along a column) of ImageOrientationPatient, and
 * PixelSpacing (between rows, between columns), all in DICOM's LPS patient frame. The slices are
 * sorted by d = p . n with n = r x c (the slice normal), never by file name or InstanceNumber. The
 * volume's axes: x = column index, y = row index, z = slice in order of increasing d, so that
 * world_LPS(x, y, z) = p_0 + x PixelSpacing[1] r + y PixelSpacing[0] c + z dz n, with dz the mean
 * of the gaps between neighbouring d; the affine is that map with its x and y rows negated (RAS+).
 *
 * Refused (GEN_ERR_DATA "LOCATOR: reason"): localizer/scout images (ImageType LOCALIZER), slices
 * with different sizes, orientations or pixel spacings, one slice, two slices at one position, a gap
 * over 1.5 times the median spacing (missing slices), uneven spacing (any gap off the median by more
 * than 1% of it: refused with the spacings, not resampled), positions off the normal (gantry tilt),
 * multi-frame and colour images, and pixels GDCM cannot decode. Memory: the slices' pixels and the
 * volume are held at once (about twice the volume's float32 size). */
#include "genesis/dicom.h"

#include "genesis/error.h"
#include "dicom_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert((int)DICOM_GDCM_ERR_IO == (int)GEN_ERR_IO && (int)DICOM_GDCM_ERR_DATA == (int)GEN_ERR_DATA &&
                   (int)DICOM_GDCM_ERR_NOMEM == (int)GEN_ERR_NOMEM,
               "dicom_internal.h's codes must equal error.h's");

enum { NIFTI_XFORM_SCANNER = 1 }; /* NIfTI xform code: scanner-based anatomical coordinates */

int dicom_available(void) { return 1; }

static int is_folder(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Splits a locator into its folder (trailing slashes removed) and UID ("" when none): both malloc'd. */
static int split_locator(const char *locator, char **folder, char **uid)
{
    *folder = *uid = NULL;
    const char *hash = is_folder(locator) ? NULL : strrchr(locator, '#');
    size_t len = hash ? (size_t)(hash - locator) : strlen(locator);
    while (len > 1 && locator[len - 1] == '/') len--;
    *folder = strndup(locator, len);
    *uid = strdup(hash ? hash + 1 : "");
    if (*folder == NULL || *uid == NULL) {
        free(*folder);
        free(*uid);
        *folder = *uid = NULL;
        FAIL(GEN_ERR_NOMEM, "%s: out of memory", locator);
    }
    return GEN_OK;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The regular files directly inside folder, as "FOLDER/NAME", sorted by name. */
static int list_files(const char *folder, char ***paths, size_t *count)
{
    *paths = NULL;
    *count = 0;
    DIR *dir = opendir(folder);
    CHECK(dir != NULL, GEN_ERR_IO, "%s: cannot open the folder: %s", folder, strerror(errno));
    int status = GEN_OK;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0)) continue;
        size_t len = strlen(folder) + strlen(e->d_name) + 2;
        char *path = malloc(len);
        CHECK_ALLOC_GOTO(path, len);
        snprintf(path, len, "%s/%s", folder, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (*count == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(*paths, cap * sizeof *grown);
            if (grown == NULL) free(path);
            CHECK_ALLOC_GOTO(grown, cap * sizeof *grown);
            *paths = grown;
        }
        (*paths)[(*count)++] = path;
    }
    if (*count > 1) qsort(*paths, *count, sizeof **paths, compare_strings);
cleanup:
    closedir(dir);
    if (status != GEN_OK) {
        dicom_free_list(*paths, *count);
        *paths = NULL;
        *count = 0;
    }
    return status;
}

/* The files of folder and, for each, its SeriesInstanceUID (NULL: not a DICOM image). */
static int scan_folder(const char *folder, char ***paths, char ***uids, size_t *count)
{
    *uids = NULL;
    CALL(list_files(folder, paths, count));
    int status = GEN_OK;
    *uids = calloc(*count ? *count : 1, sizeof **uids);
    CHECK_ALLOC_GOTO(*uids, *count * sizeof **uids);
    char err[1024];
    int code = dicom_gdcm_series_uids((const char *const *)*paths, *count, *uids, err, sizeof err);
    CHECK_GOTO(code == 0, code, "%s", err);
cleanup:
    if (status != GEN_OK) {
        dicom_free_list(*paths, *count);
        dicom_free_list(*uids, *count);
        *paths = *uids = NULL;
        *count = 0;
    }
    return status;
}

/* The distinct non-NULL entries of uids[n], sorted (pointers into uids, not copies). */
static int distinct_uids(char **uids, size_t n, const char ***out, size_t *count)
{
    *count = 0;
    *out = malloc((n ? n : 1) * sizeof **out);
    CHECK_ALLOC(*out, n * sizeof **out);
    for (size_t i = 0; i < n; i++)
        if (uids[i] != NULL) (*out)[(*count)++] = uids[i];
    if (*count > 1) qsort(*out, *count, sizeof **out, compare_strings);
    size_t kept = 0;
    for (size_t i = 0; i < *count; i++)
        if (kept == 0 || strcmp((*out)[kept - 1], (*out)[i]) != 0) (*out)[kept++] = (*out)[i];
    *count = kept;
    return GEN_OK;
}

int dicom_list_series(const char *folder, char ***locators, size_t *count)
{
    *locators = NULL;
    *count = 0;
    char *dir = NULL, *ignored = NULL, **paths = NULL, **uids = NULL;
    const char **series = NULL;
    size_t nfiles = 0, nseries = 0;
    CALL(split_locator(folder, &dir, &ignored));
    int status = GEN_OK;
    CHECK_GOTO(is_folder(dir), GEN_ERR_IO, "%s: not a folder", dir);
    CALL_GOTO(scan_folder(dir, &paths, &uids, &nfiles));
    CALL_GOTO(distinct_uids(uids, nfiles, &series, &nseries));
    if (nseries > 0) {
        *locators = calloc(nseries, sizeof **locators);
        CHECK_ALLOC_GOTO(*locators, nseries * sizeof **locators);
    }
    for (size_t i = 0; i < nseries; i++) {
        size_t len = strlen(dir) + strlen(series[i]) + 2;
        (*locators)[i] = malloc(len);
        CHECK_ALLOC_GOTO((*locators)[i], len);
        snprintf((*locators)[i], len, "%s#%s", dir, series[i]);
        *count = i + 1;
    }
cleanup:
    if (status != GEN_OK) {
        dicom_free_list(*locators, nseries);
        *locators = NULL;
        *count = 0;
    }
    free(series);
    dicom_free_list(paths, nfiles);
    dicom_free_list(uids, nfiles);
    free(dir);
    free(ignored);
    return status;
}

void dicom_free_slices(dicom_slice *slices, size_t count)
{
    if (slices == NULL) return;
    for (size_t i = 0; i < count; i++) {
        free(slices[i].path);
        free(slices[i].pixels);
    }
    free(slices);
}

/* Which series of the folder the locator names: its UID, or the folder's only series. */
static int choose_series(const char *locator, const char *folder, const char *uid, char **uids,
                         size_t nfiles, const char **chosen)
{
    const char **series = NULL;
    size_t nseries = 0;
    CALL(distinct_uids(uids, nfiles, &series, &nseries));
    int status = GEN_OK;
    *chosen = NULL;
    CHECK_GOTO(nseries > 0, GEN_ERR_DATA, "%s: no DICOM images in the folder (%zu file(s), none a "
               "readable DICOM image with a SeriesInstanceUID)", locator, nfiles);
    if (uid[0] != '\0') {
        for (size_t i = 0; i < nseries; i++)
            if (strcmp(series[i], uid) == 0) *chosen = series[i];
        CHECK_GOTO(*chosen != NULL, GEN_ERR_DATA, "%s: no series with SeriesInstanceUID %s among the "
                   "%zu series of %s (the first: %s#%s)", locator, uid, nseries, folder, folder, series[0]);
    } else {
        CHECK_GOTO(nseries == 1, GEN_ERR_DATA, "%s: the folder holds %zu DICOM series (%s#%s, %s#%s%s); "
                   "name one as FOLDER#SeriesInstanceUID", locator, nseries, folder, series[0], folder,
                   series[1], nseries > 2 ? ", ..." : "");
        *chosen = series[0];
    }
cleanup:
    free(series);
    return status;
}

int dicom_read_slices(const char *locator, dicom_slice **slices, size_t *count)
{
    *slices = NULL;
    *count = 0;
    char *folder = NULL, *uid = NULL, **paths = NULL, **uids = NULL;
    size_t nfiles = 0;
    CHECK(locator != NULL && locator[0] != '\0', GEN_ERR_USAGE, "DICOM: empty locator");
    CALL(split_locator(locator, &folder, &uid));
    int status = GEN_OK;
    CHECK_GOTO(is_folder(folder), GEN_ERR_IO, "%s: %s is not a folder", locator, folder);
    CALL_GOTO(scan_folder(folder, &paths, &uids, &nfiles));
    const char *chosen = NULL;
    CALL_GOTO(choose_series(locator, folder, uid, uids, nfiles, &chosen));
    size_t n = 0;
    for (size_t i = 0; i < nfiles; i++) n += uids[i] != NULL && strcmp(uids[i], chosen) == 0;
    *slices = calloc(n, sizeof **slices);
    CHECK_ALLOC_GOTO(*slices, n * sizeof **slices);
    char err[1024];
    for (size_t i = 0; i < nfiles; i++) {
        if (uids[i] == NULL || strcmp(uids[i], chosen) != 0) continue;
        dicom_slice *s = &(*slices)[(*count)++];
        s->path = paths[i];
        paths[i] = NULL;
        int code = dicom_gdcm_read_slice(s, s->path, err, sizeof err);
        CHECK_GOTO(code == 0, code, "%s: %s", locator, err);
    }
cleanup:
    if (status != GEN_OK) {
        dicom_free_slices(*slices, *count);
        *slices = NULL;
        *count = 0;
    }
    dicom_free_list(paths, nfiles);
    dicom_free_list(uids, nfiles);
    free(folder);
    free(uid);
    return status;
}

/* ---- assembling a volume ---------------------------------------------------------------- */

static double dot3(const double a[3], const double b[3]) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

static void cross3(double out[3], const double a[3], const double b[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The checks each slice passes on its own, and against the first slice. */
static int check_slice(const char *locator, const dicom_slice *s, const dicom_slice *first)
{
    const char *f = base_name(s->path);
    CHECK(!s->is_localizer, GEN_ERR_DATA, "%s: %s is a localizer (scout) image (ImageType LOCALIZER), "
          "not part of a 3-D scan", locator, f);
    CHECK(s->has_position && s->has_orientation, GEN_ERR_DATA, "%s: %s has no %s: the slice's place "
          "in the patient is unknown", locator, f,
          s->has_position ? "ImageOrientationPatient" : "ImagePositionPatient");
    CHECK(s->has_pixel_spacing && s->pixel_spacing[0] > 0 && s->pixel_spacing[1] > 0, GEN_ERR_DATA,
          "%s: %s has no valid PixelSpacing", locator, f);
    int finite = isfinite(s->slope) && isfinite(s->intercept);
    for (int i = 0; i < 3; i++)
        finite = finite && isfinite(s->position[i]) && isfinite(s->row_dir[i]) && isfinite(s->col_dir[i]);
    CHECK(finite, GEN_ERR_DATA, "%s: %s: a non-finite position, orientation or rescale value", locator, f);
    CHECK(s->rows == first->rows && s->cols == first->cols, GEN_ERR_DATA, "%s: slices of mixed sizes "
          "(%s is %lldx%lld, %s is %lldx%lld rows x columns)", locator, base_name(first->path),
          (long long)first->rows, (long long)first->cols, f, (long long)s->rows, (long long)s->cols);
    double off = 0;
    for (int i = 0; i < 3; i++)
        off = fmax(off, fmax(fabs(s->row_dir[i] - first->row_dir[i]),
                             fabs(s->col_dir[i] - first->col_dir[i])));
    CHECK(off <= 1e-4, GEN_ERR_DATA, "%s: slices with different orientations (ImageOrientationPatient "
          "%g\\%g\\%g\\%g\\%g\\%g in %s, %g\\%g\\%g\\%g\\%g\\%g in %s): a localizer, or several stacks in "
          "one series", locator, first->row_dir[0], first->row_dir[1], first->row_dir[2],
          first->col_dir[0], first->col_dir[1], first->col_dir[2], base_name(first->path), s->row_dir[0],
          s->row_dir[1], s->row_dir[2], s->col_dir[0], s->col_dir[1], s->col_dir[2], f);
    for (int i = 0; i < 2; i++)
        CHECK(fabs(s->pixel_spacing[i] - first->pixel_spacing[i]) <= 1e-4 * first->pixel_spacing[i],
              GEN_ERR_DATA, "%s: slices with different PixelSpacing (%g\\%g in %s, %g\\%g in %s)", locator,
              first->pixel_spacing[0], first->pixel_spacing[1], base_name(first->path),
              s->pixel_spacing[0], s->pixel_spacing[1], f);
    return GEN_OK;
}

/* The slice normal n = r x c of a (checked) orientation; refuses one that is not two orthogonal
 * unit vectors. */
static int slice_normal(const char *locator, const dicom_slice *s, double n[3])
{
    cross3(n, s->row_dir, s->col_dir);
    double rn = sqrt(dot3(s->row_dir, s->row_dir)), cn = sqrt(dot3(s->col_dir, s->col_dir));
    CHECK(fabs(rn - 1) < 1e-3 && fabs(cn - 1) < 1e-3 && fabs(dot3(s->row_dir, s->col_dir)) < 1e-3,
          GEN_ERR_DATA, "%s: %s: ImageOrientationPatient is not two orthogonal unit vectors", locator,
          base_name(s->path));
    double nn = sqrt(dot3(n, n));
    for (int i = 0; i < 3; i++) n[i] /= nn;
    return GEN_OK;
}

typedef struct slice_order {
    double d; /* ImagePositionPatient . normal, mm */
    size_t index;
} slice_order;

static int compare_order(const void *a, const void *b)
{
    double da = ((const slice_order *)a)->d, db = ((const slice_order *)b)->d;
    return (da > db) - (da < db);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The spacings (gaps between neighbouring d, n-1 of them, sorted slices) as "a, b, c, ..." */
static void format_gaps(char *out, size_t len, const double *gaps, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used + 32 < len; i++) {
        if (i == 16) {
            snprintf(out + used, len - used, ", ... (%zu in all)", n);
            return;
        }
        used += (size_t)snprintf(out + used, len - used, "%s%.4g", i ? ", " : "", gaps[i]);
    }
}

/* Checks the sorted positions (order[n]: d ascending) for duplicates, gaps, uneven spacing and
 * positions off the normal; *dz = the mean spacing. */
static int check_spacing(const char *locator, const dicom_slice *slices, const slice_order *order,
                         size_t n, const double normal[3], double *dz)
{
    double *gaps = malloc(2 * (n - 1) * sizeof *gaps);
    CHECK_ALLOC(gaps, 2 * (n - 1) * sizeof *gaps);
    double *sorted = gaps + (n - 1);
    int status = GEN_OK;
    for (size_t k = 0; k + 1 < n; k++) {
        gaps[k] = sorted[k] = order[k + 1].d - order[k].d;
        CHECK_GOTO(gaps[k] > 1e-3, GEN_ERR_DATA, "%s: two slices at the same position (%s and %s, "
                   "%.4g mm along the normal): several acquisitions, echoes or phases in one series",
                   locator, base_name(slices[order[k].index].path),
                   base_name(slices[order[k + 1].index].path), order[k].d);
    }
    qsort(sorted, n - 1, sizeof *sorted, compare_doubles);
    double median = (n - 1) % 2 ? sorted[(n - 1) / 2] : 0.5 * (sorted[(n - 1) / 2 - 1] + sorted[(n - 1) / 2]);
    for (size_t k = 0; k + 1 < n; k++)
        CHECK_GOTO(gaps[k] <= 1.5 * median, GEN_ERR_DATA, "%s: missing slices: a gap of %.4g mm between "
                   "%s and %s where the median spacing is %.4g mm (about %.0f slice(s) missing)", locator,
                   gaps[k], base_name(slices[order[k].index].path),
                   base_name(slices[order[k + 1].index].path), median, gaps[k] / median - 1);
    char list[512];
    for (size_t k = 0; k + 1 < n; k++) {
        if (fabs(gaps[k] - median) <= 0.01 * median) continue;
        format_gaps(list, sizeof list, gaps, n - 1);
        CHECK_GOTO(0, GEN_ERR_DATA, "%s: uneven slice spacing (mm, in order along the normal: %s; "
                   "median %.4g): refused, not resampled", locator, list, median);
    }
    const double *p0 = slices[order[0].index].position;
    for (size_t k = 1; k < n; k++) {
        const double *p = slices[order[k].index].position;
        double lateral[3], along = order[k].d - order[0].d;
        for (int i = 0; i < 3; i++) lateral[i] = p[i] - p0[i] - along * normal[i];
        double off = sqrt(dot3(lateral, lateral));
        CHECK_GOTO(off <= 0.01 * median * (double)k, GEN_ERR_DATA, "%s: slice positions do not run "
                   "along the slice normal (%s is %.3g mm off it: a gantry tilt of about %.2g degrees); "
                   "tilted series are not read", locator, base_name(slices[order[k].index].path), off,
                   atan2(off, along) * 180 / M_PI);
    }
    *dz = (order[n - 1].d - order[0].d) / (double)(n - 1);
cleanup:
    free(gaps);
    return status;
}

/* v = the sorted slices: data[(x * ny + y) * nz + z] = slice z's pixel (row y, column x). */
static int fill_volume(volume *v, const dicom_slice *slices, const slice_order *order, size_t n,
                       const double normal[3], double dz)
{
    const dicom_slice *first = &slices[order[0].index];
    int64_t nx = first->cols, ny = first->rows, nz = (int64_t)n;
    size_t bytes = (size_t)(nx * ny * nz) * sizeof(float);
    v->data = malloc(bytes);
    CHECK_ALLOC(v->data, bytes);
    for (int64_t z = 0; z < nz; z++) {
        const float *pix = slices[order[z].index].pixels;
        for (int64_t y = 0; y < ny; y++)
            for (int64_t x = 0; x < nx; x++) v->data[(x * ny + y) * nz + z] = pix[y * nx + x];
    }
    v->dim[0] = nx;
    v->dim[1] = ny;
    v->dim[2] = nz;
    v->spacing[0] = first->pixel_spacing[1];
    v->spacing[1] = first->pixel_spacing[0];
    v->spacing[2] = dz;
    memset(v->affine, 0, sizeof v->affine);
    for (int i = 0; i < 3; i++) {
        double lps_to_ras = i < 2 ? -1.0 : 1.0;
        v->affine[i][0] = lps_to_ras * first->row_dir[i] * v->spacing[0];
        v->affine[i][1] = lps_to_ras * first->col_dir[i] * v->spacing[1];
        v->affine[i][2] = lps_to_ras * normal[i] * dz;
        v->affine[i][3] = lps_to_ras * first->position[i];
    }
    v->affine[3][3] = 1.0;
    v->affine_code = NIFTI_XFORM_SCANNER;
    v->source_datatype = first->datatype;
    v->source_nifti_type = 0;
    v->source_format = VOLUME_FORMAT_DICOM;
    return GEN_OK;
}

static int assemble(volume *v, const char *locator, const dicom_slice *slices, size_t n)
{
    for (size_t i = 0; i < n; i++) CALL(check_slice(locator, &slices[i], &slices[0]));
    CHECK(n >= 2, GEN_ERR_DATA, "%s: a single slice (%s, %lldx%lld): a 3-D scan needs a series of "
          "slices", locator, base_name(slices[0].path), (long long)slices[0].rows, (long long)slices[0].cols);
    double normal[3], dz = 0;
    CALL(slice_normal(locator, &slices[0], normal));
    slice_order *order = malloc(n * sizeof *order);
    CHECK_ALLOC(order, n * sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = (slice_order){dot3(slices[i].position, normal), i};
    qsort(order, n, sizeof *order, compare_order);
    int status = GEN_OK;
    CALL_GOTO(check_spacing(locator, slices, order, n, normal, &dz));
    CALL_GOTO(fill_volume(v, slices, order, n, normal, dz));
    size_t nvox = (size_t)(v->dim[0] * v->dim[1] * v->dim[2]);
    for (size_t i = 0; i < nvox; i++)
        CHECK_GOTO(isfinite(v->data[i]), GEN_ERR_DATA, "%s: non-finite voxel values after rescaling",
                   locator);
cleanup:
    free(order);
    return status;
}

int volume_read_dicom(volume *v, const char *locator, const volume_read_options *opt)
{
    volume_read_options defaults;
    if (opt == NULL) {
        volume_read_options_default(&defaults);
        opt = &defaults;
    }
    memset(v, 0, sizeof *v);
    dicom_slice *slices = NULL;
    size_t n = 0;
    CALL(dicom_read_slices(locator, &slices, &n));
    int status = GEN_OK;
    CALL_GOTO(assemble(v, locator, slices, n));
    if (opt->reorient_ras) CALL_GOTO(volume_reorient_ras(v));
    if (opt->spacing[0] > 0 || opt->spacing[1] > 0 || opt->spacing[2] > 0)
        CALL_GOTO(volume_resample(v, opt->spacing));
cleanup:
    dicom_free_slices(slices, n);
    if (status != GEN_OK) volume_free(v);
    return status;
}
