/* Parallel-HDF5 helpers (include/genesis/h5par.h) and HDF5 errors (include/genesis/h5error.h). */
#include "genesis/h5par.h"

#include "genesis/error.h"

#include <stdio.h>
#include <string.h>

void h5par_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Keeps the description of the innermost frame of HDF5's error stack. */
static herr_t innermost(unsigned n, const H5E_error2_t *e, void *client)
{
    if (n == 0 && e->desc) snprintf((char *)client, 256, "%s", e->desc);
    return 0;
}

const char *h5par_reason(void)
{
    static _Thread_local char detail[256];
    detail[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, detail);
    H5Eclear2(H5E_DEFAULT);
    return detail;
}

int h5par_error(const char *what, const char *name, const char *file, int line)
{
    const char *detail = h5par_reason();
    return gen_error_set(GEN_ERR_IO, file, line, "%s '%s'%s%s", what, name, detail[0] ? ": " : "",
                         detail);
}

static hid_t mpio_access(MPI_Comm comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    if (H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

int h5par_create(const char *path, MPI_Comm comm, hid_t *file)
{
    h5par_quiet();
    hid_t fapl = mpio_access(comm);
    H5_CHECK(fapl >= 0, "cannot set up MPI-IO access for", path);
    *file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    int status = *file >= 0 ? GEN_OK : h5par_error("cannot create HDF5 file", path, __FILE__, __LINE__);
    H5Pclose(fapl); /* after reading the error stack: any HDF5 call clears it */
    return status;
}

int h5par_open(const char *path, MPI_Comm comm, int writable, hid_t *file)
{
    h5par_quiet();
    hid_t fapl = mpio_access(comm);
    H5_CHECK(fapl >= 0, "cannot set up MPI-IO access for", path);
    *file = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    int status = *file >= 0 ? GEN_OK : h5par_error("cannot open HDF5 file", path, __FILE__, __LINE__);
    H5Pclose(fapl); /* after reading the error stack: any HDF5 call clears it */
    return status;
}

hid_t h5par_collective_transfer(void)
{
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (dxpl >= 0 && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
        H5Pclose(dxpl);
        return -1;
    }
    return dxpl;
}
