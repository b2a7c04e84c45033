// linear.c: nn.Linear forward and backward as three gemm calls (y, dx, dweight) and a column sum.
#include "linear.h"

#include <stddef.h>

#include "gemm.h"
#include "rope_errors.h"

int linear_forward(float *y, const float *x, const float *weight, const float *bias, int rows, int in,
                   int out, int accumulate) {
    if (accumulate != 0 && accumulate != 1) return ROPE_ERR_LAYOUT;
    if (rows < 0 || in < 0 || out < 0) return ROPE_ERR_SHAPE;
    if (rows == 0 || out == 0) return ROPE_OK;
    if (!y || !weight || (in > 0 && !x)) return ROPE_ERR_NULL;
    if (!accumulate) return gemm_linear(x, weight, bias, y, rows, in, out);
    if (bias) {
        for (int r = 0; r < rows; r++) {
            float *yr = y + (size_t)r * out;
            for (int j = 0; j < out; j++) yr[j] += bias[j];
        }
    }
    return gemm(0, 1, rows, out, in, 1.0f, x, in, weight, in, 1.0f, y, out);
}

int linear_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                    const float *weight, int rows, int in, int out, int accumulate_dx) {
    if (accumulate_dx != 0 && accumulate_dx != 1) return ROPE_ERR_LAYOUT;
    if (rows < 0 || in < 0 || out < 0) return ROPE_ERR_SHAPE;
    if (rows == 0 || out == 0) {
        // dy is empty: dx = 0 (or unchanged), the parameter gradients unchanged.
        if (dx && !accumulate_dx) {
            for (size_t i = 0; i < (size_t)rows * (size_t)in; i++) dx[i] = 0.0f;
        }
        return ROPE_OK;
    }
    if (!dweight || !dy || !weight || (in > 0 && !x)) return ROPE_ERR_NULL;
    int status = ROPE_OK;
    if (dx) {
        // dx[rows, in] = dy[rows, out] weight[out, in]
        status = gemm(0, 0, rows, in, out, 1.0f, dy, out, weight, in, accumulate_dx ? 1.0f : 0.0f, dx, in);
    }
    // dweight[out, in] += dy^T[out, rows] x[rows, in]
    if (status == ROPE_OK) status = gemm(1, 0, out, in, rows, 1.0f, dy, out, x, in, 1.0f, dweight, in);
    if (status == ROPE_OK && dbias) {
        for (int r = 0; r < rows; r++) {
            const float *dyr = dy + (size_t)r * out;
            for (int j = 0; j < out; j++) dbias[j] += dyr[j];
        }
    }
    return status;
}
