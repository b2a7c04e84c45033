// kv_cache.c: the KV cache of kv_cache.h: sbhd rows that grow geometrically, RoPE on keys at
// append, attention through rope_attention_forward_options on the rows in place.
#include "kv_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rope_errors.h"

#define MIN_GROWTH 16

static int valid_layout(int layout) {
    return layout == ROPE_LAYOUT_SBHD || layout == ROPE_LAYOUT_BSHD || layout == ROPE_LAYOUT_BHSD;
}

// Float index of head vector (b, h, s) of a [batch, nh, seq, dim] tensor in `layout`.
static size_t vector_at(int layout, int batch, int nh, int seq, int dim, int b, int h, int s) {
    size_t v;
    if (layout == ROPE_LAYOUT_SBHD) {
        v = ((size_t)s * batch + b) * nh + h;
    } else if (layout == ROPE_LAYOUT_BSHD) {
        v = ((size_t)b * seq + s) * nh + h;
    } else {
        v = ((size_t)b * nh + h) * seq + s;
    }
    return v * (size_t)dim;
}

// Floats of `rows` rows of width `row` (a row: batch * heads * dim), or 0 when it does not fit
// size_t bytes.
static size_t floats_of(int64_t rows, int64_t row) {
    if (rows < 0 || row <= 0) return 0;
    if (rows > 0 && (uint64_t)row > (uint64_t)SIZE_MAX / sizeof(float) / (uint64_t)rows) return 0;
    return (size_t)(rows * row);
}

static int64_t key_row(const kv_cache *c) { return (int64_t)c->batch * c->kv_heads * c->head_dim; }
static int64_t value_row(const kv_cache *c) { return (int64_t)c->batch * c->kv_heads * c->v_head_dim; }

kv_cache *kv_cache_create(int batch, int kv_heads, int head_dim, int v_head_dim, int capacity) {
    if (batch < 1 || kv_heads < 1 || head_dim < 1 || v_head_dim < 0 || capacity < 0 || capacity > KV_CACHE_MAX_LENGTH) {
        return NULL;
    }
    kv_cache *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->batch = batch;
    c->kv_heads = kv_heads;
    c->head_dim = head_dim;
    c->v_head_dim = v_head_dim ? v_head_dim : head_dim;
    if (floats_of(1, key_row(c)) == 0 || floats_of(1, value_row(c)) == 0 || kv_cache_reserve(c, capacity) != ROPE_OK) {
        kv_cache_destroy(c);
        return NULL;
    }
    return c;
}

void kv_cache_destroy(kv_cache *c) {
    if (!c) return;
    free(c->keys);
    free(c->values);
    free(c);
}

int kv_cache_reserve(kv_cache *c, int capacity) {
    if (!c) return ROPE_ERR_NULL;
    if (capacity < 0 || capacity > KV_CACHE_MAX_LENGTH) return ROPE_ERR_SHAPE;
    if (capacity <= c->capacity) return ROPE_OK;
    size_t nk = floats_of(capacity, key_row(c));
    size_t nv = floats_of(capacity, value_row(c));
    if (nk == 0 || nv == 0) return ROPE_ERR_SHAPE;
    // realloc keeps the filled rows (a prefix); the cache stays valid if the second one fails.
    float *keys = realloc(c->keys, nk * sizeof(float));
    if (!keys) return ROPE_ERR_NOMEM;
    c->keys = keys;
    float *values = realloc(c->values, nv * sizeof(float));
    if (!values) return ROPE_ERR_NOMEM;
    c->values = values;
    c->capacity = capacity;
    return ROPE_OK;
}

// Room for `needed` rows: capacity doubles (at least MIN_GROWTH), capped at the maximum.
static int grow(kv_cache *c, int needed) {
    if (needed <= c->capacity) return ROPE_OK;
    int64_t target = (int64_t)c->capacity * 2;
    if (target < MIN_GROWTH) target = MIN_GROWTH;
    if (target < needed) target = needed;
    if (target > KV_CACHE_MAX_LENGTH) target = KV_CACHE_MAX_LENGTH;
    int status = kv_cache_reserve(c, (int)target);
    // The doubled size may not fit where the exact one does.
    if (status != ROPE_OK && target > needed) status = kv_cache_reserve(c, needed);
    return status;
}

// Copies the seq head vectors of each (b, h) of x ([batch, nh, seq, dim] in layout) to rows
// first.. of the sbhd buffer dst.
static void copy_rows(float *dst, const float *x, int layout, int batch, int nh, int seq, int dim, int first) {
    size_t row = (size_t)batch * nh * dim;
    if (layout == ROPE_LAYOUT_SBHD) {
        memcpy(dst + (size_t)first * row, x, (size_t)seq * row * sizeof(float));
        return;
    }
    for (int s = 0; s < seq; s++) {
        float *d = dst + (size_t)(first + s) * row;
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < nh; h++) {
                memcpy(d + ((size_t)b * nh + h) * dim, x + vector_at(layout, batch, nh, seq, dim, b, h, s),
                       (size_t)dim * sizeof(float));
            }
        }
    }
}

int kv_cache_append(kv_cache *c, const float *k, const float *v, int seq, int layout, rope_embedding *rope) {
    if (!c) return ROPE_ERR_NULL;
    if (seq < 0 || seq > KV_CACHE_MAX_LENGTH - c->length) return ROPE_ERR_SHAPE;
    if (!valid_layout(layout)) return ROPE_ERR_LAYOUT;
    if (rope && rope->dim > c->head_dim) return ROPE_ERR_DIM;
    if (seq == 0) return ROPE_OK;
    if (!k || !v) return ROPE_ERR_NULL;
    int status = grow(c, c->length + seq);
    if (status != ROPE_OK) return status;
    copy_rows(c->keys, k, layout, c->batch, c->kv_heads, seq, c->head_dim, c->length);
    copy_rows(c->values, v, layout, c->batch, c->kv_heads, seq, c->v_head_dim, c->length);
    if (rope) {
        float *rows = c->keys + (size_t)c->length * (size_t)key_row(c);
        status = rope_apply(rope, rows, rows, ROPE_LAYOUT_SBHD, seq, c->batch, c->kv_heads, c->head_dim, c->length,
                            NULL, 0, 0);
        if (status != ROPE_OK) return status;  // length unchanged: the rows are not part of the cache
    }
    c->length += seq;
    return ROPE_OK;
}

// x [batch, nh, seq, dim] from layout `from` to layout `to` (x and y distinct).
static void transpose(const float *x, float *y, int from, int to, int batch, int nh, int seq, int dim) {
    for (int b = 0; b < batch; b++) {
        for (int h = 0; h < nh; h++) {
            for (int s = 0; s < seq; s++) {
                memcpy(y + vector_at(to, batch, nh, seq, dim, b, h, s), x + vector_at(from, batch, nh, seq, dim, b, h, s),
                       (size_t)dim * sizeof(float));
            }
        }
    }
}

int kv_cache_attend(const kv_cache *c, const float *q, float *out, float *weights, int heads, int seq_q, int layout,
                    float scale, rope_embedding *rope, const attention_options *options) {
    if (!c || !q || !out) return ROPE_ERR_NULL;
    if (heads < 1 || seq_q < 0) return ROPE_ERR_SHAPE;
    if (heads % c->kv_heads != 0) return ROPE_ERR_HEADS;
    if (!valid_layout(layout)) return ROPE_ERR_LAYOUT;
    if (rope && rope->dim > c->head_dim) return ROPE_ERR_DIM;
    attention_options opts = attention_options_defaults();
    opts.causal = ATTENTION_CAUSAL_BOTTOM_RIGHT;
    if (options) {
        opts = *options;
        if (opts.v_head_dim != 0 && opts.v_head_dim != c->v_head_dim) return ROPE_ERR_SHAPE;
    }
    opts.v_head_dim = c->v_head_dim;
    size_t nq = floats_of((int64_t)seq_q * heads, (int64_t)c->batch * c->head_dim);
    size_t nout = floats_of((int64_t)seq_q * heads, (int64_t)c->batch * c->v_head_dim);
    if (seq_q > 0 && (nq == 0 || nout == 0)) return ROPE_ERR_SHAPE;
    // With one query every layout is the same memory ([batch, heads, head_dim]).
    int reorder = seq_q > 1 && layout != ROPE_LAYOUT_SBHD;
    float *qs = NULL, *os = NULL;
    const float *qk = q;
    float *ok = out;
    int status = ROPE_OK;
    if (reorder || rope) {
        qs = malloc((nq ? nq : 1) * sizeof(float));
        if (!qs) return ROPE_ERR_NOMEM;
        if (reorder) transpose(q, qs, layout, ROPE_LAYOUT_SBHD, c->batch, heads, seq_q, c->head_dim);
        else memcpy(qs, q, nq * sizeof(float));
        if (rope) {
            status = rope_apply(rope, qs, qs, ROPE_LAYOUT_SBHD, seq_q, c->batch, heads, c->head_dim,
                                c->length - seq_q, NULL, 0, 0);
            if (status != ROPE_OK) goto done;
        }
        qk = qs;
    }
    if (reorder) {
        os = malloc((nout ? nout : 1) * sizeof(float));
        if (!os) {
            status = ROPE_ERR_NOMEM;
            goto done;
        }
        ok = os;
    }
    // An empty cache has no buffers yet: the kernel reads nothing of k and v when length is 0.
    static const float empty[1];
    status = rope_attention_forward_options(qk, c->keys ? c->keys : empty, c->values ? c->values : empty,
                                            ok, weights, c->batch, heads, c->kv_heads, seq_q, c->length, c->head_dim,
                                            ROPE_LAYOUT_SBHD, scale, NULL, 0, &opts);
    if (status == ROPE_OK && reorder) transpose(os, out, ROPE_LAYOUT_SBHD, layout, c->batch, heads, seq_q, c->v_head_dim);
done:
    free(qs);
    free(os);
    return status;
}

int kv_cache_attend_ex(const kv_cache *c, const float *q, float *out, float *weights, int heads, int seq_q,
                       int layout, float scale, rope_embedding *rope, int causal, int window_left, int window_right,
                       float softcap, const int32_t *kv_lengths, const uint8_t *mask_data,
                       const float *mask_additive, int mask_stride_b, int mask_stride_h, int mask_stride_q,
                       int mask_stride_k, float *scores, int scores_stage) {
    attention_options opts = attention_options_defaults();
    attention_mask mask = {mask_data, mask_stride_b, mask_stride_h, mask_stride_q, mask_stride_k, mask_additive};
    opts.causal = causal;
    opts.window_left = window_left;
    opts.window_right = window_right;
    opts.softcap = softcap;
    opts.kv_lengths = kv_lengths;
    opts.mask = (mask_data || mask_additive) ? &mask : NULL;
    opts.scores = scores;
    opts.scores_stage = scores_stage;
    return kv_cache_attend(c, q, out, weights, heads, seq_q, layout, scale, rope, &opts);
}

int kv_cache_truncate(kv_cache *c, int length) {
    if (!c) return ROPE_ERR_NULL;
    if (length < 0 || length > c->length) return ROPE_ERR_SHAPE;
    c->length = length;
    return ROPE_OK;
}

int kv_cache_reset(kv_cache *c) { return kv_cache_truncate(c, 0); }

int kv_cache_length(const kv_cache *c) { return c ? c->length : -1; }

int kv_cache_capacity(const kv_cache *c) { return c ? c->capacity : -1; }

int kv_cache_export(const kv_cache *c, float *present_key, float *present_value) {
    if (!c) return ROPE_ERR_NULL;
    for (int pass = 0; pass < 2; pass++) {
        float *dst = pass ? present_value : present_key;
        if (!dst) continue;
        const float *src = pass ? c->values : c->keys;
        int dim = pass ? c->v_head_dim : c->head_dim;
        if (c->length > 0) transpose(src, dst, ROPE_LAYOUT_SBHD, ROPE_LAYOUT_BHSD, c->batch, c->kv_heads, c->length, dim);
    }
    return ROPE_OK;
}
