// rope_cache.c: RoPE with caller-supplied cos/sin caches (ONNX RotaryEmbedding-23), on the
// kernels of rope_kernel.c.
#include "rope_cache.h"
#include "rope.h"
#include "rope_errors.h"
#include "rope_kernel.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// The vectors [first, first + count) of x in memory order, and the token (b * seq + s) of each.
typedef struct {
    int64_t n1, n2;          // the two inner outer axes (n0 is implied by the range)
    int64_t t0, t1, t2;      // token index = i0 * t0 + i1 * t1 + i2 * t2
    int64_t first, count;
} vector_range;

// Every cache row the range reads is inside [0, cache_rows).
static int check_rows(const vector_range *r, const int32_t *position_ids, int cache_rows) {
    int64_t i0 = r->first / (r->n1 * r->n2), i1 = r->first / r->n2 % r->n1, i2 = r->first % r->n2;
    for (int64_t left = r->count; left > 0;) {
        int64_t run = r->n2 - i2 < left ? r->n2 - i2 : left;
        const int32_t *token = position_ids + i0 * r->t0 + i1 * r->t1 + i2 * r->t2;
        // Along the innermost axis the token is fixed (heads) or steps by one (bhsd: seq).
        int64_t distinct = r->t2 ? run : 1;
        for (int64_t v = 0; v < distinct; v++) {
            if (token[v] < 0 || token[v] >= cache_rows) return ROPE_ERR_POSITIONS;
        }
        left -= run;
        i2 = 0;
        if (++i1 == r->n1) {
            i1 = 0;
            i0++;
        }
    }
    return ROPE_OK;
}

int rope_cache_apply(const float *x, float *y, int layout, int n0, int n1, int n2, int head_dim, int rotary_dim,
                     int interleaved, const float *cos_cache, const float *sin_cache, int cache_rows,
                     const int32_t *position_ids, int inverse, int first_vector, int vector_count) {
    if (!x || !y || !cos_cache || !sin_cache) return ROPE_ERR_NULL;
    if (layout < ROPE_LAYOUT_SBHD || layout > ROPE_LAYOUT_BHSD) return ROPE_ERR_LAYOUT;
    if (n0 < 0 || n1 < 0 || n2 < 0 || head_dim < 0 || cache_rows < 0) return ROPE_ERR_SHAPE;
    if (rotary_dim == 0) rotary_dim = head_dim;
    if (rotary_dim < 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim) return ROPE_ERR_DIM;
    if (interleaved != 0 && interleaved != 1) return ROPE_ERR_PAIRING;

    // Element counts must fit in size_t (32 bits in wasm): x, and each cache.
    uint64_t count = (uint64_t)n0 * (uint64_t)n1;
    if (head_dim != 0) {
        uint64_t limit = SIZE_MAX / sizeof(float) / (uint64_t)head_dim;
        if (n2 != 0 && count > limit / (uint64_t)n2) return ROPE_ERR_SHAPE;
    }
    count *= (uint64_t)n2;
    int half = rotary_dim / 2;
    if ((uint64_t)cache_rows * (uint64_t)half > SIZE_MAX / sizeof(float)) return ROPE_ERR_SHAPE;
    if (first_vector < 0 || vector_count < -1 || (uint64_t)first_vector > count) return ROPE_ERR_SHAPE;
    int64_t todo = vector_count == -1 ? (int64_t)(count - (uint64_t)first_vector) : vector_count;
    if ((uint64_t)first_vector + (uint64_t)todo > count) return ROPE_ERR_SHAPE;

    int64_t seq = layout == ROPE_LAYOUT_SBHD ? n0 : layout == ROPE_LAYOUT_BSHD ? n1 : n2;
    int64_t batch = layout == ROPE_LAYOUT_SBHD ? n1 : n0;
    if (!position_ids && (int64_t)cache_rows != batch * seq) return ROPE_ERR_SHAPE;
    if (todo == 0) return ROPE_OK;

    // Vector (i0, i1, i2) belongs to token b * seq + s.
    vector_range range = {
        .n1 = n1,
        .n2 = n2,
        .t0 = layout == ROPE_LAYOUT_SBHD ? 1 : seq,
        .t1 = layout == ROPE_LAYOUT_SBHD ? seq : layout == ROPE_LAYOUT_BSHD ? 1 : 0,
        .t2 = layout == ROPE_LAYOUT_BHSD ? 1 : 0,
        .first = first_vector,
        .count = todo,
    };
    if (position_ids) {
        int status = check_rows(&range, position_ids, cache_rows);
        if (status != ROPE_OK) return status;
    }

    size_t pass_bytes = x != y ? (size_t)(head_dim - rotary_dim) * sizeof(float) : 0;
    int64_t i0 = range.first / (range.n1 * range.n2), i1 = range.first / range.n2 % range.n1;
    int64_t i2 = range.first % range.n2;
    const float *xv = x;
    float *yv = y;
    for (int64_t left = todo; left > 0;) {
        int64_t token = i0 * range.t0 + i1 * range.t1 + i2 * range.t2;
        int64_t run = range.n2 - i2 < left ? range.n2 - i2 : left;  // the rest of this (i0, i1) row
        for (int64_t v = 0; v < run; v++, token += range.t2, xv += head_dim, yv += head_dim) {
            int64_t row = position_ids ? position_ids[token] : token;
            const float *c = cos_cache + row * half, *s = sin_cache + row * half;
            if (interleaved) {
                rope_rotate_interleaved(xv, yv, c, s, rotary_dim, inverse);
            } else {
                rope_rotate_half(xv, yv, c, s, rotary_dim, inverse);
            }
            if (pass_bytes) memcpy(yv + rotary_dim, xv + rotary_dim, pass_bytes);
        }
        left -= run;
        i2 = 0;
        if (++i1 == range.n1) {
            i1 = 0;
            i0++;
        }
    }
    return ROPE_OK;
}
