// gemm_native.c: the native speed baseline of gemm and gemm_linear (the same C as the wasm
// module, built with -O3 -march=native), for tests/bench/gemm.bench.js.
//
//   bench_gemm_native OP M,N,K SAMPLES [A.f32 B.f32 C.f32]
//
// OP nn | nt | tn | tt: C[M, N] = op(A) op(B) with alpha 1, beta 0 (A stored [M, K] or, for t,
// [K, M]; B stored [K, N] or, for t, [N, K]; no padding). OP linear: C = gemm_linear(A [M, K],
// B [N, K], bias [N]) with bias[j] = (j % 7) / 8 - 3/8, exact in float, as the JS side makes it.
// It warms up, then times SAMPLES samples with clock_gettime; a sample is `reps` back-to-back
// calls, chosen in the warm-up so that a sample lasts >= 1 ms. Prints one JSON line:
//   {"op":..., "shape":[M,N,K], "reps":..., "samples_ms":[...], "median_ms":..., "min_ms":...}
//   (times are per call; no median when SAMPLES is 0)
// With A, B and C: the operands are read from A and B (raw little-endian float32) instead of made
// up, and the output of the first call is written to C, so the caller can check it.
#define _POSIX_C_SOURCE 199309L
#include "gemm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_native.h"

#define WARMUP_MIN_CALLS 3
#define WARMUP_MIN_SECONDS 0.1
#define SAMPLE_MIN_SECONDS 0.001

static int fail(const char *message, const char *detail) {
    fprintf(stderr, "bench_gemm_native: %s%s\n", message, detail ? detail : "");
    return 1;
}

// The operation under test, on operands stored without padding.
typedef struct {
    int linear;            // gemm_linear, else gemm
    int trans_a, trans_b;  // gemm only
    int m, n, k;
    const float *a, *b, *bias;
    float *c;
} gemm_call;

static int run(const gemm_call *g) {
    if (g->linear) return gemm_linear(g->a, g->b, g->bias, g->c, g->m, g->k, g->n);
    int lda = g->trans_a ? g->m : g->k, ldb = g->trans_b ? g->k : g->n;
    return gemm(g->trans_a, g->trans_b, g->m, g->n, g->k, 1.0f, g->a, lda, g->b, ldb, 0.0f, g->c, g->n);
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 7) {
        fprintf(stderr, "usage: %s nn|nt|tn|tt|linear M,N,K SAMPLES [A.f32 B.f32 C.f32]\n", argv[0]);
        return 2;
    }
    gemm_call g = {0};
    if (strcmp(argv[1], "linear") == 0) {
        g.linear = 1;
    } else if (strlen(argv[1]) == 2 && strchr("nt", argv[1][0]) && strchr("nt", argv[1][1])) {
        g.trans_a = argv[1][0] == 't';
        g.trans_b = argv[1][1] == 't';
    } else {
        return fail("OP must be nn, nt, tn, tt or linear, got ", argv[1]);
    }
    if (sscanf(argv[2], "%d,%d,%d", &g.m, &g.n, &g.k) != 3 || g.m < 1 || g.n < 1 || g.k < 1) {
        return fail("shape must be M,N,K (positive), got ", argv[2]);
    }
    int samples = atoi(argv[3]);
    if (samples < 0) return fail("SAMPLES must be >= 0, got ", argv[3]);

    size_t a_count = (size_t)g.m * g.k, b_count = (size_t)g.k * g.n, c_count = (size_t)g.m * g.n;
    float *a = malloc(a_count * sizeof(float)), *b = malloc(b_count * sizeof(float));
    float *bias = malloc((size_t)g.n * sizeof(float)), *c = malloc(c_count * sizeof(float));
    double *times = malloc((size_t)(samples > 0 ? samples : 1) * sizeof(double));
    if (!a || !b || !bias || !c || !times) return fail("out of memory", NULL);
    for (int j = 0; j < g.n; j++) bias[j] = (float)(j % 7) / 8.0f - 0.375f;
    if (argc == 7) {
        if (!read_floats(argv[4], a, a_count)) return fail("cannot read ", argv[4]);
        if (!read_floats(argv[5], b, b_count)) return fail("cannot read ", argv[5]);
    } else {
        // Values in [-1, 1) from a fixed LCG: no denormals, and the same run to run.
        uint32_t state = 12345;
        for (size_t i = 0; i < a_count; i++) {
            state = state * 1664525u + 1013904223u;
            a[i] = (float)(state >> 8) / 8388608.0f - 1.0f;
        }
        for (size_t i = 0; i < b_count; i++) {
            state = state * 1664525u + 1013904223u;
            b[i] = (float)(state >> 8) / 8388608.0f - 1.0f;
        }
    }
    g.a = a;
    g.b = b;
    g.bias = bias;
    g.c = c;

    int calls = 0;
    double start = now_seconds(), elapsed;
    do {
        if (run(&g) != 0) return fail("gemm failed", NULL);
        if (calls == 0 && argc == 7) {
            FILE *out = fopen(argv[6], "wb");
            if (!out || fwrite(c, sizeof(float), c_count, out) != c_count || fclose(out) != 0) {
                return fail("cannot write ", argv[6]);
            }
        }
        calls++;
        elapsed = now_seconds() - start;
    } while (calls < WARMUP_MIN_CALLS || elapsed < WARMUP_MIN_SECONDS);
    int reps = (int)(SAMPLE_MIN_SECONDS / (elapsed / calls)) + 1;

    for (int i = 0; i < samples; i++) {
        double t0 = now_seconds();
        for (int r = 0; r < reps; r++) run(&g);
        times[i] = (now_seconds() - t0) * 1e3 / reps;
    }

    printf("{\"op\":\"%s\",\"shape\":[%d,%d,%d],\"reps\":%d,\"samples_ms\":[", argv[1], g.m, g.n, g.k, reps);
    for (int i = 0; i < samples; i++) printf("%s%.6f", i ? "," : "", times[i]);
    printf("]");
    if (samples > 0) {
        qsort(times, (size_t)samples, sizeof(double), compare_doubles);
        // The median of an even count: the mean of the middle two.
        double median = (times[(samples - 1) / 2] + times[samples / 2]) / 2;
        printf(",\"median_ms\":%.6f,\"min_ms\":%.6f", median, times[0]);
    }
    printf("}\n");

    free(a);
    free(b);
    free(bias);
    free(c);
    free(times);
    return 0;
}
