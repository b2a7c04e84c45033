// simd.h: the one place that knows about wasm SIMD128.
//
// Kernels are written once against the small f32x4 vocabulary below. With -msimd128 it maps to
// wasm_simd128.h intrinsics; without it (the scalar wasm build, and every native build used for
// tests, sanitizers, fuzzing and the native speed baseline) the same names are GCC/clang vector
// extensions: host SIMD natively, scalar code in the scalar wasm build.
#ifndef ROPE_SIMD_H
#define ROPE_SIMD_H

#ifdef __wasm_simd128__
#include <wasm_simd128.h>

typedef v128_t f32x4;

static inline f32x4 f32x4_load(const float *p) { return wasm_v128_load(p); }
static inline void f32x4_store(float *p, f32x4 v) { wasm_v128_store(p, v); }
static inline f32x4 f32x4_splat(float x) { return wasm_f32x4_splat(x); }
static inline f32x4 f32x4_add(f32x4 a, f32x4 b) { return wasm_f32x4_add(a, b); }
static inline f32x4 f32x4_sub(f32x4 a, f32x4 b) { return wasm_f32x4_sub(a, b); }
static inline f32x4 f32x4_mul(f32x4 a, f32x4 b) { return wasm_f32x4_mul(a, b); }
// (a0 a1 a2 a3), (b0 b1 b2 b3) -> (a0 a2 b0 b2): the even lanes of the 8 floats a:b
static inline f32x4 f32x4_even(f32x4 a, f32x4 b) { return wasm_i32x4_shuffle(a, b, 0, 2, 4, 6); }
// -> (a1 a3 b1 b3): the odd lanes of a:b
static inline f32x4 f32x4_odd(f32x4 a, f32x4 b) { return wasm_i32x4_shuffle(a, b, 1, 3, 5, 7); }
// -> (a0 b0 a1 b1): interleave the low halves (the inverse of even/odd, first 4 floats)
static inline f32x4 f32x4_zip_lo(f32x4 a, f32x4 b) { return wasm_i32x4_shuffle(a, b, 0, 4, 1, 5); }
// -> (a2 b2 a3 b3): interleave the high halves (next 4 floats)
static inline f32x4 f32x4_zip_hi(f32x4 a, f32x4 b) { return wasm_i32x4_shuffle(a, b, 2, 6, 3, 7); }
// -> (a0 a1 b0 b1): the low halves of a and b, one after the other
static inline f32x4 f32x4_join_lo(f32x4 a, f32x4 b) { return wasm_i32x4_shuffle(a, b, 0, 1, 4, 5); }
// -> (a2 a3 b2 b3): the high halves (with zip_lo/zip_hi: a 4x4 transpose in 8 shuffles)
static inline f32x4 f32x4_join_hi(f32x4 a, f32x4 b) { return wasm_i32x4_shuffle(a, b, 2, 3, 6, 7); }
// a < b ? b : a per lane: one maxps on x86 (wasm's f32x4.max is a NaN-fixing sequence). A NaN in
// a passes through, a NaN in b is ignored.
static inline f32x4 f32x4_pmax(f32x4 a, f32x4 b) { return wasm_f32x4_pmax(a, b); }
// b < a ? b : a per lane: a NaN in a passes through, a NaN in b is ignored.
static inline f32x4 f32x4_pmin(f32x4 a, f32x4 b) { return wasm_f32x4_pmin(a, b); }
// The lanes' bits as 32-bit integers: shifted left by n (0..31), or added with wrap-around.
static inline f32x4 f32x4_shl_bits(f32x4 a, int n) { return wasm_i32x4_shl(a, n); }
static inline f32x4 f32x4_add_bits(f32x4 a, f32x4 b) { return wasm_i32x4_add(a, b); }
static inline f32x4 f32x4_div(f32x4 a, f32x4 b) { return wasm_f32x4_div(a, b); }
// |a| per lane (the sign bit cleared; NaN stays NaN).
static inline f32x4 f32x4_abs(f32x4 a) { return wasm_f32x4_abs(a); }
// Lane masks: all bits set where a < b (a == b), else 0 (NaN compares false).
static inline f32x4 f32x4_lt(f32x4 a, f32x4 b) { return wasm_f32x4_lt(a, b); }
static inline f32x4 f32x4_eq(f32x4 a, f32x4 b) { return wasm_f32x4_eq(a, b); }
// mask ? a : b per bit (mask from f32x4_lt / f32x4_eq).
static inline f32x4 f32x4_select(f32x4 mask, f32x4 a, f32x4 b) { return wasm_v128_bitselect(a, b, mask); }

#else

#include <stdint.h>
#include <string.h>

// GCC/clang vector extensions: the same 128-bit operations as wasm SIMD128, as SSE/AVX (x86) or
// NEON (arm) instructions natively, whatever the shape of the loop around them (a struct of four
// floats left the kernels to the auto-vectoriser, which gives up on hand-unrolled loops). Without
// -msimd128, clang lowers them to scalar wasm for the scalar build.
typedef float f32x4 __attribute__((vector_size(16)));
typedef uint32_t u32x4 __attribute__((vector_size(16)));

// memcpy: unaligned, and no aliasing assumptions.
static inline f32x4 f32x4_load(const float *p) {
    f32x4 v;
    memcpy(&v, p, sizeof(v));
    return v;
}
static inline void f32x4_store(float *p, f32x4 v) { memcpy(p, &v, sizeof(v)); }
static inline f32x4 f32x4_splat(float x) { return (f32x4){x, x, x, x}; }
static inline f32x4 f32x4_add(f32x4 a, f32x4 b) { return a + b; }
static inline f32x4 f32x4_sub(f32x4 a, f32x4 b) { return a - b; }
static inline f32x4 f32x4_mul(f32x4 a, f32x4 b) { return a * b; }
static inline f32x4 f32x4_even(f32x4 a, f32x4 b) { return (f32x4){a[0], a[2], b[0], b[2]}; }
static inline f32x4 f32x4_odd(f32x4 a, f32x4 b) { return (f32x4){a[1], a[3], b[1], b[3]}; }
static inline f32x4 f32x4_zip_lo(f32x4 a, f32x4 b) { return (f32x4){a[0], b[0], a[1], b[1]}; }
static inline f32x4 f32x4_zip_hi(f32x4 a, f32x4 b) { return (f32x4){a[2], b[2], a[3], b[3]}; }
static inline f32x4 f32x4_join_lo(f32x4 a, f32x4 b) { return (f32x4){a[0], a[1], b[0], b[1]}; }
static inline f32x4 f32x4_join_hi(f32x4 a, f32x4 b) { return (f32x4){a[2], a[3], b[2], b[3]}; }
static inline f32x4 f32x4_pmax(f32x4 a, f32x4 b) {
    for (int i = 0; i < 4; i++) a[i] = a[i] < b[i] ? b[i] : a[i];
    return a;
}
static inline f32x4 f32x4_pmin(f32x4 a, f32x4 b) {
    for (int i = 0; i < 4; i++) a[i] = b[i] < a[i] ? b[i] : a[i];
    return a;
}
// Through memcpy: the only way C allows to read a float's bits.
static inline f32x4 f32x4_shl_bits(f32x4 a, int n) {
    u32x4 bits;
    memcpy(&bits, &a, sizeof(bits));
    bits <<= (uint32_t)n;
    memcpy(&a, &bits, sizeof(a));
    return a;
}
static inline f32x4 f32x4_add_bits(f32x4 a, f32x4 b) {
    u32x4 x, y;
    memcpy(&x, &a, sizeof(x));
    memcpy(&y, &b, sizeof(y));
    x += y;
    memcpy(&a, &x, sizeof(a));
    return a;
}
static inline f32x4 f32x4_div(f32x4 a, f32x4 b) { return a / b; }
static inline f32x4 f32x4_abs(f32x4 a) {
    u32x4 bits;
    memcpy(&bits, &a, sizeof(bits));
    bits &= 0x7FFFFFFFu;
    memcpy(&a, &bits, sizeof(a));
    return a;
}
// The comparisons' lanes are -1 or 0 as 32-bit integers: all bits set or none, as in wasm.
static inline f32x4 f32x4_lt(f32x4 a, f32x4 b) {
    u32x4 mask = (u32x4)(a < b);
    f32x4 r;
    memcpy(&r, &mask, sizeof(r));
    return r;
}
static inline f32x4 f32x4_eq(f32x4 a, f32x4 b) {
    u32x4 mask = (u32x4)(a == b);
    f32x4 r;
    memcpy(&r, &mask, sizeof(r));
    return r;
}
static inline f32x4 f32x4_select(f32x4 mask, f32x4 a, f32x4 b) {
    u32x4 m, x, y;
    memcpy(&m, &mask, sizeof(m));
    memcpy(&x, &a, sizeof(x));
    memcpy(&y, &b, sizeof(y));
    x = (x & m) | (y & ~m);
    memcpy(&a, &x, sizeof(a));
    return a;
}

#endif

// 2^x per lane, for softmax: within 1.23 ulp of the true value over every float in [-127, 127.5)
// (checked exhaustively; tests/native/test_attention.c checks a sample); -inf -> 0, +inf -> +inf,
// NaN -> NaN. x < -126.5 gives 0 (no result below 2^-126.5), x >= 127.5 gives +inf.
// x = n + f with n = round(x), |f| <= 1/2: 2^f by a degree-6 polynomial, 2^n by building its
// float from the bits, exactly.
static inline f32x4 f32x4_exp2(f32x4 x) {
    // Clamp first (pmax/pmin keep NaN): 2^-127 is built as +0 and 2^128 as +inf below.
    x = f32x4_pmin(f32x4_pmax(x, f32x4_splat(-127.0f)), f32x4_splat(128.0f));
    // Adding 1.5 * 2^23 rounds x to an integer (ties to even) held in the low mantissa bits:
    // bits(rounded) = 0x4B400000 + n, and << 23 leaves n << 23, the exponent field of 2^n.
    f32x4 magic = f32x4_splat(12582912.0f);
    f32x4 rounded = f32x4_add(x, magic);
    f32x4 f = f32x4_sub(x, f32x4_sub(rounded, magic));
    // Minimax for relative error on [-1/2, 1/2] with 2^0 = 1 exactly (error 0.03 ulp before
    // rounding; Lawson's algorithm).
    f32x4 p = f32x4_splat(1.53533632e-4f);
    p = f32x4_add(f32x4_mul(p, f), f32x4_splat(1.33988745e-3f));
    p = f32x4_add(f32x4_mul(p, f), f32x4_splat(9.61843735e-3f));
    p = f32x4_add(f32x4_mul(p, f), f32x4_splat(5.55033247e-2f));
    p = f32x4_add(f32x4_mul(p, f), f32x4_splat(2.40226479e-1f));
    p = f32x4_add(f32x4_mul(p, f), f32x4_splat(6.93147203e-1f));
    p = f32x4_add(f32x4_mul(p, f), f32x4_splat(1.0f));
    // (n + 127) << 23 for n in [-127, 128]: the bits of 2^n, from +0 to +inf.
    f32x4 one = f32x4_splat(1.0f);
    f32x4 scale = f32x4_add_bits(f32x4_shl_bits(rounded, 23), one);
    return f32x4_mul(p, scale);
}

#endif
