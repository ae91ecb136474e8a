/* Parallel HDF5 files at 1, 2 and 4 ranks: [io] mpiio_hints reach the MPI_Info of HDF5's MPI-IO
 * driver (set through world_load_config, as every command does), a malformed hints list is a
 * collective usage error. (Opening without HDF5's file locking is tested with flock() made to fail:
 * tests/integration/filesystems.sh.) */
#include "check.h"

#include "genesis/error.h"
#include "genesis/h5par.h"
#include "genesis/world.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The value of hint key in the MPI_Info HDF5 holds for file ("" when absent). */
static void file_hint(hid_t file, const char *key, char *value, int size)
{
    value[0] = '\0';
    hid_t fapl = H5Fget_access_plist(file);
    MPI_Comm comm = MPI_COMM_NULL;
    MPI_Info info = MPI_INFO_NULL;
    if (fapl >= 0 && H5Pget_fapl_mpio(fapl, &comm, &info) >= 0 && info != MPI_INFO_NULL) {
        int found = 0;
        MPI_Info_get(info, key, size - 1, value, &found);
        if (!found) value[0] = '\0';
    }
    if (info != MPI_INFO_NULL) MPI_Info_free(&info);
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    if (fapl >= 0) H5Pclose(fapl);
}

int main(int argc, char **argv)
{
    if (world_init(&argc, &argv, 0) != GEN_OK) return 1;
    int rank = world_rank();
    char path[256];
    long id = (long)getpid();
    MPI_Bcast(&id, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    snprintf(path, sizeof path, "/tmp/genesis_test_h5par_%ld.h5", id);

    genesis_config cfg;
    char *sets[] = {"io.mpiio_hints=romio_cb_write=enable,cb_nodes=2,striping_unit=1048576"};
    EXPECT_OK(world_load_config(&cfg, NULL, sets, 1));
    hid_t file = -1;
    EXPECT_OK(h5par_create(path, MPI_COMM_WORLD, &file));
    char value[64];
    file_hint(file, "romio_cb_write", value, sizeof value);
    EXPECT(!strcmp(value, "enable"), "rank %d: romio_cb_write = '%s'", rank, value);
    file_hint(file, "striping_unit", value, sizeof value);
    EXPECT(!strcmp(value, "1048576"), "rank %d: striping_unit = '%s'", rank, value);
    if (file >= 0) H5Fclose(file);

    /* malformed: a collective usage error naming the item; the hints are then gone */
    char *bad[] = {"io.mpiio_hints=romio_cb_write=enable,cb_nodes"};
    int status = world_load_config(&cfg, NULL, bad, 1);
    EXPECT(status == GEN_ERR_USAGE && gen_error_is_collective(), "rank %d: status %d", rank, status);
    EXPECT(strstr(gen_error_message(), "'cb_nodes' is not key=value") != NULL, "'%s'", gen_error_message());
    gen_error_clear();
    EXPECT_OK(h5par_open(path, MPI_COMM_WORLD, 0, &file));
    file_hint(file, "romio_cb_write", value, sizeof value);
    EXPECT(value[0] == '\0', "rank %d: hints left after a malformed list: '%s'", rank, value);
    if (file >= 0) H5Fclose(file);

    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) unlink(path);
    MPI_TEST_MAIN_END(rank);
}
