/* Scan volumes as float32 arrays (src/data/volume.c; reading in volume_read.c, writing in
 * volume_write.c, reorientation and resampling in volume_geometry.c), read and written with
 * libnifti's nifti2 API, which handles NIfTI-1, NIfTI-2 and ANALYZE 7.5 as .nii, .nii.gz, .hdr/.img
 * (and .hdr.gz/.img.gz).
 *
 * Array order: data[(x * ny + y) * nz + z], the C order of an (nx, ny, nz) array with z fastest.
 * x, y, z are the file's voxel axes i, j, k as stored (NIfTI stores i fastest, so reading
 * transposes), or, after volume_reorient_ras, the axes running toward Right, Anterior, Superior.
 * Axes: rows, cols, deps (the paper's cube names, config keys cube_rows/cube_cols/cube_deps) =
 * x, y, z here = the tensor's D, H, W (SPEC.md section 2).
 *
 * Errors: GEN_ERR_IO when a file cannot be opened, read or written; GEN_ERR_DATA when its content is
 * malformed or unsuitable (corrupt or truncated data, wrong dimensionality, unsupported voxel type,
 * NaN/Inf voxels). Every message starts with the file name: "FILE: reason".
 */
#ifndef GENESIS_VOLUME_H
#define GENESIS_VOLUME_H

#include <stddef.h>
#include <stdint.h>

typedef struct volume {
    float *data;           /* [nx][ny][nz], z fastest; owned (volume_free) */
    int64_t dim[3];        /* nx, ny, nz in voxels, each >= 1 */
    double spacing[3];     /* voxel size along x, y, z in mm (|pixdim[1..3]|) */
    double affine[4][4];   /* voxel index (x, y, z, 1) -> world mm, NIfTI RAS+ convention */
    int affine_code;       /* NIfTI xform code of `affine`: the sform's if set, else the qform's;
                            * 0: neither is set and affine = diag(spacing) (NIfTI's fallback) */
    int source_datatype;   /* NIfTI DT_* code of the file's voxels (0 for volumes made in memory) */
    int source_nifti_type; /* NIFTI_FTYPE_* of the file: 0 ANALYZE, 1/2 NIfTI-1, 4/5 NIfTI-2 */
    int source_format;     /* enum volume_format of the file it was read from */
} volume;

/* The file format a volume was read from (volume.source_format). */
enum volume_format {
    VOLUME_FORMAT_MEMORY = 0,    /* made in memory (volume_alloc) */
    VOLUME_FORMAT_NIFTI = 1,     /* NIfTI-1/2 or ANALYZE, through libnifti */
    VOLUME_FORMAT_METAIMAGE = 2, /* .mhd + data file(s), or .mha */
    VOLUME_FORMAT_DICOM = 3,     /* a DICOM series, through GDCM (include/genesis/dicom.h) */
};

/* The format volume_read reads path as: VOLUME_FORMAT_METAIMAGE for a name ending in .mhd or .mha (any
 * case), VOLUME_FORMAT_DICOM for a DICOM locator (a folder, or "DIR#UID": include/genesis/dicom.h),
 * else VOLUME_FORMAT_NIFTI. */
int volume_format_of_path(const char *path);
/* "nifti", "metaimage", "dicom", or "memory" (the names `genesis info` shows). */
const char *volume_format_name(int format);

typedef struct volume_read_options {
    int reorient_ras;   /* 1: permute and flip axes (volume_reorient_ras) after reading */
    double spacing[3];  /* > 0: resample to this voxel size in mm (volume_resample); 0: keep axis */
    int verify_gzip;    /* 1: for gzip-compressed files, decompress the whole stream and check its
                         * CRC, so that corruption which still decodes is caught (default 1) */
} volume_read_options;

/* Defaults: voxel axes as stored, no resampling, gzip verified. */
void volume_read_options_default(volume_read_options *opt);

/* Reads a 3-D scan (or a 4-D one with a single volume) into v as float32, with scl_slope/scl_inter
 * applied (slope 0 means none) and every voxel checked to be finite. opt NULL means defaults.
 * Every voxel type libnifti reads is accepted except complex, RGB and 1-bit (refused, GEN_ERR_DATA).
 * The reader follows volume_format_of_path: NIfTI/ANALYZE through libnifti; MetaImage
 * (src/data/volume_metaimage.c: .mhd with its data file(s) or LIST of slice files, .mha; raw or
 * zlib-compressed; MET_(U)CHAR, (U)SHORT, (U)INT, (U)LONG, FLOAT, DOUBLE; either byte order), its LPS
 * geometry turned into the same RAS+ affine a NIfTI conversion of it has; a DICOM series through
 * volume_read_dicom (include/genesis/dicom.h). reorient_ras and resampling then work the same.
 * On failure v is left empty (data NULL). */
int volume_read(volume *v, const char *path, const volume_read_options *opt);

/* A zero-filled nx x ny x nz volume with the given spacing; affine = diag(spacing) with the volume's
 * centre at the world origin, affine_code 1 (scanner). */
int volume_alloc(volume *v, const int64_t dim[3], const double spacing[3]);
void volume_free(volume *v);

/* Permutes and flips axes so that x, y, z run toward patient Right, Anterior, Superior, from the
 * orientation of `affine` (libnifti's nifti_dmat44_to_orientation); updates dim, spacing, affine.
 * A volume without sform/qform (affine_code 0) is taken as RAS already, as NIfTI prescribes. */
int volume_reorient_ras(volume *v);

/* Trilinear resampling to the given voxel size in mm (an entry <= 0 keeps that axis). The new grid
 * starts at voxel 0 and has floor((n - 1) * old / new) + 1 points per axis, so it never extrapolates;
 * the affine is updated so that world positions are preserved. */
int volume_resample(volume *v, const double spacing[3]);

/* Trilinear interpolation of in [idim] onto out [odim] (both [x][y][z], z fastest): output index i
 * along axis a samples input coordinate c = i * scale[a] + offset[a], clamped to [0, idim[a] - 1].
 * Separable (three 1-D passes), so values stay within the input's range. */
int trilinear_resize(float *out, const int64_t odim[3], const float *in, const int64_t idim[3],
                     const double scale[3], const double offset[3]);

enum volume_dtype {
    VOLUME_FLOAT32 = 0,
    VOLUME_INT16 = 1, /* values rounded to nearest and clamped to [-32768, 32767]; slope 1, inter 0 */
};

typedef struct volume_write_options {
    enum volume_dtype dtype;
    int nifti2;              /* 0: NIfTI-1 (default), 1: NIfTI-2 */
    const char *header_from; /* NULL, or a NIfTI file whose header is copied (xforms, units, intent,
                              * descrip, ...): its 3-D dims must equal v's; datatype and scaling are
                              * ours */
    const char *descrip;     /* NULL, or up to 79 characters for the header's descrip field */
    int gzip_level;          /* .gz output: 1 (fastest) .. 9 (smallest); 0 = zlib's default (6) */
} volume_write_options;

/* Writes v (spacing, and affine as both qform and sform unless header_from is given) to path; the
 * format follows the extension: .nii, .nii.gz, .hdr (pair with .img), .hdr.gz. opt NULL: float32
 * NIfTI-1. The written file's header is read back and, for gzip output, the stream verified. */
int volume_write(const volume *v, const char *path, const volume_write_options *opt);

/* Checks a gzip file end to end (every member decompresses and its CRC and length match).
 * GEN_ERR_DATA "FILE: corrupt gzip stream (...)" or "FILE: truncated gzip stream" otherwise. */
int gzip_verify(const char *path);

#endif
