// rope_native.c: the native speed baseline of rope_apply (the same C as the wasm module, built
// with -O3 -march=native), for tests/bench/rope.bench.js.
//
//   bench_rope_native PAIRING B,H,S,D SAMPLES OFFSET [IN.f32 OUT.f32]
//
// x: [B, H, S, D] float32 (layout bhsd), rotary dim D, base 10000, positions OFFSET + s. It warms
// up, then times SAMPLES samples of rope_apply in place with clock_gettime. A sample is `reps`
// back-to-back calls (reps is chosen in the warm-up so that a sample lasts >= 1 ms: a decode
// call takes about a microsecond, too short to time alone). Prints one JSON line:
//   {"pairing":..., "shape":[...], "offset":..., "reps":..., "samples_ms":[...], "median_ms":...,
//    "min_ms":...}   (times are per call; samples in the order taken; no median when SAMPLES is 0)
// With IN and OUT: x is read from IN (raw little-endian float32) instead of made up, and the
// output of the first call is written to OUT, so the caller can check it against its own.
#define _POSIX_C_SOURCE 199309L
#include "rope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_native.h"

#define WARMUP_MIN_CALLS 3
#define WARMUP_MIN_SECONDS 0.1
#define SAMPLE_MIN_SECONDS 0.001

static int fail(const char *message, const char *detail) {
    fprintf(stderr, "bench_rope_native: %s%s\n", message, detail ? detail : "");
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: %s half|interleaved B,H,S,D SAMPLES OFFSET [IN.f32 OUT.f32]\n", argv[0]);
        return 2;
    }
    int pairing;
    if (strcmp(argv[1], "half") == 0) {
        pairing = ROPE_PAIRING_HALF;
    } else if (strcmp(argv[1], "interleaved") == 0) {
        pairing = ROPE_PAIRING_INTERLEAVED;
    } else {
        return fail("pairing must be half or interleaved, got ", argv[1]);
    }
    int b, h, s, d;
    if (sscanf(argv[2], "%d,%d,%d,%d", &b, &h, &s, &d) != 4 || b < 1 || h < 1 || s < 1 || d < 2 || d % 2) {
        return fail("shape must be B,H,S,D (positive, D even), got ", argv[2]);
    }
    int samples = atoi(argv[3]);
    int offset = atoi(argv[4]);
    if (samples < 0) return fail("SAMPLES must be >= 0, got ", argv[3]);

    size_t count = (size_t)b * h * s * d;
    float *x = malloc(count * sizeof(float));
    double *times = malloc((size_t)(samples > 0 ? samples : 1) * sizeof(double));
    rope_embedding *rope = rope_create(d, 10000.0, pairing);
    if (!x || !times || !rope) return fail("out of memory", NULL);

    if (argc == 7) {
        FILE *in = fopen(argv[5], "rb");
        if (!in || fread(x, sizeof(float), count, in) != count) return fail("cannot read ", argv[5]);
        fclose(in);
    } else {
        // Values in [-1, 1) from a fixed LCG: no denormals, and the same run to run.
        uint32_t state = 12345;
        for (size_t i = 0; i < count; i++) {
            state = state * 1664525u + 1013904223u;
            x[i] = (float)(state >> 8) / 8388608.0f - 1.0f;
        }
    }

    // The first call builds the cos/sin table and touches every page of x: part of the warm-up.
    int calls = 0;
    double start = now_seconds(), elapsed;
    do {
        int status = rope_apply(rope, x, x, ROPE_LAYOUT_BHSD, b, h, s, d, offset, NULL, 0, 0);
        if (status != 0) return fail("rope_apply failed", NULL);
        if (calls == 0 && argc == 7) {
            FILE *out = fopen(argv[6], "wb");
            if (!out || fwrite(x, sizeof(float), count, out) != count || fclose(out) != 0) {
                return fail("cannot write ", argv[6]);
            }
        }
        calls++;
        elapsed = now_seconds() - start;
    } while (calls < WARMUP_MIN_CALLS || elapsed < WARMUP_MIN_SECONDS);
    int reps = (int)(SAMPLE_MIN_SECONDS / (elapsed / calls)) + 1;

    for (int i = 0; i < samples; i++) {
        double t0 = now_seconds();
        for (int r = 0; r < reps; r++) {
            rope_apply(rope, x, x, ROPE_LAYOUT_BHSD, b, h, s, d, offset, NULL, 0, 0);
        }
        times[i] = (now_seconds() - t0) * 1e3 / reps;
    }

    printf("{\"pairing\":\"%s\",\"shape\":[%d,%d,%d,%d],\"offset\":%d,\"reps\":%d,\"samples_ms\":[",
           argv[1], b, h, s, d, offset, reps);
    for (int i = 0; i < samples; i++) printf("%s%.6f", i ? "," : "", times[i]);
    printf("]");
    if (samples > 0) {
        qsort(times, (size_t)samples, sizeof(double), compare_doubles);
        // The median of an even count: the mean of the middle two.
        double median = (times[(samples - 1) / 2] + times[samples / 2]) / 2;
        printf(",\"median_ms\":%.6f,\"min_ms\":%.6f", median, times[0]);
    }
    printf("}\n");

    rope_destroy(rope);
    free(times);
    free(x);
    return 0;
}
