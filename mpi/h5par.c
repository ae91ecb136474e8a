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

void h5par_close_all(const hid_t *ids, int n)
{
    for (int i = 0; i < n; i++) {
        if (ids[i] <= 0) continue; /* -1: never opened; 0: H5P_DEFAULT */
        switch (H5Iget_type(ids[i])) {
        case H5I_FILE: H5Fclose(ids[i]); break;
        case H5I_GROUP: H5Gclose(ids[i]); break;
        case H5I_DATASET: H5Dclose(ids[i]); break;
        case H5I_DATASPACE: H5Sclose(ids[i]); break;
        case H5I_DATATYPE: H5Tclose(ids[i]); break;
        case H5I_ATTR: H5Aclose(ids[i]); break;
        case H5I_GENPROP_LST: H5Pclose(ids[i]); break;
        default: break;
        }
    }
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

/* Creates (truncating) or opens path with the MPI-IO driver on comm. */
static int open_mpio(const char *path, MPI_Comm comm, int create, int writable, hid_t *file)
{
    int status = GEN_OK;
    h5par_quiet();
    hid_t fapl = mpio_access(comm);
    H5_CHECK(fapl >= 0, "cannot set up MPI-IO access for", path);
    *file = create ? H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                   : H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    H5_CHECK_GOTO(*file >= 0, create ? "cannot create HDF5 file" : "cannot open HDF5 file", path);
cleanup:
    H5Pclose(fapl); /* after reading the error stack: any HDF5 call clears it */
    return status;
}

int h5par_create(const char *path, MPI_Comm comm, hid_t *file) { return open_mpio(path, comm, 1, 1, file); }

int h5par_open(const char *path, MPI_Comm comm, int writable, hid_t *file)
{
    return open_mpio(path, comm, 0, writable, file);
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

void h5par_library_version(char *out, size_t size)
{
    unsigned major = 0, minor = 0, release = 0;
    H5get_libversion(&major, &minor, &release);
#ifdef H5_HAVE_PARALLEL
    const char *kind = "parallel";
#else
    const char *kind = "serial";
#endif
    snprintf(out, size, "%u.%u.%u (%s)", major, minor, release, kind);
}
