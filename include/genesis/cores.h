/* The cores and the memory this process may use (src/util/cores.c). */
#ifndef GENESIS_CORES_H
#define GENESIS_CORES_H

#include <stddef.h>

/* The number of CPUs in this process's affinity mask (its binding: mpirun --bind-to, srun
 * --cpu-bind, taskset); 0 when it cannot be read. */
int process_allowed_cores(void);

/* The memory this node offers the job, bytes, before it allocates: GENESIS_MEMORY_LIMIT_MB when set
 * (MB; for tests and sites that know better), else the smaller of this process's cgroup limit (v2
 * memory.max, v1 memory.limit_in_bytes) and MemAvailable of /proc/meminfo; 0 when unknown.
 * `source` receives where the figure comes from. */
double node_memory_limit(char *source, size_t size);

#endif
