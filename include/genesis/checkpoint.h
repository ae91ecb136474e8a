/* Checkpoints (src/io/checkpoint.c): everything a run needs to continue, in one HDF5 file.
 *
 *   /params/<state_dict name>    float32, PyTorch shape            (chunked, Fletcher-32 checksum)
 *   /buffers/<state_dict name>   BN running_mean/var float32, num_batches_tracked int64 scalar
 *   /optim/<k>/<state_dict name> optimizer state array k (SGD, LARS: 0 = momentum_buffer; Adam:
 *                                0 = exp_avg, 1 = exp_avg_sq)
 *   /state attributes            format_version, epoch, step_in_epoch, global_step, lr,
 *                                best_loss, bad_epochs, optimizer_steps, optimizer, config_hash,
 *                                best_identity_loss (absent in older checkpoints: read as NaN)
 *   /config                      the resolved configuration (text attribute of /)
 *
 * Written by one process under PATH.tmp-<pid>, flushed, fsync'ed and renamed over PATH, so PATH
 * is always either the previous complete file or the new complete one. Reading verifies the
 * checksums (a corrupted file fails to read) and every tensor's name and shape.
 */
#ifndef GENESIS_CHECKPOINT_H
#define GENESIS_CHECKPOINT_H

#include "genesis/model.h"

#include <stdint.h>

#define CHECKPOINT_FORMAT_VERSION 1

typedef struct train_state {
    int64_t epoch;          /* epoch in progress (0-based) */
    int64_t step_in_epoch;  /* steps of that epoch already taken */
    int64_t global_step;    /* optimizer steps taken in the whole run; also the position in the
                               learning-rate warm-up (model.h lr_schedule), so none is stored */
    double lr;              /* learning rate of the last step (StepLR's of the epoch in progress,
                               times the warm-up factor during the warm-up) */
    double best_loss;       /* best validation loss so far (HUGE_VAL: none) */
    double best_identity;   /* the identity baseline of that validation (the corrupted input as the
                               output, same batches); NaN: unknown (none yet, or an older checkpoint) */
    int64_t bad_epochs;     /* epochs since the best validation loss (early stopping) */
    int64_t optimizer_steps;
    int64_t optimizer_kind; /* enum optim_kind (sgd 1, adam 2, lars 3) */
    uint64_t config_hash;
} train_state;

int checkpoint_write(const char *path, model *m, const optimizer *o, const train_state *st,
                     const char *config_text);
/* Reads into an existing model and optimizer of the same architecture. */
int checkpoint_read(const char *path, model *m, optimizer *o, train_state *st);
/* Reads only the state attributes (genesis info). */
int checkpoint_read_state(const char *path, train_state *st);
/* 1 if path is a readable HDF5 file with a /state group (a checkpoint, for genesis info), else 0;
 * never an error. */
int checkpoint_has_state(const char *path);

#endif
