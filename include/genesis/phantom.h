/* Synthetic chest-CT-like scans in Hounsfield units (src/data/phantom.c), so that CT paths can be
 * exercised without patient data.
 *
 * Anatomy, in fractions of the field of view so that it scales with the size: air (-1000) outside a
 * body ellipse with a fat rim (-100) around soft tissue (+40); two lungs (about -800, slightly denser
 * posteriorly) from a diaphragm dome up to a tapered apex; a heart (+40) and an aorta (+45) between
 * them; vessels as thin tubes (+40..+200) fanning out from each hilum inside the lungs; a spine
 * (cortex +700, marrow +300, canal +10), posterior/lateral ribs every ~25 mm and a sternum (+700);
 * Gaussian noise on everything. Axes are RAS (x toward the patient's right, y anterior, z superior),
 * written with qform = sform = diag(spacing), centred on the origin.
 *
 * A phantom is a pure function of (seed, index, options): rng_stream_init(seed, 0, index,
 * RNG_PURPOSE_PHANTOM).
 */
#ifndef GENESIS_PHANTOM_H
#define GENESIS_PHANTOM_H

#include <stdint.h>

#include "genesis/volume.h"

typedef struct phantom_options {
    int64_t dim[3];       /* voxels x, y, z: default 256 x 256 x 96 */
    double spacing[3];    /* mm; an entry <= 0 means the default: 384 mm / n in-plane (a 384 mm
                           * field of view), 1.5 mm in z */
    uint64_t seed;        /* default 0 */
    double noise_sd;      /* Gaussian noise in HU: default 20 */
    int vessels_per_lung; /* default 16 */
} phantom_options;

void phantom_options_default(phantom_options *opt);

/* Makes phantom `index` as a float32 volume in HU (v owned by the caller: volume_free). */
int phantom_make(volume *v, uint64_t index, const phantom_options *opt);

/* Called after each phantom is written: done of total, and the file written. */
typedef void (*phantom_progress_fn)(int done, int total, const char *path, void *user);

/* Writes phantoms first_index .. first_index + count - 1 as int16 NIfTI-1 files
 * output_dir/phantom_NNNN.nii.gz (NNNN = index, at least 4 digits). The directory must exist and be
 * writable (checked before any work: GEN_ERR_IO). progress may be NULL. */
int phantom_write_series(const char *output_dir, int count, uint64_t first_index,
                         const phantom_options *opt, phantom_progress_fn progress, void *user);

#endif
