/* The smoke run (mpi/smoke.c): MPI collectives, OpenBLAS and a collective parallel-HDF5 write and
 * read-back on every rank of MPI_COMM_WORLD. Test-only fault sites (GENESIS_FAULT):
 * smoke.mpi (between two collectives), smoke.blas (before an agreement), smoke.hdf5 (between the
 * collective create and the collective write). */
#ifndef GENESIS_SMOKE_H
#define GENESIS_SMOKE_H

struct smoke_report {
    int ranks;
    double mpi_seconds, blas_seconds, hdf5_seconds;
    double sgemm_max_error; /* max |sgemm - direct| over a 64^3 product */
    long hdf5_bytes;        /* bytes written collectively */
};

/* Collective. `dir` is where the temporary HDF5 file goes (removed afterwards). */
int smoke_run(const char *dir, struct smoke_report *report);

#endif
