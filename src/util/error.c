/* The per-thread error record behind CHECK/CALL/FAIL (include/genesis/error.h). */
#include "genesis/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MESSAGE_MAX = 2048, TRACE_MAX = 1024 };

struct error_record {
    int code;
    int collective;
    char message[MESSAGE_MAX];
    char traceback[TRACE_MAX];
};

static _Thread_local struct error_record current;

static void trace_append(const char *file, int line)
{
    size_t used = strlen(current.traceback);
    if (used + 8 >= sizeof current.traceback) return; /* keep the innermost frames */
    snprintf(current.traceback + used, sizeof current.traceback - used, "%s%s:%d",
             used ? " <- " : "", file, line);
}

void gen_vformat(char *out, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(out, size, fmt, ap);
    if (n < 0 || (size_t)n < size) return;
    char mark[64];
    int m = snprintf(mark, sizeof mark, " ... [cut: %d characters in all]", n);
    if (m > 0 && (size_t)m < size) memcpy(out + size - 1 - (size_t)m, mark, (size_t)m + 1);
}

int gen_error_setv(int code, const char *file, int line, const char *fmt, va_list ap)
{
    current.code = code;
    current.collective = 0;
    current.traceback[0] = '\0';
    gen_vformat(current.message, sizeof current.message, fmt, ap);
    trace_append(file, line);
    return code;
}

int gen_error_set(int code, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gen_error_setv(code, file, line, fmt, ap);
    va_end(ap);
    return code;
}

int gen_error_trace(int code, const char *file, int line)
{
    if (current.code == GEN_OK) { /* a status without a recorded message: record one */
        current.code = code;
        snprintf(current.message, sizeof current.message, "error status %d", code);
    }
    trace_append(file, line);
    return code;
}

void gen_error_mark_collective(void) { current.collective = 1; }

int gen_error_collective(int status)
{
    if (status != GEN_OK) current.collective = 1;
    return status;
}
int gen_error_is_collective(void) { return current.collective; }
const char *gen_error_message(void) { return current.message; }
const char *gen_error_traceback(void) { return current.traceback; }
int gen_error_code(void) { return current.code; }

void gen_error_clear(void)
{
    current.code = GEN_OK;
    current.collective = 0;
    current.message[0] = '\0';
    current.traceback[0] = '\0';
}

int gen_exit_code(int status)
{
    if (status == GEN_OK) return 0;
    if (status == GEN_ERR_USAGE) return 2;
    if (status == GEN_CONTINUE) return GEN_EXIT_CONTINUE;
    if (status == GEN_ERR_NONFINITE) return GEN_EXIT_NONFINITE;
    return 1;
}

_Noreturn void gen_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "genesis: internal error: %s:%d: assertion failed: %s\n", file, line, cond);
    abort();
}
