/* libFuzzer harness of the NIfTI-1/NIfTI-2/ANALYZE reader (volume_read, src/data/volume_read.c):
 * header fields, dims, datatypes, scaling, byte order, gzip.
 *
 * Input: the bytes of a .nii file, or of a .nii.gz when they start with gzip's magic (1f 8b), written
 * to a file and read with volume_read (libnifti and zlib read it, as for prep). An odd input length
 * also reorients the volume to RAS+ (volume_reorient_ras: the affine's axes). */
#include "fuzz_common.h"

#include "genesis/error.h"
#include "genesis/volume.h"

#include <limits.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[PATH_MAX];
    int gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    fuzz_write_file(data, size, gzip ? ".nii.gz" : ".nii", path, sizeof path);
    fuzz_read_volume(path, size % 2);
    return 0;
}
