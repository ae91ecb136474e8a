/* Weights files (src/io/weights.c): a model's PyTorch state_dict as plain HDF5, for PyTorch users
 * (scripts/genesis_to_torch.py, scripts/torch_to_genesis.py) and for [train] init_from.
 *
 *   /<state_dict key>   every parameter and BN buffer as a dataset at the root, named by its PyTorch
 *                       state_dict key (e.g. "down_tr64.ops.0.conv1.weight"), in PyTorch's shape
 *                       and layout (SPEC.md section 4; ConvTranspose3d weights [in, out, 2, 2, 2]),
 *                       float32; num_batches_tracked: int64 scalar (shape [])
 *   attributes of /     format = "genesis-unet3d-weights", format_version = 1 (int64),
 *                       width (int64, the base width w), genesis_version (text)
 *
 * Reading is strict, as PyTorch's load_state_dict(strict=True): every name of the model must be
 * present with its shape, and no other dataset may be; otherwise GEN_ERR_DATA with the missing,
 * unexpected and mis-shaped names listed.
 */
#ifndef GENESIS_WEIGHTS_H
#define GENESIS_WEIGHTS_H

#include "genesis/config.h"
#include "genesis/model.h"

#include <stdint.h>

#define WEIGHTS_FORMAT "genesis-unet3d-weights"
#define WEIGHTS_FORMAT_VERSION 1

/* Writes every state_dict entry of m to path (PATH.tmp-<pid>, fsync, rename). */
int weights_write(const char *path, model *m);
/* Reads a weights file into m (strict, see above). */
int weights_read(const char *path, model *m);
/* The base width of a weights file: its `width` attribute, else the output channels of
 * down_tr64.ops.0.conv1.weight. */
int weights_file_width(const char *path, int *width);

/* The configuration a checkpoint was trained with (its root attribute "config"), parsed over the
 * defaults. */
int checkpoint_read_config(const char *path, genesis_config *cfg);
/* Only the weights of a checkpoint: /params and /buffers into m (names and shapes checked). */
int checkpoint_read_weights(const char *path, model *m);
/* What the HDF5 file path is: "a genesis checkpoint", "a genesis weights file", "a genesis cubes
 * file" or "an HDF5 file that genesis did not write" (a static string). */
int hdf5_file_kind(const char *path, const char **kind);
/* 1 if path is a genesis checkpoint (has a /state group), 0 if not (e.g. a weights file). */
int weights_is_checkpoint(const char *path, int *is_checkpoint);

/* Forward files (genesis forward): the dataset /input [N, 1, D, H, W] float32 of path into *x
 * (malloc'ed; caller frees, also on failure) and dims; and y [N, 1, D, H, W] as the dataset
 * /output of a new file path (the file's close is part of the write and checked). */
int forward_file_read_input(const char *path, float **x, int64_t dims[5]);
int forward_file_write_output(const char *path, const float *y, const int64_t dims[5]);

/* [train] init_from: every rank reads the weights file into its model, then the ranks agree
 * (world_agree_shared): a refused file is one collective error naming the tensors. (The trainer's
 * use of weights_read, kept beside it: src/train holds no file format.) */
int init_from_weights(model *m, const char *path, int rank);

#endif
