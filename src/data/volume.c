/* Scan volumes: NIfTI in and out through libnifti's nifti2 API (include/genesis/volume.h). */
#include "genesis/volume.h"

#include "genesis/error.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "nifti2_io.h"

/* ---- small helpers ---------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void affine_identity(double a[4][4])
{
    memset(a, 0, 16 * sizeof(double));
    for (int i = 0; i < 4; i++) a[i][i] = 1.0;
}

/* c = a * b for 4x4 matrices (c may not alias a or b). */
static void affine_mul(double c[4][4], const double a[4][4], const double b[4][4])
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0.0;
            for (int k = 0; k < 4; k++) s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
}

int gzip_verify(const char *path)
{
    gzFile f = gzopen(path, "rb");
    CHECK(f != NULL, GEN_ERR_IO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    if (buf == NULL) {
        gzclose(f);
        CHECK_ALLOC(buf, (size_t)CHUNK);
    }
    int got, err = Z_OK;
    while ((got = gzread(f, buf, CHUNK)) > 0) {
    }
    const char *msg = gzerror(f, &err);
    char reason[160];
    snprintf(reason, sizeof reason, "%s", msg ? msg : "");
    free(buf);
    int close_status = gzclose(f);
    if (got < 0 || (err != Z_OK && err != Z_STREAM_END)) {
        if (err == Z_BUF_ERROR) FAIL(GEN_ERR_DATA, "%s: truncated gzip stream (%s)", path, reason);
        FAIL(GEN_ERR_DATA, "%s: corrupt gzip stream (%s)", path, reason);
    }
    /* gzclose reports a CRC/length mismatch of the last member as Z_DATA_ERROR / Z_BUF_ERROR. */
    CHECK(close_status == Z_OK, GEN_ERR_DATA, "%s: corrupt gzip stream (check on close: %d)", path,
          close_status);
    return GEN_OK;
}

/* ---- reading ---------------------------------------------------------------------------- */

void volume_read_options_default(volume_read_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->verify_gzip = 1;
}

/* Converts the loaded NIfTI voxels (x fastest: in[x + nx * (y + ny * z)]) into out[(x*ny + y)*nz + z]
 * as float32 of slope * v + inter. Tiles of 16 x-values keep reads and writes cache friendly. */
#define DEFINE_CONVERT(NAME, T)                                                                  \
    static void NAME(float *out, const void *in_, int64_t nx, int64_t ny, int64_t nz,          \
                     double slope, double inter)                                                 \
    {                                                                                            \
        const T *in = (const T *)in_;                                                            \
        enum { TILE = 16 };                                                                      \
        for (int64_t y = 0; y < ny; y++)                                                         \
            for (int64_t x0 = 0; x0 < nx; x0 += TILE) {                                          \
                int64_t x1 = x0 + TILE < nx ? x0 + TILE : nx;                                    \
                for (int64_t z = 0; z < nz; z++) {                                               \
                    const T *row = in + (size_t)(nx * (y + ny * z));                             \
                    for (int64_t x = x0; x < x1; x++)                                            \
                        out[(size_t)((x * ny + y) * nz + z)] =                                   \
                            (float)(slope * (double)row[x] + inter);                             \
                }                                                                                \
            }                                                                                    \
    }

DEFINE_CONVERT(convert_u8, uint8_t)
DEFINE_CONVERT(convert_i8, int8_t)
DEFINE_CONVERT(convert_i16, int16_t)
DEFINE_CONVERT(convert_u16, uint16_t)
DEFINE_CONVERT(convert_i32, int32_t)
DEFINE_CONVERT(convert_u32, uint32_t)
DEFINE_CONVERT(convert_i64, int64_t)
DEFINE_CONVERT(convert_u64, uint64_t)
DEFINE_CONVERT(convert_f32, float)
DEFINE_CONVERT(convert_f64, double)
DEFINE_CONVERT(convert_f128, long double)

typedef void (*convert_fn)(float *, const void *, int64_t, int64_t, int64_t, double, double);

static convert_fn converter_for(int datatype)
{
    switch (datatype) {
    case DT_UINT8: return convert_u8;
    case DT_INT8: return convert_i8;
    case DT_INT16: return convert_i16;
    case DT_UINT16: return convert_u16;
    case DT_INT32: return convert_i32;
    case DT_UINT32: return convert_u32;
    case DT_INT64: return convert_i64;
    case DT_UINT64: return convert_u64;
    case DT_FLOAT32: return convert_f32;
    case DT_FLOAT64: return convert_f64;
    case DT_FLOAT128: return convert_f128;
    default: return NULL;
    }
}

/* Checks the dimensions of a header: 3-D, or higher with every dimension beyond z equal to 1. */
static int check_dims(const char *path, const nifti_image *nim)
{
    int64_t ndim = nim->dim[0];
    CHECK(ndim >= 1 && ndim <= 7, GEN_ERR_DATA, "%s: corrupt header (dim[0] = %lld)", path,
          (long long)ndim);
    for (int d = 1; d <= ndim; d++)
        CHECK(nim->dim[d] >= 1, GEN_ERR_DATA, "%s: corrupt header (dim[%d] = %lld)", path, d,
              (long long)nim->dim[d]);
    int64_t extra = 1;
    for (int d = 4; d <= ndim; d++) extra *= nim->dim[d];
    CHECK(extra == 1, GEN_ERR_DATA,
          "%s: %lld-D image with %lld volumes (%lldx%lldx%lld each); only a single 3-D volume is "
          "supported",
          path, (long long)ndim, (long long)extra, (long long)nim->dim[1],
          (long long)(ndim >= 2 ? nim->dim[2] : 1), (long long)(ndim >= 3 ? nim->dim[3] : 1));
    CHECK(ndim >= 3 && nim->dim[3] > 1, GEN_ERR_DATA,
          "%s: 2-D image (%lldx%lld, dim[0] = %lld); a 3-D volume is required", path,
          (long long)nim->dim[1], (long long)(ndim >= 2 ? nim->dim[2] : 1), (long long)ndim);
    return GEN_OK;
}

/* The voxel -> world affine NIfTI prescribes: sform if set, else qform, else diag(pixdim). */
static void affine_from_nim(volume *v, const nifti_image *nim)
{
    const nifti_dmat44 *m = NULL;
    if (nim->sform_code > 0) {
        m = &nim->sto_xyz;
        v->affine_code = nim->sform_code;
    } else if (nim->qform_code > 0) {
        m = &nim->qto_xyz;
        v->affine_code = nim->qform_code;
    }
    affine_identity(v->affine);
    if (m != NULL) {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) v->affine[i][j] = m->m[i][j];
    } else {
        v->affine_code = 0;
        for (int i = 0; i < 3; i++) v->affine[i][i] = v->spacing[i];
    }
}

static int check_finite(const char *path, const volume *v)
{
    size_t n = (size_t)(v->dim[0] * v->dim[1] * v->dim[2]), bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v->data[i])) {
            if (bad++ == 0) first = i;
        }
    if (bad == 0) return GEN_OK;
    int64_t z = (int64_t)(first % (size_t)v->dim[2]);
    int64_t y = (int64_t)(first / (size_t)v->dim[2] % (size_t)v->dim[1]);
    int64_t x = (int64_t)(first / (size_t)(v->dim[2] * v->dim[1]));
    FAIL(GEN_ERR_DATA, "%s: %zu non-finite voxel(s) (NaN/Inf after scaling), the first at voxel "
         "(%lld, %lld, %lld) = %g", path, bad, (long long)x, (long long)y, (long long)z,
         (double)v->data[first]);
}

/* The header-level part of reading: open, parse, validate. On success *out owns the header. */
static int read_header(nifti_image **out, const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0, GEN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    CHECK(S_ISREG(st.st_mode), GEN_ERR_IO, "%s: not a regular file", path);
    CHECK(access(path, R_OK) == 0, GEN_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    nifti_set_debug_level(0); /* libnifti would print to stderr; our message names file and reason */
    nifti_image *nim = nifti_image_read(path, 0);
    if (nim == NULL) {
        if (ends_with(path, ".gz")) CALL(gzip_verify(path)); /* names a gzip problem precisely */
        FAIL(GEN_ERR_DATA, "%s: not a readable NIfTI-1, NIfTI-2 or ANALYZE header (corrupt, "
             "truncated, or not an image)", path);
    }
    /* libnifti reports NIfTI-2 files as NIFTI1_1/NIFTI1_2: ask the header itself. */
    int nver = 1;
    void *raw = nifti_read_header(path, &nver, 0);
    free(raw);
    if (nver == 2 && nim->nifti_type == NIFTI_FTYPE_NIFTI1_1) nim->nifti_type = NIFTI_FTYPE_NIFTI2_1;
    if (nver == 2 && nim->nifti_type == NIFTI_FTYPE_NIFTI1_2) nim->nifti_type = NIFTI_FTYPE_NIFTI2_2;
    int status = check_dims(path, nim);
    if (status == GEN_OK && converter_for(nim->datatype) == NULL) {
        status = gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__,
                               "%s: voxel type %s (%d) is not supported (need a real scalar type)",
                               path, nifti_datatype_string(nim->datatype), nim->datatype);
    }
    if (status != GEN_OK) {
        nifti_image_free(nim);
        return status;
    }
    *out = nim;
    return GEN_OK;
}

/* Reads the voxel bytes of the first volume into nim->data (native byte order). Done here rather
 * than by nifti_image_load, which silently replaces NaN/Inf floats with 0 (we refuse them) and
 * cannot say how far a short read got. */
static int load_voxels(nifti_image *nim, const char *path)
{
    const char *iname = nim->iname ? nim->iname : path;
    size_t bytes = (size_t)(nim->dim[1] * nim->dim[2] * nim->dim[3]) * (size_t)nim->nbyper;
    znzFile f = znzopen(iname, "rb", nifti_is_gzfile(iname));
    CHECK(!znz_isnull(f), GEN_ERR_IO, "%s: cannot open image data %s: %s", path, iname,
          strerror(errno));
    nim->data = malloc(bytes ? bytes : 1);
    if (nim->data == NULL) {
        znzclose(f);
        FAIL(GEN_ERR_NOMEM, "%s: out of memory allocating %zu bytes", path, bytes);
    }
    int ok = znzseek(f, (znz_off_t)nim->iname_offset, SEEK_SET) >= 0;
    size_t got = 0;
    while (ok && got < bytes) { /* chunks: znz's gzip path reads at most INT_MAX bytes a call */
        size_t want = bytes - got < ((size_t)1 << 30) ? bytes - got : ((size_t)1 << 30);
        size_t n = znzread((char *)nim->data + got, 1, want, f);
        got += n;
        if (n < want) break;
    }
    znzclose(f);
    CHECK(ok, GEN_ERR_DATA, "%s: truncated or corrupt: cannot seek to the image data at byte %lld",
          path, (long long)nim->iname_offset);
    CHECK(got == bytes, GEN_ERR_DATA,
          "%s: truncated or corrupt image data: read %zu of %zu bytes (%lld voxels of %d bytes)",
          path, got, bytes, (long long)(nim->dim[1] * nim->dim[2] * nim->dim[3]), nim->nbyper);
    if (nim->swapsize > 1 && nim->byteorder != nifti_short_order())
        nifti_swap_Nbytes((int64_t)(bytes / (size_t)nim->swapsize), nim->swapsize, nim->data);
    return GEN_OK;
}

static int volume_read_nifti(volume *v, const char *path, int verify_gzip)
{
    nifti_image *nim = NULL;
    CALL(read_header(&nim, path));
    int64_t nx = nim->dim[1], ny = nim->dim[2], nz = nim->dim[3];
    int status = load_voxels(nim, path);
    if (status != GEN_OK) goto done;
    if (verify_gzip && nim->iname && ends_with(nim->iname, ".gz")) {
        status = gzip_verify(nim->iname);
        if (status != GEN_OK) goto done;
    }
    size_t n = (size_t)(nx * ny * nz);
    v->data = malloc(n * sizeof(float));
    if (v->data == NULL) {
        status = gen_error_set(GEN_ERR_NOMEM, __FILE__, __LINE__,
                               "%s: out of memory allocating %zu bytes", path, n * sizeof(float));
        goto done;
    }
    v->dim[0] = nx;
    v->dim[1] = ny;
    v->dim[2] = nz;
    double slope = nim->scl_slope, inter = nim->scl_inter;
    if (slope == 0.0 || !isfinite(slope)) { /* NIfTI: slope 0 means the values are used as stored */
        slope = 1.0;
        inter = 0.0;
    }
    if (!isfinite(inter)) inter = 0.0;
    converter_for(nim->datatype)(v->data, nim->data, nx, ny, nz, slope, inter);
    v->spacing[0] = fabs(nim->dx);
    v->spacing[1] = fabs(nim->dy);
    v->spacing[2] = fabs(nim->dz);
    for (int a = 0; a < 3; a++)
        if (!(v->spacing[a] > 0.0) || !isfinite(v->spacing[a])) v->spacing[a] = 1.0;
    affine_from_nim(v, nim);
    v->source_datatype = nim->datatype;
    v->source_nifti_type = nim->nifti_type;
    status = check_finite(path, v);
done:
    nifti_image_free(nim);
    return status;
}

int volume_read(volume *v, const char *path, const volume_read_options *opt)
{
    volume_read_options defaults;
    if (opt == NULL) {
        volume_read_options_default(&defaults);
        opt = &defaults;
    }
    memset(v, 0, sizeof *v);
    CHECK(path != NULL && path[0] != '\0', GEN_ERR_USAGE, "volume_read: empty path");
    int status = volume_read_nifti(v, path, opt->verify_gzip);
    if (status == GEN_OK && opt->reorient_ras) status = volume_reorient_ras(v);
    if (status == GEN_OK && (opt->spacing[0] > 0 || opt->spacing[1] > 0 || opt->spacing[2] > 0))
        status = volume_resample(v, opt->spacing);
    if (status != GEN_OK) {
        volume_free(v);
        return gen_error_trace(status, __FILE__, __LINE__);
    }
    return GEN_OK;
}

int volume_alloc(volume *v, const int64_t dim[3], const double spacing[3])
{
    memset(v, 0, sizeof *v);
    for (int a = 0; a < 3; a++) {
        CHECK(dim[a] >= 1, GEN_ERR_USAGE, "volume_alloc: dimension %d is %lld", a,
              (long long)dim[a]);
        CHECK(spacing[a] > 0 && isfinite(spacing[a]), GEN_ERR_USAGE,
              "volume_alloc: spacing %d is %g", a, spacing[a]);
    }
    size_t n = (size_t)(dim[0] * dim[1] * dim[2]);
    v->data = calloc(n, sizeof(float));
    CHECK_ALLOC(v->data, n * sizeof(float));
    affine_identity(v->affine);
    for (int a = 0; a < 3; a++) {
        v->dim[a] = dim[a];
        v->spacing[a] = spacing[a];
        v->affine[a][a] = spacing[a];
        v->affine[a][3] = -0.5 * (double)(dim[a] - 1) * spacing[a];
    }
    v->affine_code = NIFTI_XFORM_SCANNER_ANAT;
    return GEN_OK;
}

void volume_free(volume *v)
{
    if (v == NULL) return;
    free(v->data);
    memset(v, 0, sizeof *v);
}

/* ---- reorientation and resampling ------------------------------------------------------- */

int volume_reorient_ras(volume *v)
{
    nifti_dmat44 m;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) m.m[i][j] = v->affine[i][j];
    int code[3];
    nifti_dmat44_to_orientation(m, &code[0], &code[1], &code[2]);
    /* code[a]: NIFTI_L2R 1, R2L 2, P2A 3, A2P 4, I2S 5, S2I 6. Output axis b takes the input axis
     * whose code is 2b+1 (as is) or 2b+2 (flipped). */
    int perm[3] = {-1, -1, -1}, flip[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        CHECK(code[a] >= 1 && code[a] <= 6, GEN_ERR_DATA,
              "cannot reorient: degenerate voxel-to-world matrix (axis %d)", a);
        int b = (code[a] - 1) / 2;
        CHECK(perm[b] < 0, GEN_ERR_DATA, "cannot reorient: two voxel axes map to world axis %d", b);
        perm[b] = a;
        flip[b] = (code[a] % 2) == 0;
    }
    if (perm[0] == 0 && perm[1] == 1 && perm[2] == 2 && !flip[0] && !flip[1] && !flip[2])
        return GEN_OK;

    const int64_t *od = v->dim;
    int64_t ostride[3] = {od[1] * od[2], od[2], 1};
    int64_t nd[3], step[3], base = 0;
    for (int b = 0; b < 3; b++) {
        nd[b] = od[perm[b]];
        step[b] = flip[b] ? -ostride[perm[b]] : ostride[perm[b]];
        if (flip[b]) base += (od[perm[b]] - 1) * ostride[perm[b]];
    }
    size_t n = (size_t)(nd[0] * nd[1] * nd[2]);
    float *out = malloc(n * sizeof(float));
    CHECK_ALLOC(out, n * sizeof(float));
    size_t o = 0;
    for (int64_t i = 0; i < nd[0]; i++)
        for (int64_t j = 0; j < nd[1]; j++) {
            int64_t src = base + i * step[0] + j * step[1];
            for (int64_t k = 0; k < nd[2]; k++, src += step[2]) out[o++] = v->data[src];
        }
    /* New index -> old index: old[perm[b]] = flip[b] ? n - 1 - new[b] : new[b]. */
    double map[4][4], affine[4][4];
    memset(map, 0, sizeof map);
    map[3][3] = 1.0;
    double spacing[3];
    for (int b = 0; b < 3; b++) {
        map[perm[b]][b] = flip[b] ? -1.0 : 1.0;
        if (flip[b]) map[perm[b]][3] = (double)(od[perm[b]] - 1);
        spacing[b] = v->spacing[perm[b]];
    }
    affine_mul(affine, (const double(*)[4])v->affine, (const double(*)[4])map);
    free(v->data);
    v->data = out;
    memcpy(v->dim, nd, sizeof nd);
    memcpy(v->spacing, spacing, sizeof spacing);
    memcpy(v->affine, affine, sizeof affine);
    return GEN_OK;
}

/* One 1-D linear-interpolation pass along `axis`: in has dims idim, out has idim with
 * idim[axis] replaced by n_out; output i samples c = clamp(i * scale + offset, 0, n_in - 1). */
static void lerp_axis(float *out, const float *in, const int64_t idim[3], int axis, int64_t n_out,
                      double scale, double offset)
{
    int64_t n_in = idim[axis];
    int64_t outer = 1, inner = 1;
    for (int a = 0; a < axis; a++) outer *= idim[a];
    for (int a = axis + 1; a < 3; a++) inner *= idim[a];
    for (int64_t i = 0; i < n_out; i++) {
        double c = (double)i * scale + offset;
        if (c < 0) c = 0;
        if (c > (double)(n_in - 1)) c = (double)(n_in - 1);
        int64_t i0 = (int64_t)c;
        if (i0 > n_in - 2) i0 = n_in >= 2 ? n_in - 2 : 0;
        float w = (float)(c - (double)i0);
        int64_t i1 = n_in >= 2 ? i0 + 1 : 0;
        for (int64_t o = 0; o < outer; o++) {
            const float *a = in + (size_t)((o * n_in + i0) * inner);
            const float *b = in + (size_t)((o * n_in + i1) * inner);
            float *dst = out + (size_t)((o * n_out + i) * inner);
            for (int64_t k = 0; k < inner; k++) dst[k] = a[k] + w * (b[k] - a[k]);
        }
    }
}

int trilinear_resize(float *out, const int64_t odim[3], const float *in, const int64_t idim[3],
                     const double scale[3], const double offset[3])
{
    for (int a = 0; a < 3; a++)
        CHECK(odim[a] >= 1 && idim[a] >= 1, GEN_ERR_INTERNAL, "trilinear_resize: empty axis %d", a);
    /* Passes z, then y, then x; two temporaries hold the partial results. */
    int64_t d1[3] = {idim[0], idim[1], odim[2]};
    int64_t d2[3] = {idim[0], odim[1], odim[2]};
    size_t n1 = (size_t)(d1[0] * d1[1] * d1[2]), n2 = (size_t)(d2[0] * d2[1] * d2[2]);
    float *t1 = malloc(n1 * sizeof(float));
    float *t2 = malloc(n2 * sizeof(float));
    if (t1 == NULL || t2 == NULL) {
        free(t1);
        free(t2);
        FAIL(GEN_ERR_NOMEM, "out of memory allocating %zu bytes", (n1 + n2) * sizeof(float));
    }
    lerp_axis(t1, in, idim, 2, odim[2], scale[2], offset[2]);
    lerp_axis(t2, t1, d1, 1, odim[1], scale[1], offset[1]);
    lerp_axis(out, t2, d2, 0, odim[0], scale[0], offset[0]);
    free(t1);
    free(t2);
    return GEN_OK;
}

int volume_resample(volume *v, const double spacing[3])
{
    int64_t nd[3];
    double scale[3], offset[3] = {0, 0, 0}, target[3];
    for (int a = 0; a < 3; a++) {
        CHECK(isfinite(spacing[a]), GEN_ERR_USAGE, "resample: spacing %d is %g", a, spacing[a]);
        target[a] = spacing[a] > 0 ? spacing[a] : v->spacing[a];
        scale[a] = target[a] / v->spacing[a];
        nd[a] = (int64_t)floor((double)(v->dim[a] - 1) / scale[a] + 1e-9) + 1;
    }
    if (nd[0] == v->dim[0] && nd[1] == v->dim[1] && nd[2] == v->dim[2] && scale[0] == 1.0 &&
        scale[1] == 1.0 && scale[2] == 1.0)
        return GEN_OK;
    size_t n = (size_t)(nd[0] * nd[1] * nd[2]);
    float *out = malloc(n * sizeof(float));
    CHECK_ALLOC(out, n * sizeof(float));
    int status = trilinear_resize(out, nd, v->data, v->dim, scale, offset);
    if (status != GEN_OK) {
        free(out);
        return gen_error_trace(status, __FILE__, __LINE__);
    }
    free(v->data);
    v->data = out;
    for (int a = 0; a < 3; a++) {
        for (int r = 0; r < 3; r++) v->affine[r][a] *= scale[a];
        v->dim[a] = nd[a];
        v->spacing[a] = target[a];
    }
    return GEN_OK;
}

/* ---- writing ---------------------------------------------------------------------------- */

/* Fills nim's xforms and spacing from v (qform and sform both = v->affine). */
static void header_from_volume(nifti_image *nim, const volume *v)
{
    nifti_dmat44 m;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) m.m[i][j] = v->affine[i][j];
    int code = v->affine_code > 0 ? v->affine_code : NIFTI_XFORM_SCANNER_ANAT;
    nim->sform_code = code;
    nim->sto_xyz = m;
    nim->sto_ijk = nifti_dmat44_inverse(m);
    nim->qform_code = code;
    double dx, dy, dz;
    nifti_dmat44_to_quatern(m, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d,
                            &nim->qoffset_x, &nim->qoffset_y, &nim->qoffset_z, &dx, &dy, &dz,
                            &nim->qfac);
    nim->qto_xyz = nifti_quatern_to_dmat44(nim->quatern_b, nim->quatern_c, nim->quatern_d,
                                           nim->qoffset_x, nim->qoffset_y, nim->qoffset_z,
                                           v->spacing[0], v->spacing[1], v->spacing[2], nim->qfac);
    nim->qto_ijk = nifti_dmat44_inverse(nim->qto_xyz);
    nim->xyz_units = NIFTI_UNITS_MM;
}

/* out (x fastest, NIfTI order) from v->data ([x][y][z], z fastest). */
static void store_voxels(void *out, enum volume_dtype dtype, const volume *v)
{
    int64_t nx = v->dim[0], ny = v->dim[1], nz = v->dim[2];
    for (int64_t z = 0; z < nz; z++)
        for (int64_t y = 0; y < ny; y++)
            for (int64_t x = 0; x < nx; x++) {
                float f = v->data[(size_t)((x * ny + y) * nz + z)];
                size_t o = (size_t)(x + nx * (y + ny * z));
                if (dtype == VOLUME_FLOAT32) {
                    ((float *)out)[o] = f;
                } else {
                    double r = nearbyint((double)f);
                    if (r < -32768.0) r = -32768.0;
                    if (r > 32767.0) r = 32767.0;
                    ((int16_t *)out)[o] = (int16_t)r;
                }
            }
}

static int nifti_type_for(const char *path, int nifti2, int *type)
{
    int pair = ends_with(path, ".hdr") || ends_with(path, ".hdr.gz");
    int single = ends_with(path, ".nii") || ends_with(path, ".nii.gz");
    CHECK(pair || single, GEN_ERR_USAGE,
          "%s: output name must end in .nii, .nii.gz, .hdr or .hdr.gz", path);
    if (nifti2)
        *type = pair ? NIFTI_FTYPE_NIFTI2_2 : NIFTI_FTYPE_NIFTI2_1;
    else
        *type = pair ? NIFTI_FTYPE_NIFTI1_2 : NIFTI_FTYPE_NIFTI1_1;
    return GEN_OK;
}

/* The directory of path is writable (checked before writing, since libnifti's writer cannot report
 * failure). */
static int check_writable_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    CHECK(access(dir, W_OK) == 0, GEN_ERR_IO, "%s: cannot write into %s: %s", path, dir,
          strerror(errno));
    return GEN_OK;
}

/* NIfTI-2 output, written here because libnifti 3.0.1's nifti_image_write loses the header of a
 * single-file NIfTI-2 (it reopens the .nii for the data with "wb") and writes NIfTI-1 headers for
 * NIfTI-2 pairs. Header from nifti_convert_nim2n2hdr; layout: 540-byte header, 4-byte extension
 * flag (0: none), data at vox_offset 544 (single file) or in the .img (pair, vox_offset 0). */
static int write_nifti2(nifti_image *nim, const char *path, const char *mode)
{
    int pair = nim->nifti_type == NIFTI_FTYPE_NIFTI2_2;
    nifti_2_header hdr;
    CHECK(nifti_convert_nim2n2hdr(nim, &hdr) == 0, GEN_ERR_INTERNAL,
          "%s: libnifti cannot make a NIfTI-2 header", path);
    hdr.vox_offset = pair ? 0 : 544;
    memcpy(hdr.magic, pair ? "ni2\0\r\n\032\n" : "n+2\0\r\n\032\n", 8);
    size_t bytes = (size_t)nim->nvox * (size_t)nim->nbyper;
    char ext[4] = {0, 0, 0, 0};
    znzFile f = znzopen(path, nifti_is_gzfile(path) ? mode : "wb", nifti_is_gzfile(path));
    CHECK(!znz_isnull(f), GEN_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
    int ok = znzwrite(&hdr, 1, sizeof hdr, f) == sizeof hdr && znzwrite(ext, 1, 4, f) == 4;
    if (ok && pair) {
        znzclose(f);
        f = znzopen(nim->iname, nifti_is_gzfile(nim->iname) ? mode : "wb",
                    nifti_is_gzfile(nim->iname));
        CHECK(!znz_isnull(f), GEN_ERR_IO, "%s: cannot open for writing: %s", nim->iname,
              strerror(errno));
    }
    ok = ok && znzwrite(nim->data, 1, bytes, f) == bytes;
    znzclose(f);
    CHECK(ok, GEN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return GEN_OK;
}

static int write_and_verify(nifti_image *nim, const char *path, const volume *v, int gzip_level)
{
    nifti_set_debug_level(0);
    char mode[8] = "wb"; /* znzopen mode; for gzip files "wb<level>" sets zlib's level */
    if (gzip_level >= 1 && gzip_level <= 9 && nifti_is_gzfile(path))
        snprintf(mode, sizeof mode, "wb%d", gzip_level);
    if (nim->nifti_type == NIFTI_FTYPE_NIFTI2_1 || nim->nifti_type == NIFTI_FTYPE_NIFTI2_2)
        CALL(write_nifti2(nim, path, mode));
    else /* returns its (already closed) file handle, or NULL: success is checked below */
        (void)nifti_image_write_hdr_img2(nim, 1, mode, NULL, NULL);
    /* libnifti's writer returns nothing: read the header back and check the data file. */
    nifti_image *back = nifti_image_read(path, 0);
    CHECK(back != NULL, GEN_ERR_IO, "%s: writing failed (the written header cannot be read back)",
          path);
    int ok = back->dim[1] == v->dim[0] && back->dim[2] == v->dim[1] && back->dim[3] == v->dim[2];
    int64_t need = back->iname_offset + back->nvox * back->nbyper;
    char iname[4096];
    snprintf(iname, sizeof iname, "%s", back->iname ? back->iname : path);
    nifti_image_free(back);
    CHECK(ok, GEN_ERR_IO, "%s: writing failed (dimensions read back differ)", path);
    if (ends_with(iname, ".gz")) {
        CALL(gzip_verify(iname));
    } else {
        struct stat st;
        CHECK(stat(iname, &st) == 0 && (int64_t)st.st_size >= need, GEN_ERR_IO,
              "%s: writing failed (%s is shorter than %lld bytes; disk full?)", path, iname,
              (long long)need);
    }
    return GEN_OK;
}

int volume_write(const volume *v, const char *path, const volume_write_options *opt)
{
    volume_write_options defaults = {VOLUME_FLOAT32, 0, NULL, NULL, 0};
    if (opt == NULL) opt = &defaults;
    CHECK(v != NULL && v->data != NULL, GEN_ERR_USAGE, "volume_write: empty volume");
    CHECK(path != NULL && path[0] != '\0', GEN_ERR_USAGE, "volume_write: empty path");
    CHECK(opt->gzip_level >= 0 && opt->gzip_level <= 9, GEN_ERR_USAGE,
          "%s: gzip level %d outside 0..9", path, opt->gzip_level);
    int nifti_type = 0;
    CALL(nifti_type_for(path, opt->nifti2, &nifti_type));
    CALL(check_writable_dir(path));

    nifti_image *nim = NULL;
    int datatype = opt->dtype == VOLUME_INT16 ? DT_INT16 : DT_FLOAT32;
    if (opt->header_from != NULL) {
        nifti_set_debug_level(0);
        nim = nifti_image_read(opt->header_from, 0);
        CHECK(nim != NULL, GEN_ERR_IO, "%s: cannot read header to copy", opt->header_from);
        if (nim->dim[1] != v->dim[0] || nim->dim[2] != v->dim[1] || nim->dim[3] != v->dim[2]) {
            long long hd[3] = {(long long)nim->dim[1], (long long)nim->dim[2],
                               (long long)nim->dim[3]};
            nifti_image_free(nim);
            FAIL(GEN_ERR_DATA, "%s: header to copy has dims %lldx%lldx%lld, volume has "
                 "%lldx%lldx%lld", opt->header_from, hd[0], hd[1], hd[2], (long long)v->dim[0],
                 (long long)v->dim[1], (long long)v->dim[2]);
        }
        /* Keep the copied geometry; make it a single 3-D volume of our datatype. */
        nim->ndim = nim->dim[0] = 3;
        for (int d = 4; d < 8; d++) nim->dim[d] = 1;
        nim->nt = nim->nu = nim->nv = nim->nw = 1;
        nim->nvox = v->dim[0] * v->dim[1] * v->dim[2];
        nim->datatype = datatype;
        nifti_datatype_sizes(datatype, &nim->nbyper, &nim->swapsize);
        nim->cal_min = nim->cal_max = 0;
        nifti_free_extensions(nim);
    } else {
        int64_t dims[8] = {3, v->dim[0], v->dim[1], v->dim[2], 1, 1, 1, 1};
        nim = nifti_make_new_nim(dims, datatype, 0);
        CHECK(nim != NULL, GEN_ERR_NOMEM, "%s: cannot make a NIfTI header", path);
        for (int a = 0; a < 3; a++) nim->pixdim[a + 1] = v->spacing[a];
        nim->dx = v->spacing[0];
        nim->dy = v->spacing[1];
        nim->dz = v->spacing[2];
        header_from_volume(nim, v);
    }
    nim->scl_slope = 1.0;
    nim->scl_inter = 0.0;
    if (opt->descrip != NULL) snprintf(nim->descrip, sizeof nim->descrip, "%s", opt->descrip);
    nim->nifti_type = nifti_type;
    int status = GEN_OK;
    if (nifti_set_filenames(nim, path, 0, 1) != 0) {
        status = gen_error_set(GEN_ERR_USAGE, __FILE__, __LINE__,
                               "%s: libnifti refused the output name", path);
        goto done;
    }
    nim->nifti_type = nifti_type; /* nifti_set_filenames may guess NIfTI-1 from the extension */
    free(nim->data);
    nim->data = malloc((size_t)nim->nvox * (size_t)nim->nbyper);
    if (nim->data == NULL) {
        status = gen_error_set(GEN_ERR_NOMEM, __FILE__, __LINE__, "out of memory allocating %zu "
                               "bytes", (size_t)nim->nvox * (size_t)nim->nbyper);
        goto done;
    }
    store_voxels(nim->data, opt->dtype, v);
    status = write_and_verify(nim, path, v, opt->gzip_level);
done:
    nifti_image_free(nim);
    return status == GEN_OK ? GEN_OK : gen_error_trace(status, __FILE__, __LINE__);
}
