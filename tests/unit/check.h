/* A minimal test harness: EXPECT records a failure with file:line and a message and goes on;
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

#define TEST_MAIN_END()                                                                        \
    do {                                                                                       \
        printf("%s: %d checks, %d failed\n", __FILE__, check_count, check_failures);           \
        return check_failures ? 1 : 0;                                                         \
    } while (0)

#endif
