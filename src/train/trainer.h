/* The trainer's shared state, private to src/train/: the loop (train.c), the run folder
 * (run_folder.c), checkpoints (checkpoints.c) and the stop policy (stop_policy.c). */
#ifndef GENESIS_TRAINER_H
#define GENESIS_TRAINER_H

#include "genesis/checkpoint.h"
#include "genesis/cubes.h"
#include "genesis/gradsync.h"
#include "genesis/loader.h"
#include "genesis/model.h"
#include "genesis/profile.h"
#include "genesis/train.h"

#include <stdio.h>

/* The phases of --profile's table, in its order; each is one profile event. */
enum phase { PHASE_DATA, PHASE_FORWARD, PHASE_BACKWARD, PHASE_COMM, PHASE_OPTIM, PHASE_VALIDATION,
             PHASE_CHECKPOINT, PHASE_COUNT };

struct trainer {
    const genesis_config *cfg;
    const struct train_options *opt;
    int rank, ranks;
    cubes_file data;
    loader *loader;
    model *model;
    optimizer optim;
    lr_schedule schedule;         /* [train] learning_rate, lr_scaling, warmup_steps, StepLR */
    gradsync sync;
    train_state st;
    char dir[CONFIG_PATH_MAX], ckpt_dir[CONFIG_PATH_MAX + 8];
    char *config_text;
    FILE *metrics, *validation, *logfile; /* rank 0: metrics.csv, validation.csv, train.log */
    char early_warnings[2048];    /* rank 0: warn_run lines from before train.log was open (cut at the end) */
    profile prof;
    int phase_event[PHASE_COUNT]; /* profile event id of each phase */
    double last_checkpoint;       /* profile_now() */
    double deadline;              /* profile_now() by which to have stopped (margin included); 0 = none */
    /* The stop rule: a stop request is acted on within one step or one validation batch, then a
     * checkpoint is written; the longest of those stretches and of the checkpoint writes so far (s). */
    double longest_stretch, longest_checkpoint;
    int margin_warned;            /* the margin warning was given */
    /* Non-finite numbers (nonfinite.c): steps of this invocation, steps skipped (nonfinite = skip) in
     * all, in a row, in the epoch in progress; the batch-norm running statistics before the step. */
    int64_t steps_this_run, skipped_steps, skipped_in_a_row, skipped_in_epoch;
    float *buffers_saved;
    size_t buffers_saved_floats;
    int created_dir, created_ckpt; /* rank 0: this run created the run folder, ckpt/ (removed when
                                      a failed start leaves them empty) */
};

/* Adds the time since `start` (profile_now()) to phase p. */
void trainer_phase_stop(struct trainer *t, enum phase p, double start);

/* ---- validation.c: the validation loss, its baselines and the split by corruption ---- */

/* The corruptions of the per-corruption breakdown, in validation.csv's column order. */
enum breakdown { BREAKDOWN_INPAINT, BREAKDOWN_OUTPAINT, BREAKDOWN_NONLINEAR, BREAKDOWN_LOCAL, BREAKDOWN_COUNT };
extern const char *const breakdown_names[BREAKDOWN_COUNT]; /* "in-painting", ... (train.log) */
extern const char *const breakdown_keys[BREAKDOWN_COUNT];  /* "inpaint", ... (validation.csv) */

/* One validation over every rank's fixed validation batches (MSEs, normalised units). */
struct validation_result {
    double loss;     /* the model: mean over the batches of the batch MSE, mean over the ranks */
    double identity; /* the corrupted input as the output: mean over the cubes of MSE(x, y) */
    double mean;     /* the best constant (the mean of every validation target voxel) as the output:
                        the variance of the target voxels */
    double gain;     /* 1 - loss / identity */
    int64_t count[BREAKDOWN_COUNT]; /* cubes whose corruption drew it */
    double model[BREAKDOWN_COUNT];  /* their mean model MSE (NaN when count is 0) */
    double identity_of[BREAKDOWN_COUNT]; /* their mean identity MSE */
    int stop_request;   /* STOP_NONE, or a stop request that ended the pass early (nothing else set) */
    int64_t batches_done; /* validation batches run */
    double seconds;     /* the pass's wall time */
};

/* Collective: the validation pass (forward only), and preview.png when `preview` (rank 0). Stop
 * requests (signals, the deadline) are agreed on after every batch: one ends the pass early with
 * r->stop_request set and the figures unset (the epoch's validation is then run again on resume). */
int trainer_validate(struct trainer *t, int preview, struct validation_result *r);

/* ---- run_folder.c: [train] output, config.ini, metrics.csv, validation.csv, train.log ---- */

/* Collective: creates the run folder and its ckpt/ (rank 0). */
int run_folder_prepare(struct trainer *t);
/* Collective (--fresh): rank 0 moves the run files the folder holds (ckpt/, config.ini, metrics.csv,
 * validation.csv, train.log, heartbeat, preview.png, curves.png) to RUN_DIR/previous-YYYYmmdd-HHMMSS/
 * and makes a new ckpt/. */
int run_folder_move_aside(struct trainer *t);
/* Rank 0, after a failed run: removes the run folder and ckpt/ if this run created them and they
 * are empty. */
void run_folder_remove_if_empty(struct trainer *t);
/* Collective: rank 0 writes config.ini and opens metrics.csv (appending when resumed) and train.log. */
int run_folder_open_files(struct trainer *t, int resumed);
void run_folder_close_files(struct trainer *t);
/* Progress and information: printed on rank 0 (log_info) and appended to the run's train.log. */
void log_run(struct trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning: log_warn on this rank, and on rank 0 "train: warning: ..." in train.log (kept until it is
 * open when it comes earlier), where genesis status finds it. */
void warn_run(struct trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Rank 0: one metrics.csv row of a training step, of a validation. */
void metrics_step_row(struct trainer *t, double loss, double step_seconds, double data_seconds,
                      double comm_seconds);
void metrics_validation_row(struct trainer *t, const struct validation_result *r);
void metrics_flush(struct trainer *t);
/* Rank 0: RUN_DIR/heartbeat replaced (time, step, epoch, pid, host) for genesis status. */
void run_folder_heartbeat(struct trainer *t);
/* Rank 0: "train: error: MESSAGE" appended to train.log (a run that failed says so there). */
void run_folder_log_error(struct trainer *t, const char *message);

/* ---- checkpoints.c: ckpt/step-N.h5, best.h5, `latest`, resume ---- */

/* Collective: rank 0 writes ckpt/step-N.h5 (or best.h5 when best_only), points `latest` at it,
 * keeps the newest K; every rank learns the outcome. */
int trainer_save_checkpoint(struct trainer *t, int best_only);
/* Collective. resume = auto: continue from ckpt/latest, or from an older checkpoint when the newest
 * cannot be read, with a warning. *resumed: whether a checkpoint was used. */
int trainer_resume(struct trainer *t, int *resumed);

/* ---- memory.c: the memory estimate, checked before allocating ---- */

/* Collective, once the cubes file is open: logs the estimated peak per rank (struct train_memory),
 * or stops every rank (GEN_ERR_USAGE, saying what to change) when it exceeds the node's memory
 * (node_memory_limit) divided among the node's ranks, on any node. */
int trainer_check_memory(struct trainer *t);

/* ---- nonfinite.c: NaN/Inf in weights, inputs, loss, gradients (exit status 65) ---- */

/* Collective: GEN_ERR_NONFINITE when the model's weights or running statistics (loaded from
 * `source`) are not all finite. */
int nonfinite_check_weights(struct trainer *t, const char *source);
/* Before a step's forward: with nonfinite = skip, saves the batch-norm running statistics. */
int nonfinite_begin_step(struct trainer *t);
/* Collective, after the gradient all-reduce and before the optimizer step: *loss (this rank's) :=
 * its mean over the ranks, and the ranks' verdict on the step's input x, y [batch cubes], loss and
 * gradients, from one all-reduce. A bad step: GEN_ERR_NONFINITE naming the step and the likely
 * cause (nonfinite = stop, or a skip limit reached), else *skip = 1 with the statistics restored. */
int nonfinite_end_step(struct trainer *t, const float *x, const float *y, int batch, double *loss, int *skip);
/* Collective (the loss is the same on every rank): GEN_ERR_NONFINITE when a validation loss is not
 * finite. */
int nonfinite_check_validation(struct trainer *t, double loss);

/* ---- stop_policy.c: deadlines, signals, checkpoint timing at step boundaries ---- */

/* Sets t->deadline from [train] deadline_minutes and SLURM_JOB_END_TIME, and installs the
 * signal handlers. */
void stop_policy_start(struct trainer *t);
/* Collective, at a step boundary: the ranks agree whether to checkpoint now (*checkpoint, by steps
 * or minutes on rank 0's clock) and on a stop request (*stop, enum stop_request: signals on any
 * rank, the deadline on rank 0's clock). */
int stop_policy_agree(struct trainer *t, int *checkpoint, int *stop);
/* An agreed stop request: checkpoint, then GEN_OK (stop) or GEN_CONTINUE (exit 75, continue me). */
int stop_now(struct trainer *t, int request);

#endif
