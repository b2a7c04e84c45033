// mha.c: RotaryPEMultiHeadAttention forward: four nn.Linear projections on the shared matrix
// kernel around one call of the attention kernel. x [seq, batch, d_model] projected is already
// [seq, batch, heads, d_k], the 'sbhd' layout, so nothing is transposed.
#include "mha.h"
#include "attention.h"
#include "gemm.h"
#include "rope_errors.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int rope_mha_forward(const float *x, float *y, int seq, int batch, int d_model, int heads,
                     const mha_weights *w, rope_embedding *rope, int causal, const uint8_t *mask,
                     int mask_batch) {
    if (!x || !y || !w) return ROPE_ERR_NULL;
    if (!w->query_weight || !w->key_weight || !w->value_weight || !w->output_weight) return ROPE_ERR_NULL;
    if (seq < 0 || batch < 1 || d_model < 1 || heads < 1) return ROPE_ERR_SHAPE;
    if (d_model % heads != 0) return ROPE_ERR_HEADS;
    if (mask && mask_batch != 1 && mask_batch != batch) return ROPE_ERR_SHAPE;
    int d_k = d_model / heads;
    if (rope && rope->dim > d_k) return ROPE_ERR_DIM;
    uint64_t rows = (uint64_t)seq * (uint64_t)batch;
    if (rows > INT32_MAX || rows * (uint64_t)d_model > SIZE_MAX / sizeof(float) / 4) return ROPE_ERR_SHAPE;
    if (rows == 0) return ROPE_OK;

    // q, k, v, attended: [seq, batch, d_model] each, one allocation.
    size_t size = (size_t)rows * (size_t)d_model;
    float *scratch = malloc(4 * size * sizeof(float));
    if (!scratch) return ROPE_ERR_NOMEM;
    float *q = scratch, *k = q + size, *v = k + size, *attended = v + size;

    int status = gemm_linear(x, w->query_weight, w->query_bias, q, (int)rows, d_model, d_model);
    if (status == ROPE_OK) status = gemm_linear(x, w->key_weight, w->key_bias, k, (int)rows, d_model, d_model);
    if (status == ROPE_OK) status = gemm_linear(x, w->value_weight, w->value_bias, v, (int)rows, d_model, d_model);
    if (status == ROPE_OK) {
        // The seed's mask [seq_q, seq_k, batch or 1]: element (i, j, b) at (i * seq + j) * mask_batch + b.
        attention_mask m = {0};
        if (mask) {
            m.data = mask;
            m.stride_q = (int64_t)seq * mask_batch;
            m.stride_k = mask_batch;
            m.stride_b = mask_batch == 1 ? 0 : 1;
            m.stride_h = 0;
        }
        status = rope_attention_forward_masked(q, k, v, attended, NULL, batch, heads, heads, seq, seq, d_k,
                                               ROPE_LAYOUT_SBHD, causal, (float)(1.0 / sqrt((double)d_k)),
                                               rope, 0, mask ? &m : NULL);
    }
    if (status == ROPE_OK) {
        status = gemm_linear(attended, w->output_weight, w->output_bias, y, (int)rows, d_model, d_model);
    }
    free(scratch);
    return status;
}
