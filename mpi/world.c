/* The MPI world: start-up, shared configuration, agreement and ending (include/genesis/world.h). */
#include "genesis/world.h"

#include "genesis/error.h"
#include "genesis/h5par.h"
#include "genesis/log.h"

#include <cblas.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int rank_, size_ = 1;

int world_rank(void) { return rank_; }

void world_library_version(char *out, size_t size)
{
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "unknown");
    text[strcspn(text, "\n")] = '\0';
    snprintf(out, size, "%s", text);
}
int world_size(void) { return size_; }

int world_mpi_error(int mpi_code, const char *what, const char *file, int line)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpi_code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", mpi_code);
    return gen_error_set(GEN_ERR_MPI, file, line, "MPI call failed: %s: %s", what, text);
}

int world_init(int *argc, char ***argv, int verbose)
{
    /* One rank per core by default: OpenBLAS single-threaded unless the environment says
     * otherwise (a subcommand may raise it from its configuration). */
    if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS")) openblas_set_num_threads(1);
    /* Open MPI's "lockedfile" component (shared file pointers of MPI-IO) formats every path opened
     * with MPI-IO into a fixed buffer: a path of ~240 characters or more aborted the process ("buffer
     * overflow detected", under H5Fopen; issue 17); "sm" names a file after the path and prints an
     * error when that name is too long. HDF5 never uses shared file pointers: both are left out
     * ("individual" remains), unless the user chose the components (OMPI_MCA_sharedfp set). */
    setenv("OMPI_MCA_sharedfp", "^lockedfile,sm", 0);
    int provided = 0;
    MPI_CALL(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    MPI_CALL(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CALL(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    MPI_CALL(MPI_Comm_size(MPI_COMM_WORLD, &size_));
    log_init(rank_, size_, verbose);
    CHECK(provided >= MPI_THREAD_FUNNELED, GEN_ERR_MPI,
          "the MPI library provides no MPI_THREAD_FUNNELED support");
    log_debug("MPI world of %d ranks", size_);
    return GEN_OK;
}

static void sleep_seconds(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

int world_ranks_on_node(int *count)
{
    MPI_Comm node;
    *count = 1;
    MPI_CALL(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    int status = MPI_Comm_size(node, count);
    MPI_Comm_free(&node);
    MPI_CALL(status);
    return GEN_OK;
}

int world_finish(int status)
{
    int code = gen_exit_code(status);
    if (status == GEN_OK || status == GEN_CONTINUE) { /* every rank agreed on it */
        MPI_Finalize();
        return code;
    }
    if (gen_error_is_collective()) {
        if (rank_ == 0) {
            log_error_all("%s", gen_error_message());
            log_debug("at %s", gen_error_traceback());
        }
        MPI_Finalize();
        return code;
    }
    if (status == GEN_ERR_PEER) {
        /* Healthy rank: the failed rank is aborting the job with its own message. Give it time to
         * do so, then end the job ourselves. */
        sleep_seconds(10.0);
        log_error_rank("%s", gen_error_message());
        MPI_Abort(MPI_COMM_WORLD, code);
        return code;
    }
    log_error_rank("%s", gen_error_message());
    if (log_verbose()) log_error_rank("  at %s", gen_error_traceback());
    if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
    MPI_Finalize();
    return code;
}

int world_load_config(genesis_config *cfg, const char *path, char *const *assignments,
                      int assignment_count)
{
    /* [status, message] travel from rank 0 in one broadcast */
    struct {
        int status;
        char message[1024];
    } outcome = {GEN_OK, ""};
    if (rank_ == 0) {
        int status = config_defaults(cfg);
        if (status == GEN_OK && path) status = config_load_file(cfg, path);
        for (int i = 0; status == GEN_OK && i < assignment_count; i++)
            status = config_set(cfg, assignments[i]);
        if (status != GEN_OK) {
            outcome.status = status;
            snprintf(outcome.message, sizeof outcome.message, "%s", gen_error_message());
        }
    }
    MPI_CALL(MPI_Bcast(&outcome, (int)sizeof outcome, MPI_BYTE, 0, MPI_COMM_WORLD));
    if (outcome.status != GEN_OK) {
        if (rank_ != 0) gen_error_set(outcome.status, __FILE__, __LINE__, "%s", outcome.message);
        gen_error_mark_collective();
        return outcome.status;
    }
    MPI_CALL(MPI_Bcast(cfg, (int)sizeof *cfg, MPI_BYTE, 0, MPI_COMM_WORLD));
    /* every rank holds the same text: a malformed one fails on every rank alike */
    int status = h5par_set_mpiio_hints(cfg->io.mpiio_hints);
    if (status != GEN_OK) gen_error_mark_collective();
    return status;
}

int world_agree(int status)
{
    int failed = status != GEN_OK, failures = 0;
    MPI_CALL(MPI_Allreduce(&failed, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    if (failures == 0) return GEN_OK;
    if (failed) {
        if (failures == size_) gen_error_mark_collective();
        return status;
    }
    FAIL(GEN_ERR_PEER, "%d other rank(s) failed", failures);
}

/* GENESIS_FAULT="SITE:RANK[:N]" (RANK may be "all"): does it name this site and rank, and is this
 * the N-th time (default: every time) the site is reached? */
static int fault_hit(const char *site)
{
    static struct { char site[64]; long calls; } seen[16];
    const char *spec = getenv("GENESIS_FAULT");
    if (!spec || !*spec) return 0;
    size_t n = strlen(site);
    if (strncmp(spec, site, n) != 0 || spec[n] != ':') return 0;
    const char *who = spec + n + 1;
    char *end;
    long target = strtol(who, &end, 10), nth = 0;
    int all = !strncmp(who, "all", 3);
    if (all) end = (char *)who + 3;
    if (!all && end == who) return 0;
    if (*end == ':') nth = strtol(end + 1, NULL, 10);
    else if (*end != '\0') return 0;
    if (!all && target != rank_) return 0;
    long calls = 0;
    for (int i = 0; i < 16; i++)
        if (!seen[i].site[0] || !strcmp(seen[i].site, site)) {
            if (!seen[i].site[0]) snprintf(seen[i].site, sizeof seen[i].site, "%s", site);
            calls = ++seen[i].calls;
            break;
        }
    return nth == 0 || calls == nth;
}

int fault_point(const char *site)
{
    if (!fault_hit(site)) return GEN_OK;
    FAIL(GEN_ERR_INJECTED, "injected fault at '%s' (GENESIS_FAULT=%s)", site, getenv("GENESIS_FAULT"));
}

void fault_kill_point(const char *site)
{
    if (fault_hit(site)) raise(SIGKILL);
}

int world_agree_shared(int status)
{
    int mine = status != GEN_OK ? rank_ : size_, first = size_;
    MPI_CALL(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (first == size_) return GEN_OK;
    struct {
        int status;
        char message[2048];
    } shared = {status, ""};
    if (rank_ == first) snprintf(shared.message, sizeof shared.message, "%s", gen_error_message());
    MPI_CALL(MPI_Bcast(&shared, (int)sizeof shared, MPI_BYTE, first, MPI_COMM_WORLD));
    if (rank_ != first) gen_error_set(shared.status, __FILE__, __LINE__, "%s", shared.message);
    gen_error_mark_collective();
    return shared.status;
}
