// gemm.h: single-precision matrix multiply, the kernel that attention, multi-head attention and
// the trainer share.
//
// All matrices are row-major with a leading dimension (the distance in floats from one row to the
// next, >= the number of columns stored). Every entry point validates its arguments and returns a
// status from rope_errors.h; nothing aborts on bad input. A pointer may be NULL only when its
// matrix has no elements.
#ifndef GEMM_H
#define GEMM_H

// C = alpha * op(A) op(B) + beta * C, the BLAS sgemm contract in row-major order.
//   op(A): [m, k]; A is stored [m, k] (trans_a 0) or [k, m] (trans_a 1), row stride lda
//   op(B): [k, n]; B is stored [k, n] (trans_b 0) or [n, k] (trans_b 1), row stride ldb
//   C:     [m, n], row stride ldc
// beta 0 means C is not read (NaN or garbage there is overwritten), as in BLAS; any other beta
// reads it. alpha multiplies the product as computed, so a NaN or inf in A or B reaches C even
// when alpha is 0. C must not overlap A or B.
// Returns ROPE_OK, ROPE_ERR_LAYOUT (a trans flag not 0 or 1), ROPE_ERR_SHAPE (a size negative, a
// leading dimension smaller than its row, or a matrix too large to address), ROPE_ERR_NULL or
// ROPE_ERR_NOMEM (the packing buffers).
int gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
         const float *b, int ldb, float beta, float *c, int ldc);

// y = x w^T + bias: PyTorch's nn.Linear.
//   x: [rows, in], w: [out, in], bias: [out] or NULL, y: [rows, out] (not read; must not overlap
//   x, w or bias)
// Returns ROPE_OK, ROPE_ERR_SHAPE, ROPE_ERR_NULL (x, w or y NULL while not empty; y is then left
// as it was) or ROPE_ERR_NOMEM (y may then hold the bias).
int gemm_linear(const float *x, const float *w, const float *bias, float *y, int rows, int in, int out);

#endif
