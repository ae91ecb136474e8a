/* Writing scans: NIfTI-1/2 and ANALYZE through libnifti's nifti2 API, read back and verified
 * (include/genesis/volume.h). */
#include "genesis/volume.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "volume_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nifti2_io.h"

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
    int pair = volume_ends_with(path, ".hdr") || volume_ends_with(path, ".hdr.gz");
    int single = volume_ends_with(path, ".nii") || volume_ends_with(path, ".nii.gz");
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
    char iname[4200];
    snprintf(iname, sizeof iname, "%s", back->iname ? back->iname : path);
    nifti_image_free(back);
    CHECK(ok, GEN_ERR_IO, "%s: writing failed (dimensions read back differ)", path);
    if (volume_ends_with(iname, ".gz")) {
        CALL(gzip_verify(iname));
    } else {
        struct stat st;
        CHECK(stat(iname, &st) == 0 && (int64_t)st.st_size >= need, GEN_ERR_IO,
              "%s: writing failed (%s is shorter than %lld bytes; disk full?)", path, iname,
              (long long)need);
    }
    return GEN_OK;
}

/* The extension of an output name nifti_type_for accepted. */
static const char *nifti_extension(const char *path)
{
    static const char *const known[] = {".nii.gz", ".hdr.gz", ".nii", ".hdr"};
    for (int i = 0; i < 4; i++)
        if (volume_ends_with(path, known[i])) return known[i];
    return "";
}

/* The data file of a header name of a pair: NAME.hdr -> NAME.img, NAME.hdr.gz -> NAME.img.gz. */
static void image_name_of(char *out, size_t size, const char *hdr)
{
    snprintf(out, size, "%s", hdr);
    char *dot = strstr(out + strlen(out) - (volume_ends_with(hdr, ".gz") ? 7 : 4), ".hdr");
    if (dot) memcpy(dot, ".img", 4);
}

/* Renames the written temporary file(s) over path (the data file of a pair first). */
static int commit_output(const char *tmp, const char *path, int pair)
{
    if (pair) {
        char tmp_img[4200], img[4200];
        image_name_of(tmp_img, sizeof tmp_img, tmp);
        image_name_of(img, sizeof img, path);
        CALL(atomic_file_commit(tmp_img, img));
    }
    return atomic_file_commit(tmp, path);
}

static void remove_output(const char *tmp, int pair)
{
    char tmp_img[4200];
    unlink(tmp);
    image_name_of(tmp_img, sizeof tmp_img, tmp);
    if (pair) unlink(tmp_img);
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
    /* written under a temporary name in the same folder (its extension kept: it chooses the format),
     * then renamed over path (atomic_file.h) */
    char tmp[4200];
    CALL(atomic_file_tmp_name_ext(tmp, sizeof tmp, path, nifti_extension(path)));
    int pair = volume_ends_with(path, ".hdr") || volume_ends_with(path, ".hdr.gz");

    int status = GEN_OK, written = 0;
    nifti_image *nim = NULL;
    int datatype = opt->dtype == VOLUME_INT16 ? DT_INT16 : DT_FLOAT32;
    if (opt->header_from != NULL) {
        nifti_set_debug_level(0);
        nim = nifti_image_read(opt->header_from, 0);
        CHECK_GOTO(nim != NULL, GEN_ERR_IO, "%s: cannot read header to copy", opt->header_from);
        CHECK_GOTO(nim->dim[1] == v->dim[0] && nim->dim[2] == v->dim[1] && nim->dim[3] == v->dim[2],
                   GEN_ERR_DATA, "%s: header to copy has dims %lldx%lldx%lld, volume has "
                   "%lldx%lldx%lld", opt->header_from, (long long)nim->dim[1], (long long)nim->dim[2],
                   (long long)nim->dim[3], (long long)v->dim[0], (long long)v->dim[1],
                   (long long)v->dim[2]);
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
        CHECK_GOTO(nim != NULL, GEN_ERR_NOMEM, "%s: cannot make a NIfTI header", path);
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
    CHECK_GOTO(nifti_set_filenames(nim, tmp, 0, 1) == 0, GEN_ERR_USAGE,
               "%s: libnifti refused the output name", path);
    nim->nifti_type = nifti_type; /* nifti_set_filenames may guess NIfTI-1 from the extension */
    free(nim->data);
    nim->data = malloc((size_t)nim->nvox * (size_t)nim->nbyper);
    CHECK_ALLOC_GOTO(nim->data, (size_t)nim->nvox * (size_t)nim->nbyper);
    store_voxels(nim->data, opt->dtype, v);
    written = 1; /* from here on the temporary file(s) may exist */
    CALL_GOTO(write_and_verify(nim, tmp, v, opt->gzip_level));
    CALL_GOTO(commit_output(tmp, path, pair));
    written = 0;
cleanup:
    if (written) remove_output(tmp, pair);
    nifti_image_free(nim);
    return status;
}
