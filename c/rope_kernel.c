// rope_kernel.c: the RoPE rotation on f32x4 vectors, sixteen pairs per loop iteration.
//
// Shaped for V8, whose code for a wasm loop is far from what a native compiler makes of it:
// - an index costs one lea per access, a pointer plus a constant nothing (clang puts the constant
//   in the wasm load's offset and V8 in the x86 address): the loops step pointers;
// - every loop iteration costs a stack check and register moves: four steps per iteration, and
//   dim 128 (most models) gets an instance with the trip count known, which clang unrolls fully;
// - the inverse is an instance of its own rather than a multiply of sin by -1 at every step.
#include "rope_kernel.h"
#include "simd.h"

// Pairs 0..3 of 'half' pairing: (x1[i], x2[i]) -> (y1[i], y2[i]).
static inline void half_step(const float *x1, const float *x2, float *y1, float *y2, const float *cos,
                             const float *sin, int inverse) {
    f32x4 a = f32x4_load(x1), b = f32x4_load(x2);
    f32x4 c = f32x4_load(cos), s = f32x4_load(sin);
    f32x4 ac = f32x4_mul(a, c), bs = f32x4_mul(b, s), bc = f32x4_mul(b, c), as = f32x4_mul(a, s);
    f32x4_store(y1, inverse ? f32x4_add(ac, bs) : f32x4_sub(ac, bs));
    f32x4_store(y2, inverse ? f32x4_sub(bc, as) : f32x4_add(bc, as));
}

static inline void rotate_half(const float *x, float *y, const float *cos, const float *sin, int dim, int inverse) {
    int half = dim / 2;
    const float *x1 = x, *x2 = x + half;
    float *y1 = y, *y2 = y + half;
    int n = half;
    for (; n >= 16; n -= 16) {
        half_step(x1, x2, y1, y2, cos, sin, inverse);
        half_step(x1 + 4, x2 + 4, y1 + 4, y2 + 4, cos + 4, sin + 4, inverse);
        half_step(x1 + 8, x2 + 8, y1 + 8, y2 + 8, cos + 8, sin + 8, inverse);
        half_step(x1 + 12, x2 + 12, y1 + 12, y2 + 12, cos + 12, sin + 12, inverse);
        x1 += 16, x2 += 16, y1 += 16, y2 += 16, cos += 16, sin += 16;
    }
    for (; n >= 4; n -= 4) {
        half_step(x1, x2, y1, y2, cos, sin, inverse);
        x1 += 4, x2 += 4, y1 += 4, y2 += 4, cos += 4, sin += 4;
    }
    for (int i = 0; i < n; i++) {
        float a = x1[i], b = x2[i], c = cos[i], s = inverse ? -sin[i] : sin[i];
        y1[i] = a * c - b * s;
        y2[i] = b * c + a * s;
    }
}

void rope_rotate_half(const float *x, float *y, const float *cos, const float *sin, int dim, int inverse) {
    if (inverse) {
        rotate_half(x, y, cos, sin, dim, 1);
    } else if (dim == 128) {
        rotate_half(x, y, cos, sin, 128, 0);
    } else {
        rotate_half(x, y, cos, sin, dim, 0);
    }
}

// Pairs 0..3 of 'interleaved' pairing: the 8 features x[0..7] split into the first and second
// member of each pair, rotated, and interleaved back.
static inline void interleaved_step(const float *x, float *y, const float *cos, const float *sin, int inverse) {
    f32x4 lo = f32x4_load(x), hi = f32x4_load(x + 4);
    f32x4 a = f32x4_even(lo, hi), b = f32x4_odd(lo, hi);
    f32x4 c = f32x4_load(cos), s = f32x4_load(sin);
    f32x4 ac = f32x4_mul(a, c), bs = f32x4_mul(b, s), bc = f32x4_mul(b, c), as = f32x4_mul(a, s);
    f32x4 ya = inverse ? f32x4_add(ac, bs) : f32x4_sub(ac, bs);
    f32x4 yb = inverse ? f32x4_sub(bc, as) : f32x4_add(bc, as);
    f32x4_store(y, f32x4_zip_lo(ya, yb));
    f32x4_store(y + 4, f32x4_zip_hi(ya, yb));
}

static inline void rotate_interleaved(const float *x, float *y, const float *cos, const float *sin, int dim,
                                      int inverse) {
    int n = dim / 2;
    for (; n >= 16; n -= 16) {
        interleaved_step(x, y, cos, sin, inverse);
        interleaved_step(x + 8, y + 8, cos + 4, sin + 4, inverse);
        interleaved_step(x + 16, y + 16, cos + 8, sin + 8, inverse);
        interleaved_step(x + 24, y + 24, cos + 12, sin + 12, inverse);
        x += 32, y += 32, cos += 16, sin += 16;
    }
    for (; n >= 4; n -= 4) {
        interleaved_step(x, y, cos, sin, inverse);
        x += 8, y += 8, cos += 4, sin += 4;
    }
    for (int i = 0; i < n; i++) {
        float a = x[2 * i], b = x[2 * i + 1], c = cos[i], s = inverse ? -sin[i] : sin[i];
        y[2 * i] = a * c - b * s;
        y[2 * i + 1] = b * c + a * s;
    }
}

void rope_rotate_interleaved(const float *x, float *y, const float *cos, const float *sin, int dim, int inverse) {
    if (inverse) {
        rotate_interleaved(x, y, cos, sin, dim, 1);
    } else if (dim == 128) {
        rotate_interleaved(x, y, cos, sin, 128, 0);
    } else {
        rotate_interleaved(x, y, cos, sin, dim, 0);
    }
}
