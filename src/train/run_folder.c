/* The run folder ([train] output): the folder and ckpt/, config.ini (the resolved configuration),
 * metrics.csv (one row per step and per validation), validation.csv (one row per validation: the
 * split by corruption), train.log (the progress lines), heartbeat (for genesis status). Rank 0 owns
 * the files; the other ranks learn the outcome (src/train/trainer.h). */
#include "trainer.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/world.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

void log_run(struct trainer *t, const char *fmt, ...)
{
    if (t->rank != 0) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_info("%s", line);
    if (t->logfile) {
        fprintf(t->logfile, "%s\n", line);
        fflush(t->logfile);
    }
}

void warn_run(struct trainer *t, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_warn("%s", line);
    if (t->rank != 0) return;
    if (t->logfile) {
        fprintf(t->logfile, "train: warning: %s\n", line);
        fflush(t->logfile);
        return;
    }
    size_t used = strlen(t->early_warnings);
    snprintf(t->early_warnings + used, sizeof t->early_warnings - used, "train: warning: %s\n", line);
}

/* mkdir, an existing folder accepted; *created: whether this call made it. */
static int make_dir(const char *path, int *created)
{
    *created = mkdir(path, 0777) == 0;
    if (!*created && errno != EEXIST)
        FAIL(GEN_ERR_IO, "cannot create folder %s: %s", path, strerror(errno));
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode), GEN_ERR_IO, "%s is not a folder", path);
    CHECK(access(path, W_OK) == 0, GEN_ERR_IO, "folder %s is not writable", path);
    return GEN_OK;
}

/* The files of a run in its folder (moved aside together by --fresh); anything else stays. */
static const char *const run_files[] = {"ckpt", "config.ini", "metrics.csv", "validation.csv", "train.log",
                                        "heartbeat", "preview.png", "curves.png"};
enum { RUN_FILE_COUNT = sizeof run_files / sizeof run_files[0] };

/* Rank 0: moves the run files present to DIR/previous-YYYYmmdd-HHMMSS[-N]/, then makes a new ckpt/. */
static int move_run_aside(struct trainer *t)
{
    char aside[CONFIG_PATH_MAX + 64], from[CONFIG_PATH_MAX + 32], to[CONFIG_PATH_MAX + 96], stamp[32];
    int present = 0;
    for (int i = 0; i < RUN_FILE_COUNT; i++) {
        snprintf(from, sizeof from, "%s/%s", t->dir, run_files[i]);
        present += access(from, F_OK) == 0;
    }
    if (!present) return GEN_OK;
    int created;
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    snprintf(aside, sizeof aside, "%s/previous-%s", t->dir, stamp);
    for (int n = 2; mkdir(aside, 0777) != 0; n++) {
        CHECK(errno == EEXIST && n < 100, GEN_ERR_IO, "cannot create folder %s: %s", aside, strerror(errno));
        snprintf(aside, sizeof aside, "%s/previous-%s-%d", t->dir, stamp, n);
    }
    for (int i = 0; i < RUN_FILE_COUNT; i++) {
        snprintf(from, sizeof from, "%s/%s", t->dir, run_files[i]);
        snprintf(to, sizeof to, "%s/%s", aside, run_files[i]);
        CHECK(access(from, F_OK) != 0 || rename(from, to) == 0, GEN_ERR_IO, "--fresh: cannot move %s to %s: %s",
              from, to, strerror(errno));
    }
    log_info("train: --fresh: the previous run in %s moved to %s", t->dir, aside);
    return make_dir(t->ckpt_dir, &created);
}

int run_folder_move_aside(struct trainer *t)
{
    return world_agree_shared(t->rank == 0 ? move_run_aside(t) : GEN_OK);
}

static int make_run_dirs(struct trainer *t)
{
    CALL(make_dir(t->dir, &t->created_dir));
    CALL(make_dir(t->ckpt_dir, &t->created_ckpt));
    return GEN_OK;
}

void run_folder_remove_if_empty(struct trainer *t)
{
    if (t->rank != 0) return;
    if (t->created_ckpt) rmdir(t->ckpt_dir); /* fails, harmlessly, when not empty */
    if (t->created_dir) rmdir(t->dir);
}

int run_folder_prepare(struct trainer *t)
{
    snprintf(t->dir, sizeof t->dir, "%s", t->cfg->train.output);
    snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/ckpt", t->dir);
    return world_agree_shared(t->rank == 0 ? make_run_dirs(t) : GEN_OK);
}

static int write_config_ini(const struct trainer *t)
{
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.ini", t->dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, GEN_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fputs(t->config_text, f);
    CHECK(fclose(f) == 0, GEN_ERR_IO, "cannot write %s", path);
    return GEN_OK;
}

/* metrics.csv's columns. The first nine are read by position (scripts, tests): new columns go at
 * the end. A row of a step leaves validation_loss and the last three empty, a row of a validation
 * train_loss and the timings. */
static const char metrics_header[] = "step,epoch,lr,train_loss,validation_loss,samples_per_s,data_s,compute_s,"
                                     "comm_s,identity_loss,mean_loss,gain";
/* The header before identity_loss, mean_loss and gain were added. */
static const char metrics_header_v1[] = "step,epoch,lr,train_loss,validation_loss,samples_per_s,data_s,compute_s,"
                                        "comm_s";

/* Where a resumed run continues: the checkpoint's step, and whether that step's validation is still
 * to run (the checkpoint was written at the end of an epoch's steps, before its validation). */
struct resume_point {
    int64_t step;
    int validation_pending;
};

/* Whether a CSV line of the run folder belongs to the resumed run: a complete line (a last line
 * without its newline was cut by a kill) whose step (first field) is before the resume point's, or
 * at it when it is not a validation row that runs again (validation.csv: every row; metrics.csv:
 * the rows with an empty train_loss, the 4th field). */
static int row_kept(const char *line, ssize_t n, const struct resume_point *at, int validation_file)
{
    if (n <= 0 || line[n - 1] != '\n') return 0;
    char *end;
    long long row_step = strtoll(line, &end, 10);
    if (end == line) return 1; /* a row without a step number is not ours to judge */
    if (row_step != at->step) return row_step < at->step;
    if (!at->validation_pending) return 1;
    const char *field = line;
    for (int i = 0; i < 3 && field; i++) field = strchr(field, ','), field = field ? field + 1 : NULL;
    int validation_row = validation_file || (field && *field == ',');
    return !validation_row;
}

/* A CSV of the run folder when resuming from the checkpoint at `at`: the rows after it (written by
 * a run killed after that checkpoint: the resumed run writes them again; also the validation rows
 * of its step when that validation runs again) and a cut last line are dropped; for metrics.csv
 * (upgrade = 1; validation.csv: 0) an older header (before identity_loss, mean_loss, gain) gets
 * the new columns and every old row three empty fields. Rewritten beside it and renamed over it
 * (atomic_file.h) only when something changes: a crash leaves the old file or the new one.
 * *converted: the header was upgraded; *dropped: rows dropped. */
static int fit_csv_to_checkpoint(const char *path, int upgrade, const struct resume_point *at, int *converted,
                                 long *dropped)
{
    int status = GEN_OK;
    char tmp[CONFIG_PATH_MAX + 64] = "", *line = NULL;
    size_t size = 0;
    FILE *in = fopen(path, "r"), *out = NULL;
    *converted = 0, *dropped = 0;
    CHECK(in != NULL, GEN_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    ssize_t n = getline(&line, &size, in);
    if (n <= 0) goto cleanup; /* empty: open_csv appends to it as it is */
    int old_header = upgrade && !strncmp(line, metrics_header_v1, sizeof metrics_header_v1 - 1) &&
                     (line[sizeof metrics_header_v1 - 1] == '\n' || line[sizeof metrics_header_v1 - 1] == '\0');
    long rows_after = 0;
    for (ssize_t m; (m = getline(&line, &size, in)) > 0;) rows_after += !row_kept(line, m, at, !upgrade);
    CHECK_GOTO(!ferror(in), GEN_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (!old_header && rows_after == 0) goto cleanup;
    rewind(in);
    CALL_GOTO(atomic_file_tmp_name(tmp, sizeof tmp, path));
    out = fopen(tmp, "w");
    CHECK_GOTO(out != NULL, GEN_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    n = getline(&line, &size, in);
    if (old_header) fprintf(out, "%s\n", metrics_header);
    else fputs(line, out);
    while ((n = getline(&line, &size, in)) > 0) {
        if (!row_kept(line, n, at, !upgrade)) continue;
        if (old_header) line[n - 1] = '\0', fprintf(out, "%s,,,\n", line);
        else fputs(line, out);
    }
    int closed = fclose(out);
    out = NULL;
    CHECK_GOTO(closed == 0 && !ferror(in), GEN_ERR_IO, "cannot rewrite %s (disk full?)", tmp);
    CALL_GOTO(atomic_file_commit(tmp, path));
    *converted = old_header, *dropped = rows_after;
cleanup:
    if (out) fclose(out), unlink(tmp);
    free(line);
    fclose(in);
    return status;
}

/* Opens a CSV of the run folder: appended to when resuming onto an existing one, else a fresh one
 * with its header. */
static int open_csv(const struct trainer *t, const char *name, const char *header, int resumed, FILE **f)
{
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    int fresh = !resumed || access(path, F_OK) != 0;
    *f = fopen(path, fresh ? "w" : "a");
    CHECK(*f != NULL, GEN_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    if (fresh) fprintf(*f, "%s\n", header);
    return GEN_OK;
}

/* The header of validation.csv: step, epoch, then count, loss, identity per corruption. */
static void validation_header(char *out, size_t size)
{
    int used = snprintf(out, size, "step,epoch");
    for (int c = 0; c < BREAKDOWN_COUNT && used > 0 && (size_t)used < size; c++)
        used += snprintf(out + used, size - (size_t)used, ",%s_count,%s_loss,%s_identity", breakdown_keys[c],
                         breakdown_keys[c], breakdown_keys[c]);
}

/* Rank 0: config.ini, metrics.csv and validation.csv (fresh ones with their headers unless resuming
 * onto existing ones), train.log (appended to when resuming; a run without it still runs). */
static int open_files(struct trainer *t, int resumed)
{
    CALL(write_config_ini(t));
    char path[CONFIG_PATH_MAX + 32], header[512];
    snprintf(path, sizeof path, "%s/metrics.csv", t->dir);
    int converted = 0, unused;
    long dropped = 0, dropped_validation = 0;
    struct resume_point at = {t->st.global_step, t->st.step_in_epoch >= loader_steps_per_epoch(t->loader)};
    if (resumed && access(path, F_OK) == 0) CALL(fit_csv_to_checkpoint(path, 1, &at, &converted, &dropped));
    CALL(open_csv(t, "metrics.csv", metrics_header, resumed, &t->metrics));
    snprintf(path, sizeof path, "%s/validation.csv", t->dir);
    if (resumed && access(path, F_OK) == 0)
        CALL(fit_csv_to_checkpoint(path, 0, &at, &unused, &dropped_validation));
    validation_header(header, sizeof header);
    CALL(open_csv(t, "validation.csv", header, resumed, &t->validation));
    snprintf(path, sizeof path, "%s/train.log", t->dir);
    t->logfile = fopen(path, resumed ? "a" : "w");
    if (t->logfile) fputs(t->early_warnings, t->logfile);
    if (dropped || dropped_validation)
        log_run(t, "train: note: %ld row(s) of metrics.csv and %ld of validation.csv were written after the "
                   "checkpoint's step %lld (a run stopped without a checkpoint): dropped, the resumed run writes "
                   "them again", dropped, dropped_validation, (long long)t->st.global_step);
    if (converted)
        log_run(t, "train: note: %s/metrics.csv had the older header: rewritten with the columns identity_loss, "
                   "mean_loss, gain added (empty in the rows before)", t->dir);
    return GEN_OK;
}

int run_folder_open_files(struct trainer *t, int resumed)
{
    return world_agree_shared(t->rank == 0 ? open_files(t, resumed) : GEN_OK);
}

void run_folder_close_files(struct trainer *t)
{
    if (t->metrics) fclose(t->metrics);
    if (t->validation) fclose(t->validation);
    if (t->logfile) fclose(t->logfile);
    t->metrics = t->validation = t->logfile = NULL;
}

void metrics_step_row(struct trainer *t, double loss, double step_seconds, double data_seconds,
                      double comm_seconds)
{
    if (t->rank != 0) return;
    fprintf(t->metrics, "%lld,%lld,%.9g,", (long long)t->st.global_step, (long long)t->st.epoch, t->st.lr);
    if (isfinite(loss)) fprintf(t->metrics, "%.9g", loss); /* empty: a skipped step (nonfinite = skip) */
    fprintf(t->metrics, ",,%.4f,%.4f,%.4f,%.4f,,,\n", (double)t->cfg->train.batch / step_seconds, data_seconds,
            step_seconds - data_seconds - comm_seconds, comm_seconds);
}

/* A value of a CSV row, or nothing when it is not a number (no cubes drew that corruption). */
static void csv_value(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.9g", v);
}

void metrics_validation_row(struct trainer *t, const struct validation_result *r)
{
    if (t->rank != 0) return;
    fprintf(t->metrics, "%lld,%lld,%.9g,,%.9g,,,,,%.9g,%.9g,%.9g\n", (long long)t->st.global_step,
            (long long)t->st.epoch, t->st.lr, r->loss, r->identity, r->mean, r->gain);
    fflush(t->metrics);
    fprintf(t->validation, "%lld,%lld", (long long)t->st.global_step, (long long)t->st.epoch);
    for (int c = 0; c < BREAKDOWN_COUNT; c++) {
        fprintf(t->validation, ",%lld,", (long long)r->count[c]);
        csv_value(t->validation, r->model[c]);
        fputc(',', t->validation);
        csv_value(t->validation, r->identity_of[c]);
    }
    fputc('\n', t->validation);
    fflush(t->validation);
}

void metrics_flush(struct trainer *t)
{
    if (t->metrics) fflush(t->metrics);
}

/* Written under a temporary name and renamed (a reader never sees half of it), but not synced: it is
 * a liveness hint rewritten every step, and a lost one after a crash says the truth (not running). */
void run_folder_heartbeat(struct trainer *t)
{
    if (t->rank != 0) return;
    char path[CONFIG_PATH_MAX + 32], tmp[CONFIG_PATH_MAX + 64], host[256] = "";
    snprintf(path, sizeof path, "%s/heartbeat", t->dir);
    if (atomic_file_tmp_name(tmp, sizeof tmp, path) != GEN_OK) {
        gen_error_clear();
        return;
    }
    gethostname(host, sizeof host - 1);
    FILE *f = fopen(tmp, "w");
    if (!f) return; /* the run goes on without it; genesis status will call it stale */
    fprintf(f, "time %lld\nstep %lld\nepoch %lld\npid %ld\nhost %s\n", (long long)time(NULL),
            (long long)t->st.global_step, (long long)t->st.epoch, (long)getpid(), host);
    if (fclose(f) != 0 || rename(tmp, path) != 0) unlink(tmp);
}

void run_folder_log_error(struct trainer *t, const char *message)
{
    if (t->rank == 0 && t->logfile) fprintf(t->logfile, "train: error: %s\n", message), fflush(t->logfile);
}
