/* What src/data/volume*.c share (not part of the public API, include/genesis/volume.h). */
#ifndef GENESIS_VOLUME_INTERNAL_H
#define GENESIS_VOLUME_INTERNAL_H

/* 1 if the string s ends with suffix (a file extension such as ".nii.gz"), else 0. */
int volume_ends_with(const char *s, const char *suffix);
/* a = the 4x4 identity. */
void volume_affine_identity(double a[4][4]);

#endif
