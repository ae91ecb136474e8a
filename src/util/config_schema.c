/* The configuration schema: every key of every subcommand, with its default, range and meaning
 * (src/util/config_schema.h). The only table of defaults and ranges in genesis. */
#include "genesis/config.h"

#include "genesis/error.h"
#include "config_schema.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define ROW(sec, field, type, def, lo, hi, choices, help)                                      \
    {#sec, #field, type, offsetof(genesis_config, sec.field), def, lo, hi, choices, help}

const struct config_key config_schema[] = {
    ROW(model, width, TYPE_INT, "32", 1, CONFIG_WIDTH_MAX, NULL,
        "base number of channels of the 3D U-Net (32 in the paper; 4 or 8 for quick tests)"),

    ROW(prep, inputs, TYPE_STRING, "", 0, 0, NULL,
        "scans to prepare: comma-separated files, globs, folders, DICOM DIR#UID, @LIST (NIfTI, MetaImage, DICOM)"),
    ROW(prep, output, TYPE_STRING, "cubes.h5", 0, 0, NULL,
        "the cubes file to write (HDF5); written under a temporary name, renamed when complete"),
    ROW(prep, overwrite, TYPE_BOOL, "false", 0, 0, NULL, "replace an existing output file"),
    ROW(prep, strict, TYPE_BOOL, "false", 0, 0, NULL,
        "stop with an error at the first bad scan instead of skipping it with a warning"),
    ROW(prep, seed, TYPE_INT, "1", 0, 2147483647, NULL,
        "seed of the cube extraction and the split; with the scan index it fixes every draw"),
    ROW(prep, reorient_ras, TYPE_BOOL, "false", 0, 0, NULL,
        "reorient every scan to RAS from its qform/sform (false: voxel axes as stored, as the paper)"),
    ROW(prep, spacing_x, TYPE_FLOAT, "0", 0, 100, NULL, "resample x to this voxel size in mm (0: keep)"),
    ROW(prep, spacing_y, TYPE_FLOAT, "0", 0, 100, NULL, "resample y to this voxel size in mm (0: keep)"),
    ROW(prep, spacing_z, TYPE_FLOAT, "0", 0, 100, NULL, "resample z to this voxel size in mm (0: keep)"),
    ROW(prep, verify_gzip, TYPE_BOOL, "true", 0, 0, NULL,
        "check the whole gzip stream of .nii.gz files (catches corruption that still decodes)"),
    ROW(prep, normalize, TYPE_CHOICE, "ct", 0, 0, "ct|mri_window|mri_minmax",
        "intensity normalisation: ct (clip HU to the window), mri_window, mri_minmax (per scan)"),
    ROW(prep, window_lo, TYPE_FLOAT, "-1000", -1e9, 1e9, NULL,
        "window start mapped to 0 (ct: HU; with mri_window an unset window means [0, 4000])"),
    ROW(prep, window_hi, TYPE_FLOAT, "1000", -1e9, 1e9, NULL,
        "window end mapped to 1 (ct: HU; with mri_window an unset window means [0, 4000])"),
    ROW(prep, percentile_lo, TYPE_FLOAT, "0", 0, 100, NULL,
        "mri_minmax: the scan's percentile mapped to 0 (0 = minimum)"),
    ROW(prep, percentile_hi, TYPE_FLOAT, "100", 0, 100, NULL,
        "mri_minmax: the scan's percentile mapped to 1 (100 = maximum)"),
    ROW(prep, filter, TYPE_CHOICE, "lung", 0, 0, "lung|foreground|none",
        "which cubes to keep: lung (the paper's chest-CT rule), foreground (MRI), none"),
    ROW(prep, lung_threshold, TYPE_FLOAT, "0.425", 0, 1, NULL,
        "lung filter: normalised density threshold ((-150 + 1000) / 2000 in the paper)"),
    ROW(prep, lung_max, TYPE_FLOAT, "0.15", 0, 1, NULL,
        "lung filter: reject a cube whose score exceeds this fraction of its voxels"),
    ROW(prep, foreground_threshold, TYPE_FLOAT, "0.1", 0, 1, NULL,
        "foreground filter: a voxel is foreground above this normalised value"),
    ROW(prep, foreground_fraction, TYPE_FLOAT, "0.5", 0, 1, NULL,
        "foreground filter: keep a cube when at least this fraction of its voxels is foreground"),
    ROW(prep, cube_rows, TYPE_INT, "64", CONFIG_CUBE_MIN, 1024, NULL,
        "cube size along x (rows); a multiple of 8, >= 16"),
    ROW(prep, cube_cols, TYPE_INT, "64", CONFIG_CUBE_MIN, 1024, NULL,
        "cube size along y (cols); a multiple of 8, >= 16"),
    ROW(prep, cube_deps, TYPE_INT, "32", CONFIG_CUBE_MIN, 1024, NULL,
        "cube size along z (deps); a multiple of 8, >= 16"),
    ROW(prep, crop_sizes, TYPE_STRING, "64", 0, 0, NULL,
        "in-plane crop sizes, comma-separated (e.g. 64,96,128): crops other than the cube size "
        "are resized to it (multi-scale cubes); cubes_per_scan cubes per size"),
    ROW(prep, border_xy, TYPE_INT, "100", 0, 100000, NULL,
        "voxels kept free at both ends of x and y (the paper: 100, for 512x512 chest CT)"),
    ROW(prep, border_z, TYPE_INT, "30", 0, 100000, NULL, "voxels kept free at both ends of z (the paper: 30)"),
    ROW(prep, cubes_per_scan, TYPE_INT, "32", 1, 100000, NULL,
        "cubes wanted per scan and crop size (the paper's scale)"),
    ROW(prep, attempts_per_cube, TYPE_INT, "50", 1, 100000, NULL,
        "give up on a scan after attempts_per_cube x cubes_per_scan draws"),
    ROW(prep, validation_fraction, TYPE_FLOAT, "0.2", 0, 1, NULL,
        "fraction of the scans (not cubes) kept for validation"),
    ROW(prep, test_fraction, TYPE_FLOAT, "0.3", 0, 1, NULL,
        "fraction of the scans (not cubes) kept for testing"),
    ROW(prep, validation_scans, TYPE_STRING, "", 0, 0, NULL,
        "explicit validation scans: comma-separated glob patterns matched against scan paths "
        "(replaces validation_fraction when set)"),
    ROW(prep, test_scans, TYPE_STRING, "", 0, 0, NULL,
        "explicit test scans: comma-separated glob patterns (replaces test_fraction when set)"),

    ROW(train, data, TYPE_STRING, "cubes.h5", 0, 0, NULL, "the cubes file written by genesis prep"),
    ROW(train, output, TYPE_STRING, "run", 0, 0, NULL,
        "run folder: resolved config, metrics.csv, log, checkpoints, previews"),
    ROW(train, batch, TYPE_INT, "6", 1, 65536, NULL,
        "global batch size (cubes per step, split across the ranks)"),
    ROW(train, max_steps, TYPE_INT, "0", 0, 1e15, NULL, "stop after this many steps (0 = no limit)"),
    ROW(train, max_epochs, TYPE_INT, "10000", 1, 1e9, NULL, "stop after this many epochs"),
    ROW(train, optimizer, TYPE_CHOICE, "sgd", 0, 0, "sgd|adam|lars",
        "optimizer (the paper: sgd); lars: SGD momentum with layer-wise trust ratios (You et al. 2017), "
        "batch-norm and bias parameters plain SGD"),
    ROW(train, learning_rate, TYPE_FLOAT, "1.0", 0, 1e6, NULL, "initial learning rate"),
    ROW(train, momentum, TYPE_FLOAT, "0.9", 0, 0.999999, NULL,
        "SGD momentum (no dampening, no Nesterov)"),
    ROW(train, weight_decay, TYPE_FLOAT, "0", 0, 1, NULL, "L2 weight decay"),
    ROW(train, lr_step_epochs, TYPE_INT, "40", 1, 1e9, NULL,
        "StepLR: multiply the learning rate by lr_gamma every this many epochs"),
    ROW(train, lr_gamma, TYPE_FLOAT, "0.5", 0, 1, NULL, "StepLR factor"),
    ROW(train, lr_scaling, TYPE_CHOICE, "none", 0, 0, "none|linear|sqrt",
        "learning rate used = learning_rate x f(batch / reference_batch): none f = 1, linear f(r) = r "
        "(Goyal et al. 2017), sqrt f(r) = sqrt(r)"),
    ROW(train, reference_batch, TYPE_INT, "6", 1, 65536, NULL,
        "the global batch learning_rate is meant for (6: the paper's); unused with lr_scaling = none"),
    ROW(train, warmup_steps, TYPE_INT, "0", 0, 1e12, NULL,
        "linear warm-up: step s <= warmup_steps takes lr x s / warmup_steps (0: none; Goyal et al.: "
        "5 epochs' steps)"),
    ROW(train, trust_coefficient, TYPE_FLOAT, "0.001", 0, 1e3, NULL,
        "lars: eta of the trust ratio eta ||w|| / (||g|| + weight_decay ||w||), > 0 (You et al.: 0.001)"),
    ROW(train, patience, TYPE_INT, "50", 1, 1e9, NULL,
        "stop after this many epochs without a better validation loss"),
    ROW(train, seed, TYPE_INT, "1", 0, 2147483647, NULL,
        "seed of initial weights, epoch permutations and corruptions"),
    ROW(train, resume, TYPE_CHOICE, "auto", 0, 0, "auto|never",
        "auto: continue from the run folder's latest checkpoint when there is one"),
    ROW(train, batchnorm, TYPE_CHOICE, "sync", 0, 0, "sync|per_rank",
        "batch-norm statistics of the global batch (sync, as the paper) or of each rank's part"),
    ROW(train, threads, TYPE_INT, "1", 1, 1024, NULL, "threads per rank (OpenMP in the layers; any count gives the same run)"),
    ROW(train, tile_kib, TYPE_INT, "4096", 64, 1048576, NULL,
        "budget of the im2col column tile, KiB (sized for cache)"),
    ROW(train, window_steps, TYPE_INT, "16", 1, 100000, NULL,
        "steps of cubes each rank reads per collective read (bounds the memory of the loader)"),
    ROW(train, cache_shard, TYPE_BOOL, "false", 0, 0, NULL,
        "keep every cube this rank has read in memory (when the shard fits)"),
    ROW(train, bucket_kib, TYPE_INT, "8192", 64, 4194304, NULL,
        "size of one gradient all-reduce bucket, KiB"),
    ROW(train, overlap, TYPE_BOOL, "true", 0, 0, NULL,
        "start each bucket's all-reduce during backward as soon as its gradients are final"),
    ROW(train, log_every, TYPE_INT, "10", 1, 1000000, NULL, "a progress line every this many steps"),
    ROW(train, checkpoint_steps, TYPE_INT, "0", 0, 1e12, NULL,
        "write a checkpoint every this many steps (0: not by steps)"),
    ROW(train, checkpoint_minutes, TYPE_FLOAT, "30", 0, 1e6, NULL,
        "write a checkpoint every this many minutes (0: not by time); always at the end"),
    ROW(train, keep_checkpoints, TYPE_INT, "3", 1, 1000, NULL, "keep the newest this many step checkpoints"),
    ROW(train, preview_epochs, TYPE_INT, "1", 0, 1000000, NULL,
        "write preview.png (input | target | output) every this many epochs (0: never)"),
    ROW(train, check_replicas, TYPE_INT, "0", 0, 1000000, NULL,
        "debug: every this many steps check that all ranks hold bitwise identical parameters (0: off)"),
    ROW(train, deadline_minutes, TYPE_FLOAT, "0", 0, 1e9, NULL,
        "checkpoint and exit with status 75 (continue me) after this many minutes (0: no limit); "
        "under Slurm, SLURM_JOB_END_TIME is a deadline too"),
    ROW(train, init_from, TYPE_STRING, "", 0, 0, NULL,
        "start from this weights file (genesis export, scripts/torch_to_genesis.py) instead of random "
        "weights, when not resuming; names and shapes must match the model exactly"),
    ROW(train, deadline_margin_minutes, TYPE_FLOAT, "5", 0, 1e6, NULL,
        "stop this many minutes before a deadline, to leave time for the checkpoint"),
    ROW(train, nonfinite, TYPE_CHOICE, "stop", 0, 0, "stop|skip",
        "a step whose loss, gradients or input are not finite (NaN/Inf): stop (exit status 65, the last "
        "good checkpoint stays latest) or skip its update on every rank (counted; 10 in a row stop)"),

    ROW(corrupt, flip_rate, TYPE_FLOAT, "0.4", 0, 1, NULL,
        "probability of each further flip (input and target together), up to flip_max"),
    ROW(corrupt, flip_max, TYPE_INT32, "3", 0, 1000, NULL, "at most this many flips"),
    ROW(corrupt, local_rate, TYPE_FLOAT, "0.5", 0, 1, NULL, "probability of local pixel shuffling"),
    ROW(corrupt, local_blocks, TYPE_INT32, "10000", 0, 10000000, NULL,
        "blocks shuffled by local pixel shuffling"),
    ROW(corrupt, nonlinear_rate, TYPE_FLOAT, "0.9", 0, 1, NULL,
        "probability of the Bezier non-linear intensity map"),
    ROW(corrupt, bezier_samples, TYPE_INT32, "100000", 2, 100000000, NULL,
        "samples of the Bezier curve (values of t)"),
    ROW(corrupt, invert_rate, TYPE_FLOAT, "0.5", 0, 1, NULL,
        "probability that the intensity map inverts (sort only x) rather than increases"),
    ROW(corrupt, paint_rate, TYPE_FLOAT, "0.9", 0, 1, NULL, "probability of in- or out-painting"),
    ROW(corrupt, inpaint_rate, TYPE_FLOAT, "0.2", 0, 1, NULL,
        "share of in-painting among paintings (the rest is out-painting)"),
    ROW(corrupt, inpaint_max_blocks, TYPE_INT32, "5", 0, CONFIG_CORRUPT_MAX_INPAINT_BLOCKS, NULL,
        "in-painting: at most this many blocks"),
    ROW(corrupt, inpaint_continue, TYPE_FLOAT, "0.95", 0, 1, NULL,
        "in-painting: probability of another block"),
    ROW(corrupt, outpaint_extra_blocks, TYPE_INT32, "4", 0, CONFIG_CORRUPT_MAX_OUTPAINT_EXTRA, NULL,
        "out-painting: at most this many blocks kept after the first"),
    ROW(corrupt, outpaint_continue, TYPE_FLOAT, "0.95", 0, 1, NULL,
        "out-painting: probability of another kept block"),

    ROW(io, mpiio_hints, TYPE_STRING, "", 0, 0, NULL,
        "MPI-IO hints of the parallel cubes file (prep writes, train reads), comma-separated key=value, "
        "e.g. romio_cb_read=enable,romio_cb_write=enable,cb_nodes=8,striping_factor=16,"
        "striping_unit=4194304 (striping: Lustre, at creation); the MPI library ignores unknown hints"),
};

enum { SCHEMA_ROWS = sizeof config_schema / sizeof config_schema[0] };
_Static_assert(SCHEMA_ROWS <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX");
const int config_schema_rows = SCHEMA_ROWS;

int config_key_count(void) { return SCHEMA_ROWS; }

int config_corrupt_check(const struct config_corrupt *c)
{
    CHECK(c != NULL, GEN_ERR_USAGE, "corrupt: no config");
    for (int i = 0; i < SCHEMA_ROWS; i++) {
        const struct config_key *k = &config_schema[i];
        if (strcmp(k->section, "corrupt")) continue;
        const char *field = (const char *)c + (k->offset - offsetof(genesis_config, corrupt));
        double v = k->type == TYPE_FLOAT ? *(const double *)(const void *)field
                                         : (double)*(const int *)(const void *)field; /* TYPE_INT32 */
        CHECK(v >= k->min && v <= k->max, GEN_ERR_USAGE, "corrupt.%s = %g is out of range [%g, %g] (%s)",
              k->key, v, k->min, k->max, k->help);
    }
    return GEN_OK;
}

void config_field_origin(const genesis_config *cfg, size_t offset, char *out, size_t size)
{
    int row = 0;
    while (row < SCHEMA_ROWS - 1 && config_schema[row].offset != offset) row++;
    int origin = config_schema[row].offset == offset ? cfg->origin[row] : 0;
    if (origin > 0) snprintf(out, size, "%s:%d", cfg->path, origin);
    else if (origin < 0) snprintf(out, size, "--set %s.%s", config_schema[row].section, config_schema[row].key);
    else snprintf(out, size, "default");
}

int config_train_check(const genesis_config *cfg)
{
    CHECK(cfg != NULL, GEN_ERR_USAGE, "train: no config");
    const struct config_train *c = &cfg->train;
    char where[CONFIG_PATH_MAX + 32], optimizer_where[CONFIG_PATH_MAX + 32];
    CONFIG_ORIGIN(cfg, train.trust_coefficient, where, sizeof where);
    CHECK(c->trust_coefficient > 0, GEN_ERR_USAGE,
          "%s: [train] trust_coefficient: %g must be > 0 (LARS's eta; You et al. use 0.001)", where,
          c->trust_coefficient);
    if (c->optimizer == OPTIMIZER_ADAM && strcmp(where, "default")) {
        CONFIG_ORIGIN(cfg, train.optimizer, optimizer_where, sizeof optimizer_where);
        FAIL(GEN_ERR_USAGE,
             "%s: [train] trust_coefficient is LARS's and optimizer = adam (%s): LARS's trust ratio does not "
             "apply to Adam; use optimizer = lars (SGD momentum) or remove trust_coefficient",
             where, optimizer_where);
    }
    return GEN_OK;
}
