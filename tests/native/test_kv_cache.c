// test_kv_cache.c: the KV cache of c/kv_cache.h against rope_attention_forward_options on the
// whole sequence: decoding token by token (bit for bit without RoPE, float tolerance with it),
// prefill in chunks in every layout, GQA, a value head size of its own, options passed through,
// growth, truncate and re-append, export as ONNX present_key/present_value, bad arguments.
// Built by build.sh (ASan + UBSan + LeakSanitizer, and plain for valgrind); run from the root.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "kv_cache.h"
#include "rope.h"
#include "rope_errors.h"

#include "check.h"

static uint32_t state = 12345u;
static float uniform(void) {
    state = state * 1664525u + 1013904223u;
    return (float)((state >> 8) / 8388608.0 - 1.0);
}
static float *random_floats(size_t n) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = uniform();
    return x;
}

static size_t vector_at(int layout, int batch, int nh, int seq, int dim, int b, int h, int s) {
    size_t v;
    if (layout == ROPE_LAYOUT_SBHD) v = ((size_t)s * batch + b) * nh + h;
    else if (layout == ROPE_LAYOUT_BSHD) v = ((size_t)b * seq + s) * nh + h;
    else v = ((size_t)b * nh + h) * seq + s;
    return v * dim;
}

// Tokens [first, first + n) of x ([batch, nh, seq, dim] in layout `from`) as [batch, nh, n, dim]
// in layout `to`.
static float *slice(const float *x, int from, int to, int batch, int nh, int seq, int dim, int first, int n) {
    float *y = malloc(((size_t)batch * nh * n * dim + 1) * sizeof(float));
    for (int b = 0; b < batch; b++)
        for (int h = 0; h < nh; h++)
            for (int s = 0; s < n; s++)
                memcpy(y + vector_at(to, batch, nh, n, dim, b, h, s), x + vector_at(from, batch, nh, seq, dim, b, h, first + s),
                       (size_t)dim * sizeof(float));
    return y;
}

// max |a - b| / max(max |b|, 1e-30); exact: all equal bit for bit.
static double rel_error(const float *a, const float *b, size_t n, int *exact) {
    double err = 0, mag = 1e-30;
    *exact = memcmp(a, b, n * sizeof(float)) == 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= err)) err = d;
        if (fabs(b[i]) > mag) mag = fabs(b[i]);
    }
    return err / mag;
}

typedef struct {
    int batch, heads, kv_heads, seq, head_dim, v_head_dim, rope_dim, chunk, layout, capacity;
    int window_left;  // -1: none
    float softcap;
} decode_case;

// The whole causal call over seq tokens against the cache fed `chunk` tokens at a time, each chunk
// then attending with its queries.
static void check_decode(const decode_case *dc) {
    snprintf(context, sizeof(context), "decode b%d h%d kv%d seq%d d%d vd%d rope%d chunk%d layout%d cap%d win%d softcap%g",
             dc->batch, dc->heads, dc->kv_heads, dc->seq, dc->head_dim, dc->v_head_dim, dc->rope_dim, dc->chunk,
             dc->layout, dc->capacity, dc->window_left, dc->softcap);
    int B = dc->batch, H = dc->heads, KH = dc->kv_heads, T = dc->seq, D = dc->head_dim, VD = dc->v_head_dim;
    int L = dc->layout;
    float *q = random_floats((size_t)B * H * T * D);
    float *k = random_floats((size_t)B * KH * T * D);
    float *v = random_floats((size_t)B * KH * T * VD);
    float *full = malloc(((size_t)B * H * T * VD + 1) * sizeof(float));
    float *got = malloc(((size_t)B * H * T * VD + 1) * sizeof(float));
    rope_embedding *rope = dc->rope_dim ? rope_create(dc->rope_dim, 10000.0, ROPE_PAIRING_HALF) : NULL;
    attention_options opts = attention_options_defaults();
    opts.causal = ATTENTION_CAUSAL_BOTTOM_RIGHT;
    opts.v_head_dim = VD;
    opts.window_left = dc->window_left;
    opts.softcap = dc->softcap;
    float scale = 1.0f / sqrtf((float)D);
    CHECK(rope_attention_forward_options(q, k, v, full, NULL, B, H, KH, T, T, D, L, scale, rope, 0, &opts) == ROPE_OK);

    kv_cache *c = kv_cache_create(B, KH, D, VD, dc->capacity);
    CHECK(c != NULL);
    if (!c) return;
    int max_capacity_ok = 1;
    for (int t = 0; t < T; t += dc->chunk) {
        int n = t + dc->chunk <= T ? dc->chunk : T - t;
        float *kc = slice(k, L, L, B, KH, T, D, t, n);
        float *vc = slice(v, L, L, B, KH, T, VD, t, n);
        float *qc = slice(q, L, L, B, H, T, D, t, n);
        float *oc = malloc(((size_t)B * H * n * VD + 1) * sizeof(float));
        CHECK(kv_cache_append(c, kc, vc, n, L, rope) == ROPE_OK);
        CHECK(kv_cache_length(c) == t + n);
        if (kv_cache_capacity(c) > 2 * kv_cache_length(c) + 16 && kv_cache_capacity(c) > dc->capacity) max_capacity_ok = 0;
        attention_options o = opts;
        o.v_head_dim = 0;  // the cache's
        CHECK(kv_cache_attend(c, qc, oc, NULL, H, n, L, scale, rope, &o) == ROPE_OK);
        // scatter the chunk's rows into got (layout L, seq T)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int s = 0; s < n; s++)
                    memcpy(got + vector_at(L, B, H, T, VD, b, h, t + s), oc + vector_at(L, B, H, n, VD, b, h, s),
                           (size_t)VD * sizeof(float));
        free(kc), free(vc), free(qc), free(oc);
    }
    CHECK(max_capacity_ok);
    CHECK(kv_cache_capacity(c) >= T);
    int exact;
    double err = rel_error(got, full, (size_t)B * H * T * VD, &exact);
    CHECK(err <= 1e-5);
    // Without RoPE, one token at a time is the full call's rows bit for bit (attention.h).
    if (!dc->rope_dim && dc->chunk == 1) CHECK(exact);
    if (err > 1e-5) printf("  rel error %g\n", err);

    // Export: the keys as stored (rotated with rope), [batch, kv_heads, T, D].
    float *pk = malloc(((size_t)B * KH * T * D + 1) * sizeof(float));
    float *pv = malloc(((size_t)B * KH * T * VD + 1) * sizeof(float));
    CHECK(kv_cache_export(c, pk, pv) == ROPE_OK);
    float *kb = slice(k, L, ROPE_LAYOUT_BHSD, B, KH, T, D, 0, T);
    float *vb = slice(v, L, ROPE_LAYOUT_BHSD, B, KH, T, VD, 0, T);
    if (rope) CHECK(rope_apply(rope, kb, kb, ROPE_LAYOUT_BHSD, B, KH, T, D, 0, NULL, 0, 0) == ROPE_OK);
    CHECK(rel_error(pk, kb, (size_t)B * KH * T * D, &exact) <= 1e-6);
    if (!rope) CHECK(exact);
    CHECK(memcmp(pv, vb, (size_t)B * KH * T * VD * sizeof(float)) == 0);
    free(pk), free(pv), free(kb), free(vb);

    kv_cache_destroy(c);
    rope_destroy(rope);
    free(q), free(k), free(v), free(full), free(got);
}

static void test_decode(void) {
    int layouts[] = {ROPE_LAYOUT_BHSD, ROPE_LAYOUT_BSHD, ROPE_LAYOUT_SBHD};
    for (int li = 0; li < 3; li++) {
        int L = layouts[li];
        check_decode(&(decode_case){1, 4, 4, 40, 16, 16, 0, 1, L, 0, -1, 0});
        check_decode(&(decode_case){2, 4, 2, 37, 20, 20, 0, 1, L, 0, -1, 0});     // GQA, head_dim not a multiple of 8
        check_decode(&(decode_case){2, 8, 1, 50, 16, 16, 16, 1, L, 3, -1, 0});    // MQA, RoPE, growth from 3
        check_decode(&(decode_case){1, 4, 2, 45, 32, 12, 16, 7, L, 0, -1, 0});    // chunks of 7, v head 12, partial RoPE
        check_decode(&(decode_case){2, 4, 4, 70, 16, 16, 0, 1, L, 1, 9, 30.0f});  // window 10 + softcap
        check_decode(&(decode_case){1, 2, 2, 33, 8, 8, 8, 33, L, 0, -1, 0});      // one prefill of everything
    }
}

// Truncate then re-append different keys: equals the full call on the new sequence.
static void test_truncate(void) {
    snprintf(context, sizeof(context), "truncate");
    int B = 1, H = 2, D = 16, T = 20;
    float *q = random_floats((size_t)B * H * T * D), *k = random_floats((size_t)B * H * T * D);
    float *v = random_floats((size_t)B * H * T * D), *junk = random_floats((size_t)B * H * 8 * D);
    float *full = malloc((size_t)B * H * T * D * sizeof(float));
    float *last = malloc((size_t)B * H * D * sizeof(float));
    rope_embedding *rope = rope_create(D, 10000.0, ROPE_PAIRING_INTERLEAVED);
    float scale = 0.25f;
    CHECK(rope_attention_forward(q, k, v, full, NULL, B, H, H, T, T, D, ROPE_LAYOUT_SBHD, 1, scale, rope, 0) == ROPE_OK);
    kv_cache *c = kv_cache_create(B, H, D, 0, 4);
    CHECK(kv_cache_append(c, k, v, 12, ROPE_LAYOUT_SBHD, rope) == ROPE_OK);
    CHECK(kv_cache_append(c, junk, junk, 8, ROPE_LAYOUT_SBHD, rope) == ROPE_OK);
    CHECK(kv_cache_length(c) == 20);
    CHECK(kv_cache_truncate(c, 21) == ROPE_ERR_SHAPE);
    CHECK(kv_cache_truncate(c, -1) == ROPE_ERR_SHAPE);
    CHECK(kv_cache_truncate(c, 12) == ROPE_OK);
    size_t row = (size_t)B * H * D;
    CHECK(kv_cache_append(c, k + 12 * row, v + 12 * row, 8, ROPE_LAYOUT_SBHD, rope) == ROPE_OK);
    CHECK(kv_cache_attend(c, q + 19 * row, last, NULL, H, 1, ROPE_LAYOUT_SBHD, scale, rope, NULL) == ROPE_OK);
    int exact;
    CHECK(rel_error(last, full + 19 * row, row, &exact) <= 1e-5);
    int capacity = kv_cache_capacity(c);
    CHECK(kv_cache_reset(c) == ROPE_OK);
    CHECK(kv_cache_length(c) == 0 && kv_cache_capacity(c) == capacity);
    // An empty cache: every query sees nothing, zeros.
    for (size_t i = 0; i < row; i++) last[i] = 7;
    CHECK(kv_cache_attend(c, q, last, NULL, H, 1, ROPE_LAYOUT_SBHD, scale, NULL, NULL) == ROPE_OK);
    int zeros = 1;
    for (size_t i = 0; i < row; i++) zeros &= last[i] == 0;
    CHECK(zeros);
    kv_cache_destroy(c);
    // Empty from creation (no buffers yet).
    c = kv_cache_create(B, H, D, 0, 0);
    CHECK(c && kv_cache_capacity(c) == 0);
    CHECK(kv_cache_attend(c, q, last, NULL, H, 1, ROPE_LAYOUT_BHSD, scale, NULL, NULL) == ROPE_OK);
    CHECK(kv_cache_export(c, NULL, NULL) == ROPE_OK);
    CHECK(kv_cache_append(c, NULL, NULL, 0, ROPE_LAYOUT_BHSD, NULL) == ROPE_OK);
    kv_cache_destroy(c);
    rope_destroy(rope);
    free(q), free(k), free(v), free(junk), free(full), free(last);
}

// Growth is geometric: 1,000 single-row appends reallocate a handful of times.
static void test_growth(void) {
    snprintf(context, sizeof(context), "growth");
    kv_cache *c = kv_cache_create(1, 1, 4, 0, 0);
    float row[4] = {1, 2, 3, 4};
    int changes = 0, capacity = kv_cache_capacity(c);
    for (int t = 0; t < 1000; t++) {
        CHECK(kv_cache_append(c, row, row, 1, ROPE_LAYOUT_BHSD, NULL) == ROPE_OK || (t = 1000, 0));
        if (kv_cache_capacity(c) != capacity) changes++, capacity = kv_cache_capacity(c);
    }
    CHECK(kv_cache_length(c) == 1000);
    CHECK(changes <= 8);          // 16, 32, ..., 1024
    CHECK(capacity == 1024);
    CHECK(kv_cache_reserve(c, 10) == ROPE_OK && kv_cache_capacity(c) == 1024);  // never shrinks
    CHECK(kv_cache_reserve(c, 3000) == ROPE_OK && kv_cache_capacity(c) == 3000);
    float out[4];
    CHECK(kv_cache_attend(c, row, out, NULL, 1, 1, ROPE_LAYOUT_BHSD, 0.5f, NULL, NULL) == ROPE_OK);
    CHECK(out[0] == 1 && out[3] == 4);  // every value row is the same
    kv_cache_destroy(c);
}

static void test_errors(void) {
    snprintf(context, sizeof(context), "errors");
    CHECK(kv_cache_create(0, 1, 4, 0, 0) == NULL);
    CHECK(kv_cache_create(1, 0, 4, 0, 0) == NULL);
    CHECK(kv_cache_create(1, 1, 0, 0, 0) == NULL);
    CHECK(kv_cache_create(1, 1, 4, -1, 0) == NULL);
    CHECK(kv_cache_create(1, 1, 4, 0, -1) == NULL);
    kv_cache *c = kv_cache_create(2, 2, 8, 4, 2);
    float x[64] = {0}, out[64];
    rope_embedding *rope = rope_create(16, 10000.0, ROPE_PAIRING_HALF);  // dim 16 > head_dim 8
    CHECK(kv_cache_append(NULL, x, x, 1, 0, NULL) == ROPE_ERR_NULL);
    CHECK(kv_cache_append(c, NULL, x, 1, 0, NULL) == ROPE_ERR_NULL);
    CHECK(kv_cache_append(c, x, NULL, 1, 0, NULL) == ROPE_ERR_NULL);
    CHECK(kv_cache_append(c, x, x, -1, 0, NULL) == ROPE_ERR_SHAPE);
    CHECK(kv_cache_append(c, x, x, 1, 3, NULL) == ROPE_ERR_LAYOUT);
    CHECK(kv_cache_append(c, x, x, 1, 0, rope) == ROPE_ERR_DIM);
    CHECK(kv_cache_append(c, x, x, KV_CACHE_MAX_LENGTH + 1, 0, NULL) == ROPE_ERR_SHAPE);
    CHECK(kv_cache_length(c) == 0);
    CHECK(kv_cache_append(c, x, x, 1, 0, NULL) == ROPE_OK);
    CHECK(kv_cache_attend(NULL, x, out, NULL, 2, 1, 0, 1, NULL, NULL) == ROPE_ERR_NULL);
    CHECK(kv_cache_attend(c, NULL, out, NULL, 2, 1, 0, 1, NULL, NULL) == ROPE_ERR_NULL);
    CHECK(kv_cache_attend(c, x, NULL, NULL, 2, 1, 0, 1, NULL, NULL) == ROPE_ERR_NULL);
    CHECK(kv_cache_attend(c, x, out, NULL, 3, 1, 0, 1, NULL, NULL) == ROPE_ERR_HEADS);
    CHECK(kv_cache_attend(c, x, out, NULL, 0, 1, 0, 1, NULL, NULL) == ROPE_ERR_SHAPE);
    CHECK(kv_cache_attend(c, x, out, NULL, 2, -1, 0, 1, NULL, NULL) == ROPE_ERR_SHAPE);
    CHECK(kv_cache_attend(c, x, out, NULL, 2, 1, 7, 1, NULL, NULL) == ROPE_ERR_LAYOUT);
    CHECK(kv_cache_attend(c, x, out, NULL, 2, 1, 0, 1, rope, NULL) == ROPE_ERR_DIM);
    CHECK(kv_cache_attend(c, x, out, NULL, 2, 1, 0, INFINITY, NULL, NULL) == ROPE_ERR_SCALE);
    attention_options o = attention_options_defaults();
    o.v_head_dim = 8;  // the cache's is 4
    CHECK(kv_cache_attend(c, x, out, NULL, 2, 1, 0, 1, NULL, &o) == ROPE_ERR_SHAPE);
    o.v_head_dim = 4;
    o.window_left = -2;
    CHECK(kv_cache_attend(c, x, out, NULL, 2, 1, 0, 1, NULL, &o) == ROPE_ERR_VALUE);
    CHECK(kv_cache_attend_ex(c, x, out, NULL, 2, 1, 0, 1, NULL, 5, -1, -1, 0, NULL, NULL, NULL, 0, 0, 0, 0, NULL, 0) == ROPE_ERR_VALUE);
    CHECK(kv_cache_attend_ex(c, x, out, NULL, 2, 1, 0, 1, NULL, 1, -1, -1, 0, NULL, NULL, NULL, 0, 0, 0, 0, NULL, 0) == ROPE_OK);
    CHECK(kv_cache_truncate(NULL, 0) == ROPE_ERR_NULL);
    CHECK(kv_cache_reset(NULL) == ROPE_ERR_NULL);
    CHECK(kv_cache_reserve(NULL, 1) == ROPE_ERR_NULL);
    CHECK(kv_cache_reserve(c, -1) == ROPE_ERR_SHAPE);
    CHECK(kv_cache_export(NULL, x, x) == ROPE_ERR_NULL);
    CHECK(kv_cache_length(NULL) == -1 && kv_cache_capacity(NULL) == -1);
    CHECK(kv_cache_length(c) == 1);
    kv_cache_destroy(c);
    kv_cache_destroy(NULL);
    rope_destroy(rope);
}

// Masks pass through: a boolean key-padding mask over the cache equals the full call's.
static void test_mask(void) {
    snprintf(context, sizeof(context), "mask");
    int B = 2, H = 2, D = 8, T = 24;
    float *q = random_floats((size_t)B * H * D), *k = random_floats((size_t)B * H * T * D), *v = random_floats((size_t)B * H * T * D);
    uint8_t pad[2 * 24];
    for (int i = 0; i < 2 * 24; i++) pad[i] = (i % 24) < (i < 24 ? 20 : 9);
    attention_mask m = {pad, 24, 0, 0, 1, NULL};
    attention_options o = attention_options_defaults();
    o.causal = ATTENTION_CAUSAL_BOTTOM_RIGHT;
    o.mask = &m;
    float full[2 * 2 * 8], got[2 * 2 * 8];
    CHECK(rope_attention_forward_options(q, k, v, full, NULL, B, H, H, 1, T, D, ROPE_LAYOUT_BHSD, 0.3f, NULL, 0, &o) == ROPE_OK);
    kv_cache *c = kv_cache_create(B, H, D, 0, 0);
    CHECK(kv_cache_append(c, k, v, T, ROPE_LAYOUT_BHSD, NULL) == ROPE_OK);
    CHECK(kv_cache_attend(c, q, got, NULL, H, 1, ROPE_LAYOUT_BHSD, 0.3f, NULL, &o) == ROPE_OK);
    CHECK(memcmp(full, got, sizeof(full)) == 0);
    kv_cache_destroy(c);
    free(q), free(k), free(v);
}

int main(void) {
    test_decode();
    test_truncate();
    test_growth();
    test_errors();
    test_mask();
    return check_report();
}
