// test_scores.c: unit tests of rope_scores (c/rope_scores.h) against a float64 reference written
// here: every query and key rotated at its position in double, then the dot products in double.
//
// Built twice by build.sh: build/test_scores (ASan + UBSan + LeakSanitizer) and
// build/test_scores_plain (run under valgrind). Prints each failure, then "N passed, M failed";
// exits non-zero on any failure.
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "rope_errors.h"
#include "rope_scores.h"

#include "check.h"

// float32 rotation (cos/sin rounded, one multiply-add) and the sums, relative to |q_i| |k_j| s^2
// (the largest a score can be, s the attention scaling).
#define TOLERANCE 2e-6

// ----------------------------------------------------------------------------
// float64 reference

// y = x with its first dim features rotated to position p: inv_freq [dim/2], cos and sin times
// scaling, features [dim, head_dim) passed through.
static void reference_rotate(const float *x, double *y, int head_dim, int dim, int pairing, const double *inv_freq,
                             double scaling, double p) {
    int half = dim / 2;
    for (int f = 0; f < head_dim; f++) y[f] = x[f];
    for (int i = 0; i < half; i++) {
        int a = pairing == ROPE_PAIRING_HALF ? i : 2 * i;
        int b = pairing == ROPE_PAIRING_HALF ? i + half : 2 * i + 1;
        double c = cos(p * inv_freq[i]) * scaling, s = sin(p * inv_freq[i]) * scaling;
        y[a] = x[a] * c - x[b] * s;
        y[b] = x[b] * c + x[a] * s;
    }
}

// ref [n_q, n_k] = scale * rot(q_i) . rot(k_j); bound [n_q, n_k] = |q_i| |k_j| scaling^2 |scale|.
static void reference_scores(const float *q, const float *k, int n_q, int n_k, int head_dim, int dim, int pairing,
                             const double *inv_freq, double scaling, const int32_t *pos_q, const int32_t *pos_k,
                             double scale, double *ref, double *bound) {
    double *rq = malloc((size_t)n_q * head_dim * sizeof(double));
    double *rk = malloc((size_t)n_k * head_dim * sizeof(double));
    for (int i = 0; i < n_q; i++) {
        reference_rotate(q + (size_t)i * head_dim, rq + (size_t)i * head_dim, head_dim, dim, pairing, inv_freq, scaling,
                         pos_q ? pos_q[i] : i);
    }
    for (int j = 0; j < n_k; j++) {
        reference_rotate(k + (size_t)j * head_dim, rk + (size_t)j * head_dim, head_dim, dim, pairing, inv_freq, scaling,
                         pos_k ? pos_k[j] : j);
    }
    for (int i = 0; i < n_q; i++) {
        for (int j = 0; j < n_k; j++) {
            double s = 0, nq = 0, nk = 0;
            for (int f = 0; f < head_dim; f++) {
                s += rq[(size_t)i * head_dim + f] * rk[(size_t)j * head_dim + f];
                nq += (double)q[(size_t)i * head_dim + f] * q[(size_t)i * head_dim + f];
                nk += (double)k[(size_t)j * head_dim + f] * k[(size_t)j * head_dim + f];
            }
            ref[(size_t)i * n_k + j] = s * scale;
            bound[(size_t)i * n_k + j] = sqrt(nq * nk) * scaling * scaling * fabs(scale) + 1e-30;
        }
    }
    free(rq);
    free(rk);
}

static uint32_t rng_state = 2024;
static float random_float(void) {  // xorshift32, uniform in [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)((rng_state >> 8) * (2.0 / 16777216.0) - 1.0);
}

static float *random_matrix(int rows, int cols) {
    size_t n = (size_t)rows * cols;
    float *m = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) m[i] = random_float();
    return m;
}

static void default_inv_freq(double *inv_freq, int dim, double base) {
    for (int i = 0; i < dim / 2; i++) inv_freq[i] = 1.0 / pow(base, (double)(2 * i) / dim);
}

// Runs rope_scores and returns max |S - ref| / bound over the matrix; INFINITY when the call
// fails or q or k was modified. inv_freq NULL: read the embedding's after the call (scalings).
static double scores_error(rope_embedding *r, int n_q, int n_k, int head_dim, const int32_t *pos_q,
                           const int32_t *pos_k, double scale, const double *inv_freq) {
    float *q = random_matrix(n_q, head_dim), *k = random_matrix(n_k, head_dim);
    float *q_copy = random_matrix(n_q, head_dim), *k_copy = random_matrix(n_k, head_dim);
    memcpy(q_copy, q, (size_t)n_q * head_dim * sizeof(float));
    memcpy(k_copy, k, (size_t)n_k * head_dim * sizeof(float));
    size_t cells = (size_t)n_q * n_k;
    float *s = malloc((cells ? cells : 1) * sizeof(float));
    double *ref = malloc((cells ? cells : 1) * sizeof(double)), *bound = malloc((cells ? cells : 1) * sizeof(double));
    double worst = INFINITY;
    if (rope_scores(r, q, k, s, n_q, n_k, head_dim, pos_q, pos_k, scale) == ROPE_OK &&
        memcmp(q, q_copy, (size_t)n_q * head_dim * sizeof(float)) == 0 &&
        memcmp(k, k_copy, (size_t)n_k * head_dim * sizeof(float)) == 0) {
        reference_scores(q, k, n_q, n_k, head_dim, r->dim, r->pairing, inv_freq ? inv_freq : rope_inv_freq(r),
                         rope_attention_scaling(r), pos_q, pos_k, scale, ref, bound);
        worst = 0;
        for (size_t c = 0; c < cells; c++) {
            double e = fabs(s[c] - ref[c]) / bound[c];
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    }
    free(q);
    free(k);
    free(q_copy);
    free(k_copy);
    free(s);
    free(ref);
    free(bound);
    return worst;
}

// n positions in [center - spread, center + spread). (A narrow window: the embedding caches
// cos/sin rows for every position between the lowest and the highest.)
static int32_t *random_positions(int n, int center, int spread) {
    int32_t *p = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    for (int i = 0; i < n; i++) p[i] = center + (int32_t)(random_float() * spread);
    return p;
}

static const char *pairing_name(int pairing) { return pairing == ROPE_PAIRING_HALF ? "half" : "interleaved"; }

// ----------------------------------------------------------------------------
// tests

// Both pairings; rotary dims whose rows are shorter than, equal to and longer than a block of 16;
// pass-through features (head_dim > dim, also not a multiple of 4); key counts that fill groups
// of four and leave 1 to 3 over; random, negative and large positions; a scale.
static void test_against_reference(void) {
    int dims[] = {2, 6, 16, 64, 128};
    int extras[] = {0, 3, 16};
    int counts[][2] = {{1, 1}, {3, 5}, {4, 8}, {7, 9}, {16, 13}};
    for (int pairing = 0; pairing < 2; pairing++) {
        for (int d = 0; d < 5; d++) {
            for (int e = 0; e < 3; e++) {
                for (int c = 0; c < 5; c++) {
                    int dim = dims[d], head_dim = dim + extras[e], n_q = counts[c][0], n_k = counts[c][1];
                    double inv_freq[64];
                    default_inv_freq(inv_freq, dim, 10000.0);
                    rope_embedding *r = rope_create(dim, 10000.0, pairing);
                    int center = c == 4 ? 1000000 : 0;  // the last: positions around 1e6; the others +-600
                    int32_t *pos_q = random_positions(n_q, center, 600), *pos_k = random_positions(n_k, center, 600);
                    double scale = c % 2 ? 0.125 : 1.0;
                    snprintf(context, sizeof(context), "%s dim %d head_dim %d n_q %d n_k %d scale %g", pairing_name(pairing),
                             dim, head_dim, n_q, n_k, scale);
                    CHECK(scores_error(r, n_q, n_k, head_dim, pos_q, pos_k, scale, inv_freq) < TOLERANCE);
                    free(pos_q);
                    free(pos_k);
                    rope_destroy(r);
                }
            }
        }
    }
}

// NULL positions are 0, 1, ..., n - 1: bit for bit the explicit ones.
static void test_default_positions(void) {
    int n_q = 6, n_k = 9, head_dim = 24, dim = 16;
    rope_embedding *r = rope_create(dim, 500.0, ROPE_PAIRING_INTERLEAVED);
    float *q = random_matrix(n_q, head_dim), *k = random_matrix(n_k, head_dim);
    int32_t pos[9];
    for (int i = 0; i < 9; i++) pos[i] = i;
    float a[54], b[54];
    snprintf(context, sizeof(context), "NULL positions");
    CHECK(rope_scores(r, q, k, a, n_q, n_k, head_dim, NULL, NULL, 1.0) == ROPE_OK);
    CHECK(rope_scores(r, q, k, b, n_q, n_k, head_dim, pos, pos, 1.0) == ROPE_OK);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    double inv_freq[8];
    default_inv_freq(inv_freq, dim, 500.0);
    CHECK(scores_error(r, n_q, n_k, head_dim, NULL, NULL, 1.0, inv_freq) < TOLERANCE);
    free(q);
    free(k);
    rope_destroy(r);
}

// The score depends only on m - n, to float32 rounding: one query at m + t against one key at
// n + t for shifts t up to 1e6, the page's lock m - n; and a key scores the same bit for bit
// alone (the page's readout) and among others, in a group of four or in the tail (its heatmap).
static void test_relative_and_consistent(void) {
    int head_dim = 64, dim = 64;
    rope_embedding *r = rope_create(dim, 10000.0, ROPE_PAIRING_HALF);
    float *q = random_matrix(1, head_dim), *k = random_matrix(7, head_dim);
    int32_t m = 40, n = 25;
    float first = 0, s;
    double worst = 0;
    for (int t = 0; t <= 1000000; t = t ? t * 10 : 1) {
        int32_t pm = m + t, pn = n + t;
        CHECK(rope_scores(r, q, k, &s, 1, 1, head_dim, &pm, &pn, 1.0) == ROPE_OK);
        if (t == 0) first = s;
        if (fabs(s - first) > worst) worst = fabs(s - first);
    }
    snprintf(context, sizeof(context), "lock m - n: worst drift %g", worst);
    CHECK(worst <= 1e-5);

    int32_t pos_q[1] = {12}, pos_k[7] = {0, 3, 7, 100, -5, 12, 4000};
    float all[7], one;
    CHECK(rope_scores(r, q, k, all, 1, 7, head_dim, pos_q, pos_k, 1.0) == ROPE_OK);
    for (int j = 0; j < 7; j++) {
        snprintf(context, sizeof(context), "key %d alone and among 7", j);
        CHECK(rope_scores(r, q, k + (size_t)j * head_dim, &one, 1, 1, head_dim, pos_q, pos_k + j, 1.0) == ROPE_OK);
        CHECK(memcmp(&one, &all[j], sizeof(float)) == 0);
    }
    free(q);
    free(k);
    rope_destroy(r);
}

// Scalings: the queries and keys are rotated with the frequencies and attention scaling the
// embedding reports after the call. Dynamic NTK and LongRoPE pick them from the longest position
// of queries and keys together: queries past the original context and keys within it still agree.
static void test_scalings(void) {
    int head_dim = 40, dim = 32, n_q = 5, n_k = 6;
    int32_t pos_q[5] = {10, 300, 700, 1500, 2047}, pos_k[6] = {0, 1, 2, 3, 4, 5};
    double short_factor[16], long_factor[16];
    for (int i = 0; i < 16; i++) {
        short_factor[i] = 1.0 + i * 0.05;
        long_factor[i] = 1.0 + i * 0.5;
    }
    for (int type = 0; type < 5; type++) {
        rope_embedding *r = rope_create(dim, 10000.0, ROPE_PAIRING_HALF);
        int status = type == 0   ? rope_set_linear(r, 4.0)
                     : type == 1 ? rope_set_dynamic(r, 4.0, 512)
                     : type == 2 ? rope_set_yarn(r, 8.0, 512, 32, 1, 0, 0, 0, 1)
                     : type == 3 ? rope_set_llama3(r, 8.0, 1.0, 4.0, 512)
                                 : rope_set_longrope(r, short_factor, long_factor, 512, 4096, 0);
        snprintf(context, sizeof(context), "scaling %d", type);
        CHECK(status == ROPE_OK);
        CHECK(scores_error(r, n_q, n_k, head_dim, pos_q, pos_k, 1.0, NULL) < TOLERANCE);
        if (type == 1 || type == 4) {
            // The frequencies in force are the long ones (queries reach 2048 > 512).
            rope_embedding *plain = rope_create(dim, 10000.0, ROPE_PAIRING_HALF);
            CHECK(rope_inv_freq(r)[dim / 2 - 1] < rope_inv_freq(plain)[dim / 2 - 1]);
            rope_destroy(plain);
        }
        if (type == 2) CHECK(rope_attention_scaling(r) > 1.0);
        rope_destroy(r);
    }
}

// NaN and infinity reach exactly the scores that depend on them: a NaN query row makes its row
// NaN, an infinite key feature its column; every other score is finite.
static void test_non_finite(void) {
    int n_q = 3, n_k = 6, head_dim = 20;
    rope_embedding *r = rope_create(16, 10000.0, ROPE_PAIRING_HALF);
    float *q = random_matrix(n_q, head_dim), *k = random_matrix(n_k, head_dim);
    q[1 * head_dim + 18] = NAN;     // a pass-through feature of query 1
    k[4 * head_dim + 3] = INFINITY;  // a rotated feature of key 4
    float s[18];
    snprintf(context, sizeof(context), "NaN and inf");
    CHECK(rope_scores(r, q, k, s, n_q, n_k, head_dim, NULL, NULL, 1.0) == ROPE_OK);
    for (int i = 0; i < n_q; i++) {
        for (int j = 0; j < n_k; j++) {
            int finite = isfinite(s[i * n_k + j]);
            snprintf(context, sizeof(context), "NaN and inf: score %d, %d = %g", i, j, s[i * n_k + j]);
            CHECK(finite == (i != 1 && j != 4));
        }
    }
    free(q);
    free(k);
    rope_destroy(r);
}

// Bad arguments return their status and write nothing; empty matrices are fine.
static void test_errors(void) {
    rope_embedding *r = rope_create(8, 10000.0, ROPE_PAIRING_HALF);
    float q[16] = {0}, k[16] = {0}, s[4];
    const float sentinel = 12345.0f;
    for (int i = 0; i < 4; i++) s[i] = sentinel;
    snprintf(context, sizeof(context), "errors");
    CHECK(rope_scores(NULL, q, k, s, 2, 2, 8, NULL, NULL, 1.0) == ROPE_ERR_NULL);
    CHECK(rope_scores(r, NULL, k, s, 2, 2, 8, NULL, NULL, 1.0) == ROPE_ERR_NULL);
    CHECK(rope_scores(r, q, NULL, s, 2, 2, 8, NULL, NULL, 1.0) == ROPE_ERR_NULL);
    CHECK(rope_scores(r, q, k, NULL, 2, 2, 8, NULL, NULL, 1.0) == ROPE_ERR_NULL);
    CHECK(rope_scores(r, q, k, s, -1, 2, 8, NULL, NULL, 1.0) == ROPE_ERR_SHAPE);
    CHECK(rope_scores(r, q, k, s, 2, -1, 8, NULL, NULL, 1.0) == ROPE_ERR_SHAPE);
    CHECK(rope_scores(r, q, k, s, 2, 2, 0, NULL, NULL, 1.0) == ROPE_ERR_SHAPE);
    CHECK(rope_scores(r, q, k, s, 2, 2, INT_MAX, NULL, NULL, 1.0) == ROPE_ERR_SHAPE);
    CHECK(rope_scores(r, q, k, s, 2, 2, 6, NULL, NULL, 1.0) == ROPE_ERR_DIM);  // head_dim < dim 8
    CHECK(rope_scores(r, q, k, s, 2, 2, 8, NULL, NULL, NAN) == ROPE_ERR_SCALE);
    CHECK(rope_scores(r, q, k, s, 2, 2, 8, NULL, NULL, INFINITY) == ROPE_ERR_SCALE);
    // Queries and keys that together leave int: refused before any read. (Scratch too large to
    // address only happens in 32-bit wasm: tests/scores.test.js.)
    CHECK(rope_scores(r, q, k, s, INT_MAX, 1, 8, NULL, NULL, 1.0) == ROPE_ERR_SHAPE);
    int untouched = 1;
    for (int i = 0; i < 4; i++) untouched &= s[i] == sentinel;
    CHECK(untouched);

    snprintf(context, sizeof(context), "empty");
    CHECK(rope_scores(r, NULL, k, NULL, 0, 2, 8, NULL, NULL, 1.0) == ROPE_OK);
    CHECK(rope_scores(r, q, NULL, NULL, 2, 0, 8, NULL, NULL, 1.0) == ROPE_OK);
    CHECK(rope_scores(r, NULL, NULL, NULL, 0, 0, 8, NULL, NULL, 1.0) == ROPE_OK);
    // Still usable after all of that.
    CHECK(rope_scores(r, q, k, s, 2, 2, 8, NULL, NULL, 1.0) == ROPE_OK && s[0] == 0.0f);
    rope_destroy(r);
}

int main(void) {
    test_against_reference();
    test_default_positions();
    test_relative_and_consistent();
    test_scalings();
    test_non_finite();
    test_errors();
    return check_report();
}
