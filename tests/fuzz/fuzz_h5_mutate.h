/* The structured mode of fuzz_h5 (fuzz_h5_mutate.c): valid genesis files made by genesis's own
 * writers, changed through HDF5's API as an input describes (datasets and attributes removed,
 * replaced with other shapes and dtypes, attribute values rewritten). */
#ifndef GENESIS_FUZZ_H5_MUTATE_H
#define GENESIS_FUZZ_H5_MUTATE_H

#include "genesis/model.h"

#include <stddef.h>
#include <stdint.h>

enum { FUZZ_H5_BASES = 4 }; /* cubes file, checkpoint, weights file, forward file */

/* Writes the valid files (base 0..3) with m and o (checkpoint, weights) into dir and lists their
 * objects and attributes. */
void fuzz_h5_make_bases(const char *dir, model *m, const optimizer *o);
/* Copies base data[0] % FUZZ_H5_BASES to path and applies the changes the rest of data describes
 * (8 bytes per change, see fuzz_h5_mutate.c). */
void fuzz_h5_mutate(const uint8_t *data, size_t size, const char *path);

#endif
