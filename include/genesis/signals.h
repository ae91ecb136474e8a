/* Stop requests for long runs (src/train/signals.c): SIGUSR1 and SIGTERM ask the run to write a
 * checkpoint and exit with GEN_EXIT_CONTINUE (75, "continue me": the job scripts requeue it);
 * SIGINT asks it to write a checkpoint and stop (exit 0). The handlers only set a flag; the ranks
 * agree on it at the next step boundary. A second signal while the checkpoint is written changes
 * nothing: the checkpoint is written under a temporary name and renamed when complete. */
#ifndef GENESIS_SIGNALS_H
#define GENESIS_SIGNALS_H

enum stop_request { STOP_NONE = 0, STOP_CONTINUE = 1, STOP_FINISH = 2 };

void signals_install(void);
/* The strongest request received so far (STOP_FINISH > STOP_CONTINUE > STOP_NONE). */
int signals_pending(void);
/* The name of the first signal received, for messages ("SIGUSR1"), or "" */
const char *signals_first_name(void);

#endif
