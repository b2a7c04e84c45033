// check.h: the one assert of the native unit tests (tests/native/test_*.c). CHECK counts, and on
// failure prints the line, the expression and the case being tested (`context`); check_report
// prints the "N passed, M failed" line that tests/native.test.js reads, and gives the exit code.
#ifndef ROPE_CHECK_H
#define ROPE_CHECK_H

#include <stdio.h>

static int passed = 0, failed = 0;
static char context[256];  // the case being tested, printed with a failure

static void check(int ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL line %d: %s  [%s]\n", line, what, context);
    }
}
#define CHECK(cond) check((cond) ? 1 : 0, #cond, __LINE__)

static int check_report(void) {
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
