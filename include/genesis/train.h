/* genesis train (src/train/train.c, the loop; run_folder.c, checkpoints.c, stop_policy.c beside it):
 * data-parallel Models Genesis pretraining.
 *
 * One run folder ([train] output) holds: config.ini (resolved), metrics.csv, train.log, ckpt/
 * (step-NNNNNNNN.h5, the newest K kept, `latest` naming the newest complete one, best.h5 with the
 * best validation loss) and preview.png. With resume = auto a run continues from ckpt/latest, at
 * any number of ranks (same global batch), as the same run. A folder that holds a run (a checkpoint in
 * ckpt/) is never started over silently: resume = never there, or a checkpoint that does not fit
 * the configuration (e.g. another [model] width, named in the error), is refused unless --fresh,
 * which first moves the old run aside (RUN_DIR/previous-YYYYmmdd-HHMMSS/).
 *
 * Test-only fault site (GENESIS_FAULT): checkpoint.latest, on rank 0 after ckpt/latest.tmp is
 * written and closed, before it is renamed over `latest`.
 */
#ifndef GENESIS_TRAIN_H
#define GENESIS_TRAIN_H

#include "genesis/config.h"

struct train_options {
    int profile; /* print a table of time per phase and layer at the end */
    int fresh;   /* --fresh: start over in a folder that holds a run, after moving that run's files to
                    RUN_DIR/previous-YYYYmmdd-HHMMSS/ (without it such a start is refused) */
};

/* Collective on MPI_COMM_WORLD. */
int train_run(const genesis_config *cfg, const struct train_options *opt);

#endif
