/* Parallel-HDF5 helpers (mpi/h5par.c): files opened with the MPI-IO driver on a communicator and
 * collective transfers. HDF5 errors become genesis errors that name the file and the object
 * (h5error.h, shared with the serial files of src/io). */
#ifndef GENESIS_H5PAR_H
#define GENESIS_H5PAR_H

#include "genesis/h5error.h"

#include <hdf5.h>
#include <mpi.h>

/* Collective on comm. create truncates an existing file. */
int h5par_create(const char *path, MPI_Comm comm, hid_t *file);
int h5par_open(const char *path, MPI_Comm comm, int writable, hid_t *file);
/* A dataset-transfer property list for collective MPI-IO (caller closes it with H5Pclose). */
hid_t h5par_collective_transfer(void);

#endif
