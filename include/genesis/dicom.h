/* DICOM series as scans, read with GDCM (src/data/dicom_*.{c,cpp}); built only when CMake finds GDCM,
 * otherwise every function below fails with a message saying so (dicom_available() returns 0).
 *
 * A DICOM series is named by a locator string, so that it travels wherever a scan path does
 * (the prep scan list, the cubes file's scan table, `genesis restore`'s input):
 *   "DIR"        a folder holding exactly one series (an error names the series when it holds more);
 *   "DIR#UID"    the series with SeriesInstanceUID UID among the files directly in folder DIR.
 * Volumes read from a series follow include/genesis/volume.h: float32 voxels in HU
 * (RescaleSlope/RescaleIntercept applied), data[x][y][z] with z fastest, affine = voxel index ->
 * world mm in NIfTI's RAS+ convention (DICOM's LPS patient axes negated in x and y), source_format
 * VOLUME_FORMAT_DICOM. Errors: GEN_ERR_IO (cannot open/read), GEN_ERR_DATA (not usable as a 3-D scan:
 * a localizer, mixed sizes, one slice, missing slices, a transfer syntax GDCM cannot decode, ...),
 * each message starting with the locator: "LOCATOR: reason". Uneven slice spacing (a gap off the median
 * by more than 1%) is refused with the spacings listed, not resampled; a gap over 1.5 times the median
 * is reported as missing slices (src/data/dicom_series.c lists every refusal). */
#ifndef GENESIS_DICOM_H
#define GENESIS_DICOM_H

#include <stddef.h>

#include "genesis/volume.h"

/* 1 when this build reads DICOM (GDCM found at build time), else 0. */
int dicom_available(void);

/* 1 when path is a folder, or "DIR#UID" with DIR a folder: a locator for volume_read_dicom. */
int dicom_is_locator(const char *path);

/* Lists the series among the regular files directly inside folder as locators "FOLDER#UID", sorted
 * by UID; files that are not DICOM are ignored. *count 0 (and *locators NULL) when there are none.
 * The caller frees the list with dicom_free_list. */
int dicom_list_series(const char *folder, char ***locators, size_t *count);
void dicom_free_list(char **locators, size_t count);

/* Reads one series into v (opt: as volume_read, reorient_ras and resampling included; NULL means
 * defaults). On failure v is left empty (data NULL). */
int volume_read_dicom(volume *v, const char *locator, const volume_read_options *opt);

#endif
