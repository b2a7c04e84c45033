// fuzz_rope.c: a libFuzzer harness for the rope_* C API (build/fuzz_rope, built by build.sh).
//
// Each input decodes into an embedding configuration, an optional long-context scaling and one
// or two rope_apply calls, any part of which may be invalid. Beyond the sanitizers' crash, leak
// and UB checks, it aborts on a wrong answer:
//   - rope_create and rope_apply must refuse exactly the arguments rope.h calls invalid;
//   - an accepted call on finite inputs with positions within 2^24 must match a float64
//     reference built from the frequencies and attention scaling in force, and leave the
//     features past dim bit-identical; with no scaling (or linear) the frequencies themselves
//     must be base^(-2i/dim) (/ factor).
// Tensors are capped at MAX_FLOATS floats so that no input is slow or runs out of memory.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "rope_errors.h"
#include "fuzz_reader.h"

#define MAX_FLOATS 65536
#define MAX_CHECKED_POSITION (1 << 24)

// A double parameter: mostly values a model config holds, sometimes one that must be refused,
// sometimes any 64 bits.
static double read_param(reader *in) {
    static const double special[16] = {0.0, -1.0, NAN, INFINITY, -INFINITY, 1e-300, 1e300, 0.5,
                                       1.0, 2.0, 4.0, 8.0, 32.0, 4096.0, 10000.0, 500000.0};
    uint8_t b = read_u8(in);
    if (b < 16) return special[b];
    if (b < 224) return (b - 15) * 0.25;  // 0.25 .. 52: small contexts that positions exceed
    uint64_t bits = (uint64_t)read_u32(in) << 32 | read_u32(in);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static int32_t clamp_i32(int64_t v) { return v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : (int32_t)v; }

// The scaling a successful setter left in force, to check the frequencies of the simple ones.
typedef struct {
    int type;
    double factor;
} scaling_state;

// Decodes a scaling type and its parameters and calls its setter (dim: the embedding's, or any
// when r is NULL). Only a setter's status is checked here: the frequencies it leaves are
// checked through rope_apply.
static void set_scaling(rope_embedding *r, int dim, reader *in, scaling_state *state) {
    int type = read_u8(in) % 6;
    double p[7];
    for (int i = 0; i < 7; i++) p[i] = read_param(in);
    int status = ROPE_OK;
    if (type == ROPE_SCALING_NONE) return;
    if (type == ROPE_SCALING_LINEAR) status = rope_set_linear(r, p[0]);
    if (type == ROPE_SCALING_DYNAMIC) status = rope_set_dynamic(r, p[0], p[1]);
    if (type == ROPE_SCALING_YARN) status = rope_set_yarn(r, p[0], p[1], p[2], p[3], p[4], p[5], p[6], read_u8(in) & 1);
    if (type == ROPE_SCALING_LLAMA3) status = rope_set_llama3(r, p[0], p[1], p[2], p[3]);
    if (type == ROPE_SCALING_LONGROPE) {
        double short_factor[64] = {0}, long_factor[64] = {0};  // [dim/2]; dim < 128
        int half = r ? dim / 2 : 0;
        for (int i = 0; i < half; i++) {
            short_factor[i] = read_param(in);
            long_factor[i] = read_param(in);
        }
        status = rope_set_longrope(r, short_factor, long_factor, p[0], p[1], p[2]);
    }
    if (!r && status != ROPE_ERR_NULL) abort();
    if (r && status != ROPE_OK && status != ROPE_ERR_SCALING) abort();
    if (status == ROPE_OK) {
        state->type = type;
        state->factor = p[0];
    }
}

// The tensor of one or two calls: sizes as given to rope_apply, and what they mean.
typedef struct {
    int layout, n0, n1, n2, head_dim;
    int seq, batch, heads;  // the axes n0, n1, n2 name under a valid layout
    int64_t floats;         // n0 * n1 * n2 * head_dim when it is at most MAX_FLOATS, else -1
    int fits;               // the byte size n0 * n1 * n2 * head_dim * 4 fits a size_t
} shape;

static void decode_shape(reader *in, int dim, shape *sh) {
    sh->layout = (int)(read_u8(in) % 5) - 1;  // -1 and 3 are invalid
    if (read_u8(in) % 8 == 7) {
        // any non-negative sizes: mostly products that overflow, which must be refused
        sh->n0 = read_i32(in) & INT32_MAX;
        sh->n1 = read_i32(in) & INT32_MAX;
        sh->n2 = read_i32(in) & INT32_MAX;
        sh->head_dim = read_i32(in) & INT32_MAX;
    } else {
        sh->n0 = (int)(read_u8(in) % 18) - 1;  // -1 .. 16
        sh->n1 = (int)(read_u8(in) % 18) - 1;
        sh->n2 = (int)(read_u8(in) % 18) - 1;
        sh->head_dim = dim + (int)(read_u8(in) % 12) - 2;  // may be < dim
    }
    int seq_axis = sh->layout == ROPE_LAYOUT_SBHD ? 0 : sh->layout == ROPE_LAYOUT_BSHD ? 1 : 2;
    int n[3] = {sh->n0, sh->n1, sh->n2};
    sh->seq = n[seq_axis];
    sh->batch = seq_axis == 0 ? n[1] : n[0];
    sh->heads = seq_axis == 2 ? n[1] : n[2];  // [batch, heads, seq] in BHSD

    // The exact product, with overflow-checked multiplies (an empty tensor always fits).
    uint64_t product = 0;
    int overflow = 0;
    if (sh->n0 > 0 && sh->n1 > 0 && sh->n2 > 0 && sh->head_dim > 0) {
        product = (uint64_t)sh->n0;
        overflow |= __builtin_mul_overflow(product, (uint64_t)sh->n1, &product);
        overflow |= __builtin_mul_overflow(product, (uint64_t)sh->n2, &product);
        overflow |= __builtin_mul_overflow(product, (uint64_t)sh->head_dim, &product);
        overflow |= __builtin_mul_overflow(product, (uint64_t)sizeof(float), &product);
    }
    sh->fits = !overflow && product <= SIZE_MAX;
    sh->floats = sh->n0 >= 0 && sh->n1 >= 0 && sh->n2 >= 0 && sh->head_dim >= 0 && sh->fits &&
                 product / sizeof(float) <= MAX_FLOATS ? (int64_t)(product / sizeof(float)) : -1;
}

// The index of head vector (s, b, h) in memory, written out per layout.
static int64_t vector_index(const shape *sh, int s, int b, int h) {
    if (sh->layout == ROPE_LAYOUT_SBHD) return ((int64_t)s * sh->batch + b) * sh->heads + h;
    if (sh->layout == ROPE_LAYOUT_BSHD) return ((int64_t)b * sh->seq + s) * sh->heads + h;
    return ((int64_t)b * sh->heads + h) * sh->seq + s;
}

// Checks y = RoPE(x) against float64, for an accepted call. x: the input (a copy when in place).
static void check_result(const rope_embedding *r, const shape *sh, const float *x, const float *y, int offset,
                         const int32_t *positions, int positions_len, int inverse, const scaling_state *state) {
    int dim = r->dim, half = r->dim / 2, pairing = r->pairing;
    const double *inv_freq = rope_inv_freq(r);
    double scaling = rope_attention_scaling(r);

    // The frequencies themselves, where the expected ones are simple.
    if (state->type == ROPE_SCALING_NONE || state->type == ROPE_SCALING_LINEAR) {
        double divide = state->type == ROPE_SCALING_LINEAR ? state->factor : 1.0;
        for (int i = 0; i < half; i++) {
            double want = 1.0 / pow(r->base, (double)(2 * i) / dim) / divide;
            if (!(inv_freq[i] == want || fabs(inv_freq[i] - want) <= 1e-12 * fabs(want))) {  // == for inf
                fprintf(stderr, "inv_freq[%d] = %.17g, want %.17g\n", i, inv_freq[i], want);
                abort();
            }
        }
        if (scaling != 1.0) abort();
    }

    for (int64_t v = 0; v < sh->floats / sh->head_dim; v++) {
        const float *xv = x + v * sh->head_dim, *yv = y + v * sh->head_dim;
        if (memcmp(xv + dim, yv + dim, (size_t)(sh->head_dim - dim) * sizeof(float)) != 0) {
            fprintf(stderr, "vector %lld: features past dim changed\n", (long long)v);
            abort();
        }
    }

    // The reference is meaningful for finite frequencies, moderate positions, and inputs and
    // scaling whose products stay far from float32 overflow.
    double max_x = 0;
    for (int64_t i = 0; i < sh->floats; i++) {
        if (!isfinite(x[i])) return;
        max_x = fmax(max_x, fabs(x[i]));
    }
    if (!(fabs(scaling) <= 1e30 && max_x * fabs(scaling) <= 1e30)) return;
    for (int i = 0; i < half; i++) {
        if (!isfinite(inv_freq[i])) return;
    }
    for (int s = 0; s < sh->seq; s++) {
        for (int b = 0; b < sh->batch; b++) {
            int64_t p = !positions ? (int64_t)offset + s
                        : positions_len == sh->seq ? positions[s] : positions[(int64_t)b * sh->seq + s];
            if (p > MAX_CHECKED_POSITION || p < -MAX_CHECKED_POSITION) continue;
            for (int h = 0; h < sh->heads; h++) {
                int64_t v = vector_index(sh, s, b, h) * sh->head_dim;
                for (int i = 0; i < half; i++) {
                    int j = pairing == ROPE_PAIRING_HALF ? i : 2 * i;  // the pair (j, k)
                    int k = pairing == ROPE_PAIRING_HALF ? i + half : 2 * i + 1;
                    double angle = (double)p * inv_freq[i] * (inverse ? -1.0 : 1.0);
                    double c = cos(angle) * scaling, sn = sin(angle) * scaling;
                    if (!isfinite(c) || !isfinite(sn)) return;
                    double want_j = x[v + j] * c - x[v + k] * sn;
                    double want_k = x[v + k] * c + x[v + j] * sn;
                    // a few float32 roundings of |x| |scaling|; 1e-37 covers float underflow
                    double tolerance = 1e-6 * (fabs(x[v + j]) + fabs(x[v + k])) * fabs(scaling) + 1e-37;
                    if (!(fabs(y[v + j] - want_j) <= tolerance) || !(fabs(y[v + k] - want_k) <= tolerance)) {
                        fprintf(stderr, "position %lld pair %d: got (%.9g, %.9g), want (%.9g, %.9g)\n", (long long)p, i,
                                y[v + j], y[v + k], want_j, want_k);
                        abort();
                    }
                }
            }
        }
    }
}

// Decodes where the positions come from, calls rope_apply on x (in place or into y) and checks
// the status against the arguments' validity, and the result against the reference.
static void apply_once(rope_embedding *r, int dim, const shape *sh, float *x, float *y, reader *in,
                       const scaling_state *state) {
    int offset;
    switch (read_u8(in) % 4) {
    case 0: offset = (int8_t)read_u8(in); break;
    case 1: offset = read_i32(in); break;
    case 2: offset = INT32_MAX - read_u8(in); break;
    default: offset = INT32_MIN + read_u8(in); break;
    }
    int positions_kind = read_u8(in) % 4;
    int64_t len = 0;  // kind 0: no positions
    if (positions_kind == 1) len = sh->seq;
    if (positions_kind == 2) len = (int64_t)sh->batch * sh->seq;
    if (positions_kind == 3) len = (int)read_u8(in) - 8;  // mostly a wrong length
    int positions_len = len > INT32_MAX ? INT32_MAX : (int)len;
    int32_t *positions = NULL;
    if (positions_kind != 0) {
        // allocated as long as the call could read (a valid call is at most MAX_FLOATS tokens)
        int64_t stored = positions_len < 1 ? 1 : positions_len > MAX_FLOATS ? MAX_FLOATS : positions_len;
        positions = malloc((size_t)stored * sizeof(int32_t));
        int raw = read_u8(in) & 1;  // any int32 values, or a cluster around an anchor
        int64_t anchor = read_i32(in);
        for (int64_t t = 0; t < stored; t++) {
            positions[t] = raw ? read_i32(in) : clamp_i32(anchor + (int8_t)read_u8(in));
        }
    }
    int inverse = read_u8(in) % 3;  // any nonzero value means inverse
    int flags = read_u8(in);
    const float *xp = flags % 8 == 1 ? NULL : x;
    float *yp = flags % 8 == 2 ? NULL : (flags & 8) ? x : y;

    // Valid exactly when rope.h says so.
    int valid = r && xp && yp && sh->layout >= ROPE_LAYOUT_SBHD && sh->layout <= ROPE_LAYOUT_BHSD &&
                sh->n0 >= 0 && sh->n1 >= 0 && sh->n2 >= 0 && sh->head_dim >= dim && sh->fits &&
                (!positions || positions_len == sh->seq || (int64_t)positions_len == (int64_t)sh->batch * sh->seq);
    if (valid && sh->floats < 0) {  // valid but too big to allocate here
        free(positions);
        return;
    }
    float *x_before = NULL;
    if (valid && sh->floats > 0) {
        x_before = malloc((size_t)sh->floats * sizeof(float));
        memcpy(x_before, x, (size_t)sh->floats * sizeof(float));
    }
    int status = rope_apply(r, xp, yp, sh->layout, sh->n0, sh->n1, sh->n2, sh->head_dim, offset, positions,
                            positions_len, inverse);
    if (valid != (status == ROPE_OK)) {
        fprintf(stderr, "rope_apply returned %d for %s arguments\n", status, valid ? "valid" : "invalid");
        abort();
    }
    if (valid && sh->floats > 0) {
        check_result(r, sh, x_before, yp, offset, positions, positions_len, inverse, state);
        memcpy(x, x_before, (size_t)sh->floats * sizeof(float));  // the next call starts from the same x
    }
    free(x_before);
    free(positions);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader in = {data, size, 0};
    int dim = (int8_t)read_u8(&in);  // -128 .. 127: odd, zero and negative are invalid
    double base = read_param(&in);
    int pairing = (int)(read_u8(&in) % 4) - 1;  // -1 and 2 are invalid
    rope_embedding *r = rope_create(dim, base, pairing);
    int valid = dim > 0 && dim % 2 == 0 && isfinite(base) && base > 0 &&
                (pairing == ROPE_PAIRING_HALF || pairing == ROPE_PAIRING_INTERLEAVED);
    if (valid != (r != NULL)) abort();

    scaling_state state = {ROPE_SCALING_NONE, 1.0};
    set_scaling(r, dim, &in, &state);

    shape sh;
    decode_shape(&in, dim, &sh);
    // x: uniform in [-1, 1) from a seeded xorshift, with optionally one raw (maybe NaN) float.
    int64_t n = sh.floats > 0 ? sh.floats : 1;
    float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    uint32_t seed = read_u32(&in) | 1;
    for (int64_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        x[i] = (float)((seed >> 8) * (2.0 / 16777216.0) - 1.0);
        y[i] = 0;
    }
    if (read_u8(&in) & 1) {
        uint32_t bits = read_u32(&in);
        memcpy(&x[read_u32(&in) % n], &bits, sizeof(float));
    }

    apply_once(r, dim, &sh, x, y, &in, &state);
    // A second call: extends or reuses the table, maybe after moving the frequencies.
    int again = read_u8(&in);
    if (again & 1) {
        if (again & 2) {
            if (rope_prepare(r, read_i32(&in)) != (r ? ROPE_OK : ROPE_ERR_NULL)) abort();
        }
        if (again & 4) set_scaling(r, dim, &in, &state);
        apply_once(r, dim, &sh, x, y, &in, &state);
    }

    free(x);
    free(y);
    rope_destroy(r);
    return 0;
}
