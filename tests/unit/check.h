/* A minimal test harness: EXPECT records a failure with file:line and a message and goes on;
 * expect_tensor_close compares a tensor with its reference, naming it and its worst element;
 * TEST_MAIN_END prints "N checks, M failed" and returns the exit status ctest reads. */
#ifndef GENESIS_TEST_CHECK_H
#define GENESIS_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_count, check_failures;

#define EXPECT(cond, ...)                                                                      \
    do {                                                                                       \
        check_count++;                                                                         \
        if (!(cond)) {                                                                         \
            check_failures++;                                                                  \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

/* Expects a status-returning call to succeed; prints the recorded error otherwise. */
#define EXPECT_OK(expr)                                                                        \
    do {                                                                                       \
        int expect_status_ = (expr);                                                           \
        EXPECT(expect_status_ == 0, "status %d: %s", expect_status_, gen_error_message());     \
    } while (0)

#define EXPECT_NEAR(a, b, tol, what)                                                           \
    do {                                                                                       \
        double ea_ = (a), eb_ = (b);                                                           \
        EXPECT(fabs(ea_ - eb_) <= (tol), "%s: %.9g vs %.9g (tolerance %g)", (what), ea_, eb_,  \
               (double)(tol));                                                                 \
    } while (0)

/* How far a tensor is from its reference (expect_tensor_close): the element furthest beyond its
 * tolerance (`at`, NaN first), its |got - want| (`max_abs`; with one tolerance for the whole
 * tensor, the largest), the tensor's scale max(max |want|, scale_floor), and the elements that
 * fail. */
typedef struct tensor_diff {
    double max_abs, scale;
    size_t at, failed;
} tensor_diff;

/* Expects |got[i] - want[i]| <= rtol * scale_i + atol for every i (NaN fails), scale_i =
 * elem_scale[i] when elem_scale is given, else the tensor's scale (see tensor_diff). On failure,
 * names the tensor `what`, the worst index with both values, its tolerance, and the count. */
static inline tensor_diff expect_tensor_close_scaled(const char *what, const float *got,
                                                     const double *want, size_t n, double rtol,
                                                     double atol, double scale_floor,
                                                     const double *elem_scale)
{
    tensor_diff r = {0, scale_floor, 0, 0};
    for (size_t i = 0; i < n; i++) r.scale = fmax(r.scale, fabs(want[i]));
    double worst = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        double tol = rtol * (elem_scale ? elem_scale[i] : r.scale) + atol;
        double excess = isnan(e) ? INFINITY : e - tol;
        if (!(e <= tol)) r.failed++;
        if (excess > worst) worst = excess, r.at = i, r.max_abs = e;
    }
    double tol_at = n ? rtol * (elem_scale ? elem_scale[r.at] : r.scale) + atol : 0;
    EXPECT(r.failed == 0, "%s: %zu of %zu elements differ; worst at [%zu]: got %.9g, want %.9g, "
           "|diff| %.3g, tolerance %.3g (scale %.3g)", what, r.failed, n, r.at,
           n ? (double)got[r.at] : 0.0, n ? want[r.at] : 0.0, r.max_abs, tol_at,
           elem_scale && n ? elem_scale[r.at] : r.scale);
    return r;
}

/* expect_tensor_close_scaled with the tensor's scale max |want|: |got - want| <= rtol max |want|
 * + atol everywhere. */
static inline tensor_diff expect_tensor_close(const char *what, const float *got,
                                              const double *want, size_t n, double rtol,
                                              double atol)
{
    return expect_tensor_close_scaled(what, got, want, n, rtol, atol, 0, NULL);
}

/* A fresh folder /tmp/genesis_test_NAME_XXXXXX for a test's files (static storage; exits when it
 * cannot be made); test_path_in(DIR, FILE): "DIR/FILE" in one of 8 rotating buffers;
 * test_tmpdir_done(DIR) removes the folder when every check passed (kept for inspection otherwise). */
static inline const char *test_tmpdir_make(const char *name)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/genesis_test_%s_XXXXXX", name);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    return dir;
}

static inline const char *test_path_in(const char *dir, const char *file)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", dir, file);
    return p;
}

static inline void test_tmpdir_done(const char *dir)
{
    if (check_failures != 0) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

#define TEST_MAIN_END()                                                                        \
    do {                                                                                       \
        printf("%s: %d checks, %d failed\n", __FILE__, check_count, check_failures);           \
        return check_failures ? 1 : 0;                                                         \
    } while (0)

/* The end of an MPI test program's main (needs mpi.h and the rank): sums the failures over the
 * ranks, finalizes MPI; rank 0 prints the count, and every rank returns the status. */
#define MPI_TEST_MAIN_END(rank)                                                                \
    do {                                                                                       \
        int mpi_failures_ = 0;                                                                 \
        MPI_Allreduce(&check_failures, &mpi_failures_, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);   \
        check_failures = mpi_failures_;                                                        \
        MPI_Finalize();                                                                        \
        if ((rank) != 0) return check_failures ? 1 : 0;                                        \
        TEST_MAIN_END();                                                                       \
    } while (0)

#endif
