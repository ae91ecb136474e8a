/* Profiling events (src/util/profile.c), after PETSc's PetscLogEvent: named events that add up
 * wall time (seconds), calls and counted work (FLOPs, 2 per multiply-add), and one table at the
 * end of a run. The one timer of the project: the model's layers, the trainer's phases and
 * `genesis bench` all time through it.
 *
 *   profile p = {0};
 *   int conv = profile_event(&p, "enc1.conv");          register once (same name, same id)
 *   double t0 = profile_now();
 *   ... work ...
 *   profile_add(&p, conv, profile_now() - t0, flops);   or profile_stop(&p, conv, t0, flops)
 *   profile_print(&p, stdout, total_seconds);
 *
 * A profile is plain data owned by whoever times (one per model, one per trainer): no globals,
 * no locks; it is not shared between threads.
 */
#ifndef GENESIS_PROFILE_H
#define GENESIS_PROFILE_H

#include <stdio.h>

#define PROFILE_EVENTS_MAX 96
#define PROFILE_NAME_MAX 48

typedef struct profile_event_stats {
    char name[PROFILE_NAME_MAX];
    double seconds; /* wall time, summed over calls */
    double flops;   /* counted work, summed over calls; 0 = not counted */
    long calls;
} profile_event_stats;

typedef struct profile {
    int count;
    profile_event_stats event[PROFILE_EVENTS_MAX];
} profile;

/* Seconds on a monotonic clock (CLOCK_MONOTONIC); only differences mean anything. */
double profile_now(void);
/* The id of the event called `name`, registered on first use; -1 when the table is full (adding
 * to event -1 is a no-op, so a full table loses figures, never correctness). */
int profile_event(profile *p, const char *name);
/* Adds one call of `seconds` and `flops` to event id. */
void profile_add(profile *p, int id, double seconds, double flops);
/* profile_add(p, id, profile_now() - start, flops). */
void profile_stop(profile *p, int id, double start, double flops);
/* Zeroes every event's figures (the names stay registered). */
void profile_reset(profile *p);
const profile_event_stats *profile_get(const profile *p, int id);
/* A table: event, seconds, calls, share of total_seconds, GFLOP/s where FLOPs were counted. */
void profile_print(const profile *p, FILE *out, double total_seconds);

#endif
