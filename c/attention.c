// attention.c: scaled dot-product attention, FlashAttention-2 style, on f32x4 vectors.
//
// Per (batch, kv head): k is rotated (RoPE) once, then packed transposed into panels of 8 keys;
// v is read in place (or copied with its rows padded to 8 floats). Per query head: q is gathered,
// rotated, scaled, and interleaved by groups of 4 rows. Then, for each block of QUERY_BLOCK query
// rows, the keys are visited in blocks of KEY_BLOCK; each group of 4 rows computes its scores with
// a 4x8 register-tiled kernel, folds them into a running max and sum (online softmax), and adds
// P.V into its [4, v_head_dim] output rows.
//
// What a row sees is one range of keys [lo, hi) (causal in either alignment, a sliding window,
// the batch row's valid key count, and the span from the first to the last key a mask leaves
// visible, found once per mask slice), then the mask inside it. A group visits only the panels of
// 8 keys that meet its rows' ranges, so keys no row of a block can see (above the causal diagonal,
// outside a window, past a valid length, at the ends of a row a mask hides: a causal mask's upper
// triangle, padded keys) cost nothing: the plain path does exactly what it did before masks and
// windows existed. Inside the range, mask panels are classified 8 keys (bytes or floats) at a
// time, 4 rows at once: wholly visible (nothing to do), wholly hidden, or key by key.
//
// float16 / bfloat16 q, k, v are converted to float32 as they are gathered for packing (exactly),
// and output rows are rounded to nearest even as they are written.
//
// Scores are kept in log2 units: q is multiplied by scale * log2(e) once, so that softmax needs
// 2^x (f32x4_exp2) instead of e^x and no multiply per score (an additive mask and the softcap are
// converted to these units too). A group's scores are stored key-major, [key][4 rows]: one vector
// holds one key's score for the 4 rows, so the softmax works on whole vectors (one row per lane)
// and P.V splats each probability from consecutive floats.
#include "attention.h"
#include "rope_errors.h"
#include "simd.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ONES_8 0x0101010101010101ull
#define HIGHS_8 0x8080808080808080ull
// Two floats' bits: -inf, and everything but the signs.
#define MINUS_INFS_2 0xFF800000FF800000ull
#define MAGNITUDES_2 0x7FFFFFFF7FFFFFFFull

// Query rows that share each key block while it is in cache (a multiple of 4).
#define QUERY_BLOCK 16
// Keys per block (a multiple of 8): a group's score tile is [KEY_BLOCK, 4] floats.
#define KEY_BLOCK 128
#define LOG2E 1.4426950408889634
#define LN2 0.6931471805599453

// The sizes and options every step needs.
typedef struct {
    int seq_q, seq_k;
    int head_dim;    // of q and k
    int v_dim;       // of v and out
    int padded_dim;  // v_dim rounded up to a multiple of 8: the width of v rows and output tiles
    int causal;      // nonzero: keys past the row's position are hidden
    int diag;        // the key position of query row 0: limit - seq_q (bottom-right) or 0 (top-left)
    int window_left, window_right;  // -1: unbounded
    int limit;       // the current batch row's valid keys: [0, limit)
    float softcap;   // in log2 units (softcap * log2 e); 0: none
    float inv_softcap;
    const uint8_t *mask;        // NULL, or the current head's boolean mask: query i, key j at
    const float *additive;      //   mask[i * mask_q + j * mask_k], 0 = masked; NULL or the additive
    int64_t mask_q, mask_k;     //   mask at the same index
    int dtype;                  // ATTENTION_DTYPE_*: of q, k, v and out
    const int *mask_span;       // NULL, or [seq_q][2]: per row, the first key the mask leaves visible
                                //   and one past the last (0, 0: none)
} attention_dims;

// Scratch, allocated once per call.
typedef struct {
    float *qt;    // [ceil(seq_q / 4), head_dim, 4]: one query head, rotated and scaled, each group of
                  //   4 rows interleaved (feature i of the 4 rows side by side); pad rows 0
    float *kt;    // [ceil(seq_k / 8), head_dim, 8]: one kv head's keys, transposed in panels of 8
    float *rows;  // [max(seq_q, seq_k), head_dim]: a head's keys or queries gathered for rope_apply
                  //   (NULL without rope)
    float *v;     // [seq_k, padded_dim]: one kv head's values, when v_dim % 8 != 0 (else NULL)
    float *o;     // [QUERY_BLOCK, padded_dim]: unnormalised output rows of a query block
    float *p;     // [KEY_BLOCK, 4]: a group's scores, then its probabilities, key-major
    float *m;     // [QUERY_BLOCK]: running max of each row's scores (log2 units)
    float *l;     // [QUERY_BLOCK]: running sum of 2^(score - m)
    float *row;   // [padded_dim]: an output row in float32 before it is rounded to a 16-bit dtype
} attention_scratch;

// float16 and bfloat16 <-> float32, bit exact: every 16-bit value converts exactly to float32;
// float32 rounds to nearest even (float16: overflow to inf, subnormals kept); NaN stays NaN
// (quiet, with the top bits of its payload), inf stays inf.
static inline float half_to_float(uint16_t h) {
    // The exponent and mantissa moved into a float's and scaled by 2^(127 - 15): normals and
    // subnormals exactly, without a branch; inf and NaN (exponent 31) get the float's 255.
    uint32_t x = (uint32_t)(h & 0x7FFFu) << 13, bits;
    float f;
    memcpy(&f, &x, sizeof(f));
    f *= 0x1p112f;
    memcpy(&bits, &f, sizeof(bits));
    if ((h & 0x7C00u) == 0x7C00u) bits = x | 0x7F800000u;
    bits |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static inline uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    uint32_t sign = x >> 16 & 0x8000u, ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | (ax >> 13 & 0x3FFu));  // NaN
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // from 65520 (the midpoint to 2^16) on: inf
    if (ax < 0x38800000u) {
        // Below 2^-14: a multiple of 2^-24, rounded to nearest even (1024 is the smallest normal).
        float a;
        memcpy(&a, &ax, sizeof(a));
        return (uint16_t)(sign | (uint32_t)rintf(a * 0x1p24f));
    }
    // Normal: the exponent rebiased, the mantissa rounded from 23 to 10 bits (a carry moves up).
    uint32_t r = (ax + 0xFFFu + (ax >> 13 & 1u)) >> 13;
    return (uint16_t)(sign | (r - (112u << 10)));
}

static inline float bfloat16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static inline uint16_t float_to_bfloat16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)(x >> 16 | 0x40u);  // NaN, quiet
    return (uint16_t)((x + 0x7FFFu + (x >> 16 & 1u)) >> 16);
}

// dst[0..n) = elements at .. at + n - 1 of a tensor of `dtype` (element index), as float32.
static void load_row(int dtype, const void *src, size_t at, int n, float *dst) {
    if (dtype == ATTENTION_DTYPE_FLOAT32) {
        memcpy(dst, (const float *)src + at, (size_t)n * sizeof(float));
        return;
    }
    const uint16_t *h = (const uint16_t *)src + at;
    if (dtype == ATTENTION_DTYPE_FLOAT16) {
        for (int i = 0; i < n; i++) dst[i] = half_to_float(h[i]);
    } else {
        for (int i = 0; i < n; i++) dst[i] = bfloat16_to_float(h[i]);
    }
}

// Elements at .. at + n - 1 of a tensor of `dtype` = src[0..n), rounded to nearest even.
static void store_row(int dtype, void *dst, size_t at, int n, const float *src) {
    if (dtype == ATTENTION_DTYPE_FLOAT32) {
        memcpy((float *)dst + at, src, (size_t)n * sizeof(float));
        return;
    }
    uint16_t *h = (uint16_t *)dst + at;
    if (dtype == ATTENTION_DTYPE_FLOAT16) {
        for (int i = 0; i < n; i++) h[i] = float_to_half(src[i]);
    } else {
        for (int i = 0; i < n; i++) h[i] = float_to_bfloat16(src[i]);
    }
}

// Where the head vectors of (b, h) are in a [batch, nh, seq, d] tensor in `layout`: vector s is
// at *base + s * *stride floats.
static void head_rows(int layout, int batch, int nh, int seq, int d, int b, int h, size_t *base, size_t *stride) {
    if (layout == ROPE_LAYOUT_BHSD) {
        *base = ((size_t)b * nh + h) * seq * d;
        *stride = (size_t)d;
    } else if (layout == ROPE_LAYOUT_BSHD) {
        *base = ((size_t)b * seq * nh + h) * d;
        *stride = (size_t)nh * d;
    } else {  // SBHD
        *base = ((size_t)b * nh + h) * d;
        *stride = (size_t)batch * nh * d;
    }
}

// The keys query row i sees: [*lo, *hi) (empty when *lo == *hi). Pad rows (i >= seq_q) see what the
// last real row sees, so they never widen a group's work. Both ends grow with i, unless a mask
// span narrows them (see rows_keys).
static void row_keys(const attention_dims *a, int i, int *lo, int *hi) {
    if (i > a->seq_q - 1) i = a->seq_q - 1;
    int64_t c = (int64_t)i + a->diag;  // the row's key position
    int64_t l = 0, h = a->limit;
    if (a->causal && c + 1 < h) h = c + 1;
    if (a->window_right >= 0 && c + a->window_right + 1 < h) h = c + a->window_right + 1;
    if (a->window_left >= 0 && c - a->window_left > l) l = c - a->window_left;
    if (a->mask_span) {
        // Keys before the row's first visible one and after its last are hidden by the mask.
        if (a->mask_span[2 * i] > l) l = a->mask_span[2 * i];
        if (a->mask_span[2 * i + 1] < h) h = a->mask_span[2 * i + 1];
    }
    if (h < 0) h = 0;
    if (l > h) l = h;
    *lo = (int)l;
    *hi = (int)h;
}

// The keys some row of i_first..i_last sees: [*lo, *hi) (rows that see none add nothing).
static void rows_keys(const attention_dims *a, int i_first, int i_last, int *lo, int *hi) {
    int unused;
    if (!a->mask_span) {
        // Both ends grow with i.
        row_keys(a, i_first, lo, &unused);
        row_keys(a, i_last, &unused, hi);
        return;
    }
    *lo = *hi = 0;
    int any = 0;
    for (int i = i_first; i <= i_last; i++) {
        int l, h;
        row_keys(a, i, &l, &h);
        if (l >= h) continue;
        *lo = any && *lo < l ? *lo : l;
        *hi = any && *hi > h ? *hi : h;
        any = 1;
    }
}

// Whether the mask hides key j from row i (the boolean mask's 0, or the additive mask's -inf).
static int mask_hides(const attention_dims *a, int i, int j);

// span[2i], span[2i + 1]: the first key the mask (a->mask, a->additive) leaves visible to row i and
// one past the last, over all seq_k keys (0, 0 when it hides them all). Whole runs of 8 hidden keys
// (bytes 0, floats -inf) are stepped over 8 at a time when mask_k is 1.
static void mask_spans(const attention_dims *a, int *span) {
    int n = a->seq_k;
    for (int i = 0; i < a->seq_q; i++) {
        const uint8_t *mrow = a->mask ? a->mask + (int64_t)i * a->mask_q : NULL;
        const float *arow = a->additive ? a->additive + (int64_t)i * a->mask_q : NULL;
        int j = 0;
        if (a->mask_k == 1) {
            for (; j + 8 <= n; j += 8) {
                uint64_t x = 1, w[4] = {0, 0, 0, 0};
                if (mrow) memcpy(&x, mrow + j, sizeof(x));
                if (arow) memcpy(w, arow + j, sizeof(w));
                int hidden = (mrow && x == 0) || (arow && w[0] == MINUS_INFS_2 && w[1] == MINUS_INFS_2 &&
                                                 w[2] == MINUS_INFS_2 && w[3] == MINUS_INFS_2);
                if (!hidden) break;
            }
        }
        while (j < n && mask_hides(a, i, j)) j++;
        if (j == n) {
            span[2 * i] = span[2 * i + 1] = 0;
            continue;
        }
        int e = n;
        if (a->mask_k == 1) {
            for (; e - 8 >= j; e -= 8) {
                uint64_t x = 1, w[4] = {0, 0, 0, 0};
                if (mrow) memcpy(&x, mrow + e - 8, sizeof(x));
                if (arow) memcpy(w, arow + e - 8, sizeof(w));
                int hidden = (mrow && x == 0) || (arow && w[0] == MINUS_INFS_2 && w[1] == MINUS_INFS_2 &&
                                                 w[2] == MINUS_INFS_2 && w[3] == MINUS_INFS_2);
                if (!hidden) break;
            }
        }
        while (e > j && mask_hides(a, i, e - 1)) e--;
        span[2 * i] = j;
        span[2 * i + 1] = e;
    }
}

// st[c][r] = x_r[c] for a 4x4 block given as its 4 rows x_0..x_3: 8 shuffles, 4 stores ld apart.
static void store_transposed(float *st, size_t ld, f32x4 x0, f32x4 x1, f32x4 x2, f32x4 x3) {
    f32x4 t0 = f32x4_zip_lo(x0, x1), t1 = f32x4_zip_lo(x2, x3);  // (x0[0] x1[0] x0[1] x1[1]), ...
    f32x4 t2 = f32x4_zip_hi(x0, x1), t3 = f32x4_zip_hi(x2, x3);  // (x0[2] x1[2] x0[3] x1[3]), ...
    f32x4_store(st, f32x4_join_lo(t0, t1));
    f32x4_store(st + ld, f32x4_join_hi(t0, t1));
    f32x4_store(st + 2 * ld, f32x4_join_lo(t2, t3));
    f32x4_store(st + 3 * ld, f32x4_join_hi(t2, t3));
}

// kt: [ceil(seq_k / 8), head_dim, 8]: panel t holds keys 8t..8t+7 transposed, so that the score
// kernel loads feature i of 8 keys as two vectors. Keys past seq_k are 0.
// k: key j at k + j * ldk, head_dim floats.
static void pack_keys(const float *k, size_t ldk, int seq_k, int head_dim, float *kt) {
    int tiles = (seq_k + 7) / 8;
    for (int t = 0; t < tiles; t++) {
        float *panel = kt + (size_t)t * head_dim * 8;
        int i = 0;
        if (t * 8 + 8 <= seq_k) {
            // Whole panels: 4x4 blocks (4 keys x 4 features) transposed in registers.
            for (; i + 4 <= head_dim; i += 4) {
                for (int half = 0; half < 8; half += 4) {
                    const float *row = k + (size_t)(t * 8 + half) * ldk + i;
                    store_transposed(panel + (size_t)i * 8 + half, 8, f32x4_load(row), f32x4_load(row + ldk),
                                     f32x4_load(row + 2 * ldk), f32x4_load(row + 3 * ldk));
                }
            }
        }
        // The features left over, and the last panel when seq_k is not a multiple of 8.
        for (int c = 0; c < 8; c++) {
            int j = t * 8 + c;
            for (int f = i; f < head_dim; f++) {
                panel[(size_t)f * 8 + c] = j < seq_k ? k[(size_t)j * ldk + f] : 0.0f;
            }
        }
    }
}

// qt: [ceil(seq_q / 4), head_dim, 4] = factor * q, group g holding rows 4g..4g+3 interleaved.
// q: row i at q + i * ldq, head_dim floats. Pad rows of the last group are left as they are (0).
static void pack_queries(const float *q, size_t ldq, int seq_q, int head_dim, float factor, float *qt) {
    f32x4 factor4 = f32x4_splat(factor);
    for (int i0 = 0; i0 < seq_q; i0 += 4) {
        float *group = qt + (size_t)i0 * head_dim;
        int f = 0;
        if (i0 + 4 <= seq_q) {
            // Whole groups: 4x4 blocks (4 rows x 4 features) transposed in registers.
            for (; f + 4 <= head_dim; f += 4) {
                const float *row = q + (size_t)i0 * ldq + f;
                f32x4 x0 = f32x4_mul(f32x4_load(row), factor4), x1 = f32x4_mul(f32x4_load(row + ldq), factor4);
                f32x4 x2 = f32x4_mul(f32x4_load(row + 2 * ldq), factor4);
                f32x4 x3 = f32x4_mul(f32x4_load(row + 3 * ldq), factor4);
                store_transposed(group + (size_t)f * 4, 4, x0, x1, x2, x3);
            }
        }
        // The features left over, and the rows of a last, partial group.
        for (int r = 0; r < 4 && i0 + r < seq_q; r++) {
            const float *row = q + (size_t)(i0 + r) * ldq;
            for (int g = f; g < head_dim; g++) group[(size_t)g * 4 + r] = row[g] * factor;
        }
    }
}

// p[j][r] = q_r . key j, for the 4 query rows of a group and the keys of `tiles` panels.
// qt: [head_dim, 4] (the group's rows interleaved); kt: [tiles, head_dim, 8]; p: [8 tiles, 4].
// Per panel, 8 accumulators (4 rows x 2 vectors of keys) stay in registers: per feature, 4 splats
// of q from consecutive floats and 2 loads of the panel feed 8 multiply-adds; both pointers just
// advance. The 4x8 result is stored transposed, key-major.
static void scores_4x8(const float *qt, const float *kt, int head_dim, int tiles, float *p) {
    f32x4 zero = f32x4_splat(0.0f);
    for (int t = 0; t < tiles; t++) {
        const float *q = qt, *k = kt + (size_t)t * head_dim * 8;
        f32x4 c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero, c30 = zero, c31 = zero;
        for (const float *end = k + (size_t)head_dim * 8; k < end; k += 8, q += 4) {
            f32x4 k0 = f32x4_load(k), k1 = f32x4_load(k + 4);
            f32x4 a = f32x4_splat(q[0]);
            c00 = f32x4_add(c00, f32x4_mul(a, k0));
            c01 = f32x4_add(c01, f32x4_mul(a, k1));
            a = f32x4_splat(q[1]);
            c10 = f32x4_add(c10, f32x4_mul(a, k0));
            c11 = f32x4_add(c11, f32x4_mul(a, k1));
            a = f32x4_splat(q[2]);
            c20 = f32x4_add(c20, f32x4_mul(a, k0));
            c21 = f32x4_add(c21, f32x4_mul(a, k1));
            a = f32x4_splat(q[3]);
            c30 = f32x4_add(c30, f32x4_mul(a, k0));
            c31 = f32x4_add(c31, f32x4_mul(a, k1));
        }
        store_transposed(p + 32 * t, 4, c00, c10, c20, c30);
        store_transposed(p + 32 * t + 16, 4, c01, c11, c21, c31);
    }
}

// The same for a group whose only real row is row 0 (decoding one token): p[j][0] = q_0 . key j,
// p[j][1..3] = 0. Four panels at a time, so that 8 independent sums keep the adds busy (one panel
// alone waits on the latency of its 2). Each key's sum runs over the features in the same order
// as in scores_4x8, so a token decoded alone gets bit for bit the scores it gets among others.
static void scores_1x8(const float *qt, const float *kt, int head_dim, int tiles, float *p) {
    f32x4 zero = f32x4_splat(0.0f);
    size_t panel = (size_t)head_dim * 8;
    int t = 0;
    for (; t + 4 <= tiles; t += 4) {
        const float *q = qt, *k = kt + t * panel;
        f32x4 c0 = zero, c1 = zero, c2 = zero, c3 = zero, c4 = zero, c5 = zero, c6 = zero, c7 = zero;
        for (const float *end = k + panel; k < end; k += 8, q += 4) {
            f32x4 a = f32x4_splat(q[0]);
            c0 = f32x4_add(c0, f32x4_mul(a, f32x4_load(k)));
            c1 = f32x4_add(c1, f32x4_mul(a, f32x4_load(k + 4)));
            c2 = f32x4_add(c2, f32x4_mul(a, f32x4_load(k + panel)));
            c3 = f32x4_add(c3, f32x4_mul(a, f32x4_load(k + panel + 4)));
            c4 = f32x4_add(c4, f32x4_mul(a, f32x4_load(k + 2 * panel)));
            c5 = f32x4_add(c5, f32x4_mul(a, f32x4_load(k + 2 * panel + 4)));
            c6 = f32x4_add(c6, f32x4_mul(a, f32x4_load(k + 3 * panel)));
            c7 = f32x4_add(c7, f32x4_mul(a, f32x4_load(k + 3 * panel + 4)));
        }
        float *pt = p + 32 * t;
        store_transposed(pt, 4, c0, zero, zero, zero);
        store_transposed(pt + 16, 4, c1, zero, zero, zero);
        store_transposed(pt + 32, 4, c2, zero, zero, zero);
        store_transposed(pt + 48, 4, c3, zero, zero, zero);
        store_transposed(pt + 64, 4, c4, zero, zero, zero);
        store_transposed(pt + 80, 4, c5, zero, zero, zero);
        store_transposed(pt + 96, 4, c6, zero, zero, zero);
        store_transposed(pt + 112, 4, c7, zero, zero, zero);
    }
    for (; t < tiles; t++) {
        const float *q = qt, *k = kt + t * panel;
        f32x4 c0 = zero, c1 = zero;
        for (const float *end = k + panel; k < end; k += 8, q += 4) {
            f32x4 a = f32x4_splat(q[0]);
            c0 = f32x4_add(c0, f32x4_mul(a, f32x4_load(k)));
            c1 = f32x4_add(c1, f32x4_mul(a, f32x4_load(k + 4)));
        }
        store_transposed(p + 32 * t, 4, c0, zero, zero, zero);
        store_transposed(p + 32 * t + 16, 4, c1, zero, zero, zero);
    }
}

// Online softmax over one key block for the 4 rows of a group (one per lane).
// p: [count, 4]: scores in log2 units, masked ones -inf; they become p = 2^(s - m_new).
// m, l: [4] running max and sum, updated. alpha: [4] receives 2^(m_old - m_new), the factor the
// rows' earlier output must be scaled by.
static void online_softmax_4(float *p, int count, float *m, float *l, float *alpha) {
    f32x4 m_old = f32x4_load(m), m_new = m_old;
    // pmax keeps m_new where a score is NaN; such a row still turns NaN through 2^(NaN - m) below.
    for (int j = 0; j < count; j++) m_new = f32x4_pmax(m_new, f32x4_load(p + 4 * j));
    // A row that has seen only -inf so far takes exponents relative to -FLT_MAX: p = 0 and
    // alpha = 0 instead of the NaN of -inf - -inf. Finite and +inf maxima pass unchanged.
    f32x4 m_use = f32x4_pmax(m_new, f32x4_splat(-FLT_MAX));
    f32x4 scale = f32x4_exp2(f32x4_sub(m_old, m_use));
    f32x4 sum = f32x4_splat(0.0f);
    for (int j = 0; j < count; j++) {
        f32x4 e = f32x4_exp2(f32x4_sub(f32x4_load(p + 4 * j), m_use));
        f32x4_store(p + 4 * j, e);
        sum = f32x4_add(sum, e);
    }
    f32x4_store(l, f32x4_add(f32x4_mul(f32x4_load(l), scale), sum));
    f32x4_store(m, m_new);
    f32x4_store(alpha, scale);
}

// softcap * tanh(s / softcap) on 4 scores (log2 units: cap = softcap * log2 e, inv_cap = 1 / cap);
// -inf (a hidden key) stays -inf, NaN stays NaN, +inf becomes cap.
// tanh is Eigen's rational approximation (odd degree 13 over even degree 6) on x clamped to
// [-7.905, 7.905], where it reaches 1 in float: within 4e-7 of tanh (relative) everywhere; x itself
// below |x| 0.0004.
static inline f32x4 softcap_4(f32x4 s, f32x4 cap, f32x4 inv_cap) {
    const f32x4 limit = f32x4_splat(7.90531110763549805f);
    f32x4 x = f32x4_mul(s, inv_cap);
    // pmax / pmin keep a NaN x.
    f32x4 c = f32x4_pmin(f32x4_pmax(x, f32x4_splat(-7.90531110763549805f)), limit);
    f32x4 x2 = f32x4_mul(c, c);
    f32x4 num = f32x4_splat(-2.76076847742355e-16f);
    num = f32x4_add(f32x4_mul(num, x2), f32x4_splat(2.00018790482477e-13f));
    num = f32x4_add(f32x4_mul(num, x2), f32x4_splat(-8.60467152213735e-11f));
    num = f32x4_add(f32x4_mul(num, x2), f32x4_splat(5.12229709037114e-08f));
    num = f32x4_add(f32x4_mul(num, x2), f32x4_splat(1.48572235717979e-05f));
    num = f32x4_add(f32x4_mul(num, x2), f32x4_splat(6.37261928875436e-04f));
    num = f32x4_add(f32x4_mul(num, x2), f32x4_splat(4.89352455891786e-03f));
    f32x4 den = f32x4_splat(1.19825839466702e-06f);
    den = f32x4_add(f32x4_mul(den, x2), f32x4_splat(1.18534705686654e-04f));
    den = f32x4_add(f32x4_mul(den, x2), f32x4_splat(2.26843463243900e-03f));
    den = f32x4_add(f32x4_mul(den, x2), f32x4_splat(4.89352518554385e-03f));
    f32x4 t = f32x4_div(f32x4_mul(c, num), den);
    t = f32x4_select(f32x4_lt(f32x4_abs(x), f32x4_splat(0.0004f)), x, t);
    return f32x4_select(f32x4_eq(s, f32x4_splat(-INFINITY)), s, f32x4_mul(cap, t));
}

// softcap_4 on the n scores of p.
static void softcap_scores(float *p, int n, float cap, float inv_cap) {
    f32x4 cap4 = f32x4_splat(cap), inv4 = f32x4_splat(inv_cap);
    int i = 0;
    for (; i + 4 <= n; i += 4) f32x4_store(p + i, softcap_4(f32x4_load(p + i), cap4, inv4));
    if (i < n) {
        float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(tail, p + i, (size_t)(n - i) * sizeof(float));
        f32x4_store(tail, softcap_4(f32x4_load(tail), cap4, inv4));
        memcpy(p + i, tail, (size_t)(n - i) * sizeof(float));
    }
}

// One key for row r of add_values_4x8: c_r0:c_r1 += p[j][r] * v[j] when row r takes key j.
#define ADD_ROW_KEY(r, c0, c1)                                       \
    if (j < row_end[r] && (!seen || seen[4 * j + (r)])) {            \
        c0 = f32x4_add(c0, f32x4_mul(f32x4_splat(pj[r]), v0));       \
        c1 = f32x4_add(c1, f32x4_mul(f32x4_splat(pj[r]), v1));       \
    }

// o[r] = alpha[r] * o[r] + sum_j p[j][r] * v[j] for the 4 rows of a group, in chunks of 8 columns
// whose 8 accumulators stay in registers over the keys.
// o: [4, padded_dim]; p: [KEY_BLOCK, 4]; v: key j's row at v + j * ldv, padded_dim floats.
// All 4 rows take keys [lead, all); of the keys before lead and from all on, row r takes key j
// when j < row_end[r] and (seen NULL, or with a mask or a window) seen[j][r] != 0. lead is 0
// unless seen is given.
static void add_values_4x8(float *o, int padded_dim, const float *alpha, const float *p, const float *v, size_t ldv,
                           int lead, int all, const int *row_end, const uint8_t *seen) {
    size_t ldo = (size_t)padded_dim;
    float *o0 = o, *o1 = o + ldo, *o2 = o + 2 * ldo, *o3 = o + 3 * ldo;
    int end = row_end[0];
    for (int r = 1; r < 4; r++) end = row_end[r] > end ? row_end[r] : end;
    f32x4 a0 = f32x4_splat(alpha[0]), a1 = f32x4_splat(alpha[1]);
    f32x4 a2 = f32x4_splat(alpha[2]), a3 = f32x4_splat(alpha[3]);
    for (int c = 0; c < padded_dim; c += 8) {
        f32x4 c00 = f32x4_mul(f32x4_load(o0 + c), a0), c01 = f32x4_mul(f32x4_load(o0 + c + 4), a0);
        f32x4 c10 = f32x4_mul(f32x4_load(o1 + c), a1), c11 = f32x4_mul(f32x4_load(o1 + c + 4), a1);
        f32x4 c20 = f32x4_mul(f32x4_load(o2 + c), a2), c21 = f32x4_mul(f32x4_load(o2 + c + 4), a2);
        f32x4 c30 = f32x4_mul(f32x4_load(o3 + c), a3), c31 = f32x4_mul(f32x4_load(o3 + c + 4), a3);
        const float *pj = p, *vj = v + c;
        int j = 0;
        // The first keys of a window whose rows start at different keys: each row takes its own.
        for (; j < lead; j++, pj += 4, vj += ldv) {
            f32x4 v0 = f32x4_load(vj), v1 = f32x4_load(vj + 4);
            ADD_ROW_KEY(0, c00, c01)
            ADD_ROW_KEY(1, c10, c11)
            ADD_ROW_KEY(2, c20, c21)
            ADD_ROW_KEY(3, c30, c31)
        }
        for (const float *p_end = p + 4 * all; pj < p_end; pj += 4, vj += ldv) {
            f32x4 v0 = f32x4_load(vj), v1 = f32x4_load(vj + 4);
            f32x4 w = f32x4_splat(pj[0]);
            c00 = f32x4_add(c00, f32x4_mul(w, v0));
            c01 = f32x4_add(c01, f32x4_mul(w, v1));
            w = f32x4_splat(pj[1]);
            c10 = f32x4_add(c10, f32x4_mul(w, v0));
            c11 = f32x4_add(c11, f32x4_mul(w, v1));
            w = f32x4_splat(pj[2]);
            c20 = f32x4_add(c20, f32x4_mul(w, v0));
            c21 = f32x4_add(c21, f32x4_mul(w, v1));
            w = f32x4_splat(pj[3]);
            c30 = f32x4_add(c30, f32x4_mul(w, v0));
            c31 = f32x4_add(c31, f32x4_mul(w, v1));
        }
        // The last few keys near the causal diagonal, and those past a key the mask hides: only
        // the rows that see key j take it. Their p is 0 for the others, but 0 * (a NaN or inf in
        // v) would still be NaN.
        for (j = all > lead ? all : lead; j < end; j++, pj += 4, vj += ldv) {
            f32x4 v0 = f32x4_load(vj), v1 = f32x4_load(vj + 4);
            ADD_ROW_KEY(0, c00, c01)
            ADD_ROW_KEY(1, c10, c11)
            ADD_ROW_KEY(2, c20, c21)
            ADD_ROW_KEY(3, c30, c31)
        }
        f32x4_store(o0 + c, c00);
        f32x4_store(o0 + c + 4, c01);
        f32x4_store(o1 + c, c10);
        f32x4_store(o1 + c + 4, c11);
        f32x4_store(o2 + c, c20);
        f32x4_store(o2 + c + 4, c21);
        f32x4_store(o3 + c, c30);
        f32x4_store(o3 + c + 4, c31);
    }
}

// One key of add_values_1x8's 32-column loop, for the keys only some rows take.
#define ADD_KEY_32(pj, vj)                                             \
    {                                                                  \
        f32x4 w = f32x4_splat((pj)[0]);                                \
        c0 = f32x4_add(c0, f32x4_mul(w, f32x4_load(vj)));              \
        c1 = f32x4_add(c1, f32x4_mul(w, f32x4_load((vj) + 4)));        \
        c2 = f32x4_add(c2, f32x4_mul(w, f32x4_load((vj) + 8)));        \
        c3 = f32x4_add(c3, f32x4_mul(w, f32x4_load((vj) + 12)));       \
        c4 = f32x4_add(c4, f32x4_mul(w, f32x4_load((vj) + 16)));       \
        c5 = f32x4_add(c5, f32x4_mul(w, f32x4_load((vj) + 20)));       \
        c6 = f32x4_add(c6, f32x4_mul(w, f32x4_load((vj) + 24)));       \
        c7 = f32x4_add(c7, f32x4_mul(w, f32x4_load((vj) + 28)));       \
    }

// o[0] = alpha[0] * o[0] + sum_j p[j][0] * v[j]: add_values_4x8 for a group whose only real row
// is row 0: it takes keys [lead, all), and of those before lead and in [all, row_end[0]) the ones
// with seen[j][0] != 0 (seen is given whenever lead > 0 or all < row_end[0]). 32 columns at a
// time where it can, so that 8 independent sums keep the adds busy; each column sums over the
// keys in the same order as in add_values_4x8.
static void add_values_1x8(float *o, int padded_dim, const float *alpha, const float *p, const float *v, size_t ldv,
                           int lead, int all, const int *row_end, const uint8_t *seen) {
    f32x4 a0 = f32x4_splat(alpha[0]);
    if (all < lead) all = lead;
    const float *p_lead = p + 4 * lead, *p_all = p + 4 * all, *p_end = p + 4 * row_end[0];
    int c = 0;
    for (; c + 32 <= padded_dim; c += 32) {
        f32x4 c0 = f32x4_mul(f32x4_load(o + c), a0), c1 = f32x4_mul(f32x4_load(o + c + 4), a0);
        f32x4 c2 = f32x4_mul(f32x4_load(o + c + 8), a0), c3 = f32x4_mul(f32x4_load(o + c + 12), a0);
        f32x4 c4 = f32x4_mul(f32x4_load(o + c + 16), a0), c5 = f32x4_mul(f32x4_load(o + c + 20), a0);
        f32x4 c6 = f32x4_mul(f32x4_load(o + c + 24), a0), c7 = f32x4_mul(f32x4_load(o + c + 28), a0);
        const float *vj = v + c, *pj = p;
        for (; pj < p_lead; pj += 4, vj += ldv) {
            if (seen[pj - p]) ADD_KEY_32(pj, vj)
        }
        for (; pj < p_all; pj += 4, vj += ldv) ADD_KEY_32(pj, vj)
        // Past `all` (only with a mask or a window), a key the row does not see stays out:
        // 0 * (a NaN or inf in v) is NaN.
        for (; pj < p_end; pj += 4, vj += ldv) {
            if (seen[pj - p]) ADD_KEY_32(pj, vj)
        }
        f32x4_store(o + c, c0);
        f32x4_store(o + c + 4, c1);
        f32x4_store(o + c + 8, c2);
        f32x4_store(o + c + 12, c3);
        f32x4_store(o + c + 16, c4);
        f32x4_store(o + c + 20, c5);
        f32x4_store(o + c + 24, c6);
        f32x4_store(o + c + 28, c7);
    }
    for (; c < padded_dim; c += 8) {
        f32x4 c0 = f32x4_mul(f32x4_load(o + c), a0), c1 = f32x4_mul(f32x4_load(o + c + 4), a0);
        const float *vj = v + c, *pj = p;
        for (; pj < p_lead; pj += 4, vj += ldv) {
            if (!seen[pj - p]) continue;
            f32x4 w = f32x4_splat(pj[0]);
            c0 = f32x4_add(c0, f32x4_mul(w, f32x4_load(vj)));
            c1 = f32x4_add(c1, f32x4_mul(w, f32x4_load(vj + 4)));
        }
        for (; pj < p_all; pj += 4, vj += ldv) {
            f32x4 w = f32x4_splat(pj[0]);
            c0 = f32x4_add(c0, f32x4_mul(w, f32x4_load(vj)));
            c1 = f32x4_add(c1, f32x4_mul(w, f32x4_load(vj + 4)));
        }
        for (; pj < p_end; pj += 4, vj += ldv) {
            if (!seen[pj - p]) continue;
            f32x4 w = f32x4_splat(pj[0]);
            c0 = f32x4_add(c0, f32x4_mul(w, f32x4_load(vj)));
            c1 = f32x4_add(c1, f32x4_mul(w, f32x4_load(vj + 4)));
        }
        f32x4_store(o + c, c0);
        f32x4_store(o + c + 4, c1);
    }
}

// A group's two micro-kernels, picked by how many of its 4 rows are real, and called through
// pointers as XNNPACK calls its micro-kernels. The pointers also keep each kernel a function of
// its own: emcc -O3 (binaryen) inlines every function with a single call site, and in the one
// huge function that results V8 runs short of registers and spills inside the inner loops
// (measured 15-20% slower).
typedef struct {
    void (*scores)(const float *qt, const float *kt, int head_dim, int tiles, float *p);
    void (*add_values)(float *o, int padded_dim, const float *alpha, const float *p, const float *v, size_t ldv,
                       int lead, int all, const int *row_end, const uint8_t *seen);
} group_kernels;

static const group_kernels four_rows = {scores_4x8, add_values_4x8};
// Decoding one token, or the last row when seq_q % 4 == 1: not 4x the work for one row.
static const group_kernels one_row = {scores_1x8, add_values_1x8};

// The bits of the keys 8t..8t+7 of a block that lie in [b, e) (block-relative): bit k for key 8t + k.
static unsigned range_bits(int t, int b, int e) {
    int lo = b - 8 * t, hi = e - 8 * t;
    lo = lo < 0 ? 0 : lo;
    hi = hi > 8 ? 8 : hi;
    return lo < hi ? (0xFFu >> (8 - (hi - lo))) << lo : 0u;
}


// Which keys of panel t (keys jb + 8t .. + 7) the mask leaves visible to the row whose mask starts
// at mrow / arow (NULL: no boolean / additive mask), among `bits` (those in the row's range).
// Whole panels with mask_k 1 are read 8 bytes (or 8 floats) at a time: all visible (bytes nonzero,
// additive terms no -inf) or all hidden in a few integer operations; the rest key by key.
// *clean is set when the panel's keys are all visible with additive terms all +-0 (nothing to apply).
static unsigned mask_bits(const attention_dims *a, const uint8_t *mrow, const float *arow, int t, unsigned bits,
                          int *clean) {
    *clean = 0;
    if (bits == 0xFFu && a->mask_k == 1) {
        // A whole panel in the row's range: its 8 keys exist.
        int visible = 1, hidden = 0;
        if (mrow) {
            uint64_t x;
            memcpy(&x, mrow + 8 * t, sizeof(x));
            if (x == 0) hidden = 1;
            else if ((x - ONES_8) & ~x & HIGHS_8) visible = 0;  // some byte is 0
        }
        if (arow && !hidden) {
            uint64_t w[4];
            memcpy(w, arow + 8 * t, sizeof(w));
            if (w[0] == MINUS_INFS_2 && w[1] == MINUS_INFS_2 && w[2] == MINUS_INFS_2 && w[3] == MINUS_INFS_2) {
                hidden = 1;
            } else if ((w[0] | w[1] | w[2] | w[3]) & MAGNITUDES_2) {
                visible = 0;  // not all +-0 (a causal additive mask's visible panels are): key by key
            }
        }
        if (hidden) return 0u;
        if (visible) {
            *clean = 1;
            return bits;
        }
    }
    for (unsigned rest = bits; rest; rest &= rest - 1) {
        int k = __builtin_ctz(rest);
        int64_t at = (int64_t)(8 * t + k) * a->mask_k;
        if ((mrow && !mrow[at]) || (arow && arow[at] == -INFINITY)) bits &= ~(1u << k);
    }
    return bits;
}

// mask_bits for a whole panel t of 4 rows at once (mask rows mrows[r] / arows[r], mask_k 1, the
// panel inside every row's range): 1 when every key is visible to every row with additive terms
// all +-0, 0 when every key is hidden from every row, -1 otherwise (then row by row).
static int panel_4(const uint8_t *const *mrows, const float *const *arows, int t) {
    int visible = 1, hidden = 0;
    if (mrows[0]) {
        uint64_t x[4], zeros = 0;
        for (int r = 0; r < 4; r++) {
            memcpy(&x[r], mrows[r] + 8 * t, sizeof(x[r]));
            zeros |= (x[r] - ONES_8) & ~x[r];
        }
        if ((x[0] | x[1] | x[2] | x[3]) == 0) hidden = 1;
        else if (zeros & HIGHS_8) visible = 0;
    }
    if (arows[0] && !hidden) {
        uint64_t w[16], any = 0;
        int infs = 1;
        for (int r = 0; r < 4; r++) memcpy(w + 4 * r, arows[r] + 8 * t, 4 * sizeof(w[0]));
        for (int i = 0; i < 16; i++) {
            any |= w[i];
            infs &= w[i] == MINUS_INFS_2;
        }
        if (infs) hidden = 1;
        else if (any & MAGNITUDES_2) visible = 0;
    }
    return hidden ? 0 : visible ? 1 : -1;
}

// One group of 4 query rows (i0..i0+3; rows past seq_q are zero padding, their results dropped)
// against keys [jb, je) (jb a multiple of 8, je - jb <= KEY_BLOCK): scores, mask, softcap, online
// softmax, P.V. qt: [head_dim, 4] the group's rows; kt: the packed keys; v: key j at v + j * ldv.
// p: [KEY_BLOCK, 4] scratch. o: [4, padded_dim], m, l: [4]: the group's state.
// weights: NULL, or this head's [seq_q, seq_k].
static void attend_group(const attention_dims *a, int i0, int jb, int je, const float *qt, const float *kt,
                         const float *v, size_t ldv, float *p, float *o, float *m, float *l, float *weights) {
    int d = a->head_dim;
    int count = je - jb;
    int tiles = (count + 7) / 8;
    int masked = a->mask || a->additive;
    int real_rows = a->seq_q - i0 < 4 ? a->seq_q - i0 : 4;

    // Row r sees the block's keys [row_begin[r], row_end[r]); the rest of its tiles become -inf.
    // All rows see [lead, all). With a mask, or when a row starts late (a window), vis[t][r] bit k
    // says whether row r sees key 8t + k, a hidden key's score becomes -inf, and `all` ends before
    // the first key hidden from a real row: add_values must leave such a key out of that row's sum,
    // not only weigh it 0 (0 * a NaN or inf in v is NaN).
    int row_begin[4], row_end[4];
    for (int r = 0; r < 4; r++) {
        int lo, hi;
        row_keys(a, i0 + r, &lo, &hi);
        int b = lo - jb, e = hi - jb;
        row_begin[r] = b < 0 ? 0 : b < count ? b : count;
        row_end[r] = e < 0 ? 0 : e < count ? e : count;
    }
    uint8_t vis[KEY_BLOCK / 8][4];
    // need[r]: row r has keys the mask hides in its range, or additive terms to add.
    int need[4] = {0, 0, 0, 0};
    if (masked) {
        // Pad rows (past seq_q) have no mask row: they see nothing (their results are dropped).
        const uint8_t *mrows[4] = {NULL, NULL, NULL, NULL};
        const float *arows[4] = {NULL, NULL, NULL, NULL};
        for (int r = 0; r < real_rows; r++) {
            int64_t at = (int64_t)(i0 + r) * a->mask_q + (int64_t)jb * a->mask_k;
            mrows[r] = a->mask ? a->mask + at : NULL;
            arows[r] = a->additive ? a->additive + at : NULL;
        }
        // Panels inside every row's range (4 real rows, mask_k 1) are classified 4 rows at once.
        int full_lo = 0, full_hi = 0;
        if (real_rows == 4 && a->mask_k == 1) {
            int b = row_begin[0], e = row_end[0];
            for (int r = 1; r < 4; r++) {
                b = row_begin[r] > b ? row_begin[r] : b;
                e = row_end[r] < e ? row_end[r] : e;
            }
            full_lo = (b + 7) / 8;
            full_hi = e / 8;
        }
        int first = tiles, last = -1;
        for (int t = 0; t < tiles; t++) {
            int state = t >= full_lo && t < full_hi ? panel_4(mrows, arows, t) : -1;
            if (state >= 0) {
                uint8_t bits = state ? 0xFFu : 0u;
                vis[t][0] = vis[t][1] = vis[t][2] = vis[t][3] = bits;
                if (!state) need[0] = need[1] = need[2] = need[3] = 1;
            } else {
                for (int r = 0; r < 4; r++) {
                    unsigned range = r < real_rows ? range_bits(t, row_begin[r], row_end[r]) : 0u, bits = 0u;
                    int clean = 1;
                    if (range) bits = mask_bits(a, mrows[r], arows[r], t, range, &clean);
                    if (bits != range || !clean) need[r] = 1;
                    vis[t][r] = (uint8_t)bits;
                }
            }
            if (vis[t][0] | vis[t][1] | vis[t][2] | vis[t][3]) {
                first = t < first ? t : first;
                last = t;
            }
        }
        // Panels the mask hides from every row at the ends of the block (a causal mask's upper
        // triangle, padded keys) are skipped, as a causal flag skips them: their -inf scores would
        // leave m, l and o exactly as they are. (Not with weights, whose scores wait in place.)
        if (!weights && (first > 0 || last < tiles - 1)) {
            if (last < 0) return;
            if (first > 0) memmove(vis, vis[first], (size_t)(last + 1 - first) * sizeof(vis[0]));
            jb += 8 * first;
            count = (last + 1 - first) * 8 < je - jb ? (last + 1 - first) * 8 : je - jb;
            tiles = last + 1 - first;
            for (int r = 0; r < 4; r++) {
                int b = row_begin[r] - 8 * first, e = row_end[r] - 8 * first;
                row_begin[r] = b < 0 ? 0 : b < count ? b : count;
                row_end[r] = e < 0 ? 0 : e < count ? e : count;
            }
        }
    }

    const group_kernels *kernels = i0 + 1 == a->seq_q ? &one_row : &four_rows;
    kernels->scores(qt, kt + (size_t)jb * d, d, tiles, p);

    int lead = 0, all = count;
    for (int r = 0; r < 4; r++) {
        int b = row_begin[r], e = row_end[r];
        if (e < all) all = e;
        if (b > lead) lead = b;
        for (int j = 0; j < b; j++) p[4 * j + r] = -INFINITY;
        for (int j = e; j < tiles * 8; j++) p[4 * j + r] = -INFINITY;
    }
    // A row whose window starts after the block's first key must not add the keys before its start,
    // not even with weight 0 (0 * NaN): that needs the seen table, also when lead is clamped below.
    int late_start = lead > 0;
    if (lead > all) lead = all;
    int use_seen = masked || late_start;
    uint8_t seen[4 * KEY_BLOCK];
    if (use_seen) {
        if (masked) {
            const float log2e = (float)LOG2E;
            for (int r = 0; r < real_rows; r++) {
                if (!need[r]) continue;
                const float *arow =
                    a->additive ? a->additive + (int64_t)(i0 + r) * a->mask_q + (int64_t)jb * a->mask_k : NULL;
                for (int t = 0; t < tiles; t++) {
                    unsigned bits = vis[t][r];
                    // Hidden keys in the row's range become -inf.
                    for (unsigned hide = range_bits(t, row_begin[r], row_end[r]) & ~bits; hide; hide &= hide - 1) {
                        p[4 * (8 * t + __builtin_ctz(hide)) + r] = -INFINITY;
                    }
                    if (!arow || !bits) continue;
                    if (bits == 0xFFu && a->mask_k == 1) {
                        uint64_t w[4];
                        memcpy(w, arow + 8 * t, sizeof(w));
                        if (!((w[0] | w[1] | w[2] | w[3]) & MAGNITUDES_2)) continue;  // all +-0
                    }
                    for (; bits; bits &= bits - 1) {
                        int j = 8 * t + __builtin_ctz(bits);
                        p[4 * j + r] += log2e * arow[(int64_t)j * a->mask_k];
                    }
                }
            }
            // Pad rows see nothing in their range.
            for (int r = real_rows; r < 4; r++) {
                for (int j = row_begin[r]; j < row_end[r]; j++) p[4 * j + r] = -INFINITY;
            }
        } else {
            for (int r = 0; r < 4; r++) {
                for (int t = 0; t < tiles; t++) {
                    vis[t][r] = (uint8_t)(r < real_rows ? range_bits(t, row_begin[r], row_end[r]) : 0u);
                }
            }
        }
        // `all`: the first key past lead hidden from a real row.
        for (int j = lead; j < all;) {
            int t = j / 8;
            unsigned every = 0xFFu;
            for (int r = 0; r < real_rows; r++) every &= vis[t][r];
            unsigned miss = ~every & (0xFFu << (j % 8)) & 0xFFu;
            if (miss) {
                int first_miss = 8 * t + __builtin_ctz(miss);
                if (first_miss < all) all = first_miss;
                break;
            }
            j = 8 * t + 8;
        }
        // seen[j][r], for the keys add_values asks about: before lead, and from all on.
        for (int j = 0; j < tiles * 8; j++) {
            if (j == lead && all > lead) j = all;
            if (j >= tiles * 8) break;
            for (int r = 0; r < 4; r++) seen[4 * j + r] = (uint8_t)((vis[j >> 3][r] >> (j & 7)) & 1u);
        }
    }
    if (a->softcap != 0.0f) softcap_scores(p, tiles * 32, a->softcap, a->inv_softcap);
    if (weights) {
        // The scores (log2 units) wait in weights until the row's final max and sum are known.
        int width = a->seq_k - jb < tiles * 8 ? a->seq_k - jb : tiles * 8;
        for (int r = 0; r < 4 && i0 + r < a->seq_q; r++) {
            float *w = weights + (size_t)(i0 + r) * a->seq_k + jb;
            for (int j = 0; j < width; j++) w[j] = p[4 * j + r];
        }
    }

    float alpha[4];
    online_softmax_4(p, tiles * 8, m, l, alpha);
    kernels->add_values(o, a->padded_dim, alpha, p, v + (size_t)jb * ldv, ldv, lead, all, row_end,
                        use_seen ? seen : NULL);
}

// Whether the mask hides key j from row i (the boolean mask's 0, or the additive mask's -inf).
static int mask_hides(const attention_dims *a, int i, int j) {
    int64_t at = (int64_t)i * a->mask_q + (int64_t)j * a->mask_k;
    return (a->mask && !a->mask[at]) || (a->additive && a->additive[at] == -INFINITY);
}

// Divides a finished row by its sum into out, and turns its scores in weights (if any) into
// the softmax. o: [v_dim] (padded); m, l: the row's max and sum; dst: [v_dim];
// w: NULL or the row's [seq_k] weights.
static void finish_row(const attention_dims *a, int i, const float *o, float m, float l, float *dst, float *w) {
    int d = a->v_dim;
    int lo, hi;
    row_keys(a, i, &lo, &hi);
    if (l == 0.0f) {
        // No key visible, or only -inf scores: zeros, not 0/0.
        memset(dst, 0, (size_t)d * sizeof(float));
        if (w) memset(w, 0, (size_t)a->seq_k * sizeof(float));
        return;
    }
    float inv = 1.0f / l;
    f32x4 inv4 = f32x4_splat(inv);
    int f = 0;
    for (; f + 4 <= d; f += 4) f32x4_store(dst + f, f32x4_mul(f32x4_load(o + f), inv4));
    for (; f < d; f++) dst[f] = o[f] * inv;
    if (!w) return;
    f32x4 shift = f32x4_splat(m);
    int j = lo;
    for (; j + 4 <= hi; j += 4) {
        f32x4_store(w + j, f32x4_mul(f32x4_exp2(f32x4_sub(f32x4_load(w + j), shift)), inv4));
    }
    if (j < hi) {
        // The last 1..3 visible weights, through a zero-padded vector.
        float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(tail, w + j, (size_t)(hi - j) * sizeof(float));
        f32x4_store(tail, f32x4_mul(f32x4_exp2(f32x4_sub(f32x4_load(tail), shift)), inv4));
        memcpy(w + j, tail, (size_t)(hi - j) * sizeof(float));
    }
    if (a->mask || a->additive) {
        // A masked weight is 2^-inf / l: 0, but NaN in a row whose l is NaN. It must be exactly 0.
        for (j = lo; j < hi; j++) {
            if (mask_hides(a, i, j)) w[j] = 0.0f;
        }
    }
    memset(w, 0, (size_t)lo * sizeof(float));
    memset(w + hi, 0, (size_t)(a->seq_k - hi) * sizeof(float));
}

// The scores of one head at stage RAW, MASKED or SOFTCAPPED (attention.h), in natural units, for
// every (i, j): a pass of its own over all key blocks (the attention itself skips what it can).
// qt, kt: packed (kt holds all seq_k keys); p: [KEY_BLOCK, 4] scratch; scores: [seq_q, seq_k].
static void write_scores(const attention_dims *a, int stage, const float *qt, const float *kt, float *p,
                         float *scores) {
    int d = a->head_dim;
    const float log2e = (float)LOG2E, ln2 = (float)LN2;
    for (int i0 = 0; i0 < a->seq_q; i0 += 4) {
        for (int j0 = 0; j0 < a->seq_k; j0 += KEY_BLOCK) {
            int count = a->seq_k - j0 < KEY_BLOCK ? a->seq_k - j0 : KEY_BLOCK;
            int tiles = (count + 7) / 8;
            scores_4x8(qt + (size_t)i0 * d, kt + (size_t)j0 * d, d, tiles, p);
            for (int r = 0; r < 4 && i0 + r < a->seq_q; r++) {
                int i = i0 + r, lo, hi;
                row_keys(a, i, &lo, &hi);
                float *dst = scores + (size_t)i * a->seq_k + j0;
                for (int j = 0; j < count; j++) {
                    float x = p[4 * j + r];
                    if (stage >= ATTENTION_SCORES_MASKED) {
                        int jj = j0 + j;
                        if (jj < lo || jj >= hi || mask_hides(a, i, jj)) {
                            x = -INFINITY;
                        } else if (a->additive) {
                            x += log2e * a->additive[(int64_t)i * a->mask_q + (int64_t)jj * a->mask_k];
                        }
                    }
                    if (stage >= ATTENTION_SCORES_SOFTCAPPED && a->softcap != 0.0f) {
                        softcap_scores(&x, 1, a->softcap, a->inv_softcap);
                    }
                    dst[j] = x * ln2;
                }
            }
        }
    }
}

// Attention of one query head against its kv head.
// qt: the packed queries; kt: the packed keys; v: key j at v + j * ldv.
// out: row i at element out_base + i * out_stride of a tensor of a->dtype; weights: NULL or the head's [seq_q, seq_k].
static void attend_head(const attention_dims *a, const float *qt, const float *kt, const float *v, size_t ldv,
                        void *out, size_t out_base, size_t out_stride, float *weights, attention_scratch *w) {
    int pd = a->padded_dim;
    for (int qb = 0; qb < a->seq_q; qb += QUERY_BLOCK) {
        int rows = a->seq_q - qb < QUERY_BLOCK ? a->seq_q - qb : QUERY_BLOCK;
        int groups = (rows + 3) / 4;
        for (int r = 0; r < 4 * groups; r++) {
            w->m[r] = -INFINITY;
            w->l[r] = 0.0f;
        }
        memset(w->o, 0, (size_t)4 * groups * pd * sizeof(float));
        // Key blocks outside, groups inside: a block of kt and v is reused by every group while in
        // cache. The blocks run over the keys some row of the query block sees (from a multiple of
        // KEY_BLOCK, so that a row gets the same blocks whatever rows it is computed with); a group
        // takes only the panels of 8 keys its rows see.
        int block_lo, block_hi;
        rows_keys(a, qb, qb + rows - 1, &block_lo, &block_hi);
        for (int j0 = block_lo / KEY_BLOCK * KEY_BLOCK; j0 < block_hi; j0 += KEY_BLOCK) {
            for (int g = 0; g < groups; g++) {
                int i0 = qb + 4 * g, lo, hi;
                rows_keys(a, i0, i0 + 3, &lo, &hi);
                int jb = lo / 8 * 8 > j0 ? lo / 8 * 8 : j0;
                int je = hi < j0 + KEY_BLOCK ? hi : j0 + KEY_BLOCK;
                if (jb >= je) continue;
                attend_group(a, i0, jb, je, qt + (size_t)i0 * a->head_dim, kt, v, ldv, w->p,
                             w->o + (size_t)4 * g * pd, w->m + 4 * g, w->l + 4 * g, weights);
            }
        }
        for (int r = 0; r < rows; r++) {
            int i = qb + r;
            float *w_row = weights ? weights + (size_t)i * a->seq_k : NULL;
            if (a->dtype == ATTENTION_DTYPE_FLOAT32) {
                finish_row(a, i, w->o + (size_t)r * pd, w->m[r], w->l[r], (float *)out + out_base + i * out_stride,
                           w_row);
            } else {
                // In float32, then rounded into the 16-bit output.
                finish_row(a, i, w->o + (size_t)r * pd, w->m[r], w->l[r], w->row, w_row);
                store_row(a->dtype, out, out_base + i * out_stride, a->v_dim, w->row);
            }
        }
    }
}

// The most floats one array may hold: its bytes must fit in size_t.
#define MAX_FLOATS ((uint64_t)(SIZE_MAX / sizeof(float)))

// a * b * c * d <= MAX_FLOATS; factors >= 0. Divides instead of multiplying: the product of four
// int sizes can wrap even uint64.
static int fits(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    if (a == 0 || b == 0 || c == 0 || d == 0) return 1;
    return a <= MAX_FLOATS / b && a * b <= MAX_FLOATS / c && a * b * c <= MAX_FLOATS / d;
}

attention_options attention_options_defaults(void) {
    attention_options o = ATTENTION_OPTIONS_DEFAULTS;
    return o;
}

int rope_attention_forward(const float *q, const float *k, const float *v, float *out, float *weights,
                           int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim,
                           int layout, int causal, float scale, rope_embedding *rope, int offset) {
    return rope_attention_forward_masked(q, k, v, out, weights, batch, heads, kv_heads, seq_q, seq_k, head_dim,
                                         layout, causal, scale, rope, offset, NULL);
}

int rope_attention_forward_masked(const float *q, const float *k, const float *v, float *out, float *weights,
                                  int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim,
                                  int layout, int causal, float scale, rope_embedding *rope, int offset,
                                  const attention_mask *mask) {
    // The boolean mask only (an additive one is for rope_attention_forward_options).
    if (mask && !mask->data) return ROPE_ERR_NULL;
    attention_mask boolean_mask = {NULL, 0, 0, 0, 0, NULL};
    if (mask) {
        boolean_mask = *mask;
        boolean_mask.additive = NULL;
    }
    attention_options o = ATTENTION_OPTIONS_DEFAULTS;
    o.causal = causal ? ATTENTION_CAUSAL_BOTTOM_RIGHT : ATTENTION_CAUSAL_NONE;
    o.mask = mask ? &boolean_mask : NULL;
    return rope_attention_forward_options(q, k, v, out, weights, batch, heads, kv_heads, seq_q, seq_k, head_dim, layout,
                                          scale, rope, offset, &o);
}

int rope_attention_forward_ex(const float *q, const float *k, const float *v, float *out, float *weights,
                              int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim, int layout,
                              float scale, rope_embedding *rope, int offset, int causal, int window_left,
                              int window_right, int v_head_dim, float softcap, const int32_t *kv_lengths,
                              const uint8_t *mask_data, const float *mask_additive, int mask_stride_b,
                              int mask_stride_h, int mask_stride_q, int mask_stride_k, float *scores,
                              int scores_stage) {
    attention_mask mask = {mask_data, mask_stride_b, mask_stride_h, mask_stride_q, mask_stride_k, mask_additive};
    attention_options o = {causal, window_left, window_right, v_head_dim, softcap, kv_lengths,
                           mask_data || mask_additive ? &mask : NULL, scores, scores_stage};
    return rope_attention_forward_options(q, k, v, out, weights, batch, heads, kv_heads, seq_q, seq_k, head_dim, layout,
                                          scale, rope, offset, &o);
}

int rope_attention_forward_options(const float *q, const float *k, const float *v, float *out, float *weights,
                                   int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim,
                                   int layout, float scale, rope_embedding *rope, int offset,
                                   const attention_options *options) {
    return rope_attention_forward_typed(q, k, v, out, weights, batch, heads, kv_heads, seq_q, seq_k, head_dim, layout,
                                        scale, rope, offset, ATTENTION_DTYPE_FLOAT32, options);
}

int rope_attention_forward_typed_ex(const void *q, const void *k, const void *v, void *out, float *weights, int batch,
                                    int heads, int kv_heads, int seq_q, int seq_k, int head_dim, int layout,
                                    float scale, rope_embedding *rope, int offset, int causal, int window_left,
                                    int window_right, int v_head_dim, float softcap, const int32_t *kv_lengths,
                                    const uint8_t *mask_data, const float *mask_additive, int mask_stride_b,
                                    int mask_stride_h, int mask_stride_q, int mask_stride_k, float *scores,
                                    int scores_stage, int dtype) {
    attention_mask mask = {mask_data, mask_stride_b, mask_stride_h, mask_stride_q, mask_stride_k, mask_additive};
    attention_options o = {causal, window_left, window_right, v_head_dim, softcap, kv_lengths,
                           mask_data || mask_additive ? &mask : NULL, scores, scores_stage};
    return rope_attention_forward_typed(q, k, v, out, weights, batch, heads, kv_heads, seq_q, seq_k, head_dim, layout,
                                        scale, rope, offset, dtype, &o);
}

int rope_attention_forward_typed(const void *q, const void *k, const void *v, void *out, float *weights, int batch,
                                 int heads, int kv_heads, int seq_q, int seq_k, int head_dim, int layout, float scale,
                                 rope_embedding *rope, int offset, int dtype, const attention_options *options) {
    attention_options opt = options ? *options : attention_options_defaults();
    const attention_mask *mask = opt.mask;
    if (!q || !k || !v || !out) return ROPE_ERR_NULL;
    if (mask && !mask->data && !mask->additive) return ROPE_ERR_NULL;
    if (mask && (mask->stride_b < 0 || mask->stride_h < 0 || mask->stride_q < 0 || mask->stride_k < 0)) {
        return ROPE_ERR_SHAPE;
    }
    if (batch < 1 || heads < 1 || kv_heads < 1 || head_dim < 1 || seq_q < 0 || seq_k < 0) return ROPE_ERR_SHAPE;
    if (opt.v_head_dim < 0) return ROPE_ERR_SHAPE;
    int v_dim = opt.v_head_dim ? opt.v_head_dim : head_dim;
    // Sizes rounded up to a multiple of 8 (panels, chunks) must still be ints.
    if (head_dim > INT32_MAX - 7 || v_dim > INT32_MAX - 7 || seq_q > INT32_MAX - 7 || seq_k > INT32_MAX - 7) {
        return ROPE_ERR_SHAPE;
    }
    if (heads % kv_heads != 0) return ROPE_ERR_HEADS;
    if (layout < ROPE_LAYOUT_SBHD || layout > ROPE_LAYOUT_BHSD) return ROPE_ERR_LAYOUT;
    float q_factor = (float)(scale * LOG2E);
    if (!isfinite(q_factor)) return ROPE_ERR_SCALE;
    if (rope && rope->dim > head_dim) return ROPE_ERR_DIM;
    if (opt.causal < ATTENTION_CAUSAL_NONE || opt.causal > ATTENTION_CAUSAL_TOP_LEFT) return ROPE_ERR_VALUE;
    if (dtype < ATTENTION_DTYPE_FLOAT32 || dtype > ATTENTION_DTYPE_BFLOAT16) return ROPE_ERR_VALUE;
    if (opt.window_left < -1 || opt.window_right < -1) return ROPE_ERR_VALUE;
    float softcap = (float)(opt.softcap * LOG2E);
    if (!(opt.softcap >= 0.0f) || !isfinite(softcap)) return ROPE_ERR_VALUE;
    if (opt.scores && (opt.scores_stage < ATTENTION_SCORES_RAW || opt.scores_stage > ATTENTION_SCORES_SOFTMAX)) {
        return ROPE_ERR_VALUE;
    }
    if (opt.kv_lengths) {
        for (int b = 0; b < batch; b++) {
            if (opt.kv_lengths[b] < 0 || opt.kv_lengths[b] > seq_k) return ROPE_ERR_SHAPE;
        }
    }
    // Every tensor, and the scratch below (its sizes bounded by the same for all), must be addressable.
    uint64_t padded_dim = ((uint64_t)v_dim + 7) / 8 * 8, padded_qk = ((uint64_t)head_dim + 7) / 8 * 8;
    uint64_t widest = padded_dim > padded_qk ? padded_dim : padded_qk;
    uint64_t q_rows = ((uint64_t)seq_q + 3) / 4 * 4, k_rows = ((uint64_t)seq_k + 7) / 8 * 8;
    if (!fits(batch, heads, seq_q, head_dim) || !fits(batch, kv_heads, seq_k, head_dim) ||
        !fits(batch, kv_heads, seq_k, v_dim) || !fits(batch, heads, seq_q, v_dim) ||
        ((weights || opt.scores) && !fits(batch, heads, seq_q, seq_k)) ||
        !fits(2 * q_rows + 3 * k_rows + QUERY_BLOCK + 3 + 4 * KEY_BLOCK, widest, 1, 1)) {
        return ROPE_ERR_SHAPE;
    }
    // RoPE positions: k at offset .. offset + seq_k - 1, q from offset + seq_k - seq_q.
    int64_t q_position = (int64_t)offset + seq_k - seq_q;
    if (rope && seq_q > 0 && seq_k > 0 && (q_position < INT32_MIN || (int64_t)offset + seq_k - 1 > INT32_MAX)) {
        return ROPE_ERR_POSITIONS;
    }
    if (seq_q == 0) return ROPE_OK;

    // The scores at SOFTMAX are the weights.
    float *scores = opt.scores;
    int stage = opt.scores_stage;
    if (scores && stage == ATTENTION_SCORES_SOFTMAX && !weights) {
        weights = scores;
        scores = NULL;
    }

    attention_dims a;
    memset(&a, 0, sizeof(a));
    a.seq_q = seq_q;
    a.seq_k = seq_k;
    a.head_dim = head_dim;
    a.v_dim = v_dim;
    a.padded_dim = (int)padded_dim;
    a.causal = opt.causal != ATTENTION_CAUSAL_NONE;
    a.diag = opt.causal == ATTENTION_CAUSAL_TOP_LEFT ? 0 : seq_k - seq_q;
    a.window_left = opt.window_left;
    a.window_right = opt.window_right;
    a.limit = seq_k;
    a.dtype = dtype;
    a.softcap = softcap;
    a.inv_softcap = softcap != 0.0f ? 1.0f / softcap : 0.0f;
    if (mask) {
        a.mask_q = mask->stride_q;
        a.mask_k = mask->stride_k;
    }
    if (seq_k == 0) {
        // No keys: every row sees nothing.
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                size_t base, stride;
                head_rows(layout, batch, heads, seq_q, v_dim, b, h, &base, &stride);
                size_t size = dtype == ATTENTION_DTYPE_FLOAT32 ? sizeof(float) : sizeof(uint16_t);
                for (int i = 0; i < seq_q; i++) memset((char *)out + (base + i * stride) * size, 0, (size_t)v_dim * size);
            }
        }
        return ROPE_OK;
    }

    // One allocation for all scratch.
    size_t qt_floats = (size_t)q_rows * head_dim;
    size_t kt_floats = (size_t)k_rows * head_dim;
    // 16-bit tensors are converted to float32 as they are gathered (rows, v) and packed.
    int half = dtype != ATTENTION_DTYPE_FLOAT32;
    size_t rows_floats = rope || half ? (size_t)(seq_q > seq_k ? seq_q : seq_k) * head_dim : 0;
    size_t v_floats = v_dim % 8 || half ? (size_t)seq_k * padded_dim : 0;
    size_t o_floats = (size_t)QUERY_BLOCK * padded_dim;
    size_t total = qt_floats + kt_floats + rows_floats + v_floats + o_floats + 4 * KEY_BLOCK + 2 * QUERY_BLOCK + padded_dim;
    float *block = malloc(total * sizeof(float));
    if (!block) return ROPE_ERR_NOMEM;
    // With a mask: each row's span of visible keys, so that the kernel skips what the mask hides at
    // the ends of a row (a causal mask's upper triangle, padded keys) as it skips causal keys.
    int *span = NULL;
    if (mask) {
        span = (uint64_t)seq_q <= SIZE_MAX / (2 * sizeof(int)) ? malloc((size_t)seq_q * 2 * sizeof(int)) : NULL;
        if (!span) {
            free(block);
            return ROPE_ERR_NOMEM;
        }
    }
    int64_t span_at = -1;
    attention_scratch w;
    w.qt = block;
    w.kt = w.qt + qt_floats;
    w.rows = rope || half ? w.kt + kt_floats : NULL;
    w.v = v_dim % 8 || half ? w.kt + kt_floats + rows_floats : NULL;
    w.o = w.kt + kt_floats + rows_floats + v_floats;
    w.p = w.o + o_floats;
    w.m = w.p + 4 * KEY_BLOCK;
    w.l = w.m + QUERY_BLOCK;
    w.row = w.l + QUERY_BLOCK;
    // Pad rows of the last query group stay 0 (finite scores, dropped results).
    memset(w.qt, 0, qt_floats * sizeof(float));

    int status = ROPE_OK;
    int group_size = heads / kv_heads;
    for (int b = 0; b < batch && status == ROPE_OK; b++) {
        a.limit = opt.kv_lengths ? opt.kv_lengths[b] : seq_k;
        // Bottom-right: the last query is at the last valid key (a padded KV cache's new tokens).
        a.diag = opt.causal == ATTENTION_CAUSAL_TOP_LEFT ? 0 : a.limit - seq_q;
        // The keys to prepare: the valid ones, or all of them for scores before the softmax (and
        // with RoPE, whose dynamic scalings depend on the longest position).
        int keys_used = scores || rope ? seq_k : a.limit;
        for (int kvh = 0; kvh < kv_heads && status == ROPE_OK; kvh++) {
            // Keys: rotated once for all the query heads that share them, then packed.
            size_t base, stride;
            head_rows(layout, batch, kv_heads, seq_k, head_dim, b, kvh, &base, &stride);
            const float *keys = half ? NULL : (const float *)k + base;
            size_t ldk = stride;
            if ((rope || half) && keys_used > 0) {
                for (int j = 0; j < keys_used; j++) load_row(dtype, k, base + j * stride, head_dim, w.rows + (size_t)j * head_dim);
                if (rope) {
                    status = rope_apply(rope, w.rows, w.rows, ROPE_LAYOUT_BHSD, 1, 1, keys_used, head_dim, offset, NULL,
                                        0, 0);
                    if (status != ROPE_OK) break;
                }
                keys = w.rows;
                ldk = (size_t)head_dim;
            }
            pack_keys(keys, ldk, keys_used, head_dim, w.kt);

            // Values: read in place when rows are whole chunks of 8, else copied with zero padding.
            size_t v_base, v_stride;
            head_rows(layout, batch, kv_heads, seq_k, v_dim, b, kvh, &v_base, &v_stride);
            const float *values = half ? NULL : (const float *)v + v_base;
            size_t ldv = v_stride;
            if (w.v) {
                for (int j = 0; j < a.limit; j++) {
                    float *row = w.v + (size_t)j * padded_dim;
                    load_row(dtype, v, v_base + j * v_stride, v_dim, row);
                    memset(row + v_dim, 0, (size_t)(padded_dim - v_dim) * sizeof(float));
                }
                values = w.v;
                ldv = (size_t)padded_dim;
            }

            for (int h = kvh * group_size; h < (kvh + 1) * group_size; h++) {
                // Queries: rotated at their positions (one rope_apply for the head, so that scalings
                // that depend on the longest position see the same one as for k), scaled into log2
                // units, packed.
                size_t q_base, q_stride;
                head_rows(layout, batch, heads, seq_q, head_dim, b, h, &q_base, &q_stride);
                const float *queries = half ? NULL : (const float *)q + q_base;
                size_t ldq = q_stride;
                if (rope || half) {
                    for (int i = 0; i < seq_q; i++) load_row(dtype, q, q_base + i * q_stride, head_dim, w.rows + (size_t)i * head_dim);
                    if (rope) {
                        status = rope_apply(rope, w.rows, w.rows, ROPE_LAYOUT_BHSD, 1, 1, seq_q, head_dim,
                                            (int)q_position, NULL, 0, 0);
                    }
                    if (status != ROPE_OK) break;
                    queries = w.rows;
                    ldq = (size_t)head_dim;
                }
                pack_queries(queries, ldq, seq_q, head_dim, q_factor, w.qt);

                if (mask) {
                    int64_t at = b * mask->stride_b + h * mask->stride_h;
                    a.mask = mask->data ? mask->data + at : NULL;
                    a.additive = mask->additive ? mask->additive + at : NULL;
                    // Once per distinct mask slice (once for all heads of a mask broadcast over them).
                    if (at != span_at) {
                        a.mask_span = NULL;
                        mask_spans(&a, span);
                        span_at = at;
                    }
                    a.mask_span = span;
                }
                size_t head_offset = ((size_t)b * heads + h) * seq_q * seq_k;
                float *head_weights = weights ? weights + head_offset : NULL;
                size_t out_base, out_stride;
                head_rows(layout, batch, heads, seq_q, v_dim, b, h, &out_base, &out_stride);
                // Stages before the softmax first: with out == q, out overwrites this head's q.
                if (scores && stage != ATTENTION_SCORES_SOFTMAX) {
                    write_scores(&a, stage, w.qt, w.kt, w.p, scores + head_offset);
                }
                attend_head(&a, w.qt, w.kt, values, ldv, out, out_base, out_stride, head_weights, &w);
                if (scores && stage == ATTENTION_SCORES_SOFTMAX) {
                    memcpy(scores + head_offset, head_weights, (size_t)seq_q * seq_k * sizeof(float));
                }
            }
        }
    }
    free(block);
    free(span);
    return status;
}
