// mha.js: rw.rotaryMultiHeadAttention, the seed's RotaryPEMultiHeadAttention on c/mha.h.

import { checkStatus } from './errors.js';
import { ROPE_POINTER } from './rotary-embedding.js';
import { WasmTensor } from './tensor.js';
import { boolean, checkOptions, describe, integer, positiveNumber } from './validate.js';

const LAYERS = ['query', 'key', 'value', 'output'];
const INT32_MAX = 2 ** 31 - 1;
const registry = new FinalizationRegistry(({ exports, ptr, rope }) => {
  exports.free(ptr);
  rope?.dispose();
});

export class RotaryMultiHeadAttention {
  #module;
  #ptr = 0;       // one allocation: the mha_weights struct (8 pointers), then the weights and biases
  #rope = null;   // the rotary embedding of q and k, or null when no feature is rotated

  /** Use rw.rotaryMultiHeadAttention(options). */
  constructor(module, options) {
    const what = 'rotaryMultiHeadAttention';
    if (options === undefined) throw new TypeError(`${what}: options {heads, dModel, weights, ...} are required`);
    checkOptions(options, ['heads', 'dModel', 'ropePercentage', 'base', 'weights'], what);
    const heads = integer(options.heads, 'heads', 1, INT32_MAX);
    const dModel = integer(options.dModel, 'dModel', 1, 2 ** 15);
    if (dModel % heads !== 0) throw new RangeError(`dModel (${dModel}) must be a multiple of heads (${heads})`);
    const ropePercentage = options.ropePercentage ?? 0.5;
    if (typeof ropePercentage !== 'number' || !(ropePercentage >= 0 && ropePercentage <= 1)) {
      throw new RangeError(`ropePercentage must be a number in [0, 1], got ${ropePercentage}`);
    }
    const base = positiveNumber(options.base ?? 10000, 'base');
    const dK = dModel / heads;
    // int(d_k * rope_percentage), as the seed; its RoPE pairs features, so the count must be even.
    const ropeDim = Math.trunc(dK * ropePercentage);
    if (ropeDim % 2 !== 0) {
      throw new RangeError(`int(d_k * ropePercentage) = ${ropeDim} must be even (features are rotated in pairs)`);
    }
    const weights = options.weights;
    if (weights === null || typeof weights !== 'object') {
      throw new TypeError(`weights must be {query, key, value, output} of {weight, bias}, got ${describe(weights)}`);
    }
    checkOptions(weights, LAYERS, 'weights');
    for (const layer of LAYERS) {
      const w = weights[layer];
      if (w === null || typeof w !== 'object') throw new TypeError(`weights.${layer} must be {weight, bias}, got ${describe(w)}`);
      checkOptions(w, ['weight', 'bias'], `weights.${layer}`);
      checkFloats(w.weight, `weights.${layer}.weight`, dModel * dModel);
      checkFloats(w.bias, `weights.${layer}.bias`, dModel);
    }

    this.#module = module;
    this.heads = heads;
    this.dModel = dModel;
    this.ropePercentage = ropePercentage;
    this.base = base;
    this.ropeDim = ropeDim;
    const matrix = dModel * dModel;
    const ptr = module.alloc(32 + 4 * 4 * (matrix + dModel), what);
    const pointers = new Uint32Array(module.exports.memory.buffer, ptr, 8);
    let at = ptr + 32;
    LAYERS.forEach((layer, i) => {
      module.f32(at, matrix).set(weights[layer].weight);
      module.f32(at + 4 * matrix, dModel).set(weights[layer].bias);
      pointers[2 * i] = at;
      pointers[2 * i + 1] = at + 4 * matrix;
      at += 4 * (matrix + dModel);
    });
    this.#ptr = ptr;
    try {
      this.#rope = ropeDim > 0 ? module.rotaryEmbedding({ dim: ropeDim, base }) : null;
    } catch (error) {
      module.exports.free(ptr);
      throw error;
    }
    registry.register(this, { exports: module.exports, ptr, rope: this.#rope }, this);
  }

  /**
   * x: [seq, batch, dModel] (Float32Array or tensor). mask: Uint8Array [seq, seq, batch or 1],
   * 0 = masked (the seed's prepare_mask). Returns y [seq, batch, dModel], a new Float32Array.
   */
  forward(x, options) {
    if (this.#ptr === 0) throw new TypeError('this rotaryMultiHeadAttention was disposed');
    const what = 'forward';
    if (options === undefined) throw new TypeError(`${what}: options {seq, batch} are required`);
    checkOptions(options, ['seq', 'batch', 'mask', 'causal'], what);
    const module = this.#module;
    const seq = integer(options.seq, 'seq', 0, INT32_MAX);
    const batch = integer(options.batch, 'batch', 1, INT32_MAX);
    const causal = boolean(options.causal ?? false, 'causal');
    const count = seq * batch * this.dModel;
    if (count > 2 ** 28) throw new RangeError(`x would have ${count} elements; at most 2^28 fit with the projections`);
    if (x instanceof WasmTensor) {
      if (x.module !== module) throw new TypeError('x is a tensor of another rope-wasm instance');
      if (x.disposed) throw new TypeError('x is a disposed tensor');
    } else if (!(x instanceof Float32Array)) {
      throw new TypeError(`x must be a Float32Array or a tensor from rw.tensor(), got ${describe(x)}`);
    }
    if (x.length !== count) throw new RangeError(`x has length ${x.length}; expected ${count} ([seq, batch, dModel])`);
    const mask = options.mask;
    let maskBatch = 0;
    if (mask !== undefined) {
      if (!(mask instanceof Uint8Array)) throw new TypeError(`mask must be a Uint8Array, got ${describe(mask)}`);
      if (mask.length === seq * seq) maskBatch = 1;
      else if (mask.length === seq * seq * batch) maskBatch = batch;
      else {
        throw new RangeError(`mask has length ${mask.length}; expected ${seq * seq} ([seq, seq, 1]) or ${seq * seq * batch} ([seq, seq, batch])`);
      }
    }

    const allocated = [];
    try {
      let xPtr;
      if (x instanceof WasmTensor) {
        xPtr = x.byteOffset;
      } else {
        xPtr = module.allocFloats(count, 'x');
        allocated.push(xPtr);
        module.f32(xPtr, count).set(x);
      }
      const yPtr = module.allocFloats(count, 'output');
      allocated.push(yPtr);
      let maskPtr = 0;
      if (mask !== undefined) {
        maskPtr = module.alloc(Math.max(mask.length, 1), 'mask');
        allocated.push(maskPtr);
        new Uint8Array(module.exports.memory.buffer, maskPtr, mask.length).set(mask);
      }
      const ropePtr = this.#rope ? this.#rope[ROPE_POINTER]() : 0;
      const status = module.exports.rope_mha_forward(xPtr, yPtr, seq, batch, this.dModel, this.heads, this.#ptr,
        ropePtr, causal ? 1 : 0, maskPtr, maskBatch);
      checkStatus(status, what);
      return module.f32(yPtr, count).slice();
    } finally {
      for (const ptr of allocated) module.exports.free(ptr);
    }
  }

  get disposed() {
    return this.#ptr === 0;
  }

  dispose() {
    if (this.#ptr === 0) return;
    registry.unregister(this);
    this.#module.exports.free(this.#ptr);
    this.#rope?.dispose();
    this.#ptr = 0;
  }

  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
    this.dispose();
  }
}

function checkFloats(value, name, length) {
  if (!(value instanceof Float32Array)) throw new TypeError(`${name} must be a Float32Array, got ${describe(value)}`);
  if (value.length !== length) throw new RangeError(`${name} has length ${value.length}; expected ${length}`);
}
