/* Running a trained model (include/genesis/infer.h). */
#include "genesis/infer.h"

#include "genesis/error.h"
#include "genesis/h5file.h"
#include "genesis/weights.h"

#include <hdf5.h>
#include <stdlib.h>

int model_load_file(model **out, const char *path, const model_config *shape, genesis_config *cfg)
{
    int status = GEN_OK;
    model *m = NULL;
    *out = NULL;
    int is_checkpoint = 0;
    CALL(weights_is_checkpoint(path, &is_checkpoint));
    genesis_config local;
    genesis_config *c = cfg ? cfg : &local;
    model_config mc = *shape;
    if (is_checkpoint) {
        CALL(checkpoint_read_config(path, c));
        mc.width = (int)c->model.width;
    } else {
        CALL(config_defaults(c));
        CALL(weights_file_width(path, &mc.width));
        c->model.width = mc.width;
    }
    CALL(model_create(&m, &mc));
    CALL_GOTO(is_checkpoint ? checkpoint_read_weights(path, m) : weights_read(path, m));
    *out = m;
    m = NULL;
cleanup:
    model_free(m);
    return status;
}

/* ---- a forward pass on arrays from a file ----------------------------------------------- */

/* The dataset /input [N, 1, D, H, W] of path into *x (malloc'ed, caller frees, also on failure). */
static int read_input(const char *path, float **x, hsize_t dims[5])
{
    int status = GEN_OK;
    hid_t file, dset = -1;
    *x = NULL;
    CALL(h5file_open_read(path, "", &file));
    int ndim = -1;
    hsize_t shape[H5FILE_MAX_RANK];
    h5file_dataset_shape(file, "input", &ndim, shape);
    CHECK_GOTO(ndim == 5 && shape[1] == 1 && shape[0] >= 1 && shape[0] <= 4096, GEN_ERR_DATA,
               "%s: needs a dataset /input [N, 1, D, H, W]", path);
    for (int d = 0; d < 5; d++) dims[d] = shape[d];
    size_t n = (size_t)(dims[0] * dims[2] * dims[3] * dims[4]);
    *x = malloc(sizeof **x * n);
    CHECK_GOTO(*x, GEN_ERR_NOMEM, "out of memory");
    dset = H5Dopen2(file, "input", H5P_DEFAULT);
    int read = dset >= 0 && H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *x) >= 0;
    CHECK_GOTO(read, GEN_ERR_DATA, "%s: cannot read /input", path);
cleanup:
    if (dset >= 0) H5Dclose(dset);
    H5Fclose(file);
    return status;
}

/* y [N, 1, D, H, W] as the dataset /output of a new file path. Every handle is closed before
 * the one check (the file's close flushes it, so it is part of the write). */
static int write_output(const char *path, const float *y, const hsize_t dims[5])
{
    hid_t file;
    CALL(h5file_create(path, H5P_DEFAULT, "cannot create", &file));
    hid_t space = H5Screate_simple(5, dims, NULL);
    hid_t dset = space >= 0 ? H5Dcreate2(file, "output", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                                         H5P_DEFAULT) : -1;
    int written = dset >= 0 && H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0;
    if (dset >= 0) H5Dclose(dset);
    if (space >= 0) H5Sclose(space);
    written = H5Fclose(file) >= 0 && written;
    CHECK(written, GEN_ERR_IO, "cannot write /output to %s", path);
    return GEN_OK;
}

int weights_forward_file(const char *model_path, const char *input_path, const char *output_path)
{
    int status = GEN_OK;
    float *x = NULL;
    model *m = NULL;
    hsize_t dims[5] = {0};
    CALL_GOTO(read_input(input_path, &x, dims));
    model_config shape = {.batch = (int)dims[0], .D = (int)dims[2], .H = (int)dims[3], .W = (int)dims[4]};
    CALL_GOTO(model_load_file(&m, model_path, &shape, NULL));
    CALL_GOTO(model_forward(m, NULL, x, NULL, (int)dims[0]));
    CALL_GOTO(write_output(output_path, model_output(m), dims));
cleanup:
    model_free(m);
    free(x);
    return status;
}
