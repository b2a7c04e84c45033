// wasm_exports.c: what the WebAssembly module adds to the rope_* C API for its JavaScript side.
// The rope_* functions of rope.h, malloc and free are exported as they are (build.sh lists them).
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

// Bytes of the heap in use by malloc: the JS tests check that it returns to its level after
// thousands of calls, i.e. that nothing leaks.
__attribute__((used)) double rope_heap_in_use(void) {
    struct mallinfo info = mallinfo();
    return (double)(uint32_t)info.uordblks;
}

// malloc of count floats that fails (returns 0) instead of wrapping when count * 4 overflows
// the 32-bit size_t of wasm.
__attribute__((used)) float *rope_alloc_floats(double count) {
    if (!(count >= 0) || count > (double)(SIZE_MAX / sizeof(float))) return NULL;
    size_t n = (size_t)count;
    return malloc(n ? n * sizeof(float) : sizeof(float));
}
