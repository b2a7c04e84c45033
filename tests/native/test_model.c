// test_model.c: the trainer's C core against PyTorch: transformer_forward and transformer_backward
// on the grad_tiny reference of ../shared/reference/train (loss, every gradient, five Adam steps),
// then the API's contracts: errors, the tensor table, initialisation, the optimiser, the
// learning-rate schedules and sampling.
//
//   cc -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
//      -Ic c/*.c (minus wasm_exports.c) tests/native/test_model.c -lm -o build/test_model
// and without sanitizers under valgrind. Run from the repository root (the reference is read from
// ../shared/reference/train; skipped, with a note, when absent). Prints each failure, then
// "N passed, M failed"; exits non-zero on any failure.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "optim.h"
#include "rope_errors.h"
#include "sampling.h"

#include "check.h"

#define REFERENCE_DIR "../shared/reference/train"
#define LOSS_TOLERANCE 1e-5      // relative
#define GRAD_TOLERANCE 1e-4      // ||g - ref|| / ||ref|| per tensor
#define ADAM_TOLERANCE 1e-4      // relative, each of the five losses

// The grad_tiny configuration (grad_tiny.json "config").
static const model_config TINY = {65, 32, 4, 2, 64, 1.0, 10000.0};
#define TINY_SEQ 16
#define TINY_BATCH 2

// ----------------------------------------------------------------------------
// reading the reference

// The whole file as a NUL-terminated string (NULL if it cannot be read).
static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    if (text && fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        text = NULL;
    }
    if (text) text[size] = '\0';
    fclose(f);
    return text;
}

// Exactly `bytes` bytes of REFERENCE_DIR/grad_tiny.<name>.bin into out (the file must be that size).
static int read_array(const char *name, void *out, size_t bytes) {
    char path[512];
    snprintf(path, sizeof(path), REFERENCE_DIR "/grad_tiny.%s.bin", name);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(out, 1, bytes, f);
    int at_end = fgetc(f) == EOF;
    fclose(f);
    return got == bytes && at_end;
}

// The number after `"key":` in json (NAN when absent).
static double json_number(const char *json, const char *key) {
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "\"%s\":", key);
    const char *at = strstr(json, pattern);
    return at ? strtod(at + strlen(pattern), NULL) : NAN;
}

// The first n numbers of the list after `"key":` in json; 0 if absent.
static int json_numbers(const char *json, const char *key, double *out, int n) {
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (!at || !(at = strchr(at, '['))) return 0;
    at++;
    for (int i = 0; i < n; i++) {
        char *end;
        out[i] = strtod(at, &end);
        if (end == at) return 0;
        at = end;
        while (*at == ',' || *at == ' ' || *at == '\n') at++;
    }
    return 1;
}

static double relative_l2(const float *x, const float *reference, int64_t n) {
    double diff = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        diff += ((double)x[i] - reference[i]) * ((double)x[i] - reference[i]);
        norm += (double)reference[i] * reference[i];
    }
    return sqrt(diff) / (norm > 0.0 ? sqrt(norm) : 1.0);
}

// ----------------------------------------------------------------------------
// PyTorch's reference: loss, gradients, Adam

static void test_reference(void) {
    char *json = read_text(REFERENCE_DIR "/grad_tiny.json");
    if (!json) {
        printf("note: %s/grad_tiny.json not found, reference checks skipped\n", REFERENCE_DIR);
        return;
    }
    snprintf(context, sizeof(context), "grad_tiny");
    transformer *model = NULL;
    CHECK(transformer_create(&TINY, TINY_SEQ, TINY_BATCH, &model) == ROPE_OK);
    if (!model) {
        free(json);
        return;
    }
    int n_tensors = transformer_tensor_count(model);
    int64_t n = transformer_param_count(model);
    float *params = transformer_params(model), *grads = transformer_grads(model);
    float *reference_grads = malloc((size_t)n * sizeof(float));

    // The tensor order is the json's order of "w.*" arrays.
    const char *at = json;
    int in_order = 1;
    for (int i = 0; i < n_tensors; i++) {
        char key[128];
        snprintf(key, sizeof(key), "\"name\": \"w.%s\"", transformer_tensor_name(model, i));
        const char *found = strstr(at, key);
        if (!found) in_order = 0;
        else at = found;
    }
    CHECK(in_order);
    CHECK(n_tensors == 1 + 16 * TINY.layers + 4);

    int loaded = 1;
    for (int i = 0; i < n_tensors; i++) {
        char name[160];
        size_t bytes = (size_t)transformer_tensor_size(model, i) * sizeof(float);
        snprintf(name, sizeof(name), "w.%s", transformer_tensor_name(model, i));
        loaded &= read_array(name, params + transformer_tensor_offset(model, i), bytes);
        snprintf(name, sizeof(name), "g.%s", transformer_tensor_name(model, i));
        loaded &= read_array(name, reference_grads + transformer_tensor_offset(model, i), bytes);
    }
    int32_t tokens[TINY_SEQ * TINY_BATCH], targets[TINY_SEQ * TINY_BATCH];
    loaded &= read_array("tokens", tokens, sizeof(tokens));
    loaded &= read_array("targets", targets, sizeof(targets));
    CHECK(loaded);

    double reference_loss = json_number(json, "loss");
    float loss = 0.0f;
    CHECK(transformer_forward(model, tokens, targets, TINY_SEQ, TINY_BATCH, &loss) == ROPE_OK);
    CHECK(fabs(loss - reference_loss) <= LOSS_TOLERANCE * fabs(reference_loss));
    printf("grad_tiny: loss %.7f (PyTorch %.7f)\n", loss, reference_loss);

    CHECK(transformer_backward(model, 1.0f / (TINY_SEQ * TINY_BATCH)) == ROPE_OK);
    double worst = 0.0;
    for (int i = 0; i < n_tensors; i++) {
        int64_t offset = transformer_tensor_offset(model, i);
        double error = relative_l2(grads + offset, reference_grads + offset, transformer_tensor_size(model, i));
        snprintf(context, sizeof(context), "grad_tiny gradient of %s: relative L2 error %.3g",
                 transformer_tensor_name(model, i), error);
        CHECK(error <= GRAD_TOLERANCE);
        worst = error > worst ? error : worst;
    }
    printf("grad_tiny: worst gradient relative L2 error %.3g\n", worst);

    // Backward overwrites: a second call gives the same gradients, not twice them.
    snprintf(context, sizeof(context), "grad_tiny: backward twice");
    float *first = malloc((size_t)n * sizeof(float));
    memcpy(first, grads, (size_t)n * sizeof(float));
    CHECK(transformer_backward(model, 1.0f / (TINY_SEQ * TINY_BATCH)) == ROPE_OK);
    CHECK(memcmp(first, grads, (size_t)n * sizeof(float)) == 0);
    // loss_scale scales the gradients.
    CHECK(transformer_backward(model, 2.0f / (TINY_SEQ * TINY_BATCH)) == ROPE_OK);
    for (int64_t i = 0; i < n; i++) first[i] *= 2.0f;
    CHECK(relative_l2(grads, first, n) < 1e-6);
    free(first);

    // Five steps of torch.optim.Adam(lr 1e-2, betas 0.9/0.999, eps 1e-8) on the same batch.
    double adam_losses[5];
    CHECK(json_numbers(json, "adam_losses", adam_losses, 5));
    float *exp_avg = calloc((size_t)n, sizeof(float)), *exp_avg_sq = calloc((size_t)n, sizeof(float));
    for (int step = 1; step <= 5; step++) {
        snprintf(context, sizeof(context), "grad_tiny: Adam loss before step %d", step);
        CHECK(transformer_forward(model, tokens, targets, TINY_SEQ, TINY_BATCH, &loss) == ROPE_OK);
        CHECK(fabs(loss - adam_losses[step - 1]) <= ADAM_TOLERANCE * fabs(adam_losses[step - 1]));
        printf("grad_tiny: Adam loss %d: %.7f (PyTorch %.7f)\n", step - 1, loss, adam_losses[step - 1]);
        CHECK(transformer_backward(model, 1.0f / (TINY_SEQ * TINY_BATCH)) == ROPE_OK);
        CHECK(adamw_update(params, grads, exp_avg, exp_avg_sq, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, step) == ROPE_OK);
    }
    free(exp_avg);
    free(exp_avg_sq);
    free(reference_grads);
    transformer_destroy(model);
    free(json);
}

// ----------------------------------------------------------------------------
// errors and states

static void test_errors(void) {
    transformer *model = NULL;
    model_config c = TINY;
    snprintf(context, sizeof(context), "bad configs");
    CHECK(transformer_create(NULL, 16, 2, &model) == ROPE_ERR_NULL && model == NULL);
    CHECK(transformer_create(&c, 16, 2, NULL) == ROPE_ERR_NULL);
    CHECK(transformer_create(&c, 0, 2, &model) == ROPE_ERR_SHAPE && model == NULL);
    CHECK(transformer_create(&c, 16, 0, &model) == ROPE_ERR_SHAPE);
    c = TINY; c.vocab = 0; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_SHAPE);
    c = TINY; c.layers = 0; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_SHAPE);
    c = TINY; c.d_ff = -1; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_SHAPE);
    c = TINY; c.heads = 0; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_SHAPE);
    c = TINY; c.heads = 5; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_HEADS);
    c = TINY; c.rope_percentage = 0.5 + 1.0 / 8; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_DIM);  // 8*0.625 = 5
    c = TINY; c.rope_percentage = 1.5; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_DIM);
    c = TINY; c.rope_percentage = NAN; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_DIM);
    c = TINY; c.base = 0.0; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_BASE);
    c = TINY; c.base = INFINITY; CHECK(transformer_create(&c, 16, 2, &model) == ROPE_ERR_BASE);
    c = TINY; CHECK(transformer_create(&c, 1 << 20, 1 << 20, &model) == ROPE_ERR_SHAPE);
    CHECK(model == NULL);
    // Half the head rotated (d_k 8 -> 4) and no RoPE at all are both fine.
    c = TINY; c.rope_percentage = 0.5;
    CHECK(transformer_create(&c, 16, 2, &model) == ROPE_OK);
    transformer_destroy(model);
    c = TINY; c.rope_percentage = 0.0;
    CHECK(transformer_create(&c, 16, 2, &model) == ROPE_OK);
    transformer_destroy(model);
    transformer_destroy(NULL);

    CHECK(transformer_create(&TINY, 16, 2, &model) == ROPE_OK);
    CHECK(transformer_init(model, 7) == ROPE_OK);
    int32_t tokens[32], targets[32];
    for (int i = 0; i < 32; i++) {
        tokens[i] = (i * 7) % 65;
        targets[i] = (i * 11 + 3) % 65;
    }
    snprintf(context, sizeof(context), "backward before a forward with targets");
    CHECK(transformer_backward(NULL, 1.0f) == ROPE_ERR_NULL);
    CHECK(transformer_backward(model, 1.0f) == ROPE_ERR_STATE);
    float loss = 0.0f;
    CHECK(transformer_forward(model, tokens, NULL, 16, 2, &loss) == ROPE_OK);
    CHECK(isnan(loss));
    CHECK(transformer_backward(model, 1.0f) == ROPE_ERR_STATE);
    CHECK(transformer_forward(model, tokens, targets, 16, 2, &loss) == ROPE_OK);
    CHECK(isfinite(loss) && loss > 0.0f);
    CHECK(transformer_backward(model, NAN) == ROPE_ERR_VALUE);
    CHECK(transformer_backward(model, 1.0f / 32) == ROPE_OK);

    snprintf(context, sizeof(context), "bad tokens are rejected before anything is written");
    const float *logits = transformer_logits(model);
    float *saved = malloc(32 * 65 * sizeof(float));
    memcpy(saved, logits, 32 * 65 * sizeof(float));
    float kept = 123.0f;
    tokens[31] = 65;
    CHECK(transformer_forward(model, tokens, targets, 16, 2, &kept) == ROPE_ERR_TOKEN);
    tokens[31] = -1;
    CHECK(transformer_forward(model, tokens, targets, 16, 2, &kept) == ROPE_ERR_TOKEN);
    tokens[31] = 0;
    targets[0] = 65;
    CHECK(transformer_forward(model, tokens, targets, 16, 2, &kept) == ROPE_ERR_TOKEN);
    targets[0] = 0;
    CHECK(kept == 123.0f);
    CHECK(memcmp(saved, logits, 32 * 65 * sizeof(float)) == 0);
    // The saved state is untouched too: backward still works on the last good forward.
    CHECK(transformer_backward(model, 1.0f / 32) == ROPE_OK);
    free(saved);

    snprintf(context, sizeof(context), "forward argument errors");
    CHECK(transformer_forward(NULL, tokens, targets, 16, 2, &loss) == ROPE_ERR_NULL);
    CHECK(transformer_forward(model, NULL, targets, 16, 2, &loss) == ROPE_ERR_NULL);
    CHECK(transformer_forward(model, tokens, targets, 17, 2, &loss) == ROPE_ERR_SHAPE);
    CHECK(transformer_forward(model, tokens, targets, 16, 3, &loss) == ROPE_ERR_SHAPE);
    CHECK(transformer_forward(model, tokens, targets, 0, 2, &loss) == ROPE_ERR_SHAPE);
    CHECK(transformer_forward(model, tokens, targets, 16, 2, NULL) == ROPE_OK);
    CHECK(transformer_attention_weights(model, 2) == NULL && transformer_attention_weights(model, -1) == NULL);
    CHECK(transformer_init(NULL, 1) == ROPE_ERR_NULL);
    transformer_destroy(model);
}

// A smaller forward in a larger model gives what a model of exactly that size gives; the causal
// mask keeps later tokens from changing earlier logits; the attention weights are causal softmaxes.
static void test_forward_properties(void) {
    transformer *small = NULL, *large = NULL;
    CHECK(transformer_create(&TINY, 12, 3, &small) == ROPE_OK);
    CHECK(transformer_create(&TINY, 20, 5, &large) == ROPE_OK);
    transformer_init(small, 42);
    transformer_init(large, 42);
    int32_t tokens[36], targets[36];
    for (int i = 0; i < 36; i++) {
        tokens[i] = (i * 13 + 5) % 65;
        targets[i] = (i * 17 + 1) % 65;
    }
    float loss_small, loss_large;
    snprintf(context, sizeof(context), "seq 12 batch 3 in models of max 12x3 and 20x5");
    CHECK(transformer_forward(small, tokens, targets, 12, 3, &loss_small) == ROPE_OK);
    CHECK(transformer_forward(large, tokens, targets, 12, 3, &loss_large) == ROPE_OK);
    CHECK(loss_small == loss_large);
    CHECK(memcmp(transformer_logits(small), transformer_logits(large), 36 * 65 * sizeof(float)) == 0);
    CHECK(transformer_backward(small, 1.0f / 36) == ROPE_OK && transformer_backward(large, 1.0f / 36) == ROPE_OK);
    CHECK(memcmp(transformer_grads(small), transformer_grads(large),
                 (size_t)transformer_param_count(small) * sizeof(float)) == 0);

    snprintf(context, sizeof(context), "attention weights: causal rows summing to 1");
    int good = 1;
    for (int l = 0; l < TINY.layers; l++) {
        const float *w = transformer_attention_weights(small, l);
        for (int row = 0; row < 3 * TINY.heads * 12; row++) {
            int i = row % 12;
            double sum = 0.0;
            for (int j = 0; j < 12; j++) {
                float p = w[(size_t)row * 12 + j];
                if (j > i && p != 0.0f) good = 0;
                sum += p;
            }
            if (fabs(sum - 1.0) > 1e-5) good = 0;
        }
    }
    CHECK(good);

    snprintf(context, sizeof(context), "causal: changing the last token leaves earlier logits alone");
    float *before = malloc(36 * 65 * sizeof(float));
    memcpy(before, transformer_logits(small), 36 * 65 * sizeof(float));
    tokens[11 * 3 + 1] = (tokens[11 * 3 + 1] + 1) % 65;  // seq position 11, batch row 1
    CHECK(transformer_forward(small, tokens, NULL, 12, 3, NULL) == ROPE_OK);
    const float *after = transformer_logits(small);
    CHECK(memcmp(before, after, 11 * 3 * 65 * sizeof(float)) == 0);
    CHECK(memcmp(before + (11 * 3 + 1) * 65, after + (11 * 3 + 1) * 65, 65 * sizeof(float)) != 0);
    free(before);
    transformer_destroy(small);
    transformer_destroy(large);
}

// ----------------------------------------------------------------------------
// incremental decoding

// Decoding token by token gives each row of the full forward pass (batch 1), within float
// rounding; the cache's limits and errors. Partial RoPE (3/4 of each head) and 3 layers.
static void test_decode(void) {
    const model_config config = {65, 32, 4, 3, 64, 0.75, 10000.0};
    enum { SEQ = 20 };
    transformer *m = NULL;
    CHECK(transformer_create(&config, SEQ, 2, &m) == ROPE_OK);
    transformer_init(m, 9);
    int32_t tokens[SEQ];
    for (int i = 0; i < SEQ; i++) tokens[i] = (i * 29 + 3) % 65;
    CHECK(transformer_forward(m, tokens, NULL, SEQ, 1, NULL) == ROPE_OK);
    float *full = malloc(SEQ * 65 * sizeof(float)), logits[65];
    memcpy(full, transformer_logits(m), SEQ * 65 * sizeof(float));

    snprintf(context, sizeof(context), "decode: each token's logits = the forward's row");
    CHECK(transformer_decode_length(m) == 0);
    double worst = 0.0, largest = 0.0;
    for (int i = 0; i < SEQ; i++) {
        CHECK(transformer_decode(m, tokens[i], logits) == ROPE_OK);
        for (int j = 0; j < 65; j++) {
            worst = fmax(worst, fabs(logits[j] - full[i * 65 + j]));
            largest = fmax(largest, fabs(full[i * 65 + j]));
        }
    }
    CHECK(worst <= 1e-5 * largest);
    CHECK(transformer_decode_length(m) == SEQ);

    snprintf(context, sizeof(context), "decode: a full cache, a bad token, a reset");
    CHECK(transformer_decode(m, 1, logits) == ROPE_ERR_SHAPE);
    CHECK(transformer_decode(NULL, 1, logits) == ROPE_ERR_NULL);
    CHECK(transformer_decode(m, 1, NULL) == ROPE_ERR_NULL);
    CHECK(transformer_decode_reset(m) == ROPE_OK && transformer_decode_length(m) == 0);
    CHECK(transformer_decode(m, 65, logits) == ROPE_ERR_TOKEN);
    CHECK(transformer_decode(m, -1, logits) == ROPE_ERR_TOKEN);
    CHECK(transformer_decode_length(m) == 0);
    CHECK(transformer_decode(m, tokens[0], logits) == ROPE_OK);  // after the reset: position 0 again
    worst = 0.0;
    for (int j = 0; j < 65; j++) worst = fmax(worst, fabs(logits[j] - full[j]));
    CHECK(worst <= 1e-5 * largest);
    CHECK(transformer_decode_reset(NULL) == ROPE_ERR_NULL && transformer_decode_length(NULL) == ROPE_ERR_NULL);
    free(full);
    transformer_destroy(m);
}

// ----------------------------------------------------------------------------
// tensors and initialisation

static void test_tensors_and_init(void) {
    // The small_adamw_2000 configuration has 810,049 parameters (its json's "params").
    model_config small_config = {65, 128, 4, 4, 512, 1.0, 10000.0};
    transformer *model = NULL;
    snprintf(context, sizeof(context), "tensor table of the small config");
    CHECK(transformer_create(&small_config, 4, 1, &model) == ROPE_OK);
    CHECK(transformer_param_count(model) == 810049);
    int count = transformer_tensor_count(model);
    CHECK(count == 1 + 16 * 4 + 4);
    CHECK(strcmp(transformer_tensor_name(model, 0), "src_embed.weight") == 0);
    CHECK(strcmp(transformer_tensor_name(model, 1), "layers.0.norm_self_attn.weight") == 0);
    CHECK(strcmp(transformer_tensor_name(model, 3), "layers.0.self_attn.query.weight") == 0);
    CHECK(strcmp(transformer_tensor_name(model, 16), "layers.0.ff_layer2.bias") == 0);
    CHECK(strcmp(transformer_tensor_name(model, 64), "layers.3.ff_layer2.bias") == 0);
    CHECK(strcmp(transformer_tensor_name(model, count - 1), "generator.bias") == 0);
    CHECK(transformer_tensor_name(model, count) == NULL && transformer_tensor_name(model, -1) == NULL);
    CHECK(transformer_tensor_dims(model, 0) == 2 && transformer_tensor_dim(model, 0, 0) == 65 &&
          transformer_tensor_dim(model, 0, 1) == 128);
    CHECK(transformer_tensor_dims(model, 13) == 2 && transformer_tensor_dim(model, 13, 0) == 512 &&
          transformer_tensor_dim(model, 13, 1) == 128);  // layers.0.ff_layer1.weight [d_ff, d_model]
    CHECK(transformer_tensor_dims(model, 14) == 1 && transformer_tensor_dim(model, 14, 0) == 512);
    CHECK(transformer_tensor_dim(model, 14, 1) == ROPE_ERR_SHAPE && transformer_tensor_dims(model, count) == ROPE_ERR_SHAPE);
    CHECK(transformer_tensor_offset(model, count) == -1);
    int contiguous = transformer_tensor_offset(model, 0) == 0;
    for (int i = 1; i < count; i++) {
        contiguous &= transformer_tensor_offset(model, i) ==
                      transformer_tensor_offset(model, i - 1) + transformer_tensor_size(model, i - 1);
    }
    CHECK(contiguous);
    CHECK(transformer_tensor_offset(model, count - 1) + transformer_tensor_size(model, count - 1) == 810049);

    snprintf(context, sizeof(context), "initialisation");
    int64_t n = transformer_param_count(model);
    float *params = transformer_params(model);
    int zero = 1;
    for (int64_t i = 0; i < n; i++) zero &= params[i] == 0.0f;
    CHECK(zero);  // zero until transformer_init
    transformer_init(model, 1234);
    float *first = malloc((size_t)n * sizeof(float));
    memcpy(first, params, (size_t)n * sizeof(float));
    transformer_init(model, 1234);
    CHECK(memcmp(first, params, (size_t)n * sizeof(float)) == 0);
    transformer_init(model, 1235);
    int64_t different = 0;
    for (int64_t i = 0; i < n; i++) different += first[i] != params[i];
    CHECK(different > n / 2);
    // Each kind of tensor has PyTorch's distribution.
    for (int t = 0; t < count; t++) {
        const char *name = transformer_tensor_name(model, t);
        const float *p = params + transformer_tensor_offset(model, t);
        int64_t size = transformer_tensor_size(model, t);
        double sum = 0.0, square = 0.0, largest = 0.0;
        for (int64_t i = 0; i < size; i++) {
            sum += p[i];
            square += (double)p[i] * p[i];
            largest = fabs(p[i]) > largest ? fabs(p[i]) : largest;
        }
        double mean = sum / size, std = sqrt(square / size - mean * mean);
        snprintf(context, sizeof(context), "init of %s: mean %.4f std %.4f max |x| %.4f", name, mean, std, largest);
        if (strstr(name, "norm") && strstr(name, ".weight")) {
            CHECK(mean == 1.0 && std < 1e-12);
        } else if (strstr(name, "norm")) {
            CHECK(largest == 0.0);
        } else if (t == 0) {
            CHECK(fabs(mean) < 0.02 && fabs(std - 1.0) < 0.02);
        } else {
            int fan_in = strstr(name, "ff_layer2") ? 512 : 128;
            double bound = 1.0 / sqrt(fan_in);
            CHECK(largest <= bound && largest > 0.9 * bound);
            if (size > 1000) CHECK(fabs(std - bound / sqrt(3.0)) < 0.03 * bound);
        }
    }
    free(first);
    transformer_destroy(model);
}

// ----------------------------------------------------------------------------
// optimiser and schedules

static void test_optim(void) {
    snprintf(context, sizeof(context), "adamw_update against float64");
    float p[3] = {0.5f, -1.0f, 2.0f}, g[3] = {0.1f, -0.2f, 0.0f}, m[3] = {0}, v[3] = {0};
    double pd[3] = {0.5, -1.0, 2.0}, md[3] = {0}, vd[3] = {0};
    double lr = 1e-2, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.1;
    int ok = 1;
    for (int step = 1; step <= 3; step++) {
        CHECK(adamw_update(p, g, m, v, 3, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, step) == ROPE_OK);
        for (int i = 0; i < 3; i++) {
            pd[i] *= 1.0 - lr * wd;
            md[i] = b1 * md[i] + (1 - b1) * g[i];
            vd[i] = b2 * vd[i] + (1 - b2) * g[i] * g[i];
            pd[i] -= lr / (1 - pow(b1, step)) * md[i] / (sqrt(vd[i]) / sqrt(1 - pow(b2, step)) + eps);
            ok &= fabs(p[i] - pd[i]) < 1e-6;
        }
    }
    CHECK(ok);
    // The first Adam step moves each parameter with a nonzero gradient by lr against its sign.
    float q[2] = {1.0f, 1.0f}, gq[2] = {3.0f, -0.001f}, mq[2] = {0}, vq[2] = {0};
    CHECK(adamw_update(q, gq, mq, vq, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1) == ROPE_OK);
    CHECK(fabsf(q[0] - 0.9f) < 1e-6f && fabsf(q[1] - 1.1f) < 1e-5f);
    CHECK(adamw_update(q, gq, mq, vq, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 0) == ROPE_ERR_VALUE);
    CHECK(adamw_update(q, gq, mq, vq, 2, NAN, 0.9f, 0.999f, 1e-8f, 0.0f, 1) == ROPE_ERR_VALUE);
    CHECK(adamw_update(NULL, gq, mq, vq, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1) == ROPE_ERR_NULL);
    CHECK(adamw_update(q, gq, mq, vq, -1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1) == ROPE_ERR_SHAPE);

    snprintf(context, sizeof(context), "grad_norm, scale_floats, add_floats");
    float x[4] = {3.0f, 4.0f, 0.0f, 12.0f}, y[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    CHECK(grad_norm(x, 4) == 13.0);
    CHECK(isnan(grad_norm(NULL, 4)) && grad_norm(NULL, 0) == 0.0);
    CHECK(scale_floats(x, 4, 0.5f) == ROPE_OK && x[3] == 6.0f && x[0] == 1.5f);
    CHECK(add_floats(y, x, 4) == ROPE_OK && y[3] == 7.0f && y[2] == 1.0f);
    CHECK(scale_floats(NULL, 4, 1.0f) == ROPE_ERR_NULL && add_floats(y, NULL, 4) == ROPE_ERR_NULL);
    CHECK(scale_floats(x, -1, 1.0f) == ROPE_ERR_SHAPE);

    snprintf(context, sizeof(context), "learning-rate schedules");
    CHECK(fabs(lr_noam(1.0, 128, 2000, 490) - 0.00048422) < 5e-9);
    CHECK(lr_noam(1.0, 128, 2000, 0) == 0.0);
    // Past the warm-up Noam decays as step^-0.5; the peak is at step = warmup.
    CHECK(fabs(lr_noam(1.0, 128, 2000, 2000) - pow(128, -0.5) * pow(2000, -0.5)) < 1e-12);
    // small_adamw_2000.json: lr 2e-3, 100 warm-up steps, cosine to 10% at 2000.
    CHECK(fabs(lr_warmup_cosine(2e-3, 100, 2000, 0.1, 100) - 0.0019889195065356242) < 1e-12);
    CHECK(fabs(lr_warmup_cosine(2e-3, 100, 2000, 0.1, 200) - 0.0019559508646656383) < 1e-12);
    CHECK(fabs(lr_warmup_cosine(2e-3, 100, 2000, 0.1, 500) - 0.0017363961030678928) < 1e-12);
    CHECK(fabs(lr_warmup_cosine(2e-3, 100, 2000, 0.1, 2000) - 0.0002) < 1e-12);
    CHECK(fabs(lr_warmup_cosine(2e-3, 100, 2000, 0.1, 50) - 0.5 * (2e-4 + 1.8e-3 * 0.5 * (1 + cos(3.141592653589793 * 50 / 2000)))) < 1e-12);
    CHECK(lr_warmup_cosine(2e-3, 100, 2000, 0.1, 0) == 0.0);
}

// ----------------------------------------------------------------------------
// sampling

static void test_sampling(void) {
    snprintf(context, sizeof(context), "sample_logits: greedy and top-1");
    float logits[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 0.0f};
    CHECK(sample_logits(logits, 6, 0.0f, 0, 0.5) == 1);  // the first of the equal maxima
    // top_k 1 with a tie at the top keeps both maxima (as torch.topk-based samplers do).
    int tied = 1;
    for (int i = 0; i < 10; i++) {
        int token = sample_logits(logits, 6, 1.0f, 1, i / 10.0);
        tied &= token == (i < 5 ? 1 : 3);
    }
    CHECK(tied);
    float distinct[5] = {0.1f, 3.0f, 1.0f, -2.0f, 2.5f};
    int top1 = 1;
    for (int i = 0; i < 100; i++) top1 &= sample_logits(distinct, 5, 0.7f, 1, i / 100.0) == 1;
    CHECK(top1);

    snprintf(context, sizeof(context), "sample_logits: errors");
    CHECK(sample_logits(NULL, 6, 1.0f, 0, 0.5) == ROPE_ERR_NULL);
    CHECK(sample_logits(logits, 0, 1.0f, 0, 0.5) == ROPE_ERR_SHAPE);
    CHECK(sample_logits(logits, 6, -1.0f, 0, 0.5) == ROPE_ERR_VALUE);
    CHECK(sample_logits(logits, 6, NAN, 0, 0.5) == ROPE_ERR_VALUE);
    CHECK(sample_logits(logits, 6, 1.0f, -1, 0.5) == ROPE_ERR_VALUE);
    CHECK(sample_logits(logits, 6, 1.0f, 0, 1.0) == ROPE_ERR_VALUE);
    CHECK(sample_logits(logits, 6, 1.0f, 0, -0.1) == ROPE_ERR_VALUE);

    // Uniforms spread evenly over [0, 1) give each token its probability to within 1/N.
    const int N = 20000;
    float temperatures[2] = {1.0f, 0.5f};
    int top_ks[3] = {0, 3, 5};
    for (int ti = 0; ti < 2; ti++) {
        for (int ki = 0; ki < 3; ki++) {
            float t = temperatures[ti];
            int k = top_ks[ki];
            snprintf(context, sizeof(context), "sample_logits: distribution at temperature %.1f top_k %d", t, k);
            int counts[5] = {0}, in_range = 1;
            for (int i = 0; i < N; i++) {
                int token = sample_logits(distinct, 5, t, k, (i + 0.5) / N);
                in_range &= token >= 0 && token < 5;
                if (token >= 0 && token < 5) counts[token]++;
            }
            CHECK(in_range);
            // The expected probabilities: softmax(logits / t) over the top k.
            float sorted[5];
            memcpy(sorted, distinct, sizeof(sorted));
            for (int a = 0; a < 5; a++)
                for (int b = a + 1; b < 5; b++)
                    if (sorted[b] > sorted[a]) { float s = sorted[a]; sorted[a] = sorted[b]; sorted[b] = s; }
            float threshold = k == 0 ? -INFINITY : sorted[k - 1];
            double total = 0.0;
            for (int i = 0; i < 5; i++) total += distinct[i] >= threshold ? exp(distinct[i] / t) : 0.0;
            int close = 1;
            for (int i = 0; i < 5; i++) {
                double p = distinct[i] >= threshold ? exp(distinct[i] / t) / total : 0.0;
                close &= fabs(counts[i] / (double)N - p) <= 2.0 / N;
            }
            CHECK(close);
        }
    }
}

int main(void) {
    test_reference();
    test_errors();
    test_forward_properties();
    test_decode();
    test_tensors_and_init();
    test_optim();
    test_sampling();
    return check_report();
}
