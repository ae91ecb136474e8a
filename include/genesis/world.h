/* The MPI world (mpi/world.c): start-up, one configuration for every rank, test-only fault
 * injection, and how a subcommand ends: cleanly on every rank for an error that every rank saw,
 * by MPI_Abort for an error seen by one rank, so that no rank is left blocked in a collective.
 */
#ifndef GENESIS_WORLD_H
#define GENESIS_WORLD_H

#include "genesis/config.h"

#include <mpi.h>
#include <stddef.h>

/* MPI_Init_thread (funneled: only the main thread calls MPI), errors returned rather than fatal,
 * logging set up with the rank. */
int world_init(int *argc, char ***argv, int verbose);
int world_rank(void);
int world_size(void);
/* The MPI library's version text, first line ("Open MPI v4.1.6, ..."), or "unknown". */
void world_library_version(char *out, size_t size);

/* Collective: the number of ranks of the job on this rank's node (shared-memory domain). */
int world_ranks_on_node(int *count);

/* Ends the process's part of the job given the subcommand's status and returns the exit status.
 * GEN_OK: MPI_Finalize, 0. A collective error (gen_error_mark_collective): rank 0 prints it once,
 * every rank finalizes and returns the same exit status. Any other error: this rank prints
 * "genesis: error on rank R: ..." and calls MPI_Abort, which ends every rank. */
int world_finish(int status);

/* Rank 0 builds the configuration (defaults, then `path` if not NULL, then each "--set"
 * assignment) and broadcasts it, or broadcasts its error, which then is a collective error on
 * every rank. Then applies [io] mpiio_hints to every later parallel HDF5 file
 * (h5par_set_mpiio_hints; a malformed list is a collective usage error). */
int world_load_config(genesis_config *cfg, const char *path, char *const *assignments,
                      int assignment_count);

/* Agreement at the end of a phase in which any rank may have failed: returns GEN_OK when no rank
 * failed; the rank's own error when it failed (collective if every rank failed); GEN_ERR_PEER on a
 * healthy rank when another rank failed (world_finish then lets the failed rank report first). */
int world_agree(int status);

/* Like world_agree, but when some ranks failed every rank returns the error of the lowest failed
 * rank (its code and message, broadcast), as a collective error: for phases after which the
 * ranks can still end together cleanly (e.g. to remove a partial output first). */
int world_agree_shared(int status);

/* Test-only fault injection: GENESIS_FAULT="SITE:RANK" (or "SITE:all"; or "SITE:RANK:N" for the
 * N-th time only) makes fault_point(SITE) fail with GEN_ERR_INJECTED on that rank (or on every
 * rank), and fault_kill_point(SITE) kill the process with SIGKILL there (a crash). */
int fault_point(const char *site);
void fault_kill_point(const char *site);

/* Converts an MPI error code into a recorded genesis error. */
int world_mpi_error(int mpi_code, const char *what, const char *file, int line);
#define MPI_CALL(expr)                                                                         \
    do {                                                                                       \
        int mpi_code_ = (expr);                                                                \
        if (mpi_code_ != MPI_SUCCESS) return world_mpi_error(mpi_code_, #expr, __FILE__, __LINE__); \
    } while (0)

#endif
