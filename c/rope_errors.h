// rope_errors.h: the status codes every C entry point returns (0 ok, negative = what was wrong).
// js/errors.js maps each to the JavaScript error it becomes.
#ifndef ROPE_ERRORS_H
#define ROPE_ERRORS_H

enum rope_status {
    ROPE_OK = 0,
    ROPE_ERR_NULL = -1,       // a required pointer was NULL
    ROPE_ERR_DIM = -2,        // rotary dim not even, not positive, or larger than head_dim
    ROPE_ERR_BASE = -3,       // base not finite and > 0
    ROPE_ERR_PAIRING = -4,    // unknown pairing
    ROPE_ERR_SCALING = -5,    // unknown scaling type or a bad scaling parameter
    ROPE_ERR_LAYOUT = -6,     // unknown layout
    ROPE_ERR_SHAPE = -7,      // a size negative, or a product that overflows
    ROPE_ERR_POSITIONS = -8,  // positions length not seq or batch*seq (or a position outside int32)
    ROPE_ERR_NOMEM = -9,      // allocation failed
    ROPE_ERR_HEADS = -10,     // attention: heads not a multiple of kv_heads
    ROPE_ERR_SCALE = -11,     // attention: scale not finite (after the factor log2(e))
    ROPE_ERR_TOKEN = -12,     // trainer: a token or target outside [0, vocab)
    ROPE_ERR_STATE = -13,     // trainer: backward without a forward with targets before it
    ROPE_ERR_VALUE = -14,     // trainer, attention options: a scalar out of range (loss scale, temperature,
                              // top_k, uniform; causal mode, window size, softcap, scores stage)
};

#endif
