/* Parallel-HDF5 helpers (mpi/h5par.c): files opened with the MPI-IO driver on a communicator,
 * collective transfers, and HDF5 errors turned into genesis errors that name the file and the
 * object, with HDF5's own error stack silenced. */
#ifndef GENESIS_H5PAR_H
#define GENESIS_H5PAR_H

#include <hdf5.h>
#include <mpi.h>

/* Silences HDF5's automatic error printing (once per process). */
void h5par_quiet(void);
/* Records an HDF5 failure: "<what> '<name>': <innermost HDF5 message>". Returns GEN_ERR_IO. */
int h5par_error(const char *what, const char *name, const char *file, int line);
#define H5_CHECK(ok, what, name)                                                               \
    do {                                                                                       \
        if (!(ok)) return h5par_error((what), (name), __FILE__, __LINE__);                     \
    } while (0)

/* Collective on comm. create truncates an existing file. */
int h5par_create(const char *path, MPI_Comm comm, hid_t *file);
int h5par_open(const char *path, MPI_Comm comm, int writable, hid_t *file);
/* A dataset-transfer property list for collective MPI-IO (caller closes it with H5Pclose). */
hid_t h5par_collective_transfer(void);

#endif
