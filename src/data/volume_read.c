/* Reading scans: NIfTI-1/2 and ANALYZE through libnifti's nifti2 API, and the choice of reader by
 * input (MetaImage: volume_metaimage.c; DICOM: include/genesis/dicom.h) (include/genesis/volume.h). */
#include "genesis/volume.h"

#include "genesis/dicom.h"
#include "genesis/error.h"
#include "volume_internal.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nifti2_io.h"

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

volume_convert_fn volume_converter_for(int datatype)
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
    for (int d = 4; d <= ndim; d++) /* saturating: absurd dims overflowed (found by fuzzing) */
        if (__builtin_mul_overflow(extra, nim->dim[d], &extra)) extra = INT64_MAX;
    CHECK(extra == 1, GEN_ERR_DATA,
          "%s: %lld-D image with %lld volumes (%lldx%lldx%lld each); only a single 3-D volume is "
          "supported",
          path, (long long)ndim, (long long)extra, (long long)nim->dim[1],
          (long long)(ndim >= 2 ? nim->dim[2] : 1), (long long)(ndim >= 3 ? nim->dim[3] : 1));
    int64_t size[3] = {nim->dim[1], ndim >= 2 ? nim->dim[2] : 1, ndim >= 3 ? nim->dim[3] : 1};
    int axes = (size[0] > 1) + (size[1] > 1) + (size[2] > 1); /* axes longer than one voxel */
    static const char *const shape_names[] = {"a single voxel", "a 1-D image", "a 2-D image", "a 3-D image"};
    CHECK(size[2] > 1, GEN_ERR_DATA,
          "%s: %s (%lldx%lldx%lld voxels, dim[0] = %lld); a 3-D volume with more than one slice is required",
          path, shape_names[axes], (long long)size[0], (long long)size[1], (long long)size[2], (long long)ndim);
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
    volume_affine_identity(v->affine);
    if (m != NULL) {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) v->affine[i][j] = m->m[i][j];
    } else {
        v->affine_code = 0;
        for (int i = 0; i < 3; i++) v->affine[i][i] = v->spacing[i];
    }
}

int volume_check_finite(const char *path, const volume *v)
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

/* libnifti2 reads a binary header in the byte order its sizeof_hdr says (348 or 540, or either
 * byte-swapped), then walks dim[2..dim[0]] of its fixed array of 8 on the stack before checking
 * dim[0]: a dim[0] outside 1..7 in that order writes past the array (found by fuzzing,
 * tests/fuzz/README.md). Checked here on the raw bytes of the file libnifti will read
 * (nifti_findhdrname: the .hdr of an .img), in the same byte order; also says the version (*nver:
 * 2 by sizeof_hdr 540, else 1). A header too short or of another size is left to libnifti, which
 * refuses it. */
static int check_raw_dim0(const char *path, int *nver)
{
    unsigned char h[540]; /* the NIfTI-2 header; NIfTI-1 and ANALYZE use the first 348 bytes */
    size_t got = 0;
    char *hname = nifti_findhdrname(path);
    if (hname) {
        znzFile f = znzopen(hname, "rb", nifti_is_gzfile(hname));
        if (!znz_isnull(f)) {
            got = znzread(h, 1, sizeof h, f);
            znzclose(f);
        }
        free(hname);
    }
    if (got > sizeof h || got < 348) return GEN_OK; /* (size_t)-1: zlib's error */
    int32_t sizeof_hdr;
    memcpy(&sizeof_hdr, h, sizeof sizeof_hdr);
    const int32_t swapped = (int32_t)__builtin_bswap32((uint32_t)sizeof_hdr);
    const int swap = swapped == 348 || swapped == 540;
    *nver = sizeof_hdr == 540 || swapped == 540 ? 2 : 1;
    if (!swap && sizeof_hdr != 348 && sizeof_hdr != 540) return GEN_OK;
    int64_t dim0;
    if (*nver == 2) {
        if (got < 540) return GEN_OK;
        int64_t d;
        memcpy(&d, h + 16, sizeof d); /* int64 dim[8] at byte 16 */
        dim0 = swap ? (int64_t)__builtin_bswap64((uint64_t)d) : d;
    } else {
        int16_t d;
        memcpy(&d, h + 40, sizeof d); /* int16 dim[8] at byte 40 */
        dim0 = swap ? (int16_t)__builtin_bswap16((uint16_t)d) : d;
    }
    CHECK(dim0 >= 1 && dim0 <= 7, GEN_ERR_DATA, "%s: corrupt header (dim[0] = %lld in the byte order of its "
          "sizeof_hdr)", path, (long long)dim0);
    return GEN_OK;
}

/* The header-level part of reading: open, parse, validate. On success *out owns the header. */
static int read_header(nifti_image **out, const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0, GEN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    CHECK(S_ISREG(st.st_mode), GEN_ERR_IO, "%s: not a regular file", path);
    CHECK(access(path, R_OK) == 0, GEN_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    nifti_set_debug_level(0); /* libnifti would print to stderr; our message names file and reason */
    int status = GEN_OK;
    int nver = 1;
    CALL(check_raw_dim0(path, &nver));
    nifti_image *nim = nifti_image_read(path, 0);
    if (nim == NULL && volume_ends_with(path, ".gz"))
        CALL_GOTO(gzip_verify(path)); /* names a gzip problem precisely */
    CHECK_GOTO(nim != NULL, GEN_ERR_DATA, "%s: not a readable NIfTI-1, NIfTI-2 or ANALYZE header "
               "(corrupt, truncated, or not an image)", path);
    /* libnifti reports NIfTI-2 files as NIFTI1_1/NIFTI1_2: the raw header tells (nver). */
    if (nver == 2 && nim->nifti_type == NIFTI_FTYPE_NIFTI1_1) nim->nifti_type = NIFTI_FTYPE_NIFTI2_1;
    if (nver == 2 && nim->nifti_type == NIFTI_FTYPE_NIFTI1_2) nim->nifti_type = NIFTI_FTYPE_NIFTI2_2;
    CALL_GOTO(check_dims(path, nim));
    CHECK_GOTO(volume_converter_for(nim->datatype) != NULL, GEN_ERR_DATA,
               "%s: voxel type %s (%d) is not supported (need a real scalar type)", path,
               nifti_datatype_string(nim->datatype), nim->datatype);
    *out = nim;
    nim = NULL;
cleanup:
    nifti_image_free(nim);
    return status;
}

/* Into *bytes the size of the image data nim's header promises, checked against what the file can
 * hold: its size after the data offset or, gzip-compressed, 1032 times its size (deflate's largest
 * ratio). A header with absurd dimensions is a corrupt scan, not an allocation (nor an overflow). */
static int check_data_size(const nifti_image *nim, const char *path, size_t *bytes)
{
    const char *iname = nim->iname ? nim->iname : path;
    int64_t voxels = 0, total = 0;
    int ok = !__builtin_mul_overflow(nim->dim[1], nim->dim[2], &voxels) &&
             !__builtin_mul_overflow(voxels, nim->dim[3], &voxels) && voxels <= INT64_MAX / 16 &&
             !__builtin_mul_overflow(voxels, (int64_t)nim->nbyper, &total);
    CHECK(ok, GEN_ERR_DATA, "%s: corrupt header (%lldx%lldx%lld voxels)", path, (long long)nim->dim[1],
          (long long)nim->dim[2], (long long)nim->dim[3]);
    struct stat st;
    CHECK(stat(iname, &st) == 0, GEN_ERR_IO, "%s: cannot open image data %s: %s", path, iname, strerror(errno));
    int64_t offset = (int64_t)nim->iname_offset;
    int gz = nifti_is_gzfile(iname);
    int64_t room = gz ? (int64_t)st.st_size * 1032 : (int64_t)st.st_size - offset;
    CHECK(offset >= 0 && total <= room, GEN_ERR_DATA,
          "%s: truncated or corrupt: the header promises %lldx%lldx%lld voxels of %d bytes (%lld bytes from "
          "byte %lld), more than the file's %lld bytes%s can hold", path, (long long)nim->dim[1],
          (long long)nim->dim[2], (long long)nim->dim[3], nim->nbyper, (long long)total, (long long)offset,
          (long long)st.st_size, gz ? " (gzip: at most 1032 times that)" : "");
    *bytes = (size_t)total;
    return GEN_OK;
}

/* Reads the voxel bytes of the first volume into nim->data (native byte order). Done here rather
 * than by nifti_image_load, which silently replaces NaN/Inf floats with 0 (we refuse them) and
 * cannot say how far a short read got. */
static int load_voxels(nifti_image *nim, const char *path)
{
    const char *iname = nim->iname ? nim->iname : path;
    size_t bytes = 0;
    CALL(check_data_size(nim, path, &bytes));
    znzFile f = znzopen(iname, "rb", nifti_is_gzfile(iname));
    CHECK(!znz_isnull(f), GEN_ERR_IO, "%s: cannot open image data %s: %s", path, iname,
          strerror(errno));
    int status = GEN_OK;
    nim->data = malloc(bytes ? bytes : 1);
    CHECK_GOTO(nim->data != NULL, GEN_ERR_NOMEM, "%s: out of memory allocating %zu bytes", path, bytes);
    int ok = znzseek(f, (znz_off_t)nim->iname_offset, SEEK_SET) >= 0;
    size_t got = 0;
    while (ok && got < bytes) { /* chunks: znz's gzip path reads at most INT_MAX bytes a call */
        size_t want = bytes - got < ((size_t)1 << 30) ? bytes - got : ((size_t)1 << 30);
        size_t n = znzread((char *)nim->data + got, 1, want, f);
        /* zlib's error (-1 from gzread, seen as a huge size_t) is a corrupt stream, not a count */
        CHECK_GOTO(n <= want, GEN_ERR_DATA, "%s: corrupt gzip data: the image data cannot be decompressed after "
                   "%zu of %zu bytes", path, got, bytes);
        got += n;
        if (n < want) break;
    }
    CHECK_GOTO(ok, GEN_ERR_DATA, "%s: truncated or corrupt: cannot seek to the image data at byte %lld",
               path, (long long)nim->iname_offset);
    CHECK_GOTO(got == bytes, GEN_ERR_DATA,
               "%s: truncated or corrupt image data: read %zu of %zu bytes (%lld voxels of %d bytes)",
               path, got, bytes, (long long)(nim->dim[1] * nim->dim[2] * nim->dim[3]), nim->nbyper);
    if (nim->swapsize > 1 && nim->byteorder != nifti_short_order())
        nifti_swap_Nbytes((int64_t)(bytes / (size_t)nim->swapsize), nim->swapsize, nim->data);
cleanup:
    znzclose(f);
    return status;
}

static int volume_read_nifti(volume *v, const char *path, int verify_gzip)
{
    nifti_image *nim = NULL;
    CALL(read_header(&nim, path));
    int64_t nx = nim->dim[1], ny = nim->dim[2], nz = nim->dim[3];
    int status = GEN_OK;
    CALL_GOTO(load_voxels(nim, path));
    if (verify_gzip && nim->iname && volume_ends_with(nim->iname, ".gz")) CALL_GOTO(gzip_verify(nim->iname));
    size_t n = (size_t)(nx * ny * nz);
    v->data = malloc(n * sizeof(float));
    CHECK_GOTO(v->data != NULL, GEN_ERR_NOMEM, "%s: out of memory allocating %zu bytes", path,
               n * sizeof(float));
    v->dim[0] = nx;
    v->dim[1] = ny;
    v->dim[2] = nz;
    double slope = nim->scl_slope, inter = nim->scl_inter;
    if (slope == 0.0 || !isfinite(slope)) { /* NIfTI: slope 0 means the values are used as stored */
        slope = 1.0;
        inter = 0.0;
    }
    if (!isfinite(inter)) inter = 0.0;
    volume_converter_for(nim->datatype)(v->data, nim->data, nx, ny, nz, slope, inter);
    v->spacing[0] = fabs(nim->dx);
    v->spacing[1] = fabs(nim->dy);
    v->spacing[2] = fabs(nim->dz);
    for (int a = 0; a < 3; a++)
        if (!(v->spacing[a] > 0.0) || !isfinite(v->spacing[a])) v->spacing[a] = 1.0;
    affine_from_nim(v, nim);
    v->source_datatype = nim->datatype;
    v->source_nifti_type = nim->nifti_type;
    v->source_format = VOLUME_FORMAT_NIFTI;
    CALL_GOTO(volume_check_finite(path, v));
cleanup:
    nifti_image_free(nim);
    return status;
}

int volume_format_of_path(const char *path)
{
    size_t n = strlen(path);
    if (n > 4 && (!strcasecmp(path + n - 4, ".mhd") || !strcasecmp(path + n - 4, ".mha")))
        return VOLUME_FORMAT_METAIMAGE;
    return dicom_is_locator(path) ? VOLUME_FORMAT_DICOM : VOLUME_FORMAT_NIFTI;
}

const char *volume_format_name(int format)
{
    switch (format) {
    case VOLUME_FORMAT_NIFTI: return "nifti";
    case VOLUME_FORMAT_METAIMAGE: return "metaimage";
    case VOLUME_FORMAT_DICOM: return "dicom";
    default: return "memory";
    }
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
    int format = volume_format_of_path(path);
    if (format == VOLUME_FORMAT_DICOM) return volume_read_dicom(v, path, opt); /* reorients, resamples */
    int status = GEN_OK;
    if (format == VOLUME_FORMAT_METAIMAGE) CALL_GOTO(volume_read_metaimage(v, path));
    else CALL_GOTO(volume_read_nifti(v, path, opt->verify_gzip));
    if (opt->reorient_ras) CALL_GOTO(volume_reorient_ras(v));
    if (opt->spacing[0] > 0 || opt->spacing[1] > 0 || opt->spacing[2] > 0)
        CALL_GOTO(volume_resample(v, opt->spacing));
cleanup:
    if (status != GEN_OK) volume_free(v);
    return status;
}
