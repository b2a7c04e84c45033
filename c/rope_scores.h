// rope_scores.h: the RoPE score matrix, every query against every key, each at its own position.
//
//   S[i][j] = scale * <RoPE(q_i, pos_q[i]), RoPE(k_j, pos_k[j])>
//
// the raw attention logits (no softmax, no mask) that the page's readout, decay curves and heatmap
// show, and what a caller needs to study how a model's scores depend on relative position. The
// rotation is the embedding's own (its pairing, scaling, attention scaling and cos/sin cache);
// features [dim, head_dim) pass through unrotated and count in the dot product, as in attention.
// Validates every argument and returns a status from rope_errors.h; nothing aborts on bad input.
#ifndef ROPE_SCORES_H
#define ROPE_SCORES_H

#include <stdint.h>

#include "rope.h"

// q: [n_q, head_dim], k: [n_k, head_dim], scores: [n_q, n_k], all row-major; scores must not
// overlap q or k, which are not modified.
// pos_q: [n_q] the position of each query, NULL for 0, 1, ..., n_q - 1; pos_k likewise for the
// keys. Any int32 position is legal (negative ones too).
// scale: multiplies every score (1 for raw dot products, 1/sqrt(head_dim) for attention logits).
//
// The queries and keys are rotated by one rope_apply call over both, so a scaling that depends on
// the longest position (dynamic NTK, LongRoPE) uses the same frequencies for all of them; that call
// updates the embedding's state as any rope_apply does. Each dot product is summed in float32 over
// blocks of 16 features and in double across blocks, then multiplied by scale and rounded once:
// within a few float32 ulps of the exact score of the rotated vectors at any head_dim, so a score
// that RoPE keeps constant (the same m - n) stays constant to float32 rounding.
//
// Sizes: n_q, n_k >= 0, head_dim >= r->dim. q, k may be NULL only when they have no elements,
// scores only when n_q * n_k is 0. Returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_SHAPE (a size out of
// range, or n_q + n_k or a buffer too large to address), ROPE_ERR_DIM (head_dim < r->dim),
// ROPE_ERR_SCALE (scale not finite) or ROPE_ERR_NOMEM. Nothing is written before the arguments are
// checked. Memory: one scratch allocation of (n_q + n_k) * (head_dim rounded up to 16) floats and
// n_q + n_k positions per call.
int rope_scores(rope_embedding *r, const float *q, const float *k, float *scores, int n_q, int n_k, int head_dim,
                const int32_t *pos_q, const int32_t *pos_k, double scale);

#endif
