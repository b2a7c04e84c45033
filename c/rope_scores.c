// rope_scores.c: S = scale * RoPE(q) RoPE(k)^T on f32x4 vectors.
//
// The queries and keys are copied into one scratch block, their rows padded with zeros to a
// multiple of 16 features (so the kernel has no tail), and rotated in place by one rope_apply over
// all of them with explicit positions. Then each query row meets the keys four at a time: per
// block of 16 features, 4 x 4 multiply-adds in float32, a 4 x 4 transpose-and-add that leaves the
// four block sums in one vector, and those sums added into double accumulators. Float32 over 16
// products keeps the SIMD speed; double across blocks keeps the rounding error of a long sum from
// growing with head_dim. (Measured on q, k as the page draws them, head_dim 64: a float32 running
// sum is off by 6e-6 rms and 3e-5 at worst, more than the 1e-5 to which the page shows that a
// constant m - n keeps the score; these sums stay within about one float32 ulp of it.)
#include "rope_scores.h"
#include "rope_errors.h"
#include "simd.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Features per float32 partial sum; rows are padded to a multiple of it.
#define BLOCK 16

// q[0..16) . k[0..16) as four lanes: lane l sums the products of features l, l+4, l+8, l+12.
static inline f32x4 block_dot(const float *q, const float *k) {
    f32x4 c = f32x4_mul(f32x4_load(q), f32x4_load(k));
    c = f32x4_add(c, f32x4_mul(f32x4_load(q + 4), f32x4_load(k + 4)));
    c = f32x4_add(c, f32x4_mul(f32x4_load(q + 8), f32x4_load(k + 8)));
    return f32x4_add(c, f32x4_mul(f32x4_load(q + 12), f32x4_load(k + 12)));
}

// (sum of c0's lanes, sum of c1's, sum of c2's, sum of c3's): a transpose folded into the adds.
static inline f32x4 sum_lanes4(f32x4 c0, f32x4 c1, f32x4 c2, f32x4 c3) {
    f32x4 u0 = f32x4_add(f32x4_zip_lo(c0, c1), f32x4_zip_hi(c0, c1));  // c0 and c1, lanes 0+2 and 1+3
    f32x4 u1 = f32x4_add(f32x4_zip_lo(c2, c3), f32x4_zip_hi(c2, c3));
    return f32x4_add(f32x4_join_lo(u0, u1), f32x4_join_hi(u0, u1));
}

// out[j] = scale * q . keys[j] for the n_k keys; rows are `padded` floats, a multiple of BLOCK.
static void score_row(const float *q, const float *keys, int n_k, int padded, double scale, float *out) {
    float lanes[4];
    int j = 0;
    for (; j + 4 <= n_k; j += 4) {
        const float *k0 = keys + (size_t)j * padded;
        const float *k1 = k0 + padded, *k2 = k1 + padded, *k3 = k2 + padded;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int f = 0; f < padded; f += BLOCK) {
            f32x4 sums = sum_lanes4(block_dot(q + f, k0 + f), block_dot(q + f, k1 + f), block_dot(q + f, k2 + f),
                                    block_dot(q + f, k3 + f));
            f32x4_store(lanes, sums);
            s0 += lanes[0];
            s1 += lanes[1];
            s2 += lanes[2];
            s3 += lanes[3];
        }
        out[j] = (float)(s0 * scale);
        out[j + 1] = (float)(s1 * scale);
        out[j + 2] = (float)(s2 * scale);
        out[j + 3] = (float)(s3 * scale);
    }
    for (; j < n_k; j++) {
        const float *k0 = keys + (size_t)j * padded;
        double s = 0;
        for (int f = 0; f < padded; f += BLOCK) {
            // The lanes added in sum_lanes4's order: a key gets the same score in either loop.
            f32x4_store(lanes, block_dot(q + f, k0 + f));
            s += (double)((lanes[0] + lanes[2]) + (lanes[1] + lanes[3]));
        }
        out[j] = (float)(s * scale);
    }
}

// Copies `rows` rows of head_dim floats into rows of `padded` floats, zero-filling the rest.
static void copy_padded(float *dst, const float *src, int rows, int head_dim, int padded) {
    for (int i = 0; i < rows; i++) {
        memcpy(dst + (size_t)i * padded, src + (size_t)i * head_dim, (size_t)head_dim * sizeof(float));
        memset(dst + (size_t)i * padded + head_dim, 0, (size_t)(padded - head_dim) * sizeof(float));
    }
}

// Positions of `count` vectors: given, or 0, 1, ..., count - 1.
static void copy_positions(int32_t *dst, const int32_t *src, int count) {
    for (int i = 0; i < count; i++) dst[i] = src ? src[i] : i;
}

int rope_scores(rope_embedding *r, const float *q, const float *k, float *scores, int n_q, int n_k, int head_dim,
                const int32_t *pos_q, const int32_t *pos_k, double scale) {
    if (!r) return ROPE_ERR_NULL;
    if (n_q < 0 || n_k < 0 || head_dim < 1 || head_dim > INT_MAX - BLOCK) return ROPE_ERR_SHAPE;
    if (head_dim < r->dim) return ROPE_ERR_DIM;
    if (!isfinite(scale)) return ROPE_ERR_SCALE;
    if ((n_q > 0 && !q) || (n_k > 0 && !k) || (n_q > 0 && n_k > 0 && !scores)) return ROPE_ERR_NULL;
    // rope_apply takes the queries and keys as one int-sized sequence; the scratch and the score
    // matrix must be addressable.
    int64_t n = (int64_t)n_q + n_k;
    if (n > INT_MAX) return ROPE_ERR_SHAPE;
    int padded = (head_dim + BLOCK - 1) / BLOCK * BLOCK;
    if ((uint64_t)n * (uint64_t)padded > SIZE_MAX / sizeof(float)) return ROPE_ERR_SHAPE;
    if ((uint64_t)n_q * (uint64_t)n_k > SIZE_MAX / sizeof(float)) return ROPE_ERR_SHAPE;
    if (n_q == 0 || n_k == 0) return ROPE_OK;

    float *rows = malloc((size_t)n * (size_t)padded * sizeof(float));
    int32_t *positions = malloc((size_t)n * sizeof(int32_t));
    int status = rows && positions ? ROPE_OK : ROPE_ERR_NOMEM;
    if (status == ROPE_OK) {
        float *queries = rows, *keys = rows + (size_t)n_q * padded;
        copy_padded(queries, q, n_q, head_dim, padded);
        copy_padded(keys, k, n_k, head_dim, padded);
        copy_positions(positions, pos_q, n_q);
        copy_positions(positions + n_q, pos_k, n_k);
        // In place, the padding passes through as zeros.
        status = rope_apply(r, rows, rows, ROPE_LAYOUT_BHSD, 1, 1, (int)n, padded, 0, positions, (int)n, 0);
        if (status == ROPE_OK) {
            for (int i = 0; i < n_q; i++) {
                score_row(queries + (size_t)i * padded, keys, n_k, padded, scale, scores + (size_t)i * n_k);
            }
        }
    }
    free(rows);
    free(positions);
    return status;
}
