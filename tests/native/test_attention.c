// test_attention.c: rope_attention_forward (and _masked, _options) against a float64 reference written here, and
// f32x4_exp2 against exp2.
//
//   cc -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
//      -Ic c/rope.c c/rope_freq.c c/rope_kernel.c c/rope_table.c c/attention.c
//      tests/native/test_attention.c -lm -o build/test_attention && build/test_attention
// and without sanitizers under valgrind.
//
// Run from the repository root: the rope_sdpa cases are read from ../shared/reference (skipped,
// with a note, when absent). Prints each failure, then "N passed, M failed"; exits non-zero on any
// failure.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "rope.h"
#include "rope_errors.h"
#include "simd.h"

// ----------------------------------------------------------------------------
// the one assert: counts, and on failure prints where, what and the current case

#include "check.h"

// Max abs error relative to the largest magnitude of the float64 truth: float32 scores, 2^x to
// 2 ulp and sums over up to 257 keys stay well inside.
#define TOLERANCE 1e-5
#define BASE 10000.0

// ----------------------------------------------------------------------------
// a case, its tensors, and the float64 reference

typedef struct {
    int batch, heads, kv_heads, seq_q, seq_k, head_dim;
    int layout, causal;
    float scale;
    int rope_dim;  // 0: no RoPE
    int pairing;
    int offset;
} attention_case;

static const char *layout_name(int layout) {
    return layout == ROPE_LAYOUT_SBHD ? "sbhd" : layout == ROPE_LAYOUT_BSHD ? "bshd" : "bhsd";
}

static void describe(const attention_case *c, const char *what) {
    snprintf(context, sizeof(context), "%s: b%d h%d kv%d sq%d sk%d d%d %s%s scale %g rope %d%s offset %d", what,
             c->batch, c->heads, c->kv_heads, c->seq_q, c->seq_k, c->head_dim, layout_name(c->layout),
             c->causal ? " causal" : "", c->scale, c->rope_dim,
             c->rope_dim ? (c->pairing == ROPE_PAIRING_HALF ? " half" : " interleaved") : "", c->offset);
}

// The float index of head vector (b, h, s) of a [batch, nh, seq, head_dim] tensor in `layout`.
static size_t vector_at(int layout, int batch, int nh, int seq, int head_dim, int b, int h, int s) {
    size_t v;
    if (layout == ROPE_LAYOUT_SBHD) {
        v = ((size_t)s * batch + b) * nh + h;
    } else if (layout == ROPE_LAYOUT_BSHD) {
        v = ((size_t)b * seq + s) * nh + h;
    } else {
        v = ((size_t)b * nh + h) * seq + s;
    }
    return v * head_dim;
}

static size_t q_floats(const attention_case *c) { return (size_t)c->batch * c->heads * c->seq_q * c->head_dim; }
static size_t kv_floats(const attention_case *c) { return (size_t)c->batch * c->kv_heads * c->seq_k * c->head_dim; }
static size_t weight_floats(const attention_case *c) { return (size_t)c->batch * c->heads * c->seq_q * c->seq_k; }

// Keys [0, visible) are what query i sees.
static int visible_keys(const attention_case *c, int i) {
    if (!c->causal) return c->seq_k;
    int end = i + c->seq_k - c->seq_q + 1;
    return end < 0 ? 0 : end > c->seq_k ? c->seq_k : end;
}

// x: [head_dim] rotated in place by position p with the textbook formula (default frequencies).
static void reference_rope(const attention_case *c, double *x, double p) {
    int half = c->rope_dim / 2;
    for (int i = 0; i < half; i++) {
        int a = c->pairing == ROPE_PAIRING_HALF ? i : 2 * i;
        int b = c->pairing == ROPE_PAIRING_HALF ? i + half : 2 * i + 1;
        double angle = p / pow(BASE, (double)(2 * i) / c->rope_dim);
        double x1 = x[a], x2 = x[b];
        x[a] = x1 * cos(angle) - x2 * sin(angle);
        x[b] = x2 * cos(angle) + x1 * sin(angle);
    }
}

// Whether query i of head h of batch row b sees key j: causal, and the mask (NULL: none).
static int sees_key(const attention_case *c, const attention_mask *mask, int b, int h, int i, int j) {
    if (j >= visible_keys(c, i)) return 0;
    return !mask || mask->data[b * mask->stride_b + h * mask->stride_h + i * mask->stride_q + j * mask->stride_k] != 0;
}

// out: like q, weights: [batch, heads, seq_q, seq_k] (may be NULL), in float64. Keys a query
// cannot see (causal or masked; mask may be NULL) are left out of its sums entirely; a row that
// sees none is 0.
static void reference_attention(const attention_case *c, const float *q, const float *k, const float *v,
                                const attention_mask *mask, double *out, double *weights) {
    int d = c->head_dim;
    double *qi = malloc((size_t)d * sizeof(double));
    double *keys = malloc((size_t)c->seq_k * d * sizeof(double));
    double *scores = malloc((size_t)(c->seq_k > 0 ? c->seq_k : 1) * sizeof(double));
    for (int b = 0; b < c->batch; b++) {
        for (int h = 0; h < c->heads; h++) {
            int kvh = h / (c->heads / c->kv_heads);
            for (int j = 0; j < c->seq_k; j++) {
                const float *kj = k + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, d, b, kvh, j);
                for (int f = 0; f < d; f++) keys[(size_t)j * d + f] = kj[f];
                if (c->rope_dim) reference_rope(c, keys + (size_t)j * d, (double)c->offset + j);
            }
            for (int i = 0; i < c->seq_q; i++) {
                const float *src = q + vector_at(c->layout, c->batch, c->heads, c->seq_q, d, b, h, i);
                for (int f = 0; f < d; f++) qi[f] = src[f];
                if (c->rope_dim) reference_rope(c, qi, (double)c->offset + c->seq_k - c->seq_q + i);
                double max = -INFINITY, sum = 0;
                for (int j = 0; j < c->seq_k; j++) {
                    if (!sees_key(c, mask, b, h, i, j)) continue;
                    double dot = 0;
                    for (int f = 0; f < d; f++) dot += qi[f] * keys[(size_t)j * d + f];
                    scores[j] = (double)c->scale * dot;
                    if (scores[j] > max) max = scores[j];  // skips NaN; exp(NaN - max) is NaN below
                }
                for (int j = 0; j < c->seq_k; j++) {
                    if (!sees_key(c, mask, b, h, i, j)) continue;
                    scores[j] = exp(scores[j] - max);
                    sum += scores[j];
                }
                double *o = out + vector_at(c->layout, c->batch, c->heads, c->seq_q, d, b, h, i);
                for (int f = 0; f < d; f++) o[f] = 0;
                for (int j = 0; j < c->seq_k; j++) {
                    if (!sees_key(c, mask, b, h, i, j)) continue;
                    const float *vj = v + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, d, b, kvh, j);
                    for (int f = 0; f < d; f++) o[f] += scores[j] / sum * vj[f];
                }
                if (weights) {
                    double *w = weights + (((size_t)b * c->heads + h) * c->seq_q + i) * c->seq_k;
                    for (int j = 0; j < c->seq_k; j++) w[j] = sees_key(c, mask, b, h, i, j) ? scores[j] / sum : 0;
                }
            }
        }
    }
    free(qi);
    free(keys);
    free(scores);
}

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

static float *copy_of(const float *x, size_t n) {
    float *y = malloc((n > 0 ? n : 1) * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

// max |got - ref| / max |ref|; INFINITY when NaN or infinities are not in the same places.
static double relative_error(const float *got, const double *ref, size_t n) {
    double err = 0, mag = 1e-30;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) != isnan(ref[i]) || isinf(got[i]) != isinf(ref[i])) return INFINITY;
        if (!isfinite(ref[i])) continue;
        if (fabs(got[i] - ref[i]) > err) err = fabs(got[i] - ref[i]);
        if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
    }
    return err / mag;
}

static int call_forward(const attention_case *c, const float *q, const float *k, const float *v, float *out,
                        float *weights, rope_embedding *rope) {
    return rope_attention_forward(q, k, v, out, weights, c->batch, c->heads, c->kv_heads, c->seq_q, c->seq_k,
                                  c->head_dim, c->layout, c->causal, c->scale, rope, c->offset);
}

// The tensors of one run: inputs, the kernel's output and weights, the reference's.
typedef struct {
    float *q, *k, *v;
    float *out, *weights;
    double *ref_out, *ref_weights;
    int status;
} attention_run;

// Runs c (with weights) on q, k, v (random when NULL is passed; the run owns copies) and the
// reference. amplitude: of the random inputs.
static attention_run run_case(const attention_case *c, const float *q, const float *k, const float *v, float amplitude) {
    attention_run run;
    run.q = q ? copy_of(q, q_floats(c)) : random_tensor(q_floats(c), amplitude);
    run.k = k ? copy_of(k, kv_floats(c)) : random_tensor(kv_floats(c), amplitude);
    run.v = v ? copy_of(v, kv_floats(c)) : random_tensor(kv_floats(c), 1.0f);
    run.out = random_tensor(q_floats(c), 1.0f);  // garbage the kernel must overwrite
    run.weights = random_tensor(weight_floats(c), 1.0f);
    run.ref_out = malloc((q_floats(c) > 0 ? q_floats(c) : 1) * sizeof(double));
    run.ref_weights = malloc((weight_floats(c) > 0 ? weight_floats(c) : 1) * sizeof(double));
    rope_embedding *rope = c->rope_dim ? rope_create(c->rope_dim, BASE, c->pairing) : NULL;
    run.status = call_forward(c, run.q, run.k, run.v, run.out, run.weights, rope);
    rope_destroy(rope);
    reference_attention(c, run.q, run.k, run.v, NULL, run.ref_out, run.ref_weights);
    return run;
}

static void free_run(attention_run *run) {
    free(run->q);
    free(run->k);
    free(run->v);
    free(run->out);
    free(run->weights);
    free(run->ref_out);
    free(run->ref_weights);
}

// Every row of weights sums to 1 (or is all 0 when it sees no key), and masked weights are 0.
static int weights_are_softmax(const attention_case *c, const float *weights) {
    for (int bh = 0; bh < c->batch * c->heads; bh++) {
        for (int i = 0; i < c->seq_q; i++) {
            const float *w = weights + ((size_t)bh * c->seq_q + i) * c->seq_k;
            int visible = visible_keys(c, i);
            double sum = 0;
            for (int j = 0; j < c->seq_k; j++) {
                if (j >= visible && w[j] != 0.0f) return 0;
                sum += w[j];
            }
            if (fabs(sum - (visible > 0 ? 1.0 : 0.0)) > 1e-5) return 0;
        }
    }
    return 1;
}

// Rows that see no key are exactly 0.
static int masked_rows_zero(const attention_case *c, const float *out) {
    for (int b = 0; b < c->batch; b++) {
        for (int h = 0; h < c->heads; h++) {
            for (int i = 0; i < c->seq_q; i++) {
                if (visible_keys(c, i) > 0) continue;
                const float *o = out + vector_at(c->layout, c->batch, c->heads, c->seq_q, c->head_dim, b, h, i);
                for (int f = 0; f < c->head_dim; f++) {
                    if (o[f] != 0.0f) return 0;
                }
            }
        }
    }
    return 1;
}

// The whole check of one random case: status, output and weights against the reference, softmax
// rows, zero rows, and (smaller cases) inputs untouched, the same output without weights and in
// place.
static void check_case(const attention_case *c, const char *what) {
    describe(c, what);
    attention_run run = run_case(c, NULL, NULL, NULL, 1.0f);
    CHECK(run.status == ROPE_OK);
    CHECK(relative_error(run.out, run.ref_out, q_floats(c)) < TOLERANCE);
    CHECK(relative_error(run.weights, run.ref_weights, weight_floats(c)) < TOLERANCE);
    CHECK(weights_are_softmax(c, run.weights));
    CHECK(masked_rows_zero(c, run.out));

    // Inputs untouched (RoPE works on copies); without weights, and in place, the output is
    // bit-identical. (Two more runs: only for the smaller cases, to keep valgrind runs short.)
    if ((double)c->seq_q * c->seq_k * c->head_dim > 1e6) {
        free_run(&run);
        return;
    }
    float *q = copy_of(run.q, q_floats(c)), *k = copy_of(run.k, kv_floats(c)), *v = copy_of(run.v, kv_floats(c));
    float *out = random_tensor(q_floats(c), 1.0f);
    rope_embedding *rope = c->rope_dim ? rope_create(c->rope_dim, BASE, c->pairing) : NULL;
    CHECK(call_forward(c, q, k, v, out, NULL, rope) == ROPE_OK);
    CHECK(memcmp(out, run.out, q_floats(c) * sizeof(float)) == 0);
    CHECK(memcmp(q, run.q, q_floats(c) * sizeof(float)) == 0);
    CHECK(memcmp(k, run.k, kv_floats(c) * sizeof(float)) == 0);
    CHECK(memcmp(v, run.v, kv_floats(c) * sizeof(float)) == 0);
    // In place: out is q.
    CHECK(call_forward(c, q, k, v, q, NULL, rope) == ROPE_OK);
    CHECK(memcmp(q, run.out, q_floats(c) * sizeof(float)) == 0);
    rope_destroy(rope);
    free(q);
    free(k);
    free(v);
    free(out);
    free_run(&run);
}

// ----------------------------------------------------------------------------
// tests

// Error of y = 2^x in ulps of the float nearest the truth; below 2^-126 in units of the smallest
// denormal, and x < -126.5 must give exactly 0 (the documented flush).
static double exp2_error(float x, float y) {
    double exact = exp2((double)x);
    if (exact >= 0x1p-126) {
        int e;
        frexp(exact, &e);  // exact in [2^(e-1), 2^e): one ulp there is 2^(e-24)
        return fabs(y - exact) / ldexp(1.0, e - 24);
    }
    if (x < -126.5f) return y == 0.0f ? 0.0 : INFINITY;
    return fabs(y - exact) / 0x1p-149;
}

// f32x4_exp2 within 2 ulp over [-127, 0] (every 1009th float: an exhaustive run of every float
// in [-127, 127.5) found 1.23 ulp at worst), exact at integers, and the special values.
static void test_exp2(void) {
    snprintf(context, sizeof(context), "f32x4_exp2");
    double worst = 0;
    float worst_x = 0;
    uint32_t last = 0xC2FE0000u;  // -127.0f; the floats from -0 to it are the bits 0x80000000..last
    for (uint32_t bits = 0x80000000u; bits <= last - 3; bits += 1009) {
        float x[4], y[4];
        uint32_t lanes[4] = {bits, bits + 1, bits + 2, bits + 3};
        memcpy(x, lanes, sizeof(x));
        f32x4_store(y, f32x4_exp2(f32x4_load(x)));
        for (int lane = 0; lane < 4; lane++) {
            double err = exp2_error(x[lane], y[lane]);
            if (err > worst) {
                worst = err;
                worst_x = x[lane];
            }
        }
    }
    printf("f32x4_exp2: worst error %.3f ulp (at x = %.9g)\n", worst, worst_x);
    CHECK(worst <= 2.0);

    float special[4] = {-INFINITY, NAN, INFINITY, 0.0f};
    float y[4];
    f32x4_store(y, f32x4_exp2(f32x4_load(special)));
    CHECK(y[0] == 0.0f);
    CHECK(isnan(y[1]));
    CHECK(isinf(y[2]) && y[2] > 0);
    CHECK(y[3] == 1.0f);
    float integers[4] = {-1.0f, -10.0f, -126.0f, 5.0f};
    f32x4_store(y, f32x4_exp2(f32x4_load(integers)));
    CHECK(y[0] == 0.5f && y[1] == 0x1p-10f && y[2] == 0x1p-126f && y[3] == 32.0f);
    float huge[4] = {-1000.0f, -200.0f, 200.0f, 127.0f};
    f32x4_store(y, f32x4_exp2(f32x4_load(huge)));
    CHECK(y[0] == 0.0f && y[1] == 0.0f && isinf(y[2]) && y[3] == 0x1p127f);
}

// Every layout, causal and not, square sequences across the tile sizes (8 keys, 4 rows, 16-row
// query blocks, 128-key blocks), head_dims multiple of 8 and not.
static void test_square(void) {
    int seqs[] = {1, 7, 33, 257};
    int dims[] = {8, 24, 40, 64, 128, 256};
    for (int s = 0; s < 4; s++) {
        for (int dd = 0; dd < 6; dd++) {
            for (int layout = 0; layout < 3; layout++) {
                for (int causal = 0; causal < 2; causal++) {
                    int seq = seqs[s], d = dims[dd];
                    // Smaller batch x heads for the long, wide cases: the reference is O(seq^2 d).
                    int bh = seq * seq * d > 100000 ? 1 : 2;
                    attention_case c = {bh, bh, bh, seq, seq, d, layout, causal, 1.0f / sqrtf((float)d), 0, 0, 0};
                    check_case(&c, "square");
                }
            }
        }
    }
    // head_dim not a multiple of 8 (padded copies of v) nor of 4, and the block edges.
    int odd_dims[] = {1, 2, 3, 5, 12, 20, 36};
    for (int dd = 0; dd < 7; dd++) {
        for (int layout = 0; layout < 3; layout++) {
            attention_case c = {2, 2, 2, 19, 19, odd_dims[dd], layout, 1, 0.5f, 0, 0, 0};
            check_case(&c, "odd head_dim");
        }
    }
    int edges[] = {4, 8, 15, 16, 17, 63, 64, 65, 128, 129};
    for (int e = 0; e < 10; e++) {
        for (int causal = 0; causal < 2; causal++) {
            attention_case c = {1, 2, 2, edges[e], edges[e], 16, ROPE_LAYOUT_BSHD, causal, 0.25f, 0, 0, 0};
            check_case(&c, "block edges");
        }
    }
}

// seq_q < seq_k (decoding against a cache) and seq_q > seq_k (causal: the first rows see nothing).
static void test_rectangular(void) {
    int shapes[][2] = {{1, 1}, {1, 7}, {1, 257}, {7, 33}, {5, 70}, {33, 257}, {17, 100},
                       {33, 7}, {7, 1}, {20, 3}, {70, 65}, {3, 2}};
    for (int s = 0; s < 12; s++) {
        for (int layout = 0; layout < 3; layout++) {
            for (int causal = 0; causal < 2; causal++) {
                attention_case c = {2, 2, 2, shapes[s][0], shapes[s][1], 24, layout, causal, 0.2f, 0, 0, 0};
                check_case(&c, "rectangular");
            }
        }
    }
}

// Grouped-query and multi-query attention.
static void test_grouped(void) {
    int kv[] = {2, 1, 4};
    for (int g = 0; g < 3; g++) {
        for (int layout = 0; layout < 3; layout++) {
            attention_case c = {2, 8, kv[g], 13, 21, 16, layout, 1, 0.25f, 0, 0, 0};
            check_case(&c, "grouped");
            c.causal = 0;
            c.seq_q = 1;
            check_case(&c, "grouped decode");
        }
    }
}

// RoPE inside the kernel against rotating q and k first with the formula: both pairings, full and
// partial rotary dims, offsets, decoding, seq_q > seq_k, grouped heads.
static void test_rope(void) {
    for (int pairing = 0; pairing < 2; pairing++) {
        for (int layout = 0; layout < 3; layout++) {
            attention_case c = {2, 4, 2, 33, 33, 64, layout, 1, 0.125f, 64, pairing, 0};
            check_case(&c, "rope full");
            c.rope_dim = 32;  // the seed's rope_percentage 0.5
            check_case(&c, "rope partial");
            c.head_dim = 40;
            c.rope_dim = 16;
            c.offset = 100;
            check_case(&c, "rope partial, offset");
            c.seq_q = 3;
            c.seq_k = 70;
            check_case(&c, "rope decode");
            c.seq_q = 1;
            c.offset = 4000;
            check_case(&c, "rope decode one");
            c.seq_q = 40;
            c.seq_k = 30;
            c.offset = 5;
            check_case(&c, "rope seq_q > seq_k");
            c.causal = 0;
            c.head_dim = 6;
            c.rope_dim = 6;
            check_case(&c, "rope non-causal, odd head_dim");
        }
    }
}

// Scale 0 gives the mean of the visible values; scale 20 makes scores differ by up to ~150
// (nats), so most 2^x underflow to 0 and rows are nearly one-hot. (The error of float32 scores
// grows with their size, about |score| * 2^-24 each: much larger scales leave 1e-5.)
static void test_scales(void) {
    attention_case c = {1, 2, 2, 33, 33, 16, ROPE_LAYOUT_BHSD, 1, 0.0f, 0, 0, 0};
    check_case(&c, "scale 0");
    c.scale = 20.0f;
    check_case(&c, "scale 20");
    c.scale = -3.0f;
    check_case(&c, "scale -3");
    c.causal = 0;
    c.scale = 20.0f;
    check_case(&c, "scale 20, non-causal");
}

// Running the queries one at a time (seq_q 1, keys 0..t) reproduces the rows of the full causal
// attention bit for bit: KV-cache decoding gives exactly what the prefill gives (150 tokens: across
// key blocks; with RoPE and grouped heads, and with head_dim 64, whose one-row kernels take 4
// panels and 32 columns at a time).
static void test_decode_consistency(void) {
    attention_case configs[] = {{2, 4, 2, 150, 150, 24, 0, 1, 0.2f, 16, ROPE_PAIRING_HALF, 3},
                                {1, 2, 2, 150, 150, 64, 0, 1, 0.125f, 0, 0, 0}};
    for (int run = 0; run < 6; run++) {  // each config in each layout
        attention_case full = configs[run / 3];
        full.layout = run % 3;
        describe(&full, "decode consistency");
        size_t nq = q_floats(&full), nkv = kv_floats(&full);
        float *q = random_tensor(nq, 1.0f), *k = random_tensor(nkv, 1.0f), *v = random_tensor(nkv, 1.0f);
        float *out = malloc(nq * sizeof(float));
        rope_embedding *rope = rope_create(full.rope_dim, BASE, full.pairing);
        CHECK(call_forward(&full, q, k, v, out, NULL, rope) == ROPE_OK);
        int d = full.head_dim, ok = 1;
        double worst = 0;
        // One step: [batch, heads, 1, d] and keys [batch, kv_heads, t + 1, d] in the same layout.
        attention_case step = full;
        step.seq_q = 1;
        float *q1 = malloc((size_t)full.batch * full.heads * d * sizeof(float));
        float *k1 = malloc(nkv * sizeof(float)), *v1 = malloc(nkv * sizeof(float));
        float *o1 = malloc((size_t)full.batch * full.heads * d * sizeof(float));
        for (int t = 0; t < full.seq_q; t++) {
            step.seq_k = t + 1;
            for (int b = 0; b < full.batch; b++) {
                for (int h = 0; h < full.heads; h++) {
                    memcpy(q1 + vector_at(full.layout, full.batch, full.heads, 1, d, b, h, 0),
                           q + vector_at(full.layout, full.batch, full.heads, full.seq_q, d, b, h, t), (size_t)d * sizeof(float));
                }
                for (int h = 0; h < full.kv_heads; h++) {
                    for (int j = 0; j <= t; j++) {
                        size_t to = vector_at(full.layout, full.batch, full.kv_heads, t + 1, d, b, h, j);
                        size_t from = vector_at(full.layout, full.batch, full.kv_heads, full.seq_k, d, b, h, j);
                        memcpy(k1 + to, k + from, (size_t)d * sizeof(float));
                        memcpy(v1 + to, v + from, (size_t)d * sizeof(float));
                    }
                }
            }
            if (call_forward(&step, q1, k1, v1, o1, NULL, rope) != ROPE_OK) ok = 0;
            for (int b = 0; b < full.batch; b++) {
                for (int h = 0; h < full.heads; h++) {
                    const float *want = out + vector_at(full.layout, full.batch, full.heads, full.seq_q, d, b, h, t);
                    const float *got = o1 + vector_at(full.layout, full.batch, full.heads, 1, d, b, h, 0);
                    for (int f = 0; f < d; f++) {
                        if (fabs(got[f] - want[f]) > worst) worst = fabs(got[f] - want[f]);
                    }
                }
            }
        }
        CHECK(ok);
        CHECK(worst == 0.0);  // bit for bit: the same sums in the same order
        rope_destroy(rope);
        free(q);
        free(k);
        free(v);
        free(out);
        free(q1);
        free(k1);
        free(v1);
        free(o1);
    }
}

// Puts value at element f of vector (b, h, s) of a tensor of c's layout.
static void poke(const attention_case *c, float *x, int nh, int seq, int b, int h, int s, int f, float value) {
    x[vector_at(c->layout, c->batch, nh, seq, c->head_dim, b, h, s) + f] = value;
}

// NaN and Inf reach exactly the outputs that depend on them (same NaN/Inf places as the float64
// reference, which leaves masked keys out): a NaN in q makes its row NaN; in k, the rows that see
// that key; in v, one column of the rows that see it, near the causal diagonal too (inside a
// group of 4 rows, the rows that cannot see the key must stay finite); +inf in q: rows NaN.
static void test_nan_inf(void) {
    for (int layout = 0; layout < 3; layout++) {
        attention_case c = {1, 2, 1, 21, 21, 16, layout, 1, 0.25f, 0, 0, 0};
        size_t nq = q_floats(&c), nkv = kv_floats(&c);
        float *q = random_tensor(nq, 1.0f), *k = random_tensor(nkv, 1.0f), *v = random_tensor(nkv, 1.0f);
        struct {
            const char *what;
            int tensor;  // 0 q, 1 k, 2 v
            int h, s, f;
            float value;
            int causal;
        } pokes[] = {
            {"NaN in q", 0, 1, 6, 3, NAN, 1},        {"NaN in k", 1, 0, 9, 0, NAN, 1},
            {"NaN in k, non-causal", 1, 0, 20, 5, NAN, 0}, {"NaN in v", 2, 0, 13, 2, NAN, 1},
            {"NaN in v, last key", 2, 0, 20, 7, NAN, 1}, {"inf in v", 2, 0, 5, 1, INFINITY, 1},
            {"+inf in q", 0, 0, 10, 4, INFINITY, 1},  {"-inf in k", 1, 0, 3, 2, -INFINITY, 1},
        };
        for (size_t p = 0; p < sizeof(pokes) / sizeof(pokes[0]); p++) {
            c.causal = pokes[p].causal;
            float *target = pokes[p].tensor == 0 ? q : pokes[p].tensor == 1 ? k : v;
            int nh = pokes[p].tensor == 0 ? c.heads : c.kv_heads;
            float saved = target[vector_at(c.layout, c.batch, nh, c.seq_q, c.head_dim, 0, pokes[p].h, pokes[p].s) + pokes[p].f];
            poke(&c, target, nh, c.seq_q, 0, pokes[p].h, pokes[p].s, pokes[p].f, pokes[p].value);
            describe(&c, pokes[p].what);
            attention_run run = run_case(&c, q, k, v, 1.0f);
            CHECK(run.status == ROPE_OK);
            // relative_error demands the same NaN/Inf places; check that the poke did reach something.
            CHECK(relative_error(run.out, run.ref_out, nq) < TOLERANCE);
            CHECK(relative_error(run.weights, run.ref_weights, weight_floats(&c)) < TOLERANCE);
            int reached = 0;
            for (size_t i = 0; i < nq; i++) reached |= !isfinite(run.out[i]);
            CHECK(reached || pokes[p].value == -INFINITY);
            free_run(&run);
            poke(&c, target, nh, c.seq_q, 0, pokes[p].h, pokes[p].s, pokes[p].f, saved);
        }
        free(q);
        free(k);
        free(v);
    }
}

// The float64 reference's output for scores that are all -inf: our documented zeros.
static void test_all_minus_inf(void) {
    attention_case c = {1, 1, 1, 5, 5, 4, ROPE_LAYOUT_BHSD, 0, 1.0f, 0, 0, 0};
    describe(&c, "all scores -inf");
    float q[20], k[20], v[20], out[20], weights[25];
    for (int i = 0; i < 20; i++) {
        q[i] = 1.0f;
        k[i] = -INFINITY;
        v[i] = 1.0f;
    }
    CHECK(call_forward(&c, q, k, v, out, weights, NULL) == ROPE_OK);
    int zeros = 1;
    for (int i = 0; i < 20; i++) zeros &= out[i] == 0.0f;
    for (int i = 0; i < 25; i++) zeros &= weights[i] == 0.0f;
    CHECK(zeros);
}

// seq_q 0 touches nothing; seq_k 0 gives zero rows (and no weights to write).
static void test_empty(void) {
    float q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, k[1] = {0}, v[1] = {0}, out[8];
    for (int i = 0; i < 8; i++) out[i] = 42.0f;
    snprintf(context, sizeof(context), "empty sequences");
    CHECK(rope_attention_forward(q, k, v, out, NULL, 1, 2, 1, 0, 5, 4, ROPE_LAYOUT_BHSD, 1, 1.0f, NULL, 0) == ROPE_OK);
    CHECK(out[0] == 42.0f && out[7] == 42.0f);
    for (int layout = 0; layout < 3; layout++) {
        CHECK(rope_attention_forward(q, k, v, out, NULL, 1, 2, 1, 1, 0, 4, layout, 0, 1.0f, NULL, 0) == ROPE_OK);
        int zeros = 1;
        for (int i = 0; i < 8; i++) zeros &= out[i] == 0.0f;
        CHECK(zeros);
    }
}

static void test_errors(void) {
    snprintf(context, sizeof(context), "errors");
    float x[64] = {0}, out[64], weights[64];
    rope_embedding *rope8 = rope_create(8, BASE, ROPE_PAIRING_HALF);
    rope_embedding *rope4 = rope_create(4, BASE, ROPE_PAIRING_HALF);
    // batch, heads, kv_heads, seq_q, seq_k, head_dim, layout, causal, scale, rope, offset
#define FORWARD(q, k, v, o, w, b, h, kv, sq, sk, d, layout, scale, rope, offset) \
    rope_attention_forward(q, k, v, o, w, b, h, kv, sq, sk, d, layout, 1, scale, rope, offset)
    CHECK(FORWARD(x, x, x, out, weights, 1, 1, 1, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_OK);
    CHECK(FORWARD(NULL, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_NULL);
    CHECK(FORWARD(x, NULL, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_NULL);
    CHECK(FORWARD(x, x, NULL, out, NULL, 1, 1, 1, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_NULL);
    CHECK(FORWARD(x, x, x, NULL, NULL, 1, 1, 1, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_NULL);
    CHECK(FORWARD(x, x, x, out, NULL, 0, 1, 1, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 0, 1, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 0, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, -1, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, -2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, 0, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, -4, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, INT32_MAX, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, INT32_MAX - 3, 2, 1, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, INT32_MAX, 1, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 3, 2, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_HEADS);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 2, 4, 2, 2, 4, 2, 1.0f, NULL, 0) == ROPE_ERR_HEADS);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 3, 1.0f, NULL, 0) == ROPE_ERR_LAYOUT);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, -1, 1.0f, NULL, 0) == ROPE_ERR_LAYOUT);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, NAN, NULL, 0) == ROPE_ERR_SCALE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, INFINITY, NULL, 0) == ROPE_ERR_SCALE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, -INFINITY, NULL, 0) == ROPE_ERR_SCALE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, 3e38f, NULL, 0) == ROPE_ERR_SCALE);  // times log2(e)
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, 1.0f, rope8, 0) == ROPE_ERR_DIM);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, 1.0f, rope4, 0) == ROPE_OK);
    // Positions outside int32: k's last, q's first.
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 3, 4, 2, 1.0f, rope4, INT32_MAX - 1) == ROPE_ERR_POSITIONS);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 3, 4, 2, 1.0f, rope4, INT32_MAX - 2) == ROPE_OK);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 5, 2, 4, 2, 1.0f, rope4, INT32_MIN + 2) == ROPE_ERR_POSITIONS);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 5, 2, 4, 2, 1.0f, rope4, INT32_MIN + 3) == ROPE_OK);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 2, 3, 4, 2, 1.0f, NULL, INT32_MAX) == ROPE_OK);  // no rope: ignored
    // Sizes whose products wrap or exceed the address space; nothing is read before the check.
    CHECK(FORWARD(x, x, x, out, NULL, 1 << 20, 1 << 20, 1, 1 << 20, 1, 1 << 20, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1, 1, 1, 1, INT32_MAX, INT32_MAX - 7, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, NULL, 1 << 16, 1 << 16, 1 << 16, 1 << 16, 1, 1 << 16, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
    CHECK(FORWARD(x, x, x, out, weights, 1 << 16, 1, 1, 1 << 16, 1 << 30, 1, 2, 1.0f, NULL, 0) == ROPE_ERR_SHAPE);
#undef FORWARD
    rope_destroy(rope8);
    rope_destroy(rope4);
}

// ----------------------------------------------------------------------------
// rope_attention_forward_options: causal alignments, sliding windows, v_head_dim, softcap,
// kv_lengths, boolean and additive masks with broadcast strides, and the scores at every stage,
// against a float64 reference written from the definitions.

typedef struct {
    attention_case c;  // sizes, layout, scale, RoPE (c.causal unused)
    attention_options o;
    int v_dim;         // o.v_head_dim resolved
    attention_mask mask;
} options_case;

static void describe_options(const options_case *t, const char *what) {
    const attention_case *c = &t->c;
    snprintf(context, sizeof(context),
             "%s: b%d h%d kv%d sq%d sk%d d%d vd%d %s causal %d window %d,%d softcap %g kvlen %s mask %s%s rope %d",
             what, c->batch, c->heads, c->kv_heads, c->seq_q, c->seq_k, c->head_dim, t->v_dim, layout_name(c->layout),
             t->o.causal, t->o.window_left, t->o.window_right, t->o.softcap, t->o.kv_lengths ? "yes" : "no",
             t->mask.data ? "bool" : "", t->mask.additive ? "+add" : "", c->rope_dim);
}

// Whether query i of (b, h) sees key j: valid length, causal, window, boolean mask, additive -inf.
static int options_sees(const options_case *t, int b, int h, int i, int j) {
    const attention_case *c = &t->c;
    const attention_options *o = &t->o;
    int valid = o->kv_lengths ? o->kv_lengths[b] : c->seq_k;  // bottom-right: the last valid key
    int64_t pos = (int64_t)i + (o->causal == ATTENTION_CAUSAL_TOP_LEFT ? 0 : valid - c->seq_q);
    if (o->kv_lengths && j >= o->kv_lengths[b]) return 0;
    if (o->causal && j > pos) return 0;
    if (o->window_left >= 0 && j < pos - o->window_left) return 0;
    if (o->window_right >= 0 && j > pos + o->window_right) return 0;
    int64_t at = b * t->mask.stride_b + h * t->mask.stride_h + i * t->mask.stride_q + j * t->mask.stride_k;
    if (t->mask.data && !t->mask.data[at]) return 0;
    if (t->mask.additive && t->mask.additive[at] == -INFINITY) return 0;
    return 1;
}

// out: [batch, heads, seq_q, v_dim] in the layout; scores: [4][batch, heads, seq_q, seq_k], one
// array per stage (RAW, MASKED, SOFTCAPPED, SOFTMAX).
static void reference_options(const options_case *t, const float *q, const float *k, const float *v, double *out,
                              double *scores[4]) {
    const attention_case *c = &t->c;
    int d = c->head_dim, vd = t->v_dim;
    double *qi = malloc((size_t)d * sizeof(double));
    double *keys = malloc(((size_t)c->seq_k * d + 1) * sizeof(double));
    double *s = malloc(((size_t)c->seq_k + 1) * sizeof(double));
    for (int b = 0; b < c->batch; b++) {
        for (int h = 0; h < c->heads; h++) {
            int kvh = h / (c->heads / c->kv_heads);
            for (int j = 0; j < c->seq_k; j++) {
                const float *kj = k + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, d, b, kvh, j);
                for (int f = 0; f < d; f++) keys[(size_t)j * d + f] = kj[f];
                if (c->rope_dim) reference_rope(c, keys + (size_t)j * d, (double)c->offset + j);
            }
            for (int i = 0; i < c->seq_q; i++) {
                const float *src = q + vector_at(c->layout, c->batch, c->heads, c->seq_q, d, b, h, i);
                for (int f = 0; f < d; f++) qi[f] = src[f];
                if (c->rope_dim) reference_rope(c, qi, (double)c->offset + c->seq_k - c->seq_q + i);
                size_t row = (((size_t)b * c->heads + h) * c->seq_q + i) * c->seq_k;
                double max = -INFINITY, sum = 0;
                for (int j = 0; j < c->seq_k; j++) {
                    double dot = 0;
                    for (int f = 0; f < d; f++) dot += qi[f] * keys[(size_t)j * d + f];
                    double raw = (double)c->scale * dot, x = -INFINITY;
                    int sees = options_sees(t, b, h, i, j);
                    if (sees) {
                        x = raw;
                        if (t->mask.additive) {
                            x += t->mask.additive[b * t->mask.stride_b + h * t->mask.stride_h + i * t->mask.stride_q +
                                                  j * t->mask.stride_k];
                        }
                    }
                    scores[0][row + j] = raw;
                    scores[1][row + j] = x;
                    if (t->o.softcap != 0.0f && x != -INFINITY) x = t->o.softcap * tanh(x / t->o.softcap);
                    scores[2][row + j] = x;
                    s[j] = x;
                    if (sees && x > max) max = x;
                }
                for (int j = 0; j < c->seq_k; j++) {
                    s[j] = options_sees(t, b, h, i, j) && max != -INFINITY ? exp(s[j] - max) : 0.0;
                    sum += s[j];
                }
                double *o = out + vector_at(c->layout, c->batch, c->heads, c->seq_q, vd, b, h, i);
                for (int f = 0; f < vd; f++) o[f] = 0;
                for (int j = 0; j < c->seq_k; j++) {
                    double w = sum > 0 ? s[j] / sum : 0.0;
                    scores[3][row + j] = w;
                    if (w == 0.0) continue;
                    const float *vj = v + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, vd, b, kvh, j);
                    for (int f = 0; f < vd; f++) o[f] += w * vj[f];
                }
            }
        }
    }
    free(qi);
    free(keys);
    free(s);
}

// Like relative_error, with -inf allowed where the reference has it (exactly there).
static double scores_error(const float *got, const double *ref, size_t n) {
    double err = 0, mag = 1e-30;
    for (size_t i = 0; i < n; i++) {
        if (isinf(ref[i]) || isinf(got[i])) {
            if (got[i] != ref[i]) return INFINITY;
            continue;
        }
        if (isnan(got[i]) != isnan(ref[i])) return INFINITY;
        if (fabs(got[i] - ref[i]) > err) err = fabs(got[i] - ref[i]);
        if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
    }
    return err / mag;
}

static int call_options(const options_case *t, const float *q, const float *k, const float *v, float *out,
                        float *weights, float *scores, int stage) {
    const attention_case *c = &t->c;
    attention_options o = t->o;
    o.mask = t->mask.data || t->mask.additive ? &t->mask : NULL;
    o.scores = scores;
    o.scores_stage = stage;
    rope_embedding *rope = c->rope_dim ? rope_create(c->rope_dim, BASE, c->pairing) : NULL;
    int status = rope_attention_forward_options(q, k, v, out, weights, c->batch, c->heads, c->kv_heads, c->seq_q,
                                                c->seq_k, c->head_dim, c->layout, c->scale, rope, c->offset, &o);
    rope_destroy(rope);
    return status;
}

// Runs t at every stage against the reference; checks the output is the same with and without
// scores or weights, and that hidden keys (NaN in k and v there) never reach a row.
static void check_options_case(const options_case *t, const char *what) {
    const attention_case *c = &t->c;
    describe_options(t, what);
    size_t nq = q_floats(c), nk = kv_floats(c), nw = weight_floats(c);
    size_t nv = (size_t)c->batch * c->kv_heads * c->seq_k * t->v_dim;
    size_t no = (size_t)c->batch * c->heads * c->seq_q * t->v_dim;
    float *q = random_tensor(nq, 1.0f), *k = random_tensor(nk, 1.0f), *v = random_tensor(nv, 1.0f);
    double *ref_out = malloc((no + 1) * sizeof(double)), *ref[4];
    for (int s = 0; s < 4; s++) ref[s] = malloc((nw + 1) * sizeof(double));
    reference_options(t, q, k, v, ref_out, ref);
    float *out = random_tensor(no, 1.0f), *plain = random_tensor(no, 1.0f);
    float *scores = random_tensor(nw, 1.0f), *weights = random_tensor(nw, 1.0f);
    CHECK(call_options(t, q, k, v, plain, NULL, NULL, 0) == ROPE_OK);
    CHECK(relative_error(plain, ref_out, no) < TOLERANCE);
    for (int stage = 0; stage < 4; stage++) {
        CHECK(call_options(t, q, k, v, out, stage == 3 ? NULL : weights, scores, stage) == ROPE_OK);
        CHECK(memcmp(out, plain, no * sizeof(float)) == 0);
        CHECK(scores_error(scores, ref[stage], nw) < TOLERANCE);
        if (stage < 3) CHECK(relative_error(weights, ref[3], nw) < TOLERANCE);
    }
    // NaN in every key and value no row sees (keys past every valid length, outside every window):
    // the output is unchanged bit for bit.
    if (t->o.kv_lengths || t->o.window_left >= 0 || t->o.window_right >= 0) {
        for (int b = 0; b < c->batch; b++) {
            for (int kvh = 0; kvh < c->kv_heads; kvh++) {
                for (int j = 0; j < c->seq_k; j++) {
                    int any = 0;
                    for (int h = kvh * (c->heads / c->kv_heads); h < (kvh + 1) * (c->heads / c->kv_heads); h++) {
                        for (int i = 0; i < c->seq_q; i++) {
                            attention_mask none = t->mask;
                            options_case u = *t;
                            u.mask = none;
                            u.mask.data = NULL;
                            u.mask.additive = NULL;
                            any |= options_sees(&u, b, h, i, j);
                        }
                    }
                    if (any) continue;
                    float *kj = k + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, c->head_dim, b, kvh, j);
                    float *vj = v + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, t->v_dim, b, kvh, j);
                    for (int f = 0; f < c->head_dim; f++) kj[f] = NAN;
                    for (int f = 0; f < t->v_dim; f++) vj[f] = NAN;
                }
            }
        }
        // RoPE rotates every key (a NaN key stays in its own row): only without RoPE.
        if (!c->rope_dim) {
            CHECK(call_options(t, q, k, v, out, NULL, NULL, 0) == ROPE_OK);
            CHECK(memcmp(out, plain, no * sizeof(float)) == 0);
        }
    }
    free(q);
    free(k);
    free(v);
    free(ref_out);
    for (int s = 0; s < 4; s++) free(ref[s]);
    free(out);
    free(plain);
    free(scores);
    free(weights);
}

static int random_int(int lo, int hi) {  // uniform in [lo, hi]
    return lo + (int)((random_float() + 1.0f) * 0.5f * (float)(hi - lo + 1)) % (hi - lo + 1);
}

// A mask of the case's sizes broadcast over the axes whose bit is set in `broadcast` (1 batch,
// 2 heads, 4 queries), boolean and/or additive (kind bit 1, 2); the additive one in [-3, 3] with
// some -inf; the boolean one visible with probability 3/4. *data, *additive receive what to free.
static void random_mask(options_case *t, int kind, int broadcast, uint8_t **data, float **additive) {
    const attention_case *c = &t->c;
    int64_t nb = broadcast & 1 ? 1 : c->batch, nh = broadcast & 2 ? 1 : c->heads;
    int64_t nq = broadcast & 4 ? 1 : c->seq_q, nk = c->seq_k;
    int64_t size = nb * nh * nq * nk;
    attention_mask m = {NULL, 0, 0, 0, 0, NULL};
    m.stride_k = 1;
    m.stride_q = broadcast & 4 ? 0 : nk;
    m.stride_h = broadcast & 2 ? 0 : nq * nk;
    m.stride_b = broadcast & 1 ? 0 : nh * nq * nk;
    *data = NULL;
    *additive = NULL;
    if (kind & 1) {
        *data = malloc((size_t)size + 1);
        for (int64_t i = 0; i < size; i++) (*data)[i] = random_float() < 0.5f ? (uint8_t)random_int(1, 255) : 0;
        m.data = *data;
    }
    if (kind & 2) {
        *additive = malloc(((size_t)size + 1) * sizeof(float));
        for (int64_t i = 0; i < size; i++) {
            (*additive)[i] = random_float() < -0.8f ? -INFINITY : 3.0f * random_float();
        }
        m.additive = *additive;
    }
    t->mask = m;
}

static void test_options_random(void) {
    static const int dims[] = {4, 8, 13, 16, 24, 64};
    static const int windows[] = {-1, -1, -1, 0, 1, 3, 17, 300};
    static const float softcaps[] = {0.0f, 0.0f, 1.0f, 5.0f, 30.0f};
    for (int n = 0; n < 400; n++) {
        options_case t;
        memset(&t, 0, sizeof(t));
        attention_case *c = &t.c;
        int kv_choices[] = {1, 2, 4};
        c->kv_heads = kv_choices[random_int(0, 2)];
        c->heads = c->kv_heads * random_int(1, 2);
        c->batch = random_int(1, 2);
        int long_case = n % 10 == 0;
        c->seq_q = long_case ? random_int(100, 180) : random_int(0, 24);
        c->seq_k = long_case ? random_int(120, 300) : random_int(0, 24);
        c->head_dim = dims[random_int(0, 5)];
        c->layout = random_int(0, 2);
        c->scale = 1.0f / sqrtf((float)c->head_dim) * (random_float() < 0.5f ? 1.0f : 3.0f);
        if (random_float() < -0.5f && c->head_dim % 2 == 0) {
            c->rope_dim = c->head_dim;
            c->pairing = random_int(0, 1);
            c->offset = random_int(0, 50);
        }
        t.o = attention_options_defaults();
        t.o.causal = random_int(0, 2);
        t.o.window_left = windows[random_int(0, 7)];
        t.o.window_right = windows[random_int(0, 7)];
        t.o.softcap = softcaps[random_int(0, 4)];
        int v_choices[] = {0, 0, 5, 8, 12, 40};
        t.o.v_head_dim = v_choices[random_int(0, 5)];
        t.v_dim = t.o.v_head_dim ? t.o.v_head_dim : c->head_dim;
        int32_t lengths[2];
        if (random_float() < -0.4f) {
            for (int b = 0; b < c->batch; b++) lengths[b] = random_float() < -0.7f ? 0 : random_int(0, c->seq_k);
            t.o.kv_lengths = lengths;
        }
        uint8_t *data = NULL;
        float *additive = NULL;
        int kind = random_int(0, 3);
        if (kind) random_mask(&t, kind, random_int(0, 7), &data, &additive);
        check_options_case(&t, "options random");
        free(data);
        free(additive);
    }
}

// The corner cases by name.
static void test_options_corners(void) {
    options_case t;
    memset(&t, 0, sizeof(t));
    attention_case base = {2, 2, 1, 9, 6, 8, ROPE_LAYOUT_BHSD, 0, 0.35f, 0, 0, 0};
    // seq_q > seq_k, both alignments, with and without a window: rows before the diagonal are empty
    // bottom-right; top-left they see keys from 0.
    for (int causal = 1; causal <= 2; causal++) {
        for (int w = -1; w <= 2; w++) {
            t.c = base;
            t.o = attention_options_defaults();
            t.o.causal = causal;
            t.o.window_left = w;
            t.v_dim = 8;
            check_options_case(&t, "seq_q > seq_k");
        }
    }
    // Windows wider than the sequence: the same as none, bit for bit.
    {
        t.c = base;
        t.c.seq_q = t.c.seq_k = 150;
        t.o = attention_options_defaults();
        t.o.causal = ATTENTION_CAUSAL_BOTTOM_RIGHT;
        t.v_dim = 8;
        size_t n = q_floats(&t.c);
        float *q = random_tensor(n, 1.0f), *out1 = malloc(n * sizeof(float)), *out2 = malloc(n * sizeof(float));
        describe_options(&t, "window wider than the sequence");
        CHECK(call_options(&t, q, q, q, out1, NULL, NULL, 0) == ROPE_OK);
        t.o.window_left = 1000;
        t.o.window_right = 5000;
        CHECK(call_options(&t, q, q, q, out2, NULL, NULL, 0) == ROPE_OK);
        CHECK(memcmp(out1, out2, n * sizeof(float)) == 0);
        // and the plain entry point gives the same bits
        CHECK(rope_attention_forward(q, q, q, out2, NULL, t.c.batch, t.c.heads, t.c.kv_heads, 150, 150, 8,
                                     ROPE_LAYOUT_BHSD, 1, 0.35f, NULL, 0) == ROPE_OK);
        CHECK(memcmp(out1, out2, n * sizeof(float)) == 0);
        free(q);
        free(out1);
        free(out2);
    }
    // Empty windows: non-causal, window (0, 0) with seq_q > seq_k bottom-right: the first rows'
    // only key is before key 0. A right window of 0 and left of 0 sees one key.
    t.c = base;
    t.o = attention_options_defaults();
    t.o.window_left = 0;
    t.o.window_right = 0;
    t.v_dim = 8;
    check_options_case(&t, "empty windows");
    // Key length 0 for one batch row, all for the other; softcap and a mask on top.
    int32_t lengths[2] = {0, 6};
    t.c = base;
    t.o = attention_options_defaults();
    t.o.kv_lengths = lengths;
    t.o.softcap = 2.0f;
    t.v_dim = 8;
    check_options_case(&t, "kv length 0");
    // Fully masked rows (boolean 0 everywhere in row 3; additive -inf everywhere in row 5).
    t.c = base;
    t.c.seq_q = t.c.seq_k = 7;
    t.o = attention_options_defaults();
    t.o.softcap = 3.0f;
    t.v_dim = 8;
    uint8_t bits[49];
    float add[49];
    for (int i = 0; i < 49; i++) {
        bits[i] = i / 7 == 3 ? 0 : 1;
        add[i] = i / 7 == 5 ? -INFINITY : 0.25f * (float)(i % 5);
    }
    attention_mask m = {bits, 0, 0, 7, 1, add};
    t.mask = m;
    check_options_case(&t, "fully masked rows");
    float q[2 * 2 * 7 * 8], out[2 * 2 * 7 * 8], w[2 * 2 * 49];
    for (int i = 0; i < 2 * 2 * 7 * 8; i++) q[i] = random_float();
    CHECK(call_options(&t, q, q, q, out, w, NULL, 0) == ROPE_OK);
    int zeros = 1;
    for (int bh = 0; bh < 4; bh++) {
        for (int f = 0; f < 8; f++) zeros &= out[(bh * 7 + 3) * 8 + f] == 0.0f && out[(bh * 7 + 5) * 8 + f] == 0.0f;
        for (int j = 0; j < 7; j++) zeros &= w[(bh * 7 + 3) * 7 + j] == 0.0f && w[(bh * 7 + 5) * 7 + j] == 0.0f;
    }
    CHECK(zeros);
    // Softcap keeps -inf: the MASKED and SOFTCAPPED scores of the hidden keys are -inf.
    float s[2 * 2 * 49];
    CHECK(call_options(&t, q, q, q, out, NULL, s, ATTENTION_SCORES_SOFTCAPPED) == ROPE_OK);
    int minus_inf = 1;
    for (int j = 0; j < 7; j++) minus_inf &= s[3 * 7 + j] == -INFINITY && s[5 * 7 + j] == -INFINITY;
    CHECK(minus_inf);
    // Sliding window over a long sequence: only the window's keys are read (NaN elsewhere).
    t.c = base;
    t.c.batch = 1;
    t.c.heads = t.c.kv_heads = 1;
    t.c.seq_q = t.c.seq_k = 1000;
    t.o = attention_options_defaults();
    t.o.causal = ATTENTION_CAUSAL_BOTTOM_RIGHT;
    t.o.window_left = 63;
    t.mask.data = NULL;
    t.mask.additive = NULL;
    t.v_dim = 8;
    check_options_case(&t, "sliding window 64 over 1000");
}

static void test_options_errors(void) {
    snprintf(context, sizeof(context), "options errors");
    float x[64] = {0}, out[64], s[64];
    attention_options o = attention_options_defaults();
#define OPT(o) rope_attention_forward_options(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, ROPE_LAYOUT_BHSD, 1.0f, NULL, 0, &(o))
    CHECK(OPT(o) == ROPE_OK);
    CHECK(rope_attention_forward_options(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, 1.0f, NULL, 0, NULL) == ROPE_OK);
    o.causal = 3;
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o.causal = -1;
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o = attention_options_defaults();
    o.window_left = -2;
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o = attention_options_defaults();
    o.window_right = -2;
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o = attention_options_defaults();
    o.softcap = -1.0f;
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o.softcap = NAN;
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o.softcap = INFINITY;
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o.softcap = 3e38f;  // times log2(e): not a float
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o = attention_options_defaults();
    o.v_head_dim = -1;
    CHECK(OPT(o) == ROPE_ERR_SHAPE);
    o.v_head_dim = INT32_MAX;
    CHECK(OPT(o) == ROPE_ERR_SHAPE);
    o = attention_options_defaults();
    int32_t lengths[1] = {3};
    o.kv_lengths = lengths;
    CHECK(OPT(o) == ROPE_ERR_SHAPE);
    lengths[0] = -1;
    CHECK(OPT(o) == ROPE_ERR_SHAPE);
    lengths[0] = 2;
    CHECK(OPT(o) == ROPE_OK);
    o = attention_options_defaults();
    o.scores = s;
    o.scores_stage = 4;
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o.scores_stage = -1;
    CHECK(OPT(o) == ROPE_ERR_VALUE);
    o.scores_stage = 0;
    CHECK(OPT(o) == ROPE_OK);
    o = attention_options_defaults();
    attention_mask none = {NULL, 0, 0, 0, 0, NULL};
    o.mask = &none;
    CHECK(OPT(o) == ROPE_ERR_NULL);
    float add[4] = {0};
    attention_mask negative = {NULL, 0, 0, -1, 1, add};
    o.mask = &negative;
    CHECK(OPT(o) == ROPE_ERR_SHAPE);
    attention_mask additive = {NULL, 0, 0, 2, 1, add};
    o.mask = &additive;
    CHECK(OPT(o) == ROPE_OK);
    // The masked entry point still wants a boolean mask.
    CHECK(rope_attention_forward_masked(x, x, x, out, NULL, 1, 1, 1, 2, 2, 4, 2, 0, 1.0f, NULL, 0, &additive) ==
          ROPE_ERR_NULL);
#undef OPT
}

// ----------------------------------------------------------------------------
// masks

// The stride patterns of an attention_mask tested: the seed's [seq_q, seq_k, batch] and
// [seq_q, seq_k, 1], a full [batch, heads, seq_q, seq_k], the same broadcast over heads
// [batch, 1, seq_q, seq_k], and key-major [batch, heads, seq_k, seq_q] (stride_q < stride_k).
enum { MASK_SEED_BATCH, MASK_SEED_ONE, MASK_FULL, MASK_HEADS_BROADCAST, MASK_KEY_MAJOR, MASK_PATTERNS };
static const char *mask_names[MASK_PATTERNS] = {"[sq, sk, batch]", "[sq, sk, 1]", "[b, h, sq, sk]", "[b, 1, sq, sk]",
                                                "[b, h, sk, sq]"};

// Sets *mask's strides for pattern and returns its data, exactly as many bytes as they address:
// each element visible with probability quarters / 4, a visible one any byte 1..254 (nonzero
// means visible, not only 1).
static uint8_t *new_mask(const attention_case *c, int pattern, int quarters, attention_mask *mask) {
    int64_t b = c->batch, h = c->heads, sq = c->seq_q, sk = c->seq_k, size;
    attention_mask m = {NULL, 0, 0, 0, 0, NULL};
    if (pattern == MASK_SEED_BATCH) {
        m.stride_b = 1;
        m.stride_q = sk * b;
        m.stride_k = b;
        size = sq * sk * b;
    } else if (pattern == MASK_SEED_ONE) {
        m.stride_q = sk;
        m.stride_k = 1;
        size = sq * sk;
    } else if (pattern == MASK_FULL || pattern == MASK_HEADS_BROADCAST) {
        m.stride_b = (pattern == MASK_FULL ? h : 1) * sq * sk;
        m.stride_h = pattern == MASK_FULL ? sq * sk : 0;
        m.stride_q = sk;
        m.stride_k = 1;
        size = (pattern == MASK_FULL ? h : 1) * b * sq * sk;
    } else {
        m.stride_b = h * sq * sk;
        m.stride_h = sq * sk;
        m.stride_q = 1;
        m.stride_k = sq;
        size = b * h * sq * sk;
    }
    uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
    for (int64_t i = 0; i < size; i++) {
        float r = random_float() + 1.0f;  // uniform in [0, 2)
        data[i] = r < 0.5f * quarters ? (uint8_t)(1 + (int)(r * 126.0f)) : 0;
    }
    m.data = data;
    *mask = m;
    return data;
}

static int call_masked(const attention_case *c, const float *q, const float *k, const float *v, float *out,
                       float *weights, rope_embedding *rope, const attention_mask *mask) {
    return rope_attention_forward_masked(q, k, v, out, weights, c->batch, c->heads, c->kv_heads, c->seq_q, c->seq_k,
                                         c->head_dim, c->layout, c->causal, c->scale, rope, c->offset, mask);
}

// The exact zeros: a weight of a key the row does not see is 0, and a row that sees no key is 0 in
// out and weights. Returns 0 if any is not; counts the rows that see no key into *empty_rows.
static int unseen_are_zero(const attention_case *c, const attention_mask *mask, const float *out,
                           const float *weights, int *empty_rows) {
    int ok = 1;
    *empty_rows = 0;
    for (int b = 0; b < c->batch; b++) {
        for (int h = 0; h < c->heads; h++) {
            for (int i = 0; i < c->seq_q; i++) {
                const float *w = weights + (((size_t)b * c->heads + h) * c->seq_q + i) * c->seq_k;
                int seen = 0;
                for (int j = 0; j < c->seq_k; j++) {
                    int s = sees_key(c, mask, b, h, i, j);
                    seen += s;
                    ok &= s || w[j] == 0.0f;
                }
                if (seen) continue;
                (*empty_rows)++;
                const float *o = out + vector_at(c->layout, c->batch, c->heads, c->seq_q, c->head_dim, b, h, i);
                for (int f = 0; f < c->head_dim; f++) ok &= o[f] == 0.0f;
            }
        }
    }
    return ok;
}

// A masked call on q, k, v (random when NULL) against the reference with the same mask: out and
// weights (same NaN places too), and the exact zeros. Returns the number of rows that see no key.
static int check_masked_case(const attention_case *c, const attention_mask *mask, const float *q_in,
                             const float *v_in, const char *what) {
    describe(c, what);
    size_t nq = q_floats(c), nkv = kv_floats(c), nw = weight_floats(c);
    float *q = q_in ? copy_of(q_in, nq) : random_tensor(nq, 1.0f), *k = random_tensor(nkv, 1.0f);
    float *v = v_in ? copy_of(v_in, nkv) : random_tensor(nkv, 1.0f);
    float *out = random_tensor(nq, 1.0f), *weights = random_tensor(nw, 1.0f);  // garbage to overwrite
    double *ref_out = malloc((nq > 0 ? nq : 1) * sizeof(double)), *ref_weights = malloc((nw > 0 ? nw : 1) * sizeof(double));
    rope_embedding *rope = c->rope_dim ? rope_create(c->rope_dim, BASE, c->pairing) : NULL;
    CHECK(call_masked(c, q, k, v, out, weights, rope, mask) == ROPE_OK);
    reference_attention(c, q, k, v, mask, ref_out, ref_weights);
    CHECK(relative_error(out, ref_out, nq) < TOLERANCE);
    CHECK(relative_error(weights, ref_weights, nw) < TOLERANCE);
    int empty_rows;
    CHECK(unseen_are_zero(c, mask, out, weights, &empty_rows));
    rope_destroy(rope);
    free(q);
    free(k);
    free(v);
    free(out);
    free(weights);
    free(ref_out);
    free(ref_weights);
    return empty_rows;
}

// Random masks in every stride pattern, every layout, with and without causal, on cases that take
// both group kernels (4 rows, and one row: seq_q % 4 == 1, decoding), two key blocks, grouped
// heads, RoPE, and seq_q > seq_k (causal rows that see nothing).
static void test_mask_patterns(void) {
    // batch, heads, kv_heads, seq_q, seq_k, head_dim, layout, causal, scale, rope_dim, pairing, offset
    attention_case shapes[] = {
        {2, 4, 2, 17, 19, 16, 0, 0, 0.25f, 8, ROPE_PAIRING_HALF, 0},
        {3, 2, 1, 5, 140, 24, 0, 0, 0.2f, 0, 0, 0},
        {1, 2, 2, 1, 37, 64, 0, 0, 0.125f, 64, ROPE_PAIRING_INTERLEAVED, 10},
        {2, 2, 2, 33, 20, 12, 0, 0, 0.3f, 0, 0, 0},
    };
    int n = 0;
    for (int s = 0; s < 4; s++) {
        for (int pattern = 0; pattern < MASK_PATTERNS; pattern++) {
            for (int layout = 0; layout < 3; layout++) {
                for (int causal = 0; causal < 2; causal++) {
                    attention_case c = shapes[s];
                    c.layout = layout;
                    c.causal = causal;
                    attention_mask mask;
                    uint8_t *data = new_mask(&c, pattern, 1 + n++ % 3, &mask);
                    char what[64];
                    snprintf(what, sizeof(what), "mask %s", mask_names[pattern]);
                    check_masked_case(&c, &mask, NULL, NULL, what);
                    free(data);
                }
            }
        }
    }
}

// Rows the mask leaves without a key, alone or with causal, are exactly 0 in out and weights: one
// row of one head, every row of a (batch row, head), and with causal, rows whose only causal keys
// are masked.
static void test_mask_empty_rows(void) {
    for (int causal = 0; causal < 2; causal++) {
        attention_case c = {2, 2, 1, 9, 9, 8, ROPE_LAYOUT_BSHD, causal, 0.3f, 0, 0, 0};
        attention_mask mask;
        uint8_t *data = new_mask(&c, MASK_FULL, 4, &mask);  // all visible, then:
        int sq = c.seq_q, sk = c.seq_k;
        for (int j = 0; j < sk; j++) data[(0 * 2 + 1) * sq * sk + 3 * sk + j] = 0;  // b 0, h 1, row 3
        for (int i = 0; i < sq * sk; i++) data[(1 * 2 + 0) * sq * sk + i] = 0;        // b 1, h 0
        data[0] = 0;                                                                   // b 0, h 0, row 0, key 0
        for (int j = 0; j < 3; j++) data[2 * sk + j] = 0;                              // b 0, h 0, row 2, keys 0..2
        int empty = check_masked_case(&c, &mask, NULL, NULL, "fully masked rows");
        CHECK(empty == (causal ? 1 + 9 + 2 : 1 + 9));
        free(data);
    }
}

// A mask that hides nothing (any nonzero bytes) gives bit for bit the unmasked output and weights.
static void test_mask_all_visible(void) {
    attention_case cases[] = {{2, 4, 2, 21, 130, 24, ROPE_LAYOUT_SBHD, 1, 0.2f, 16, ROPE_PAIRING_HALF, 3},
                              {1, 2, 2, 1, 50, 64, ROPE_LAYOUT_BHSD, 0, 0.125f, 0, 0, 0}};
    for (int i = 0; i < 2; i++) {
        attention_case *c = &cases[i];
        describe(c, "mask hiding nothing");
        size_t nq = q_floats(c), nkv = kv_floats(c), nw = weight_floats(c);
        float *q = random_tensor(nq, 1.0f), *k = random_tensor(nkv, 1.0f), *v = random_tensor(nkv, 1.0f);
        float *out = malloc(nq * sizeof(float)), *weights = malloc(nw * sizeof(float));
        float *masked_out = malloc(nq * sizeof(float)), *masked_weights = malloc(nw * sizeof(float));
        attention_mask mask;
        uint8_t *data = new_mask(c, MASK_SEED_BATCH, 4, &mask);
        rope_embedding *rope = c->rope_dim ? rope_create(c->rope_dim, BASE, c->pairing) : NULL;
        CHECK(call_forward(c, q, k, v, out, weights, rope) == ROPE_OK);
        CHECK(call_masked(c, q, k, v, masked_out, masked_weights, rope, &mask) == ROPE_OK);
        CHECK(memcmp(out, masked_out, nq * sizeof(float)) == 0);
        CHECK(memcmp(weights, masked_weights, nw * sizeof(float)) == 0);
        rope_destroy(rope);
        free(data);
        free(q);
        free(k);
        free(v);
        free(out);
        free(weights);
        free(masked_out);
        free(masked_weights);
    }
}

// NaN with a mask: a NaN in v reaches exactly the rows that see its key, and a row the mask hides
// the key from stays finite (0 * NaN would be NaN: the hidden key must stay out of the sum), in
// both group kernels (seq_q 9: two groups of 4 rows and a one-row group; seq_q 1) and in the
// one-row kernel's 32-column chunks (head_dim 64). A NaN in q makes its row's visible weights NaN;
// its masked weights stay exactly 0.
static void test_mask_nan(void) {
    attention_case cases[] = {{1, 2, 1, 9, 21, 64, 0, 0, 0.125f, 0, 0, 0}, {1, 1, 1, 1, 21, 12, 0, 0, 0.3f, 0, 0, 0},
                              {1, 2, 2, 9, 9, 12, 0, 1, 0.3f, 4, ROPE_PAIRING_HALF, 0}};
    for (int i = 0; i < 3; i++) {
        for (int layout = 0; layout < 3; layout++) {
            attention_case c = cases[i];
            c.layout = layout;
            int key = c.seq_k - 3, feature = 5;
            attention_mask mask;
            uint8_t *data = new_mask(&c, MASK_FULL, 2, &mask);
            // Row 0 of head 0 sees the key; row 1 (a group of 4 rows when seq_q is 9) and the last
            // row (the one-row group) do not.
            data[key] = 1;
            data[(size_t)(c.seq_q - 1) * c.seq_k + key] = 0;
            if (c.seq_q > 1) data[(size_t)c.seq_k + key] = 0;
            float *v = random_tensor(kv_floats(&c), 1.0f);
            v[vector_at(c.layout, c.batch, c.kv_heads, c.seq_k, c.head_dim, 0, 0, key) + feature] = NAN;
            check_masked_case(&c, &mask, NULL, v, "mask, NaN in v");
            // The rows that see the key are NaN, the others finite: as the reference says.
            float *q = random_tensor(q_floats(&c), 1.0f);
            q[vector_at(c.layout, c.batch, c.heads, c.seq_q, c.head_dim, 0, 0, c.seq_q - 1)] = NAN;
            check_masked_case(&c, &mask, q, NULL, "mask, NaN in q");
            free(v);
            free(q);
            free(data);
        }
    }
}

// A window that starts after a block's first key keeps the keys before it out of P·V entirely: a
// NaN in v there must not reach the row through weight 0 (the fuzzer's find: window {0, 0},
// seq_q 3 > seq_k 2, not causal, where the rows' starts differ and none is shared by all).
static void test_window_nan(void) {
    snprintf(context, sizeof(context), "window {0, 0}, NaN in v before a row's window");
    enum { SEQ_Q = 3, SEQ_K = 2, D = 3 };
    float q[SEQ_Q * D], k[SEQ_K * D], v[SEQ_K * D], out[SEQ_Q * D];
    for (int i = 0; i < SEQ_Q * D; i++) q[i] = 0.25f * (float)(i % 5) - 0.5f;
    for (int i = 0; i < SEQ_K * D; i++) k[i] = 0.5f - 0.125f * (float)i;
    for (int i = 0; i < SEQ_K * D; i++) v[i] = (float)(i + 1);
    v[0] = NAN;  // key 0, seen only by query 1 (aligned bottom-right: query i at position i - 1)
    attention_options o = attention_options_defaults();
    o.window_left = 0;
    o.window_right = 0;
    int status = rope_attention_forward_options(q, k, v, out, NULL, 1, 1, 1, SEQ_Q, SEQ_K, D, ROPE_LAYOUT_BHSD, 1.0f,
                                                NULL, 0, &o);
    CHECK(status == ROPE_OK);
    for (int f = 0; f < D; f++) {
        CHECK(out[f] == 0.0f);                             // query 0 (position -1) sees nothing
        CHECK(f == 0 ? isnan(out[D + f]) : out[D + f] == v[f]);  // query 1 sees key 0 alone
        CHECK(out[2 * D + f] == v[D + f]);                 // query 2 sees key 1 alone: no NaN
    }
}

// A mask with NULL data, or a negative stride, is refused before anything is written.
static void test_mask_errors(void) {
    snprintf(context, sizeof(context), "mask errors");
    float x[16] = {0}, out[16];
    uint8_t bits[4] = {1, 0, 1, 1};
    for (int i = 0; i < 16; i++) out[i] = 42.0f;
    attention_mask ok = {bits, 0, 0, 2, 1, NULL};
    attention_case c = {1, 1, 1, 2, 2, 4, ROPE_LAYOUT_BHSD, 0, 1.0f, 0, 0, 0};
    attention_mask bad = ok;
    bad.data = NULL;
    CHECK(call_masked(&c, x, x, x, out, NULL, NULL, &bad) == ROPE_ERR_NULL);
    int64_t *strides[4] = {&bad.stride_b, &bad.stride_h, &bad.stride_q, &bad.stride_k};
    for (int s = 0; s < 4; s++) {
        bad = ok;
        *strides[s] = -1;
        CHECK(call_masked(&c, x, x, x, out, NULL, NULL, &bad) == ROPE_ERR_SHAPE);
    }
    int untouched = 1;
    for (int i = 0; i < 16; i++) untouched &= out[i] == 42.0f;
    CHECK(untouched);
    CHECK(call_masked(&c, x, x, x, out, NULL, NULL, &ok) == ROPE_OK);
}

// The rope_sdpa cases of ../shared/reference: RoPE (half pairing, all of head_dim, base 10000) on
// q and k of [batch, heads, seq, head_dim], causal, scale 1/sqrt(head_dim), against PyTorch in
// float64.
static float *read_floats(const char *path, size_t n, int is_double) {
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n && x; i++) {
        double d64;
        float f32;
        int ok = is_double ? fread(&d64, sizeof(d64), 1, file) == 1 : fread(&f32, sizeof(f32), 1, file) == 1;
        if (!ok) {
            free(x);
            x = NULL;
            break;
        }
        x[i] = is_double ? (float)d64 : f32;
    }
    fclose(file);
    return x;
}

static void test_reference_cases(void) {
    const char *dir = "../shared/reference/cases";
    struct {
        const char *name;
        int batch, heads, seq, head_dim;
    } cases[] = {{"sdpa_b1_h2_n16_hd32_causal", 1, 2, 16, 32}, {"sdpa_b2_h4_n100_hd64_causal", 2, 4, 100, 64}};
    for (int i = 0; i < 2; i++) {
        char path[512];
        size_t n = (size_t)cases[i].batch * cases[i].heads * cases[i].seq * cases[i].head_dim;
        float *t[4];
        const char *arrays[4] = {"q", "k", "v", "out_f64"};
        for (int a = 0; a < 4; a++) {
            snprintf(path, sizeof(path), "%s/%s.%s.bin", dir, cases[i].name, arrays[a]);
            t[a] = read_floats(path, n, a == 3);
        }
        snprintf(context, sizeof(context), "reference case %s", cases[i].name);
        if (!t[0] || !t[1] || !t[2] || !t[3]) {
            printf("note: %s/%s.* not found: reference case skipped (run from the repository root)\n", dir, cases[i].name);
        } else {
            float *out = malloc(n * sizeof(float));
            double *ref = malloc(n * sizeof(double));
            for (size_t f = 0; f < n; f++) ref[f] = t[3][f];  // read as float: 1e-5 needs no more
            rope_embedding *rope = rope_create(cases[i].head_dim, BASE, ROPE_PAIRING_HALF);
            CHECK(rope_attention_forward(t[0], t[1], t[2], out, NULL, cases[i].batch, cases[i].heads, cases[i].heads,
                                         cases[i].seq, cases[i].seq, cases[i].head_dim, ROPE_LAYOUT_BHSD, 1,
                                         1.0f / sqrtf((float)cases[i].head_dim), rope, 0) == ROPE_OK);
            CHECK(relative_error(out, ref, n) < TOLERANCE);
            rope_destroy(rope);
            free(out);
            free(ref);
        }
        for (int a = 0; a < 4; a++) free(t[a]);
    }
}

// ----------------------------------------------------------------------------
// float16 / bfloat16 tensors (rope_attention_forward_typed)

// float32 -> bfloat16, round to nearest even, written here independently of the kernel: the two
// neighbours by truncation, the nearer in double (ties to the even one); NaN -> a NaN.
static uint16_t ref_bfloat16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    if (isnan(f)) return (uint16_t)(x >> 16 | 0x40u);
    uint32_t lo = x & 0xFFFF0000u, hi = lo + 0x10000u;
    float flo, fhi;
    memcpy(&flo, &lo, sizeof(flo));
    memcpy(&fhi, &hi, sizeof(fhi));
    if (lo == x) return (uint16_t)(x >> 16);
    double dhi = isinf(fhi) ? copysign(0x1p128, f) : (double)fhi;
    double dlo = fabs((double)f - flo), dh = fabs(dhi - (double)f);
    if (dlo < dh || (dlo == dh && !(lo & 0x10000u))) return (uint16_t)(lo >> 16);
    return (uint16_t)(hi >> 16);
}

static uint16_t ref_half(float f) {
    _Float16 h = (_Float16)f;  // GCC: correctly rounded, to nearest even
    uint16_t bits;
    memcpy(&bits, &h, sizeof(bits));
    return bits;
}

static float half_value(uint16_t bits) {
    _Float16 h;
    memcpy(&h, &bits, sizeof(h));
    return (float)h;
}

static float bfloat16_value(uint16_t bits) {
    uint32_t x = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &x, sizeof(f));
    return f;
}

// Every 16-bit pattern through one key (weight exactly 1): out = v, NaN stays NaN, inf stays inf;
// and the midpoint of every two neighbours (two keys of equal score) rounds to the even one.
static void test_dtype_conversions(void) {
    int n = 65536;
    uint16_t q = 0, k = 0, *v = malloc((size_t)2 * n * sizeof(uint16_t)), *out = malloc((size_t)n * sizeof(uint16_t));
    for (int dtype = ATTENTION_DTYPE_FLOAT16; dtype <= ATTENTION_DTYPE_BFLOAT16; dtype++) {
        snprintf(context, sizeof(context), "dtype %d: every pattern", dtype);
        attention_options o = attention_options_defaults();
        o.v_head_dim = n;
        for (int i = 0; i < n; i++) v[i] = (uint16_t)i;
        CHECK(rope_attention_forward_typed(&q, &k, v, out, NULL, 1, 1, 1, 1, 1, 1, ROPE_LAYOUT_BHSD, 1.0f, NULL, 0,
                                           dtype, &o) == ROPE_OK);
        int wrong = 0;
        for (int i = 0; i < n; i++) {
            float want = dtype == ATTENTION_DTYPE_FLOAT16 ? half_value((uint16_t)i) : bfloat16_value((uint16_t)i);
            float got = dtype == ATTENTION_DTYPE_FLOAT16 ? half_value(out[i]) : bfloat16_value(out[i]);
            if (isnan(want)) wrong += !isnan(got);
            else if (want == 0.0f) wrong += got != 0.0f;  // -0 may come out +0 (0 + 1 * -0)
            else wrong += out[i] != (uint16_t)i;
        }
        CHECK(wrong == 0);
        // Neighbours h, h + 1 (finite, h + 1 maybe inf): the float32 midpoint rounds to the even one.
        snprintf(context, sizeof(context), "dtype %d: midpoints round to even", dtype);
        int pairs = 0;
        uint16_t *first = malloc((size_t)n * sizeof(uint16_t));
        for (int sign = 0; sign < 2; sign++) {
            // (bfloat16 below 2^127: the sum of two keys in float32 must not overflow.)
            int top = dtype == ATTENTION_DTYPE_FLOAT16 ? 0x7BFF : 0x7EFF;
            for (int h = 0; h <= top; h++) first[pairs++] = (uint16_t)(h | sign << 15);
        }
        for (int i = 0; i < pairs; i++) {
            v[i] = first[i];
            v[pairs + i] = (uint16_t)(first[i] + 1);
        }
        o.v_head_dim = pairs;
        uint16_t qk[2] = {0, 0};
        CHECK(rope_attention_forward_typed(&q, qk, v, out, NULL, 1, 1, 1, 1, 2, 1, ROPE_LAYOUT_BHSD, 1.0f, NULL, 0, dtype,
                                           &o) == ROPE_OK);
        wrong = 0;
        for (int i = 0; i < pairs; i++) {
            uint16_t want = first[i] & 1 ? (uint16_t)(first[i] + 1) : first[i];
            float got = dtype == ATTENTION_DTYPE_FLOAT16 ? half_value(out[i]) : bfloat16_value(out[i]);
            if ((first[i] & 0x7FFF) == 0) wrong += got != 0.0f;  // 0 and the smallest subnormal: 0 (either sign)
            else wrong += out[i] != want;
        }
        CHECK(wrong == 0);
        free(first);
    }
    free(v);
    free(out);
}

// Random cases with every option: the 16-bit result is bit for bit the float32 kernel's on the
// converted inputs, rounded (the kernel converts exactly and computes in float32).
static void test_dtype_random(void) {
    static const int dims[] = {4, 8, 13, 16, 64};
    for (int n = 0; n < 120; n++) {
        int dtype = n % 2 ? ATTENTION_DTYPE_BFLOAT16 : ATTENTION_DTYPE_FLOAT16;
        int kv = random_int(1, 2), heads = kv * random_int(1, 2), batch = random_int(1, 2);
        int seq_q = n % 10 == 0 ? random_int(100, 150) : random_int(0, 20);
        int seq_k = n % 10 == 0 ? random_int(100, 200) : random_int(0, 20);
        int d = dims[random_int(0, 4)], layout = random_int(0, 2);
        attention_options o = attention_options_defaults();
        o.causal = random_int(0, 2);
        o.softcap = random_int(0, 2) == 0 ? 5.0f : 0.0f;
        o.window_left = random_int(0, 3) == 0 ? random_int(0, 10) : -1;
        int vd = random_int(0, 2) == 0 ? 12 : d;
        o.v_head_dim = vd == d ? 0 : vd;
        size_t nq = (size_t)batch * heads * seq_q * d, nk = (size_t)batch * kv * seq_k * d;
        size_t nv = (size_t)batch * kv * seq_k * vd, no = (size_t)batch * heads * seq_q * vd;
        uint16_t *q = malloc(nq * 2 + 2), *k = malloc(nk * 2 + 2), *v = malloc(nv * 2 + 2), *out = malloc(no * 2 + 2);
        float *qf = malloc(nq * 4 + 4), *kf = malloc(nk * 4 + 4), *vf = malloc(nv * 4 + 4), *outf = malloc(no * 4 + 4);
        uint16_t *arrays[3] = {q, k, v};
        float *floats[3] = {qf, kf, vf};
        size_t counts[3] = {nq, nk, nv};
        for (int a = 0; a < 3; a++) {
            for (size_t i = 0; i < counts[a]; i++) {
                float x = 2.0f * random_float();
                arrays[a][i] = dtype == ATTENTION_DTYPE_FLOAT16 ? ref_half(x) : ref_bfloat16(x);
                floats[a][i] = dtype == ATTENTION_DTYPE_FLOAT16 ? half_value(arrays[a][i]) : bfloat16_value(arrays[a][i]);
            }
        }
        uint8_t *mask = NULL;
        attention_mask m = {NULL, 0, 0, seq_k, 1, NULL};
        if (random_int(0, 2) == 0) {
            mask = malloc((size_t)seq_q * seq_k + 1);
            for (int i = 0; i < seq_q * seq_k; i++) mask[i] = random_float() < 0.6f;
            m.data = mask;
            o.mask = &m;
        }
        float scale = 1.0f / sqrtf((float)d);
        snprintf(context, sizeof(context), "dtype %d case %d: b %d h %d/%d sq %d sk %d d %d vd %d layout %d", dtype, n,
                 batch, heads, kv, seq_q, seq_k, d, vd, layout);
        CHECK(rope_attention_forward_typed(q, k, v, out, NULL, batch, heads, kv, seq_q, seq_k, d, layout, scale, NULL, 0,
                                           dtype, &o) == ROPE_OK);
        CHECK(rope_attention_forward_options(qf, kf, vf, outf, NULL, batch, heads, kv, seq_q, seq_k, d, layout, scale,
                                             NULL, 0, &o) == ROPE_OK);
        int wrong = 0;
        for (size_t i = 0; i < no; i++) {
            uint16_t want = dtype == ATTENTION_DTYPE_FLOAT16 ? ref_half(outf[i]) : ref_bfloat16(outf[i]);
            wrong += out[i] != want;
        }
        CHECK(wrong == 0);
        free(q);
        free(k);
        free(v);
        free(out);
        free(qf);
        free(kf);
        free(vf);
        free(outf);
        free(mask);
    }
    // An unknown dtype is refused.
    float x = 0.0f;
    snprintf(context, sizeof(context), "dtype errors");
    CHECK(rope_attention_forward_typed(&x, &x, &x, &x, NULL, 1, 1, 1, 1, 1, 1, ROPE_LAYOUT_BHSD, 1.0f, NULL, 0, 3, NULL) ==
          ROPE_ERR_VALUE);
    CHECK(rope_attention_forward_typed(&x, &x, &x, &x, NULL, 1, 1, 1, 1, 1, 1, ROPE_LAYOUT_BHSD, 1.0f, NULL, 0, -1, NULL) ==
          ROPE_ERR_VALUE);
}

int main(void) {
    test_exp2();
    test_square();
    test_rectangular();
    test_grouped();
    test_rope();
    test_scales();
    test_decode_consistency();
    test_nan_inf();
    test_all_minus_inf();
    test_empty();
    test_errors();
    test_mask_patterns();
    test_mask_empty_rows();
    test_mask_all_visible();
    test_mask_nan();
    test_window_nan();
    test_mask_errors();
    test_options_random();
    test_options_corners();
    test_options_errors();
    test_reference_cases();
    test_dtype_conversions();
    test_dtype_random();
    return check_report();
}
