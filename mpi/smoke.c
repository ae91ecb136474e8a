/* The smoke run (include/genesis/smoke.h). */
#include "genesis/smoke.h"

#include "genesis/error.h"
#include "genesis/h5error.h"
#include "genesis/h5par.h"
#include "genesis/profile.h"
#include "genesis/world.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { GEMM_N = 64, ROW_FLOATS = 1024 };

static int check_mpi(void)
{
    int rank = world_rank(), size = world_size();
    long sum = 0, mine = rank;
    MPI_CALL(MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD));
    CHECK(sum == (long)size * (size - 1) / 2, GEN_ERR_MPI, "allreduce gave %ld", sum);
    CALL(fault_point("smoke.mpi"));
    long root = rank == 0 ? 4242 : 0;
    MPI_CALL(MPI_Bcast(&root, 1, MPI_LONG, 0, MPI_COMM_WORLD));
    CHECK(root == 4242, GEN_ERR_MPI, "broadcast gave %ld", root);
    return GEN_OK;
}

/* C = A B for 64x64 matrices through sgemm, against a direct double-precision product. */
static int check_blas(double *max_error)
{
    float *a = malloc(3 * GEMM_N * GEMM_N * sizeof *a);
    CHECK_ALLOC(a, 3 * GEMM_N * GEMM_N * sizeof *a);
    float *b = a + GEMM_N * GEMM_N, *c = b + GEMM_N * GEMM_N;
    for (int i = 0; i < GEMM_N * GEMM_N; i++) {
        a[i] = (float)((i * 37 % 101) - 50) / 50.0f;
        b[i] = (float)((i * 53 % 97) - 48) / 48.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, GEMM_N, GEMM_N, GEMM_N, 1.0f, a, GEMM_N,
                b, GEMM_N, 0.0f, c, GEMM_N);
    double worst = 0;
    for (int i = 0; i < GEMM_N; i++)
        for (int j = 0; j < GEMM_N; j++) {
            double direct = 0;
            for (int k = 0; k < GEMM_N; k++) direct += (double)a[i * GEMM_N + k] * b[k * GEMM_N + j];
            worst = fmax(worst, fabs(direct - c[i * GEMM_N + j]));
        }
    free(a);
    *max_error = worst;
    CHECK(worst < 1e-3, GEN_ERR_INTERNAL, "OpenBLAS sgemm differs from a direct product by %g", worst);
    return fault_point("smoke.blas");
}

/* Every rank writes row `rank` of a [size, ROW_FLOATS] dataset collectively, then reads row
 * (rank + 1) % size back and checks it. */
static int write_and_read(const char *path, long *bytes)
{
    int rank = world_rank(), size = world_size(), peer = (rank + 1) % size;
    float row[ROW_FLOATS], back[ROW_FLOATS];
    for (int i = 0; i < ROW_FLOATS; i++) row[i] = (float)(rank * ROW_FLOATS + i);
    hid_t file = -1;
    /* Every rank takes part in the create: agree on its outcome (e.g. an unwritable folder is
     * then one clean, collective error). After it, a rank that fails returns at once: it must not
     * enter another collective (the file is closed only on success), and the top level aborts
     * the job with its message. */
    CALL(world_agree(h5par_create(path, MPI_COMM_WORLD, &file)));
    CALL(fault_point("smoke.hdf5"));
    int status = GEN_OK;
    hsize_t dims[2] = {(hsize_t)size, ROW_FLOATS}, count[2] = {1, ROW_FLOATS};
    hsize_t mine[2] = {(hsize_t)rank, 0}, theirs[2] = {(hsize_t)peer, 0};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dset = H5Dcreate2(file, "smoke", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t memspace = H5Screate_simple(2, count, NULL);
    hid_t dxpl = h5par_collective_transfer();
    H5_CHECK_GOTO(space >= 0 && dset >= 0 && memspace >= 0 && dxpl >= 0 &&
                      H5Sselect_hyperslab(space, H5S_SELECT_SET, mine, NULL, count, NULL) >= 0 &&
                      H5Dwrite(dset, H5T_NATIVE_FLOAT, memspace, space, dxpl, row) >= 0,
                  "cannot write dataset 'smoke' of", path);
    H5_CHECK_GOTO(H5Sselect_hyperslab(space, H5S_SELECT_SET, theirs, NULL, count, NULL) >= 0 &&
                      H5Dread(dset, H5T_NATIVE_FLOAT, memspace, space, dxpl, back) >= 0,
                  "cannot read dataset 'smoke' of", path);
    for (int i = 0; i < ROW_FLOATS; i++)
        CHECK_GOTO(back[i] == (float)(peer * ROW_FLOATS + i), GEN_ERR_IO,
                   "%s: read back %g at [%d, %d], wrote %g", path, back[i], peer, i, (double)(peer * ROW_FLOATS + i));
    *bytes = (long)size * ROW_FLOATS * (long)sizeof(float);
cleanup:
    if (dxpl >= 0) H5Pclose(dxpl);
    if (memspace >= 0) H5Sclose(memspace);
    if (dset >= 0) H5Dclose(dset);
    if (space >= 0) H5Sclose(space);
    if (status == GEN_OK && H5Fclose(file) < 0)
        status = h5par_error("cannot close HDF5 file", path, __FILE__, __LINE__);
    return status;
}

int smoke_run(const char *dir, struct smoke_report *report)
{
    report->ranks = world_size();
    double t0 = profile_now();
    CALL(check_mpi());
    double t1 = profile_now();
    CALL(world_agree(check_blas(&report->sgemm_max_error)));
    double t2 = profile_now();

    /* rank 0 names the file; everyone uses that name */
    char path[4096];
    if (world_rank() == 0)
        snprintf(path, sizeof path, "%s/genesis-smoke-%ld.h5", dir, (long)getpid());
    MPI_CALL(MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD));
    int status = write_and_read(path, &report->hdf5_bytes);
    if (world_rank() == 0) unlink(path);
    CALL(status);
    report->mpi_seconds = t1 - t0;
    report->blas_seconds = t2 - t1;
    report->hdf5_seconds = profile_now() - t2;
    return GEN_OK;
}
