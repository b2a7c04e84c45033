// test_rope.c: unit tests of the rope_* C API against a float64 reference written here.
//
// Built twice by build.sh: build/test_rope (ASan + UBSan + LeakSanitizer) and
// build/test_rope_plain (run under valgrind). Prints each failure, then "N passed, M failed";
// exits non-zero on any failure.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "rope_errors.h"

// ----------------------------------------------------------------------------
// the one assert: counts, and on failure prints where, what and the current case

#include "check.h"

#define PI 3.14159265358979323846
#define TOLERANCE 2e-6  // float32 rounding of cos, sin and one multiply-add, relative to max |y|

// ----------------------------------------------------------------------------
// float64 reference

// One rope_apply call, by logical sizes: the layout only decides where each vector lives.
typedef struct {
    int layout;
    int seq, batch, heads, head_dim;
    int offset;
    const int32_t *positions;  // NULL: token s has position offset + s
    int positions_len;         // seq, or batch * seq ([batch, seq])
    int inverse;
} apply_args;

// base^(-2i/dim) for i in [0, dim/2): inv_freq [dim/2]
static void default_inv_freq(double *inv_freq, int dim, double base) {
    for (int i = 0; i < dim / 2; i++) inv_freq[i] = 1.0 / pow(base, (double)(2 * i) / dim);
}

static int64_t count_floats(const apply_args *a) {
    return (int64_t)a->seq * a->batch * a->heads * a->head_dim;
}

// The index of head vector (s, b, h) in memory, for each layout written out on its own.
static int64_t vector_index(const apply_args *a, int s, int b, int h) {
    if (a->layout == ROPE_LAYOUT_SBHD) return ((int64_t)s * a->batch + b) * a->heads + h;
    if (a->layout == ROPE_LAYOUT_BSHD) return ((int64_t)b * a->seq + s) * a->heads + h;
    return ((int64_t)b * a->heads + h) * a->seq + s;  // BHSD
}

static int64_t position_of(const apply_args *a, int s, int b) {
    if (!a->positions) return (int64_t)a->offset + s;
    if (a->positions_len == a->seq) return a->positions[s];
    return a->positions[(int64_t)b * a->seq + s];
}

// ref: [count_floats(a)] = x with the first dim features of every vector rotated in float64.
static void reference_apply(const apply_args *a, int dim, int pairing, const double *inv_freq,
                            double scaling, const float *x, double *ref) {
    int half = dim / 2;
    for (int s = 0; s < a->seq; s++) {
        for (int b = 0; b < a->batch; b++) {
            double p = (double)position_of(a, s, b);
            for (int h = 0; h < a->heads; h++) {
                int64_t v = vector_index(a, s, b, h) * a->head_dim;
                for (int f = 0; f < a->head_dim; f++) ref[v + f] = x[v + f];
                for (int i = 0; i < half; i++) {
                    // the pair (j, k) this frequency rotates
                    int j = pairing == ROPE_PAIRING_HALF ? i : 2 * i;
                    int k = pairing == ROPE_PAIRING_HALF ? i + half : 2 * i + 1;
                    double angle = p * inv_freq[i] * (a->inverse ? -1.0 : 1.0);
                    double c = cos(angle) * scaling, sn = sin(angle) * scaling;
                    ref[v + j] = x[v + j] * c - x[v + k] * sn;
                    ref[v + k] = x[v + k] * c + x[v + j] * sn;
                }
            }
        }
    }
}

static uint32_t rng_state = 12345;
static float random_float(void) {  // xorshift32, uniform in [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)((rng_state >> 8) * (2.0 / 16777216.0) - 1.0);
}

static float *random_tensor(int64_t n) {
    float *t = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) t[i] = random_float();
    return t;
}

static int call_apply(rope_embedding *r, const apply_args *a, const float *x, float *y) {
    int n0 = a->layout == ROPE_LAYOUT_SBHD ? a->seq : a->batch;
    int n1 = a->layout == ROPE_LAYOUT_SBHD ? a->batch : a->layout == ROPE_LAYOUT_BSHD ? a->seq : a->heads;
    int n2 = a->layout == ROPE_LAYOUT_BHSD ? a->seq : a->heads;
    return rope_apply(r, x, y, a->layout, n0, n1, n2, a->head_dim, a->offset, a->positions,
                      a->positions_len, a->inverse);
}

// max |y - ref| / max |ref|
static double relative_error(const float *y, const double *ref, int64_t n) {
    double err = 0, mag = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        if (!(fabs(y[i] - ref[i]) <= err)) err = fabs(y[i] - ref[i]);  // NaN counts as infinite
        if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
    }
    return isnan(err) ? INFINITY : err / mag;
}

// Features [dim, head_dim) of every vector bit-identical in x and y.
static int tail_identical(const apply_args *a, int dim, const float *x, const float *y) {
    int64_t vectors = count_floats(a) / (a->head_dim ? a->head_dim : 1);
    size_t bytes = (size_t)(a->head_dim - dim) * sizeof(float);
    for (int64_t v = 0; v < vectors; v++) {
        if (bytes && memcmp(x + v * a->head_dim + dim, y + v * a->head_dim + dim, bytes) != 0) return 0;
    }
    return 1;
}

// Applies r to a random x and returns the error against the reference with inv_freq and
// scaling; INFINITY when rope_apply fails or the pass-through features changed.
static double apply_error(rope_embedding *r, int dim, int pairing, const double *inv_freq, double scaling,
                          const apply_args *a) {
    int64_t n = count_floats(a);
    float *x = random_tensor(n), *y = random_tensor(n);
    double *ref = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    double err = INFINITY;
    if (call_apply(r, a, x, y) == ROPE_OK && tail_identical(a, dim, x, y)) {
        reference_apply(a, dim, pairing, inv_freq, scaling, x, ref);
        err = relative_error(y, ref, n);
    }
    free(x);
    free(y);
    free(ref);
    return err;
}

// |a - b| <= 1e-12 |b|: frequencies are computed in double
static int close_to(double a, double b) { return fabs(a - b) <= 1e-12 * fabs(b); }

// ----------------------------------------------------------------------------
// tests

static const char *pairing_name(int pairing) { return pairing == ROPE_PAIRING_HALF ? "half" : "interleaved"; }

// Both pairings, dims whose half is 1, 3, 4, 7, 8, 64 (all-tail, SIMD + tail, SIMD only),
// head_dim == dim and head_dim > dim (pass-through), forward and inverse.
static void test_pairings_and_dims(void) {
    int dims[] = {2, 6, 8, 14, 16, 128};
    for (int pairing = 0; pairing < 2; pairing++) {
        for (int d = 0; d < 6; d++) {
            for (int extra = 0; extra <= 5; extra += 5) {
                int dim = dims[d];
                double inv_freq[64];
                default_inv_freq(inv_freq, dim, 10000.0);
                rope_embedding *r = rope_create(dim, 10000.0, pairing);
                apply_args a = {ROPE_LAYOUT_SBHD, 5, 2, 3, dim + extra, 3, NULL, 0, 0};
                snprintf(context, sizeof(context), "%s dim %d head_dim %d", pairing_name(pairing), dim, dim + extra);
                CHECK(r != NULL);
                CHECK(apply_error(r, dim, pairing, inv_freq, 1.0, &a) < TOLERANCE);
                a.inverse = 1;
                CHECK(apply_error(r, dim, pairing, inv_freq, 1.0, &a) < TOLERANCE);
                rope_destroy(r);
            }
        }
    }
}

// The same logical tensor in the three layouts gives bit-identical vectors, and matches the reference.
static void test_layouts_agree(void) {
    int seq = 4, batch = 3, heads = 2, head_dim = 20, dim = 16;
    int64_t n = (int64_t)seq * batch * heads * head_dim;
    rope_embedding *r = rope_create(dim, 10000.0, ROPE_PAIRING_INTERLEAVED);
    double inv_freq[8];
    default_inv_freq(inv_freq, dim, 10000.0);
    float *logical = random_tensor(n);  // [seq, batch, heads, head_dim]
    float *y_logical[3];
    for (int layout = 0; layout < 3; layout++) {
        apply_args a = {layout, seq, batch, heads, head_dim, 7, NULL, 0, 0};
        apply_args sbhd = a;
        sbhd.layout = ROPE_LAYOUT_SBHD;
        float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
        for (int s = 0; s < seq; s++)
            for (int b = 0; b < batch; b++)
                for (int h = 0; h < heads; h++)
                    memcpy(x + vector_index(&a, s, b, h) * head_dim, logical + vector_index(&sbhd, s, b, h) * head_dim,
                           (size_t)head_dim * sizeof(float));
        snprintf(context, sizeof(context), "layout %d", layout);
        CHECK(call_apply(r, &a, x, y) == ROPE_OK);
        double *ref = malloc((size_t)n * sizeof(double));
        reference_apply(&a, dim, ROPE_PAIRING_INTERLEAVED, inv_freq, 1.0, x, ref);
        CHECK(relative_error(y, ref, n) < TOLERANCE);
        // back to [seq, batch, heads, head_dim] to compare the layouts
        y_logical[layout] = malloc((size_t)n * sizeof(float));
        for (int s = 0; s < seq; s++)
            for (int b = 0; b < batch; b++)
                for (int h = 0; h < heads; h++)
                    memcpy(y_logical[layout] + vector_index(&sbhd, s, b, h) * head_dim, y + vector_index(&a, s, b, h) * head_dim,
                           (size_t)head_dim * sizeof(float));
        free(x);
        free(y);
        free(ref);
    }
    snprintf(context, sizeof(context), "layouts agree");
    CHECK(memcmp(y_logical[0], y_logical[1], (size_t)n * sizeof(float)) == 0);
    CHECK(memcmp(y_logical[0], y_logical[2], (size_t)n * sizeof(float)) == 0);
    for (int layout = 0; layout < 3; layout++) free(y_logical[layout]);
    free(logical);
    rope_destroy(r);
}

// offset == the explicit positions offset + s, given per token ([seq]) or per batch row
// ([batch, seq]); per-row positions (left padding) and negative positions match the reference.
static void test_positions(void) {
    int seq = 5, batch = 2, heads = 3, head_dim = 8, dim = 8;
    int64_t n = (int64_t)seq * batch * heads * head_dim;
    rope_embedding *r = rope_create(dim, 10000.0, ROPE_PAIRING_HALF);
    double inv_freq[4];
    default_inv_freq(inv_freq, dim, 10000.0);
    float *x = random_tensor(n), *y_offset = random_tensor(n), *y_seq = random_tensor(n), *y_batch = random_tensor(n);
    int32_t per_token[5], per_row[10];
    for (int s = 0; s < seq; s++) per_token[s] = per_row[s] = per_row[seq + s] = 11 + s;

    for (int layout = 0; layout < 3; layout++) {
        snprintf(context, sizeof(context), "offset vs positions, layout %d", layout);
        apply_args a = {layout, seq, batch, heads, head_dim, 11, NULL, 0, 0};
        CHECK(call_apply(r, &a, x, y_offset) == ROPE_OK);
        a.positions = per_token;
        a.positions_len = seq;
        CHECK(call_apply(r, &a, x, y_seq) == ROPE_OK);
        a.positions = per_row;
        a.positions_len = batch * seq;
        CHECK(call_apply(r, &a, x, y_batch) == ROPE_OK);
        CHECK(memcmp(y_offset, y_seq, (size_t)n * sizeof(float)) == 0);
        CHECK(memcmp(y_offset, y_batch, (size_t)n * sizeof(float)) == 0);
    }

    // batch row 0 left-padded by 2 (positions -2, -1 on the padding), row 1 not
    int32_t padded[10] = {-2, -1, 0, 1, 2, 0, 1, 2, 3, 4};
    for (int layout = 0; layout < 3; layout++) {
        snprintf(context, sizeof(context), "per-row positions, layout %d", layout);
        apply_args a = {layout, seq, batch, heads, head_dim, 0, padded, batch * seq, 0};
        CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &a) < TOLERANCE);
    }
    int32_t negative[5] = {-5, -1, 0, 3, -1000};
    apply_args a = {ROPE_LAYOUT_BSHD, seq, batch, heads, head_dim, 0, negative, seq, 0};
    snprintf(context, sizeof(context), "negative positions");
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &a) < TOLERANCE);
    a.positions = NULL;
    a.offset = -7;
    snprintf(context, sizeof(context), "negative offset");
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &a) < TOLERANCE);

    free(x);
    free(y_offset);
    free(y_seq);
    free(y_batch);
    rope_destroy(r);
}

// Position 1,000,000 is as exact as position 10: the angle is formed in double.
static void test_large_position(void) {
    for (int pairing = 0; pairing < 2; pairing++) {
        rope_embedding *r = rope_create(128, 10000.0, pairing);
        double inv_freq[64];
        default_inv_freq(inv_freq, 128, 10000.0);
        apply_args a = {ROPE_LAYOUT_SBHD, 3, 1, 2, 128, 999999, NULL, 0, 0};
        snprintf(context, sizeof(context), "position 1e6, %s", pairing_name(pairing));
        CHECK(apply_error(r, 128, pairing, inv_freq, 1.0, &a) < TOLERANCE);
        int32_t million[1] = {1000000};
        apply_args b = {ROPE_LAYOUT_BHSD, 1, 2, 2, 130, 0, million, 1, 0};
        CHECK(apply_error(r, 128, pairing, inv_freq, 1.0, &b) < TOLERANCE);
        rope_destroy(r);
    }
}

// inverse(apply(x)) == x, in place and not, and in place gives the same bits as out of place.
static void test_inverse_and_in_place(void) {
    int seq = 6, batch = 2, heads = 2, head_dim = 26, dim = 22;
    int64_t n = (int64_t)seq * batch * heads * head_dim;
    for (int pairing = 0; pairing < 2; pairing++) {
        rope_embedding *r = rope_create(dim, 500000.0, pairing);
        float *x = random_tensor(n), *y = random_tensor(n), *back = random_tensor(n);
        apply_args a = {ROPE_LAYOUT_BSHD, seq, batch, heads, head_dim, 123456, NULL, 0, 0};
        snprintf(context, sizeof(context), "inverse, %s", pairing_name(pairing));
        CHECK(call_apply(r, &a, x, y) == ROPE_OK);
        a.inverse = 1;
        CHECK(call_apply(r, &a, y, back) == ROPE_OK);
        double err = 0;
        for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(back[i] - x[i]));
        CHECK(err < 1e-6);

        snprintf(context, sizeof(context), "in place, %s", pairing_name(pairing));
        for (int inverse = 0; inverse < 2; inverse++) {
            a.inverse = inverse;
            memcpy(back, x, (size_t)n * sizeof(float));
            CHECK(call_apply(r, &a, x, y) == ROPE_OK);
            CHECK(call_apply(r, &a, back, back) == ROPE_OK);
            CHECK(memcmp(back, y, (size_t)n * sizeof(float)) == 0);
        }
        free(x);
        free(y);
        free(back);
        rope_destroy(r);
    }
}

// rope_apply_vectors over consecutive ranges (each starting anywhere in a row of vectors) gives
// the same bits as one rope_apply over the whole tensor, in every layout, with per-batch positions.
static void test_vector_ranges(void) {
    int n0 = 3, n1 = 5, n2 = 7, head_dim = 12, dim = 8;
    int64_t vectors = (int64_t)n0 * n1 * n2, n = vectors * head_dim;
    int32_t positions[3 * 7];  // batch * seq, the largest of the three layouts
    for (int i = 0; i < 21; i++) positions[i] = (i * 37) % 50 - 10;
    for (int layout = 0; layout < 3; layout++) {
        rope_embedding *r = rope_create(dim, 10000.0, ROPE_PAIRING_INTERLEAVED);
        float *x = random_tensor(n), *whole = random_tensor(n), *pieces = random_tensor(n);
        int seq = layout == ROPE_LAYOUT_SBHD ? n0 : layout == ROPE_LAYOUT_BSHD ? n1 : n2;
        int batch = layout == ROPE_LAYOUT_SBHD ? n1 : n0;
        snprintf(context, sizeof(context), "vector ranges, layout %d", layout);
        CHECK(rope_apply(r, x, whole, layout, n0, n1, n2, head_dim, 0, positions, batch * seq, 0) == ROPE_OK);
        int sizes[] = {1, 4, 9, 2, 30, 13, 46};  // 105 vectors in ranges of uneven sizes
        int first = 0;
        for (int k = 0; k < 7; k++) {
            CHECK(rope_apply_vectors(r, x + (int64_t)first * head_dim, pieces + (int64_t)first * head_dim, layout,
                                     n0, n1, n2, head_dim, 0, positions, batch * seq, 0, first, sizes[k]) == ROPE_OK);
            first += sizes[k];
        }
        CHECK(first == vectors);
        CHECK(memcmp(whole, pieces, (size_t)n * sizeof(float)) == 0);
        // Ranges that leave the tensor, and negative ones, are errors; an empty range is not.
        CHECK(rope_apply_vectors(r, x, pieces, layout, n0, n1, n2, head_dim, 0, NULL, 0, 0, 100, 6) == ROPE_ERR_SHAPE);
        CHECK(rope_apply_vectors(r, x, pieces, layout, n0, n1, n2, head_dim, 0, NULL, 0, 0, -1, 2) == ROPE_ERR_SHAPE);
        CHECK(rope_apply_vectors(r, x, pieces, layout, n0, n1, n2, head_dim, 0, NULL, 0, 0, 0, -2) == ROPE_ERR_SHAPE);
        CHECK(rope_apply_vectors(r, x, pieces, layout, n0, n1, n2, head_dim, 0, NULL, 0, 0, 106, -1) == ROPE_ERR_SHAPE);
        CHECK(rope_apply_vectors(r, x, pieces, layout, n0, n1, n2, head_dim, 0, NULL, 0, 0, 105, 0) == ROPE_OK);
        free(x);
        free(whole);
        free(pieces);
        rope_destroy(r);
    }
}

// The cos/sin table is computed once per position: a repeated call computes nothing, a call that
// reaches further computes only the new rows, and the extended table still gives right answers.
static void test_table_reuse(void) {
    int dim = 16;
    rope_embedding *r = rope_create(dim, 10000.0, ROPE_PAIRING_HALF);
    double inv_freq[8];
    default_inv_freq(inv_freq, dim, 10000.0);
    apply_args a = {ROPE_LAYOUT_SBHD, 10, 2, 2, dim, 0, NULL, 0, 0};
    snprintf(context, sizeof(context), "table reuse");
    CHECK(rope_rows_computed(r) == 0);
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &a) < TOLERANCE);
    CHECK(rope_rows_computed(r) == 10);
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &a) < TOLERANCE);
    CHECK(rope_rows_computed(r) == 10);
    a.offset = 5;  // positions 5..14: rows 10..14 are new
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &a) < TOLERANCE);
    CHECK(rope_rows_computed(r) == 15);
    int32_t below[2] = {-3, 2};  // extends the window down: rows -3..-1 are new, the rest shift
    apply_args b = {ROPE_LAYOUT_BSHD, 2, 1, 3, dim, 0, below, 2, 0};
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &b) < TOLERANCE);
    CHECK(rope_rows_computed(r) == 18);
    CHECK(rope_table_first(r) == -3);
    CHECK(rope_table_rows(r) == 18);
    a.offset = 0;  // the shifted rows are still right
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &a) < TOLERANCE);
    CHECK(rope_rows_computed(r) == 18);

    // A window too far from the cached one to join it starts over there.
    a.offset = 10000000;
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &a) < TOLERANCE);
    CHECK(rope_rows_computed(r) == 28);
    CHECK(rope_table_first(r) == 10000000);
    CHECK(rope_table_rows(r) == 10);
    rope_destroy(r);
}

// Positions spread wider than ROPE_TABLE_MAX_BYTES allows are computed per token, still exactly,
// without touching the table.
static void test_wide_positions(void) {
    int dim = 128;
    for (int pairing = 0; pairing < 2; pairing++) {
        rope_embedding *r = rope_create(dim, 10000.0, pairing);
        double inv_freq[64];
        default_inv_freq(inv_freq, dim, 10000.0);
        snprintf(context, sizeof(context), "wide positions, %s", pairing_name(pairing));
        apply_args a = {ROPE_LAYOUT_SBHD, 4, 1, 2, dim, 0, NULL, 0, 0};
        CHECK(apply_error(r, dim, pairing, inv_freq, 1.0, &a) < TOLERANCE);
        int32_t wide[4] = {-2000000000, 2000000000, 0, INT32_MAX};
        a.positions = wide;
        a.positions_len = 4;
        CHECK(apply_error(r, dim, pairing, inv_freq, 1.0, &a) < TOLERANCE);
        CHECK(rope_rows_computed(r) == 8);
        CHECK(rope_table_first(r) == 0 && rope_table_rows(r) == 4);
        int32_t rows[8] = {INT32_MIN, 0, 1, 2, 5, 6, 7, INT32_MAX};  // [batch 2, seq 4]
        apply_args b = {ROPE_LAYOUT_BHSD, 4, 2, 1, dim + 2, 0, rows, 8, 1};
        CHECK(apply_error(r, dim, pairing, inv_freq, 1.0, &b) < TOLERANCE);
        rope_destroy(r);
    }
}

static void test_linear(void) {
    int dim = 16;
    rope_embedding *r = rope_create(dim, 10000.0, ROPE_PAIRING_HALF);
    double inv_freq[8];
    default_inv_freq(inv_freq, dim, 10000.0);
    snprintf(context, sizeof(context), "linear");
    CHECK(rope_set_linear(r, 4.0) == ROPE_OK);
    CHECK(close_to(rope_inv_freq(r)[0], inv_freq[0] / 4.0));
    CHECK(close_to(rope_inv_freq(r)[5], inv_freq[5] / 4.0));
    CHECK(rope_attention_scaling(r) == 1.0);
    for (int i = 0; i < dim / 2; i++) inv_freq[i] /= 4.0;
    apply_args a = {ROPE_LAYOUT_SBHD, 6, 1, 2, dim, 100, NULL, 0, 0};
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, inv_freq, 1.0, &a) < TOLERANCE);
    rope_destroy(r);
}

// Meta's llama3 rule, with Llama 3.1's parameters: wavelengths shorter than original/high are
// kept, longer than original/low divided by factor, in between blended.
static void test_llama3(void) {
    int dim = 128;
    double base = 500000.0, factor = 8, low = 1, high = 4, original = 8192;
    rope_embedding *r = rope_create(dim, base, ROPE_PAIRING_INTERLEAVED);
    double inv_freq[64];
    default_inv_freq(inv_freq, dim, base);
    snprintf(context, sizeof(context), "llama3");
    CHECK(rope_set_llama3(r, factor, low, high, original) == ROPE_OK);
    const double *got = rope_inv_freq(r);
    CHECK(2 * PI / inv_freq[0] < original / high && close_to(got[0], inv_freq[0]));
    CHECK(2 * PI / inv_freq[63] > original / low && close_to(got[63], inv_freq[63] / factor));
    double wavelen = 2 * PI / inv_freq[30];  // ~5000: in the smooth band (2048, 8192)
    double smooth = (original / wavelen - low) / (high - low);
    CHECK(wavelen > original / high && wavelen < original / low);
    CHECK(close_to(got[30], (1 - smooth) * inv_freq[30] / factor + smooth * inv_freq[30]));
    rope_destroy(r);
}

// YaRN: frequencies below the ramp kept, above it interpolated, a blend on it; attention
// scaling 0.1 ln(factor) + 1, or the attention_factor given.
static void test_yarn(void) {
    int dim = 128;
    double base = 10000.0, factor = 4, original = 4096;
    rope_embedding *r = rope_create(dim, base, ROPE_PAIRING_HALF);
    double inv_freq[64];
    default_inv_freq(inv_freq, dim, base);
    snprintf(context, sizeof(context), "yarn");
    CHECK(rope_set_yarn(r, factor, original, 32, 1, 0, 0, 0, 1) == ROPE_OK);
    double low = floor(dim * log(original / (32 * 2 * PI)) / (2 * log(base)));  // 20
    double high = ceil(dim * log(original / (1 * 2 * PI)) / (2 * log(base)));   // 46
    const double *got = rope_inv_freq(r);
    CHECK(close_to(got[0], inv_freq[0]));
    CHECK(close_to(got[63], inv_freq[63] / factor));
    double ramp = (33 - low) / (high - low);
    CHECK(close_to(got[33], inv_freq[33] / factor * ramp + inv_freq[33] * (1 - ramp)));
    CHECK(close_to(rope_attention_scaling(r), 0.1 * log(factor) + 1));

    // An explicit attention factor multiplies cos and sin.
    CHECK(rope_set_yarn(r, factor, original, 32, 1, 0, 0, 0.5, 1) == ROPE_OK);
    CHECK(rope_attention_scaling(r) == 0.5);
    double scaled[64];
    memcpy(scaled, rope_inv_freq(r), sizeof(scaled));
    apply_args a = {ROPE_LAYOUT_BSHD, 3, 2, 1, dim, 40, NULL, 0, 0};
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, scaled, 0.5, &a) < TOLERANCE);
    rope_destroy(r);
}

// LongRoPE: short factors while a call stays within the original context, long factors for
// a call whose longest position + 1 exceeds it; back to short for the next short call.
static void test_longrope(void) {
    int dim = 8;
    double base = 10000.0, short_factor[4] = {1, 2, 3, 4}, long_factor[4] = {5, 6, 7, 8};
    rope_embedding *r = rope_create(dim, base, ROPE_PAIRING_HALF);
    double inv_freq[4], expected[4];
    default_inv_freq(inv_freq, dim, base);
    snprintf(context, sizeof(context), "longrope");
    CHECK(rope_set_longrope(r, short_factor, long_factor, 100, 400, 0) == ROPE_OK);
    double scaling = sqrt(1 + log(400.0 / 100.0) / log(100.0));
    CHECK(close_to(rope_attention_scaling(r), scaling));

    apply_args a = {ROPE_LAYOUT_SBHD, 10, 1, 2, dim, 90, NULL, 0, 0};  // positions 90..99: short
    for (int i = 0; i < 4; i++) expected[i] = inv_freq[i] / short_factor[i];
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, expected, scaling, &a) < TOLERANCE);
    CHECK(close_to(rope_inv_freq(r)[1], inv_freq[1] / 2) && close_to(rope_inv_freq(r)[3], inv_freq[3] / 4));

    a.offset = 91;  // positions 91..100: long
    for (int i = 0; i < 4; i++) expected[i] = inv_freq[i] / long_factor[i];
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, expected, scaling, &a) < TOLERANCE);
    CHECK(close_to(rope_inv_freq(r)[1], inv_freq[1] / 6) && close_to(rope_inv_freq(r)[3], inv_freq[3] / 8));

    a.offset = 0;  // back within the original context: short again
    for (int i = 0; i < 4; i++) expected[i] = inv_freq[i] / short_factor[i];
    CHECK(apply_error(r, dim, ROPE_PAIRING_HALF, expected, scaling, &a) < TOLERANCE);
    CHECK(rope_prepare(r, 101) == ROPE_OK && close_to(rope_inv_freq(r)[0], inv_freq[0] / 5));
    CHECK(rope_prepare(r, 100) == ROPE_OK && close_to(rope_inv_freq(r)[0], inv_freq[0] / 1));
    CHECK(rope_set_longrope(r, short_factor, long_factor, 100, 400, 2.5) == ROPE_OK);
    CHECK(rope_attention_scaling(r) == 2.5);
    rope_destroy(r);
}

// Dynamic NTK: after a call reaching L > original the base is
// base * (factor * L / original - (factor - 1))^(dim / (dim - 2)); it keeps the longest L seen
// and resets once a call fits the original context again.
static void test_dynamic(void) {
    int dim = 8;
    double base = 10000.0, factor = 2, original = 16;
    rope_embedding *r = rope_create(dim, base, ROPE_PAIRING_INTERLEAVED);
    double inv_freq[4], grown[4];
    default_inv_freq(inv_freq, dim, base);
    snprintf(context, sizeof(context), "dynamic");
    CHECK(rope_set_dynamic(r, factor, original) == ROPE_OK);
    CHECK(close_to(rope_inv_freq(r)[1], inv_freq[1]));

    apply_args a = {ROPE_LAYOUT_SBHD, 32, 1, 2, dim, 0, NULL, 0, 0};  // positions up to 31: L = 32
    default_inv_freq(grown, dim, base * pow(factor * 32 / original - (factor - 1), (double)dim / (dim - 2)));
    CHECK(apply_error(r, dim, ROPE_PAIRING_INTERLEAVED, grown, 1.0, &a) < TOLERANCE);
    CHECK(close_to(rope_inv_freq(r)[1], grown[1]) && close_to(rope_inv_freq(r)[3], grown[3]));

    a.seq = 20;  // L = 20: beyond the original but not the longest seen: keeps L = 32
    CHECK(apply_error(r, dim, ROPE_PAIRING_INTERLEAVED, grown, 1.0, &a) < TOLERANCE);
    CHECK(close_to(rope_inv_freq(r)[1], grown[1]));

    a.seq = 8;  // within the original context: reset
    CHECK(apply_error(r, dim, ROPE_PAIRING_INTERLEAVED, inv_freq, 1.0, &a) < TOLERANCE);
    CHECK(close_to(rope_inv_freq(r)[1], inv_freq[1]));
    rope_destroy(r);
}

// Every error path returns its code (or NULL), leaves the embedding usable, and leaks nothing.
static void test_errors(void) {
    snprintf(context, sizeof(context), "rope_create errors");
    CHECK(rope_create(3, 10000.0, ROPE_PAIRING_HALF) == NULL);
    CHECK(rope_create(0, 10000.0, ROPE_PAIRING_HALF) == NULL);
    CHECK(rope_create(-2, 10000.0, ROPE_PAIRING_HALF) == NULL);
    CHECK(rope_create(8, 0.0, ROPE_PAIRING_HALF) == NULL);
    CHECK(rope_create(8, -10000.0, ROPE_PAIRING_HALF) == NULL);
    CHECK(rope_create(8, NAN, ROPE_PAIRING_HALF) == NULL);
    CHECK(rope_create(8, INFINITY, ROPE_PAIRING_HALF) == NULL);
    CHECK(rope_create(8, 10000.0, 5) == NULL);
    CHECK(rope_create(8, 10000.0, -1) == NULL);

    int dim = 8;
    rope_embedding *r = rope_create(dim, 10000.0, ROPE_PAIRING_HALF);
    float x[2 * 3 * 8] = {0}, y[2 * 3 * 8];  // [seq 2, batch 3, heads 1, head_dim 8]
    int32_t positions[6] = {0, 1, 2, 3, 4, 5};
    snprintf(context, sizeof(context), "rope_apply errors");
    CHECK(rope_apply(NULL, x, y, 0, 2, 3, 1, 8, 0, NULL, 0, 0) == ROPE_ERR_NULL);
    CHECK(rope_apply(r, NULL, y, 0, 2, 3, 1, 8, 0, NULL, 0, 0) == ROPE_ERR_NULL);
    CHECK(rope_apply(r, x, NULL, 0, 2, 3, 1, 8, 0, NULL, 0, 0) == ROPE_ERR_NULL);
    CHECK(rope_apply(r, x, y, 7, 2, 3, 1, 8, 0, NULL, 0, 0) == ROPE_ERR_LAYOUT);
    CHECK(rope_apply(r, x, y, -1, 2, 3, 1, 8, 0, NULL, 0, 0) == ROPE_ERR_LAYOUT);
    CHECK(rope_apply(r, x, y, 0, -1, 3, 1, 8, 0, NULL, 0, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_apply(r, x, y, 0, 2, -3, 1, 8, 0, NULL, 0, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_apply(r, x, y, 0, 2, 3, -1, 8, 0, NULL, 0, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_apply(r, x, y, 0, 2, 3, 1, -8, 0, NULL, 0, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_apply(r, x, y, 0, 2, 3, 1, 6, 0, NULL, 0, 0) == ROPE_ERR_DIM);
    CHECK(rope_apply(r, x, y, 0, 2, 3, 1, 8, 0, positions, 4, 0) == ROPE_ERR_POSITIONS);
    CHECK(rope_apply(r, x, y, 0, 2, 3, 1, 8, 0, positions, 0, 0) == ROPE_ERR_POSITIONS);
    CHECK(rope_apply(r, x, y, 0, 2, 3, 1, 8, 0, positions, -2, 0) == ROPE_ERR_POSITIONS);
    CHECK(rope_apply(r, x, y, 0, 2, 3, 1, 8, 0, positions, 6, 0) == ROPE_OK);
    // products past SIZE_MAX, including 2^22 cubed, which wraps a 64-bit product to 0
    CHECK(rope_apply(r, x, y, 0, INT32_MAX, INT32_MAX, INT32_MAX, 8, 0, NULL, 0, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_apply(r, x, y, 1, 1 << 22, 1 << 22, 1 << 22, 8, 0, NULL, 0, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_apply(r, x, y, 2, 1 << 22, 1 << 22, (1 << 20) + 1, 8, 0, NULL, 0, 0) == ROPE_ERR_SHAPE);
    CHECK(rope_apply(r, x, y, 0, 1 << 30, 1 << 30, 1, INT32_MAX, 0, NULL, 0, 0) == ROPE_ERR_SHAPE);
    // empty tensors are fine, whatever the other sizes
    CHECK(rope_apply(r, x, y, 0, 0, INT32_MAX, INT32_MAX, 8, 0, NULL, 0, 0) == ROPE_OK);

    snprintf(context, sizeof(context), "scaling errors");
    double before = rope_inv_freq(r)[1];
    double ones[4] = {1, 1, 1, 1}, bad[4] = {1, NAN, 1, 1};
    CHECK(rope_set_linear(NULL, 2.0) == ROPE_ERR_NULL);
    CHECK(rope_set_linear(r, NAN) == ROPE_ERR_SCALING);
    CHECK(rope_set_linear(r, 0.0) == ROPE_ERR_SCALING);
    CHECK(rope_set_linear(r, -2.0) == ROPE_ERR_SCALING);
    CHECK(rope_set_linear(r, INFINITY) == ROPE_ERR_SCALING);
    CHECK(rope_set_llama3(r, 8, 4, 4, 8192) == ROPE_ERR_SCALING);
    CHECK(rope_set_llama3(r, 8, 4, 1, 8192) == ROPE_ERR_SCALING);
    CHECK(rope_set_llama3(r, NAN, 1, 4, 8192) == ROPE_ERR_SCALING);
    CHECK(rope_set_dynamic(r, NAN, 16) == ROPE_ERR_SCALING);
    CHECK(rope_set_dynamic(r, 2, 0) == ROPE_ERR_SCALING);
    CHECK(rope_set_dynamic(r, 2, 1e12) == ROPE_ERR_SCALING);
    CHECK(rope_set_yarn(r, 4, 4096, NAN, 1, 0, 0, 0, 1) == ROPE_ERR_SCALING);
    CHECK(rope_set_yarn(r, 4, 4096, 32, 1, -1, 0, 0, 1) == ROPE_ERR_SCALING);
    CHECK(rope_set_yarn(r, 4, 4096, 32, 1, 0, 0, INFINITY, 1) == ROPE_ERR_SCALING);
    CHECK(rope_set_longrope(r, ones, bad, 100, 400, 0) == ROPE_ERR_SCALING);
    CHECK(rope_set_longrope(r, ones, ones, NAN, 400, 0) == ROPE_ERR_SCALING);
    CHECK(rope_set_longrope(r, NULL, ones, 100, 400, 0) == ROPE_ERR_NULL);
    CHECK(rope_inv_freq(r)[1] == before);  // a rejected scaling changes nothing

    rope_embedding *two = rope_create(2, 10000.0, ROPE_PAIRING_HALF);
    CHECK(rope_set_dynamic(two, 2, 16) == ROPE_ERR_SCALING);  // dim / (dim - 2) undefined
    rope_destroy(two);

    // Parameters whose formulas divide by zero: yarn's log(base), longrope's log(original).
    rope_embedding *base_one = rope_create(8, 1.0, ROPE_PAIRING_HALF);
    CHECK(rope_set_yarn(base_one, 4, 4096, 32, 1, 0, 0, 0, 1) == ROPE_ERR_SCALING);
    rope_destroy(base_one);
    CHECK(rope_set_longrope(r, ones, ones, 1, 400, 0) == ROPE_ERR_SCALING);
    CHECK(rope_set_longrope(r, ones, ones, 1, 400, 1.5) == ROPE_OK);  // explicit factor: no log

    // A failed longrope after a good one keeps the good one's factors (no leak, no dangling).
    CHECK(rope_set_longrope(r, ones, ones, 100, 400, 0) == ROPE_OK);
    CHECK(rope_set_longrope(r, ones, bad, 100, 400, 0) == ROPE_ERR_SCALING);
    CHECK(rope_prepare(r, 1000) == ROPE_OK && close_to(rope_inv_freq(r)[1], before));

    snprintf(context, sizeof(context), "NULL accessors");
    CHECK(rope_prepare(NULL, 10) == ROPE_ERR_NULL);
    CHECK(rope_inv_freq(NULL) == NULL);
    CHECK(isnan(rope_attention_scaling(NULL)) && isnan(rope_rows_computed(NULL)));
    rope_destroy(NULL);
    rope_destroy(r);
}

int main(void) {
    test_pairings_and_dims();
    test_layouts_agree();
    test_positions();
    test_large_position();
    test_inverse_and_in_place();
    test_vector_ranges();
    test_table_reuse();
    test_wide_positions();
    test_linear();
    test_llama3();
    test_yarn();
    test_longrope();
    test_dynamic();
    test_errors();
    return check_report();
}
