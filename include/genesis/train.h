/* genesis train (src/train/train.c): data-parallel Models Genesis pretraining.
 *
 * One run folder ([train] output) holds: config.ini (resolved), metrics.csv, train.log, ckpt/
 * (step-NNNNNNNN.h5, the newest K kept, `latest` naming the newest complete one, best.h5 with the
 * best validation loss) and preview.png. With resume = auto a run continues from ckpt/latest, at
 * any number of ranks (same global batch), as the same run.
 */
#ifndef GENESIS_TRAIN_H
#define GENESIS_TRAIN_H

#include "genesis/config.h"

struct train_options {
    int profile; /* print a table of time per phase and layer at the end */
};

/* Collective on MPI_COMM_WORLD. */
int train_run(const genesis_config *cfg, const struct train_options *opt);

#endif
