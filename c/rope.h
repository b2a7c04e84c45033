// rope.h: a rotary positional embedding (RoPE) and its application to a tensor of head vectors.
//
// A rope_embedding holds the configuration (rotary dim, base, pairing, long-context scaling), the
// current inverse frequencies and the cached cos/sin table. rope_apply rotates the first `dim`
// features of every head vector of x by its position and passes the other features through.
// Every entry point validates its arguments and returns a status from rope_errors.h; nothing
// aborts on bad input.
#ifndef ROPE_H
#define ROPE_H

#include <stdint.h>

#include "rope_freq.h"
#include "rope_table.h"

enum rope_pairing {
    ROPE_PAIRING_HALF = 0,         // feature i with i + dim/2 (the seed, GPT-NeoX, rotate_half)
    ROPE_PAIRING_INTERLEAVED = 1,  // feature 2i with 2i + 1 (RoFormer, Meta's LLaMA, GPT-J)
};

// The order of the four axes of x; the head vector (head_dim floats) is always innermost.
enum rope_layout {
    ROPE_LAYOUT_SBHD = 0,  // [seq, batch, heads, head_dim]: the seed's
    ROPE_LAYOUT_BSHD = 1,  // [batch, seq, heads, head_dim]
    ROPE_LAYOUT_BHSD = 2,  // [batch, heads, seq, head_dim]
};

typedef struct {
    int dim;                    // rotary dimension: even, > 0
    double base;                // theta
    int pairing;                // enum rope_pairing
    rope_scaling scaling;       // .short_factor / .long_factor point into the arrays below
    double *short_factor;       // longrope: [dim/2], owned
    double *long_factor;        // longrope: [dim/2], owned
    double *inv_freq;           // [dim/2] the frequencies in force
    double attention_scaling;   // multiplies cos and sin
    int64_t freq_seq_len;       // the seq_len inv_freq was computed for (dynamic, longrope)
    rope_table table;           // cached cos/sin rows
    int32_t *rows;              // scratch: table row of each token, [batch * seq] at most
    int64_t rows_capacity;
    float *token_rows;          // scratch for positions too spread out to cache: cos then sin,
    int64_t token_capacity;     //   [2, tokens, dim/2]
    int64_t token_rows_computed;
} rope_embedding;

// NULL when dim is not even and positive, base is not finite and > 0, pairing is unknown, or
// memory runs out.
rope_embedding *rope_create(int dim, double base, int pairing);
void rope_destroy(rope_embedding *r);

// Long-context scaling, with the meaning of transformers' rope_parameters. Each replaces any
// earlier scaling and recomputes the frequencies. Return 0 or ROPE_ERR_SCALING / ROPE_ERR_NULL.
int rope_set_linear(rope_embedding *r, double factor);
// original_max_positions: transformers' max_position_embeddings. The base grows from the longest
// position seen, and resets when a call stays within the original context (transformers' rule).
int rope_set_dynamic(rope_embedding *r, double factor, double original_max_positions);
// attention_factor 0 = derived from factor, mscale and mscale_all_dim (0 = absent).
int rope_set_yarn(rope_embedding *r, double factor, double original_max_positions, double beta_fast,
                  double beta_slow, double mscale, double mscale_all_dim, double attention_factor,
                  int truncate);
int rope_set_llama3(rope_embedding *r, double factor, double low_freq_factor, double high_freq_factor,
                    double original_max_positions);
// short_factor, long_factor: [dim/2] each, copied. A call whose longest position + 1 exceeds
// original_max_positions uses long_factor. attention_factor 0 = derived from max_positions.
int rope_set_longrope(rope_embedding *r, const double *short_factor, const double *long_factor,
                      double original_max_positions, double max_positions, double attention_factor);

// The frequencies and scaling a call with positions < seq_len would use (dynamic and longrope
// depend on it). Returns 0 or ROPE_ERR_NOMEM.
int rope_prepare(rope_embedding *r, int64_t seq_len);
const double *rope_inv_freq(const rope_embedding *r);   // [dim/2]
double rope_attention_scaling(const rope_embedding *r);
// cos/sin rows evaluated since creation (a double so that JS reads it directly): shows the
// table is reused and extended, never recomputed.
double rope_rows_computed(const rope_embedding *r);
double rope_table_first(const rope_embedding *r);
double rope_table_rows(const rope_embedding *r);

// Rotates x into y (y == x: in place; otherwise they must not overlap).
// x, y: [n0, n1, n2, head_dim] with the axes named by layout.
// Positions: when positions is NULL, token s of every batch row has position offset + s.
// Otherwise positions_len is seq (one position per token, shared by the batch) or batch * seq
// ([batch, seq]: per batch row, e.g. left padding). Negative positions are legal.
// inverse: rotate by -angle (the transpose; the backward pass of RoPE).
int rope_apply(rope_embedding *r, const float *x, float *y, int layout, int n0, int n1, int n2,
               int head_dim, int offset, const int32_t *positions, int positions_len, int inverse);

// rope_apply on the vector_count head vectors that start at vector first_vector (in memory
// order) of the tensor the shape describes; x and y point at that first vector. Lets a caller
// stream a large tensor through a small buffer that stays in cache. vector_count -1: to the end.
// ROPE_ERR_SHAPE when the range leaves the tensor.
int rope_apply_vectors(rope_embedding *r, const float *x, float *y, int layout, int n0, int n1, int n2,
                       int head_dim, int offset, const int32_t *positions, int positions_len, int inverse,
                       int first_vector, int vector_count);

#endif
