/* Errors as return codes (STYLE.md): every fallible function returns an int status, 0 = success.
 *
 *   CHECK(cond, code, fmt, ...)  user/data check, always compiled in: on failure records
 *                                file:line and the message, and returns `code` from the caller.
 *   CALL(expr)                   evaluates a status-returning call; on failure appends this
 *                                file:line to the traceback and returns the status.
 *   FAIL(code, fmt, ...)         records an error unconditionally and returns `code`.
 *
 * In a function that owns resources, the goto-cleanup forms keep one exit path: they need an
 * `int status = GEN_OK;` and a `cleanup:` label that frees what was acquired and returns status.
 *   CHECK_GOTO(cond, code, fmt, ...)  as CHECK, but sets status and jumps to cleanup
 *   CALL_GOTO(expr)                   as CALL, but sets status and jumps to cleanup
 *   CHECK_ALLOC_GOTO(ptr, bytes)      as CHECK_ALLOC, but sets status and jumps to cleanup
 *
 *   DEBUG_ASSERT(cond)           an internal invariant of a hot loop (PETSc's PetscAssert idea):
 *                                compiled in only with -DGENESIS_DEBUG, where a failure prints
 *                                file:line and aborts. User and data errors are never asserted.
 *
 * The error record is per thread. A status is one of enum gen_status; the process exit status of
 * a failed subcommand is derived from it (gen_exit_code).
 */
#ifndef GENESIS_ERROR_H
#define GENESIS_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum gen_status {
    GEN_OK = 0,
    GEN_ERR_USAGE = 2,     /* bad command line or configuration: exit status 2 */
    GEN_ERR_IO = 3,        /* a file could not be read or written */
    GEN_ERR_DATA = 4,      /* input data is malformed or unsuitable */
    GEN_ERR_NOMEM = 5,     /* allocation failed */
    GEN_ERR_MPI = 6,       /* an MPI call failed */
    GEN_ERR_INTERNAL = 7,  /* a broken invariant: a bug */
    GEN_ERR_INJECTED = 8,  /* test-only fault injection (GENESIS_FAULT) */
    GEN_ERR_PEER = 9,      /* another rank failed; this rank is healthy (world_agree) */
    GEN_CONTINUE = 10,     /* not an error: the run checkpointed and asks to be continued
                            * (a signal or the deadline); exit status 75 (GEN_EXIT_CONTINUE) */
    GEN_ERR_NONFINITE = 11,/* training met a non-finite loss, gradient, input or weight and stopped
                            * (no checkpoint of it written); exit status 65 (GEN_EXIT_NONFINITE) */
};

/* Records a new error (clears any previous one); returns code. */
int gen_error_set(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int gen_error_setv(int code, const char *file, int line, const char *fmt, va_list ap);
/* vsnprintf into out[size] that says so when the text did not fit: its end is replaced by
 * " ... [cut: N characters in all]" (error messages and log lines with over-long paths). */
void gen_vformat(char *out, size_t size, const char *fmt, va_list ap);
/* Appends a traceback frame to the current error; returns code. */
int gen_error_trace(int code, const char *file, int line);
/* Marks the current error as seen identically by every rank (a collective error): the top level
 * then ends all ranks cleanly instead of aborting the job. */
void gen_error_mark_collective(void);
/* Marks the current error collective when status is an error; returns status. */
int gen_error_collective(int status);
int gen_error_is_collective(void);
/* The current error's message (without traceback); "" when none. */
const char *gen_error_message(void);
/* The traceback, one "file:line" per frame, innermost first, separated by " <- ". */
const char *gen_error_traceback(void);
int gen_error_code(void);
void gen_error_clear(void);
#define GEN_EXIT_CONTINUE 75 /* "checkpointed, continue me": job scripts requeue/resubmit */
#define GEN_EXIT_NONFINITE 65 /* training diverged (non-finite numbers): job scripts do not resubmit */

/* Process exit status for a status: 0; 2 for usage errors; 75 for GEN_CONTINUE; 65 for
 * GEN_ERR_NONFINITE; 1 otherwise. */
int gen_exit_code(int status);

#define FAIL(code, ...) return gen_error_set((code), __FILE__, __LINE__, __VA_ARGS__)

/* For errors every rank finds identically (e.g. from the same command line). */
#define FAIL_ALL(code, ...) return gen_error_collective(gen_error_set((code), __FILE__, __LINE__, __VA_ARGS__))

#define CHECK(cond, code, ...)                                                                 \
    do {                                                                                       \
        if (!(cond)) return gen_error_set((code), __FILE__, __LINE__, __VA_ARGS__);            \
    } while (0)

#define CALL(expr)                                                                             \
    do {                                                                                       \
        int call_status_ = (expr);                                                             \
        if (call_status_ != GEN_OK) return gen_error_trace(call_status_, __FILE__, __LINE__);  \
    } while (0)

/* Checked allocation: on failure records GEN_ERR_NOMEM with the byte count and returns it. */
#define CHECK_ALLOC(ptr, bytes)                                                                \
    CHECK((ptr) != NULL, GEN_ERR_NOMEM, "out of memory allocating %zu bytes", (size_t)(bytes))

#define CHECK_GOTO(cond, code, ...)                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            status = gen_error_set((code), __FILE__, __LINE__, __VA_ARGS__);                   \
            goto cleanup;                                                                      \
        }                                                                                      \
    } while (0)

#define CALL_GOTO(expr)                                                                        \
    do {                                                                                       \
        int call_status_ = (expr);                                                             \
        if (call_status_ != GEN_OK) {                                                          \
            status = gen_error_trace(call_status_, __FILE__, __LINE__);                        \
            goto cleanup;                                                                      \
        }                                                                                      \
    } while (0)

#define CHECK_ALLOC_GOTO(ptr, bytes)                                                           \
    CHECK_GOTO((ptr) != NULL, GEN_ERR_NOMEM, "out of memory allocating %zu bytes", (size_t)(bytes))

/* Prints "genesis: internal error: file:line: assertion failed: cond" and aborts. */
_Noreturn void gen_assert_fail(const char *cond, const char *file, int line);
#ifdef GENESIS_DEBUG
#define DEBUG_ASSERT(cond) ((cond) ? (void)0 : gen_assert_fail(#cond, __FILE__, __LINE__))
#else
#define DEBUG_ASSERT(cond) ((void)0)
#endif

#endif
