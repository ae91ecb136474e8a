/* genesis phantom: synthetic CT-like scans (Hounsfield units) as NIfTI, spread over the ranks. */
#include "cli/cli.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/phantom.h"
#include "genesis/world.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s", dir);
    CHECK(n > 0 && (size_t)n < sizeof path, GEN_ERR_USAGE, "phantom: --output-dir is %zu characters long; "
          "at most %zu are accepted", strlen(dir), sizeof path - 1);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            FAIL(GEN_ERR_IO, "cannot create folder %s: %s", path, strerror(errno));
        *p = saved;
        if (!saved) return GEN_OK;
    }
}

static int parse_size(const char *text, int64_t dim[3])
{
    long x, y, z;
    char tail;
    if (sscanf(text, "%ld,%ld,%ld%c", &x, &y, &z, &tail) != 3 || x < 16 || y < 16 || z < 8 ||
        x > 4096 || y > 4096 || z > 4096)
        FAIL_ALL(GEN_ERR_USAGE, "phantom: --size expects X,Y,Z voxels (16..4096, z >= 8), got '%s'", text);
    dim[0] = x, dim[1] = y, dim[2] = z;
    return GEN_OK;
}

/* Rank 0: the folder, then the output policy (atomic_file.h) for every scan to write. */
static int prepare_outputs(const char *dir, long first, long count, int force)
{
    CALL(make_dirs(dir));
    for (long k = 0; k < count; k++) {
        char path[4200];
        int n = snprintf(path, sizeof path, "%s/phantom_%04llu.nii.gz", dir, (unsigned long long)(first + k));
        CHECK(n > 0 && (size_t)n < sizeof path, GEN_ERR_USAGE, "phantom: output folder name too long (%zu "
              "characters): %s", strlen(dir), dir);
        CALL(output_check(path, force, "--force", NULL, 0));
    }
    return GEN_OK;
}

int cmd_phantom(int argc, char **argv)
{
    long count = 0, seed = 0, first = 0;
    int force = 0;
    const char *dir = NULL;
    phantom_options opt;
    phantom_options_default(&opt);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--count") && v) CALL(cli_parse_long(a, argv[++i], 1, 1000000, &count));
        else if (!strcmp(a, "--output-dir") && v) dir = argv[++i];
        else if (!strcmp(a, "--seed") && v) CALL(cli_parse_long(a, argv[++i], 0, 2147483647, &seed));
        else if (!strcmp(a, "--first") && v) CALL(cli_parse_long(a, argv[++i], 0, 1000000000, &first));
        else if (!strcmp(a, "--size") && v) CALL(parse_size(argv[++i], opt.dim));
        else if (!strcmp(a, "--force")) force = 1;
        else FAIL_ALL(GEN_ERR_USAGE, "phantom: unknown or incomplete option '%s' (see genesis help phantom)", a);
    }
    if (count < 1 || !dir) FAIL_ALL(GEN_ERR_USAGE, "phantom: --count N and --output-dir DIR are required");
    opt.seed = (uint64_t)seed;
    int rank = world_rank(), size = world_size();
    CALL(world_agree_shared(rank == 0 ? prepare_outputs(dir, first, count, force) : GEN_OK));
    log_info("phantom: %ld scan(s) of %lldx%lldx%lld voxels -> %s/phantom_NNNN.nii.gz on %d rank(s)",
             count, (long long)opt.dim[0], (long long)opt.dim[1], (long long)opt.dim[2], dir, size);
    int status = GEN_OK;
    for (long k = rank; status == GEN_OK && k < count; k += size) {
        status = phantom_write_series(dir, 1, (uint64_t)(first + k), &opt, NULL, NULL);
        if (status == GEN_OK && rank == 0)
            log_info("phantom: %ld/%ld", k + size < count ? k + size : count, count);
    }
    /* every rank checks the same folder: the usual failure (missing/unwritable) is everyone's */
    CALL(world_agree_shared(status));
    log_info("phantom: wrote %ld scan(s) to %s", count, dir);
    return GEN_OK;
}
