// model.h: a character-level RoPE transformer (the seed's training experiment, labml style) with
// its forward and backward passes, for training in wasm.
//
//   x = src_embed[tokens]                        (no positional embedding: RoPE is the position)
//   per layer:  x = x + MHA(LayerNorm_self_attn(x))    causal, RoPE on q and k (mha.h's)
//               x = x + ff_layer2(ReLU(ff_layer1(LayerNorm_ff(x))))
//   logits = generator(LayerNorm_norm(x)); loss = mean cross-entropy against the targets
//
// Activations are [seq, batch, d_model]; tokens and targets [seq, batch]. Parameters live in one
// allocation, in PyTorch's state_dict order with its names (transformer_tensor_*), gradients in a
// second one with the same layout, so a state_dict maps onto them one tensor at a time. A model is
// used by one thread at a time; separate models share nothing (one per worker thread).
#ifndef ROPE_MODEL_H
#define ROPE_MODEL_H

#include <stdint.h>

typedef struct {
    int vocab;               // tokens are 0 .. vocab-1
    int d_model;             // features of the residual stream
    int heads;               // attention heads; d_k = d_model / heads
    int layers;
    int d_ff;                // hidden features of the feed-forward block
    double rope_percentage;  // RoPE rotates the first int(d_k * rope_percentage) features of each head
    double base;             // RoPE's theta base (10000 in the seed)
} model_config;

typedef struct transformer transformer;

// Checks the config, allocates the parameters, the gradients and the activations of a forward
// pass of up to max_seq x max_batch tokens. Parameters are zero until transformer_init.
// Returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_SHAPE (a size < 1, or too large to address),
// ROPE_ERR_HEADS (d_model not a multiple of heads), ROPE_ERR_DIM (rope_percentage outside [0, 1],
// or int(d_k * rope_percentage) odd), ROPE_ERR_BASE or ROPE_ERR_NOMEM. *out is NULL on failure.
int transformer_create(const model_config *config, int max_seq, int max_batch, transformer **out);
void transformer_destroy(transformer *model);  // NULL is fine

int64_t transformer_param_count(const transformer *model);  // -1 for NULL
float *transformer_params(transformer *model);              // [param_count]
float *transformer_grads(transformer *model);               // [param_count], the same layout

// The parameter tensors in state_dict order: src_embed.weight; per layer l: layers.{l}.
// norm_self_attn.{weight,bias}, self_attn.{query,key,value,output}.{weight,bias}, norm_ff.{weight,bias},
// ff_layer1.{weight,bias}, ff_layer2.{weight,bias}; then norm.{weight,bias}, generator.{weight,bias}.
// Out-of-range indexes give NULL / -1 / ROPE_ERR_SHAPE.
int transformer_tensor_count(const transformer *model);
const char *transformer_tensor_name(const transformer *model, int index);  // NUL-terminated
int64_t transformer_tensor_offset(const transformer *model, int index);    // in floats from params
int64_t transformer_tensor_size(const transformer *model, int index);      // elements
int transformer_tensor_dims(const transformer *model, int index);          // 1 or 2
int transformer_tensor_dim(const transformer *model, int index, int axis); // shape[axis], PyTorch's

// PyTorch's default initialisation from a seeded generator (rng.h): nn.Linear weight and bias
// uniform in +-1/sqrt(in), nn.Embedding N(0, 1), LayerNorm weight 1 and bias 0. The same seed
// gives the same parameters everywhere. Returns ROPE_OK or ROPE_ERR_NULL.
int transformer_init(transformer *model, uint64_t seed);

// The forward pass of tokens [seq, batch] (each in [0, vocab)); targets [seq, batch] or NULL.
// *loss (loss may be NULL) = the mean cross-entropy over the seq * batch tokens, NaN without
// targets. Saves what transformer_backward needs. 1 <= seq <= max_seq, 1 <= batch <= max_batch.
// Tokens and targets are checked before anything is written. Returns ROPE_OK, ROPE_ERR_NULL,
// ROPE_ERR_SHAPE, ROPE_ERR_TOKEN or ROPE_ERR_NOMEM (gemm's packing buffers).
int transformer_forward(transformer *model, const int32_t *tokens, const int32_t *targets, int seq, int batch,
                        float *loss);
// [seq, batch, vocab] of the last forward (NULL for NULL).
const float *transformer_logits(const transformer *model);
// [batch, heads, seq, seq]: the causal softmax of layer `layer` in the last forward (NULL for a
// bad layer).
const float *transformer_attention_weights(const transformer *model, int layer);

// Incremental decoding, for sampling: the model keeps, per layer, the rotated keys and the values of
// the tokens fed since the last reset (a KV cache of up to max_seq tokens, made at the first
// call). transformer_decode feeds one token at the next position (0, 1, 2, ...) and writes its
// logits [vocab]: the same numbers, to float rounding, as the last row of transformer_forward on
// all the tokens fed so far (batch 1), at the cost of one token instead of all of them.
// transformer_decode returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_TOKEN, ROPE_ERR_SHAPE (the cache
// holds max_seq tokens already: reset and feed a shorter context) or ROPE_ERR_NOMEM; on an error
// the cache is unchanged. Changing the parameters does not change what is cached: reset after.
int transformer_decode_reset(transformer *model);
int transformer_decode(transformer *model, int32_t token, float *logits);
int transformer_decode_length(const transformer *model);  // tokens cached

// Gradients of loss_scale * (sum over the seq * batch tokens of the cross-entropy) with respect to
// every parameter, written over grads (not accumulated). loss_scale = 1 / (seq * batch) gives the
// gradient of the mean loss. Needs the last forward to have had targets.
// Returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_STATE (no forward with targets since creation, or the
// last forward failed), ROPE_ERR_VALUE (loss_scale not finite) or ROPE_ERR_NOMEM.
int transformer_backward(transformer *model, float loss_scale);

#endif
