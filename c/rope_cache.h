// rope_cache.h: RoPE with cos/sin caches supplied by the caller, with the semantics of ONNX
// RotaryEmbedding-23.
//
// Where rope.h computes the angles of each position itself, here the caller hands over the cos
// and sin rows: a cache [cache_rows, rotary_dim/2] indexed by a position id per token
// (ONNX's 2D cos_cache/sin_cache with position_ids [batch, seq]), or one row per token
// ([batch, seq, rotary_dim/2], ONNX's 3D caches without position_ids). The values are used as
// given: they need not be the cos and sin of any angle, exactly as the operator allows. The
// first rotary_dim features of every head vector are rotated with the kernels of rope_kernel.h
// (half or interleaved pairing), the features [rotary_dim, head_dim) pass through.
//
// ONNX's inputs map onto the layouts of rope.h: 4D X [batch, num_heads, seq, head_size] is
// ROPE_LAYOUT_BHSD; 3D X [batch, seq, num_heads * head_size] is ROPE_LAYOUT_BSHD with
// n2 = num_heads.
#ifndef ROPE_CACHE_H
#define ROPE_CACHE_H

#include <stdint.h>

// Rotates x into y (y == x: in place; otherwise they must not overlap).
// x, y: [n0, n1, n2, head_dim] with the axes named by layout (enum rope_layout of rope.h).
// rotary_dim: even, <= head_dim; 0 means head_dim (ONNX's rotary_embedding_dim = 0).
// interleaved: 0 = half pairing (i with i + rotary_dim/2), 1 = interleaved (2i with 2i + 1).
// cos_cache, sin_cache: [cache_rows, rotary_dim/2] each.
// position_ids: [batch, seq], each in [0, cache_rows): token (b, s) uses cache row
//   position_ids[b * seq + s]. NULL: cache_rows must be batch * seq and token (b, s) uses row
//   b * seq + s (the [batch, seq, rotary_dim/2] caches of ONNX without position_ids).
// inverse: rotate by the transpose of each 2x2 block [[cos, -sin], [sin, cos]] (sin negated):
//   the gradient of the forward map with respect to x.
// first_vector, vector_count: as rope_apply_vectors of rope.h: only the vector_count head
//   vectors from vector first_vector (in memory order) are rotated, x and y pointing at the
//   first of them; vector_count -1: to the end.
// Returns ROPE_OK, or ROPE_ERR_NULL (x, y or a cache NULL), ROPE_ERR_LAYOUT, ROPE_ERR_DIM
// (rotary_dim odd, negative, above head_dim, or 0 with head_dim odd), ROPE_ERR_PAIRING
// (interleaved not 0 or 1), ROPE_ERR_SHAPE (a size negative, too large, cache_rows not batch * seq
// without position ids, or the vector range outside the tensor), ROPE_ERR_POSITIONS (a position id
// outside [0, cache_rows)). Nothing is written unless the status is ROPE_OK.
int rope_cache_apply(const float *x, float *y, int layout, int n0, int n1, int n2, int head_dim, int rotary_dim,
                     int interleaved, const float *cos_cache, const float *sin_cache, int cache_rows,
                     const int32_t *position_ids, int inverse, int first_vector, int vector_count);

#endif
