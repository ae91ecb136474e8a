/* genesis status RUN_DIR: how a run is doing, from its run folder alone (for runs under a scheduler).
 *
 * Reads RUN_DIR/heartbeat (replaced by the trainer's rank 0 at every step and validation: time, step,
 * epoch, pid, host), train.log, metrics.csv (by column name), config.ini and ckpt/latest. The state:
 *   failed        the last line of train.log is the trainer's "train: error: ..."
 *   finished      the last line is "train: done: ..." (max_epochs, max_steps or early stopping)
 *   stopped       the last line says it checkpointed on a signal or deadline (run it again to continue)
 *   running       the heartbeat is younger than --stale-minutes (default 10), and its process is
 *                 alive when it ran on this host
 *   not running   otherwise (killed, or lost with its node): resume with the same command
 * Resubmissions: the trainer's start lines in train.log after the first (a resumed run appends to
 * train.log, a fresh one starts it anew).
 */
#include "cli/cli.h"

#include "genesis/config.h"
#include "genesis/error.h"
#include "genesis/plot.h"
#include "genesis/world.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { RECENT_STEPS = 20 }; /* step rows averaged for the step time of the ETA */

struct run_log {             /* what train.log says */
    char last[1024];         /* its last non-empty line */
    char problem[1024];      /* its last line with "warning" or "error" */
    long long steps_per_epoch; /* from the start line; 0: unknown */
    int starts;              /* start lines of the trainer ("... steps per epoch of ..."): invocations
                                since the run began (a fresh run starts a new train.log) */
};

/* What metrics.csv says (read with io's run_metrics_read, which drops the rows a resume replays and
 * a last row still being written). */
struct run_progress {
    long long step, epoch;   /* of its last row; -1: no row */
    double best, identity, mean, gain; /* the best validation row (best = +inf: none) */
    long long best_epoch;
    double step_seconds[RECENT_STEPS]; /* batch / samples_per_s of the last step rows (ring) */
    int step_rows;
    char unreadable[512];    /* why metrics.csv could not be read; "" when it could (or is absent) */
};

struct heartbeat {
    int found;
    double age;              /* seconds since it was written (its mtime) */
    long pid;
    char host[256];
};

static void chomp(char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
}

static void read_log(const char *dir, struct run_log *log)
{
    char path[CONFIG_PATH_MAX + 32], line[1024];
    memset(log, 0, sizeof *log);
    snprintf(path, sizeof path, "%s/train.log", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        chomp(line);
        if (!line[0]) continue;
        snprintf(log->last, sizeof log->last, "%s", line);
        if (strstr(line, "warning") || strstr(line, "error")) snprintf(log->problem, sizeof log->problem, "%s", line);
        const char *per = strstr(line, " steps per epoch of ");
        if (!strncmp(line, "train: ", 7) && per) {
            const char *p = per;
            while (p > line && p[-1] >= '0' && p[-1] <= '9') p--;
            log->steps_per_epoch = strtoll(p, NULL, 10);
            log->starts++;
        }
    }
    fclose(f);
}

static void read_progress(const char *dir, long batch, struct run_progress *p)
{
    char path[CONFIG_PATH_MAX + 32];
    memset(p, 0, sizeof *p);
    p->step = p->epoch = p->best_epoch = -1;
    p->best = HUGE_VAL, p->identity = p->mean = p->gain = NAN;
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    if (access(path, F_OK) != 0) return;
    struct run_metrics m;
    if (run_metrics_read(path, &m) != GEN_OK) {
        snprintf(p->unreadable, sizeof p->unreadable, "%s", gen_error_message());
        gen_error_clear();
        run_metrics_free(&m);
        return;
    }
    for (int64_t r = 0; r < m.rows; r++) {
        p->step = (long long)run_metrics_at(&m, r, METRIC_STEP);
        double epoch = run_metrics_at(&m, r, METRIC_EPOCH);
        p->epoch = isfinite(epoch) ? (long long)epoch : -1;
        double val = run_metrics_at(&m, r, METRIC_VALIDATION_LOSS), speed = run_metrics_at(&m, r, METRIC_SAMPLES_PER_S);
        if (isfinite(speed) && speed > 0) p->step_seconds[p->step_rows++ % RECENT_STEPS] = (double)batch / speed;
        if (isfinite(val) && val < p->best) {
            p->best = val, p->best_epoch = p->epoch;
            p->identity = run_metrics_at(&m, r, METRIC_IDENTITY_LOSS), p->mean = run_metrics_at(&m, r, METRIC_MEAN_LOSS);
            p->gain = run_metrics_at(&m, r, METRIC_GAIN);
        }
    }
    run_metrics_free(&m);
}

static void read_heartbeat(const char *dir, struct heartbeat *h)
{
    char path[CONFIG_PATH_MAX + 32], key[32], value[256];
    struct stat st;
    memset(h, 0, sizeof *h);
    snprintf(path, sizeof path, "%s/heartbeat", dir);
    if (stat(path, &st) != 0) return;
    h->found = 1;
    h->age = difftime(time(NULL), st.st_mtime);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fscanf(f, "%31s %255s", key, value) == 2) {
        if (!strcmp(key, "pid")) h->pid = strtol(value, NULL, 10);
        if (!strcmp(key, "host")) snprintf(h->host, sizeof h->host, "%s", value);
    }
    fclose(f);
}

/* 1 if the heartbeat's process ran on this host and is gone. */
static int process_gone(const struct heartbeat *h)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    return h->pid > 0 && !strcmp(host, h->host) && kill((pid_t)h->pid, 0) != 0 && errno == ESRCH;
}

static const char *describe_age(double seconds, char *out, size_t size)
{
    if (seconds < 120) snprintf(out, size, "%.0f s", seconds);
    else if (seconds < 7200) snprintf(out, size, "%.1f min", seconds / 60);
    else snprintf(out, size, "%.1f h", seconds / 3600);
    return out;
}

static void print_state(const char *dir, const struct run_log *log, const struct heartbeat *h, double stale)
{
    char age[64];
    if (h->found) describe_age(h->age, age, sizeof age);
    if (strstr(log->last, "train: error:"))
        printf("%s: failed: %s\n", dir, log->last);
    else if (!strncmp(log->last, "train: done:", 12))
        printf("%s: finished\n", dir);
    else if (strstr(log->last, "train: stopped by") || strstr(log->last, "(continue me)"))
        printf("%s: stopped after a checkpoint (run the same command to continue): %s\n", dir, log->last);
    else if (h->found && h->age < stale && process_gone(h))
        printf("%s: not running: its trainer (pid %ld on %s) is gone (killed?); run the same command to "
               "resume\n", dir, h->pid, h->host);
    else if (h->found && h->age < stale)
        printf("%s: running (heartbeat %s ago, pid %ld on %s)\n", dir, age, h->pid, h->host);
    else if (h->found)
        printf("%s: not running: no heartbeat for %s (killed, or lost with its node?); run the same command "
               "to resume\n", dir, age);
    else
        printf("%s: not running: no heartbeat (not started yet, or by a genesis without one)\n", dir);
}

/* Seconds per step: the mean of the recent step rows' batch / samples_per_s. */
static double recent_step_seconds(const struct run_progress *m)
{
    int n = m->step_rows < RECENT_STEPS ? m->step_rows : RECENT_STEPS;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += m->step_seconds[i];
    return n ? sum / n : NAN;
}

static void print_progress(const char *dir, const struct run_log *log, const struct run_progress *m,
                           const genesis_config *cfg, int have_cfg)
{
    if (m->unreadable[0]) printf("metrics:       unreadable: %s\n", m->unreadable);
    if (m->step >= 0) printf("position:      step %lld, epoch %lld\n", m->step, m->epoch);
    else printf("position:      no step yet\n");
    if (isfinite(m->best) && isfinite(m->gain))
        printf("validation:    best loss %.6f at epoch %lld (identity %.6f, mean %.6f, gain %.3f)\n", m->best,
               m->best_epoch, m->identity, m->mean, m->gain);
    else if (isfinite(m->best))
        printf("validation:    best loss %.6f at epoch %lld (no baselines in this metrics.csv)\n", m->best,
               m->best_epoch);
    else
        printf("validation:    none yet\n");
    if (m->step_rows > 0)
        printf("speed:         %.3f samples/s (last step)\n",
               (double)cfg->train.batch / m->step_seconds[(m->step_rows - 1) % RECENT_STEPS]);
    double per_step = recent_step_seconds(m);
    if (have_cfg && log->steps_per_epoch > 0 && m->step >= 0 && isfinite(per_step)) {
        double all = (double)cfg->train.max_epochs * (double)log->steps_per_epoch;
        const char *limit = "max_epochs";
        if (cfg->train.max_steps > 0 && (double)cfg->train.max_steps < all)
            all = (double)cfg->train.max_steps, limit = "max_steps";
        double left = all - (double)m->step > 0 ? all - (double)m->step : 0;
        char eta[64];
        printf("ETA:           %s for %.0f more steps to %s = %ld (%.3f s per step, validation not counted)\n",
               describe_age(left * per_step, eta, sizeof eta), left, limit,
               !strcmp(limit, "max_steps") ? cfg->train.max_steps : cfg->train.max_epochs, per_step);
    } else {
        printf("ETA:           unknown (no step rows yet, or no config.ini / train.log)\n");
    }
    char path[CONFIG_PATH_MAX + 32], name[256] = "", ckpt[2 * CONFIG_PATH_MAX], age[64];
    snprintf(path, sizeof path, "%s/ckpt/latest", dir);
    FILE *f = fopen(path, "r");
    if (f && fgets(name, sizeof name, f)) chomp(name);
    if (f) fclose(f);
    struct stat st;
    snprintf(ckpt, sizeof ckpt, "%s/ckpt/%s", dir, name);
    if (name[0] && stat(ckpt, &st) == 0)
        printf("checkpoint:    %s (written %s ago)\n", ckpt, describe_age(difftime(time(NULL), st.st_mtime), age,
                                                                          sizeof age));
    else
        printf("checkpoint:    none yet\n");
    printf("last problem:  %s\n", log->problem[0] ? log->problem : "none in train.log");
    printf("resubmissions: %d (starts of the trainer in train.log after the first)\n",
           log->starts > 0 ? log->starts - 1 : 0);
}

static int show_status(const char *dir, double stale_minutes)
{
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), GEN_ERR_USAGE, "status: %s is not a run folder", dir);
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/train.log", dir);
    CHECK(access(path, R_OK) == 0, GEN_ERR_USAGE, "status: %s has no train.log: not a run folder (yet)", dir);
    genesis_config cfg;
    CALL(config_defaults(&cfg));
    snprintf(path, sizeof path, "%s/config.ini", dir);
    int have_cfg = config_load_file(&cfg, path) == GEN_OK;
    if (!have_cfg) gen_error_clear();
    struct run_log log;
    struct run_progress metrics;
    struct heartbeat beat;
    read_log(dir, &log);
    read_progress(dir, cfg.train.batch, &metrics);
    read_heartbeat(dir, &beat);
    print_state(dir, &log, &beat, stale_minutes * 60);
    print_progress(dir, &log, &metrics, &cfg, have_cfg);
    return GEN_OK;
}

int cmd_status(int argc, char **argv)
{
    const char *dir = NULL;
    long stale = 10;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--stale-minutes")) {
            if (i + 1 >= argc) FAIL_ALL(GEN_ERR_USAGE, "status: --stale-minutes needs a number of minutes");
            CALL(cli_parse_long(argv[i], argv[i + 1], 0, 1000000, &stale));
            i++;
        } else if (argv[i][0] != '-' && !dir) {
            dir = argv[i];
        } else {
            FAIL_ALL(GEN_ERR_USAGE, "usage: genesis status RUN_DIR [--stale-minutes N]");
        }
    }
    if (!dir) FAIL_ALL(GEN_ERR_USAGE, "usage: genesis status RUN_DIR [--stale-minutes N]");
    if (world_rank() != 0) return GEN_OK;
    return show_status(dir, (double)stale);
}
