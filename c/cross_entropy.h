// cross_entropy.h: PyTorch's cross-entropy of logits against integer targets (log-softmax and
// negative log-likelihood), forward and backward, for the trainer.
#ifndef ROPE_CROSS_ENTROPY_H
#define ROPE_CROSS_ENTROPY_H

#include <stdint.h>

// *loss_sum = sum over rows of -log softmax(logits[r])[targets[r]], accumulated in double (the
// caller divides by rows for the mean).
//   logits: [rows, vocab]; targets: [rows] in [0, vocab)
// Targets are checked before anything is computed. Returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_SHAPE or
// ROPE_ERR_TOKEN.
int cross_entropy_forward(double *loss_sum, const float *logits, const int32_t *targets, int rows, int vocab);

// dlogits = scale * (softmax(logits) - onehot(targets)): the gradient of scale * loss_sum.
//   dlogits: [rows, vocab] (may be logits itself: in place)
// Returns as cross_entropy_forward, or ROPE_ERR_VALUE (scale not finite).
int cross_entropy_backward(float *dlogits, const float *logits, const int32_t *targets, int rows, int vocab,
                           float scale);

#endif
