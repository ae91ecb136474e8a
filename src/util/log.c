/* Logging (include/genesis/log.h). One owner of the rank and verbosity: this file. */
#include "genesis/log.h"

#include "genesis/error.h"

#include <stdarg.h>
#include <stdio.h>

static int log_rank = 0, log_size = 1, log_level_verbose = 0;

void log_init(int rank, int size, int verbose)
{
    log_rank = rank;
    log_size = size;
    log_level_verbose = verbose;
}

int log_verbose(void) { return log_level_verbose; }

static void emit(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
    /* One fprintf per line keeps lines of different ranks from interleaving mid-line. */
    char line[4096];
    gen_vformat(line, sizeof line, fmt, ap);
    fprintf(f, "%s%s\n", prefix, line);
    fflush(f);
}

void log_info(const char *fmt, ...)
{
    if (log_rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    emit(stdout, "", fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (!log_level_verbose) return;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "[debug rank %d/%d] ", log_rank, log_size);
    va_list ap;
    va_start(ap, fmt);
    emit(stderr, prefix, fmt, ap);
    va_end(ap);
}

/* "genesis: <what> on rank R: <message>" on stderr. */
static void emit_on_rank(const char *what, const char *fmt, va_list ap)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "genesis: %s on rank %d: ", what, log_rank);
    emit(stderr, prefix, fmt, ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_on_rank("warning", fmt, ap);
    va_end(ap);
}

void log_error_rank(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_on_rank("error", fmt, ap);
    va_end(ap);
}

void log_error_all(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(stderr, "genesis: error: ", fmt, ap);
    va_end(ap);
}
