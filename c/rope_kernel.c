// rope_kernel.c: the RoPE rotation on f32x4 vectors, four pairs per step, scalar tail.
#include "rope_kernel.h"
#include "simd.h"

void rope_rotate_half(const float *x, float *y, const float *cos, const float *sin, int dim, int inverse) {
    int half = dim / 2;
    const float *x1 = x, *x2 = x + half;
    float *y1 = y, *y2 = y + half;
    // inverse rotation = forward rotation by -angle: negate sin once here, not per element.
    float sign = inverse ? -1.0f : 1.0f;
    f32x4 sign4 = f32x4_splat(sign);
    int i = 0;
    for (; i + 4 <= half; i += 4) {
        f32x4 a = f32x4_load(x1 + i), b = f32x4_load(x2 + i);
        f32x4 c = f32x4_load(cos + i), s = f32x4_mul(f32x4_load(sin + i), sign4);
        f32x4_store(y1 + i, f32x4_sub(f32x4_mul(a, c), f32x4_mul(b, s)));
        f32x4_store(y2 + i, f32x4_add(f32x4_mul(b, c), f32x4_mul(a, s)));
    }
    for (; i < half; i++) {
        float a = x1[i], b = x2[i], c = cos[i], s = sin[i] * sign;
        y1[i] = a * c - b * s;
        y2[i] = b * c + a * s;
    }
}

void rope_rotate_interleaved(const float *x, float *y, const float *cos, const float *sin, int dim, int inverse) {
    int half = dim / 2;
    float sign = inverse ? -1.0f : 1.0f;
    f32x4 sign4 = f32x4_splat(sign);
    int i = 0;
    for (; i + 4 <= half; i += 4) {
        // 8 features = pairs i..i+3: split into the first and second member of each pair.
        f32x4 lo = f32x4_load(x + 2 * i), hi = f32x4_load(x + 2 * i + 4);
        f32x4 a = f32x4_even(lo, hi), b = f32x4_odd(lo, hi);
        f32x4 c = f32x4_load(cos + i), s = f32x4_mul(f32x4_load(sin + i), sign4);
        f32x4 ya = f32x4_sub(f32x4_mul(a, c), f32x4_mul(b, s));
        f32x4 yb = f32x4_add(f32x4_mul(b, c), f32x4_mul(a, s));
        f32x4_store(y + 2 * i, f32x4_zip_lo(ya, yb));
        f32x4_store(y + 2 * i + 4, f32x4_zip_hi(ya, yb));
    }
    for (; i < half; i++) {
        float a = x[2 * i], b = x[2 * i + 1], c = cos[i], s = sin[i] * sign;
        y[2 * i] = a * c - b * s;
        y[2 * i + 1] = b * c + a * s;
    }
}
