// bench_native.h: what the native benchmark binaries (tests/bench/*_native.c) share: a monotonic
// clock, a comparison for qsort (medians), and reading raw little-endian float32 inputs.
#ifndef ROPE_BENCH_NATIVE_H
#define ROPE_BENCH_NATIVE_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Reads exactly count floats from path; 0 on any failure.
static inline int read_floats(const char *path, float *x, size_t count) {
    FILE *in = fopen(path, "rb");
    int ok = in && fread(x, sizeof(float), count, in) == count;
    if (in) fclose(in);
    return ok;
}

#endif
