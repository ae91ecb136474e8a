/* When a run checkpoints and when it stops (src/train/trainer.h): checkpoints every N steps or M
 * minutes, stop requests from signals (src/train/signals.c) and from deadlines (the configured
 * budget, Slurm's end time), agreed by every rank at a step boundary. */
#include "trainer.h"

#include "genesis/collective.h"
#include "genesis/error.h"
#include "genesis/signals.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void stop_policy_start(struct trainer *t)
{
    const struct config_train *c = &t->cfg->train;
    /* deadlines: the configured budget, and Slurm's end time, each minus the margin */
    double now = profile_now(), margin = 60 * c->deadline_margin_minutes;
    if (c->deadline_minutes > 0) t->deadline = now + 60 * c->deadline_minutes - margin;
    const char *end = getenv("SLURM_JOB_END_TIME");
    char *tail = NULL;
    double end_time = end ? strtod(end, &tail) : 0;
    if (end && tail != end && end_time > 0) {
        double slurm = now + (end_time - (double)time(NULL)) - margin;
        if (t->deadline == 0 || slurm < t->deadline) t->deadline = slurm;
    }
    signals_install();
}

int stop_policy_agree(struct trainer *t, int *checkpoint, int *stop)
{
    const struct config_train *c = &t->cfg->train;
    int decision[2] = {0, signals_pending()}; /* checkpoint now, stop request */
    if (t->rank == 0) {
        double now = profile_now();
        decision[0] = (c->checkpoint_steps > 0 && t->st.global_step % c->checkpoint_steps == 0) ||
                      (c->checkpoint_minutes > 0 && now - t->last_checkpoint > 60 * c->checkpoint_minutes);
        if (t->deadline > 0 && now >= t->deadline && decision[1] < STOP_CONTINUE) decision[1] = STOP_CONTINUE;
    }
    CALL(world_max_ints(decision, 2));
    *checkpoint = decision[0], *stop = decision[1];
    return GEN_OK;
}

/* What the shell will see besides genesis's own status: Open MPI's mpirun turns a Ctrl-C (SIGINT)
 * into SIGTERM for the ranks, which then exit 75, while mpirun itself exits 1. */
static const char *launcher_note(const char *why)
{
    if (strcmp(why, "SIGTERM") || !getenv("OMPI_COMM_WORLD_SIZE")) return "";
    return "; if this SIGTERM is mpirun's forwarding of a Ctrl-C, mpirun itself exits with status 1, not 75: "
           "either way, run the same command to continue";
}

int stop_now(struct trainer *t, int request)
{
    const char *why = signals_first_name()[0] ? signals_first_name() : "the deadline";
    CALL(trainer_save_checkpoint(t, 0));
    if (request == STOP_FINISH) {
        log_run(t, "train: stopped by %s after step %lld; checkpoint written; run the same command to continue",
                why, (long long)t->st.global_step);
        return GEN_OK;
    }
    log_run(t, "train: %s: checkpoint written after step %lld; exiting with status %d (continue me)%s", why,
            (long long)t->st.global_step, GEN_EXIT_CONTINUE, launcher_note(why));
    return GEN_CONTINUE;
}
