// embedding.h: PyTorch's nn.Embedding (a row of the table per token) forward and backward, for the
// trainer.
#ifndef ROPE_EMBEDDING_H
#define ROPE_EMBEDDING_H

#include <stdint.h>

// Returns ROPE_OK, or ROPE_ERR_TOKEN when a token is outside [0, vocab) (ROPE_ERR_NULL with
// tokens NULL and count > 0). Lets a caller check its input before writing anything.
int embedding_check_tokens(const int32_t *tokens, int count, int vocab);

// out[i] = table[tokens[i]]
//   tokens: [count] in [0, vocab); table: [vocab, dim]; out: [count, dim]
// Tokens are checked before anything is written. Returns ROPE_OK, ROPE_ERR_NULL, ROPE_ERR_SHAPE or
// ROPE_ERR_TOKEN.
int embedding_forward(float *out, const int32_t *tokens, const float *table, int count, int vocab, int dim);

// dtable[tokens[i]] += dout[i] (a token seen twice gets both rows)
//   dout: [count, dim]; dtable: [vocab, dim], added to
// Returns as embedding_forward.
int embedding_backward(float *dtable, const float *dout, const int32_t *tokens, int count, int vocab, int dim);

#endif
