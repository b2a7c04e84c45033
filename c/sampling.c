// sampling.c: argmax, the top-k threshold, and inverse-CDF sampling from a tempered softmax. No
// allocation: the softmax weights are recomputed in the second pass instead of stored.
#include "sampling.h"

#include <math.h>

#include "rope_errors.h"

// The top_k-th largest logit counting repeats (the smallest one top-k keeps): walk down the
// distinct values from the largest until top_k logits are at least as large. -inf keeps all.
static float top_k_threshold(const float *logits, int vocab, int top_k) {
    if (top_k == 0 || top_k >= vocab) return -INFINITY;
    float threshold = INFINITY;
    int kept = 0;
    while (kept < top_k) {
        // The largest value below the current threshold (NaN compares false: skipped).
        float next = -INFINITY;
        int found = 0;
        for (int i = 0; i < vocab; i++) {
            if (logits[i] < threshold && (!found || logits[i] > next)) {
                next = logits[i];
                found = 1;
            }
        }
        if (!found) break;
        for (int i = 0; i < vocab; i++) kept += logits[i] == next;
        threshold = next;
    }
    return threshold;
}

int sample_logits(const float *logits, int vocab, float temperature, int top_k, double uniform) {
    if (!logits) return ROPE_ERR_NULL;
    if (vocab < 1) return ROPE_ERR_SHAPE;
    if (!(temperature >= 0.0f) || !isfinite(temperature) || top_k < 0 || !(uniform >= 0.0 && uniform < 1.0)) {
        return ROPE_ERR_VALUE;
    }
    int best = 0;
    for (int i = 0; i < vocab; i++) {
        if (logits[i] > logits[best] || (isnan(logits[best]) && !isnan(logits[i]))) best = i;
    }
    if (temperature == 0.0f || isnan(logits[best]) || isinf(logits[best])) return best;

    float threshold = top_k_threshold(logits, vocab, top_k);
    // Weights exp((logit - max) / temperature) in double: the largest is 1, no overflow.
    double inv_temperature = 1.0 / temperature, total = 0.0;
    for (int i = 0; i < vocab; i++) {
        if (logits[i] >= threshold) total += exp(((double)logits[i] - logits[best]) * inv_temperature);
    }
    double target = uniform * total, cumulative = 0.0;
    int last = best;
    for (int i = 0; i < vocab; i++) {
        if (!(logits[i] >= threshold)) continue;
        cumulative += exp(((double)logits[i] - logits[best]) * inv_temperature);
        last = i;
        if (cumulative > target) return i;
    }
    return last;  // rounding left the target past the sum: the last kept token
}
