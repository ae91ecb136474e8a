/* Running a trained model (src/infer/run.c): building the model a checkpoint or weights file
 * holds, and a forward pass on arrays from a file (genesis forward, genesis export, genesis restore
 * in src/infer/restore.c). */
#ifndef GENESIS_INFER_H
#define GENESIS_INFER_H

#include "genesis/config.h"
#include "genesis/model.h"

/* Builds the model stored in `path`, a checkpoint (width from its config) or a weights file, for
 * inputs [batch, 1, D, H, W] (shape->batch, D, H, W, tile_budget_bytes are used; width is taken
 * from the file), and loads its weights. cfg (may be NULL) receives the checkpoint's configuration,
 * or the defaults (with [model] width set) for a weights file. On failure *out is NULL. */
int model_load_file(model **out, const char *path, const model_config *shape, genesis_config *cfg);

/* Runs the model of model_path (checkpoint or weights file) on the dataset /input, float32
 * [N, 1, D, H, W] (D, H, W multiples of 8) of input_path, in one batch of N (batch-norm statistics
 * of that batch, as the reference's ContBatchNorm3d; with bn_running the model's running estimates,
 * as PyTorch's BatchNorm3d in eval()), and writes its sigmoid output as /output, float32
 * [N, 1, D, H, W], to output_path (genesis forward: comparisons with PyTorch). */
int weights_forward_file(const char *model_path, const char *input_path, const char *output_path,
                         int bn_running);

#endif
