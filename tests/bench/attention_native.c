// attention_native.c: the native speed baseline of rope_attention_forward and rope_mha_forward (the
// same C as the wasm module, built with -O3 -march=native by ./build.sh), for
// tests/bench/attention.bench.js.
//
//   bench_attention_native attention B,H,KVH,SQ,SK,D CAUSAL ROPE_DIM SAMPLES [Q.f32 K.f32 V.f32 OUT.f32]
//     q: [B, H, SQ, D], k and v: [B, KVH, SK, D] float32 (layout bhsd), scale 1/sqrt(D). ROPE_DIM 0:
//     no RoPE; otherwise RoPE (half pairing, base 10000) on the first ROPE_DIM features of q and k
//     inside the kernel, positions from 0 (offset 0).
//   bench_attention_native mha SEQ,BATCH,DMODEL,HEADS CAUSAL ROPE_DIM SAMPLES [X.f32 W.f32 Y.f32]
//     The seed's RotaryPEMultiHeadAttention: x [SEQ, BATCH, DMODEL]; W holds, one after the other,
//     the query weight [DMODEL, DMODEL] and bias [DMODEL], then key, value and output the same
//     (PyTorch nn.Linear layout). ROPE_DIM: int(d_k * rope_percentage), 0 = no RoPE.
//
// It warms up (>= 0.1 s, at least one call), then times SAMPLES samples with clock_gettime; a
// sample is `reps` back-to-back calls (chosen in the warm-up so that a sample lasts >= 1 ms).
// Prints one JSON line:
//   {"mode":..., "shape":"...", "causal":..., "rope_dim":..., "reps":..., "samples_ms":[...],
//    "median_ms":..., "min_ms":...}
// (times per call; no median when SAMPLES is 0). With the files: the inputs are read from them
// (raw little-endian float32) instead of made up, and the output of the first call is written to
// the last one, so that the caller can check it against its own.
#define _POSIX_C_SOURCE 199309L
#include "attention.h"
#include "mha.h"
#include "rope.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_native.h"

#define WARMUP_MIN_SECONDS 0.1
#define SAMPLE_MIN_SECONDS 0.001
#define ROPE_BASE 10000.0

static int fail(const char *message, const char *detail) {
    fprintf(stderr, "bench_attention_native: %s%s\n", message, detail ? detail : "");
    return 1;
}

static int write_floats(const char *path, const float *x, size_t n) {
    FILE *file = fopen(path, "wb");
    if (!file) return 0;
    size_t put = fwrite(x, sizeof(float), n, file);
    return (fclose(file) == 0) & (put == n);
}

// Values in [-1, 1) times `scale` from a fixed LCG: no denormals, and the same run to run.
static void fill(float *x, size_t n, uint32_t *state, float scale) {
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = ((float)(*state >> 8) / 8388608.0f - 1.0f) * scale;
    }
}

// One benchmarked call: what it needs, and where its output is.
typedef struct {
    int mha;
    int b, h, kvh, sq, sk, d;     // attention
    int seq, batch, d_model;      // mha (h: heads)
    int causal;
    float *q, *k, *v, *x, *out;
    size_t out_count;
    mha_weights w;
    rope_embedding *rope;
} bench_call;

static int run_once(bench_call *c) {
    if (c->mha) {
        return rope_mha_forward(c->x, c->out, c->seq, c->batch, c->d_model, c->h, &c->w, c->rope, c->causal, NULL, 0);
    }
    return rope_attention_forward(c->q, c->k, c->v, c->out, NULL, c->b, c->h, c->kvh, c->sq, c->sk, c->d,
                                  ROPE_LAYOUT_BHSD, c->causal, 1.0f / sqrtf((float)c->d), c->rope, 0);
}

int main(int argc, char **argv) {
    const char *usage = "usage: bench_attention_native attention B,H,KVH,SQ,SK,D CAUSAL ROPE_DIM SAMPLES "
                        "[Q.f32 K.f32 V.f32 OUT.f32]\n"
                        "       bench_attention_native mha SEQ,BATCH,DMODEL,HEADS CAUSAL ROPE_DIM SAMPLES "
                        "[X.f32 W.f32 Y.f32]\n";
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    bench_call c;
    memset(&c, 0, sizeof(c));
    c.mha = strcmp(argv[1], "mha") == 0;
    if (!c.mha && strcmp(argv[1], "attention") != 0) return fail("mode must be attention or mha, got ", argv[1]);
    int files = c.mha ? 3 : 4;
    if (argc != 6 && argc != 6 + files) {
        fputs(usage, stderr);
        return 2;
    }
    c.causal = atoi(argv[3]);
    int rope_dim = atoi(argv[4]);
    int samples = atoi(argv[5]);
    if (samples < 0) return fail("SAMPLES must be >= 0, got ", argv[5]);
    if (rope_dim < 0) return fail("ROPE_DIM must be >= 0, got ", argv[4]);
    const char *const *paths = argc > 6 ? (const char *const *)argv + 6 : NULL;
    uint32_t state = 12345;
    float *weights = NULL;

    if (c.mha) {
        if (sscanf(argv[2], "%d,%d,%d,%d", &c.seq, &c.batch, &c.d_model, &c.h) != 4 || c.seq < 1 || c.batch < 1 ||
            c.d_model < 1 || c.h < 1 || c.d_model % c.h) {
            return fail("shape must be SEQ,BATCH,DMODEL,HEADS (positive, DMODEL a multiple of HEADS), got ", argv[2]);
        }
        size_t nx = (size_t)c.seq * c.batch * c.d_model, layer = (size_t)c.d_model * c.d_model + c.d_model;
        c.x = malloc(nx * sizeof(float));
        c.out = malloc(nx * sizeof(float));
        weights = malloc(4 * layer * sizeof(float));
        if (!c.x || !c.out || !weights) return fail("out of memory", NULL);
        c.out_count = nx;
        if (paths) {
            if (!read_floats(paths[0], c.x, nx)) return fail("cannot read ", paths[0]);
            if (!read_floats(paths[1], weights, 4 * layer)) return fail("cannot read ", paths[1]);
        } else {
            fill(c.x, nx, &state, 1.0f);
            fill(weights, 4 * layer, &state, 1.0f / sqrtf((float)c.d_model));
        }
        const float *at = weights;
        const float **slots[8] = {&c.w.query_weight, &c.w.query_bias, &c.w.key_weight, &c.w.key_bias,
                                  &c.w.value_weight, &c.w.value_bias, &c.w.output_weight, &c.w.output_bias};
        for (int i = 0; i < 8; i++) {
            *slots[i] = at;
            at += i % 2 == 0 ? (size_t)c.d_model * c.d_model : (size_t)c.d_model;
        }
    } else {
        if (sscanf(argv[2], "%d,%d,%d,%d,%d,%d", &c.b, &c.h, &c.kvh, &c.sq, &c.sk, &c.d) != 6 || c.b < 1 || c.h < 1 ||
            c.kvh < 1 || c.h % c.kvh || c.sq < 1 || c.sk < 1 || c.d < 1) {
            return fail("shape must be B,H,KVH,SQ,SK,D (positive, H a multiple of KVH), got ", argv[2]);
        }
        size_t nq = (size_t)c.b * c.h * c.sq * c.d, nkv = (size_t)c.b * c.kvh * c.sk * c.d;
        c.q = malloc(nq * sizeof(float));
        c.k = malloc(nkv * sizeof(float));
        c.v = malloc(nkv * sizeof(float));
        c.out = malloc(nq * sizeof(float));
        if (!c.q || !c.k || !c.v || !c.out) return fail("out of memory", NULL);
        c.out_count = nq;
        if (paths) {
            if (!read_floats(paths[0], c.q, nq)) return fail("cannot read ", paths[0]);
            if (!read_floats(paths[1], c.k, nkv)) return fail("cannot read ", paths[1]);
            if (!read_floats(paths[2], c.v, nkv)) return fail("cannot read ", paths[2]);
        } else {
            fill(c.q, nq, &state, 1.0f);
            fill(c.k, nkv, &state, 1.0f);
            fill(c.v, nkv, &state, 1.0f);
        }
    }
    if (rope_dim > 0) {
        c.rope = rope_create(rope_dim, ROPE_BASE, ROPE_PAIRING_HALF);
        if (!c.rope) return fail("rope_create failed (ROPE_DIM must be even)", NULL);
    }
    double *times = malloc((size_t)(samples > 0 ? samples : 1) * sizeof(double));
    if (!times) return fail("out of memory", NULL);

    // The first call touches every page of the output and the scratch (and fills the RoPE table):
    // part of the warm-up.
    int calls = 0;
    double start = now_seconds(), elapsed;
    do {
        int status = run_once(&c);
        if (status != 0) {
            fprintf(stderr, "bench_attention_native: %s returned %d\n", c.mha ? "rope_mha_forward" : "rope_attention_forward",
                    status);
            return 1;
        }
        if (calls == 0 && paths && !write_floats(paths[files - 1], c.out, c.out_count)) {
            return fail("cannot write ", paths[files - 1]);
        }
        calls++;
        elapsed = now_seconds() - start;
    } while (samples > 0 && elapsed < WARMUP_MIN_SECONDS);
    int reps = (int)(SAMPLE_MIN_SECONDS / (elapsed / calls)) + 1;

    for (int i = 0; i < samples; i++) {
        double t0 = now_seconds();
        for (int r = 0; r < reps; r++) run_once(&c);
        times[i] = (now_seconds() - t0) * 1e3 / reps;
    }

    printf("{\"mode\":\"%s\",\"shape\":\"%s\",\"causal\":%d,\"rope_dim\":%d,\"reps\":%d,\"samples_ms\":[",
           c.mha ? "mha" : "attention", argv[2], c.causal, rope_dim, reps);
    for (int i = 0; i < samples; i++) printf("%s%.6f", i ? "," : "", times[i]);
    printf("]");
    if (samples > 0) {
        qsort(times, (size_t)samples, sizeof(double), compare_doubles);
        // The median of an even count: the mean of the middle two.
        double median = (times[(samples - 1) / 2] + times[samples / 2]) / 2;
        printf(",\"median_ms\":%.6f,\"min_ms\":%.6f", median, times[0]);
    }
    printf("}\n");

    rope_destroy(c.rope);
    free(c.q);
    free(c.k);
    free(c.v);
    free(c.x);
    free(c.out);
    free(weights);
    free(times);
    return 0;
}
