/* genesis smoke: MPI, parallel HDF5 and OpenBLAS working together on every rank. */
#include "cli/cli.h"

#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/smoke.h"

#include <stdlib.h>
#include <string.h>

int cmd_smoke(int argc, char **argv)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else FAIL_ALL(GEN_ERR_USAGE, "smoke: unknown argument '%s' (usage: genesis smoke [--dir DIR])", argv[i]);
    }
    struct smoke_report r;
    CALL(smoke_run(dir, &r));
    log_info("genesis smoke: ok on %d rank(s): MPI collectives %.3f s, OpenBLAS sgemm (max error "
             "%.2g) %.3f s, parallel HDF5 write+read of %ld bytes in %s %.3f s",
             r.ranks, r.mpi_seconds, r.sgemm_max_error, r.blas_seconds, r.hdf5_bytes, dir,
             r.hdf5_seconds);
    return GEN_OK;
}
