// test_mha.c: rope_mha_forward (the seed's RotaryPEMultiHeadAttention) against a float64
// reference written here, and against the rope_mha cases of ../shared/reference.
//
//   cc -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
//      -Ic c/rope.c c/rope_freq.c c/rope_kernel.c c/rope_table.c c/gemm.c c/attention.c c/mha.c
//      tests/native/test_mha.c -lm -o build/test_mha && build/test_mha
// and without sanitizers under valgrind.
//
// Run from the repository root: the reference cases are read from ../shared/reference (skipped,
// with a note, when absent). Prints each failure, then "N passed, M failed"; exits non-zero on any
// failure.
#define _POSIX_C_SOURCE 200809L  // opendir, readdir
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mha.h"
#include "rope.h"
#include "rope_errors.h"

// ----------------------------------------------------------------------------
// the one assert: counts, and on failure prints where, what and the current case

#include "check.h"

// Max abs error relative to the largest magnitude of the float64 truth (as the reference data's
// README asks of a float32 implementation).
#define TOLERANCE 1e-5
#define BASE 10000.0
#define REFERENCE_DIR "../shared/reference/cases"

// ----------------------------------------------------------------------------
// a case, its tensors, and the float64 reference

typedef struct {
    int seq, batch, d_model, heads;
    int rope_dim;  // 0: no RoPE
    int pairing;
    int causal;
    int mask_batch;  // 0: no mask; else 1 or batch
} mha_case;

static void describe(const mha_case *c, const char *what) {
    snprintf(context, sizeof(context), "%s: seq %d batch %d d_model %d heads %d rope %d%s%s mask %d", what, c->seq,
             c->batch, c->d_model, c->heads, c->rope_dim,
             c->rope_dim ? (c->pairing == ROPE_PAIRING_HALF ? " half" : " interleaved") : "", c->causal ? " causal" : "",
             c->mask_batch);
}

// The eight parameters of the four nn.Linear layers: weight [d_model, d_model], bias [d_model].
typedef struct {
    float *weight[4], *bias[4];  // query, key, value, output
} linears;

static uint32_t rng_state = 12345;
static float random_float(void) {  // xorshift32, uniform in [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)((rng_state >> 8) * (2.0 / 16777216.0) - 1.0);
}

// n floats uniform in [-amplitude, amplitude)
static float *random_tensor(size_t n, float amplitude) {
    float *t = malloc((n > 0 ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) t[i] = amplitude * random_float();
    return t;
}

// nn.Linear's initialisation: uniform in +-1/sqrt(in).
static linears random_linears(int d_model) {
    linears l;
    float bound = 1.0f / sqrtf((float)d_model);
    for (int i = 0; i < 4; i++) {
        l.weight[i] = random_tensor((size_t)d_model * d_model, bound);
        l.bias[i] = random_tensor((size_t)d_model, bound);
    }
    return l;
}

static void free_linears(linears *l) {
    for (int i = 0; i < 4; i++) {
        free(l->weight[i]);
        free(l->bias[i]);
    }
}

static mha_weights weights_of(const linears *l) {
    mha_weights w = {l->weight[0], l->bias[0], l->weight[1], l->bias[1], l->weight[2], l->bias[2], l->weight[3], l->bias[3]};
    return w;
}

// The seed's mask [seq, seq, mask_batch], random with about 1 in 4 keys masked; NULL without one.
static uint8_t *random_mask(const mha_case *c) {
    if (!c->mask_batch) return NULL;
    size_t n = (size_t)c->seq * c->seq * c->mask_batch;
    uint8_t *mask = malloc(n > 0 ? n : 1);
    for (size_t i = 0; i < n; i++) mask[i] = random_float() > -0.5f;
    return mask;
}

// Whether query i of batch row b sees key j: causal (j <= i) and the mask (0 = masked).
static int sees(const mha_case *c, const uint8_t *mask, int b, int i, int j) {
    if (c->causal && j > i) return 0;
    return !mask || mask[((size_t)i * c->seq + j) * c->mask_batch + (c->mask_batch == 1 ? 0 : b)] != 0;
}

// y[rows, n] = x[rows, n] w^T + bias (bias NULL: none), in float64.
static void linear(const double *x, const float *w, const float *bias, int rows, int n, double *y) {
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < n; o++) {
            double sum = bias ? bias[o] : 0.0;
            for (int i = 0; i < n; i++) sum += x[(size_t)r * n + i] * w[(size_t)o * n + i];
            y[(size_t)r * n + o] = sum;
        }
    }
}

// x: [dim] rotated in place to position p, pairing as the seed's (feature i with i + dim/2) or
// interleaved, theta_i = base^(-2i/dim).
static void rotate(double *x, int dim, int pairing, double base, int p) {
    int half = dim / 2;
    for (int i = 0; i < half; i++) {
        int a = pairing == ROPE_PAIRING_HALF ? i : 2 * i;
        int b = pairing == ROPE_PAIRING_HALF ? i + half : 2 * i + 1;
        double angle = p * pow(base, -2.0 * i / dim);
        double x1 = x[a], x2 = x[b];
        x[a] = x1 * cos(angle) - x2 * sin(angle);
        x[b] = x2 * cos(angle) + x1 * sin(angle);
    }
}

// y [seq, batch, d_model] in float64: q, k, v = the linears of x; RoPE on the first rope_dim
// features of every head of q and k at positions 0..seq-1; scores / sqrt(d_k), masked and causal
// keys left out, softmax over keys; a query that sees no key attends to zeros; output linear.
static void reference_mha(const mha_case *c, const float *x, const mha_weights *w, const uint8_t *mask, double base,
                          double *y) {
    int rows = c->seq * c->batch, dm = c->d_model, d_k = dm / c->heads;
    size_t n = (size_t)rows * dm;
    double *xd = malloc(n * sizeof(double)), *q = malloc(n * sizeof(double)), *k = malloc(n * sizeof(double));
    double *v = malloc(n * sizeof(double)), *attended = malloc(n * sizeof(double));
    double *scores = malloc((size_t)c->seq * sizeof(double));
    for (size_t i = 0; i < n; i++) xd[i] = x[i];
    linear(xd, w->query_weight, w->query_bias, rows, dm, q);
    linear(xd, w->key_weight, w->key_bias, rows, dm, k);
    linear(xd, w->value_weight, w->value_bias, rows, dm, v);
    for (int r = 0; r < rows && c->rope_dim; r++) {
        for (int h = 0; h < c->heads; h++) {
            rotate(q + (size_t)r * dm + (size_t)h * d_k, c->rope_dim, c->pairing, base, r / c->batch);
            rotate(k + (size_t)r * dm + (size_t)h * d_k, c->rope_dim, c->pairing, base, r / c->batch);
        }
    }
    for (int i = 0; i < c->seq; i++) {
        for (int b = 0; b < c->batch; b++) {
            for (int h = 0; h < c->heads; h++) {
                const double *qi = q + ((size_t)i * c->batch + b) * dm + (size_t)h * d_k;
                double *o = attended + ((size_t)i * c->batch + b) * dm + (size_t)h * d_k;
                double max = -INFINITY, sum = 0;
                for (int j = 0; j < c->seq; j++) {
                    if (!sees(c, mask, b, i, j)) continue;
                    const double *kj = k + ((size_t)j * c->batch + b) * dm + (size_t)h * d_k;
                    double dot = 0;
                    for (int f = 0; f < d_k; f++) dot += qi[f] * kj[f];
                    scores[j] = dot / sqrt((double)d_k);
                    max = fmax(max, scores[j]);
                }
                for (int j = 0; j < c->seq; j++) {
                    if (!sees(c, mask, b, i, j)) continue;
                    scores[j] = exp(scores[j] - max);
                    sum += scores[j];
                }
                for (int f = 0; f < d_k; f++) o[f] = 0;
                for (int j = 0; j < c->seq; j++) {
                    if (!sees(c, mask, b, i, j)) continue;
                    const double *vj = v + ((size_t)j * c->batch + b) * dm + (size_t)h * d_k;
                    for (int f = 0; f < d_k; f++) o[f] += scores[j] / sum * vj[f];
                }
            }
        }
    }
    linear(attended, w->output_weight, w->output_bias, rows, dm, y);
    free(xd);
    free(q);
    free(k);
    free(v);
    free(attended);
    free(scores);
}

// max |got - ref| / max |ref|; INFINITY when got holds a NaN or an infinity.
static double relative_error(const float *got, const double *ref, size_t n) {
    double err = 0, mag = 1e-30;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) return INFINITY;
        err = fmax(err, fabs(got[i] - ref[i]));
        mag = fmax(mag, fabs(ref[i]));
    }
    return err / mag;
}

// Runs c on random x and weights against the reference: y, x untouched, and a query that sees no
// key gives exactly the output bias. Returns the number of such queries. no_bias: the Linears
// have no bias (NULL), as nn.Linear(bias=False).
static int check_case(const mha_case *c, const char *what, int no_bias) {
    describe(c, what);
    size_t n = (size_t)c->seq * c->batch * c->d_model;
    float *x = random_tensor(n, 1.0f), *y = random_tensor(n, 1.0f);  // y: garbage to overwrite
    float *x_before = malloc((n > 0 ? n : 1) * sizeof(float));
    memcpy(x_before, x, n * sizeof(float));
    linears l = random_linears(c->d_model);
    mha_weights w = weights_of(&l);
    if (no_bias) w.query_bias = w.key_bias = w.value_bias = w.output_bias = NULL;
    uint8_t *mask = random_mask(c);
    rope_embedding *rope = c->rope_dim ? rope_create(c->rope_dim, BASE, c->pairing) : NULL;
    CHECK(rope_mha_forward(x, y, c->seq, c->batch, c->d_model, c->heads, &w, rope, c->causal, mask, c->mask_batch) ==
          ROPE_OK);
    double *ref = malloc((n > 0 ? n : 1) * sizeof(double));
    reference_mha(c, x, &w, mask, BASE, ref);
    CHECK(relative_error(y, ref, n) < TOLERANCE);
    CHECK(memcmp(x, x_before, n * sizeof(float)) == 0);
    int empty = 0, exact = 1;
    for (int i = 0; i < c->seq; i++) {
        for (int b = 0; b < c->batch; b++) {
            int seen = 0;
            for (int j = 0; j < c->seq; j++) seen |= sees(c, mask, b, i, j);
            if (seen) continue;
            empty++;
            for (int o = 0; o < c->d_model; o++) {
                exact &= y[((size_t)i * c->batch + b) * c->d_model + o] == (w.output_bias ? w.output_bias[o] : 0.0f);
            }
        }
    }
    CHECK(exact);
    rope_destroy(rope);
    free(mask);
    free_linears(&l);
    free(x);
    free(y);
    free(x_before);
    free(ref);
    return empty;
}

// ----------------------------------------------------------------------------
// tests

// d_model / heads with d_k even, odd and 1; no RoPE, partial (the seed's rope_percentage 0.5) and
// full; batch 1 and 3; causal or not; no mask, [seq, seq, 1] and [seq, seq, batch]; seq across the
// kernel's 4-row groups and 16-row query blocks.
static void test_configs(void) {
    int shapes[][2] = {{16, 2}, {12, 3}, {64, 4}, {20, 4}, {8, 8}};  // d_model, heads: d_k 8, 4, 16, 5, 1
    int seqs[] = {1, 7, 17};
    int n = 0;
    for (int s = 0; s < 5; s++) {
        int d_k = shapes[s][0] / shapes[s][1];
        int rope_dims[3] = {0, d_k / 2 / 2 * 2, d_k / 2 * 2};  // none, about half, all (even)
        for (int r = 0; r < 3; r++) {
            for (int batch = 1; batch <= 3; batch += 2) {
                for (int causal = 0; causal < 2; causal++) {
                    for (int mask = 0; mask < 3; mask++) {
                        mha_case c = {seqs[n++ % 3], batch, shapes[s][0], shapes[s][1], rope_dims[r],
                                      ROPE_PAIRING_HALF, causal, mask == 0 ? 0 : mask == 1 ? 1 : batch};
                        check_case(&c, "config", 0);
                    }
                }
            }
        }
    }
}

// Interleaved pairing, Linears without bias, and seq 0.
static void test_variants(void) {
    mha_case c = {9, 2, 24, 3, 8, ROPE_PAIRING_INTERLEAVED, 1, 2};
    check_case(&c, "interleaved pairing", 0);
    mha_case d = {6, 3, 16, 4, 4, ROPE_PAIRING_HALF, 0, 3};
    check_case(&d, "no biases", 1);

    snprintf(context, sizeof(context), "seq 0");
    float x[1] = {0}, y[1] = {42.0f};
    linears l = random_linears(8);
    mha_weights w = weights_of(&l);
    CHECK(rope_mha_forward(x, y, 0, 2, 8, 2, &w, NULL, 1, NULL, 0) == ROPE_OK);
    CHECK(y[0] == 42.0f);
    free_linears(&l);
}

// Queries the mask (with or without causal) leaves without a key attend to nothing: y is exactly
// the output bias there, and the rest still matches the reference.
static void test_fully_masked(void) {
    for (int causal = 0; causal < 2; causal++) {
        for (int mask_batch = 1; mask_batch <= 3; mask_batch += 2) {
            mha_case c = {5, 3, 16, 2, 4, ROPE_PAIRING_HALF, causal, mask_batch};
            describe(&c, "fully masked rows");
            // random_mask is not used here: this mask masks query 2 (of batch row 1, or of all)
            // entirely, and with causal query 0 too (its one causal key is masked).
            size_t n = (size_t)c.seq * c.batch * c.d_model, mask_size = (size_t)c.seq * c.seq * mask_batch;
            uint8_t *mask = malloc(mask_size);
            memset(mask, 1, mask_size);
            int b = mask_batch == 1 ? 0 : 1;
            for (int j = 0; j < c.seq; j++) mask[((size_t)2 * c.seq + j) * mask_batch + b] = 0;
            mask[b] = 0;  // query 0, key 0
            float *x = random_tensor(n, 1.0f), *y = malloc(n * sizeof(float));
            double *ref = malloc(n * sizeof(double));
            linears l = random_linears(c.d_model);
            mha_weights w = weights_of(&l);
            rope_embedding *rope = rope_create(c.rope_dim, BASE, c.pairing);
            CHECK(rope_mha_forward(x, y, c.seq, c.batch, c.d_model, c.heads, &w, rope, c.causal, mask, mask_batch) ==
                  ROPE_OK);
            reference_mha(&c, x, &w, mask, BASE, ref);
            CHECK(relative_error(y, ref, n) < TOLERANCE);
            int rows = mask_batch == 1 ? c.batch : 1;  // batch rows whose query 2 is masked
            int empty = 0;
            for (int i = 0; i < c.seq; i++) {
                for (int bb = 0; bb < c.batch; bb++) {
                    int all_bias = 1;
                    for (int o = 0; o < c.d_model; o++) {
                        all_bias &= y[((size_t)i * c.batch + bb) * c.d_model + o] == w.output_bias[o];
                    }
                    empty += all_bias;
                }
            }
            CHECK(empty == (causal ? 2 * rows : rows));
            rope_destroy(rope);
            free_linears(&l);
            free(mask);
            free(x);
            free(y);
            free(ref);
        }
    }
}

// Every refused argument, and y untouched by a refused call.
static void test_errors(void) {
    snprintf(context, sizeof(context), "errors");
    float x[64] = {0}, y[64];
    for (int i = 0; i < 64; i++) y[i] = 42.0f;
    uint8_t mask[4 * 4 * 2] = {0};
    linears l = random_linears(8);
    mha_weights w = weights_of(&l);
    rope_embedding *rope4 = rope_create(4, BASE, ROPE_PAIRING_HALF), *rope6 = rope_create(6, BASE, ROPE_PAIRING_HALF);
    // x, y: [seq 4, batch 2, d_model 8], 2 heads: d_k 4
    CHECK(rope_mha_forward(NULL, y, 4, 2, 8, 2, &w, NULL, 0, NULL, 0) == ROPE_ERR_NULL);
    CHECK(rope_mha_forward(x, NULL, 4, 2, 8, 2, &w, NULL, 0, NULL, 0) == ROPE_ERR_NULL);
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 2, NULL, NULL, 0, NULL, 0) == ROPE_ERR_NULL);
    const float **slots[4] = {&w.query_weight, &w.key_weight, &w.value_weight, &w.output_weight};
    for (int s = 0; s < 4; s++) {
        const float *saved = *slots[s];
        *slots[s] = NULL;
        CHECK(rope_mha_forward(x, y, 4, 2, 8, 2, &w, NULL, 0, NULL, 0) == ROPE_ERR_NULL);
        *slots[s] = saved;
    }
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 3, &w, NULL, 0, NULL, 0) == ROPE_ERR_HEADS);  // 3 does not divide 8
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 2, &w, NULL, 0, mask, 0) == ROPE_ERR_SHAPE);  // mask_batch 0
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 2, &w, NULL, 0, mask, 3) == ROPE_ERR_SHAPE);  // neither 1 nor batch
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 2, &w, rope6, 0, NULL, 0) == ROPE_ERR_DIM);   // 6 > d_k 4
    CHECK(rope_mha_forward(x, y, -1, 2, 8, 2, &w, NULL, 0, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_mha_forward(x, y, 4, 0, 8, 2, &w, NULL, 0, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_mha_forward(x, y, 4, 2, 0, 2, &w, NULL, 0, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 0, &w, NULL, 0, NULL, 0) == ROPE_ERR_SHAPE);
    int untouched = 1;
    for (int i = 0; i < 64; i++) untouched &= y[i] == 42.0f;
    CHECK(untouched);
    // The same calls, valid: rope dim = d_k, mask_batch 1 and batch, mask_batch ignored without a mask.
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 2, &w, rope4, 1, NULL, 0) == ROPE_OK);
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 2, &w, NULL, 0, mask, 1) == ROPE_OK);
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 2, &w, NULL, 0, mask, 2) == ROPE_OK);
    CHECK(rope_mha_forward(x, y, 4, 2, 8, 2, &w, NULL, 0, NULL, 7) == ROPE_OK);
    rope_destroy(rope4);
    rope_destroy(rope6);
    free_linears(&l);
}

// ----------------------------------------------------------------------------
// the rope_mha cases of ../shared/reference: NAME.json lists its arrays (raw little-endian f32 or
// f64, row-major): x [seq, batch, d_model], the eight Linear parameters, y_f64 (PyTorch, float64)

// The text of a file, NUL-terminated; NULL if it cannot be read.
static char *read_text(const char *path) {
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    size_t size = 0, capacity = 4096;
    char *text = malloc(capacity + 1);
    size_t got;
    while ((got = fread(text + size, 1, capacity - size, file)) > 0) {
        size += got;
        if (size == capacity) {
            capacity *= 2;
            text = realloc(text, capacity + 1);
        }
    }
    fclose(file);
    text[size] = '\0';
    return text;
}

// Where the value of "key" starts in json (after the colon and spaces); NULL if absent.
static const char *json_value(const char *json, const char *key) {
    char quoted[64];
    snprintf(quoted, sizeof(quoted), "\"%s\"", key);
    const char *at = strstr(json, quoted);
    if (!at) return NULL;
    at += strlen(quoted);
    while (*at == ' ' || *at == '\n' || *at == '\r' || *at == '\t' || *at == ':') at++;
    return at;
}

static double json_number(const char *json, const char *key) {
    const char *at = json_value(json, key);
    return at ? strtod(at, NULL) : NAN;
}

// The string value of "key" into dst (empty if absent).
static void json_string(const char *json, const char *key, char *dst, size_t size) {
    const char *at = json_value(json, key);
    dst[0] = '\0';
    if (!at || *at != '"') return;
    const char *end = strchr(at + 1, '"');
    size_t n = end ? (size_t)(end - at - 1) : 0;
    if (n >= size) n = size - 1;
    memcpy(dst, at + 1, n);
    dst[n] = '\0';
}

// One entry of the JSON's "arrays" list, read as doubles.
typedef struct {
    char name[64];
    int shape[4], rank;
    size_t count;  // the product of shape
    double *data;
} array;

static void free_arrays(array *arrays, int n) {
    for (int i = 0; i < n; i++) free(arrays[i].data);
}

// Parses one entry (the text of its {...}) into a and reads its file. Returns 0 if it cannot be
// read whole (a->data is allocated either way).
static int read_array(const char *object, array *a) {
    char dtype[16], file[256], path[512];
    json_string(object, "name", a->name, sizeof(a->name));
    json_string(object, "dtype", dtype, sizeof(dtype));
    json_string(object, "file", file, sizeof(file));
    a->rank = 0;
    a->count = 1;
    a->data = NULL;
    const char *at = json_value(object, "shape");
    if (!at || *at != '[') return 0;
    at++;
    while (*at != ']') {
        char *next;
        long extent = strtol(at, &next, 10);  // skips the spaces before the number
        if (next == at || extent < 0 || a->rank == 4) return 0;
        a->shape[a->rank++] = (int)extent;
        a->count *= (size_t)extent;
        at = next;
        while (*at == ' ' || *at == ',' || *at == '\n' || *at == '\r' || *at == '\t') at++;
    }
    a->data = malloc((a->count > 0 ? a->count : 1) * sizeof(double));
    int is_double = strcmp(dtype, "f64") == 0;
    if (!is_double && strcmp(dtype, "f32") != 0) return 0;
    snprintf(path, sizeof(path), "%s/%s", REFERENCE_DIR, file);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int ok = 1;
    for (size_t i = 0; i < a->count && ok; i++) {
        double d64;
        float f32;
        ok = is_double ? fread(&d64, sizeof(d64), 1, f) == 1 : fread(&f32, sizeof(f32), 1, f) == 1;
        a->data[i] = ok ? (is_double ? d64 : f32) : 0.0;
    }
    fclose(f);
    return ok;
}

// Reads every array of the case whose JSON is json into arrays (at most max); returns how many,
// or -1 (nothing left allocated) if one cannot be read whole.
static int read_arrays(const char *json, array *arrays, int max) {
    const char *at = json_value(json, "arrays");
    int n = 0;
    while (at && n < max && (at = strchr(at, '{')) != NULL) {
        const char *end = strchr(at, '}');  // the entries hold no nested objects
        char object[1024];
        if (!end || (size_t)(end - at) >= sizeof(object)) break;
        memcpy(object, at, (size_t)(end - at));
        object[end - at] = '\0';
        if (!read_array(object, &arrays[n++])) break;
        at = end;
    }
    if (at && (n == max || strchr(at, '{'))) {  // stopped early: a bad entry, or too many
        free_arrays(arrays, n);
        return -1;
    }
    return n;
}

static const array *find_array(const array *arrays, int n, const char *name, size_t count) {
    for (int i = 0; i < n; i++) {
        if (strcmp(arrays[i].name, name) == 0 && arrays[i].count == count) return &arrays[i];
    }
    return NULL;
}

// The named array as floats (NULL if absent or not `count` long); the caller frees it.
static float *array_floats(const array *arrays, int n, const char *name, size_t count) {
    const array *a = find_array(arrays, n, name, count);
    if (!a) return NULL;
    float *x = malloc((count > 0 ? count : 1) * sizeof(float));
    for (size_t j = 0; j < count; j++) x[j] = (float)a->data[j];
    return x;
}

// Runs one case: rope_mha_forward against y_f64, and this file's reference against y_f64 (so that
// the reference the other tests trust is the seed's).
static void run_reference_case(const char *json_name) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", REFERENCE_DIR, json_name);
    snprintf(context, sizeof(context), "reference case %s", json_name);
    char *json = read_text(path);
    array arrays[16];
    int n = json ? read_arrays(json, arrays, 16) : -1;
    CHECK(n == 11);
    if (n < 0) {
        free(json);
        return;
    }
    // [seq, batch, d_model] from x's shape, the rest from the case's parameters
    const array *x_array = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(arrays[i].name, "x") == 0 && arrays[i].rank == 3) x_array = &arrays[i];
    }
    mha_case c = {0, 0, 0, 0, 0, ROPE_PAIRING_HALF, 0, 0};
    if (x_array) {
        c.seq = x_array->shape[0];
        c.batch = x_array->shape[1];
    }
    c.d_model = (int)json_number(json, "d_model");
    c.heads = (int)json_number(json, "heads");
    c.rope_dim = (int)json_number(json, "d_rope");
    const char *causal = json_value(json, "causal");
    c.causal = causal && strncmp(causal, "true", 4) == 0;
    double base = json_number(json, "base");
    describe(&c, json_name);

    size_t count = (size_t)c.seq * c.batch * c.d_model, wn = (size_t)c.d_model * c.d_model;
    const char *names[8] = {"query_linear_weight", "query_linear_bias", "key_linear_weight", "key_linear_bias",
                            "value_linear_weight", "value_linear_bias", "output_weight", "output_bias"};
    float *params[8];
    int complete = x_array && c.d_model > 0 && c.heads > 0 && x_array->shape[2] == c.d_model && base > 0;
    for (int p = 0; p < 8; p++) {
        params[p] = array_floats(arrays, n, names[p], p % 2 ? (size_t)c.d_model : wn);
        complete &= params[p] != NULL;
    }
    float *x = array_floats(arrays, n, "x", count);
    const array *want = find_array(arrays, n, "y_f64", count);
    CHECK(complete && x && want);
    if (complete && x && want) {
        mha_weights w = {params[0], params[1], params[2], params[3], params[4], params[5], params[6], params[7]};
        rope_embedding *rope = c.rope_dim ? rope_create(c.rope_dim, base, ROPE_PAIRING_HALF) : NULL;
        float *y = malloc(count * sizeof(float));
        double *ref = malloc(count * sizeof(double));
        CHECK(rope_mha_forward(x, y, c.seq, c.batch, c.d_model, c.heads, &w, rope, c.causal, NULL, 0) == ROPE_OK);
        double error = relative_error(y, want->data, count);
        CHECK(error < TOLERANCE);
        reference_mha(&c, x, &w, NULL, base, ref);
        double ref_error = 0, magnitude = 1e-30;
        for (size_t i = 0; i < count; i++) {
            ref_error = fmax(ref_error, fabs(ref[i] - want->data[i]));
            magnitude = fmax(magnitude, fabs(want->data[i]));
        }
        // Not to 1e-16: the two float64 results differ by 3e-9..2e-8 of max |y| (the stored f32
        // arrays are not bit for bit what PyTorch's float64 run used); a wrong pairing, position
        // or scale would differ by O(1).
        CHECK(ref_error / magnitude < 1e-6);
        printf("%s: error %.3g of max |y_f64| (this file's float64 reference: %.3g)\n", json_name, error,
               ref_error / magnitude);
        rope_destroy(rope);
        free(y);
        free(ref);
    }
    for (int p = 0; p < 8; p++) free(params[p]);
    free(x);
    free_arrays(arrays, n);
    free(json);
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_reference_cases(void) {
    DIR *dir = opendir(REFERENCE_DIR);
    if (!dir) {
        printf("note: %s not found: the rope_mha reference cases were skipped (run from the repository root)\n",
               REFERENCE_DIR);
        return;
    }
    char *names[64];
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && n < 64) {
        size_t length = strlen(entry->d_name);
        if (strncmp(entry->d_name, "mha_", 4) == 0 && length > 5 && strcmp(entry->d_name + length - 5, ".json") == 0) {
            names[n] = malloc(length + 1);
            memcpy(names[n], entry->d_name, length + 1);
            n++;
        }
    }
    closedir(dir);
    snprintf(context, sizeof(context), "reference cases in %s", REFERENCE_DIR);
    CHECK(n > 0);  // the folder is there: its mha cases must be too
    qsort(names, (size_t)n, sizeof(names[0]), compare_names);
    for (int i = 0; i < n; i++) {
        run_reference_case(names[i]);
        free(names[i]);
    }
}

int main(void) {
    test_configs();
    test_variants();
    test_fully_masked();
    test_errors();
    test_reference_cases();
    return check_report();
}
