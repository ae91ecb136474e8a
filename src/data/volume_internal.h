/* What src/data/volume*.c share (not part of the public API, include/genesis/volume.h). */
#ifndef GENESIS_VOLUME_INTERNAL_H
#define GENESIS_VOLUME_INTERNAL_H

#include "genesis/volume.h"

#include <stdint.h>

/* 1 if the string s ends with suffix (a file extension such as ".nii.gz"), else 0. */
int volume_ends_with(const char *s, const char *suffix);
/* a = the 4x4 identity. */
void volume_affine_identity(double a[4][4]);

/* Converts voxels of NIfTI type `datatype` in file order (x fastest: in[x + nx * (y + ny * z)], native
 * byte order) into out[(x * ny + y) * nz + z] as float32 of slope * value + inter. */
typedef void (*volume_convert_fn)(float *out, const void *in, int64_t nx, int64_t ny, int64_t nz,
                                  double slope, double inter);
/* The converter of a NIfTI DT_* code, NULL for types we do not read (complex, RGB, 1-bit). */
volume_convert_fn volume_converter_for(int datatype);
/* GEN_ERR_DATA "PATH: N non-finite voxel(s) ..." when v holds a NaN or Inf. */
int volume_check_finite(const char *path, const volume *v);

/* Reads a MetaImage (.mhd + data file(s), or .mha) into v as read from the file (no reorientation
 * or resampling): src/data/volume_metaimage.c. */
int volume_read_metaimage(volume *v, const char *path);

#endif
