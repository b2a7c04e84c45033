// rope_freq.c: inverse frequencies for every scaling type, following transformers'
// modeling_rope_utils (_compute_*_parameters), but in double precision throughout (transformers
// computes them in float32).
#include "rope_freq.h"
#include "rope_errors.h"

#include <math.h>

#define ROPE_PI 3.14159265358979323846

static int finite_positive(double x) { return isfinite(x) && x > 0; }

int rope_scaling_check(const rope_scaling *s, int dim, double base) {
    if (!s) return ROPE_ERR_NULL;
    switch (s->type) {
    case ROPE_SCALING_NONE:
        return ROPE_OK;
    case ROPE_SCALING_LINEAR:
        return finite_positive(s->factor) ? ROPE_OK : ROPE_ERR_SCALING;
    case ROPE_SCALING_DYNAMIC:
        // dim / (dim - 2) is the exponent of the base growth: dim 2 has none.
        if (dim <= 2) return ROPE_ERR_SCALING;
        return finite_positive(s->factor) && finite_positive(s->original_max_positions)
                   ? ROPE_OK : ROPE_ERR_SCALING;
    case ROPE_SCALING_YARN:
        // The ramp bounds divide by log(base).
        if (!(base > 1)) return ROPE_ERR_SCALING;
        if (!finite_positive(s->factor) || !finite_positive(s->original_max_positions)) return ROPE_ERR_SCALING;
        if (!finite_positive(s->beta_fast) || !finite_positive(s->beta_slow)) return ROPE_ERR_SCALING;
        if (!isfinite(s->mscale) || s->mscale < 0) return ROPE_ERR_SCALING;
        if (!isfinite(s->mscale_all_dim) || s->mscale_all_dim < 0) return ROPE_ERR_SCALING;
        if (!isfinite(s->attention_factor) || s->attention_factor < 0) return ROPE_ERR_SCALING;
        return ROPE_OK;
    case ROPE_SCALING_LLAMA3:
        if (!finite_positive(s->factor) || !finite_positive(s->original_max_positions)) return ROPE_ERR_SCALING;
        if (!finite_positive(s->low_freq_factor) || !finite_positive(s->high_freq_factor)) return ROPE_ERR_SCALING;
        // The smooth band divides by high - low.
        return s->high_freq_factor > s->low_freq_factor ? ROPE_OK : ROPE_ERR_SCALING;
    case ROPE_SCALING_LONGROPE:
        if (!s->short_factor || !s->long_factor) return ROPE_ERR_NULL;
        if (!finite_positive(s->original_max_positions) || !finite_positive(s->max_positions)) return ROPE_ERR_SCALING;
        if (!isfinite(s->attention_factor) || s->attention_factor < 0) return ROPE_ERR_SCALING;
        // The derived attention factor divides by log(original_max_positions).
        if (s->attention_factor == 0 && !(s->original_max_positions > 1)) return ROPE_ERR_SCALING;
        for (int i = 0; i < dim / 2; i++) {
            if (!finite_positive(s->short_factor[i]) || !finite_positive(s->long_factor[i])) return ROPE_ERR_SCALING;
        }
        return ROPE_OK;
    default:
        return ROPE_ERR_SCALING;
    }
}

// base^(-2i/dim) for i in [0, dim/2)
static void default_frequencies(double *inv_freq, int dim, double base) {
    for (int i = 0; i < dim / 2; i++) inv_freq[i] = 1.0 / pow(base, (double)(2 * i) / dim);
}

// YaRN: the (fractional) dimension index at which a frequency turns num_rotations times over
// the original context.
static double yarn_correction_dim(double num_rotations, int dim, double base, double max_positions) {
    return (dim * log(max_positions / (num_rotations * 2.0 * ROPE_PI))) / (2.0 * log(base));
}

static double yarn_mscale(double scale, double mscale) {
    if (scale <= 1.0) return 1.0;
    return 0.1 * mscale * log(scale) + 1.0;
}

static double yarn_frequencies(double *inv_freq, int dim, double base, const rope_scaling *s) {
    double factor = s->factor;
    double low = yarn_correction_dim(s->beta_fast, dim, base, s->original_max_positions);
    double high = yarn_correction_dim(s->beta_slow, dim, base, s->original_max_positions);
    if (s->truncate) {
        low = floor(low);
        high = ceil(high);
    }
    if (low < 0) low = 0;
    if (high > dim - 1) high = dim - 1;
    if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp

    for (int i = 0; i < dim / 2; i++) {
        double extrapolation = 1.0 / pow(base, (double)(2 * i) / dim);
        double interpolation = extrapolation / factor;
        double ramp = (i - low) / (high - low);
        if (ramp < 0) ramp = 0;
        if (ramp > 1) ramp = 1;
        double extrapolation_weight = 1.0 - ramp;
        inv_freq[i] = interpolation * (1.0 - extrapolation_weight) + extrapolation * extrapolation_weight;
    }

    if (s->attention_factor > 0) return s->attention_factor;
    if (s->mscale > 0 && s->mscale_all_dim > 0) {
        return yarn_mscale(factor, s->mscale) / yarn_mscale(factor, s->mscale_all_dim);
    }
    return yarn_mscale(factor, 1.0);
}

static void llama3_frequencies(double *inv_freq, int dim, double base, const rope_scaling *s) {
    double low_freq_wavelen = s->original_max_positions / s->low_freq_factor;
    double high_freq_wavelen = s->original_max_positions / s->high_freq_factor;
    default_frequencies(inv_freq, dim, base);
    for (int i = 0; i < dim / 2; i++) {
        double wavelen = 2.0 * ROPE_PI / inv_freq[i];
        if (wavelen > low_freq_wavelen) {
            inv_freq[i] = inv_freq[i] / s->factor;        // long wavelengths: interpolate
        } else if (wavelen >= high_freq_wavelen) {        // in between: blend smoothly
            double smooth = (s->original_max_positions / wavelen - s->low_freq_factor) /
                            (s->high_freq_factor - s->low_freq_factor);
            inv_freq[i] = (1.0 - smooth) * inv_freq[i] / s->factor + smooth * inv_freq[i];
        }                                                 // short wavelengths: unchanged
    }
}

static double longrope_frequencies(double *inv_freq, int dim, double base, const rope_scaling *s,
                                   int64_t seq_len) {
    const double *ext = (double)seq_len > s->original_max_positions ? s->long_factor : s->short_factor;
    for (int i = 0; i < dim / 2; i++) {
        inv_freq[i] = 1.0 / (ext[i] * pow(base, (double)(2 * i) / dim));
    }
    if (s->attention_factor > 0) return s->attention_factor;
    double factor = s->max_positions / s->original_max_positions;
    if (factor <= 1.0) return 1.0;
    return sqrt(1.0 + log(factor) / log(s->original_max_positions));
}

double rope_inverse_frequencies(double *inv_freq, int dim, double base, const rope_scaling *s,
                                int64_t seq_len) {
    switch (s->type) {
    case ROPE_SCALING_LINEAR:
        default_frequencies(inv_freq, dim, base);
        for (int i = 0; i < dim / 2; i++) inv_freq[i] /= s->factor;
        return 1.0;
    case ROPE_SCALING_DYNAMIC: {
        double L = (double)seq_len > s->original_max_positions ? (double)seq_len : s->original_max_positions;
        double grown = base * pow(s->factor * L / s->original_max_positions - (s->factor - 1.0),
                                  (double)dim / (dim - 2));
        default_frequencies(inv_freq, dim, grown);
        return 1.0;
    }
    case ROPE_SCALING_YARN:
        return yarn_frequencies(inv_freq, dim, base, s);
    case ROPE_SCALING_LLAMA3:
        llama3_frequencies(inv_freq, dim, base, s);
        return 1.0;
    case ROPE_SCALING_LONGROPE:
        return longrope_frequencies(inv_freq, dim, base, s, seq_len);
    default:
        default_frequencies(inv_freq, dim, base);
        return 1.0;
    }
}
