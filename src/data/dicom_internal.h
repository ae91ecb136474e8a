/* What the DICOM reader's two halves share (not part of the public API, include/genesis/dicom.h):
 * src/data/dicom_gdcm.cpp reads files with GDCM (the only C++; these functions are extern "C" and
 * never let an exception out), src/data/dicom_series.c groups, sorts and checks the slices of a
 * series and builds the volume. Plain C types only, so that both languages include this header. */
#ifndef GENESIS_DICOM_INTERNAL_H
#define GENESIS_DICOM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One image file: its geometry attributes as stored and its decoded pixels. */
typedef struct dicom_slice {
    char *path;                /* the file (owned) */
    int64_t rows, cols;        /* Rows (0028,0010) x Columns (0028,0011) */
    int64_t frames;            /* frames in the file (NumberOfFrames; 1 for a plain slice) */
    int has_position;          /* ImagePositionPatient (0020,0032) present with 3 numbers */
    int has_orientation;       /* ImageOrientationPatient (0020,0037) present with 6 numbers */
    int has_pixel_spacing;     /* PixelSpacing (0028,0030) present with 2 numbers */
    double position[3];        /* ImagePositionPatient: centre of the first pixel, LPS mm */
    double row_dir[3];         /* ImageOrientationPatient[0..2]: direction of increasing column
                                * index (along a row), LPS unit vector */
    double col_dir[3];         /* ImageOrientationPatient[3..5]: direction of increasing row index */
    double pixel_spacing[2];   /* PixelSpacing: [0] between rows, [1] between columns, mm */
    double slope, intercept;   /* RescaleSlope/RescaleIntercept (1 and 0 when absent) */
    int is_localizer;          /* ImageType (0008,0008) contains LOCALIZER */
    int datatype;              /* NIfTI DT_* code of the stored pixels */
    char transfer_syntax[96];  /* the transfer syntax's UID and name, for messages */
    float *pixels;             /* [rows][cols], column index fastest: slope * stored + intercept */
} dicom_slice;

/* dicom_gdcm.cpp. Every function returns 0 on success, else one of these codes with a message
 * ("FILE: reason") in err[errlen]; the C side records it (error.h is C only: its _Noreturn). The
 * codes equal error.h's GEN_ERR_* (dicom_series.c checks it at compile time). */
enum dicom_gdcm_status { DICOM_GDCM_ERR_IO = 3, DICOM_GDCM_ERR_DATA = 4, DICOM_GDCM_ERR_NOMEM = 5 };


/* For each of the n files, uids[i] = its SeriesInstanceUID (malloc'd) when it is a DICOM image
 * (a readable header with Rows), else NULL; files that are not DICOM are not an error. */
int dicom_gdcm_series_uids(const char *const *paths, size_t n, char **uids, char *err, size_t errlen);

/* Reads the file at path into s (attributes and pixels; s->path is left for the caller). On
 * failure s->pixels is NULL. */
int dicom_gdcm_read_slice(dicom_slice *s, const char *path, char *err, size_t errlen);

/* dicom_series.c */

/* The files of the series named by locator ("DIR" or "DIR#UID", include/genesis/dicom.h), each read
 * with dicom_gdcm_read_slice, in no particular order (volume_read_dicom sorts them). Test-facing:
 * the single-slice check reads pixels through here. Free with dicom_free_slices. */
int dicom_read_slices(const char *locator, dicom_slice **slices, size_t *count);
void dicom_free_slices(dicom_slice *slices, size_t count);

#ifdef __cplusplus
}
#endif

#endif
