// rope.c: the rotary embedding object: configuration, frequencies in force, the apply driver.
#include "rope.h"
#include "rope_errors.h"
#include "rope_kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

rope_embedding *rope_create(int dim, double base, int pairing) {
    if (dim <= 0 || dim % 2 != 0) return NULL;
    if (!isfinite(base) || base <= 0) return NULL;
    if (pairing != ROPE_PAIRING_HALF && pairing != ROPE_PAIRING_INTERLEAVED) return NULL;
    rope_embedding *r = calloc(1, sizeof(rope_embedding));
    if (!r) return NULL;
    r->inv_freq = malloc((size_t)(dim / 2) * sizeof(double));
    if (!r->inv_freq) {
        free(r);
        return NULL;
    }
    r->dim = dim;
    r->base = base;
    r->pairing = pairing;
    r->scaling.type = ROPE_SCALING_NONE;
    rope_table_init(&r->table, dim / 2);
    r->attention_scaling = rope_inverse_frequencies(r->inv_freq, dim, base, &r->scaling, 0);
    return r;
}

void rope_destroy(rope_embedding *r) {
    if (!r) return;
    rope_table_free(&r->table);
    free(r->inv_freq);
    free(r->short_factor);
    free(r->long_factor);
    free(r->rows);
    free(r->token_rows);
    free(r);
}

// The seq_len the frequencies depend on after a call reaching seq_len, by transformers' rules.
static int64_t frequency_seq_len(const rope_embedding *r, int64_t seq_len) {
    const rope_scaling *s = &r->scaling;
    if (s->type == ROPE_SCALING_DYNAMIC) {
        // dynamic_frequency_update: grow past the longest seen; reset once a call fits the
        // original context again.
        int64_t original = (int64_t)s->original_max_positions;
        int64_t cached = r->freq_seq_len;
        if (seq_len > cached) cached = seq_len;
        if (seq_len < original && cached > original) cached = original;
        return cached;
    }
    if (s->type == ROPE_SCALING_LONGROPE) {
        // longrope_frequency_update: long factors exactly when the call exceeds the original. One
        // value per factor set, so that only a switch counts as a change. (The cast is safe:
        // original < seq_len there.)
        return (double)seq_len > s->original_max_positions ? (int64_t)s->original_max_positions + 1 : 0;
    }
    return 0;
}

// Recomputes the frequencies (and forgets the table) only when they change.
static void update_frequencies(rope_embedding *r, int64_t seq_len) {
    int64_t wanted = frequency_seq_len(r, seq_len);
    if (wanted == r->freq_seq_len) return;
    r->freq_seq_len = wanted;
    r->attention_scaling = rope_inverse_frequencies(r->inv_freq, r->dim, r->base, &r->scaling, wanted);
    rope_table_clear(&r->table);
}

static int set_scaling(rope_embedding *r, const rope_scaling *s) {
    int status = rope_scaling_check(s, r->dim, r->base);
    if (status != ROPE_OK) return status;
    r->scaling = *s;
    r->freq_seq_len = s->type == ROPE_SCALING_DYNAMIC ? (int64_t)s->original_max_positions : 0;
    r->attention_scaling = rope_inverse_frequencies(r->inv_freq, r->dim, r->base, &r->scaling, r->freq_seq_len);
    rope_table_clear(&r->table);
    return ROPE_OK;
}

int rope_set_linear(rope_embedding *r, double factor) {
    if (!r) return ROPE_ERR_NULL;
    rope_scaling s = {0};
    s.type = ROPE_SCALING_LINEAR;
    s.factor = factor;
    return set_scaling(r, &s);
}

int rope_set_dynamic(rope_embedding *r, double factor, double original_max_positions) {
    if (!r) return ROPE_ERR_NULL;
    rope_scaling s = {0};
    s.type = ROPE_SCALING_DYNAMIC;
    s.factor = factor;
    s.original_max_positions = original_max_positions;
    // The state is kept in int64 positions.
    if (!(original_max_positions >= 1 && original_max_positions <= 2147483647.0)) return ROPE_ERR_SCALING;
    return set_scaling(r, &s);
}

int rope_set_yarn(rope_embedding *r, double factor, double original_max_positions, double beta_fast,
                  double beta_slow, double mscale, double mscale_all_dim, double attention_factor,
                  int truncate) {
    if (!r) return ROPE_ERR_NULL;
    rope_scaling s = {0};
    s.type = ROPE_SCALING_YARN;
    s.factor = factor;
    s.original_max_positions = original_max_positions;
    s.beta_fast = beta_fast;
    s.beta_slow = beta_slow;
    s.mscale = mscale;
    s.mscale_all_dim = mscale_all_dim;
    s.attention_factor = attention_factor;
    s.truncate = truncate != 0;
    return set_scaling(r, &s);
}

int rope_set_llama3(rope_embedding *r, double factor, double low_freq_factor, double high_freq_factor,
                    double original_max_positions) {
    if (!r) return ROPE_ERR_NULL;
    rope_scaling s = {0};
    s.type = ROPE_SCALING_LLAMA3;
    s.factor = factor;
    s.low_freq_factor = low_freq_factor;
    s.high_freq_factor = high_freq_factor;
    s.original_max_positions = original_max_positions;
    return set_scaling(r, &s);
}

int rope_set_longrope(rope_embedding *r, const double *short_factor, const double *long_factor,
                      double original_max_positions, double max_positions, double attention_factor) {
    if (!r) return ROPE_ERR_NULL;
    if (!short_factor || !long_factor) return ROPE_ERR_NULL;
    size_t bytes = (size_t)(r->dim / 2) * sizeof(double);
    double *short_copy = malloc(bytes), *long_copy = malloc(bytes);
    if (!short_copy || !long_copy) {
        free(short_copy);
        free(long_copy);
        return ROPE_ERR_NOMEM;
    }
    memcpy(short_copy, short_factor, bytes);
    memcpy(long_copy, long_factor, bytes);
    rope_scaling s = {0};
    s.type = ROPE_SCALING_LONGROPE;
    s.short_factor = short_copy;
    s.long_factor = long_copy;
    s.original_max_positions = original_max_positions;
    s.max_positions = max_positions;
    s.attention_factor = attention_factor;
    int status = set_scaling(r, &s);
    if (status != ROPE_OK) {
        free(short_copy);
        free(long_copy);
        return status;
    }
    free(r->short_factor);
    free(r->long_factor);
    r->short_factor = short_copy;
    r->long_factor = long_copy;
    return ROPE_OK;
}

int rope_prepare(rope_embedding *r, int64_t seq_len) {
    if (!r) return ROPE_ERR_NULL;
    update_frequencies(r, seq_len);
    return ROPE_OK;
}

const double *rope_inv_freq(const rope_embedding *r) { return r ? r->inv_freq : NULL; }
double rope_attention_scaling(const rope_embedding *r) { return r ? r->attention_scaling : NAN; }
double rope_rows_computed(const rope_embedding *r) {
    return r ? (double)(r->table.computed + r->token_rows_computed) : NAN;
}
double rope_table_first(const rope_embedding *r) { return r ? (double)r->table.first : NAN; }
double rope_table_rows(const rope_embedding *r) { return r ? (double)r->table.rows : NAN; }

// Grows a scratch array to hold `count` elements of `size` bytes; keeps it on failure.
static int grow(void **array, int64_t *capacity, int64_t count, size_t size) {
    if (count <= *capacity) return ROPE_OK;
    if ((uint64_t)count > SIZE_MAX / size) return ROPE_ERR_NOMEM;
    void *grown = realloc(*array, (size_t)count * size);
    if (!grown) return ROPE_ERR_NOMEM;
    *array = grown;
    *capacity = count;
    return ROPE_OK;
}

// Where each token's cos/sin row is: r->rows[token] indexes the returned cos/sin arrays.
// tokens: positions_len, or seq when positions come from the offset.
static int locate_rows(rope_embedding *r, int64_t offset, const int32_t *positions, int64_t tokens,
                       const float **cos, const float **sin) {
    int half = r->dim / 2;
    int64_t lo = offset, hi = offset + tokens - 1;
    if (positions) {
        lo = hi = positions[0];
        for (int64_t t = 1; t < tokens; t++) {
            if (positions[t] < lo) lo = positions[t];
            if (positions[t] > hi) hi = positions[t];
        }
    }
    update_frequencies(r, hi + 1);
    int status = grow((void **)&r->rows, &r->rows_capacity, tokens, sizeof(int32_t));
    if (status != ROPE_OK) return status;

    if (hi - lo + 1 <= rope_table_max_rows(&r->table)) {
        status = rope_table_cover(&r->table, lo, hi, r->inv_freq, r->attention_scaling);
        if (status != ROPE_OK) return status;
        for (int64_t t = 0; t < tokens; t++) {
            int64_t p = positions ? positions[t] : offset + t;
            r->rows[t] = (int32_t)(p - r->table.first);
        }
        *cos = r->table.cos;
        *sin = r->table.sin;
        return ROPE_OK;
    }
    // Positions spread wider than any table: one row per token, computed for this call only.
    status = grow((void **)&r->token_rows, &r->token_capacity, tokens * half * 2, sizeof(float));
    if (status != ROPE_OK) return status;
    float *token_cos = r->token_rows, *token_sin = r->token_rows + tokens * half;
    for (int64_t t = 0; t < tokens; t++) {
        int64_t p = positions ? positions[t] : offset + t;
        rope_table_row(token_cos + t * half, token_sin + t * half, p, r->inv_freq, half, r->attention_scaling);
        r->rows[t] = (int32_t)t;
    }
    r->token_rows_computed += tokens;
    *cos = token_cos;
    *sin = token_sin;
    return ROPE_OK;
}

int rope_apply(rope_embedding *r, const float *x, float *y, int layout, int n0, int n1, int n2,
               int head_dim, int offset, const int32_t *positions, int positions_len, int inverse) {
    return rope_apply_vectors(r, x, y, layout, n0, n1, n2, head_dim, offset, positions, positions_len, inverse,
                              0, -1);
}

int rope_apply_vectors(rope_embedding *r, const float *x, float *y, int layout, int n0, int n1, int n2,
                       int head_dim, int offset, const int32_t *positions, int positions_len, int inverse,
                       int first_vector, int vector_count) {
    if (!r || !x || !y) return ROPE_ERR_NULL;
    if (layout < ROPE_LAYOUT_SBHD || layout > ROPE_LAYOUT_BHSD) return ROPE_ERR_LAYOUT;
    if (n0 < 0 || n1 < 0 || n2 < 0 || head_dim < 0) return ROPE_ERR_SHAPE;
    if (head_dim < r->dim) return ROPE_ERR_DIM;
    // n0 * n1 < 2^62 cannot wrap, but a third factor can (2^22 cubed wraps to 0): divide instead.
    uint64_t limit = SIZE_MAX / sizeof(float) / (uint64_t)head_dim;
    uint64_t count = (uint64_t)n0 * (uint64_t)n1;
    if (n2 != 0 && count > limit / (uint64_t)n2) return ROPE_ERR_SHAPE;
    count *= (uint64_t)n2;
    if (first_vector < 0 || vector_count < -1 || (uint64_t)first_vector > count) return ROPE_ERR_SHAPE;
    int64_t todo = vector_count == -1 ? (int64_t)(count - (uint64_t)first_vector) : vector_count;
    if ((uint64_t)first_vector + (uint64_t)todo > count) return ROPE_ERR_SHAPE;

    // Which of the three outer axes are seq and batch.
    int seq = layout == ROPE_LAYOUT_SBHD ? n0 : layout == ROPE_LAYOUT_BSHD ? n1 : n2;
    int batch = layout == ROPE_LAYOUT_SBHD ? n1 : n0;
    int64_t tokens = seq;  // rows of the position table
    int per_batch = 0;
    if (positions) {
        if (positions_len == seq) {
            tokens = seq;
        } else if ((int64_t)positions_len == (int64_t)batch * seq) {
            tokens = positions_len;
            per_batch = 1;
        } else {
            return ROPE_ERR_POSITIONS;
        }
    }
    if (todo == 0) return ROPE_OK;

    const float *cos, *sin;
    int status = locate_rows(r, offset, positions, tokens, &cos, &sin);
    if (status != ROPE_OK) return status;

    int half = r->dim / 2;
    int dim = r->dim;
    int pairing = r->pairing;
    const int32_t *rows = r->rows;
    size_t pass_bytes = x != y ? (size_t)(head_dim - dim) * sizeof(float) : 0;
    // Vector (i0, i1, i2) (the outer axes as laid out) is token i0 * t0 + i1 * t1 + i2 * t2 of rows.
    int64_t b_stride = per_batch ? seq : 0;
    int64_t t0 = layout == ROPE_LAYOUT_SBHD ? 1 : b_stride;
    int64_t t1 = layout == ROPE_LAYOUT_SBHD ? b_stride : layout == ROPE_LAYOUT_BSHD ? 1 : 0;
    int64_t t2 = layout == ROPE_LAYOUT_BHSD ? 1 : 0;
    // Start at vector first_vector = (i0 * n1 + i1) * n2 + i2, walk vector_count in memory order.
    int64_t i0 = first_vector / ((int64_t)n1 * n2);
    int64_t i1 = first_vector / n2 % n1;
    int64_t i2 = first_vector % n2;
    const float *xv = x;
    float *yv = y;
    for (int64_t left = todo; left > 0;) {
        const int32_t *token = rows + i0 * t0 + i1 * t1 + i2 * t2;
        int64_t run = n2 - i2 < left ? n2 - i2 : left;  // the rest of this (i0, i1) row of vectors
        for (int64_t v = 0; v < run; v++, token += t2, xv += head_dim, yv += head_dim) {
            const float *c = cos + (int64_t)*token * half, *sn = sin + (int64_t)*token * half;
            if (pairing == ROPE_PAIRING_HALF) {
                rope_rotate_half(xv, yv, c, sn, dim, inverse);
            } else {
                rope_rotate_interleaved(xv, yv, c, sn, dim, inverse);
            }
            if (pass_bytes) memcpy(yv + dim, xv + dim, pass_bytes);
        }
        left -= run;
        i2 = 0;
        if (++i1 == n1) {
            i1 = 0;
            i0++;
        }
    }
    return ROPE_OK;
}
