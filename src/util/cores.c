/* The cores and the memory this process may use (include/genesis/cores.h). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "genesis/cores.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int process_allowed_cores(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

/* ---- memory ---- */

/* The first number in file `path` (a cgroup limit: a byte count, or "max" = none); 0 when none. */
static double read_limit_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char text[64] = "";
    int got = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    char *end = NULL;
    double v = got ? strtod(text, &end) : 0;
    return got && end != text && v > 0 && v < 1e18 ? v : 0; /* v1 reports "no limit" as ~9.2e18 */
}

/* This process's cgroup limit (v2 memory.max of its cgroup, else v1 memory.limit_in_bytes), bytes;
 * 0 when there is none. */
static double cgroup_limit(char *source, size_t size)
{
    char line[512], path[768];
    FILE *f = fopen("/proc/self/cgroup", "r");
    double limit = 0;
    while (f && limit == 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "0::", 3)) { /* v2: "0::/PATH" */
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
            limit = read_limit_file(path);
        } else if (strstr(line, ":memory:")) { /* v1: "N:memory:/PATH" */
            const char *where = strstr(line, ":memory:") + 8;
            snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", where);
            limit = read_limit_file(path);
        }
    }
    if (f) fclose(f);
    if (limit > 0) snprintf(source, size, "cgroup limit %s", path);
    return limit;
}

/* MemAvailable of /proc/meminfo, bytes; 0 when unknown. */
static double mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib * 1024;
}

double node_memory_limit(char *source, size_t size)
{
    const char *forced = getenv("GENESIS_MEMORY_LIMIT_MB");
    char *end = NULL;
    double mb = forced ? strtod(forced, &end) : 0;
    if (forced && end != forced && *end == '\0' && mb > 0) {
        snprintf(source, size, "GENESIS_MEMORY_LIMIT_MB=%s", forced);
        return mb * 1048576;
    }
    double limit = cgroup_limit(source, size), available = mem_available();
    if (available > 0 && (limit == 0 || available < limit)) {
        snprintf(source, size, "MemAvailable of /proc/meminfo");
        limit = available;
    }
    if (limit == 0) snprintf(source, size, "unknown");
    return limit;
}
