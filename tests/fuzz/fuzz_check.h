/*
 * fuzz_check.h -- CHECK(cond) for the harnesses' own promises.
 *
 * run.sh runs the harnesses with -close_fd_mask=3 (the code under test
 * writes to stdout/stderr), so a broken promise is reported through the
 * sanitizer's report descriptor, which libFuzzer keeps open, and then
 * aborts (libFuzzer saves the input).
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <sanitizer/common_interface_defs.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                                                             \
    do {                                                                                                     \
        if (!(c)) {                                                                                          \
            char fuzz_msg_[400];                                                                             \
            snprintf(fuzz_msg_, sizeof fuzz_msg_, "broken promise: %s (%s:%d)", #c, __FILE__, __LINE__);     \
            __sanitizer_report_error_summary(fuzz_msg_);                                                     \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

/* Reports a formatted failure the same way and aborts. */
#define FUZZ_FAIL(...)                                                                                       \
    do {                                                                                                     \
        char fuzz_msg_[1200];                                                                                \
        snprintf(fuzz_msg_, sizeof fuzz_msg_, __VA_ARGS__);                                                  \
        __sanitizer_report_error_summary(fuzz_msg_);                                                         \
        abort();                                                                                             \
    } while (0)

#endif /* FUZZ_CHECK_H */
