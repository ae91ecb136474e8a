/* The cores this process may run on (src/util/cores.c). */
#ifndef GENESIS_CORES_H
#define GENESIS_CORES_H

/* The number of CPUs in this process's affinity mask (its binding: mpirun --bind-to, srun
 * --cpu-bind, taskset); 0 when it cannot be read. */
int process_allowed_cores(void);

#endif
