// attention_backward.h: the backward pass of RoPE self-attention (rope_attention_forward with
// seq_q = seq_k, heads = kv_heads, layout ROPE_LAYOUT_SBHD), for the trainer. It uses the softmax
// the forward pass saved (its `weights` output) instead of recomputing it.
#ifndef ROPE_ATTENTION_BACKWARD_H
#define ROPE_ATTENTION_BACKWARD_H

#include "rope.h"

// Forward, per batch row b and head h (x_bh: the [seq, head_dim] slice of x):
//   O = P V, P = softmax(scale * rope(Q) rope(K)^T + mask), the mask (causal or other) giving P = 0.
// Backward, with Qr = rope(Q), Kr = rope(K) and D_i = sum_j P_ij dP_ij (= dO_i . O_i):
//   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - D),  dQr = scale dS Kr,  dKr = scale dS^T Qr,
//   dQ = rope^T(dQr), dK = rope^T(dKr)   (the inverse rotation: a rotation's transpose)
//
// dq, dk, dv: [seq, batch, heads, head_dim], written (they overlap nothing)
// dout: [seq, batch, heads, head_dim], the gradient of the attention output
// q_rot, k_rot: [seq, batch, heads, head_dim], q and k AFTER RoPE (without rope: q and k)
// v: [seq, batch, heads, head_dim]
// weights: [batch, heads, seq, seq], the softmax P of the forward pass
// scratch: [seq, seq] floats of work space
// causal: 1 when the forward was causal (P is 0 above the diagonal: the products skip that part);
//   0 for any other mask, or none (the zeros of P do the masking)
// rope: NULL, or the rotary embedding of the forward (positions 0 .. seq-1, dim <= head_dim)
// Returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_SHAPE, ROPE_ERR_LAYOUT (causal not 0 or 1), ROPE_ERR_DIM, ROPE_ERR_NOMEM (gemm's packing
// buffers or the RoPE table).
int rope_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q_rot,
                            const float *k_rot, const float *v, const float *weights, float *scratch,
                            int seq, int batch, int heads, int head_dim, int causal, float scale,
                            rope_embedding *rope);

#endif
