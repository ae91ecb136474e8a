/* What the libFuzzer harnesses share (fuzz_common.h). */
#include "fuzz_common.h"

#include "genesis/error.h"
#include "genesis/volume.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void fuzz_write_file(const uint8_t *data, size_t size, const char *suffix, char *path, size_t path_size)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, path_size, "%s/genesis-fuzz-%ld%s", dir && dir[0] ? dir : "/tmp", (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
}

void fuzz_read_volume(const char *path, int reorient_ras)
{
    volume_read_options opt;
    volume_read_options_default(&opt);
    opt.reorient_ras = reorient_ras;
    volume v;
    if (volume_read(&v, path, &opt) == GEN_OK) {
        size_t n = (size_t)(v.dim[0] * v.dim[1] * v.dim[2]);
        for (size_t i = 0; i < n; i++)
            if (!isfinite(v.data[i])) abort();
        volume_free(&v);
    }
    gen_error_clear();
}
