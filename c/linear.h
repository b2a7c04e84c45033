// linear.h: PyTorch's nn.Linear (y = x W^T + b, weight [out, in]) forward and backward on the
// shared matrix kernel (gemm.h), for the trainer.
#ifndef ROPE_LINEAR_H
#define ROPE_LINEAR_H

// y = x weight^T + bias (accumulate 0), or y += x weight^T + bias (accumulate 1: a residual add)
//   x: [rows, in], weight: [out, in], bias: [out] or NULL, y: [rows, out] (overlaps nothing)
// Returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_SHAPE, ROPE_ERR_LAYOUT (accumulate not 0 or 1) or
// ROPE_ERR_NOMEM.
int linear_forward(float *y, const float *x, const float *weight, const float *bias, int rows, int in,
                   int out, int accumulate);

// The gradients of the forward above, given dy = dLoss/dy [rows, out]:
//   dx = dy weight          [rows, in]; written (accumulate_dx 0) or added to (1); NULL: not wanted
//   dweight += dy^T x       [out, in]
//   dbias += column sums of dy  [out]; NULL when the layer has no bias
// x: [rows, in] the forward's input. dx, dweight, dbias overlap nothing else.
// Returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_SHAPE, ROPE_ERR_LAYOUT or ROPE_ERR_NOMEM.
int linear_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                    const float *weight, int rows, int in, int out, int accumulate_dx);

#endif
