// fuzz_reader.h: how the libFuzzer harnesses (tests/fuzz/fuzz_*.c) decode their input: read front
// to back; reading past the end gives zeros, so every input decodes.
#ifndef ROPE_FUZZ_READER_H
#define ROPE_FUZZ_READER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size, at;
} reader;

static inline uint8_t read_u8(reader *in) { return in->at < in->size ? in->data[in->at++] : 0; }

static inline uint32_t read_u32(reader *in) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = v << 8 | read_u8(in);
    return v;
}

static inline int32_t read_i32(reader *in) {
    uint32_t bits = read_u32(in);
    int32_t v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

#endif
