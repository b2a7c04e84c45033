// simd.h: the one place that knows about wasm SIMD128.
//
// Kernels are written once against the small f32x4 vocabulary below. With -msimd128 it maps to
// wasm_simd128.h intrinsics; without it (the scalar wasm build, and every native build used for
// tests, sanitizers, fuzzing and the native speed baseline) the same names are plain C on a
// struct of four floats, which gcc/clang vectorise for the host on their own.
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

#else

typedef struct { float lane[4]; } f32x4;

static inline f32x4 f32x4_load(const float *p) {
    f32x4 v;
    for (int i = 0; i < 4; i++) v.lane[i] = p[i];
    return v;
}
static inline void f32x4_store(float *p, f32x4 v) {
    for (int i = 0; i < 4; i++) p[i] = v.lane[i];
}
static inline f32x4 f32x4_splat(float x) {
    f32x4 v = {{x, x, x, x}};
    return v;
}
static inline f32x4 f32x4_add(f32x4 a, f32x4 b) {
    for (int i = 0; i < 4; i++) a.lane[i] += b.lane[i];
    return a;
}
static inline f32x4 f32x4_sub(f32x4 a, f32x4 b) {
    for (int i = 0; i < 4; i++) a.lane[i] -= b.lane[i];
    return a;
}
static inline f32x4 f32x4_mul(f32x4 a, f32x4 b) {
    for (int i = 0; i < 4; i++) a.lane[i] *= b.lane[i];
    return a;
}
static inline f32x4 f32x4_even(f32x4 a, f32x4 b) {
    f32x4 v = {{a.lane[0], a.lane[2], b.lane[0], b.lane[2]}};
    return v;
}
static inline f32x4 f32x4_odd(f32x4 a, f32x4 b) {
    f32x4 v = {{a.lane[1], a.lane[3], b.lane[1], b.lane[3]}};
    return v;
}
static inline f32x4 f32x4_zip_lo(f32x4 a, f32x4 b) {
    f32x4 v = {{a.lane[0], b.lane[0], a.lane[1], b.lane[1]}};
    return v;
}
static inline f32x4 f32x4_zip_hi(f32x4 a, f32x4 b) {
    f32x4 v = {{a.lane[2], b.lane[2], a.lane[3], b.lane[3]}};
    return v;
}

#endif
#endif
