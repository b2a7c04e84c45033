// test_gemm.c: unit tests of gemm and gemm_linear against a float64 reference written here.
//
//   cc -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined
//      -fno-sanitize-recover=all -Ic c/gemm.c tests/native/test_gemm.c -lm -o build/test_gemm
//   build/test_gemm
// (and the same build without sanitizers under valgrind). Prints each failure, then "N passed, M failed";
// exits non-zero on any failure.
//
// Every matrix lives inside a larger buffer: its rows are padded (a leading dimension larger than
// its width) and the padding and a guard band around it hold NaN, so reading outside the matrix
// shows up as NaN in C; C's padding holds a sentinel that must survive, so writing outside shows up.
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "rope_errors.h"

// ----------------------------------------------------------------------------
// the one assert: counts, and on failure prints where, what and the current case

#include "check.h"

#define GUARD 16               // floats of NaN before and after every matrix
#define SENTINEL 12345.678f    // what C's padding holds, and must still hold afterwards
#define UNIT_ROUNDOFF 5.96e-8  // 2^-24

static uint32_t rng_state = 12345;
static float random_float(void) {  // xorshift32, uniform in [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)((rng_state >> 8) * (2.0 / 16777216.0) - 1.0);
}
static int random_int(int n) { return (int)(((uint32_t)((random_float() + 1.0f) * 8388608.0f)) % (uint32_t)n); }

// A stored matrix [rows, cols] with row stride ld inside a NaN-filled buffer.
typedef struct {
    float *buffer;  // GUARD + rows * ld + GUARD floats
    float *data;    // buffer + GUARD: element (i, j) is data[i * ld + j]
    int rows, cols, ld;
} matrix;

static matrix matrix_new(int rows, int cols, int ld, float pad) {
    matrix mat = {NULL, NULL, rows, cols, ld};
    size_t n = (size_t)rows * ld + 2 * GUARD;
    mat.buffer = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) mat.buffer[i] = NAN;
    mat.data = mat.buffer + GUARD;
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < ld; j++) mat.data[(size_t)i * ld + j] = j < cols ? random_float() : pad;
    }
    return mat;
}

static void matrix_free(matrix *mat) { free(mat->buffer); }

// The padding of every row still holds `pad` and the guard bands NaN: nothing was written outside.
static int outside_untouched(const matrix *mat, float pad) {
    for (int g = 0; g < GUARD; g++) {
        if (!isnan(mat->buffer[g]) || !isnan(mat->data[(size_t)mat->rows * mat->ld + g])) return 0;
    }
    for (int i = 0; i < mat->rows; i++) {
        for (int j = mat->cols; j < mat->ld; j++) {
            if (memcmp(&mat->data[(size_t)i * mat->ld + j], &pad, sizeof(float)) != 0) return 0;
        }
    }
    return 1;
}

// ----------------------------------------------------------------------------
// float64 reference

static double op_element(const matrix *mat, int trans, int i, int j) {
    return trans ? mat->data[(size_t)j * mat->ld + i] : mat->data[(size_t)i * mat->ld + j];
}

// Checks c (after gemm) against alpha op(A) op(B) + beta c0 computed in float64, element by
// element, within the float32 error bound of a k-term dot product: (k + 4) u (|alpha| sum |a b| +
// |beta c0|). c0 is C before the call (NULL when beta is 0: not read).
static int matches_reference(int trans_a, int trans_b, int m, int n, int k, float alpha, const matrix *a,
                             const matrix *b, float beta, const float *c0, const matrix *c) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double sum = 0, magnitude = 0;
            for (int p = 0; p < k; p++) {
                double term = op_element(a, trans_a, i, p) * op_element(b, trans_b, p, j);
                sum += term;
                magnitude += fabs(term);
            }
            double expected = alpha * sum, bound = fabs(alpha) * magnitude;
            if (beta != 0.0f) {
                expected += beta * (double)c0[(size_t)i * c->ld + j];
                bound += fabs(beta * (double)c0[(size_t)i * c->ld + j]);
            }
            double got = c->data[(size_t)i * c->ld + j];
            if (!(fabs(got - expected) <= (k + 4) * UNIT_ROUNDOFF * bound + 1e-30)) {
                printf("  C[%d, %d] = %.9g, expected %.9g (bound %.3g)\n", i, j, got, expected,
                       (k + 4) * UNIT_ROUNDOFF * bound);
                return 0;
            }
        }
    }
    return 1;
}

// One random gemm call: A, B, C with padded rows (C full of NaN when beta is 0, which must not be
// read), checked against the reference, and nothing outside C written.
static void check_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, float beta) {
    snprintf(context, sizeof(context), "gemm trans_a %d trans_b %d m %d n %d k %d alpha %g beta %g", trans_a,
             trans_b, m, n, k, alpha, beta);
    int a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
    int b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
    matrix a = matrix_new(a_rows, a_cols, a_cols + random_int(4), NAN);
    matrix b = matrix_new(b_rows, b_cols, b_cols + random_int(4), NAN);
    matrix c = matrix_new(m, n, n + random_int(4), SENTINEL);
    float *c0 = NULL;
    if (beta == 0.0f) {
        for (size_t i = 0; i < (size_t)m * c.ld; i++) {
            if (i % c.ld < (size_t)n) c.data[i] = NAN;
        }
    } else {
        c0 = malloc(((size_t)m * c.ld + 1) * sizeof(float));
        memcpy(c0, c.data, (size_t)m * c.ld * sizeof(float));
    }
    int status = gemm(trans_a, trans_b, m, n, k, alpha, a.data, a.ld, b.data, b.ld, beta, c.data, c.ld);
    CHECK(status == ROPE_OK);
    CHECK(matches_reference(trans_a, trans_b, m, n, k, alpha, &a, &b, beta, c0, &c));
    CHECK(outside_untouched(&c, SENTINEL));
    free(c0);
    matrix_free(&a);
    matrix_free(&b);
    matrix_free(&c);
}

// ----------------------------------------------------------------------------
// tests

// Every trans combination on every (m, n, k) from sizes around the 4x8 tile and the 4-wide
// packing steps (0, 1, 7, 33, ...), with alpha and beta drawn from a few values.
static void test_small_sizes(void) {
    int sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33};
    int count = (int)(sizeof(sizes) / sizeof(sizes[0]));
    float alphas[] = {1.0f, -0.5f, 2.0f, 0.0f};
    float betas[] = {0.0f, 1.0f, 0.75f, -2.0f};
    for (int trans = 0; trans < 4; trans++) {
        for (int im = 0; im < count; im++) {
            for (int in = 0; in < count; in++) {
                for (int ik = 0; ik < count; ik++) {
                    float alpha = alphas[random_int(4)], beta = betas[random_int(4)];
                    check_gemm(trans >> 1, trans & 1, sizes[im], sizes[in], sizes[ik], alpha, beta);
                }
            }
        }
    }
}

// Sizes that cross the cache blocks (kc 512, mc 128, nc 512), so k slices accumulate onto C and
// edge tiles meet block edges; beta 0 and not.
static void test_block_boundaries(void) {
    check_gemm(0, 1, 133, 521, 515, 1.0f, 0.0f);
    check_gemm(1, 0, 130, 515, 1030, -1.5f, 0.5f);
    check_gemm(0, 0, 257, 9, 513, 1.0f, 1.0f);
    check_gemm(1, 1, 5, 1031, 40, 0.25f, 0.0f);
    check_gemm(0, 0, 64, 64, 64, 1.0f, 0.0f);
    check_gemm(0, 1, 512, 128, 128, 1.0f, 0.0f);  // the attention projection's shape
}

// Random shapes up to 80, random trans, alpha, beta.
static void test_random_shapes(void) {
    for (int t = 0; t < 200; t++) {
        float alpha = random_float() * 3.0f, beta = random_int(3) == 0 ? 0.0f : random_float() * 2.0f;
        check_gemm(random_int(2), random_int(2), random_int(81), random_int(81), random_int(81), alpha, beta);
    }
}

// k 0: the product is an empty sum, C = beta C (and 0 when beta is 0, whatever C held).
static void test_k_zero(void) {
    snprintf(context, sizeof(context), "k 0");
    float c[6] = {1, 2, 3, 4, 5, NAN};
    CHECK(gemm(0, 0, 2, 3, 0, 1.0f, NULL, 0, NULL, 3, 0.5f, c, 3) == ROPE_OK);
    CHECK(c[0] == 0.5f && c[4] == 2.5f && isnan(c[5]));
    CHECK(gemm(0, 0, 2, 3, 0, 1.0f, NULL, 0, NULL, 3, 0.0f, c, 3) == ROPE_OK);
    int zeros = 1;
    for (int i = 0; i < 6; i++) zeros &= c[i] == 0.0f;
    CHECK(zeros);
}

// y = x w^T + bias against the reference, bias NULL or not, sizes including 0 and the tile edges.
static void test_linear(void) {
    int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {4, 8, 8}, {17, 33, 9}, {64, 128, 128}, {5, 0, 3},
                       {0, 4, 4}, {7, 4, 0}, {512, 128, 128}, {2, 129, 65}};
    for (int s = 0; s < (int)(sizeof(shapes) / sizeof(shapes[0])); s++) {
        int rows = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            snprintf(context, sizeof(context), "gemm_linear rows %d in %d out %d bias %d", rows, in, out, with_bias);
            matrix x = matrix_new(rows, in, in, NAN), w = matrix_new(out, in, in, NAN);
            matrix bias = matrix_new(1, out, out, NAN), y = matrix_new(rows, out, out, NAN);
            for (size_t i = 0; i < (size_t)rows * out; i++) y.data[i] = NAN;  // not read
            CHECK(gemm_linear(x.data, w.data, with_bias ? bias.data : NULL, y.data, rows, in, out) == ROPE_OK);
            // the reference with C0 = bias broadcast over the rows and beta 1 (or no bias, beta 0)
            float *c0 = malloc(((size_t)rows * out + 1) * sizeof(float));
            for (size_t i = 0; i < (size_t)rows * out; i++) c0[i] = bias.data[i % out];
            CHECK(matches_reference(0, 1, rows, out, in, 1.0f, &x, &w, with_bias ? 1.0f : 0.0f, c0, &y));
            CHECK(outside_untouched(&y, NAN));
            free(c0);
            matrix_free(&x);
            matrix_free(&w);
            matrix_free(&bias);
            matrix_free(&y);
        }
    }
}

// A NaN in x[r, p] makes row r of y NaN and nothing else; a NaN in w[j, p] makes column j NaN.
// Both in an edge tile (row 4 of 5, column 8 of 9) and inside a full one, at a k step in the
// transposed 4x4 blocks and in the scalar tail of packing.
static void test_nan_propagation(void) {
    int rows = 5, in = 7, out = 9;
    int cases[][3] = {{0, 0, 0}, {4, 6, 0}, {2, 3, 1}, {0, 6, 1}};  // {row or column, p, in w}
    for (int t = 0; t < 4; t++) {
        int at = cases[t][0], p = cases[t][1], in_w = cases[t][2];
        int column = in_w ? (at == 0 ? 8 : at) : -1, row = in_w ? -1 : at;
        snprintf(context, sizeof(context), "NaN in %s[%d, %d]", in_w ? "w" : "x", in_w ? column : row, p);
        matrix x = matrix_new(rows, in, in, NAN), w = matrix_new(out, in, in, NAN);
        float bias[9] = {0};
        float y[5 * 9];
        if (in_w) {
            w.data[column * in + p] = NAN;
        } else {
            x.data[row * in + p] = NAN;
        }
        CHECK(gemm_linear(x.data, w.data, bias, y, rows, in, out) == ROPE_OK);
        int exact = 1;
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < out; j++) exact &= isnan(y[i * out + j]) == (i == row || j == column);
        }
        CHECK(exact);
        matrix_free(&x);
        matrix_free(&w);
    }
    // the same through gemm with both operands transposed: NaN in op(A)[2, 5] -> row 2 of C
    snprintf(context, sizeof(context), "NaN in op(A), trans_a 1 trans_b 1");
    matrix a = matrix_new(9, 6, 6, NAN), b = matrix_new(10, 9, 9, NAN);  // op(A) [6, 9], op(B) [9, 10]
    float c[6 * 10];
    a.data[5 * 6 + 2] = NAN;
    CHECK(gemm(1, 1, 6, 10, 9, 1.0f, a.data, 6, b.data, 9, 0.0f, c, 10) == ROPE_OK);
    int exact = 1;
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 10; j++) exact &= isnan(c[i * 10 + j]) == (i == 2);
    }
    CHECK(exact);
    matrix_free(&a);
    matrix_free(&b);
}

static void test_errors(void) {
    float a[64] = {0}, b[64] = {0}, c[64] = {0};
    snprintf(context, sizeof(context), "gemm errors");
    CHECK(gemm(2, 0, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2) == ROPE_ERR_LAYOUT);
    CHECK(gemm(0, -1, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2) == ROPE_ERR_LAYOUT);
    CHECK(gemm(0, 0, -1, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2) == ROPE_ERR_SHAPE);
    CHECK(gemm(0, 0, 2, -1, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2) == ROPE_ERR_SHAPE);
    CHECK(gemm(0, 0, 2, 2, -1, 1.0f, a, 2, b, 2, 0.0f, c, 2) == ROPE_ERR_SHAPE);
    // leading dimensions shorter than the stored row: A [2, 3] needs lda >= 3, A^T [3, 2] lda >= 2
    CHECK(gemm(0, 0, 2, 2, 3, 1.0f, a, 2, b, 2, 0.0f, c, 2) == ROPE_ERR_SHAPE);
    CHECK(gemm(1, 0, 2, 2, 3, 1.0f, a, 2, b, 2, 0.0f, c, 2) == ROPE_OK);
    CHECK(gemm(1, 0, 3, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2) == ROPE_ERR_SHAPE);
    CHECK(gemm(0, 0, 2, 3, 2, 1.0f, a, 2, b, 2, 0.0f, c, 3) == ROPE_ERR_SHAPE);   // ldb < n
    CHECK(gemm(0, 1, 2, 3, 2, 1.0f, a, 2, b, 1, 0.0f, c, 3) == ROPE_ERR_SHAPE);   // B^T: ldb < k
    CHECK(gemm(0, 0, 2, 3, 2, 1.0f, a, 2, b, 3, 0.0f, c, 2) == ROPE_ERR_SHAPE);   // ldc < n
    CHECK(gemm(0, 0, 2, 2, 2, 1.0f, a, 2, b, -2, 0.0f, c, 2) == ROPE_ERR_SHAPE);
    // an extent past what a pointer can address, rejected before anything is touched
    CHECK(gemm(0, 0, INT_MAX, 1, INT_MAX, 1.0f, a, INT_MAX, b, 1, 0.0f, c, 1) == ROPE_ERR_SHAPE);
    CHECK(gemm(0, 0, INT_MAX, INT_MAX, 1, 1.0f, a, 1, b, INT_MAX, 0.0f, c, INT_MAX) == ROPE_ERR_SHAPE);
    // NULL only where a matrix has elements
    CHECK(gemm(0, 0, 2, 2, 2, 1.0f, NULL, 2, b, 2, 0.0f, c, 2) == ROPE_ERR_NULL);
    CHECK(gemm(0, 0, 2, 2, 2, 1.0f, a, 2, NULL, 2, 0.0f, c, 2) == ROPE_ERR_NULL);
    CHECK(gemm(0, 0, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, NULL, 2) == ROPE_ERR_NULL);
    CHECK(gemm(0, 0, 0, 2, 2, 1.0f, NULL, 2, b, 2, 0.0f, NULL, 2) == ROPE_OK);
    CHECK(gemm(0, 0, 2, 0, 2, 1.0f, a, 2, NULL, 0, 0.0f, NULL, 0) == ROPE_OK);
    CHECK(gemm(0, 0, 2, 2, 0, 1.0f, NULL, 0, NULL, 2, 0.0f, c, 2) == ROPE_OK);

    snprintf(context, sizeof(context), "gemm_linear errors");
    CHECK(gemm_linear(a, b, NULL, c, -1, 2, 2) == ROPE_ERR_SHAPE);
    CHECK(gemm_linear(a, b, NULL, c, 2, -1, 2) == ROPE_ERR_SHAPE);
    CHECK(gemm_linear(a, b, NULL, c, 2, 2, -1) == ROPE_ERR_SHAPE);
    CHECK(gemm_linear(NULL, b, NULL, c, 2, 2, 2) == ROPE_ERR_NULL);
    CHECK(gemm_linear(a, NULL, NULL, c, 2, 2, 2) == ROPE_ERR_NULL);
    CHECK(gemm_linear(a, b, NULL, NULL, 2, 2, 2) == ROPE_ERR_NULL);
    CHECK(gemm_linear(NULL, b, NULL, NULL, 0, 2, 2) == ROPE_OK);  // x and y empty, w not
    CHECK(gemm_linear(a, b, NULL, c, INT_MAX, INT_MAX, 2) == ROPE_ERR_SHAPE);
    // an error leaves y as it was
    c[0] = 7.0f;
    CHECK(gemm_linear(NULL, b, b, c, 2, 2, 2) == ROPE_ERR_NULL && c[0] == 7.0f);
}

int main(void) {
    test_small_sizes();
    test_block_boundaries();
    test_random_shapes();
    test_k_zero();
    test_linear();
    test_nan_propagation();
    test_errors();
    return check_report();
}
