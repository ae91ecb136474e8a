/* libFuzzer harness of the MetaImage reader (volume_read of .mha/.mhd, src/data/volume_metaimage*.c):
 * header keys and values, element types, byte order, HeaderSize, LOCAL/LIST/file data, zlib streams,
 * direction matrices.
 *
 * Input: when its first byte is even, the bytes of a .mha file (header and, after ElementDataFile =
 * LOCAL, the data). When odd, a .mhd header (the bytes after the first one, up to the first NUL) and
 * a data file named fuzz.raw beside it (the bytes after that NUL), so that ElementDataFile = fuzz.raw,
 * LIST and HeaderSize reach a separate file. Bit 1 of the first byte also reorients to RAS+. */
#include "fuzz_common.h"

#include "genesis/error.h"
#include "genesis/volume.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char path[PATH_MAX];
    int separate = data[0] & 1;
    if (!separate) {
        fuzz_write_file(data + 1, size - 1, ".mha", path, sizeof path);
    } else {
        const uint8_t *nul = memchr(data + 1, 0, size - 1);
        size_t header = nul ? (size_t)(nul - (data + 1)) : size - 1;
        fuzz_write_file(data + 1, header, ".mhd", path, sizeof path);
        char dir[PATH_MAX], raw[PATH_MAX + 16];
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(raw, sizeof raw, "%s/fuzz.raw", dirname(dir));
        FILE *f = fopen(raw, "wb");
        size_t rest = nul ? size - 1 - header - 1 : 0;
        if (!f || (rest && fwrite(nul + 1, 1, rest, f) != rest) || fclose(f)) abort();
    }
    fuzz_read_volume(path, (data[0] >> 1) & 1);
    return 0;
}
