/* The run's checkpoints (src/train/trainer.h): ckpt/step-NNNNNNNN.h5 every so often, the newest K
 * kept, `latest` naming the newest complete one (written under a temporary name, then renamed),
 * best.h5 at the best validation loss; and resuming from them, newest readable first. */
#include "trainer.h"

#include "genesis/atomic_file.h"
#include "genesis/collective.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/weights.h"
#include "genesis/world.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(char **names, int count)
{
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

static int is_step_checkpoint(const char *name)
{
    size_t len = strlen(name);
    return !strncmp(name, "step-", 5) && len >= 8 && !strcmp(name + len - 3, ".h5");
}

/* The step checkpoints in the folder, sorted oldest first (names are zero-padded step numbers);
 * none when the folder cannot be opened. */
static int list_checkpoints(const char *dir, char ***names_out, int *count_out)
{
    *names_out = NULL, *count_out = 0;
    int status = GEN_OK, count = 0, cap = 0;
    char **names = NULL;
    DIR *d = opendir(dir);
    if (!d) return GEN_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_step_checkpoint(e->d_name)) continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(names, sizeof *grown * (size_t)cap);
            CHECK_ALLOC_GOTO(grown, sizeof *grown * (size_t)cap);
            names = grown;
        }
        names[count] = strdup(e->d_name);
        CHECK_ALLOC_GOTO(names[count], strlen(e->d_name) + 1);
        count++;
    }
    if (count) qsort(names, (size_t)count, sizeof *names, compare_names);
cleanup:
    closedir(d);
    if (status != GEN_OK) {
        free_names(names, count);
        return status;
    }
    *names_out = names, *count_out = count;
    return GEN_OK;
}

/* Points ckpt/latest at `name`, replaced atomically (io's atomic_file: temporary name, fsync,
 * rename, fsync of the folder). */
static int point_latest_at(const char *ckpt_dir, const char *name)
{
    char latest[CONFIG_PATH_MAX + 64], tmp[CONFIG_PATH_MAX + 96];
    snprintf(latest, sizeof latest, "%s/latest", ckpt_dir);
    CALL(atomic_file_tmp_name(tmp, sizeof tmp, latest));
    int status = GEN_OK;
    FILE *f = fopen(tmp, "w");
    CHECK_GOTO(f != NULL, GEN_ERR_IO, "cannot update %s: %s", latest, strerror(errno));
    CHECK_GOTO(fprintf(f, "%s\n", name) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0, GEN_ERR_IO,
               "cannot update %s: %s", latest, strerror(errno));
    int closed = fclose(f);
    f = NULL; /* closed, whatever fclose returned */
    CHECK_GOTO(closed == 0, GEN_ERR_IO, "cannot update %s: %s", latest, strerror(errno));
    CALL_GOTO(fault_point("checkpoint.latest"));
    CALL_GOTO(atomic_file_commit(tmp, latest));
cleanup:
    if (f) fclose(f);
    return status;
}

/* Keeps the newest `keep` step checkpoints; a file that cannot be removed stays. */
static int remove_old_checkpoints(const char *ckpt_dir, long keep)
{
    char **names, path[CONFIG_PATH_MAX + 128];
    int count;
    CALL(list_checkpoints(ckpt_dir, &names, &count));
    for (int i = 0; i + keep < count; i++) {
        snprintf(path, sizeof path, "%s/%s", ckpt_dir, names[i]);
        unlink(path);
    }
    free_names(names, count);
    return GEN_OK;
}

/* Rank 0's part of trainer_save_checkpoint. */
static int write_checkpoint(struct trainer *t, int best_only)
{
    char path[CONFIG_PATH_MAX + 128], name[64];
    if (best_only) {
        snprintf(path, sizeof path, "%s/best.h5", t->ckpt_dir);
        return checkpoint_write(path, t->model, &t->optim, &t->st, t->config_text);
    }
    snprintf(name, sizeof name, "step-%08lld.h5", (long long)t->st.global_step);
    snprintf(path, sizeof path, "%s/%s", t->ckpt_dir, name);
    CALL(checkpoint_write(path, t->model, &t->optim, &t->st, t->config_text));
    CALL(point_latest_at(t->ckpt_dir, name));
    CALL(remove_old_checkpoints(t->ckpt_dir, t->cfg->train.keep_checkpoints));
    log_run(t, "train: checkpoint %s/%s", t->ckpt_dir, name);
    return GEN_OK;
}

int trainer_save_checkpoint(struct trainer *t, int best_only)
{
    double start = profile_now();
    int status = world_agree_shared(t->rank == 0 ? write_checkpoint(t, best_only) : GEN_OK);
    t->last_checkpoint = profile_now();
    if (t->last_checkpoint - start > t->longest_checkpoint) t->longest_checkpoint = t->last_checkpoint - start;
    trainer_phase_stop(t, PHASE_CHECKPOINT, start);
    return status;
}

enum { MAX_CANDIDATES = 16 };
typedef char candidate_path[CONFIG_PATH_MAX + 64];

/* Rank 0: the checkpoints to resume from, newest first: the one `latest` names (when it exists: a
 * missing target is a warning), then the step files, newest first. *holds_run: whether ckpt/
 * holds a run at all (a step checkpoint, `latest` or best.h5). */
static int list_candidates(struct trainer *t, candidate_path *candidates, int *count, int *holds_run)
{
    const char *ckpt_dir = t->ckpt_dir;
    char path[CONFIG_PATH_MAX + 64], name[256] = "";
    *count = 0;
    snprintf(path, sizeof path, "%s/best.h5", ckpt_dir);
    *holds_run = access(path, F_OK) == 0;
    snprintf(path, sizeof path, "%s/latest", ckpt_dir);
    FILE *f = fopen(path, "r");
    if (f && fgets(name, sizeof name, f)) {
        name[strcspn(name, "\n")] = '\0';
        snprintf(candidates[*count], sizeof candidates[0], "%s/%s", ckpt_dir, name);
        if (access(candidates[*count], F_OK) == 0) (*count)++;
        else warn_run(t, "%s names %s, which does not exist (removed by hand?); trying the other checkpoints",
                      path, name);
    }
    if (f) *holds_run = 1, fclose(f);
    char **names;
    int n;
    CALL(list_checkpoints(ckpt_dir, &names, &n));
    for (int i = n - 1; i >= 0 && *count < MAX_CANDIDATES; i--) {
        if (!strcmp(names[i], name)) continue;
        snprintf(candidates[(*count)++], sizeof candidates[0], "%s/%s", ckpt_dir, names[i]);
    }
    *holds_run = *holds_run || n > 0;
    free_names(names, n);
    return GEN_OK;
}

/* Rank 0: what differs between the checkpoint at path and the configuration in the keys that fix
 * the model's and the optimizer's tensors ("" when none does or its configuration is unreadable). */
static void describe_mismatch(const struct trainer *t, const char *path, char *out, size_t size)
{
    genesis_config stored;
    out[0] = '\0';
    if (checkpoint_read_config(path, &stored) != GEN_OK) {
        gen_error_clear();
        return;
    }
    if (stored.model.width != t->cfg->model.width)
        snprintf(out, size, "the checkpoint has [model] width %ld, the configuration says %ld", stored.model.width,
                 t->cfg->model.width);
    else if (stored.train.optimizer != t->cfg->train.optimizer)
        snprintf(out, size, "the checkpoint was trained with [train] optimizer = %s, the configuration says %s",
                 optim_kind_name(stored.train.optimizer + 1), optim_kind_name(t->cfg->train.optimizer + 1));
}

/* The advice when the run in the folder cannot be continued: never resume = never (that would mix
 * two runs in one folder). */
#define START_OVER_ADVICE                                                                               \
    "to start a new run, choose another [train] output, or add --fresh to move the old run to "         \
    "%s/previous-<date>-<time>/ first"

/* Collective: all candidates failed to read. One error saying why, from the newest. */
static int explain_unreadable(struct trainer *t, const char *newest, const char *newest_error)
{
    char why[512] = "";
    if (t->rank == 0) describe_mismatch(t, newest, why, sizeof why);
    CALL(world_broadcast(why, sizeof why, 0));
    if (why[0])
        FAIL_ALL(GEN_ERR_USAGE, "cannot continue the run in %s: %s (%s). To continue it, use the checkpoint's "
                 "setting; " START_OVER_ADVICE, t->dir, why, newest, t->dir);
    FAIL_ALL(GEN_ERR_DATA, "no readable checkpoint in %s (the newest, %s: %s); " START_OVER_ADVICE, t->ckpt_dir,
             newest, newest_error, t->dir);
}

int trainer_resume(struct trainer *t, int *resumed)
{
    *resumed = 0;
    candidate_path candidates[MAX_CANDIDATES];
    int count = 0, holds_run = 0;
    if (t->opt && t->opt->fresh) CALL(run_folder_move_aside(t));
    CALL(world_agree_shared(t->rank == 0 ? list_candidates(t, candidates, &count, &holds_run) : GEN_OK));
    CALL(world_broadcast(&count, sizeof count, 0));
    CALL(world_broadcast(&holds_run, sizeof holds_run, 0));
    CALL(world_broadcast(candidates, sizeof candidates, 0));
    if (t->cfg->train.resume != RESUME_AUTO) {
        if (holds_run)
            FAIL_ALL(GEN_ERR_USAGE, "%s holds another run (checkpoints in %s): resume = never would mix a new run "
                     "with it; " START_OVER_ADVICE, t->dir, t->ckpt_dir, t->dir);
        return GEN_OK;
    }
    char newest_error[1024] = "";
    for (int i = 0; i < count; i++) {
        int status = world_agree_shared(checkpoint_read(candidates[i], t->model, &t->optim, &t->st));
        if (status == GEN_OK) {
            if (t->st.config_hash != config_hash(t->cfg))
                log_run(t, "train: note: the configuration differs from the checkpoint's (resuming anyway)");
            log_run(t, "train: resuming from %s: epoch %lld, step %lld of the epoch, %lld steps done",
                    candidates[i], (long long)t->st.epoch, (long long)t->st.step_in_epoch,
                    (long long)t->st.global_step);
            *resumed = 1;
            return GEN_OK;
        }
        if (i == 0) snprintf(newest_error, sizeof newest_error, "%s", gen_error_message());
        if (t->rank == 0)
            warn_run(t, "cannot resume from %s: %s; trying an older checkpoint", candidates[i],
                     gen_error_message());
        gen_error_clear();
    }
    if (count > 0) return explain_unreadable(t, candidates[0], newest_error);
    return GEN_OK;
}
