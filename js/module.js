// module.js: one instance of the WebAssembly module and the objects made from it.

import { attention } from './attention.js';
import { KvCache, attentionWithPast, wantsPast } from './kv-cache.js';
import { instantiate, simdSupported } from './loader.js';
import { RotaryMultiHeadAttention } from './mha.js';
import { applyRotaryWithCache } from './rotary-cache.js';
import { RotaryEmbedding } from './rotary-embedding.js';
import { Transformer } from './transformer.js';
import { WasmTensor } from './tensor.js';
import { checkOptions, integer } from './validate.js';

// The largest tensor rw.tensor makes: 2^30 floats (4 GiB) is the whole 32-bit address space.
const MAX_TENSOR_LENGTH = 2 ** 30 - 1;

export class RopeModule {
  /** @internal use loadRope() */
  constructor(exports, simd) {
    this.exports = exports;
    /** True when this instance runs the wasm SIMD128 build. */
    this.simd = simd;
  }

  /** Options: {dim, base = 10000, pairing = 'half', scaling}. See index.d.ts. */
  rotaryEmbedding(options) {
    return new RotaryEmbedding(this, options);
  }

  /**
   * RoPE with the caller's cos/sin caches, the semantics of ONNX RotaryEmbedding-23: x rotated
   * with cosCache/sinCache rows [maxPosition, rotaryDim/2] picked by positionIds [batch, seq], or
   * [batch, seq, rotaryDim/2] without them. Options: {shape, layout, positionIds, interleaved,
   * rotaryDim, numHeads, inverse, out}. See index.d.ts.
   */
  applyRotaryWithCache(x, cosCache, sinCache, options) {
    return applyRotaryWithCache(this, x, cosCache, sinCache, options);
  }

  /**
   * Scaled dot-product attention: softmax(scale q k^T [+ causal mask]) v, RoPE inside when `rope`
   * is given. Options: {batch, heads, kvHeads, seqQ, seqK, headDim, layout, causal, scale, rope,
   * offset, returnWeights, out}. See index.d.ts.
   */
  attention(q, k, v, options) {
    // pastKey/pastValue/returnPresent: ONNX's past/present, in js/kv-cache.js
    if (wantsPast(options)) return attentionWithPast(this, q, k, v, options);
    return attention(this, q, k, v, options);
  }

  /**
   * A key/value cache in wasm memory for decoding: {batch, kvHeads, headDim, valueHeadDim, rope,
   * capacity}; append(k, v), attend(q), truncate(n), reset(), presentKey(), presentValue(). See
   * index.d.ts.
   */
  kvCache(options) {
    return new KvCache(this, options);
  }

  /**
   * The seed's RotaryPEMultiHeadAttention: {heads, dModel, ropePercentage = 0.5, base = 10000,
   * weights: {query, key, value, output}: {weight [dModel, dModel], bias [dModel]}}.
   */
  rotaryMultiHeadAttention(options) {
    return new RotaryMultiHeadAttention(this, options);
  }

  /**
   * The seed's character-level RoPE transformer, trainable here: {vocab (or vocabulary, a string
   * of its characters), dModel, heads, layers, dFF, ropePercentage = 1, base = 10000, seed = 0,
   * contextLength = 256}. See index.d.ts.
   */
  transformer(options) {
    return new Transformer(this, options);
  }

  /** A zero-copy float32 tensor of `length` elements in wasm memory, zero-filled. */
  tensor(length) {
    integer(length, 'length', 0, MAX_TENSOR_LENGTH);
    const ptr = this.allocFloats(length, 'tensor');
    this.f32(ptr, length).fill(0);
    return new WasmTensor(this, ptr, length);
  }

  /** Bytes of the wasm heap that malloc has handed out and not taken back. */
  heapInUse() {
    return this.exports.rope_heap_in_use();
  }

  /** Current size of the wasm memory in bytes. */
  get memoryBytes() {
    return this.exports.memory.buffer.byteLength;
  }

  /** @internal malloc of `count` floats, or a RangeError naming `what`. */
  allocFloats(count, what) {
    const ptr = this.exports.rope_alloc_floats(count) >>> 0;
    if (ptr === 0) {
      throw new RangeError(`${what}: cannot allocate ${count * 4} bytes of WebAssembly memory (at most 4 GiB in all)`);
    }
    return ptr;
  }

  /** @internal malloc of `bytes` bytes, or a RangeError naming `what`. */
  alloc(bytes, what) {
    const ptr = this.exports.malloc(bytes) >>> 0;
    if (ptr === 0) throw new RangeError(`${what}: cannot allocate ${bytes} bytes of WebAssembly memory`);
    return ptr;
  }

  /** @internal fresh views of the heap (growth replaces the buffer, so never keep one) */
  f32(ptr, length) {
    return new Float32Array(this.exports.memory.buffer, ptr, length);
  }
  f64(ptr, length) {
    return new Float64Array(this.exports.memory.buffer, ptr, length);
  }
  i32(ptr, length) {
    return new Int32Array(this.exports.memory.buffer, ptr, length);
  }
}

/**
 * Loads the WebAssembly module: the SIMD build where the engine supports wasm SIMD128, the
 * scalar build otherwise. options.simd: true requires SIMD, false forces the scalar build.
 * Every call makes a new instance with its own memory.
 */
export async function loadRope(options) {
  checkOptions(options, ['simd'], 'loadRope');
  const wanted = options?.simd;
  if (wanted !== undefined && typeof wanted !== 'boolean') {
    throw new TypeError(`loadRope: simd must be a boolean or undefined, got ${typeof wanted}`);
  }
  const supported = simdSupported();
  if (wanted === true && !supported) throw new Error('loadRope: this engine has no WebAssembly SIMD128');
  const simd = wanted ?? supported;
  const exports = await instantiate(simd ? 'simd' : 'scalar');
  return new RopeModule(exports, simd);
}
