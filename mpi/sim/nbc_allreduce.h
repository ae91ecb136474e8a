/* Open MPI's non-blocking all-reduce (libnbc's schedules and progress rule), standing in for SMPI's
 * MPI_Iallreduce in the simulation build of mpi/gradsync.c (mpi/sim/nbc_allreduce.c says why). */
#ifndef GENESIS_SIM_NBC_ALLREDUCE_H
#define GENESIS_SIM_NBC_ALLREDUCE_H

#include <mpi.h>
/* SMPI's mpi.h leaves its own MPI_CALL (a declaration helper) defined; genesis/world.h defines the
 * project's. This header is force-included first in the simulation build (scripts/scale_sim). */
#undef MPI_CALL

extern MPI_Datatype sim_float_block; /* mpi/sim/scale_sim.c: gradsync.c's MPI_FLOAT here */
#ifdef SIM_FOLD_FLOAT /* gradsync.c's build: SMPI's mpi.h defines MPI_FLOAT, so -D cannot */
#undef MPI_FLOAT
#define MPI_FLOAT sim_float_block
#endif

enum { NBC_BINOMIAL = 1, NBC_REDSCAT_ALLGATHER = 2 };

int nbc_iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm,
                   MPI_Request *request);
int nbc_testall(int n, MPI_Request *requests, int *flag, MPI_Status *statuses);
int nbc_waitall(int n, MPI_Request *requests, MPI_Status *statuses);
/* Compute charged per element reduced (seconds), measured by tests/bench/step_trace. */
void nbc_set_reduce_cost(double seconds_per_element);
/* Bytes and messages this rank has sent in these all-reduces so far; the last one's algorithm. */
long long nbc_bytes_sent(void);
long long nbc_messages_sent(void);
int nbc_last_algorithm(void);

#endif
