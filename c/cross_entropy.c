// cross_entropy.c: log-softmax with the row's max subtracted (no overflow), then the target's term.
#include "cross_entropy.h"

#include <math.h>
#include <stddef.h>

#include "embedding.h"
#include "rope_errors.h"

static float row_max(const float *x, int n) {
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

int cross_entropy_forward(double *loss_sum, const float *logits, const int32_t *targets, int rows, int vocab) {
    if (!loss_sum) return ROPE_ERR_NULL;
    if (rows < 0 || vocab < 1) return ROPE_ERR_SHAPE;
    if (rows > 0 && !logits) return ROPE_ERR_NULL;
    int status = embedding_check_tokens(targets, rows, vocab);
    if (status != ROPE_OK) return status;
    double sum = 0.0;
    for (int r = 0; r < rows; r++) {
        const float *z = logits + (size_t)r * vocab;
        float m = row_max(z, vocab);
        double exp_sum = 0.0;
        for (int i = 0; i < vocab; i++) exp_sum += exp((double)z[i] - m);
        sum += log(exp_sum) - ((double)z[targets[r]] - m);
    }
    *loss_sum = sum;
    return ROPE_OK;
}

int cross_entropy_backward(float *dlogits, const float *logits, const int32_t *targets, int rows, int vocab,
                           float scale) {
    if (rows < 0 || vocab < 1) return ROPE_ERR_SHAPE;
    if (rows > 0 && (!logits || !dlogits)) return ROPE_ERR_NULL;
    if (!isfinite(scale)) return ROPE_ERR_VALUE;
    int status = embedding_check_tokens(targets, rows, vocab);
    if (status != ROPE_OK) return status;
    for (int r = 0; r < rows; r++) {
        const float *z = logits + (size_t)r * vocab;
        float *dz = dlogits + (size_t)r * vocab;
        float m = row_max(z, vocab);
        float exp_sum = 0.0f;
        for (int i = 0; i < vocab; i++) {
            dz[i] = expf(z[i] - m);  // in place is safe: z[i] is read before dz[i] is written
            exp_sum += dz[i];
        }
        float factor = scale / exp_sum;
        for (int i = 0; i < vocab; i++) dz[i] *= factor;
        dz[targets[r]] -= scale;
    }
    return ROPE_OK;
}
