// attention_native.c: the native speed baseline of rope_attention_forward (the same C as the wasm
// module, built with -O3 -march=native), for tests/bench/attention_kernel.bench.js. Built by hand:
//
//   cc -std=c11 -Wall -Wextra -Werror -O3 -march=native -Ic c/rope.c c/rope_freq.c c/rope_kernel.c
//      c/rope_table.c c/attention.c tests/bench/attention_native.c -lm -o build/bench_attention_native
//
//   bench_attention_native B,H,KVH,SQ,SK,D CAUSAL SAMPLES [Q.f32 K.f32 V.f32 OUT.f32]
//
// q: [B, H, SQ, D], k and v: [B, KVH, SK, D] float32 (layout bhsd), scale 1/sqrt(D), no RoPE. It
// warms up, then times SAMPLES samples with clock_gettime; a sample is `reps` back-to-back calls
// (chosen in the warm-up so that a sample lasts >= 1 ms). Prints one JSON line:
//   {"shape":[...], "causal":..., "reps":..., "samples_ms":[...], "median_ms":..., "min_ms":...}
// (times per call; no median when SAMPLES is 0). With the four files: q, k, v are read from them
// (raw little-endian float32) instead of made up, and the output of the first call is written to
// OUT, so that the caller can check it against its own.
#define _POSIX_C_SOURCE 199309L
#include "attention.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WARMUP_MIN_CALLS 2
#define WARMUP_MIN_SECONDS 0.2
#define SAMPLE_MIN_SECONDS 0.001

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const char *message, const char *detail) {
    fprintf(stderr, "bench_attention_native: %s%s\n", message, detail ? detail : "");
    return 1;
}

static int read_floats(const char *path, float *x, size_t n) {
    FILE *file = fopen(path, "rb");
    if (!file) return 0;
    size_t got = fread(x, sizeof(float), n, file);
    fclose(file);
    return got == n;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 8) {
        fprintf(stderr, "usage: %s B,H,KVH,SQ,SK,D CAUSAL SAMPLES [Q.f32 K.f32 V.f32 OUT.f32]\n", argv[0]);
        return 2;
    }
    int b, h, kvh, sq, sk, d;
    if (sscanf(argv[1], "%d,%d,%d,%d,%d,%d", &b, &h, &kvh, &sq, &sk, &d) != 6 || b < 1 || h < 1 || kvh < 1 ||
        h % kvh || sq < 1 || sk < 1 || d < 1) {
        return fail("shape must be B,H,KVH,SQ,SK,D (positive, H a multiple of KVH), got ", argv[1]);
    }
    int causal = atoi(argv[2]);
    int samples = atoi(argv[3]);
    if (samples < 0) return fail("SAMPLES must be >= 0, got ", argv[3]);

    size_t nq = (size_t)b * h * sq * d, nkv = (size_t)b * kvh * sk * d;
    float *q = malloc(nq * sizeof(float)), *k = malloc(nkv * sizeof(float)), *v = malloc(nkv * sizeof(float));
    float *out = malloc(nq * sizeof(float));
    double *times = malloc((size_t)(samples > 0 ? samples : 1) * sizeof(double));
    if (!q || !k || !v || !out || !times) return fail("out of memory", NULL);
    if (argc == 8) {
        if (!read_floats(argv[4], q, nq)) return fail("cannot read ", argv[4]);
        if (!read_floats(argv[5], k, nkv)) return fail("cannot read ", argv[5]);
        if (!read_floats(argv[6], v, nkv)) return fail("cannot read ", argv[6]);
    } else {
        // Values in [-1, 1) from a fixed LCG: no denormals, and the same run to run.
        uint32_t state = 12345;
        float *inputs[3] = {q, k, v};
        size_t counts[3] = {nq, nkv, nkv};
        for (int t = 0; t < 3; t++) {
            for (size_t i = 0; i < counts[t]; i++) {
                state = state * 1664525u + 1013904223u;
                inputs[t][i] = (float)(state >> 8) / 8388608.0f - 1.0f;
            }
        }
    }
    float scale = 1.0f / sqrtf((float)d);

    // The first call touches every page of the output and the scratch: part of the warm-up.
    int calls = 0;
    double start = now_seconds(), elapsed;
    do {
        int status = rope_attention_forward(q, k, v, out, NULL, b, h, kvh, sq, sk, d, ROPE_LAYOUT_BHSD, causal, scale,
                                            NULL, 0);
        if (status != 0) return fail("rope_attention_forward failed", NULL);
        if (calls == 0 && argc == 8) {
            FILE *file = fopen(argv[7], "wb");
            if (!file || fwrite(out, sizeof(float), nq, file) != nq || fclose(file) != 0) {
                return fail("cannot write ", argv[7]);
            }
        }
        calls++;
        elapsed = now_seconds() - start;
    } while (samples > 0 && (calls < WARMUP_MIN_CALLS || elapsed < WARMUP_MIN_SECONDS));
    int reps = (int)(SAMPLE_MIN_SECONDS / (elapsed / calls)) + 1;

    for (int i = 0; i < samples; i++) {
        double t0 = now_seconds();
        for (int r = 0; r < reps; r++) {
            rope_attention_forward(q, k, v, out, NULL, b, h, kvh, sq, sk, d, ROPE_LAYOUT_BHSD, causal, scale, NULL, 0);
        }
        times[i] = (now_seconds() - t0) * 1e3 / reps;
    }

    printf("{\"shape\":[%d,%d,%d,%d,%d,%d],\"causal\":%d,\"reps\":%d,\"samples_ms\":[", b, h, kvh, sq, sk, d, causal, reps);
    for (int i = 0; i < samples; i++) printf("%s%.6f", i ? "," : "", times[i]);
    printf("]");
    if (samples > 0) {
        qsort(times, (size_t)samples, sizeof(double), compare_doubles);
        // The median of an even count: the mean of the middle two.
        double median = (times[(samples - 1) / 2] + times[samples / 2]) / 2;
        printf(",\"median_ms\":%.6f,\"min_ms\":%.6f", median, times[0]);
    }
    printf("}\n");

    free(q);
    free(k);
    free(v);
    free(out);
    free(times);
    return 0;
}
