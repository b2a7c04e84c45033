// rng.h: a small seeded random number generator for parameter initialisation (and tests):
// the same seed gives the same numbers on every platform, native and wasm.
//
// xoshiro256** (Blackman and Vigna) seeded through splitmix64, so that nearby seeds (0, 1, 2, ...)
// give unrelated streams. Not PyTorch's generator: the distributions match torch's default
// initialisation, the numbers do not.
#ifndef ROPE_RNG_H
#define ROPE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state[4];
} rng_state;

void rng_seed(rng_state *rng, uint64_t seed);
uint64_t rng_next_u64(rng_state *rng);
// Uniform in [0, 1), 53 random bits.
double rng_uniform(rng_state *rng);
// Standard normal (Box-Muller; one value per call, the second of the pair is dropped for simplicity).
double rng_normal(rng_state *rng);

#endif
