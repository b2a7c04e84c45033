// sampling.h: choosing the next token from a row of logits (greedy, temperature, top-k), with the
// random number supplied by the caller so that a seeded generator on the JS side decides.
#ifndef ROPE_SAMPLING_H
#define ROPE_SAMPLING_H

// logits: [vocab]. temperature 0: the argmax (the first of equal maxima). Otherwise the tokens
// whose logit is at least the top_k-th largest (top_k 0 or >= vocab: all; ties with the top_k-th
// are kept, as torch.topk-based samplers do) are weighted by softmax(logits / temperature), and
// uniform in [0, 1) picks one by the inverse of their cumulative distribution (in token order).
// Returns the token (>= 0), or ROPE_ERR_NULL, ROPE_ERR_SHAPE (vocab < 1) or ROPE_ERR_VALUE
// (temperature negative or not finite, top_k negative, uniform outside [0, 1)).
// NaN logits are never chosen (a row of only NaN gives token 0).
int sample_logits(const float *logits, int vocab, float temperature, int top_k, double uniform);

#endif
