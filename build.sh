#!/usr/bin/env bash
# build.sh: builds dist/ (the SIMD and the scalar WebAssembly module) and the native test,
# fuzz and benchmark binaries in build/. Rebuilds only what is older than its sources.
#   ./build.sh          wasm modules + native binaries
#   ./build.sh wasm     only dist/*.wasm
#   ./build.sh native   only build/* (needs gcc; the fuzzer needs clang + libclang-rt-14-dev)
set -euo pipefail
cd "$(dirname "$0")"

what=${1:-all}
sources=(c/rope.c c/rope_freq.c c/rope_kernel.c c/rope_cache.c c/rope_table.c c/rope_scores.c c/gemm.c c/attention.c c/mha.c c/rng.c c/layernorm.c c/linear.c c/embedding.c c/cross_entropy.c c/attention_backward.c c/optim.c c/sampling.c c/model.c c/kv_cache.c)
headers=(c/*.h)
exports='["_malloc","_free","_rope_create","_rope_destroy","_rope_set_linear","_rope_set_dynamic","_rope_set_yarn","_rope_set_llama3","_rope_set_longrope","_rope_prepare","_rope_inv_freq","_rope_attention_scaling","_rope_rows_computed","_rope_table_first","_rope_table_rows","_rope_apply","_rope_apply_vectors","_rope_scores","_rope_cache_apply","_rope_attention_forward","_rope_attention_forward_ex","_rope_attention_forward_typed_ex","_rope_mha_forward","_rope_heap_in_use","_rope_alloc_floats","_transformer_create","_transformer_destroy","_transformer_param_count","_transformer_params","_transformer_grads","_transformer_tensor_count","_transformer_tensor_name","_transformer_tensor_offset","_transformer_tensor_size","_transformer_tensor_dims","_transformer_tensor_dim","_transformer_init","_transformer_forward","_transformer_logits","_transformer_attention_weights","_transformer_backward","_transformer_decode_reset","_transformer_decode","_transformer_decode_length","_adamw_update","_grad_norm","_scale_floats","_add_floats","_lr_noam","_lr_warmup_cosine","_sample_logits","_kv_cache_create","_kv_cache_destroy","_kv_cache_reserve","_kv_cache_append","_kv_cache_attend_ex","_kv_cache_truncate","_kv_cache_length","_kv_cache_capacity","_kv_cache_export"]'

# stale TARGET DEPS...: true when TARGET is missing or older than any of DEPS (or this script).
stale() {
    local target=$1; shift
    [ -f "$target" ] || return 0
    local dep
    for dep in "$@" build.sh; do
        [ "$dep" -nt "$target" ] && return 0
    done
    return 1
}

build_wasm() {
    if ! command -v emcc >/dev/null 2>&1; then
        echo "build.sh: emcc not found; install Emscripten with: apt-get install -y emscripten" >&2
        exit 1
    fi
    mkdir -p dist
    # Debian's emcc runs its JS optimizer with the system's node: it needs Debian's node modules.
    export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
    local flags=(-O3 -std=c11 -Wall -Wextra -Werror
                 -s STANDALONE_WASM=1 --no-entry -s EXPORTED_FUNCTIONS="$exports"
                 -s ALLOW_MEMORY_GROWTH=1 -s INITIAL_MEMORY=16MB -s MAXIMUM_MEMORY=4GB)
    if stale dist/rope-simd.wasm "${sources[@]}" c/wasm_exports.c "${headers[@]}"; then
        echo "build.sh: dist/rope-simd.wasm"
        emcc "${flags[@]}" -msimd128 "${sources[@]}" c/wasm_exports.c -o dist/rope-simd.wasm
    fi
    if stale dist/rope-scalar.wasm "${sources[@]}" c/wasm_exports.c "${headers[@]}"; then
        echo "build.sh: dist/rope-scalar.wasm"
        emcc "${flags[@]}" "${sources[@]}" c/wasm_exports.c -o dist/rope-scalar.wasm
    fi
}

build_native() {
    mkdir -p build
    local cflags=(-std=c11 -Wall -Wextra -Werror -g -Ic)
    local san=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    local name
    # C unit tests: once under ASan + UBSan (+ LeakSanitizer), once plain for valgrind.
    for name in rope gemm attention mha scores model train_ops kv_cache; do
        if stale "build/test_$name" "${sources[@]}" "tests/native/test_$name.c" tests/native/check.h "${headers[@]}"; then
            echo "build.sh: build/test_$name (ASan + UBSan) and build/test_${name}_plain (for valgrind)"
            cc "${cflags[@]}" -O1 "${san[@]}" "${sources[@]}" "tests/native/test_$name.c" -lm -o "build/test_$name"
            cc "${cflags[@]}" -O1 "${sources[@]}" "tests/native/test_$name.c" -lm -o "build/test_${name}_plain"
        fi
    done
    # Native speed baselines of the same C for tests/bench/.
    for name in rope gemm attention train; do
        if stale "build/bench_${name}_native" "${sources[@]}" "tests/bench/${name}_native.c" tests/bench/bench_native.h "${headers[@]}"; then
            echo "build.sh: build/bench_${name}_native (-O3 -march=native)"
            cc "${cflags[@]}" -O3 -march=native "${sources[@]}" "tests/bench/${name}_native.c" -lm -o "build/bench_${name}_native"
        fi
    done
    if ! command -v clang >/dev/null 2>&1; then
        echo "build.sh: clang not found; install it for the fuzzers with: apt-get install -y clang libclang-rt-14-dev" >&2
        exit 1
    fi
    for name in rope attention; do
        if stale "build/fuzz_$name" "${sources[@]}" "tests/fuzz/fuzz_$name.c" tests/fuzz/fuzz_reader.h "${headers[@]}"; then
            echo "build.sh: build/fuzz_$name (libFuzzer + ASan + UBSan)"
            clang "${cflags[@]}" -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                "${sources[@]}" "tests/fuzz/fuzz_$name.c" -lm -o "build/fuzz_$name"
        fi
    done
}

case "$what" in
    all) build_wasm; build_native ;;
    wasm) build_wasm ;;
    native) build_native ;;
    *) echo "build.sh: unknown target '$what' (all, wasm, native)" >&2; exit 2 ;;
esac
