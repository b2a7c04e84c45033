// optim.h: what a training loop does with the gradients: PyTorch's AdamW (and Adam) update, the
// gradient norm for clipping, the sums and scalings of gradient buffers (micro-batches), and the
// learning-rate schedules.
#ifndef ROPE_OPTIM_H
#define ROPE_OPTIM_H

#include <stdint.h>

// One step of torch.optim.AdamW (single-tensor implementation) on n parameters:
//   params *= 1 - lr * weight_decay
//   exp_avg = beta1 exp_avg + (1 - beta1) grads;  exp_avg_sq = beta2 exp_avg_sq + (1 - beta2) grads^2
//   params -= lr / (1 - beta1^step) * exp_avg / (sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps)
// weight_decay 0 is torch.optim.Adam. exp_avg and exp_avg_sq: [n], zero before step 1.
// step: the number of this update, 1 for the first.
// Returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_SHAPE (n < 0) or ROPE_ERR_VALUE (step < 1, or lr, a beta,
// eps or weight_decay not finite).
int adamw_update(float *params, const float *grads, float *exp_avg, float *exp_avg_sq, int64_t n, float lr,
                 float beta1, float beta2, float eps, float weight_decay, int step);

// The L2 norm of grads [n], accumulated in double (NaN when grads is NULL or n < 0).
double grad_norm(const float *grads, int64_t n);

// x *= factor (gradient clipping, averaging micro-batches). Returns ROPE_OK, ROPE_ERR_NULL or ROPE_ERR_SHAPE.
int scale_floats(float *x, int64_t n, float factor);

// sum += x, both [n] (the reduction of micro-batch gradients). Returns as scale_floats.
int add_floats(float *sum, const float *x, int64_t n);

// labml's Noam schedule: lr * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5); 0 for step < 1.
double lr_noam(double lr, int d_model, int warmup, int step);

// Linear warm-up then cosine decay to lr * final_fraction at step total:
//   min(1, step / warmup) * (lo + (lr - lo) * 0.5 * (1 + cos(pi * step / total))), lo = lr * final_fraction
// (warmup 0: no warm-up; steps past total stay at lo).
double lr_warmup_cosine(double lr, int warmup, int total, double final_fraction, int step);

#endif
