/* genesis --version: genesis's version and commit, and those of MPI, HDF5, OpenBLAS, libnifti. */
#include "cli/cli.h"

#include "genesis/blas_core.h"
#include "genesis/error.h"
#include "genesis/h5error.h"
#include "genesis/nn.h"
#include "genesis/world.h"
#include "genesis_version.h"

#include <cblas.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* libnifti prints its version only to stdout: capture that line. */
static void nifti_version(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *capture = tmpfile();
    if (!capture) return;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0) { fclose(capture); return; }
    dup2(fileno(capture), STDOUT_FILENO);
    nifti_disp_lib_version();
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(capture);
    if (fgets(out, (int)size, capture)) out[strcspn(out, "\n")] = '\0';
    fclose(capture);
}

int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc != 0) FAIL_ALL(GEN_ERR_USAGE, "version takes no arguments");
    if (world_rank() != 0) return GEN_OK;

    char mpi[1024];
    world_library_version(mpi, sizeof mpi);
    char hdf5[64], nifti[256];
    h5par_library_version(hdf5, sizeof hdf5);
    nifti_version(nifti, sizeof nifti);
    printf("genesis %s (commit %s)\n", GENESIS_VERSION, GENESIS_GIT_COMMIT);
    printf("MPI:      %s (ranks in this job: %d)\n", mpi, world_size());
    printf("HDF5:     %s\n", hdf5);
    printf("OpenBLAS: %s; core type %s%s; %d thread(s)\n", openblas_get_config(),
           openblas_get_corename(), blas_core_note(), openblas_get_num_threads());
    printf("conv:     %s\n", conv_engine_name());
    printf("libnifti: %s\n", nifti);
    return GEN_OK;
}
