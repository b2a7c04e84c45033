// test_train_ops.c: finite-difference checks of every backward pass of the trainer: LayerNorm,
// Linear, RoPE attention (partial RoPE, several heads, causal and not, seq not a multiple of the
// kernels' tiles), cross-entropy, embedding, and the whole model on a sample of its parameters.
//
//   cc -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
//      -Ic c/*.c (minus wasm_exports.c) tests/native/test_train_ops.c -lm -o build/test_train_ops
// and without sanitizers under valgrind. Prints each failure, then "N passed, M failed"; exits
// non-zero on any failure.
//
// Every op is checked on a scalar L = sum(out * r) with r random, so that dL/dout = r. The forward
// runs in float32; L is summed in double and differentiated by central differences, step EPS: the
// truncation error is O(EPS^2) and the rounding error about 1e-7 |L| / EPS, so the numbers agree
// to about 1e-4 relative; the tolerance leaves a margin of 10.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attention_backward.h"
#include "cross_entropy.h"
#include "embedding.h"
#include "layernorm.h"
#include "linear.h"
#include "model.h"
#include "rope.h"
#include "rope_errors.h"

#include "check.h"

#define EPS 1e-2f
#define TOLERANCE 1e-3  // ||numeric - analytic|| / ||analytic|| over a whole gradient
// The whole model has ReLUs: a smaller step crosses fewer of their kinks (its loss is summed in
// double from the logits, which keeps the rounding error down).
#define MODEL_EPS 1e-3f
#define MODEL_TOLERANCE 2e-2  // over the 5 sampled elements of a tensor
#define KINK_RELATIVE 0.01     // one-sided differences further apart than this are a ReLU kink
#define KINK_ABSOLUTE 1e-3

// ----------------------------------------------------------------------------
// random numbers and the generic check

static uint32_t rng_state = 2024;
static float random_float(void) {  // xorshift32, uniform in [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)((rng_state >> 8) * (2.0 / 16777216.0) - 1.0);
}

static float *random_tensor(size_t n, float amplitude) {
    float *t = malloc((n > 0 ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) t[i] = amplitude * random_float();
    return t;
}

static float *zeros(size_t n) { return calloc(n > 0 ? n : 1, sizeof(float)); }

// The scalar being differentiated: runs the forward pass on the current inputs.
typedef double (*objective)(void *op);

static double dot(const float *x, const float *r, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * r[i];
    return sum;
}

// ||numeric - analytic|| / ||analytic||, numeric the central differences of f in each of the n
// floats of x (x is restored).
static double gradient_error(objective f, void *op, float *x, const float *analytic, size_t n) {
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        float saved = x[i];
        x[i] = saved + EPS;
        double up = f(op);
        x[i] = saved - EPS;
        double down = f(op);
        x[i] = saved;
        double numeric = (up - down) / (2.0 * EPS);
        diff += (numeric - analytic[i]) * (numeric - analytic[i]);
        norm += (double)analytic[i] * analytic[i];
    }
    return sqrt(diff) / (norm > 0.0 ? sqrt(norm) : 1.0);
}

static double worst_op_error = 0.0;

static void check_gradient(const char *what, objective f, void *op, float *x, const float *analytic, size_t n) {
    double error = gradient_error(f, op, x, analytic, n);
    snprintf(context, sizeof(context), "%s: relative error %.3g", what, error);
    CHECK(error <= TOLERANCE);
    worst_op_error = error > worst_op_error ? error : worst_op_error;
}

// ----------------------------------------------------------------------------
// LayerNorm

typedef struct {
    int rows, dim;
    float *x, *weight, *bias, *out, *mean, *rstd, *r;
} layernorm_op;

static double layernorm_objective(void *p) {
    layernorm_op *o = p;
    layernorm_forward(o->out, o->mean, o->rstd, o->x, o->weight, o->bias, o->rows, o->dim, 1e-5f);
    return dot(o->out, o->r, (size_t)o->rows * o->dim);
}

static void test_layernorm(int rows, int dim) {
    size_t n = (size_t)rows * dim;
    layernorm_op o = {rows, dim, random_tensor(n, 2.0f), random_tensor(dim, 1.5f), random_tensor(dim, 1.0f),
                      zeros(n), zeros(rows), zeros(rows), random_tensor(n, 1.0f)};
    for (size_t i = 0; i < n; i++) o.x[i] += 0.5f;  // a nonzero mean
    // dx starts nonzero: backward adds to it.
    float *dx = random_tensor(n, 1.0f), *dx_start = malloc(n * sizeof(float));
    memcpy(dx_start, dx, n * sizeof(float));
    float *dweight = zeros(dim), *dbias = zeros(dim);
    layernorm_objective(&o);
    snprintf(context, sizeof(context), "layernorm backward %dx%d", rows, dim);
    CHECK(layernorm_backward(dx, dweight, dbias, o.r, o.x, o.mean, o.rstd, o.weight, rows, dim) == ROPE_OK);
    for (size_t i = 0; i < n; i++) dx[i] -= dx_start[i];
    check_gradient("layernorm dx", layernorm_objective, &o, o.x, dx, n);
    check_gradient("layernorm dweight", layernorm_objective, &o, o.weight, dweight, dim);
    check_gradient("layernorm dbias", layernorm_objective, &o, o.bias, dbias, dim);
    snprintf(context, sizeof(context), "layernorm errors");
    CHECK(layernorm_forward(NULL, o.mean, o.rstd, o.x, o.weight, o.bias, rows, dim, 1e-5f) == ROPE_ERR_NULL);
    CHECK(layernorm_forward(o.out, o.mean, o.rstd, o.x, o.weight, o.bias, rows, 0, 1e-5f) == ROPE_ERR_SHAPE);
    CHECK(layernorm_backward(dx, dweight, NULL, o.r, o.x, o.mean, o.rstd, o.weight, rows, dim) == ROPE_ERR_NULL);
    free(o.x); free(o.weight); free(o.bias); free(o.out); free(o.mean); free(o.rstd); free(o.r);
    free(dx); free(dx_start); free(dweight); free(dbias);
}

// ----------------------------------------------------------------------------
// Linear

typedef struct {
    int rows, in, out;
    float *x, *weight, *bias, *y, *r;
} linear_op;

static double linear_objective(void *p) {
    linear_op *o = p;
    linear_forward(o->y, o->x, o->weight, o->bias, o->rows, o->in, o->out, 0);
    return dot(o->y, o->r, (size_t)o->rows * o->out);
}

static void test_linear(int rows, int in, int out) {
    size_t nx = (size_t)rows * in, nw = (size_t)out * in, ny = (size_t)rows * out;
    linear_op o = {rows, in, out, random_tensor(nx, 1.0f), random_tensor(nw, 0.5f), random_tensor(out, 0.5f),
                   zeros(ny), random_tensor(ny, 1.0f)};
    float *dx = zeros(nx), *dweight = zeros(nw), *dbias = zeros(out);
    snprintf(context, sizeof(context), "linear backward %dx%d -> %d", rows, in, out);
    CHECK(linear_backward(dx, dweight, dbias, o.r, o.x, o.weight, rows, in, out, 0) == ROPE_OK);
    check_gradient("linear dx", linear_objective, &o, o.x, dx, nx);
    check_gradient("linear dweight", linear_objective, &o, o.weight, dweight, nw);
    check_gradient("linear dbias", linear_objective, &o, o.bias, dbias, out);

    // accumulate_dx adds, dweight and dbias always add; accumulate in the forward adds y.
    snprintf(context, sizeof(context), "linear accumulation %dx%d -> %d", rows, in, out);
    float *dx2 = malloc(nx * sizeof(float)), *dweight2 = malloc(nw * sizeof(float)), *y2 = malloc(ny * sizeof(float));
    memcpy(dx2, dx, nx * sizeof(float));
    memcpy(dweight2, dweight, nw * sizeof(float));
    CHECK(linear_backward(dx2, dweight2, NULL, o.r, o.x, o.weight, rows, in, out, 1) == ROPE_OK);
    int doubled = 1;
    for (size_t i = 0; i < nx; i++) doubled &= fabsf(dx2[i] - 2.0f * dx[i]) <= 1e-5f * (1.0f + fabsf(dx[i]));
    for (size_t i = 0; i < nw; i++) doubled &= fabsf(dweight2[i] - 2.0f * dweight[i]) <= 1e-5f * (1.0f + fabsf(dweight[i]));
    CHECK(doubled);
    linear_objective(&o);
    memcpy(y2, o.y, ny * sizeof(float));
    CHECK(linear_forward(y2, o.x, o.weight, o.bias, rows, in, out, 1) == ROPE_OK);
    doubled = 1;
    for (size_t i = 0; i < ny; i++) doubled &= fabsf(y2[i] - 2.0f * o.y[i]) <= 1e-5f * (1.0f + fabsf(o.y[i]));
    CHECK(doubled);
    CHECK(linear_forward(o.y, o.x, o.weight, o.bias, rows, in, out, 2) == ROPE_ERR_LAYOUT);
    CHECK(linear_backward(dx, NULL, dbias, o.r, o.x, o.weight, rows, in, out, 0) == ROPE_ERR_NULL);
    CHECK(linear_backward(dx, dweight, dbias, o.r, o.x, o.weight, -1, in, out, 0) == ROPE_ERR_SHAPE);
    free(o.x); free(o.weight); free(o.bias); free(o.y); free(o.r);
    free(dx); free(dweight); free(dbias); free(dx2); free(dweight2); free(y2);
}

// ----------------------------------------------------------------------------
// RoPE attention

typedef struct {
    int seq, batch, heads, head_dim, causal;
    float scale;
    rope_embedding *rope;
    float *q, *k, *v, *out, *weights, *r;
} attention_op;

static double attention_objective(void *p) {
    attention_op *o = p;
    rope_attention_forward(o->q, o->k, o->v, o->out, o->weights, o->batch, o->heads, o->heads, o->seq, o->seq,
                           o->head_dim, ROPE_LAYOUT_SBHD, o->causal, o->scale, o->rope, 0);
    return dot(o->out, o->r, (size_t)o->seq * o->batch * o->heads * o->head_dim);
}

static void test_attention(int seq, int batch, int heads, int head_dim, int rope_dim, int causal) {
    size_t n = (size_t)seq * batch * heads * head_dim;
    attention_op o = {seq, batch, heads, head_dim, causal, 1.0f / sqrtf((float)head_dim),
                      rope_dim ? rope_create(rope_dim, 10000.0, ROPE_PAIRING_HALF) : NULL,
                      random_tensor(n, 1.5f), random_tensor(n, 1.5f), random_tensor(n, 1.0f), zeros(n),
                      zeros((size_t)batch * heads * seq * seq), random_tensor(n, 1.0f)};
    float *q_rot = zeros(n), *k_rot = zeros(n), *dq = zeros(n), *dk = zeros(n), *dv = zeros(n);
    float *scratch = zeros((size_t)seq * seq);
    attention_objective(&o);
    if (o.rope) {
        rope_apply(o.rope, o.q, q_rot, ROPE_LAYOUT_SBHD, seq, batch, heads, head_dim, 0, NULL, 0, 0);
        rope_apply(o.rope, o.k, k_rot, ROPE_LAYOUT_SBHD, seq, batch, heads, head_dim, 0, NULL, 0, 0);
    } else {
        memcpy(q_rot, o.q, n * sizeof(float));
        memcpy(k_rot, o.k, n * sizeof(float));
    }
    char what[128];
    snprintf(context, sizeof(context), "attention backward seq %d batch %d heads %d head_dim %d rope %d causal %d",
             seq, batch, heads, head_dim, rope_dim, causal);
    CHECK(rope_attention_backward(dq, dk, dv, o.r, q_rot, k_rot, o.v, o.weights, scratch, seq, batch, heads,
                                  head_dim, causal, o.scale, o.rope) == ROPE_OK);
    snprintf(what, sizeof(what), "attention dq (seq %d, heads %d, d %d, rope %d, causal %d)", seq, heads, head_dim,
             rope_dim, causal);
    check_gradient(what, attention_objective, &o, o.q, dq, n);
    snprintf(what, sizeof(what), "attention dk (seq %d, heads %d, d %d, rope %d, causal %d)", seq, heads, head_dim,
             rope_dim, causal);
    check_gradient(what, attention_objective, &o, o.k, dk, n);
    snprintf(what, sizeof(what), "attention dv (seq %d, heads %d, d %d, rope %d, causal %d)", seq, heads, head_dim,
             rope_dim, causal);
    check_gradient(what, attention_objective, &o, o.v, dv, n);
    snprintf(context, sizeof(context), "attention backward errors");
    CHECK(rope_attention_backward(NULL, dk, dv, o.r, q_rot, k_rot, o.v, o.weights, scratch, seq, batch, heads,
                                  head_dim, causal, o.scale, o.rope) == ROPE_ERR_NULL);
    CHECK(rope_attention_backward(dq, dk, dv, o.r, q_rot, k_rot, o.v, o.weights, scratch, seq, 0, heads, head_dim,
                                  causal, o.scale, o.rope) == ROPE_ERR_SHAPE);
    CHECK(rope_attention_backward(dq, dk, dv, o.r, q_rot, k_rot, o.v, o.weights, scratch, seq, batch, heads, head_dim,
                                  2, o.scale, o.rope) == ROPE_ERR_LAYOUT);
    if (o.rope) {
        CHECK(rope_attention_backward(dq, dk, dv, o.r, q_rot, k_rot, o.v, o.weights, scratch, seq, batch, heads,
                                      rope_dim - 1, causal, o.scale, o.rope) == ROPE_ERR_DIM);
    }
    rope_destroy(o.rope);
    free(o.q); free(o.k); free(o.v); free(o.out); free(o.weights); free(o.r);
    free(q_rot); free(k_rot); free(dq); free(dk); free(dv); free(scratch);
}

// ----------------------------------------------------------------------------
// cross-entropy and embedding

typedef struct {
    int rows, vocab;
    float *logits;
    const int32_t *targets;
    float scale;
} cross_entropy_op;

static double cross_entropy_objective(void *p) {
    cross_entropy_op *o = p;
    double loss = 0.0;
    cross_entropy_forward(&loss, o->logits, o->targets, o->rows, o->vocab);
    return o->scale * loss;
}

static void test_cross_entropy(void) {
    enum { ROWS = 6, VOCAB = 9 };
    int32_t targets[ROWS] = {0, 8, 3, 3, 5, 1};
    cross_entropy_op o = {ROWS, VOCAB, random_tensor(ROWS * VOCAB, 3.0f), targets, 0.7f};
    // The forward against the definition, in double.
    double loss = 0.0, expected = 0.0;
    snprintf(context, sizeof(context), "cross-entropy forward");
    CHECK(cross_entropy_forward(&loss, o.logits, targets, ROWS, VOCAB) == ROPE_OK);
    for (int r = 0; r < ROWS; r++) {
        double sum = 0.0;
        for (int i = 0; i < VOCAB; i++) sum += exp(o.logits[r * VOCAB + i]);
        expected += log(sum) - o.logits[r * VOCAB + targets[r]];
    }
    CHECK(fabs(loss - expected) < 1e-9 * fabs(expected));
    float *dlogits = zeros(ROWS * VOCAB);
    CHECK(cross_entropy_backward(dlogits, o.logits, targets, ROWS, VOCAB, o.scale) == ROPE_OK);
    check_gradient("cross-entropy dlogits", cross_entropy_objective, &o, o.logits, dlogits, ROWS * VOCAB);
    // In place gives the same.
    float *in_place = malloc(ROWS * VOCAB * sizeof(float));
    memcpy(in_place, o.logits, ROWS * VOCAB * sizeof(float));
    snprintf(context, sizeof(context), "cross-entropy backward in place, errors");
    CHECK(cross_entropy_backward(in_place, in_place, targets, ROWS, VOCAB, o.scale) == ROPE_OK);
    CHECK(memcmp(in_place, dlogits, ROWS * VOCAB * sizeof(float)) == 0);
    int32_t bad[ROWS] = {0, 9, 0, 0, 0, 0};
    CHECK(cross_entropy_forward(&loss, o.logits, bad, ROWS, VOCAB) == ROPE_ERR_TOKEN);
    CHECK(cross_entropy_backward(dlogits, o.logits, bad, ROWS, VOCAB, 1.0f) == ROPE_ERR_TOKEN);
    CHECK(cross_entropy_backward(dlogits, o.logits, targets, ROWS, VOCAB, INFINITY) == ROPE_ERR_VALUE);
    CHECK(cross_entropy_forward(NULL, o.logits, targets, ROWS, VOCAB) == ROPE_ERR_NULL);
    free(o.logits); free(dlogits); free(in_place);
}

typedef struct {
    int count, vocab, dim;
    const int32_t *tokens;
    float *table, *out, *r;
} embedding_op;

static double embedding_objective(void *p) {
    embedding_op *o = p;
    embedding_forward(o->out, o->tokens, o->table, o->count, o->vocab, o->dim);
    return dot(o->out, o->r, (size_t)o->count * o->dim);
}

static void test_embedding(void) {
    enum { COUNT = 7, VOCAB = 5, DIM = 6 };
    int32_t tokens[COUNT] = {4, 0, 4, 2, 2, 2, 1};  // repeats add up; token 3 unused
    embedding_op o = {COUNT, VOCAB, DIM, tokens, random_tensor(VOCAB * DIM, 1.0f), zeros(COUNT * DIM),
                      random_tensor(COUNT * DIM, 1.0f)};
    float *dtable = zeros(VOCAB * DIM);
    snprintf(context, sizeof(context), "embedding backward");
    CHECK(embedding_backward(dtable, o.r, tokens, COUNT, VOCAB, DIM) == ROPE_OK);
    check_gradient("embedding dtable", embedding_objective, &o, o.table, dtable, VOCAB * DIM);
    snprintf(context, sizeof(context), "embedding errors: checked before writing");
    int32_t bad[COUNT] = {0, 1, 2, 3, 4, 5, 0};
    memset(o.out, 0, COUNT * DIM * sizeof(float));
    CHECK(embedding_forward(o.out, bad, o.table, COUNT, VOCAB, DIM) == ROPE_ERR_TOKEN);
    CHECK(o.out[0] == 0.0f);
    CHECK(embedding_backward(dtable, o.r, bad, COUNT, VOCAB, DIM) == ROPE_ERR_TOKEN);
    CHECK(embedding_forward(o.out, tokens, NULL, COUNT, VOCAB, DIM) == ROPE_ERR_NULL);
    CHECK(embedding_forward(o.out, tokens, o.table, COUNT, VOCAB, 0) == ROPE_ERR_SHAPE);
    free(o.table); free(o.out); free(o.r); free(dtable);
}

// ----------------------------------------------------------------------------
// the whole model, on a sample of parameters

typedef struct {
    transformer *model;
    const int32_t *tokens, *targets;
    int seq, batch;
} model_op;

// The sum of the per-token cross-entropies, from the logits in double (the float loss would lose
// digits the differences need).
static double model_objective(void *p) {
    model_op *o = p;
    transformer_forward(o->model, o->tokens, NULL, o->seq, o->batch, NULL);
    const float *logits = transformer_logits(o->model);
    int rows = o->seq * o->batch, vocab = 11;
    double sum = 0.0;
    for (int r = 0; r < rows; r++) {
        const float *z = logits + (size_t)r * vocab;
        double m = z[0], exp_sum = 0.0;
        for (int i = 1; i < vocab; i++) m = z[i] > m ? z[i] : m;
        for (int i = 0; i < vocab; i++) exp_sum += exp(z[i] - m);
        sum += log(exp_sum) + m - z[o->targets[r]];
    }
    return sum;
}

static void test_model(void) {
    // d_k 8 with 3/4 of it rotated (6 features), 3 layers, seq 5 x batch 2.
    model_config config = {11, 16, 2, 3, 24, 0.75, 10000.0};
    enum { SEQ = 5, BATCH = 2 };
    int32_t tokens[SEQ * BATCH] = {1, 7, 3, 3, 10, 0, 5, 2, 9, 4};
    int32_t targets[SEQ * BATCH] = {7, 3, 3, 10, 0, 5, 2, 9, 4, 8};
    transformer *model = NULL;
    rng_state = 77;  // its own stream: the sample does not change when other tests are added
    snprintf(context, sizeof(context), "whole model");
    CHECK(transformer_create(&config, 8, 3, &model) == ROPE_OK);
    if (!model) return;
    transformer_init(model, 99);
    float *params = transformer_params(model);
    int64_t n = transformer_param_count(model);
    // LayerNorm weights and biases start at 1 and 0: move them so their gradients are generic.
    for (int64_t i = 0; i < n; i++) params[i] += 0.1f * random_float();
    float loss;
    CHECK(transformer_forward(model, tokens, targets, SEQ, BATCH, &loss) == ROPE_OK);
    CHECK(transformer_backward(model, 1.0f) == ROPE_OK);  // the sum of the token losses
    float *grads = malloc((size_t)n * sizeof(float));
    memcpy(grads, transformer_grads(model), (size_t)n * sizeof(float));
    model_op o = {model, tokens, targets, SEQ, BATCH};
    // Per tensor: its three largest-gradient elements (a relative check) and two random ones.
    int count = transformer_tensor_count(model);
    double worst = 0.0;
    int samples = 0, kinks = 0;
    for (int t = 0; t < count; t++) {
        int64_t offset = transformer_tensor_offset(model, t), size = transformer_tensor_size(model, t);
        int64_t picks[5];
        for (int j = 0; j < 3; j++) {
            int64_t best = -1;
            for (int64_t i = 0; i < size; i++) {
                int taken = 0;
                for (int q = 0; q < j; q++) taken |= picks[q] == offset + i;
                if (!taken && (best < 0 || fabsf(grads[offset + i]) > fabsf(grads[best]))) best = offset + i;
            }
            picks[j] = best;
        }
        picks[3] = offset + (int64_t)((random_float() + 1.0f) * 0.5f * (float)size) % size;
        picks[4] = offset + (int64_t)((random_float() + 1.0f) * 0.5f * (float)size) % size;
        double diff = 0.0, norm = 0.0;
        for (int j = 0; j < 5; j++) {
            float analytic = grads[picks[j]], saved = params[picks[j]];
            double middle = model_objective(&o);
            params[picks[j]] = saved + MODEL_EPS;
            double up = model_objective(&o);
            params[picks[j]] = saved - MODEL_EPS;
            double down = model_objective(&o);
            params[picks[j]] = saved;
            // A ReLU input that crosses 0 within +-MODEL_EPS puts a kink in the step: the one-sided
            // differences then disagree by far more than the curvature explains. Such samples
            // say nothing about the gradient and are left out (a few are expected; most samples must count).
            double forward = (up - middle) / MODEL_EPS, backward = (middle - down) / MODEL_EPS;
            if (fabs(forward - backward) > KINK_RELATIVE * fmax(fabs(forward), fabs(backward)) + KINK_ABSOLUTE) {
                kinks++;
                continue;
            }
            double numeric = (up - down) / (2.0 * MODEL_EPS);
            diff += (numeric - analytic) * (numeric - analytic);
            norm += (double)analytic * analytic;
            samples++;
        }
        double error = sqrt(diff) / (norm > 0.0 ? sqrt(norm) : 1.0);
        snprintf(context, sizeof(context), "whole model: gradient of %s, relative error %.3g",
                 transformer_tensor_name(model, t), error);
        CHECK(error <= MODEL_TOLERANCE);
        worst = error > worst ? error : worst;
    }
    printf("whole model: worst relative error of a tensor's sampled gradients %.3g (%d samples, %d across a ReLU kink)\n",
           worst, samples, kinks);
    snprintf(context, sizeof(context), "whole model: %d of %d samples across a ReLU kink", kinks, samples + kinks);
    CHECK(kinks <= (samples + kinks) / 4);
    free(grads);
    transformer_destroy(model);
}

int main(void) {
    test_layernorm(5, 7);
    test_layernorm(3, 32);
    test_linear(6, 5, 3);
    test_linear(9, 13, 10);
    // seq 7 and 9: not multiples of the kernels' 4-row and 8-column tiles.
    test_attention(7, 2, 3, 8, 4, 1);     // partial RoPE, causal
    test_attention(9, 1, 2, 12, 12, 1);   // full RoPE, head_dim not a multiple of 8
    test_attention(6, 2, 2, 6, 2, 0);     // non-causal
    test_attention(5, 2, 1, 4, 0, 1);     // no RoPE
    test_attention(70, 1, 1, 4, 4, 1);    // causal blocks of 32 rows: 32, 32 and 6
    test_attention(40, 1, 1, 4, 2, 0);    // non-causal: one block
    test_cross_entropy();
    test_embedding();
    printf("ops: worst relative error of a gradient %.3g\n", worst_op_error);
    test_model();
    return check_report();
}
