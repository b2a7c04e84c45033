// mha.h: the seed's RotaryPEMultiHeadAttention forward pass (labml's MultiHeadAttention with RoPE
// applied to the projected queries and keys), self-attention: query = key = value = x.
#ifndef ROPE_MHA_H
#define ROPE_MHA_H

#include <stdint.h>

#include "rope.h"

// The four nn.Linear layers, PyTorch layout: weight [out, in] = [d_model, d_model], bias [d_model]
// or NULL (no bias).
typedef struct {
    const float *query_weight, *query_bias;
    const float *key_weight, *key_bias;
    const float *value_weight, *value_bias;
    const float *output_weight, *output_bias;
} mha_weights;

// y = output(attention(rope(query(x)), rope(key(x)), value(x)))
//   x, y: [seq, batch, d_model] (y must not overlap x)
//   heads divides d_model; d_k = d_model / heads; scores scaled by 1/sqrt(d_k)
//   rope: NULL, or the rotary embedding of the first rope->dim features of every head
//     (rope->dim <= d_k), positions 0 .. seq-1
//   causal: key j is masked for query i when j > i
//   mask: NULL, or [seq, seq, mask_batch] (mask_batch 1 or batch) with 0 = masked, as the seed's
//     prepare_mask gives it; combined with causal. A fully masked query row attends to nothing:
//     its attention output is zeros (PyTorch gives NaN there), so y is the output bias.
// Returns 0 or a status of rope_errors.h.
int rope_mha_forward(const float *x, float *y, int seq, int batch, int d_model, int heads,
                     const mha_weights *w, rope_embedding *rope, int causal, const uint8_t *mask,
                     int mask_batch);

#endif
