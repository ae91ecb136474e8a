/* libFuzzer harness of the readers of genesis's own HDF5 files: cubes files (src/io/cubes.c, as
 * genesis info and train read them), checkpoints (src/io/checkpoint.c: state, configuration,
 * weights, optimizer state), weights files and forward files (src/io/weights.c).
 *
 * Input, two modes:
 *   starting with HDF5's signature: the bytes of an HDF5 file (seeds: small files of genesis prep);
 *   otherwise, structured: a valid file made at start-up by genesis's own writers (cubes file,
 *   checkpoint, weights file, forward file), with datasets and attributes removed or replaced by
 *   other shapes, dtypes and values as the input says (fuzz_h5_mutate.c).
 * The file is given to every reader in turn; each must fail with a genesis error or succeed, never
 * crash, leak or hit UB.
 *
 * The model the weights readers load into is the smallest U-Net (width 2, 8^3 input), with SGD
 * momentum. The cubes reader opens the file with the MPI-IO driver on MPI_COMM_SELF, as genesis info
 * does: MPI is initialised once (a singleton, no mpirun needed). */
#include "fuzz_common.h"
#include "fuzz_h5_mutate.h"

#include "genesis/checkpoint.h"
#include "genesis/config.h"
#include "genesis/cubes.h"
#include "genesis/error.h"
#include "genesis/model.h"
#include "genesis/weights.h"

#include <limits.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static model *net;
static optimizer optim;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) abort();
    model_config mc = {.width = 2, .batch = 1, .D = 8, .H = 8, .W = 8, .seed = 1};
    optim_config oc = {.kind = OPTIM_SGD, .lr = 0.1, .momentum = 0.9};
    if (model_create(&net, &mc) != GEN_OK) abort();
    if (optim_create(&optim, &oc, model_num_params(net)) != GEN_OK) abort();
    const char *dir = getenv("TMPDIR");
    fuzz_h5_make_bases(dir && dir[0] ? dir : "/tmp", net, &optim);
    return 0;
}

static void read_cubes(const char *path)
{
    cubes_file f;
    if (cubes_open(&f, path, CUBES_THIS_RANK) != GEN_OK) return;
    char text[256];
    double pair[2];
    cubes_scan_record *scans = NULL;
    int64_t scan_count = 0;
    (void)cubes_read_attr_text(&f, "normalize", text, sizeof text);
    (void)cubes_read_attr_doubles(&f, "value_range", pair, 2);
    (void)cubes_read_scans(&f, &scans, &scan_count);
    free(scans);
    int64_t indices[2] = {0, f.count - 1};
    int n = f.count >= 2 ? 2 : (int)f.count;
    size_t cube = (size_t)f.rows * (size_t)f.cols * (size_t)f.deps;
    float *out = malloc(sizeof *out * cube * 2 + 1);
    if (out && cubes_read(&f, out, indices, n) == GEN_OK)
        for (size_t i = 0; i < cube * (size_t)n; i++) (void)*(volatile float *)&out[i];
    free(out);
    cubes_close(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    char path[PATH_MAX];
    if (size == 0) return 0;
    if (size >= 8 && !memcmp(data, hdf5_signature, 8)) {
        fuzz_write_file(data, size, ".h5", path, sizeof path); /* a file's bytes */
    } else {
        fuzz_write_file(NULL, 0, ".h5", path, sizeof path);
        fuzz_h5_mutate(data, size, path); /* a base file changed as data says */
    }
    train_state st;
    int is_checkpoint = 0, width = 0;
    static genesis_config cfg;
    (void)checkpoint_has_state(path);
    (void)checkpoint_read_state(path, &st);
    if (config_defaults(&cfg) != GEN_OK) abort();
    (void)checkpoint_read_config(path, &cfg);
    (void)checkpoint_read(path, net, &optim, &st);
    (void)checkpoint_read_weights(path, net);
    (void)weights_is_checkpoint(path, &is_checkpoint);
    (void)weights_file_width(path, &width);
    (void)weights_read(path, net);
    float *x = NULL;
    int64_t dims[5];
    if (forward_file_read_input(path, &x, dims) == GEN_OK) free(x);
    read_cubes(path);
    gen_error_clear();
    /* every HDF5 object a reader opened is closed again (a leaked handle keeps the file open) */
    ssize_t open_objects = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_objects != 0) {
        fprintf(stderr, "fuzz_h5: %zd HDF5 object(s) left open by the readers\n", open_objects);
        abort();
    }
    return 0;
}
