/* Logging: rank 0 prints progress and information on stdout; warnings and errors from any rank go
 * to stderr and carry the rank ("genesis: warning on rank 1: ..."); debug output (-v) from any rank.
 * log_init is called once by the world setup; before it, the rank is taken as 0. */
#ifndef GENESIS_LOG_H
#define GENESIS_LOG_H

void log_init(int rank, int size, int verbose);
int log_verbose(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error seen by this rank alone: "genesis: error on rank R: ...". */
void log_error_rank(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error seen by every rank, printed once by the caller (rank 0): "genesis: error: ...". */
void log_error_all(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
