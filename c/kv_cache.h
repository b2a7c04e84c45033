// kv_cache.h: a key/value cache for autoregressive decoding that lives across calls: append the
// new tokens' keys and values, attend new queries over everything cached, export it as ONNX
// present_key/present_value. Attention itself is rope_attention_forward_options (attention.h).
//
// Storage: keys [capacity, batch, kv_heads, head_dim] and values [capacity, batch, kv_heads,
// v_head_dim] (ROPE_LAYOUT_SBHD rows), of which the first `length` rows are filled. Those rows are
// a valid sbhd tensor of seq `length`, so appending is a row write and attending reads the cache
// where it is: nothing of size length is copied per step. Capacity grows geometrically (x2, at
// least 16 rows) when an append needs more: amortised O(1) per appended row; only growth moves the
// cache (realloc).
//
// RoPE: when append is given a rope, the new keys are rotated at their absolute positions
// length + s as they are stored, once; attend then rotates only the queries, query i of seq_q at
// position length - seq_q + i (the last query is the newest token). Use the same rope for both.
// A scaling that depends on the longest position (dynamic, longrope) sees each call's positions:
// cached keys keep the frequencies they were rotated with (as transformers' caches do).
//
// Every entry point validates its arguments and returns a status of rope_errors.h; on error the
// cache is unchanged.
#ifndef ROPE_KV_CACHE_H
#define ROPE_KV_CACHE_H

#include <stdint.h>

#include "attention.h"
#include "rope.h"

// The longest a cache can get (rows): the kernel's seq_k limit.
#define KV_CACHE_MAX_LENGTH (INT32_MAX - 8)

typedef struct {
    int batch, kv_heads, head_dim, v_head_dim;
    int length;     // rows filled
    int capacity;   // rows allocated
    float *keys;    // [capacity, batch, kv_heads, head_dim]
    float *values;  // [capacity, batch, kv_heads, v_head_dim]
} kv_cache;

// A cache with room for `capacity` rows (0: allocated on the first append). v_head_dim 0 =
// head_dim. NULL when a size is out of range (batch, kv_heads, head_dim >= 1, v_head_dim >= 0,
// capacity in [0, KV_CACHE_MAX_LENGTH], a row must fit in memory) or memory runs out.
kv_cache *kv_cache_create(int batch, int kv_heads, int head_dim, int v_head_dim, int capacity);
void kv_cache_destroy(kv_cache *c);

// Makes room for `capacity` rows (never shrinks). 0, ROPE_ERR_NULL, ROPE_ERR_SHAPE, ROPE_ERR_NOMEM.
int kv_cache_reserve(kv_cache *c, int capacity);

// Appends seq tokens: k [batch, kv_heads, seq, head_dim] and v [batch, kv_heads, seq, v_head_dim]
// in `layout` (ROPE_LAYOUT_*; k and v may be NULL when seq is 0). rope: NULL, or keys are rotated
// at positions length + s. Returns 0 or ROPE_ERR_NULL, ROPE_ERR_SHAPE (seq < 0, length + seq over
// KV_CACHE_MAX_LENGTH), ROPE_ERR_LAYOUT, ROPE_ERR_DIM (rope->dim > head_dim), ROPE_ERR_NOMEM.
int kv_cache_append(kv_cache *c, const float *k, const float *v, int seq, int layout, rope_embedding *rope);

// out = attention of q [batch, heads, seq_q, head_dim] over the `length` cached keys and values,
// out [batch, heads, seq_q, v_head_dim], both in `layout` (out may be q when v_head_dim ==
// head_dim). rope: NULL, or q is rotated (in a scratch copy) at positions length - seq_q + i.
// options: NULL = causal bottom-right (query i sees the keys j <= length - seq_q + i), else every
// option of rope_attention_forward_options as given (causal too); options->v_head_dim must be 0 or
// the cache's. weights, options->scores, options->mask, options->kv_lengths: as in
// rope_attention_forward_options with seq_k = length.
// Copies: with seq_q > 1 and a layout other than sbhd, q and out are transposed through scratch
// (O(seq_q) rows); with seq_q 1 every layout is the same memory and nothing is copied but, with
// rope, the rotated query.
// Returns what rope_attention_forward_options returns, and ROPE_ERR_NULL (c), ROPE_ERR_SHAPE
// (options->v_head_dim not the cache's), ROPE_ERR_HEADS (heads not a multiple of kv_heads).
int kv_cache_attend(const kv_cache *c, const float *q, float *out, float *weights, int heads, int seq_q, int layout,
                    float scale, rope_embedding *rope, const attention_options *options);

// kv_cache_attend with the options as plain arguments (the WebAssembly export), as
// rope_attention_forward_ex takes them (mask_data / mask_additive / kv_lengths / scores 0 = none).
int kv_cache_attend_ex(const kv_cache *c, const float *q, float *out, float *weights, int heads, int seq_q,
                       int layout, float scale, rope_embedding *rope, int causal, int window_left, int window_right,
                       float softcap, const int32_t *kv_lengths, const uint8_t *mask_data,
                       const float *mask_additive, int mask_stride_b, int mask_stride_h, int mask_stride_q,
                       int mask_stride_k, float *scores, int scores_stage);

// Keeps the first `length` rows (rollback, beam search); 0 <= length <= current length, else
// ROPE_ERR_SHAPE. Capacity is kept. kv_cache_reset is kv_cache_truncate(c, 0).
int kv_cache_truncate(kv_cache *c, int length);
int kv_cache_reset(kv_cache *c);

int kv_cache_length(const kv_cache *c);    // -1 for NULL
int kv_cache_capacity(const kv_cache *c);  // -1 for NULL

// The cache as ONNX present_key [batch, kv_heads, length, head_dim] and present_value [batch,
// kv_heads, length, v_head_dim] (bhsd); either may be NULL (not written). Keys are as stored
// (rotated when appended with a rope). 0 or ROPE_ERR_NULL (c).
int kv_cache_export(const kv_cache *c, float *present_key, float *present_value);

#endif
