/* The cores this process may run on (include/genesis/cores.h). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "genesis/cores.h"

#include <sched.h>

int process_allowed_cores(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}
