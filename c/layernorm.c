// layernorm.c: LayerNorm forward and backward, one row at a time (a row of d_model floats stays in
// L1; these passes are a few percent of a training step, so plain loops that the compiler
// vectorises are enough).
#include "layernorm.h"

#include <math.h>
#include <stddef.h>

#include "rope_errors.h"

int layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *weight,
                      const float *bias, int rows, int dim, float eps) {
    if (rows < 0 || dim < 1) return ROPE_ERR_SHAPE;
    if (rows == 0) return ROPE_OK;
    if (!out || !mean || !rstd || !x || !weight || !bias) return ROPE_ERR_NULL;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = out + (size_t)r * dim;
        // Two passes (mean, then the squared deviations): no cancellation when |mean| >> std.
        float sum = 0.0f;
        for (int i = 0; i < dim; i++) sum += xr[i];
        float m = sum / (float)dim;
        float square_sum = 0.0f;
        for (int i = 0; i < dim; i++) {
            float deviation = xr[i] - m;
            square_sum += deviation * deviation;
        }
        float s = 1.0f / sqrtf(square_sum / (float)dim + eps);
        for (int i = 0; i < dim; i++) yr[i] = (xr[i] - m) * s * weight[i] + bias[i];
        mean[r] = m;
        rstd[r] = s;
    }
    return ROPE_OK;
}

int layernorm_backward(float *dx, float *dweight, float *dbias, const float *dout, const float *x,
                       const float *mean, const float *rstd, const float *weight, int rows, int dim) {
    if (rows < 0 || dim < 1) return ROPE_ERR_SHAPE;
    if (rows == 0) return ROPE_OK;
    if (!dx || !dweight || !dbias || !dout || !x || !mean || !rstd || !weight) return ROPE_ERR_NULL;
    for (int r = 0; r < rows; r++) {
        const float *dyr = dout + (size_t)r * dim, *xr = x + (size_t)r * dim;
        float *dxr = dx + (size_t)r * dim;
        float m = mean[r], s = rstd[r];
        // With n = (x - mean) rstd and g = dout * weight (the gradient w.r.t. n):
        // dx = rstd (g - mean(g) - n mean(g n)), the two means from differentiating mean and rstd.
        float g_sum = 0.0f, gn_sum = 0.0f;
        for (int i = 0; i < dim; i++) {
            float n = (xr[i] - m) * s;
            float g = dyr[i] * weight[i];
            g_sum += g;
            gn_sum += g * n;
            dbias[i] += dyr[i];
            dweight[i] += dyr[i] * n;
        }
        float g_mean = g_sum / (float)dim, gn_mean = gn_sum / (float)dim;
        for (int i = 0; i < dim; i++) {
            float n = (xr[i] - m) * s;
            dxr[i] += (dyr[i] * weight[i] - g_mean - n * gn_mean) * s;
        }
    }
    return ROPE_OK;
}
