// rope_kernel.h: rotate the feature pairs of one head vector by one position's angles.
//
// The inner loop of RoPE, written once on simd.h (wasm SIMD128, or scalar C elsewhere).
// Every kernel reads x and writes y (they may be the same array: in place) for the first `dim`
// features of one head vector; features [dim, head_dim) are the caller's to pass through.
// cos, sin: [dim/2], the angles m * theta_i of this vector's position m, already multiplied by
// the attention scaling.
#ifndef ROPE_KERNEL_H
#define ROPE_KERNEL_H

// 'half' pairing (the seed's, GPT-NeoX, transformers' rotate_half): feature i with i + dim/2.
//   forward: y[i] = x[i] cos - x[i+h] sin,  y[i+h] = x[i+h] cos + x[i] sin
//   inverse (the transpose): the same with sin negated.
void rope_rotate_half(const float *x, float *y, const float *cos, const float *sin, int dim, int inverse);

// 'interleaved' pairing (RoFormer, Meta's LLaMA, GPT-J): feature 2i with 2i + 1.
//   forward: y[2i] = x[2i] cos - x[2i+1] sin,  y[2i+1] = x[2i+1] cos + x[2i] sin
void rope_rotate_interleaved(const float *x, float *y, const float *cos, const float *sin, int dim, int inverse);

#endif
