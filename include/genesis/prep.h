/* genesis prep (src/prep/prep.c): NIfTI scans -> one cubes file, in parallel.
 *
 * Rank 0 lists the scans (sorted) and splits them by scan into train/validation/test; in round k
 * rank r prepares scan k*P + r (read, optional reorientation/resampling, normalisation, cube
 * extraction per crop size), and one collective append per round puts the round's cubes into the
 * file in scan order. The cubes of a scan depend only on (seed, scan index, settings), so the file
 * is the same at any number of ranks. The file is written as OUTPUT.partial-<id> and renamed to
 * OUTPUT only when complete. The output follows the policy of every command (atomic_file.h:
 * replaced only with [prep] overwrite = true, never a scan or a non-regular file), and OUTPUT.lock
 * (held by rank 0 for the whole run) refuses a second prep to the same output, naming its PID; the
 * lock and partial file of a killed prep are recognised (PID gone) and removed.
 */
#ifndef GENESIS_PREP_H
#define GENESIS_PREP_H

#include "genesis/config.h"

#include <stdint.h>

struct prep_report {
    int64_t scans, scans_used, scans_skipped;
    int64_t cubes, cubes_per_split[3];
    double seconds, bytes_read;
};

/* Collective on MPI_COMM_WORLD. */
int prep_run(const genesis_config *cfg, struct prep_report *report);

#endif
