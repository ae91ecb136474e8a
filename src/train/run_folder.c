/* The run folder ([train] output): the folder and ckpt/, config.ini (the resolved configuration),
 * metrics.csv (one row per step and per validation), train.log (the progress lines). Rank 0 owns
 * the files; the other ranks learn the outcome (src/train/trainer.h). */
#include "trainer.h"

#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/world.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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

/* Rank 0: config.ini, metrics.csv (a fresh one with its header unless resuming onto an existing
 * one), train.log (appended to when resuming; a run without it still runs). */
static int open_files(struct trainer *t, int resumed)
{
    CALL(write_config_ini(t));
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.csv", t->dir);
    int fresh = !resumed || access(path, F_OK) != 0;
    t->metrics = fopen(path, fresh ? "w" : "a");
    CHECK(t->metrics != NULL, GEN_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    if (fresh)
        fprintf(t->metrics, "step,epoch,lr,train_loss,validation_loss,samples_per_s,data_s,compute_s,comm_s\n");
    snprintf(path, sizeof path, "%s/train.log", t->dir);
    t->logfile = fopen(path, resumed ? "a" : "w");
    return GEN_OK;
}

int run_folder_open_files(struct trainer *t, int resumed)
{
    return world_agree_shared(t->rank == 0 ? open_files(t, resumed) : GEN_OK);
}

void run_folder_close_files(struct trainer *t)
{
    if (t->metrics) fclose(t->metrics);
    if (t->logfile) fclose(t->logfile);
    t->metrics = t->logfile = NULL;
}

void metrics_step_row(struct trainer *t, double loss, double step_seconds, double data_seconds,
                      double comm_seconds)
{
    if (t->rank != 0) return;
    fprintf(t->metrics, "%lld,%lld,%.9g,%.9g,,%.4f,%.4f,%.4f,%.4f\n", (long long)t->st.global_step,
            (long long)t->st.epoch, t->st.lr, loss, (double)t->cfg->train.batch / step_seconds, data_seconds,
            step_seconds - data_seconds - comm_seconds, comm_seconds);
}

void metrics_validation_row(struct trainer *t, double validation_loss)
{
    if (t->rank != 0) return;
    fprintf(t->metrics, "%lld,%lld,%.9g,,%.9g,,,,\n", (long long)t->st.global_step, (long long)t->st.epoch,
            t->st.lr, validation_loss);
    fflush(t->metrics);
}

void metrics_flush(struct trainer *t)
{
    if (t->metrics) fflush(t->metrics);
}
