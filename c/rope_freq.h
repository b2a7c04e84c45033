// rope_freq.h: RoPE inverse frequencies and attention scaling, in double precision.
//
// theta_i = base^(-2i/dim) for i in [0, dim/2), then rescaled for long context with the exact
// semantics of Hugging Face transformers' rope_parameters (rope types default, linear, dynamic,
// yarn, llama3, longrope). Pure functions: no allocation, no state.
#ifndef ROPE_FREQ_H
#define ROPE_FREQ_H

#include <stdint.h>

enum rope_scaling_type {
    ROPE_SCALING_NONE = 0,
    ROPE_SCALING_LINEAR = 1,    // position interpolation: theta_i / factor
    ROPE_SCALING_DYNAMIC = 2,   // NTK: base grows with the longest position seen
    ROPE_SCALING_YARN = 3,      // NTK-by-parts ramp between interpolation and extrapolation
    ROPE_SCALING_LLAMA3 = 4,    // low/high frequency bands, smooth in between
    ROPE_SCALING_LONGROPE = 5,  // per-frequency short/long rescale factors
};

// Every parameter any scaling type reads; each type documents the fields it uses.
typedef struct {
    int type;                       // enum rope_scaling_type
    double factor;                  // linear, dynamic, yarn, llama3
    double original_max_positions;  // dynamic (transformers' max_position_embeddings), yarn, llama3, longrope
    double beta_fast, beta_slow;    // yarn ramp bounds, in rotations (defaults 32 and 1)
    double mscale, mscale_all_dim;  // yarn (0 = absent)
    double attention_factor;        // yarn, longrope (0 = derive it as transformers does)
    int truncate;                   // yarn: floor/ceil the ramp bounds (transformers' default 1)
    double low_freq_factor;         // llama3
    double high_freq_factor;        // llama3
    double max_positions;           // longrope: extended context (transformers' max_position_embeddings)
    const double *short_factor;     // longrope: [dim/2]
    const double *long_factor;      // longrope: [dim/2]
} rope_scaling;

// Checks the fields the type uses (finite, in range) for a rope of this dim and base.
// Returns 0 or ROPE_ERR_SCALING.
int rope_scaling_check(const rope_scaling *s, int dim, double base);

// inv_freq: [dim/2] output. seq_len: longest position + 1 of the call (dynamic and longrope
// depend on it; others ignore it). Returns the attention scaling that multiplies cos and sin.
double rope_inverse_frequencies(double *inv_freq, int dim, double base, const rope_scaling *s,
                                int64_t seq_len);

#endif
