// attention.h: scaled dot-product attention (optionally with RoPE on q and k), flash-attention
// style: tiled, online softmax, no [seq_q, seq_k] matrix unless the caller asks for the weights.
#ifndef ROPE_ATTENTION_H
#define ROPE_ATTENTION_H

#include <stdint.h>

#include "rope.h"

// out = softmax(scale * q k^T + mask) v, per batch row and query head.
//
// q:   [batch, heads, seq_q, head_dim] in the order `layout` names (ROPE_LAYOUT_BHSD = [b,h,s,d],
//      ROPE_LAYOUT_BSHD = [b,s,h,d], ROPE_LAYOUT_SBHD = [s,b,h,d]).
// k, v: the same with kv_heads and seq_k.
// out: like q. It may be q itself (computed in place); otherwise out and weights overlap nothing.
// weights: NULL, or [batch, heads, seq_q, seq_k] (always this order), all written: the softmax,
//   exactly 0 where masked.
// heads % kv_heads == 0: query head h uses kv head h / (heads / kv_heads) (grouped-query,
//   multi-query when kv_heads is 1).
// causal (nonzero): bottom-right aligned: query i sees keys j <= i + (seq_k - seq_q), as when the
//   last seq_q of seq_k tokens are decoded against a KV cache. Non-causal: every query sees all.
// scale: scores are scale * q.k (1/sqrt(head_dim) is the usual choice); it must be finite, and
//   finite times log2(e) in float (|scale| < 2.3e38).
// rope: NULL, or a rotary embedding (dim <= head_dim) applied inside the kernel, to k at positions
//   offset + j and to q at positions offset + (seq_k - seq_q) + i; the inputs are not modified.
//   Scalings that depend on the longest position (dynamic, longrope) see offset + seq_k - 1 for
//   both. offset is ignored without rope.
//
// A query row that sees no key (causal with seq_q > seq_k, or seq_k == 0), or whose visible
// scores are all -inf, gets zeros in out and in weights, never NaN.
// NaN or Inf in the inputs reach exactly the outputs that depend on them: a NaN or +inf score
// makes its row NaN (out, and the visible weights), as in PyTorch; a NaN in v makes NaN that
// column of the rows that see the key; a key a query cannot see (causal or masked) never affects it.
// Decoding: running the queries one at a time (seq_q 1 and seq_k t + 1, causal) gives bit for bit
// the rows of the full causal call.
//
// Sizes: batch, heads, kv_heads, head_dim >= 1; seq_q, seq_k >= 0; head_dim, seq_q, seq_k at most
// 2^31 - 8. Returns 0 or ROPE_ERR_NULL (q, k, v or out NULL), ROPE_ERR_SHAPE (a size out of range,
// or a tensor too large to address), ROPE_ERR_HEADS (heads not a multiple of kv_heads),
// ROPE_ERR_LAYOUT, ROPE_ERR_SCALE, ROPE_ERR_DIM (rope->dim > head_dim), ROPE_ERR_POSITIONS (a RoPE
// position outside int32), ROPE_ERR_NOMEM.
// Nothing is read or written before the arguments are checked (only running out of memory inside
// rope_apply can stop a call half way).
// Memory: one scratch allocation per call of (seq_q + seq_k) * head_dim floats and a little, plus
// max(seq_q, seq_k) * head_dim with rope and seq_k * head_dim (rounded up to 8) when head_dim is not
// a multiple of 8: never anything of size seq_q * seq_k.
int rope_attention_forward(const float *q, const float *k, const float *v, float *out, float *weights,
                           int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim,
                           int layout, int causal, float scale, rope_embedding *rope, int offset);

// A boolean mask, 0 = masked: query i of head h of batch row b may see key j only when
// data[b * stride_b + h * stride_h + i * stride_q + j * stride_k] != 0. Strides are in elements;
// a stride of 0 broadcasts that axis (the seed's [seq_q, seq_k, batch or 1] is
// stride_q = seq_k * batch_or_1, stride_k = batch_or_1, stride_b = batch_or_1 == 1 ? 0 : 1).
typedef struct {
    const uint8_t *data;
    int64_t stride_b, stride_h, stride_q, stride_k;
} attention_mask;

// rope_attention_forward with a mask (NULL: none), combined with causal. A row the mask leaves
// without a visible key gets zeros, as a fully causal-masked row does. Strides must be >= 0
// (ROPE_ERR_SHAPE otherwise); the caller guarantees that every addressed element exists.
int rope_attention_forward_masked(const float *q, const float *k, const float *v, float *out, float *weights,
                                  int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim,
                                  int layout, int causal, float scale, rope_embedding *rope, int offset,
                                  const attention_mask *mask);

#endif
