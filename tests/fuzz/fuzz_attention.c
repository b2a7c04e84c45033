// fuzz_attention.c: a libFuzzer harness for the attention entry points (build/fuzz_attention,
// built by build.sh): rope_attention_forward_masked, rope_attention_forward_options (causal
// alignments, windows, softcap, value head size, key lengths, boolean and additive masks of any
// broadcast, the scores at each stage) and rope_attention_forward_typed (float16 / bfloat16),
// rope_mha_forward and gemm.
//
// The first byte picks the entry point; the rest decodes into one call, any argument of which may
// be invalid. Beyond the sanitizers' crash, leak and UB checks, it aborts on a wrong answer:
//   - the status is 0 exactly when the arguments are valid, and otherwise one of the errors the
//     header names for what is wrong; a refused call writes nothing;
//   - an accepted call leaves its inputs as they were (q excepted when out is q), writes only its
//     output (gemm: not the padding between C's rows);
//   - attention: a query row that sees no key is exactly 0 in out and weights, a masked or causal
//     weight is exactly 0, whatever the inputs (NaN included); mha: a row that sees no key is
//     exactly the output bias;
//   - on finite inputs (attention: v may hold NaN, which must reach exactly the rows that see its
//     key) the output matches a float64 reference written here within 1e-4 of the output's
//     magnitude, plus the float32 error of scores that the inputs make large (see score_error).
// Tensors are capped at MAX_FLOATS floats so that no input is slow or runs out of memory.
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "gemm.h"
#include "mha.h"
#include "rope.h"
#include "rope_errors.h"
#include "fuzz_reader.h"

#define MAX_FLOATS 65536
#define TOLERANCE 1e-4
#define LOG2E 1.4426950408889634
#define UNIT_ROUNDOFF 0x1p-24
// Outputs are compared only while score_error stays below this: beyond it the float32 answer
// itself is not accurate enough to tell a wrong one.
#define MAX_SCORE_ERROR 1e-3
// Nor when a float32 intermediate (a bound on it) may reach this: near float overflow the answer
// as computed (documented: gemm's product before alpha, attention's scaled q) is inf.
#define MAX_MAGNITUDE 1e30

static float float_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

// A size: mostly -1 .. small_max (-1 is invalid), sometimes large_min .. large_min + 31 (to cross
// the kernels' block sizes).
static int read_size(reader *in, int small_max, int large_min) {
    uint8_t b = read_u8(in);
    if (b < 224) return (int)(b % (small_max + 2)) - 1;
    return large_min + (b - 224);
}

// A float parameter (a scale, alpha, beta): mostly ordinary values, sometimes ones that must be
// refused or that overflow, sometimes any 32 bits.
static float read_scalar(reader *in) {
    // 2.358e38 times log2(e) is still a float, 2.359e38 is not.
    static const float special[16] = {1.0f, 0.5f, 0.25f, 0.125f, 0.0f, -0.0f, -1.0f, -3.0f, 2.0f, 20.0f,
                                      1e-30f, 2.358e38f, NAN, INFINITY, -INFINITY, 2.359e38f};
    uint8_t b = read_u8(in);
    if (b < 192) return special[b % 12];  // the finite ones, mostly
    if (b < 240) return special[b % 16];
    return float_from_bits(read_u32(in));
}

// The amplitude of a random tensor: mostly 1, sometimes tiny, large or 0.
static float read_amplitude(reader *in) {
    static const float amplitudes[16] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.5f, 2.0f,
                                         0.1f, 4.0f, 0.0f, 1e-3f, 10.0f, 30.0f, 1e-20f, 1e10f};
    return amplitudes[read_u8(in) % 16];
}

static uint32_t next_random(uint32_t *state) {  // xorshift32
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

// x[0..n) uniform in [-amplitude, amplitude); then maybe one element set to a special value (NaN,
// inf, a huge float, a denormal) or any 32 bits.
static void fill(reader *in, float *x, size_t n, uint32_t *state) {
    float amplitude = read_amplitude(in);
    for (size_t i = 0; i < n; i++) x[i] = amplitude * (float)((next_random(state) >> 8) * (2.0 / 16777216.0) - 1.0);
    uint8_t poke = read_u8(in);
    if (n == 0 || poke < 200) return;
    static const float special[6] = {NAN, INFINITY, -INFINITY, 3e38f, -1e-45f, 0.0f};
    size_t at = read_u32(in) % n;
    x[at] = poke < 250 ? special[poke % 6] : float_from_bits(read_u32(in));
}

// A buffer of n floats (at least 1, so that an empty tensor still has an address) holding a NaN
// pattern, so that an output the call forgets to write shows.
static float *new_output(size_t n) {
    float *x = malloc((n > 0 ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = float_from_bits(0x7FC0BAD0u);
    return x;
}

static float *copy_floats(const float *x, size_t n) {
    float *y = malloc((n > 0 ? n : 1) * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return 0;
    }
    return 1;
}

// The errors an invalid call may return: bit -status for each thing wrong with it.
static unsigned error_bit(int status) { return 1u << -status; }

// Aborts unless status is 0 when nothing is wrong (allowed == 0), or one of the allowed errors.
static void expect_status(const char *what, int status, unsigned allowed) {
    int ok = allowed == 0 ? status == ROPE_OK : status < 0 && status > -32 && (allowed & error_bit(status));
    if (!ok) {
        fprintf(stderr, "%s returned %d; allowed errors (bits of -status) 0x%x\n", what, status, allowed);
        abort();
    }
}

static void fail(const char *message) {
    fprintf(stderr, "%s\n", message);
    abort();
}

// |got - want| <= tolerance, or both NaN.
static int close_to(float got, double want, double tolerance) {
    if (isnan(want) || isnan(got)) return isnan(want) && isnan(got);
    return fabs(got - want) <= tolerance;
}

// The float32 error of a score bounded by max_score (|scale| |q| |k| over vectors of length n,
// the longest dot product on the way): a few roundings of each of n terms, in log2 units. A
// softmax weight moves by at most twice its scores' error.
static double score_error(double max_score, int n) { return 4.0 * (n + 8) * UNIT_ROUNDOFF * max_score * LOG2E; }

// Decodes a rotary embedding (or none): dim, base and pairing fuzzed, so that rope_create may
// refuse it, and dim may exceed head_dim.
static rope_embedding *read_rope(reader *in) {
    static const double bases[12] = {10000.0, 10000.0, 500000.0, 100.0, 2.0, 1.0, 0.5, 1e-300, 1e300, 0.0, -1.0, NAN};
    if (read_u8(in) % 3 == 0) return NULL;
    int dim = (int)(read_u8(in) % 24) - 1;  // odd, 0 and -1 are refused
    uint8_t b = read_u8(in);
    double base = b < 240 ? bases[b % 12] : (double)float_from_bits(read_u32(in));
    int pairing = read_u8(in) % 5 == 4 ? 2 : read_u8(in) & 1;  // 2 is refused
    rope_embedding *r = rope_create(dim, base, pairing);
    int valid = dim > 0 && dim % 2 == 0 && isfinite(base) && base > 0 && pairing != 2;
    if (valid != (r != NULL)) fail("rope_create: valid arguments refused or invalid ones accepted");
    return r;
}

// x: [dim] (the first features of a head vector) rotated in place to position p the way rope.h
// says, in float64, with the embedding's frequencies. Returns 0 when an angle is not finite (a
// tiny base makes huge frequencies): there is no reference then.
static int rotate(const rope_embedding *r, double *x, int64_t p) {
    const double *inv_freq = rope_inv_freq(r);
    double scaling = rope_attention_scaling(r);
    int half = r->dim / 2;
    for (int i = 0; i < half; i++) {
        int a = r->pairing == ROPE_PAIRING_HALF ? i : 2 * i;
        int b = r->pairing == ROPE_PAIRING_HALF ? i + half : 2 * i + 1;
        double angle = (double)p * inv_freq[i];
        if (!isfinite(angle)) return 0;
        double c = cos(angle) * scaling, s = sin(angle) * scaling;
        double x1 = x[a], x2 = x[b];
        x[a] = x1 * c - x2 * s;
        x[b] = x2 * c + x1 * s;
    }
    return 1;
}

static double norm(const double *x, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += x[i] * x[i];
    return sqrt(sum);
}

// ----------------------------------------------------------------------------
// rope_attention_forward_masked

typedef struct {
    int batch, heads, kv_heads, seq_q, seq_k, head_dim, layout, causal;
    float scale;
    int offset;
    rope_embedding *rope;
    const attention_mask *mask;
} attention_call;

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

// Whether query i of head h of batch row b sees key j: causal and mask.
static int sees(const attention_call *c, int b, int h, int i, int j) {
    if (c->causal && j > i + (c->seq_k - c->seq_q)) return 0;
    if (!c->mask) return 1;
    const attention_mask *m = c->mask;
    return m->data[b * m->stride_b + h * m->stride_h + i * m->stride_q + j * m->stride_k] != 0;
}

// The exact properties of an accepted call, whatever the inputs: a row that sees no key is 0 in
// out and weights; a weight of a key the row does not see is 0.
static void check_attention_zeros(const attention_call *c, const float *out, const float *weights) {
    for (int b = 0; b < c->batch; b++) {
        for (int h = 0; h < c->heads; h++) {
            for (int i = 0; i < c->seq_q; i++) {
                const float *w = weights ? weights + (((size_t)b * c->heads + h) * c->seq_q + i) * c->seq_k : NULL;
                int seen = 0;
                for (int j = 0; j < c->seq_k; j++) {
                    int s = sees(c, b, h, i, j);
                    seen += s;
                    if (w && !s && w[j] != 0.0f) fail("attention: the weight of a key the row does not see is not 0");
                }
                if (seen) continue;
                const float *o = out + vector_at(c->layout, c->batch, c->heads, c->seq_q, c->head_dim, b, h, i);
                for (int f = 0; f < c->head_dim; f++) {
                    if (o[f] != 0.0f) fail("attention: a row that sees no key is not 0");
                }
            }
        }
    }
}

// Compares out and weights (may be NULL) with a float64 reference computed from the inputs
// (q, k finite; v finite or NaN). Keys a row does not see are left out of its sums entirely, so a
// NaN in v reaches exactly the rows that see its key.
static void check_attention_reference(const attention_call *c, const float *q, const float *k, const float *v,
                                      const float *out, const float *weights) {
    int d = c->head_dim;
    size_t q_floats = (size_t)c->batch * c->heads * c->seq_q * d;
    size_t kv_floats = (size_t)c->batch * c->kv_heads * c->seq_k * d;
    double max_v = 0;
    for (size_t i = 0; i < kv_floats; i++) {
        if (!isnan(v[i])) max_v = fmax(max_v, fabs(v[i]));
    }
    // q and k rotated, and the largest score they can make: the tolerance depends on it.
    double *qr = malloc((q_floats > 0 ? q_floats : 1) * sizeof(double));
    double *kr = malloc((kv_floats > 0 ? kv_floats : 1) * sizeof(double));
    for (size_t i = 0; i < q_floats; i++) qr[i] = q[i];
    for (size_t i = 0; i < kv_floats; i++) kr[i] = k[i];
    int rotated = 1;
    double max_q = 0, max_k = 0;
    for (int b = 0; b < c->batch; b++) {
        for (int h = 0; h < c->heads; h++) {
            for (int i = 0; i < c->seq_q; i++) {
                double *x = qr + vector_at(c->layout, c->batch, c->heads, c->seq_q, d, b, h, i);
                if (c->rope) rotated &= rotate(c->rope, x, (int64_t)c->offset + c->seq_k - c->seq_q + i);
                max_q = fmax(max_q, norm(x, d));
            }
        }
        for (int h = 0; h < c->kv_heads; h++) {
            for (int j = 0; j < c->seq_k; j++) {
                double *x = kr + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, d, b, h, j);
                if (c->rope) rotated &= rotate(c->rope, x, (int64_t)c->offset + j);
                max_k = fmax(max_k, norm(x, d));
            }
        }
    }
    double error = score_error(fabs((double)c->scale) * max_q * max_k, d);
    // q is scaled by scale log2(e) in float; out sums up to seq_k unnormalised terms of v.
    int in_range = fmax(max_q, fabs((double)c->scale) * LOG2E * max_q) < MAX_MAGNITUDE && max_k < MAX_MAGNITUDE &&
                   max_v * (c->seq_k + 1) < MAX_MAGNITUDE;
    if (rotated && error <= MAX_SCORE_ERROR && in_range) {
        double weight_tolerance = TOLERANCE + 2 * error;
        double out_tolerance = weight_tolerance * max_v + 1e-37;  // 1e-37: float underflow
        double *scores = malloc((size_t)c->seq_k * sizeof(double));
        double *o = malloc((size_t)d * sizeof(double));
        for (int b = 0; b < c->batch; b++) {
            for (int h = 0; h < c->heads; h++) {
                int kvh = h / (c->heads / c->kv_heads);
                for (int i = 0; i < c->seq_q; i++) {
                    const double *qi = qr + vector_at(c->layout, c->batch, c->heads, c->seq_q, d, b, h, i);
                    double max = -INFINITY, sum = 0;
                    for (int j = 0; j < c->seq_k; j++) {
                        if (!sees(c, b, h, i, j)) continue;
                        const double *kj = kr + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, d, b, kvh, j);
                        double dot = 0;
                        for (int f = 0; f < d; f++) dot += qi[f] * kj[f];
                        scores[j] = c->scale * dot;
                        max = fmax(max, scores[j]);
                    }
                    for (int f = 0; f < d; f++) o[f] = 0;
                    for (int j = 0; j < c->seq_k; j++) {
                        if (!sees(c, b, h, i, j)) continue;
                        scores[j] = exp(scores[j] - max);
                        sum += scores[j];
                    }
                    for (int j = 0; j < c->seq_k; j++) {
                        if (!sees(c, b, h, i, j)) continue;
                        const float *vj = v + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, d, b, kvh, j);
                        for (int f = 0; f < d; f++) o[f] += scores[j] / sum * vj[f];
                    }
                    const float *got = out + vector_at(c->layout, c->batch, c->heads, c->seq_q, d, b, h, i);
                    for (int f = 0; f < d; f++) {
                        if (!close_to(got[f], o[f], out_tolerance)) {
                            fprintf(stderr, "b %d h %d i %d f %d: out %.9g, want %.9g (tolerance %g)\n", b, h, i, f,
                                    got[f], o[f], out_tolerance);
                            fail("attention: out differs from the float64 reference");
                        }
                    }
                    if (!weights) continue;
                    const float *w = weights + (((size_t)b * c->heads + h) * c->seq_q + i) * c->seq_k;
                    for (int j = 0; j < c->seq_k; j++) {
                        double want = sees(c, b, h, i, j) ? scores[j] / sum : 0.0;
                        if (!close_to(w[j], want, weight_tolerance)) {
                            fprintf(stderr, "b %d h %d i %d j %d: weight %.9g, want %.9g\n", b, h, i, j, w[j], want);
                            fail("attention: weights differ from the float64 reference");
                        }
                    }
                }
            }
        }
        free(scores);
        free(o);
    }
    free(qr);
    free(kr);
}

// Product of non-negative sizes as a count of floats; -1 when its bytes overflow size_t.
static int64_t float_count(int64_t a, int64_t b, int64_t c, int64_t d) {
    uint64_t p = 0;
    if (a == 0 || b == 0 || c == 0 || d == 0) return 0;
    int overflow = __builtin_mul_overflow((uint64_t)a, (uint64_t)b, &p);
    overflow |= __builtin_mul_overflow(p, (uint64_t)c, &p);
    overflow |= __builtin_mul_overflow(p, (uint64_t)d, &p);
    overflow |= p > SIZE_MAX / sizeof(float);
    return overflow ? -1 : (int64_t)p;
}

static void fuzz_attention(reader *in) {
    attention_call c;
    int huge = read_u8(in) % 16 == 15;
    if (huge) {
        // Sizes from the whole int range, some small: calls the kernel must refuse as too large
        // (the ones that would fit are too big to run here, and are skipped below).
        int *sizes[6] = {&c.batch, &c.heads, &c.kv_heads, &c.seq_q, &c.seq_k, &c.head_dim};
        uint8_t which = read_u8(in);
        for (int s = 0; s < 6; s++) *sizes[s] = which >> s & 1 ? read_i32(in) & INT32_MAX : 1 + read_u8(in) % 4;
    } else {
        c.batch = read_size(in, 3, 4);
        c.heads = read_size(in, 4, 6);
        c.kv_heads = read_size(in, 4, 1);
        c.seq_q = read_size(in, 20, 120);
        c.seq_k = read_size(in, 20, 120);
        c.head_dim = read_size(in, 20, 30);
    }
    c.layout = (int)(read_u8(in) % 5) - 1;  // -1 and 3 are invalid
    c.causal = read_u8(in) % 3;             // any nonzero value means causal
    c.scale = read_scalar(in);
    if (c.scale == 0.5f && c.head_dim > 0) c.scale = 1.0f / sqrtf((float)c.head_dim);  // the usual scale
    switch (read_u8(in) % 6) {
    case 0: c.offset = 0; break;
    case 1: c.offset = read_u8(in); break;
    case 2: c.offset = -(int)read_u8(in); break;
    case 3: c.offset = INT32_MAX - read_u8(in); break;
    case 4: c.offset = INT32_MIN + read_u8(in); break;
    default: c.offset = read_i32(in); break;
    }
    c.rope = read_rope(in);
    uint8_t flags = read_u8(in);
    int want_weights = flags & 1, in_place = flags & 2, null_arg = (flags >> 2) % 32;  // 1..5: which is NULL

    // Sizes as the kernel sees them, and whether they are too large to address.
    int sizes_ok = c.batch >= 1 && c.heads >= 1 && c.kv_heads >= 1 && c.head_dim >= 1 && c.seq_q >= 0 && c.seq_k >= 0;
    int64_t nq = -1, nkv = -1, nw = -1;
    int too_large = 0;
    if (sizes_ok) {
        nq = float_count(c.batch, c.heads, c.seq_q, c.head_dim);
        nkv = float_count(c.batch, c.kv_heads, c.seq_k, c.head_dim);
        nw = float_count(c.batch, c.heads, c.seq_q, c.seq_k);
        too_large = nq < 0 || nkv < 0 || (want_weights && nw < 0) || c.head_dim > INT32_MAX - 7 ||
                    c.seq_q > INT32_MAX - 7 || c.seq_k > INT32_MAX - 7;
        if (!too_large && (nq > MAX_FLOATS || nkv > MAX_FLOATS)) {
            rope_destroy(c.rope);  // valid perhaps, but too big to run here
            return;
        }
        if (!too_large && nw > MAX_FLOATS) want_weights = 0;  // too many to check here
    }
    if (!sizes_ok || too_large) nq = nkv = nw = 0;  // refused: any small buffers will do
    if (!want_weights) nw = 0;

    // The mask: none, the seed's [seq_q, seq_k, batch or 1], [batch, heads, seq_q, seq_k], the same
    // broadcast over heads, or fuzzed strides (maybe negative). Allocated exactly as large as the
    // strides address.
    attention_mask mask = {NULL, 0, 0, 0, 0, NULL};
    uint8_t *mask_bytes = NULL;
    size_t mask_size = 0;
    uint8_t mask_kind = read_u8(in) % 6;
    if (mask_kind > 0 && !huge) {
        int64_t sq = c.seq_q, sk = c.seq_k, heads = c.heads, batch = c.batch;
        int64_t mask_batch = read_u8(in) & 1 ? batch : 1;
        if (mask_kind == 1) {
            mask.stride_q = sk * mask_batch;
            mask.stride_k = mask_batch;
            mask.stride_b = mask_batch == 1 ? 0 : 1;
        } else if (mask_kind == 2 || mask_kind == 3) {
            mask.stride_k = 1;
            mask.stride_q = sk;
            mask.stride_h = mask_kind == 2 ? sq * sk : 0;
            mask.stride_b = mask_kind == 2 ? heads * sq * sk : sq * sk;
        } else {
            int64_t *strides[4] = {&mask.stride_b, &mask.stride_h, &mask.stride_q, &mask.stride_k};
            for (int s = 0; s < 4; s++) *strides[s] = read_u8(in) % 12;
            if (mask_kind == 5) *strides[read_u8(in) % 4] = -1 - read_u8(in) % 3;
        }
        int64_t span = 1;
        int64_t counts[4] = {batch, heads, sq, sk}, strides[4] = {mask.stride_b, mask.stride_h, mask.stride_q, mask.stride_k};
        for (int s = 0; s < 4; s++) {
            if (counts[s] > 1 && strides[s] > 0) span += (counts[s] - 1) * strides[s];
        }
        int refused = !sizes_ok || mask.stride_b < 0 || mask.stride_h < 0 || mask.stride_q < 0 || mask.stride_k < 0;
        mask_size = refused || span > MAX_FLOATS ? 1 : (size_t)span;
        if (span > MAX_FLOATS && !refused) {
            rope_destroy(c.rope);  // strides too far apart to run here
            return;
        }
        mask_bytes = malloc(mask_size);
        // 0, 1/4 .. all of the keys visible; visible bytes any nonzero value.
        uint8_t density = read_u8(in) % 5;
        uint32_t state = read_u32(in) | 1;
        for (size_t i = 0; i < mask_size; i++) {
            uint32_t r = next_random(&state);
            mask_bytes[i] = (r >> 8) % 4 < density ? (uint8_t)(1 + (r >> 16) % 255) : 0;
        }
        mask.data = null_arg == 5 ? NULL : mask_bytes;
    }
    c.mask = mask_kind > 0 && !huge ? &mask : NULL;

    uint32_t state = read_u32(in) | 1;
    float *q = malloc((nq > 0 ? (size_t)nq : 1) * sizeof(float));
    float *k = malloc((nkv > 0 ? (size_t)nkv : 1) * sizeof(float));
    float *v = malloc((nkv > 0 ? (size_t)nkv : 1) * sizeof(float));
    fill(in, q, (size_t)nq, &state);
    fill(in, k, (size_t)nkv, &state);
    fill(in, v, (size_t)nkv, &state);
    float *out = in_place ? q : new_output((size_t)nq);
    float *weights = want_weights ? new_output((size_t)nw) : NULL;
    float *q0 = copy_floats(q, (size_t)nq), *k0 = copy_floats(k, (size_t)nkv), *v0 = copy_floats(v, (size_t)nkv);
    float *out0 = copy_floats(out, (size_t)nq), *weights0 = weights ? copy_floats(weights, (size_t)nw) : NULL;
    uint8_t *mask0 = mask_bytes ? malloc(mask_size) : NULL;
    if (mask0) memcpy(mask0, mask_bytes, mask_size);

    const float *qp = null_arg == 1 ? NULL : q, *kp = null_arg == 2 ? NULL : k, *vp = null_arg == 3 ? NULL : v;
    float *outp = null_arg == 4 ? NULL : out;
    int status = rope_attention_forward_masked(qp, kp, vp, outp, weights, c.batch, c.heads, c.kv_heads, c.seq_q,
                                               c.seq_k, c.head_dim, c.layout, c.causal, c.scale, c.rope, c.offset,
                                               c.mask);

    // What attention.h says is wrong with the call.
    unsigned allowed = 0;
    if (!qp || !kp || !vp || !outp || (c.mask && !c.mask->data)) allowed |= error_bit(ROPE_ERR_NULL);
    if (c.mask && (mask.stride_b < 0 || mask.stride_h < 0 || mask.stride_q < 0 || mask.stride_k < 0)) {
        allowed |= error_bit(ROPE_ERR_SHAPE);
    }
    if (!sizes_ok || too_large) allowed |= error_bit(ROPE_ERR_SHAPE);
    if (c.heads >= 1 && c.kv_heads >= 1 && c.heads % c.kv_heads != 0) allowed |= error_bit(ROPE_ERR_HEADS);
    if (c.layout < ROPE_LAYOUT_SBHD || c.layout > ROPE_LAYOUT_BHSD) allowed |= error_bit(ROPE_ERR_LAYOUT);
    if (!isfinite((float)((double)c.scale * LOG2E))) allowed |= error_bit(ROPE_ERR_SCALE);
    if (c.rope && c.rope->dim > c.head_dim) allowed |= error_bit(ROPE_ERR_DIM);
    if (c.rope && c.seq_q > 0 && c.seq_k > 0 &&
        ((int64_t)c.offset + c.seq_k - c.seq_q < INT32_MIN || (int64_t)c.offset + c.seq_k - 1 > INT32_MAX)) {
        allowed |= error_bit(ROPE_ERR_POSITIONS);
    }
    expect_status("rope_attention_forward_masked", status, allowed);

    // Inputs untouched; a refused call writes nothing.
    if ((!in_place || status != ROPE_OK) && memcmp(q, q0, (size_t)nq * sizeof(float)) != 0) fail("attention: q changed");
    if (memcmp(k, k0, (size_t)nkv * sizeof(float)) != 0 || memcmp(v, v0, (size_t)nkv * sizeof(float)) != 0) {
        fail("attention: k or v changed");
    }
    if (mask0 && memcmp(mask_bytes, mask0, mask_size) != 0) fail("attention: the mask changed");
    if (status != ROPE_OK && (memcmp(out, out0, (size_t)nq * sizeof(float)) != 0 ||
                              (weights && memcmp(weights, weights0, (size_t)nw * sizeof(float)) != 0))) {
        fail("attention: a refused call wrote its output");
    }
    if (status == ROPE_OK) {
        check_attention_zeros(&c, out, weights);
        // v finite or NaN: a NaN's way through is exact; an inf's is not (0 * inf is NaN where a
        // weight underflows to 0, in float sooner than in float64).
        int v_ok = 1;
        for (int64_t i = 0; i < nkv; i++) v_ok &= !isinf(v0[i]);
        if (all_finite(q0, (size_t)nq) && all_finite(k0, (size_t)nkv) && v_ok) {
            check_attention_reference(&c, q0, k0, v0, out, weights);
        }
    }
    free(q);
    free(k);
    free(v);
    if (!in_place) free(out);
    free(weights);
    free(q0);
    free(k0);
    free(v0);
    free(out0);
    free(weights0);
    free(mask_bytes);
    free(mask0);
    rope_destroy(c.rope);
}

// ----------------------------------------------------------------------------
// rope_attention_forward_options: causal alignments, windows, softcap, value head size, key
// lengths, boolean / additive masks of any broadcast, the scores at their four stages.


// The norm of a float vector, in float64.
static double norm_f(const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

typedef struct {
    int batch, heads, kv_heads, seq_q, seq_k, head_dim, v_dim, layout;
    float scale;
    attention_options o;
    const attention_mask *mask;
} options_call;

// Whether query i of (b, h) sees key j, and the additive term (0 without one) in *add.
static int options_sees(const options_call *c, int b, int h, int i, int j, double *add) {
    const attention_options *o = &c->o;
    int limit = o->kv_lengths ? o->kv_lengths[b] : c->seq_k;
    int64_t pos = o->causal == ATTENTION_CAUSAL_TOP_LEFT ? i : (int64_t)i + limit - c->seq_q;
    *add = 0.0;
    if (j >= limit) return 0;
    if (o->causal && j > pos) return 0;
    if (o->window_left >= 0 && j < pos - o->window_left) return 0;
    if (o->window_right >= 0 && j > pos + o->window_right) return 0;
    if (c->mask) {
        const attention_mask *m = c->mask;
        int64_t at = b * m->stride_b + h * m->stride_h + i * m->stride_q + j * m->stride_k;
        if (m->data && !m->data[at]) return 0;
        if (m->additive) {
            if (m->additive[at] == -INFINITY) return 0;
            *add = m->additive[at];
        }
    }
    return 1;
}

// Exact properties and the float64 reference (when `reference`): out, weights, scores.
static void check_options(const options_call *c, const float *q, const float *k, const float *v, const float *out,
                          const float *weights, const float *scores, int reference) {
    int d = c->head_dim, dv = c->v_dim;
    const attention_options *o = &c->o;
    double max_v = 0, max_q = 0, max_k = 0, max_add = 0;
    size_t nkv = (size_t)c->batch * c->kv_heads * c->seq_k;
    for (size_t i = 0; i < nkv * dv; i++) {
        if (!isnan(v[i])) max_v = fmax(max_v, fabs(v[i]));
    }
    for (size_t s = 0; s < (size_t)c->batch * c->heads * c->seq_q; s++) max_q = fmax(max_q, norm_f(q + s * d, d));
    for (size_t s = 0; s < nkv; s++) max_k = fmax(max_k, norm_f(k + s * d, d));
    if (c->mask && c->mask->additive) {
        for (int b = 0; b < c->batch; b++)
            for (int h = 0; h < c->heads; h++)
                for (int i = 0; i < c->seq_q; i++)
                    for (int j = 0; j < c->seq_k; j++) {
                        double add;
                        if (options_sees(c, b, h, i, j, &add)) max_add = fmax(max_add, fabs(add));
                    }
    }
    double max_score = fabs((double)c->scale) * max_q * max_k;
    double error = score_error(max_score, d) + 4 * UNIT_ROUNDOFF * max_add * LOG2E;
    reference = reference && error <= MAX_SCORE_ERROR && max_score * LOG2E < MAX_MAGNITUDE &&
                fabs((double)c->scale) * LOG2E * max_q < MAX_MAGNITUDE && max_k < MAX_MAGNITUDE &&
                max_v * (c->seq_k + 1) < MAX_MAGNITUDE && max_add < MAX_MAGNITUDE;
    double weight_tolerance = TOLERANCE + 2 * error, out_tolerance = weight_tolerance * max_v + 1e-37;
    double *s = malloc(((size_t)c->seq_k + 1) * sizeof(double)), *raw = malloc(((size_t)c->seq_k + 1) * sizeof(double));
    double *acc = malloc(((size_t)dv + 1) * sizeof(double));
    int *seen = malloc(((size_t)c->seq_k + 1) * sizeof(int));
    for (int b = 0; b < c->batch; b++) {
        for (int h = 0; h < c->heads; h++) {
            int kvh = h / (c->heads / c->kv_heads);
            for (int i = 0; i < c->seq_q; i++) {
                size_t row = (((size_t)b * c->heads + h) * c->seq_q + i) * c->seq_k;
                const float *got = out + vector_at(c->layout, c->batch, c->heads, c->seq_q, dv, b, h, i);
                const float *qi = q + vector_at(c->layout, c->batch, c->heads, c->seq_q, d, b, h, i);
                int any = 0;
                double max = -INFINITY;
                for (int j = 0; j < c->seq_k; j++) {
                    double add;
                    seen[j] = options_sees(c, b, h, i, j, &add);
                    any += seen[j];
                    const float *kj = k + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, d, b, kvh, j);
                    double dot = 0;
                    for (int f = 0; f < d; f++) dot += (double)qi[f] * kj[f];
                    raw[j] = c->scale * dot;
                    s[j] = raw[j] + add;
                    if (seen[j] && o->softcap != 0.0f) s[j] = o->softcap * tanh(s[j] / o->softcap);
                    if (seen[j]) max = fmax(max, s[j]);
                }
                // Exact: hidden weights 0; a row that sees nothing is 0 everywhere.
                for (int j = 0; j < c->seq_k; j++) {
                    if (weights && !seen[j] && weights[row + j] != 0.0f) fail("options: a hidden weight is not 0");
                    if (scores && !seen[j] && o->scores_stage == ATTENTION_SCORES_SOFTMAX && scores[row + j] != 0.0f) {
                        fail("options: a hidden softmax score is not 0");
                    }
                    if (scores && !seen[j] && (o->scores_stage == ATTENTION_SCORES_MASKED ||
                                               o->scores_stage == ATTENTION_SCORES_SOFTCAPPED) &&
                        scores[row + j] != -INFINITY) {
                        fail("options: a hidden masked score is not -inf");
                    }
                }
                if (!any) {
                    for (int f = 0; f < dv; f++) {
                        if (got[f] != 0.0f) fail("options: a row that sees no key is not 0");
                    }
                }
                if (!reference || !any) continue;
                double sum = 0;
                for (int j = 0; j < c->seq_k; j++) sum += seen[j] ? exp(s[j] - max) : 0.0;
                for (int f = 0; f < dv; f++) acc[f] = 0;
                for (int j = 0; j < c->seq_k; j++) {
                    if (!seen[j]) continue;
                    const float *vj = v + vector_at(c->layout, c->batch, c->kv_heads, c->seq_k, dv, b, kvh, j);
                    for (int f = 0; f < dv; f++) acc[f] += exp(s[j] - max) / sum * vj[f];
                }
                for (int f = 0; f < dv; f++) {
                    if (!close_to(got[f], acc[f], out_tolerance)) {
                        fprintf(stderr, "b %d h %d i %d f %d: out %.9g, want %.9g (tolerance %g)\n", b, h, i, f, got[f],
                                acc[f], out_tolerance);
                        fail("options: out differs from the float64 reference");
                    }
                }
                for (int j = 0; j < c->seq_k; j++) {
                    double w = seen[j] ? exp(s[j] - max) / sum : 0.0;
                    if (weights && !close_to(weights[row + j], w, weight_tolerance)) {
                        fprintf(stderr, "b %d h %d i %d j %d: weight %.9g, want %.9g\n", b, h, i, j, weights[row + j], w);
                        fail("options: weights differ from the float64 reference");
                    }
                    if (!scores) continue;
                    double want = o->scores_stage == ATTENTION_SCORES_SOFTMAX ? w
                                  : o->scores_stage == ATTENTION_SCORES_RAW   ? raw[j]
                                  : !seen[j]                                  ? -INFINITY
                                  : o->scores_stage == ATTENTION_SCORES_MASKED ? raw[j] + (double)0
                                                                               : s[j];
                    if (o->scores_stage == ATTENTION_SCORES_MASKED && seen[j]) {
                        double add;
                        options_sees(c, b, h, i, j, &add);
                        want = raw[j] + add;
                    }
                    double tol = o->scores_stage == ATTENTION_SCORES_SOFTMAX ? weight_tolerance
                                                                             : 2 * error * 0.6931471805599453 + 1e-5 * (fabs(want) + 1);
                    if (!(want == -INFINITY ? scores[row + j] == -INFINITY : close_to(scores[row + j], want, tol))) {
                        fprintf(stderr, "b %d h %d i %d j %d stage %d: score %.9g, want %.9g (tolerance %g)\n", b, h, i, j,
                                o->scores_stage, scores[row + j], want, tol);
                        fail("options: scores differ from the float64 reference");
                    }
                }
            }
        }
    }
    free(s);
    free(raw);
    free(acc);
    free(seen);
}

// float32 -> float16 / bfloat16 bits, round to nearest even, and back: written here in float64,
// independently of the kernel's bit manipulations.
static uint16_t ref_to_half(float f) {
    uint16_t sign = signbit(f) ? 0x8000u : 0u;
    if (isnan(f)) return (uint16_t)(sign | 0x7E00u);
    double a = fabs((double)f);
    if (a >= 65520.0) return (uint16_t)(sign | 0x7C00u);
    if (a < 0x1p-14) return (uint16_t)(sign | (uint16_t)nearbyint(a * 0x1p24));
    int e;
    frexp(a, &e);  // a in [2^(e-1), 2^e)
    double m = nearbyint(ldexp(a, 11 - e));  // 1024 .. 2048
    if (m == 2048.0) {
        m = 1024.0;
        e++;
    }
    return (uint16_t)(sign | (uint16_t)((e + 14) << 10) | (uint16_t)(m - 1024.0));
}

static float ref_from_half(uint16_t h) {
    int e = h >> 10 & 0x1F, m = h & 0x3FF;
    double x = e == 31 ? (m ? NAN : INFINITY) : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (float)(h & 0x8000u ? -x : x);
}

static uint16_t ref_to_bfloat16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    if (isnan(f)) return (uint16_t)(x >> 16 | 0x40u);
    uint32_t lo = x & 0xFFFF0000u, hi = lo + 0x10000u;
    if (lo == x) return (uint16_t)(x >> 16);
    float flo = float_from_bits(lo), fhi = float_from_bits(hi);
    double dhi = isinf(fhi) ? copysign(0x1p128, f) : (double)fhi;
    double d_lo = fabs((double)f - flo), d_hi = fabs(dhi - (double)f);
    return (uint16_t)((d_lo < d_hi || (d_lo == d_hi && !(lo & 0x10000u)) ? lo : hi) >> 16);
}

static float ref_from_bfloat16(uint16_t h) { return float_from_bits((uint32_t)h << 16); }

// The same call on q, k, v rounded to `dtype`: bit for bit the float32 kernel's result on the
// rounded values, rounded (the kernel converts exactly and computes in float32); NaN where it is NaN.
static void check_dtype(const options_call *c, int dtype, const float *q, const float *k, const float *v, size_t nq,
                        size_t nk, size_t nv, size_t no) {
    uint16_t (*to)(float) = dtype == ATTENTION_DTYPE_FLOAT16 ? ref_to_half : ref_to_bfloat16;
    float (*from)(uint16_t) = dtype == ATTENTION_DTYPE_FLOAT16 ? ref_from_half : ref_from_bfloat16;
    size_t counts[3] = {nq, nk, nv};
    const float *src[3] = {q, k, v};
    uint16_t *bits[3];
    float *values[3];
    for (int t = 0; t < 3; t++) {
        bits[t] = malloc((counts[t] ? counts[t] : 1) * sizeof(uint16_t));
        values[t] = malloc((counts[t] ? counts[t] : 1) * sizeof(float));
        for (size_t i = 0; i < counts[t]; i++) {
            bits[t][i] = to(src[t][i]);
            values[t][i] = from(bits[t][i]);
        }
    }
    uint16_t *out16 = malloc((no ? no : 1) * sizeof(uint16_t));
    float *out32 = new_output(no);
    attention_options o = c->o;
    o.scores = NULL;
    int s16 = rope_attention_forward_typed(bits[0], bits[1], bits[2], out16, NULL, c->batch, c->heads, c->kv_heads,
                                           c->seq_q, c->seq_k, c->head_dim, c->layout, c->scale, NULL, 0, dtype, &o);
    int s32 = rope_attention_forward_options(values[0], values[1], values[2], out32, NULL, c->batch, c->heads,
                                             c->kv_heads, c->seq_q, c->seq_k, c->head_dim, c->layout, c->scale, NULL,
                                             0, &o);
    if (s16 != ROPE_OK || s32 != ROPE_OK) fail("options: a 16-bit call refused what float32 accepts");
    for (size_t i = 0; i < no; i++) {
        uint16_t want = to(out32[i]);
        int ok = isnan(out32[i]) ? isnan(from(out16[i])) : out16[i] == want;
        if (!ok) {
            fprintf(stderr, "dtype %d out[%zu] = 0x%04x, want 0x%04x (float32 %.9g)\n", dtype, i, out16[i], want, out32[i]);
            fail("options: the 16-bit result is not the float32 kernel's, rounded");
        }
    }
    for (int t = 0; t < 3; t++) {
        free(bits[t]);
        free(values[t]);
    }
    free(out16);
    free(out32);
}

static void fuzz_options(reader *in) {
    options_call c;
    memset(&c, 0, sizeof(c));
    c.o = attention_options_defaults();
    c.batch = 1 + read_u8(in) % 3;
    c.heads = 1 + read_u8(in) % 4;
    uint8_t kvb = read_u8(in);
    c.kv_heads = kvb < 240 ? (c.heads % 2 == 0 && kvb % 3 == 1 ? c.heads / 2 : kvb % 3 == 2 ? 1 : c.heads) : 3;
    uint8_t big = read_u8(in);
    c.seq_q = big % 8 == 7 ? 120 + read_u8(in) % 20 : (int)(read_u8(in) % 22);
    c.seq_k = big % 8 == 6 || big % 8 == 7 ? 120 + read_u8(in) % 30 : (int)(read_u8(in) % 22);
    c.head_dim = 1 + read_u8(in) % 20;
    uint8_t vd = read_u8(in);
    c.v_dim = vd < 128 ? c.head_dim : 1 + vd % 20;
    c.o.v_head_dim = vd < 64 ? 0 : vd >= 250 ? -1 : c.v_dim;
    c.layout = read_u8(in) % 3;
    c.scale = read_scalar(in);
    if (c.scale == 0.5f) c.scale = 1.0f / sqrtf((float)c.head_dim);
    c.o.causal = read_u8(in) % 7;  // 3..6: none (3, 4 kept in range below), 5, 6 invalid
    if (c.o.causal == 3 || c.o.causal == 4) c.o.causal = 0;
    uint8_t wb = read_u8(in);
    c.o.window_left = wb % 4 == 0 ? (int)(read_u8(in) % 24) : wb % 4 == 1 ? (int)(read_u8(in) % 160) : -1;
    c.o.window_right = wb / 4 % 4 == 0 ? (int)(read_u8(in) % 24) : -1;
    if (wb >= 250) c.o.window_left = -2 - (wb & 1);
    static const float caps[8] = {0.0f, 0.0f, 0.0f, 0.5f, 5.0f, 50.0f, -1.0f, INFINITY};
    c.o.softcap = caps[read_u8(in) % 8];
    int32_t lengths[3];
    uint8_t lb = read_u8(in);
    if (lb % 3 == 0) {
        for (int b = 0; b < c.batch; b++) lengths[b] = (int32_t)(read_u8(in) % (c.seq_k + 1));
        if (lb >= 250) lengths[read_u8(in) % c.batch] = c.seq_k + 1;
        c.o.kv_lengths = lengths;
    }
    uint8_t sb = read_u8(in);
    int want_scores = sb % 2, want_weights = sb / 2 % 2;
    c.o.scores_stage = sb / 4 % 4;
    if (sb >= 252) c.o.scores_stage = 4;

    size_t nq = (size_t)c.batch * c.heads * c.seq_q * c.head_dim;
    size_t nk = (size_t)c.batch * c.kv_heads * c.seq_k * c.head_dim;
    size_t nv = (size_t)c.batch * c.kv_heads * c.seq_k * c.v_dim;
    size_t no = (size_t)c.batch * c.heads * c.seq_q * c.v_dim;
    size_t nw = (size_t)c.batch * c.heads * c.seq_q * c.seq_k;
    if (nq > MAX_FLOATS || nk > MAX_FLOATS || nv > MAX_FLOATS || no > MAX_FLOATS || nw > MAX_FLOATS) return;

    // The mask: kind 0 none; boolean, additive or both; shapes [sq, sk], [b, h, sq, sk], broadcast
    // over heads, keys only [sk], or over keys (stride_k 0).
    uint8_t mb = read_u8(in);
    int kind = mb % 5;  // 0: none, 1: boolean, 2: additive, 3: both, 4: neither (refused)
    int shape = mb / 5 % 5;
    attention_mask mask = {NULL, 0, 0, 0, 0, NULL};
    int64_t sq = c.seq_q, sk = c.seq_k;
    if (shape == 0) { mask.stride_q = sk; mask.stride_k = 1; }
    else if (shape == 1) { mask.stride_k = 1; mask.stride_q = sk; mask.stride_h = sq * sk; mask.stride_b = c.heads * sq * sk; }
    else if (shape == 2) { mask.stride_k = 1; mask.stride_q = sk; mask.stride_b = sq * sk; }
    else if (shape == 3) { mask.stride_k = 1; }
    else { mask.stride_q = 1; }
    size_t mask_n = (size_t)(1 + (c.batch - 1) * mask.stride_b + (c.heads - 1) * mask.stride_h +
                             (sq > 0 ? sq - 1 : 0) * mask.stride_q + (sk > 0 ? sk - 1 : 0) * mask.stride_k);
    uint8_t *mbytes = malloc(mask_n);
    float *madd = malloc(mask_n * sizeof(float));
    uint8_t density = read_u8(in) % 5, add_kind = read_u8(in);
    uint32_t state = read_u32(in) | 1;
    int add_finite = 1;
    for (size_t i = 0; i < mask_n; i++) {
        uint32_t r = next_random(&state);
        mbytes[i] = (r >> 8) % 4 < density ? (uint8_t)(1 + (r >> 16) % 255) : 0;
        uint32_t r2 = next_random(&state);
        // 0 / -inf like a boolean mask, or biases in [-4, 4) with some -inf, or any bits rarely.
        madd[i] = (r2 >> 8) % 4 >= density ? -INFINITY : add_kind % 2 ? 0.0f : (float)((r2 >> 12) % 8192) / 1024.0f - 4.0f;
    }
    if (add_kind >= 248 && mask_n > 0) {
        madd[read_u32(in) % mask_n] = add_kind % 2 ? NAN : float_from_bits(read_u32(in));
    }
    for (size_t i = 0; i < mask_n; i++) add_finite &= !isnan(madd[i]) && madd[i] != INFINITY;
    if (kind == 1 || kind == 3) mask.data = mbytes;
    if (kind == 2 || kind == 3) mask.additive = madd;
    c.o.mask = kind ? &mask : NULL;
    c.mask = c.o.mask;

    float *q = malloc((nq ? nq : 1) * sizeof(float)), *k = malloc((nk ? nk : 1) * sizeof(float));
    float *v = malloc((nv ? nv : 1) * sizeof(float));
    fill(in, q, nq, &state);
    fill(in, k, nk, &state);
    fill(in, v, nv, &state);
    float *out = new_output(no), *weights = want_weights ? new_output(nw) : NULL;
    float *scores = want_scores ? new_output(nw) : NULL;
    float *out0 = copy_floats(out, no), *q0 = copy_floats(q, nq), *k0 = copy_floats(k, nk), *v0 = copy_floats(v, nv);
    c.o.scores = scores;
    int status = rope_attention_forward_options(q, k, v, out, weights, c.batch, c.heads, c.kv_heads, c.seq_q, c.seq_k,
                                                c.head_dim, c.layout, c.scale, NULL, 0, &c.o);
    unsigned allowed = 0;
    if (kind == 4) allowed |= error_bit(ROPE_ERR_NULL);
    if (c.heads % c.kv_heads != 0) allowed |= error_bit(ROPE_ERR_HEADS);
    if (!isfinite((float)((double)c.scale * LOG2E))) allowed |= error_bit(ROPE_ERR_SCALE);
    if (c.o.causal > 2 || c.o.window_left < -1 || !(c.o.softcap >= 0.0f) || !isfinite(c.o.softcap) ||
        (scores && c.o.scores_stage > 3)) {
        allowed |= error_bit(ROPE_ERR_VALUE);
    }
    int lengths_bad = 0;
    for (int b = 0; c.o.kv_lengths && b < c.batch; b++) lengths_bad |= lengths[b] > c.seq_k;
    if (c.o.v_head_dim < 0 || lengths_bad) allowed |= error_bit(ROPE_ERR_SHAPE);
    expect_status("rope_attention_forward_options", status, allowed);
    if (memcmp(q, q0, nq * sizeof(float)) || memcmp(k, k0, nk * sizeof(float)) || memcmp(v, v0, nv * sizeof(float))) {
        fail("options: an input changed");
    }
    if (status != ROPE_OK && memcmp(out, out0, no * sizeof(float))) fail("options: a refused call wrote out");
    if (status == ROPE_OK && c.seq_q > 0) {
        if (c.o.v_head_dim == 0) c.v_dim = c.head_dim;
        int reference = all_finite(q, nq) && all_finite(k, nk) && add_finite;
        for (size_t i = 0; i < nv; i++) reference &= !isinf(v[i]);
        if (c.v_dim == (c.o.v_head_dim ? c.o.v_head_dim : c.head_dim)) {
            check_options(&c, q, k, v, out, weights, scores, reference);
        }
        uint8_t dtype = read_u8(in) % 3;  // 1, 2: the same call in float16 / bfloat16
        if (dtype) check_dtype(&c, dtype, q, k, v, nq, nk, nv, no);
    }
    free(q);
    free(k);
    free(v);
    free(out);
    free(weights);
    free(scores);
    free(out0);
    free(q0);
    free(k0);
    free(v0);
    free(mbytes);
    free(madd);
}

// ----------------------------------------------------------------------------
// rope_mha_forward

// y[rows, n] = x[rows, n] w^T + bias in float64; bound[rows, n] = |x| |w|^T + |bias|, what the
// float32 rounding errors are relative to. bias may be NULL (0).
static void linear(const double *x, const float *w, const float *bias, int rows, int n, double *y, double *bound) {
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < n; o++) {
            double sum = bias ? bias[o] : 0.0, abs_sum = bias ? fabs(bias[o]) : 0.0;
            for (int i = 0; i < n; i++) {
                sum += x[(size_t)r * n + i] * w[(size_t)o * n + i];
                abs_sum += fabs(x[(size_t)r * n + i] * w[(size_t)o * n + i]);
            }
            y[(size_t)r * n + o] = sum;
            bound[(size_t)r * n + o] = abs_sum;
        }
    }
}

// y against the seed's RotaryPEMultiHeadAttention in float64, for finite x and weights.
static void check_mha_reference(const float *x, const float *y, int seq, int batch, int d_model, int heads,
                                const mha_weights *w, const rope_embedding *rope, int causal, const uint8_t *mask,
                                int mask_batch) {
    int rows = seq * batch, d_k = d_model / heads;
    size_t n = (size_t)rows * d_model;
    double *xd = malloc(n * sizeof(double)), *q = malloc(n * sizeof(double)), *k = malloc(n * sizeof(double));
    double *v = malloc(n * sizeof(double)), *attended = malloc(n * sizeof(double)), *want = malloc(n * sizeof(double));
    double *q_bound = malloc(n * sizeof(double)), *k_bound = malloc(n * sizeof(double));
    double *bound = malloc(n * sizeof(double)), *scores = malloc((size_t)seq * sizeof(double));
    for (size_t i = 0; i < n; i++) xd[i] = x[i];
    linear(xd, w->query_weight, w->query_bias, rows, d_model, q, q_bound);
    linear(xd, w->key_weight, w->key_bias, rows, d_model, k, k_bound);
    linear(xd, w->value_weight, w->value_bias, rows, d_model, v, bound);
    double max_v = 0, max_q = 0, max_k = 0;  // bounds of |v|, and of the norms of a head of q, k
    for (size_t i = 0; i < n; i++) max_v = fmax(max_v, bound[i]);
    int rotated = 1;
    for (int r = 0; r < rows; r++) {
        for (int h = 0; h < heads; h++) {
            size_t at = (size_t)r * d_model + (size_t)h * d_k;
            if (rope) {
                rotated &= rotate(rope, q + at, r / batch);
                rotated &= rotate(rope, k + at, r / batch);
            }
            // |q| <= |q_bound| bounds the score and its error (the rotation keeps the norm).
            max_q = fmax(max_q, norm(q_bound + at, d_k));
            max_k = fmax(max_k, norm(k_bound + at, d_k));
        }
    }
    double scale = 1.0 / sqrt((double)d_k);
    double error = score_error(scale * max_q * max_k, d_model + d_k);
    // |y| is at most |bias| + |W_o| max|v|: the magnitude the tolerance is relative to.
    double magnitude = 1e-30;
    for (int o = 0; o < d_model; o++) {
        double row = w->output_bias ? fabs(w->output_bias[o]) : 0.0;
        for (int f = 0; f < d_model; f++) row += fabs(w->output_weight[(size_t)o * d_model + f]) * max_v;
        magnitude = fmax(magnitude, row);
    }
    int checked = rotated && error <= MAX_SCORE_ERROR && max_q < MAX_MAGNITUDE && max_k < MAX_MAGNITUDE &&
                  max_v * (seq + 1) < MAX_MAGNITUDE && magnitude < MAX_MAGNITUDE;
    for (int i = 0; i < seq && checked; i++) {
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                const double *qi = q + ((size_t)i * batch + b) * d_model + (size_t)h * d_k;
                double max = -INFINITY, sum = 0;
                for (int j = 0; j < seq; j++) {
                    const double *kj = k + ((size_t)j * batch + b) * d_model + (size_t)h * d_k;
                    double dot = 0;
                    for (int f = 0; f < d_k; f++) dot += qi[f] * kj[f];
                    scores[j] = scale * dot;
                    int seen = !(causal && j > i) && !(mask && !mask[((size_t)i * seq + j) * mask_batch + (mask_batch == 1 ? 0 : b)]);
                    if (!seen) scores[j] = -INFINITY;
                    max = fmax(max, scores[j]);
                }
                double *o = attended + ((size_t)i * batch + b) * d_model + (size_t)h * d_k;
                for (int f = 0; f < d_k; f++) o[f] = 0;
                if (max == -INFINITY) continue;  // sees no key: zeros
                for (int j = 0; j < seq; j++) {
                    scores[j] = exp(scores[j] - max);
                    sum += scores[j];
                }
                for (int j = 0; j < seq; j++) {
                    const double *vj = v + ((size_t)j * batch + b) * d_model + (size_t)h * d_k;
                    for (int f = 0; f < d_k; f++) o[f] += scores[j] / sum * vj[f];
                }
            }
        }
    }
    if (checked) {
        linear(attended, w->output_weight, w->output_bias, rows, d_model, want, bound);
        double tolerance = (TOLERANCE + 2 * error) * magnitude;
        for (size_t i = 0; i < n; i++) {
            if (!(fabs(y[i] - want[i]) <= tolerance)) {
                fprintf(stderr, "y[%zu] = %.9g, want %.9g (tolerance %g)\n", i, y[i], want[i], tolerance);
                fail("mha: y differs from the float64 reference");
            }
        }
    }
    free(xd);
    free(q);
    free(k);
    free(v);
    free(attended);
    free(want);
    free(q_bound);
    free(k_bound);
    free(bound);
    free(scores);
}

static void fuzz_mha(reader *in) {
    int seq = (int)(read_u8(in) % 11) - 1;       // -1 .. 9
    int batch = (int)(read_u8(in) % 5) - 1;      // -1 .. 3
    int heads = (int)(read_u8(in) % 6) - 1;      // -1 .. 4
    int d_model = (int)(read_u8(in) % 18) - 1;   // -1 .. 16: heads often does not divide it
    rope_embedding *rope = read_rope(in);
    int causal = read_u8(in) & 1;
    uint8_t mask_kind = read_u8(in) % 8;         // 0..3: none; 4, 5: batch 1 or batch; 6, 7: invalid
    int mask_batch = mask_kind == 4 ? 1 : mask_kind == 5 ? batch : mask_kind == 6 ? 0 : batch + 1;
    uint8_t null_arg = read_u8(in) % 24;         // 1..7: which pointer is NULL; 8..11: which bias
    uint32_t state = read_u32(in) | 1;

    int sizes_ok = seq >= 0 && batch >= 1 && heads >= 1 && d_model >= 1;
    size_t n = sizes_ok ? (size_t)seq * batch * d_model : 0;
    size_t wn = d_model >= 1 ? (size_t)d_model * d_model : 0, bn = d_model >= 1 ? (size_t)d_model : 0;
    float *x = malloc((n > 0 ? n : 1) * sizeof(float));
    float *params[8];  // weight, bias of query, key, value, output
    for (int p = 0; p < 8; p++) params[p] = malloc(((p % 2 ? bn : wn) > 0 ? (p % 2 ? bn : wn) : 1) * sizeof(float));
    fill(in, x, n, &state);
    // nn.Linear's initialisation keeps the projections near the scale of x.
    float init = d_model >= 1 ? 1.0f / sqrtf((float)d_model) : 1.0f;
    for (int p = 0; p < 8; p++) {
        size_t count = p % 2 ? bn : wn;
        fill(in, params[p], count, &state);
        for (size_t i = 0; i < count; i++) params[p][i] *= init;
    }
    size_t mask_size = mask_kind >= 4 && sizes_ok && mask_batch >= 1 ? (size_t)seq * seq * mask_batch : 0;
    uint8_t *mask = mask_kind >= 4 ? malloc(mask_size > 0 ? mask_size : 1) : NULL;
    uint8_t density = read_u8(in) % 5;
    for (size_t i = 0; i < mask_size; i++) {
        uint32_t r = next_random(&state);
        mask[i] = (r >> 8) % 4 < density ? (uint8_t)(1 + (r >> 16) % 255) : 0;
    }

    mha_weights w = {params[0], params[1], params[2], params[3], params[4], params[5], params[6], params[7]};
    const float **slots[4] = {&w.query_weight, &w.key_weight, &w.value_weight, &w.output_weight};
    if (null_arg >= 4 && null_arg <= 7) *slots[null_arg - 4] = NULL;
    const float **biases[4] = {&w.query_bias, &w.key_bias, &w.value_bias, &w.output_bias};
    if (null_arg >= 8 && null_arg <= 11) *biases[null_arg - 8] = NULL;  // a Linear without bias: 0
    float *y = new_output(n), *y0 = copy_floats(y, n), *x0 = copy_floats(x, n);
    const float *xp = null_arg == 1 ? NULL : x;
    float *yp = null_arg == 2 ? NULL : y;
    const mha_weights *wp = null_arg == 3 ? NULL : &w;
    int status = rope_mha_forward(xp, yp, seq, batch, d_model, heads, wp, rope, causal, mask, mask_batch);

    unsigned allowed = 0;
    if (!xp || !yp || !wp || !w.query_weight || !w.key_weight || !w.value_weight || !w.output_weight) {
        allowed |= error_bit(ROPE_ERR_NULL);
    }
    if (!sizes_ok || (mask && mask_batch != 1 && mask_batch != batch)) allowed |= error_bit(ROPE_ERR_SHAPE);
    if (heads >= 1 && d_model >= 1 && d_model % heads != 0) allowed |= error_bit(ROPE_ERR_HEADS);
    if (rope && heads >= 1 && d_model >= 1 && rope->dim > d_model / heads) allowed |= error_bit(ROPE_ERR_DIM);
    expect_status("rope_mha_forward", status, allowed);
    if (memcmp(x, x0, n * sizeof(float)) != 0) fail("mha: x changed");
    if (status != ROPE_OK && memcmp(y, y0, n * sizeof(float)) != 0) fail("mha: a refused call wrote y");

    if (status == ROPE_OK) {
        int finite = all_finite(x, n);
        for (int p = 0; p < 8; p++) finite &= all_finite(params[p], p % 2 ? bn : wn);
        // A query that sees no key attends to nothing: y is exactly the output bias there.
        if (all_finite(w.output_weight, wn)) {
            for (int i = 0; i < seq; i++) {
                for (int b = 0; b < batch; b++) {
                    int seen = 0;
                    for (int j = 0; j < seq; j++) {
                        seen |= !(causal && j > i) && !(mask && !mask[((size_t)i * seq + j) * mask_batch + (mask_batch == 1 ? 0 : b)]);
                    }
                    for (int o = 0; o < d_model && !seen; o++) {
                        float got = y[((size_t)i * batch + b) * d_model + o];
                        float bias = w.output_bias ? w.output_bias[o] : 0.0f;
                        if (!(got == bias || (isnan(got) && isnan(bias)))) {
                            fail("mha: a query that sees no key is not the output bias");
                        }
                    }
                }
            }
        }
        if (finite && n > 0) check_mha_reference(x, y, seq, batch, d_model, heads, &w, rope, causal, mask, mask_batch);
    }
    free(x);
    for (int p = 0; p < 8; p++) free(params[p]);
    free(mask);
    free(y);
    free(y0);
    free(x0);
    rope_destroy(rope);
}

// ----------------------------------------------------------------------------
// gemm

// A stored matrix [rows, cols] with row stride ld: the floats it spans, or 0 when it is empty or
// its ld is too small (the call is refused then).
static size_t span(int rows, int cols, int ld) {
    if (rows <= 0 || cols <= 0 || ld < cols) return 0;
    return (size_t)(rows - 1) * ld + cols;
}

static void fuzz_gemm(reader *in) {
    uint8_t t = read_u8(in);
    int trans_a = t < 240 ? t & 1 : (int)(t % 5) - 2, trans_b = t < 240 ? t >> 1 & 1 : (int)(t % 7) - 3;
    int m = read_size(in, 20, 120), n = read_size(in, 20, 500), k = read_size(in, 20, 500);
    int rows_a = trans_a ? k : m, cols_a = trans_a ? m : k, rows_b = trans_b ? n : k, cols_b = trans_b ? k : n;
    // Leading dimensions from 2 below the row (too small) to 5 beyond.
    int lda = cols_a + (int)(read_u8(in) % 8) - 2, ldb = cols_b + (int)(read_u8(in) % 8) - 2;
    int ldc = n + (int)(read_u8(in) % 8) - 2;
    float alpha = read_scalar(in), beta = read_scalar(in);
    uint8_t null_arg = read_u8(in) % 16;  // 1..3: A, B or C NULL
    size_t na = span(rows_a, cols_a, lda), nb = span(rows_b, cols_b, ldb), nc = span(m, n, ldc);
    if (na > MAX_FLOATS || nb > MAX_FLOATS || nc > MAX_FLOATS) return;

    uint32_t state = read_u32(in) | 1;
    float *a = malloc((na > 0 ? na : 1) * sizeof(float)), *b = malloc((nb > 0 ? nb : 1) * sizeof(float));
    float *c = malloc((nc > 0 ? nc : 1) * sizeof(float));
    fill(in, a, na, &state);
    fill(in, b, nb, &state);
    fill(in, c, nc, &state);
    // beta 0 must not read C: NaN there must not come through.
    if (beta == 0.0f && read_u8(in) & 1) {
        for (size_t i = 0; i < nc; i++) c[i] = NAN;
    }
    float *a0 = copy_floats(a, na), *b0 = copy_floats(b, nb), *c0 = copy_floats(c, nc);
    const float *ap = null_arg == 1 ? NULL : a, *bp = null_arg == 2 ? NULL : b;
    float *cp = null_arg == 3 ? NULL : c;
    int status = gemm(trans_a, trans_b, m, n, k, alpha, ap, lda, bp, ldb, beta, cp, ldc);

    unsigned allowed = 0;
    if ((trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1)) allowed |= error_bit(ROPE_ERR_LAYOUT);
    if (m < 0 || n < 0 || k < 0 || lda < cols_a || ldb < cols_b || ldc < n) allowed |= error_bit(ROPE_ERR_SHAPE);
    if ((!ap && na > 0) || (!bp && nb > 0) || (!cp && nc > 0)) allowed |= error_bit(ROPE_ERR_NULL);
    expect_status("gemm", status, allowed);
    if (memcmp(a, a0, na * sizeof(float)) != 0 || memcmp(b, b0, nb * sizeof(float)) != 0) fail("gemm: A or B changed");
    if (status != ROPE_OK && memcmp(c, c0, nc * sizeof(float)) != 0) fail("gemm: a refused call wrote C");

    if (status == ROPE_OK) {
        // The padding between C's rows is not C's (an empty C has no rows in memory).
        for (int i = 0; nc > 0 && i + 1 < m; i++) {
            size_t row = (size_t)i * ldc;
            if (memcmp(c + row + n, c0 + row + n, (size_t)(ldc - n) * sizeof(float)) != 0) fail("gemm: wrote C's padding");
        }
        int finite = all_finite(a, na) && all_finite(b, nb) && isfinite(alpha) && isfinite(beta) &&
                     (beta == 0.0f || all_finite(c0, nc));
        for (int i = 0; i < m && finite; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0, abs_sum = 0;
                for (int p = 0; p < k; p++) {
                    double x = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                    double z = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                    sum += x * z;
                    abs_sum += fabs(x * z);
                }
                double old = beta != 0.0f ? c0[(size_t)i * ldc + j] : 0.0;
                double want = alpha * sum + beta * old;
                // Each term rounded a few times over k steps, and each product, the sum and the
                // result may lose up to a denormal's last place to underflow (alpha magnifies the
                // first two).
                double scale = fabs((double)alpha) * abs_sum + fabs(beta * old);
                if (!(abs_sum < MAX_MAGNITUDE && scale < MAX_MAGNITUDE)) continue;
                double tolerance = 2.0 * (k + 4) * UNIT_ROUNDOFF * scale + (fabs((double)alpha) * (k + 1) + 2) * FLT_TRUE_MIN;
                if (!(fabs(c[(size_t)i * ldc + j] - want) <= tolerance)) {
                    fprintf(stderr, "C[%d][%d] = %.9g, want %.9g (tolerance %g)\n", i, j, c[(size_t)i * ldc + j], want,
                            tolerance);
                    fail("gemm: C differs from the float64 reference");
                }
            }
        }
    }
    free(a);
    free(b);
    free(c);
    free(a0);
    free(b0);
    free(c0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader in = {data, size, 0};
    uint8_t target = read_u8(&in) % 4;
    if (target == 0) fuzz_attention(&in);
    if (target == 3) fuzz_options(&in);
    if (target == 1) fuzz_mha(&in);
    if (target == 2) fuzz_gemm(&in);
    return 0;
}
