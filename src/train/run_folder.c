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

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        FAIL(GEN_ERR_IO, "cannot create folder %s: %s", path, strerror(errno));
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode), GEN_ERR_IO, "%s is not a folder", path);
    CHECK(access(path, W_OK) == 0, GEN_ERR_IO, "folder %s is not writable", path);
    return GEN_OK;
}

static int make_run_dirs(const struct trainer *t)
{
    CALL(make_dir(t->dir));
    CALL(make_dir(t->ckpt_dir));
    return GEN_OK;
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

/* A metrics.csv with the older header (a run resumed by a newer genesis) is rewritten, every row kept:
 * the header gets the new columns and every old row three empty fields. Written beside it and renamed
 * over it (atomic_file.h). *converted: whether it was. */
static int upgrade_metrics(const char *path, int *converted)
{
    int status = GEN_OK;
    char tmp[CONFIG_PATH_MAX + 64], *line = NULL;
    size_t size = 0;
    FILE *in = fopen(path, "r"), *out = NULL;
    *converted = 0;
    CHECK(in != NULL, GEN_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    ssize_t n = getline(&line, &size, in);
    if (n <= 0 || strncmp(line, metrics_header_v1, sizeof metrics_header_v1 - 1) ||
        (line[sizeof metrics_header_v1 - 1] != '\n' && line[sizeof metrics_header_v1 - 1] != '\0'))
        goto cleanup; /* the current header (or none): nothing to do */
    CALL_GOTO(atomic_file_tmp_name(tmp, sizeof tmp, path));
    out = fopen(tmp, "w");
    CHECK_GOTO(out != NULL, GEN_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(out, "%s\n", metrics_header);
    while ((n = getline(&line, &size, in)) > 0) {
        if (line[n - 1] == '\n') line[--n] = '\0';
        fprintf(out, "%s,,,\n", line);
    }
    int closed = fclose(out);
    out = NULL;
    CHECK_GOTO(closed == 0 && !ferror(in), GEN_ERR_IO, "cannot rewrite %s (disk full?)", tmp);
    CALL_GOTO(atomic_file_commit(tmp, path));
    *converted = 1;
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
    int converted = 0;
    if (resumed && access(path, F_OK) == 0) CALL(upgrade_metrics(path, &converted));
    CALL(open_csv(t, "metrics.csv", metrics_header, resumed, &t->metrics));
    validation_header(header, sizeof header);
    CALL(open_csv(t, "validation.csv", header, resumed, &t->validation));
    snprintf(path, sizeof path, "%s/train.log", t->dir);
    t->logfile = fopen(path, resumed ? "a" : "w");
    if (t->logfile) fputs(t->early_warnings, t->logfile);
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
