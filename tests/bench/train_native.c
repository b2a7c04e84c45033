// train_native.c: the native speed baseline of one training step of the trainer's model:
// transformer_forward + transformer_backward + adamw_update, the same C as the wasm module built
// with -O3 -march=native by ./build.sh, for tests/bench/train.bench.js.
//
//   bench_train_native VOCAB D_MODEL HEADS LAYERS D_FF SEQ BATCH STEPS
//     full RoPE (rope_percentage 1, base 10000); the "small" model is 65 128 4 4 512 128 8 5
//
// Random tokens and targets from a fixed generator; one warm-up step, then STEPS timed steps.
// Prints one JSON line (times per step in ms; forward, backward and adamw are the medians of
// their parts), then the median step as a line of its own for the JS bench to read:
//   {"vocab":...,"d_model":...,...,"seq":...,"batch":...,"samples_ms":[...],"median_ms":...,
//    "forward_ms":...,"backward_ms":...,"adamw_ms":...,"tokens_per_s":...}
//   seconds_per_step 0.239
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"
#include "optim.h"

#include "bench_native.h"

static int fail(const char *message) {
    fprintf(stderr, "bench_train_native: %s\n", message);
    return 1;
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof(double), compare_doubles);
    return (x[(n - 1) / 2] + x[n / 2]) / 2;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fputs("usage: bench_train_native VOCAB D_MODEL HEADS LAYERS D_FF SEQ BATCH STEPS\n", stderr);
        return 2;
    }
    model_config config = {atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), 1.0, 10000.0};
    int seq = atoi(argv[6]), batch = atoi(argv[7]), samples = atoi(argv[8]);
    if (seq < 1 || batch < 1 || samples < 1) return fail("SEQ, BATCH and STEPS must be positive");
    transformer *model = NULL;
    if (transformer_create(&config, seq, batch, &model) != 0) return fail("transformer_create failed (a bad size?)");
    transformer_init(model, 0);
    int64_t n = transformer_param_count(model);
    float *exp_avg = calloc((size_t)n, sizeof(float)), *exp_avg_sq = calloc((size_t)n, sizeof(float));
    int32_t *tokens = malloc((size_t)seq * batch * sizeof(int32_t));
    int32_t *targets = malloc((size_t)seq * batch * sizeof(int32_t));
    double *step_ms = malloc((size_t)samples * sizeof(double));
    double *forward_ms = malloc((size_t)samples * sizeof(double));
    double *backward_ms = malloc((size_t)samples * sizeof(double));
    double *adamw_ms = malloc((size_t)samples * sizeof(double));
    if (!exp_avg || !exp_avg_sq || !tokens || !targets || !step_ms || !forward_ms || !backward_ms || !adamw_ms) {
        return fail("out of memory");
    }
    uint32_t state = 12345;
    for (int i = 0; i < seq * batch; i++) {
        state = state * 1664525u + 1013904223u;
        tokens[i] = (int32_t)((state >> 8) % (uint32_t)config.vocab);
        state = state * 1664525u + 1013904223u;
        targets[i] = (int32_t)((state >> 8) % (uint32_t)config.vocab);
    }
    float *params = transformer_params(model), *grads = transformer_grads(model);
    for (int i = -1; i < samples; i++) {  // step -1: the warm-up (first touch of every page)
        float loss;
        double t0 = now_seconds();
        int status = transformer_forward(model, tokens, targets, seq, batch, &loss);
        double t1 = now_seconds();
        if (status == 0) status = transformer_backward(model, 1.0f / (float)(seq * batch));
        double t2 = now_seconds();
        if (status == 0) status = adamw_update(params, grads, exp_avg, exp_avg_sq, n, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.0f, i + 2);
        double t3 = now_seconds();
        if (status != 0) return fail("a training step failed");
        if (i < 0) continue;
        forward_ms[i] = (t1 - t0) * 1e3;
        backward_ms[i] = (t2 - t1) * 1e3;
        adamw_ms[i] = (t3 - t2) * 1e3;
        step_ms[i] = (t3 - t0) * 1e3;
    }
    printf("{\"vocab\":%d,\"d_model\":%d,\"heads\":%d,\"layers\":%d,\"d_ff\":%d,\"seq\":%d,\"batch\":%d,\"samples_ms\":[",
           config.vocab, config.d_model, config.heads, config.layers, config.d_ff, seq, batch);
    for (int i = 0; i < samples; i++) printf("%s%.3f", i ? "," : "", step_ms[i]);
    double step = median(step_ms, samples);
    printf("],\"median_ms\":%.3f,\"forward_ms\":%.3f,\"backward_ms\":%.3f,\"adamw_ms\":%.3f,\"tokens_per_s\":%.0f}\n", step,
           median(forward_ms, samples), median(backward_ms, samples), median(adamw_ms, samples),
           seq * batch / (step * 1e-3));
    printf("seconds_per_step %.6f\n", step * 1e-3);
    transformer_destroy(model);
    free(exp_avg); free(exp_avg_sq); free(tokens); free(targets);
    free(step_ms); free(forward_ms); free(backward_ms); free(adamw_ms);
    return 0;
}
