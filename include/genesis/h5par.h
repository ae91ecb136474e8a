/* Parallel-HDF5 helpers (mpi/h5par.c): files opened with the MPI-IO driver on a communicator and
 * collective transfers. HDF5 errors become genesis errors that name the file and the object
 * (h5error.h, shared with the serial files of src/io). */
#ifndef GENESIS_H5PAR_H
#define GENESIS_H5PAR_H

#include "genesis/h5error.h"

#include <hdf5.h>
#include <mpi.h>

/* The MPI-IO hints (MPI_Info) that every later h5par_create/h5par_open passes to HDF5's MPI-IO
 * driver, from spec "key=value,key=value" ([io] mpiio_hints, e.g. romio_cb_write=enable,
 * striping_factor=8; "" = none). An item that is not key=value (key of letters, digits and _, no
 * blanks): GEN_ERR_USAGE naming it, and no hints. The MPI library ignores hints it does not know. */
int h5par_set_mpiio_hints(const char *spec);
/* Collective on comm. create truncates an existing file. Opened without HDF5's file locking
 * (h5par_unlocked_access), with the MPI-IO hints of h5par_set_mpiio_hints. */
int h5par_create(const char *path, MPI_Comm comm, hid_t *file);
int h5par_open(const char *path, MPI_Comm comm, int writable, hid_t *file);
/* A dataset-transfer property list for collective MPI-IO (caller closes it with H5Pclose). */
hid_t h5par_collective_transfer(void);

#endif
