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
// a multiple of 8, and 2 * seq_q ints with a mask: never anything of size seq_q * seq_k.
int rope_attention_forward(const float *q, const float *k, const float *v, float *out, float *weights,
                           int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim,
                           int layout, int causal, float scale, rope_embedding *rope, int offset);

// A boolean mask, 0 = masked: query i of head h of batch row b may see key j only when
// data[b * stride_b + h * stride_h + i * stride_q + j * stride_k] != 0. Strides are in elements;
// a stride of 0 broadcasts that axis (the seed's [seq_q, seq_k, batch or 1] is
// stride_q = seq_k * batch_or_1, stride_k = batch_or_1, stride_b = batch_or_1 == 1 ? 0 : 1).
//
// An additive mask (rope_attention_forward_options only) is the same with `additive` instead of (or
// besides) `data`: the float at that index is added to the scaled score scale * q.k before the
// softmax (and before the softcap). -inf there masks the key exactly as a 0 in `data` does (it
// never reaches the row, not even through 0 * a NaN in v); +inf or NaN make the row NaN. When both
// are given they share the strides: a key is masked by a 0 in data, else gets the additive term.
typedef struct {
    const uint8_t *data;
    int64_t stride_b, stride_h, stride_q, stride_k;
    const float *additive;
} attention_mask;

// rope_attention_forward with a mask (NULL: none), combined with causal. A row the mask leaves
// without a visible key gets zeros, as a fully causal-masked row does. Strides must be >= 0
// (ROPE_ERR_SHAPE otherwise); the caller guarantees that every addressed element exists.
int rope_attention_forward_masked(const float *q, const float *k, const float *v, float *out, float *weights,
                                  int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim,
                                  int layout, int causal, float scale, rope_embedding *rope, int offset,
                                  const attention_mask *mask);

// Causal alignments (attention_options.causal).
enum {
    ATTENTION_CAUSAL_NONE = 0,
    ATTENTION_CAUSAL_BOTTOM_RIGHT = 1,  // query i is at key position i + seq_k - seq_q (KV-cache decoding)
    ATTENTION_CAUSAL_TOP_LEFT = 2,      // query i is at key position i (PyTorch's is_causal, ONNX without past)
};

// The four stages of the scores ONNX Attention can output (qk_matmul_output_mode).
enum {
    ATTENTION_SCORES_RAW = 0,         // scale * q.k, for every (i, j), visible or not
    ATTENTION_SCORES_MASKED = 1,      // + the additive mask; -inf where the key is not visible
    ATTENTION_SCORES_SOFTCAPPED = 2,  // then softcap * tanh(s / softcap) (-inf stays -inf)
    ATTENTION_SCORES_SOFTMAX = 3,     // the softmax: the weights
};

// What rope_attention_forward_options adds to rope_attention_forward. Start from
// attention_options_defaults() (or ATTENTION_OPTIONS_DEFAULTS): plain, non-causal attention.
//
// causal: ATTENTION_CAUSAL_*. Query i has the key position c(i) = i + (seq_k - seq_q) (bottom-right;
//   seq_k is kv_lengths[b] when given)
//   or i (top-left); causal hides the keys j > c(i). The sliding window uses the same c(i) (the
//   bottom-right one when causal is NONE).
// window_left, window_right: -1 = unbounded, else query i sees only keys j with
//   c(i) - window_left <= j <= c(i) + window_right (ONNX left_window_size, right_window_size;
//   Mistral's sliding window W is causal with window_left W - 1). Key blocks wholly outside every
//   row's window are skipped: a window of w keys costs about what w keys cost, whatever seq_k.
// v_head_dim: 0 = head_dim, else the size of v's head vectors, and of out's: out is
//   [batch, heads, seq_q, v_head_dim] in `layout` (out may be q only when v_head_dim == head_dim).
// softcap: 0 = none, else (finite, > 0) scores s become softcap * tanh(s / softcap) after the mask
//   is added; -inf (masked) stays -inf (Gemma 2).
// kv_lengths: NULL, or [batch] valid key counts in [0, seq_k] (ONNX-24 nonpad_kv_seqlen): keys
//   j >= kv_lengths[b] are hidden from batch row b, and bottom-right alignment puts the last query
//   at the last valid key: c(i) = i + kv_lengths[b] - seq_q (as onnxruntime does with is_causal;
//   padded KV caches). RoPE positions stay those of rope_attention_forward (from seq_k).
// mask: NULL, or a boolean and/or additive mask (attention_mask above).
// scores: NULL, or [batch, heads, seq_q, seq_k] receiving the scores at stage scores_stage
//   (ATTENTION_SCORES_*), in natural units. Hidden keys are -inf from stage MASKED on (0 at
//   SOFTMAX); RAW holds every q.k, also those causal or window would skip (it costs a full
//   seq_q x seq_k pass).
typedef struct {
    int causal;
    int window_left, window_right;
    int v_head_dim;
    float softcap;
    const int32_t *kv_lengths;
    const attention_mask *mask;
    float *scores;
    int scores_stage;
} attention_options;

#define ATTENTION_OPTIONS_DEFAULTS {ATTENTION_CAUSAL_NONE, -1, -1, 0, 0.0f, NULL, NULL, NULL, 0}

attention_options attention_options_defaults(void);

// rope_attention_forward with options (NULL: the defaults), the causal flag now in them.
// weights: NULL or the softmax [batch, heads, seq_q, seq_k], as in rope_attention_forward (also
// with options->scores at any stage).
// Fully hidden rows (by causal, window, kv_lengths, mask, or all-(-inf) scores) are 0 in out,
// weights and SOFTMAX scores, never NaN.
// Returns what rope_attention_forward returns, and ROPE_ERR_VALUE (causal or scores_stage unknown,
// a window size below -1, softcap negative or not finite), ROPE_ERR_SHAPE (v_head_dim < 0, a
// kv_lengths entry outside [0, seq_k], a negative mask stride), ROPE_ERR_NULL (a mask with
// neither data nor additive).
int rope_attention_forward_options(const float *q, const float *k, const float *v, float *out, float *weights,
                                   int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim,
                                   int layout, float scale, rope_embedding *rope, int offset,
                                   const attention_options *options);

// The same with every option as a plain argument (the WebAssembly export: no struct to lay out in
// JavaScript). mask_data / mask_additive: 0 for none; strides in elements.
int rope_attention_forward_ex(const float *q, const float *k, const float *v, float *out, float *weights,
                              int batch, int heads, int kv_heads, int seq_q, int seq_k, int head_dim, int layout,
                              float scale, rope_embedding *rope, int offset, int causal, int window_left,
                              int window_right, int v_head_dim, float softcap, const int32_t *kv_lengths,
                              const uint8_t *mask_data, const float *mask_additive, int mask_stride_b,
                              int mask_stride_h, int mask_stride_q, int mask_stride_k, float *scores,
                              int scores_stage);

// The element types rope_attention_forward_typed reads q, k, v and writes out in. Masks, weights
// and scores stay float32.
enum {
    ATTENTION_DTYPE_FLOAT32 = 0,
    ATTENTION_DTYPE_FLOAT16 = 1,   // IEEE binary16, as uint16_t bit patterns
    ATTENTION_DTYPE_BFLOAT16 = 2,  // the top half of a float32, as uint16_t bit patterns
};

// rope_attention_forward_options on q, k, v and out of `dtype` (the pointers point to elements of
// that type; sizes, layouts and strides count elements). 16-bit inputs are converted to float32
// in the kernel as they are gathered and packed (exactly: every float16 and bfloat16 is a float),
// everything is computed in float32 as for float32 tensors, and out is rounded to nearest even
// (float16: overflow to inf, subnormals kept); NaN stays NaN, inf stays inf. Scratch grows by
// max(seq_q, seq_k) * head_dim + seq_k * v_head_dim floats (rounded up) for the converted rows.
// Returns what rope_attention_forward_options returns, and ROPE_ERR_VALUE for an unknown dtype.
int rope_attention_forward_typed(const void *q, const void *k, const void *v, void *out, float *weights, int batch,
                                 int heads, int kv_heads, int seq_q, int seq_k, int head_dim, int layout, float scale,
                                 rope_embedding *rope, int offset, int dtype, const attention_options *options);

// rope_attention_forward_ex with a dtype (the WebAssembly export of rope_attention_forward_typed).
int rope_attention_forward_typed_ex(const void *q, const void *k, const void *v, void *out, float *weights, int batch,
                                    int heads, int kv_heads, int seq_q, int seq_k, int head_dim, int layout,
                                    float scale, rope_embedding *rope, int offset, int causal, int window_left,
                                    int window_right, int v_head_dim, float softcap, const int32_t *kv_lengths,
                                    const uint8_t *mask_data, const float *mask_additive, int mask_stride_b,
                                    int mask_stride_h, int mask_stride_q, int mask_stride_k, float *scores,
                                    int scores_stage, int dtype);

#endif
