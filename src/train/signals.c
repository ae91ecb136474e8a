/* Stop requests from signals (include/genesis/signals.h). */
#include "genesis/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t pending = STOP_NONE, first_signal = 0;

static void on_signal(int sig)
{
    int request = sig == SIGINT ? STOP_FINISH : STOP_CONTINUE;
    if (!first_signal) first_signal = sig;
    if (request > pending) pending = request;
}

void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int signals_pending(void) { return pending; }

const char *signals_first_name(void)
{
    switch (first_signal) {
    case SIGUSR1: return "SIGUSR1";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    default: return "";
    }
}
