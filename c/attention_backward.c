// attention_backward.c: self-attention backward per (batch row, head) as four gemm calls on
// strided views of the [seq, batch, heads, head_dim] tensors (row stride batch * heads * head_dim),
// then the inverse RoPE rotation of dq and dk.
#include "attention_backward.h"

#include <stddef.h>
#include <stdint.h>

#include "gemm.h"
#include "rope_errors.h"

// Causal attention visits blocks of ATTENTION_BLOCK query rows; a block's rows see only the keys
// before its end, so the products skip the zero upper triangle of P (at seq 128: 10/16 of the work).
#define ATTENTION_BLOCK 32

static int min_int(int a, int b) { return a < b ? a : b; }

// One (batch row, head): the four products and the softmax Jacobian. Matrices are [seq, head_dim]
// views with row stride ld; p and dp are [seq, seq].
static int attention_head_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                   const float *k, const float *v, const float *p, float *dp, int seq,
                                   int head_dim, int ld, float scale, int causal) {
    int block = causal ? ATTENTION_BLOCK : seq;
    int status = ROPE_OK;
    // Per block of query rows [i0, i0 + rows), which see keys [0, keys):
    for (int i0 = 0; i0 < seq && status == ROPE_OK; i0 += block) {
        int rows = min_int(block, seq - i0), keys = causal ? i0 + rows : seq;
        const float *p_rows = p + (size_t)i0 * seq;
        float *dp_rows = dp + (size_t)i0 * seq;
        // dP[rows, keys] = dO[rows, d] V^T[d, keys]
        status = gemm(0, 1, rows, keys, head_dim, 1.0f, dout + (size_t)i0 * ld, ld, v, ld, 0.0f, dp_rows, seq);
        if (status != ROPE_OK) break;
        // dS = P * (dP - D), D_i = sum_j P_ij dP_ij: the softmax's Jacobian; masked entries have P = 0.
        for (int i = 0; i < rows; i++) {
            const float *pi = p_rows + (size_t)i * seq;
            float *dpi = dp_rows + (size_t)i * seq;
            float d = 0.0f;
            for (int j = 0; j < keys; j++) d += pi[j] * dpi[j];
            for (int j = 0; j < keys; j++) dpi[j] = pi[j] * (dpi[j] - d);
        }
        // dQr[rows, d] = scale dS[rows, keys] Kr[keys, d]
        status = gemm(0, 0, rows, head_dim, keys, scale, dp_rows, seq, k, ld, 0.0f, dq + (size_t)i0 * ld, ld);
    }
    // Per block of keys [j0, j0 + cols), seen by queries [first, seq): causal blocks are aligned, so
    // every dS entry read here was written above.
    for (int j0 = 0; j0 < seq && status == ROPE_OK; j0 += block) {
        int cols = min_int(block, seq - j0), first = causal ? j0 : 0;
        // dKr[cols, d] = scale dS^T[cols, queries] Qr[queries, d];  dV[cols, d] = P^T dO the same way
        status = gemm(1, 0, cols, head_dim, seq - first, scale, dp + (size_t)first * seq + j0, seq,
                      q + (size_t)first * ld, ld, 0.0f, dk + (size_t)j0 * ld, ld);
        if (status == ROPE_OK) {
            status = gemm(1, 0, cols, head_dim, seq - first, 1.0f, p + (size_t)first * seq + j0, seq,
                          dout + (size_t)first * ld, ld, 0.0f, dv + (size_t)j0 * ld, ld);
        }
    }
    return status;
}

int rope_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q_rot,
                            const float *k_rot, const float *v, const float *weights, float *scratch,
                            int seq, int batch, int heads, int head_dim, int causal, float scale,
                            rope_embedding *rope) {
    if (seq < 0 || batch < 1 || heads < 1 || head_dim < 1) return ROPE_ERR_SHAPE;
    if (causal != 0 && causal != 1) return ROPE_ERR_LAYOUT;
    int64_t row_stride = (int64_t)batch * heads * head_dim;
    if (row_stride > INT32_MAX || (int64_t)seq * seq > INT32_MAX) return ROPE_ERR_SHAPE;
    if (rope && rope->dim > head_dim) return ROPE_ERR_DIM;
    if (seq == 0) return ROPE_OK;
    if (!dq || !dk || !dv || !dout || !q_rot || !k_rot || !v || !weights || !scratch) return ROPE_ERR_NULL;
    int status = ROPE_OK;
    for (int b = 0; b < batch && status == ROPE_OK; b++) {
        for (int h = 0; h < heads && status == ROPE_OK; h++) {
            size_t head = ((size_t)b * heads + h) * head_dim;  // this head's features in a row
            const float *p = weights + ((size_t)b * heads + h) * seq * seq;
            status = attention_head_backward(dq + head, dk + head, dv + head, dout + head, q_rot + head, k_rot + head,
                                             v + head, p, scratch, seq, head_dim, (int)row_stride, scale, causal);
        }
    }
    if (status == ROPE_OK && rope) {
        status = rope_apply(rope, dq, dq, ROPE_LAYOUT_SBHD, seq, batch, heads, head_dim, 0, NULL, 0, 1);
        if (status == ROPE_OK) {
            status = rope_apply(rope, dk, dk, ROPE_LAYOUT_SBHD, seq, batch, heads, head_dim, 0, NULL, 0, 1);
        }
    }
    return status;
}
