// optim.c: AdamW, gradient norms and the learning-rate schedules.
#include "optim.h"

#include <math.h>
#include <stddef.h>

#include "rope_errors.h"

int adamw_update(float *params, const float *grads, float *exp_avg, float *exp_avg_sq, int64_t n, float lr,
                 float beta1, float beta2, float eps, float weight_decay, int step) {
    if (n < 0) return ROPE_ERR_SHAPE;
    if (step < 1 || !isfinite(lr) || !isfinite(beta1) || !isfinite(beta2) || !isfinite(eps) ||
        !isfinite(weight_decay)) {
        return ROPE_ERR_VALUE;
    }
    if (n == 0) return ROPE_OK;
    if (!params || !grads || !exp_avg || !exp_avg_sq) return ROPE_ERR_NULL;
    // The scalars as torch forms them: Python floats (double), rounded once to float.
    double bias_correction1 = 1.0 - pow((double)beta1, step);
    double bias_correction2 = 1.0 - pow((double)beta2, step);
    float step_size = (float)(lr / bias_correction1);
    float bias_correction2_sqrt = (float)sqrt(bias_correction2);
    float decay = (float)(1.0 - (double)lr * weight_decay);
    float one_minus_beta1 = (float)(1.0 - (double)beta1), one_minus_beta2 = (float)(1.0 - (double)beta2);
    for (int64_t i = 0; i < n; i++) {
        float g = grads[i];
        float m = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i]);  // torch: exp_avg.lerp_(grad, 1 - beta1)
        float v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
        float denom = sqrtf(v) / bias_correction2_sqrt + eps;
        float p = weight_decay != 0.0f ? params[i] * decay : params[i];
        params[i] = p - step_size * (m / denom);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
    }
    return ROPE_OK;
}

double grad_norm(const float *grads, int64_t n) {
    if (n < 0 || (n > 0 && !grads)) return NAN;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    return sqrt(sum);
}

int scale_floats(float *x, int64_t n, float factor) {
    if (n < 0) return ROPE_ERR_SHAPE;
    if (n > 0 && !x) return ROPE_ERR_NULL;
    for (int64_t i = 0; i < n; i++) x[i] *= factor;
    return ROPE_OK;
}

int add_floats(float *sum, const float *x, int64_t n) {
    if (n < 0) return ROPE_ERR_SHAPE;
    if (n > 0 && (!sum || !x)) return ROPE_ERR_NULL;
    for (int64_t i = 0; i < n; i++) sum[i] += x[i];
    return ROPE_OK;
}

double lr_noam(double lr, int d_model, int warmup, int step) {
    if (step < 1 || d_model < 1 || warmup < 1) return 0.0;
    double factor = fmin(pow(step, -0.5), step * pow(warmup, -1.5));
    return lr * pow(d_model, -0.5) * factor;
}

double lr_warmup_cosine(double lr, int warmup, int total, double final_fraction, int step) {
    if (step < 0) step = 0;
    double lo = lr * final_fraction;
    double warm = warmup > 0 && step < warmup ? (double)step / warmup : 1.0;
    double progress = total > 0 && step < total ? (double)step / total : 1.0;
    return warm * (lo + (lr - lo) * 0.5 * (1.0 + cos(3.141592653589793 * progress)));
}
