/* Profiling events: time, calls and FLOPs per named event (include/genesis/profile.h). */
#include "genesis/profile.h"

#include <string.h>
#include <time.h>

double profile_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int profile_event(profile *p, const char *name)
{
    for (int i = 0; i < p->count; i++)
        if (!strncmp(p->event[i].name, name, PROFILE_NAME_MAX - 1)) return i;
    if (p->count == PROFILE_EVENTS_MAX) return -1;
    profile_event_stats *e = &p->event[p->count];
    memset(e, 0, sizeof *e);
    strncpy(e->name, name, PROFILE_NAME_MAX - 1);
    return p->count++;
}

void profile_add(profile *p, int id, double seconds, double flops)
{
    if (id < 0 || id >= p->count) return;
    p->event[id].seconds += seconds;
    p->event[id].flops += flops;
    p->event[id].calls++;
}

void profile_stop(profile *p, int id, double start, double flops)
{
    profile_add(p, id, profile_now() - start, flops);
}

void profile_reset(profile *p)
{
    for (int i = 0; i < p->count; i++) p->event[i].seconds = p->event[i].flops = 0, p->event[i].calls = 0;
}

const profile_event_stats *profile_get(const profile *p, int id)
{
    return id >= 0 && id < p->count ? &p->event[id] : NULL;
}

void profile_print(const profile *p, FILE *out, double total_seconds)
{
    fprintf(out, "%-32s %10s %8s %7s %9s\n", "event", "seconds", "calls", "share", "GFLOP/s");
    for (int i = 0; i < p->count; i++) {
        const profile_event_stats *e = &p->event[i];
        char rate[32] = "";
        if (e->flops > 0 && e->seconds > 0) snprintf(rate, sizeof rate, "%.1f", e->flops / e->seconds * 1e-9);
        fprintf(out, "%-32s %10.3f %8ld %6.1f%% %9s\n", e->name, e->seconds, e->calls,
                total_seconds > 0 ? 100.0 * e->seconds / total_seconds : 0.0, rate);
    }
}
