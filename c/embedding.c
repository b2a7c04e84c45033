// embedding.c: table lookups and their scatter-add gradient.
#include "embedding.h"

#include <stddef.h>
#include <string.h>

#include "rope_errors.h"

int embedding_check_tokens(const int32_t *tokens, int count, int vocab) {
    if (count < 0 || vocab < 1) return ROPE_ERR_SHAPE;
    if (count > 0 && !tokens) return ROPE_ERR_NULL;
    for (int i = 0; i < count; i++) {
        if (tokens[i] < 0 || tokens[i] >= vocab) return ROPE_ERR_TOKEN;
    }
    return ROPE_OK;
}

// The checks both directions share: sizes, pointers, then every token.
static int check_arguments(const void *out, const void *in, const int32_t *tokens, int count, int vocab, int dim) {
    if (count < 0 || vocab < 1 || dim < 1) return ROPE_ERR_SHAPE;
    if (count > 0 && (!out || !in)) return ROPE_ERR_NULL;
    return embedding_check_tokens(tokens, count, vocab);
}

int embedding_forward(float *out, const int32_t *tokens, const float *table, int count, int vocab, int dim) {
    int status = check_arguments(out, table, tokens, count, vocab, dim);
    if (status != ROPE_OK) return status;
    for (int i = 0; i < count; i++) {
        memcpy(out + (size_t)i * dim, table + (size_t)tokens[i] * dim, (size_t)dim * sizeof(float));
    }
    return ROPE_OK;
}

int embedding_backward(float *dtable, const float *dout, const int32_t *tokens, int count, int vocab, int dim) {
    int status = check_arguments(dtable, dout, tokens, count, vocab, dim);
    if (status != ROPE_OK) return status;
    for (int i = 0; i < count; i++) {
        float *row = dtable + (size_t)tokens[i] * dim;
        const float *d = dout + (size_t)i * dim;
        for (int j = 0; j < dim; j++) row[j] += d[j];
    }
    return ROPE_OK;
}
