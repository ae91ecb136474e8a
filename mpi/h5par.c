/* Parallel-HDF5 helpers (include/genesis/h5par.h) and HDF5 errors (include/genesis/h5error.h). */
#include "genesis/h5par.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "genesis/log.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* The MPI-IO hints of every file opened with the MPI-IO driver ([io] mpiio_hints); MPI_INFO_NULL
 * while there are none. */
static MPI_Info mpiio_hints = MPI_INFO_NULL;

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

hid_t h5par_unlocked_access(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
    /* ignore_when_disabled = 1: a file system without locks is no error either */
    if (fapl >= 0 && H5Pset_file_locking(fapl, 0, 1) < 0) {
        H5Pclose(fapl);
        return -1;
    }
#endif
    return fapl;
}

/* One "key=value" item of a hints list: key of letters, digits and _, a value without blanks. */
static int parse_hint(const char *item, size_t len, char *key, size_t key_size, char *value,
                      size_t value_size)
{
    const char *eq = memchr(item, '=', len);
    size_t key_len = eq ? (size_t)(eq - item) : 0, value_len = eq ? len - key_len - 1 : 0;
    if (!eq || key_len == 0 || value_len == 0 || key_len >= key_size || value_len >= value_size)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (isspace((unsigned char)item[i])) return 0;
    for (size_t i = 0; i < key_len; i++)
        if (!isalnum((unsigned char)item[i]) && item[i] != '_') return 0;
    memcpy(key, item, key_len), key[key_len] = '\0';
    memcpy(value, eq + 1, value_len), value[value_len] = '\0';
    return 1;
}

int h5par_set_mpiio_hints(const char *spec)
{
    int status = GEN_OK;
    MPI_Info info = MPI_INFO_NULL;
    if (mpiio_hints != MPI_INFO_NULL) MPI_Info_free(&mpiio_hints);
    if (!spec || !spec[0]) return GEN_OK;
    CHECK(MPI_Info_create(&info) == MPI_SUCCESS, GEN_ERR_MPI, "cannot create the MPI-IO hints");
    for (const char *item = spec; *item;) {
        size_t len = strcspn(item, ",");
        char key[MPI_MAX_INFO_KEY], value[256];
        CHECK_GOTO(parse_hint(item, len, key, sizeof key, value, sizeof value), GEN_ERR_USAGE,
                   "[io] mpiio_hints: '%.*s' is not key=value (e.g. romio_cb_write=enable,"
                   "striping_factor=8: comma-separated, no blanks)", (int)len, item);
        CHECK_GOTO(MPI_Info_set(info, key, value) == MPI_SUCCESS, GEN_ERR_MPI,
                   "cannot set MPI-IO hint %s", key);
        item += len + (item[len] == ',');
    }
    mpiio_hints = info, info = MPI_INFO_NULL;
    log_debug("MPI-IO hints of the parallel HDF5 files: %s", spec);
cleanup:
    if (info != MPI_INFO_NULL) MPI_Info_free(&info);
    return status;
}

static hid_t mpio_access(MPI_Comm comm)
{
    hid_t fapl = h5par_unlocked_access();
    if (fapl < 0) return fapl;
    if (H5Pset_fapl_mpio(fapl, comm, mpiio_hints) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* A path this system cannot name is refused before MPI-IO sees it (Open MPI's components format
 * paths into fixed buffers; world.c leaves out the one that overflowed at ~240 characters). */
/* Creates (truncating) or opens path with the MPI-IO driver on comm. */
static int open_mpio(const char *path, MPI_Comm comm, int create, int writable, hid_t *file)
{
    int status = GEN_OK;
    CALL(path_check_length(path));
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
