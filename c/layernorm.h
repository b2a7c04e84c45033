// layernorm.h: PyTorch's nn.LayerNorm over the last axis (biased variance, eps inside the square
// root), forward and backward, for the trainer.
#ifndef ROPE_LAYERNORM_H
#define ROPE_LAYERNORM_H

// out = (x - mean) * rstd * weight + bias per row, rstd = 1 / sqrt(var + eps)
//   x, out: [rows, dim] (out may not overlap x); weight, bias: [dim]
//   mean, rstd: [rows], saved for the backward pass
// Returns ROPE_OK, ROPE_ERR_NULL or ROPE_ERR_SHAPE (rows < 0, dim < 1).
int layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *weight,
                      const float *bias, int rows, int dim, float eps);

// The gradients of the forward above, given dout = dLoss/dout:
//   dx: [rows, dim], ADDED to (dx += ...: the layer sits on a residual stream)
//   dweight, dbias: [dim], ADDED to (a parameter's gradient accumulates)
//   dout, x: [rows, dim]; mean, rstd: [rows] from layernorm_forward; weight: [dim]
// dx must not overlap dout or x.
// Returns ROPE_OK, ROPE_ERR_NULL or ROPE_ERR_SHAPE.
int layernorm_backward(float *dx, float *dweight, float *dbias, const float *dout, const float *x,
                       const float *mean, const float *rstd, const float *weight, int rows, int dim);

#endif
