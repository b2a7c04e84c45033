// gemm.c: C = alpha op(A) op(B) + beta C on simd.h, blocked and packed the way BLIS and XNNPACK
// do it, around one 4x8 register-tiled micro-kernel.
//
// Why 4x8: wasm SIMD128 has 4-float vectors and (without relaxed SIMD) no fused multiply-add, so
// a multiply-accumulate of 4 lanes costs a mul and an add. A 4x8 tile of C is 8 accumulators;
// each step along k loads 2 vectors of B, splats 4 floats of A and does 8 mul + 8 add (64 flops
// for 6 loads). V8 has 16 xmm registers on x64, one of them its scratch: 8 accumulators, 2 B
// vectors, an A splat and a product fit; 6x8 (12 accumulators) or 4x16 (16) spill.
// Measured in Node 20 on the development machine (tests/bench/gemm.bench.js), kernels alone on
// L1-resident panels: 5x8, 6x8 and 2x16 ran no faster than 4x8, 4x16 8% slower, splatting A by
// shuffling one loaded vector 20% slower; unrolling the k loop in C made clang hoist all the
// loads of the unrolled steps to the top, and V8 then spilled (25% slower). 4x8 runs at the
// speed of the same kernel written natively with SSE intrinsics: the machine's limit for
// 128-bit mul + add with operands from L1 (~30 GFLOP/s there), not V8's code.
//
// The loops, outermost first:
//   jc: columns of C in blocks of GEMM_NC
//     pc: k in slices of GEMM_KC       pack op(B)[kc, nc] -> packed_b: [nc/8 panels][kc][8]
//       ic: rows of C in blocks of GEMM_MC  pack op(A)[mc, kc] -> packed_a: [mc/4 panels][kc][4]
//         jr: 8-column panels of packed_b   (one panel, kc x 8 floats, stays in L1)
//           ir: 4-row panels of packed_a    (streamed from L2)
//             gemm_micro_4x8: C[4, 8] tile
// Packing lays both operands out contiguously in the order the micro-kernel reads them, whatever
// their transposition, and zero-pads the last panels, so the micro-kernel never checks a bound:
// only the store of an edge tile looks at how many of its rows and columns are real.
#include "gemm.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "rope_errors.h"
#include "simd.h"

#define GEMM_MR 4    // rows of the micro-kernel's tile
#define GEMM_NR 8    // columns of the micro-kernel's tile
// Cache blocking, for a 48 KiB L1 and a 2 MiB L2 (measured: kc 512 beats 256 by ~5% at k 1024,
// and the rest hardly matters):
#define GEMM_KC 512  // k slice: one B panel is 512 x 8 floats = 16 KiB, stays in L1
#define GEMM_MC 128  // rows of op(A) packed at once: 128 x 512 floats = 256 KiB, in L2
#define GEMM_NC 512  // columns of op(B) packed at once: 512 x 512 floats = 1 MiB, in L2

// The most floats one matrix may span: every offset into it fits a ptrdiff_t (wasm32: 2^29).
#define GEMM_MAX_FLOATS ((int64_t)(PTRDIFF_MAX / sizeof(float)))

static int min_int(int a, int b) { return a < b ? a : b; }

// ----------------------------------------------------------------------------
// micro-kernel

// c[4, 8] (row stride ldc) = alpha * sum_p a[p, :]^T b[p, :] + beta * c
//   a: [kc][4], a packed 4-row panel of op(A): a[4p + r] = op(A)[r, p]
//   b: [kc][8], a packed 8-column panel of op(B): b[8p + j] = op(B)[p, j]
// beta 0: c is not read.
static void gemm_micro_4x8(int kc, const float *a, const float *b, float *c, size_t ldc, float alpha,
                           float beta) {
    // c<row><half>: row r of the tile, columns 0-3 (lo) and 4-7 (hi)
    f32x4 c0lo = f32x4_splat(0.0f), c0hi = c0lo, c1lo = c0lo, c1hi = c0lo;
    f32x4 c2lo = c0lo, c2hi = c0lo, c3lo = c0lo, c3hi = c0lo;
    for (int p = 0; p < kc; p++) {
        // clang makes each splat of a[r] one v128.load32_splat, which V8 on x64 emits as a
        // vbroadcastss from memory: a load, no shuffle to compete with the adds for a port.
        f32x4 blo = f32x4_load(b), bhi = f32x4_load(b + 4);
        f32x4 a0 = f32x4_splat(a[0]);
        c0lo = f32x4_add(c0lo, f32x4_mul(a0, blo));
        c0hi = f32x4_add(c0hi, f32x4_mul(a0, bhi));
        f32x4 a1 = f32x4_splat(a[1]);
        c1lo = f32x4_add(c1lo, f32x4_mul(a1, blo));
        c1hi = f32x4_add(c1hi, f32x4_mul(a1, bhi));
        f32x4 a2 = f32x4_splat(a[2]);
        c2lo = f32x4_add(c2lo, f32x4_mul(a2, blo));
        c2hi = f32x4_add(c2hi, f32x4_mul(a2, bhi));
        f32x4 a3 = f32x4_splat(a[3]);
        c3lo = f32x4_add(c3lo, f32x4_mul(a3, blo));
        c3hi = f32x4_add(c3hi, f32x4_mul(a3, bhi));
        a += GEMM_MR;
        b += GEMM_NR;
    }
    f32x4 alpha4 = f32x4_splat(alpha);
    f32x4 acc[8] = {c0lo, c0hi, c1lo, c1hi, c2lo, c2hi, c3lo, c3hi};
    for (int r = 0; r < GEMM_MR; r++) {
        float *row = c + r * ldc;
        f32x4 lo = f32x4_mul(acc[2 * r], alpha4), hi = f32x4_mul(acc[2 * r + 1], alpha4);
        if (beta != 0.0f) {
            f32x4 beta4 = f32x4_splat(beta);
            lo = f32x4_add(lo, f32x4_mul(f32x4_load(row), beta4));
            hi = f32x4_add(hi, f32x4_mul(f32x4_load(row + 4), beta4));
        }
        f32x4_store(row, lo);
        f32x4_store(row + 4, hi);
    }
}

// The same for a tile at the bottom or right edge of C, of which only rows x cols are real: the
// micro-kernel writes the whole tile here (packing zero-padded the rest), then the real part is
// merged into c with the same arithmetic.
static void gemm_edge_4x8(int kc, const float *a, const float *b, float *c, size_t ldc, float alpha,
                          float beta, int rows, int cols) {
    float tile[GEMM_MR * GEMM_NR];
    gemm_micro_4x8(kc, a, b, tile, GEMM_NR, alpha, 0.0f);
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < cols; j++) {
            float *cij = c + r * ldc + j;
            *cij = beta != 0.0f ? tile[r * GEMM_NR + j] + *cij * beta : tile[r * GEMM_NR + j];
        }
    }
}

// ----------------------------------------------------------------------------
// packing

// dst[q][r] = src[r][q] for one 4x4 block; src rows are ld_src floats apart, dst rows ld_dst.
static void gemm_transpose_4x4(const float *src, size_t ld_src, float *dst, size_t ld_dst) {
    f32x4 r0 = f32x4_load(src), r1 = f32x4_load(src + ld_src);
    f32x4 r2 = f32x4_load(src + 2 * ld_src), r3 = f32x4_load(src + 3 * ld_src);
    f32x4 t0 = f32x4_zip_lo(r0, r1), t1 = f32x4_zip_lo(r2, r3);  // (r0[0] r1[0] r0[1] r1[1]), ...
    f32x4 t2 = f32x4_zip_hi(r0, r1), t3 = f32x4_zip_hi(r2, r3);  // (r0[2] r1[2] r0[3] r1[3]), ...
    f32x4_store(dst, f32x4_join_lo(t0, t1));
    f32x4_store(dst + ld_dst, f32x4_join_hi(t0, t1));
    f32x4_store(dst + 2 * ld_dst, f32x4_join_lo(t2, t3));
    f32x4_store(dst + 3 * ld_dst, f32x4_join_hi(t2, t3));
}

// packed_a: [ceil(mc/4)][kc][4], packed_a[panel][p][r] = op(A)[4 panel + r, p], rows >= mc zero.
// a points at op(A)[0, 0] of the block: op(A)[i, p] is a[i lda + p], or a[p lda + i] if trans_a.
// Full panels move 4 floats at a time: a row of a transposed A is already a [4] step of the
// panel; A itself is transposed 4x4 blocks at a time.
static void gemm_pack_a(int trans_a, const float *a, size_t lda, int mc, int kc, float *packed_a) {
    for (int i = 0; i < mc; i += GEMM_MR) {
        int rows = min_int(GEMM_MR, mc - i), p = 0;
        if (rows == GEMM_MR && trans_a) {
            for (; p < kc; p++) f32x4_store(packed_a + p * GEMM_MR, f32x4_load(a + p * lda + i));
        } else if (rows == GEMM_MR) {
            for (; p + 4 <= kc; p += 4) gemm_transpose_4x4(a + i * lda + p, lda, packed_a + p * GEMM_MR, GEMM_MR);
        }
        // the last k steps (kc % 4) of A, and every step of a bottom panel, zero-padded
        for (; p < kc; p++) {
            for (int r = 0; r < GEMM_MR; r++) {
                float v = 0.0f;
                if (r < rows) v = trans_a ? a[p * lda + i + r] : a[(i + r) * lda + p];
                packed_a[p * GEMM_MR + r] = v;
            }
        }
        packed_a += (size_t)kc * GEMM_MR;
    }
}

// packed_b: [ceil(nc/8)][kc][8], packed_b[panel][p][j] = op(B)[p, 8 panel + j], columns >= nc zero.
// b points at op(B)[0, 0] of the block: op(B)[p, j] is b[p ldb + j], or b[j ldb + p] if trans_b.
// Full panels as in gemm_pack_a: B's rows are copied 8 floats at a time; a transposed B (the
// [out, in] weight of a linear layer) is transposed in 4x4 blocks, two per 4 steps of k.
static void gemm_pack_b(int trans_b, const float *b, size_t ldb, int kc, int nc, float *packed_b) {
    for (int j = 0; j < nc; j += GEMM_NR) {
        int cols = min_int(GEMM_NR, nc - j), p = 0;
        if (cols == GEMM_NR && !trans_b) {
            for (; p < kc; p++) {
                f32x4_store(packed_b + p * GEMM_NR, f32x4_load(b + p * ldb + j));
                f32x4_store(packed_b + p * GEMM_NR + 4, f32x4_load(b + p * ldb + j + 4));
            }
        } else if (cols == GEMM_NR) {
            for (; p + 4 <= kc; p += 4) {
                gemm_transpose_4x4(b + j * ldb + p, ldb, packed_b + p * GEMM_NR, GEMM_NR);
                gemm_transpose_4x4(b + (j + 4) * ldb + p, ldb, packed_b + p * GEMM_NR + 4, GEMM_NR);
            }
        }
        // the last k steps (kc % 4) of a transposed B, and every step of a right panel, zero-padded
        for (; p < kc; p++) {
            for (int q = 0; q < GEMM_NR; q++) {
                float v = 0.0f;
                if (q < cols) v = trans_b ? b[(j + q) * ldb + p] : b[p * ldb + j + q];
                packed_b[p * GEMM_NR + q] = v;
            }
        }
        packed_b += (size_t)kc * GEMM_NR;
    }
}

// ----------------------------------------------------------------------------
// entry points

// A matrix stored [rows, cols] with row stride ld (rows, cols >= 0): ld must cover a row, every
// element's offset must fit a ptrdiff_t, and p may be NULL only if the matrix is empty.
static int check_matrix(const float *p, int rows, int cols, int ld) {
    if (ld < cols) return ROPE_ERR_SHAPE;
    if (rows == 0 || cols == 0) return ROPE_OK;
    if ((int64_t)(rows - 1) * ld + cols > GEMM_MAX_FLOATS) return ROPE_ERR_SHAPE;
    return p ? ROPE_OK : ROPE_ERR_NULL;
}

int gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
         const float *b, int ldb, float beta, float *c, int ldc) {
    if ((trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1)) return ROPE_ERR_LAYOUT;
    if (m < 0 || n < 0 || k < 0) return ROPE_ERR_SHAPE;
    int status = check_matrix(a, trans_a ? k : m, trans_a ? m : k, lda);
    if (status == ROPE_OK) status = check_matrix(b, trans_b ? n : k, trans_b ? k : n, ldb);
    if (status == ROPE_OK) status = check_matrix(c, m, n, ldc);
    if (status != ROPE_OK || m == 0 || n == 0) return status;

    if (k == 0) {  // op(A) op(B) is an empty sum: C = beta C
        for (int i = 0; i < m; i++) {
            float *row = c + (size_t)i * ldc;
            for (int j = 0; j < n; j++) row[j] = beta != 0.0f ? row[j] * beta : 0.0f;
        }
        return ROPE_OK;
    }

    // One allocation for both packing buffers, sized for the largest block this call packs.
    int kc_max = min_int(k, GEMM_KC);
    size_t mc_max = ((size_t)min_int(m, GEMM_MC) + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
    size_t nc_max = ((size_t)min_int(n, GEMM_NC) + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    float *packed_a = malloc((mc_max + nc_max) * (size_t)kc_max * sizeof(float));
    if (!packed_a) return ROPE_ERR_NOMEM;
    float *packed_b = packed_a + mc_max * (size_t)kc_max;

    for (int jc = 0; jc < n; jc += GEMM_NC) {
        int nc = min_int(GEMM_NC, n - jc);
        for (int pc = 0; pc < k; pc += GEMM_KC) {
            int kc = min_int(GEMM_KC, k - pc);
            // The first k slice applies beta; the later ones add to what it wrote.
            float beta_slice = pc == 0 ? beta : 1.0f;
            const float *b_block = trans_b ? b + (size_t)jc * ldb + pc : b + (size_t)pc * ldb + jc;
            gemm_pack_b(trans_b, b_block, (size_t)ldb, kc, nc, packed_b);
            for (int ic = 0; ic < m; ic += GEMM_MC) {
                int mc = min_int(GEMM_MC, m - ic);
                const float *a_block = trans_a ? a + (size_t)pc * lda + ic : a + (size_t)ic * lda + pc;
                gemm_pack_a(trans_a, a_block, (size_t)lda, mc, kc, packed_a);
                for (int jr = 0; jr < nc; jr += GEMM_NR) {
                    int cols = min_int(GEMM_NR, nc - jr);
                    const float *b_panel = packed_b + (size_t)jr * kc;
                    for (int ir = 0; ir < mc; ir += GEMM_MR) {
                        int rows = min_int(GEMM_MR, mc - ir);
                        const float *a_panel = packed_a + (size_t)ir * kc;
                        float *c_tile = c + (size_t)(ic + ir) * ldc + jc + jr;
                        if (rows == GEMM_MR && cols == GEMM_NR) {
                            gemm_micro_4x8(kc, a_panel, b_panel, c_tile, (size_t)ldc, alpha, beta_slice);
                        } else {
                            gemm_edge_4x8(kc, a_panel, b_panel, c_tile, (size_t)ldc, alpha, beta_slice, rows, cols);
                        }
                    }
                }
            }
        }
    }
    free(packed_a);
    return ROPE_OK;
}

int gemm_linear(const float *x, const float *w, const float *bias, float *y, int rows, int in, int out) {
    if (rows < 0 || in < 0 || out < 0) return ROPE_ERR_SHAPE;
    int status = check_matrix(x, rows, in, in);
    if (status == ROPE_OK) status = check_matrix(w, out, in, in);
    if (status == ROPE_OK) status = check_matrix(y, rows, out, out);
    if (status != ROPE_OK) return status;
    // With a bias, y starts as the bias in every row and the product is added to it (beta 1).
    if (bias) {
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < out; j++) y[(size_t)i * out + j] = bias[j];
        }
    }
    return gemm(0, 1, rows, out, in, 1.0f, x, in, w, in, bias ? 1.0f : 0.0f, y, out);
}
