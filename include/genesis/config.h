/* Configuration: INI files (inih, src/util/config.c) read through one schema table
 * (src/util/config_schema.c), one row per key: section, key, type, default, range, help. Every
 * setting of every subcommand lives there.
 *
 * The schema is the only table of defaults and ranges: the modules receive the plain structs
 * below (e.g. data/corrupt.c a struct config_corrupt), already checked against it.
 *
 * struct genesis_config is plain data (no pointers), so one MPI_Bcast of its bytes gives every
 * rank the same configuration (mpi/world.c). Errors name the file, the line and the key, suggest
 * near-miss keys, and return GEN_ERR_USAGE (exit status 2).
 *
 * Axes: the cube keys cube_rows, cube_cols, cube_deps are the paper's names (user-facing);
 * rows, cols, deps = the scan's x, y, z (NIfTI voxel axes, include/genesis/volume.h) = the
 * tensor's D, H, W.
 */
#ifndef GENESIS_CONFIG_H
#define GENESIS_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_PATH_MAX 4096
#define CONFIG_KEYS_MAX 128

/* Choice values are stored as the index of the text in the schema's choice list. */
enum config_normalize { NORMALIZE_CT, NORMALIZE_MRI_WINDOW, NORMALIZE_MRI_MINMAX };
enum config_filter { FILTER_LUNG, FILTER_FOREGROUND, FILTER_NONE };
enum config_optimizer { OPTIMIZER_SGD, OPTIMIZER_ADAM, OPTIMIZER_LARS };
enum config_lr_scaling { LR_SCALE_NONE, LR_SCALE_LINEAR, LR_SCALE_SQRT }; /* = model.h's enum lr_scaling */
enum config_batchnorm { BATCHNORM_SYNC, BATCHNORM_PER_RANK };
enum config_resume { RESUME_AUTO, RESUME_NEVER };
enum config_nonfinite { NONFINITE_STOP, NONFINITE_SKIP };
/* [train] nonfinite = skip: this many skipped steps in a row stop the run anyway. */
enum { CONFIG_NONFINITE_SKIP_LIMIT = 10 };
/* The cube sizes every command accepts (prep writes them, train and preview read them): every axis
 * a multiple of 8 (the U-Net pools 3 times) and at least CONFIG_CUBE_MIN (local pixel shuffling
 * needs 10 voxels). */
enum { CONFIG_CUBE_MIN = 16 };
static inline int config_cube_size_ok(long rows, long cols, long deps)
{
    return rows >= CONFIG_CUBE_MIN && cols >= CONFIG_CUBE_MIN && deps >= CONFIG_CUBE_MIN && rows % 8 == 0 &&
           cols % 8 == 0 && deps % 8 == 0;
}
/* The widest [model] width any command accepts (config, bench, the model): channels of the
 * deepest level are width x 8. */
enum { CONFIG_WIDTH_MAX = 512 };

struct config_model {
    long width; /* base channel count; 32 in the paper */
};

struct config_prep {
    char inputs[CONFIG_PATH_MAX]; /* comma-separated files, globs, folders, @LIST (src/prep/inputs.h) */
    char output[CONFIG_PATH_MAX]; /* the cubes file to write */
    int overwrite;
    int strict;                   /* a bad scan is an error instead of a skip */
    long seed;
    int reorient_ras;
    double spacing_x, spacing_y, spacing_z; /* resample to this voxel size, mm; 0 = keep */
    int verify_gzip;
    int normalize;                /* enum config_normalize */
    double window_lo, window_hi;  /* intensity window (HU for ct) mapped to [0, 1] */
    double percentile_lo, percentile_hi; /* mri_minmax */
    int filter;                   /* enum config_filter */
    double lung_threshold, lung_max, foreground_threshold, foreground_fraction;
    long cube_rows, cube_cols, cube_deps; /* cube size along x, y, z (= D, H, W), voxels */
    char crop_sizes[256];         /* comma-separated in-plane crop sizes, resized to the cube */
    long border_xy, border_z;
    long cubes_per_scan;          /* SPEC.md "scale" */
    long attempts_per_cube;
    double validation_fraction, test_fraction; /* split by scan */
    char validation_scans[CONFIG_PATH_MAX], test_scans[CONFIG_PATH_MAX]; /* explicit lists */
};

/* The four corruptions of SPEC.md section 3 (src/data/corrupt.c); defaults (the paper's) and ranges
 * are the schema's [corrupt] rows. Field types follow the schema:
 * int for its TYPE_INT32 rows, double for TYPE_FLOAT. */
enum { CONFIG_CORRUPT_MAX_INPAINT_BLOCKS = 16, CONFIG_CORRUPT_MAX_OUTPAINT_EXTRA = 15 };
struct config_corrupt {
    double flip_rate;          /* P(flip again), up to flip_max times */
    int flip_max;              /* at most this many flips */
    double local_rate;         /* P(local pixel shuffling) */
    int local_blocks;          /* shuffled blocks per shuffling */
    double nonlinear_rate;     /* P(Bezier intensity map) */
    int bezier_samples;        /* curve samples (values of t), >= 2 */
    double invert_rate;        /* P(inverting map | non-linear): sort only x */
    double paint_rate;         /* P(in- or out-painting) */
    double inpaint_rate;       /* P(in-painting | painting); else out-painting */
    int inpaint_max_blocks;    /* in-painting: at most this many blocks (<= ..._MAX_INPAINT_BLOCKS) */
    double inpaint_continue;   /* in-painting: P(another block) */
    int outpaint_extra_blocks; /* out-painting: at most this many more after the first (<= ..._EXTRA) */
    double outpaint_continue;  /* out-painting: P(another block) */
};

struct config_train {
    char data[CONFIG_PATH_MAX];   /* cubes file from genesis prep */
    char output[CONFIG_PATH_MAX]; /* run folder: checkpoints, metrics, previews */
    long batch;                   /* global batch, split across ranks */
    long max_steps;               /* 0 = no limit */
    long max_epochs;
    int optimizer;                /* enum config_optimizer */
    double learning_rate, momentum, weight_decay;
    long lr_step_epochs;          /* StepLR step size, epochs */
    double lr_gamma;
    int lr_scaling;               /* enum config_lr_scaling: learning_rate * f(batch / reference_batch) */
    long reference_batch;         /* the batch learning_rate is meant for (the paper's: 6) */
    long warmup_steps;            /* linear warm-up over this many optimizer steps; 0 = none */
    double trust_coefficient;     /* LARS's eta */
    long patience;                /* epochs without validation improvement before stopping */
    long seed;
    int resume;                   /* enum config_resume */
    int batchnorm;                /* enum config_batchnorm */
    long threads;                 /* threads per rank (OpenMP in the layers), any count: same run */
    long tile_kib;                /* im2col column-tile budget, KiB */
    long window_steps;            /* steps of cubes read per collective read */
    int cache_shard;              /* keep every cube this rank reads in memory */
    long bucket_kib;              /* gradient all-reduce bucket, KiB */
    int overlap;                  /* start bucket all-reduces during backward */
    long log_every;               /* progress line every this many steps */
    long checkpoint_steps;        /* 0 = not by steps */
    double checkpoint_minutes;    /* 0 = not by time */
    long keep_checkpoints;
    long preview_epochs;          /* 0 = no previews */
    long check_replicas;          /* debug: compare parameter checksums across ranks every N steps */
    double deadline_minutes;      /* wall-time budget of this run from its start; 0 = none */
    double deadline_margin_minutes; /* stop this long before a deadline (or SLURM_JOB_END_TIME) */
    char init_from[CONFIG_PATH_MAX]; /* weights file to start from when not resuming; "" = none */
    int nonfinite;                /* enum config_nonfinite: a step with a non-finite loss or gradient */
};

/* [io]: how genesis's parallel files are accessed (prep's output, train's cubes). */
struct config_io {
    char mpiio_hints[CONFIG_PATH_MAX]; /* "key=value,..." MPI_Info hints of the MPI-IO driver; "" = none */
};

typedef struct genesis_config {
    struct config_model model;
    struct config_prep prep;
    struct config_train train;
    struct config_corrupt corrupt;
    struct config_io io;
    /* Where each value came from, by schema row: 0 = default, > 0 = line of `path`, -1 = --set. */
    char path[CONFIG_PATH_MAX];
    int origin[CONFIG_KEYS_MAX];
} genesis_config;

/* Sets every key to its default. */
int config_defaults(genesis_config *cfg);
/* Reads an INI file over the current values. */
int config_load_file(genesis_config *cfg, const char *path);
/* Reads INI text (e.g. a checkpoint's resolved configuration) over the current values; `name`
 * stands for the file in messages. */
int config_load_text(genesis_config *cfg, const char *text, const char *name);
/* Applies one "section.key=value" override. */
int config_set(genesis_config *cfg, const char *assignment);
/* Prints the resolved configuration as an INI file (with each value's origin as a comment). */
void config_print(const genesis_config *cfg, FILE *out);
/* Prints every key: section, key, type, default, range, meaning. */
void config_print_defaults(FILE *out);
/* GEN_ERR_USAGE naming the key if a [corrupt] value is outside the schema's range (for a struct
 * built or changed in code; values read through the schema are checked as they are read). */
int config_corrupt_check(const struct config_corrupt *c);
/* GEN_ERR_USAGE naming the key and where it was set (FILE:LINE, --set or the default) when the
 * [train] keys do not go together: a trust_coefficient of 0, or one set with optimizer = adam
 * (LARS's trust ratio is not applied to Adam). reference_batch with lr_scaling = none is harmless:
 * it is not used. */
int config_train_check(const genesis_config *cfg);
/* Where the key of a field was set: "FILE:LINE", "--set SECTION.KEY" or "default" (into out
 * [size]); offset is offsetof(genesis_config, section.key), e.g.
 * CONFIG_ORIGIN(cfg, train.batch, out, size). */
void config_field_origin(const genesis_config *cfg, size_t offset, char *out, size_t size);
#define CONFIG_ORIGIN(cfg, field, out, size)                                                       \
    config_field_origin(cfg, offsetof(genesis_config, field), out, size)
/* Number of rows in the schema, and a 64-bit FNV-1a hash of the resolved values' text (for
 * checkpoints: "is this the same run?"). */
int config_key_count(void);
unsigned long config_hash(const genesis_config *cfg);

#endif
