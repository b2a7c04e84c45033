// kv-cache.js: rw.kvCache, a key/value cache in wasm memory for decoding (c/kv_cache.h), and the
// ONNX-style past_key/past_value -> present_key/present_value path of rw.attention.

import { SCORES, attention, rowOptions } from './attention.js';
import { checkStatus } from './errors.js';
import { ROPE_POINTER, RotaryEmbedding } from './rotary-embedding.js';
import { WasmTensor } from './tensor.js';
import { boolean, checkOptions, describe, integer, oneOf } from './validate.js';

const LAYOUTS = ['sbhd', 'bshd', 'bhsd'];
const LAYOUT_CODE = { sbhd: 0, bshd: 1, bhsd: 2 };
const INT32_MAX = 2 ** 31 - 1;
const MAX_LENGTH = INT32_MAX - 8;  // KV_CACHE_MAX_LENGTH
const MAX_FLOATS = 2 ** 30;
const CACHE_OPTIONS = ['batch', 'kvHeads', 'headDim', 'valueHeadDim', 'rope', 'capacity'];
const APPEND_OPTIONS = ['seq', 'layout'];
const ATTEND_OPTIONS = ['heads', 'seqQ', 'layout', 'causal', 'scale', 'mask', 'maskShape', 'softcap', 'window',
  'kvSeqLengths', 'returnWeights', 'returnScores', 'out'];

const registry = new FinalizationRegistry(({ exports, ptr }) => exports.kv_cache_destroy(ptr));

/** A Float32Array or a live tensor of this module, of `length` elements (undefined: any length). */
function checkArray(module, value, name, length, note = '') {
  if (value instanceof WasmTensor) {
    if (value.module !== module) throw new TypeError(`${name} is a tensor of another rope-wasm instance`);
    if (value.disposed) throw new TypeError(`${name} is a disposed tensor`);
  } else if (!(value instanceof Float32Array)) {
    throw new TypeError(`${name} must be a Float32Array or a tensor from rw.tensor(), got ${describe(value)}`);
  }
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`${name} has length ${value.length}; expected ${length}${note}`);
  }
}

/** A sequence length: `given`, or value.length / perToken when that is an integer. */
function seqOf(given, value, perToken, name, valueName, shape) {
  if (given !== undefined) return integer(given, name, 0, MAX_LENGTH);
  const seq = value.length / perToken;
  if (!Number.isInteger(seq)) {
    throw new RangeError(`${valueName} has length ${value.length}, not a multiple of ${perToken} (${shape})`);
  }
  return seq;
}

function checkRope(module, rope, headDim) {
  if (rope === null) return null;
  if (!(rope instanceof RotaryEmbedding)) throw new TypeError(`rope must be a rotaryEmbedding, got ${describe(rope)}`);
  if (rope.module !== module) throw new TypeError('rope is a rotaryEmbedding of another rope-wasm instance');
  if (rope.dim > headDim) throw new RangeError(`rope.dim (${rope.dim}) is larger than headDim (${headDim})`);
  return rope;
}

export class KvCache {
  #module;
  #ptr = 0;
  #rope;

  /** Use rw.kvCache(options). */
  constructor(module, options) {
    const what = 'kvCache';
    if (options === undefined) throw new TypeError(`${what}: options {batch, kvHeads, headDim, ...} are required`);
    checkOptions(options, CACHE_OPTIONS, what);
    this.batch = integer(options.batch, 'batch', 1, INT32_MAX);
    this.kvHeads = integer(options.kvHeads, 'kvHeads', 1, INT32_MAX);
    this.headDim = integer(options.headDim, 'headDim', 1, INT32_MAX);
    this.valueHeadDim = integer(options.valueHeadDim ?? this.headDim, 'valueHeadDim', 1, INT32_MAX);
    const capacity = integer(options.capacity ?? 0, 'capacity', 0, MAX_LENGTH);
    this.#rope = checkRope(module, options.rope ?? null, this.headDim);
    const row = this.batch * this.kvHeads * Math.max(this.headDim, this.valueHeadDim);
    if (row > MAX_FLOATS) throw new RangeError(`batch * kvHeads * headDim (${row}) is over 2^30: a row does not fit in WebAssembly memory`);
    if (row * capacity > MAX_FLOATS) {
      throw new RangeError(`capacity ${capacity} needs ${row * capacity} floats of keys; at most 2^30 fit in WebAssembly memory`);
    }
    this.#module = module;
    const exports = module.exports;
    const ptr = exports.kv_cache_create(this.batch, this.kvHeads, this.headDim, this.valueHeadDim, capacity) >>> 0;
    if (ptr === 0) throw new RangeError(`${what}: cannot allocate a cache of ${capacity} rows of WebAssembly memory`);
    this.#ptr = ptr;
    registry.register(this, { exports, ptr }, this);
  }

  /** Tokens cached. */
  get length() {
    return this.#module.exports.kv_cache_length(this.#check());
  }

  /** Tokens the cache holds before it grows (it doubles when an append needs more). */
  get capacity() {
    return this.#module.exports.kv_cache_capacity(this.#check());
  }

  /** The rotaryEmbedding applied to keys at append and queries at attend, or null. */
  get rope() {
    return this.#rope;
  }

  get disposed() {
    return this.#ptr === 0;
  }

  /**
   * Appends seq tokens: k [batch, kvHeads, seq, headDim], v [batch, kvHeads, seq, valueHeadDim] in
   * `layout` (default 'bhsd'); with rope, keys are rotated at positions length + s, once.
   * Returns the new length.
   */
  append(k, v, options) {
    const ptr = this.#check();
    checkOptions(options, APPEND_OPTIONS, 'append');
    const layout = oneOf(options?.layout ?? 'bhsd', 'layout', LAYOUTS);
    checkArray(this.#module, k, 'k');
    checkArray(this.#module, v, 'v');
    const kRow = this.batch * this.kvHeads * this.headDim;
    const vRow = this.batch * this.kvHeads * this.valueHeadDim;
    const seq = seqOf(options?.seq, k, kRow, 'seq', 'k', '[batch, kvHeads, seq, headDim]');
    checkArray(this.#module, k, 'k', seq * kRow, ' ([batch, kvHeads, seq, headDim])');
    checkArray(this.#module, v, 'v', seq * vRow, ' ([batch, kvHeads, seq, valueHeadDim])');
    const length = this.length;
    if (seq > MAX_LENGTH - length) throw new RangeError(`seq (${seq}): the cache would hold more than 2^31 - 9 tokens`);
    if ((length + seq) * Math.max(kRow, vRow) > MAX_FLOATS) {
      throw new RangeError(`seq (${seq}): the cache would need more than 2^30 floats, over WebAssembly memory`);
    }
    const ropePtr = this.#ropePointer();
    const module = this.#module;
    const allocated = [];
    const place = (value, name, n) => {
      if (value instanceof WasmTensor) return value.byteOffset;
      const p = module.allocFloats(n, name);
      allocated.push(p);
      module.f32(p, n).set(value);
      return p;
    };
    try {
      const kPtr = place(k, 'k', seq * kRow);
      const vPtr = place(v, 'v', seq * vRow);
      checkStatus(module.exports.kv_cache_append(ptr, kPtr, vPtr, seq, LAYOUT_CODE[layout], ropePtr), 'append');
    } finally {
      for (const p of allocated) module.exports.free(p);
    }
    return this.length;
  }

  /**
   * Attention of q [batch, heads, seqQ, headDim] (the newest seqQ tokens) over every cached
   * token, causal bottom-right by default. Options as rw.attention's (heads, seqQ, layout, causal,
   * scale, mask + maskShape, softcap, window, kvSeqLengths, returnWeights, returnScores, out), with
   * seqK the cache length. Returns the output [batch, heads, seqQ, valueHeadDim] in `layout`, or
   * {output, weights, scores}.
   */
  attend(q, options) {
    const ptr = this.#check();
    const what = 'attend';
    checkOptions(options, ATTEND_OPTIONS, what);
    const o = options ?? {};
    const { batch, kvHeads, headDim, valueHeadDim } = this;
    const heads = integer(o.heads ?? kvHeads, 'heads', 1, INT32_MAX);
    if (heads % kvHeads !== 0) throw new RangeError(`heads (${heads}) must be a multiple of kvHeads (${kvHeads})`);
    const layout = oneOf(o.layout ?? 'bhsd', 'layout', LAYOUTS);
    checkArray(this.#module, q, 'q');
    const seqQ = seqOf(o.seqQ, q, batch * heads * headDim, 'seqQ', 'q', '[batch, heads, seqQ, headDim]');
    const seqK = this.length;
    const {
      causal, scale, softcap, windowLeft, windowRight, lengths, mask, strides, returnWeights, returnScores,
    } = rowOptions(o, { batch, heads, seqQ, seqK, headDim, causalDefault: true, seqKNote: ' with seqK = the cache length' });
    const qLength = batch * heads * seqQ * headDim;
    const outLength = batch * heads * seqQ * valueHeadDim;
    const scoresLength = batch * heads * seqQ * seqK;
    for (const [name, n] of [['q', qLength], ['output', outLength], ['weights', returnWeights ? scoresLength : 0],
      ['scores', returnScores ? scoresLength : 0]]) {
      if (n > MAX_FLOATS) throw new RangeError(`${name} would have ${n} elements; at most 2^30 fit in WebAssembly memory`);
    }
    checkArray(this.#module, q, 'q', qLength, ' ([batch, heads, seqQ, headDim])');
    const out = o.out;
    if (out !== undefined) {
      checkArray(this.#module, out, 'out', outLength, ' ([batch, heads, seqQ, valueHeadDim])');
      if (out === q && valueHeadDim !== headDim) throw new RangeError('out may be q only when valueHeadDim equals headDim');
    }
    const ropePtr = this.#ropePointer();

    const module = this.#module;
    const allocated = [];
    const place = (value, name, n) => {
      if (value instanceof WasmTensor) return value.byteOffset;
      const p = module.allocFloats(n, name);
      allocated.push(p);
      if (value) module.f32(p, n).set(value);
      return p;
    };
    try {
      const qPtr = place(q, 'q', qLength);
      const outPtr = out instanceof WasmTensor ? out.byteOffset : place(null, 'output', outLength);
      const weightsPtr = returnWeights ? place(null, 'weights', scoresLength) : 0;
      const scoresPtr = returnScores ? place(null, 'scores', scoresLength) : 0;
      let lengthsPtr = 0;
      if (lengths) {
        lengthsPtr = place(null, 'kvSeqLengths', batch);
        module.i32(lengthsPtr, batch).set(lengths);
      }
      let maskBytes = 0;
      let maskFloats = 0;
      if (mask instanceof Float32Array) {
        maskFloats = place(mask, 'mask', mask.length);
      } else if (mask) {
        maskBytes = place(null, 'mask', Math.ceil(mask.length / 4));
        new Uint8Array(module.exports.memory.buffer, maskBytes, mask.length).set(mask);
      }
      const [sb, sh, sq, sk] = strides;
      const status = module.exports.kv_cache_attend_ex(ptr, qPtr, outPtr, weightsPtr, heads, seqQ, LAYOUT_CODE[layout],
        scale, ropePtr, causal, windowLeft, windowRight, softcap, lengthsPtr, maskBytes, maskFloats, sb, sh, sq, sk,
        scoresPtr, returnScores ? SCORES.indexOf(returnScores) : 0);
      checkStatus(status, what);
      let output;
      if (out instanceof WasmTensor) {
        output = out;
      } else if (out !== undefined) {
        out.set(module.f32(outPtr, outLength));
        output = out;
      } else {
        output = module.f32(outPtr, outLength).slice();
      }
      if (!returnWeights && !returnScores) return output;
      const result = { output };
      if (returnWeights) result.weights = module.f32(weightsPtr, scoresLength).slice();
      if (returnScores) result.scores = module.f32(scoresPtr, scoresLength).slice();
      return result;
    } finally {
      for (const p of allocated) module.exports.free(p);
    }
  }

  /** Keeps the first n tokens (rollback, beam search); n in [0, length]. */
  truncate(n) {
    const ptr = this.#check();
    integer(n, 'n', 0, this.length);
    checkStatus(this.#module.exports.kv_cache_truncate(ptr, n), 'truncate');
  }

  /** Empties the cache (its memory is kept for the next sequence). */
  reset() {
    this.truncate(0);
  }

  /** The cached keys as ONNX present_key: a Float32Array [batch, kvHeads, length, headDim]. */
  presentKey() {
    return this.#export(true);
  }

  /** The cached values as ONNX present_value: a Float32Array [batch, kvHeads, length, valueHeadDim]. */
  presentValue() {
    return this.#export(false);
  }

  dispose() {
    if (this.#ptr === 0) return;
    registry.unregister(this);
    this.#module.exports.kv_cache_destroy(this.#ptr);
    this.#ptr = 0;
  }

  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
    this.dispose();
  }

  #export(keys) {
    const ptr = this.#check();
    const module = this.#module;
    const n = this.batch * this.kvHeads * this.length * (keys ? this.headDim : this.valueHeadDim);
    const dst = module.allocFloats(n, keys ? 'presentKey' : 'presentValue');
    try {
      checkStatus(module.exports.kv_cache_export(ptr, keys ? dst : 0, keys ? 0 : dst), keys ? 'presentKey' : 'presentValue');
      return module.f32(dst, n).slice();
    } finally {
      module.exports.free(dst);
    }
  }

  #ropePointer() {
    if (this.#rope === null) return 0;
    if (this.#rope.disposed) throw new TypeError('rope (the cache\'s rotaryEmbedding) was disposed');
    return this.#rope[ROPE_POINTER]();
  }

  #check() {
    if (this.#ptr === 0) throw new TypeError('this kvCache was disposed');
    return this.#ptr;
  }
}

/** Whether rw.attention's options ask for the past/present path. */
export function wantsPast(options) {
  return options !== null && typeof options === 'object'
    && (options.pastKey !== undefined || options.pastValue !== undefined || options.returnPresent !== undefined);
}

/** The values of a Float32Array or a tensor, as a Float32Array (a view for a tensor). */
function valuesOf(x) {
  return x instanceof WasmTensor ? x.data : x;
}

/**
 * rw.attention with ONNX Attention's past_key/past_value inputs and present_key/present_value
 * outputs: present = concat(past [batch, kvHeads, pastSeq, headDim], the new k/v) along the
 * sequence, attention of q over present (seqK = pastSeq + seqK), every other option as
 * rw.attention's. Returns {output, presentKey, presentValue (, weights, scores)} with
 * returnPresent: true, else what rw.attention returns.
 */
export function attentionWithPast(module, q, k, v, options) {
  const { pastKey, pastValue, returnPresent: returnPresentOption, ...rest } = options;
  const returnPresent = boolean(returnPresentOption ?? false, 'returnPresent');
  const batch = integer(rest.batch, 'batch', 1, INT32_MAX);
  const heads = integer(rest.heads, 'heads', 1, INT32_MAX);
  const kvHeads = integer(rest.kvHeads ?? heads, 'kvHeads', 1, INT32_MAX);
  const seqQ = integer(rest.seqQ, 'seqQ', 0, INT32_MAX);
  const seqK = integer(rest.seqK ?? seqQ, 'seqK', 0, INT32_MAX);
  const headDim = integer(rest.headDim, 'headDim', 1, INT32_MAX);
  const valueHeadDim = integer(rest.valueHeadDim ?? headDim, 'valueHeadDim', 1, INT32_MAX);
  const layout = oneOf(rest.layout ?? 'bhsd', 'layout', LAYOUTS);
  if ((pastKey === undefined) !== (pastValue === undefined)) {
    throw new TypeError(`pastKey and pastValue must be given together (got ${pastKey === undefined ? 'pastValue' : 'pastKey'} only)`);
  }
  let pastSeq = 0;
  if (pastKey !== undefined) {
    checkArray(module, pastKey, 'pastKey');
    checkArray(module, pastValue, 'pastValue');
    pastSeq = seqOf(undefined, pastKey, batch * kvHeads * headDim, 'pastSeq', 'pastKey', '[batch, kvHeads, pastSeq, headDim]');
    checkArray(module, pastValue, 'pastValue', batch * kvHeads * pastSeq * valueHeadDim, ' ([batch, kvHeads, pastSeq, valueHeadDim])');
  }
  checkArray(module, k, 'k', batch * kvHeads * seqK * headDim, ' ([batch, kvHeads, seqK, headDim] in layout)');
  checkArray(module, v, 'v', batch * kvHeads * seqK * valueHeadDim, ' ([batch, kvHeads, seqK, valueHeadDim] in layout)');
  const total = pastSeq + seqK;
  if (total > INT32_MAX - 8) throw new RangeError(`pastSeq + seqK (${total}) is over 2^31 - 9`);
  for (const [name, n] of [['presentKey', batch * kvHeads * total * headDim], ['presentValue', batch * kvHeads * total * valueHeadDim]]) {
    if (n > MAX_FLOATS) throw new RangeError(`${name} would have ${n} elements; at most 2^30 fit in WebAssembly memory`);
  }
  const concat = (past, x, dim) => {
    // present [batch, kvHeads, total, dim] (bhsd) and, for the kernel, the same in `layout`.
    const present = new Float32Array(batch * kvHeads * total * dim);
    const xs = valuesOf(x);
    const ps = past === undefined ? null : valuesOf(past);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < kvHeads; h++) {
        const head = (b * kvHeads + h) * total * dim;
        if (ps) present.set(ps.subarray((b * kvHeads + h) * pastSeq * dim, (b * kvHeads + h + 1) * pastSeq * dim), head);
        for (let s = 0; s < seqK; s++) {
          const at = layout === 'bhsd' ? ((b * kvHeads + h) * seqK + s) * dim
            : layout === 'bshd' ? ((b * seqK + s) * kvHeads + h) * dim : ((s * batch + b) * kvHeads + h) * dim;
          present.set(xs.subarray(at, at + dim), head + (pastSeq + s) * dim);
        }
      }
    }
    if (layout === 'bhsd') return [present, present];
    const inLayout = new Float32Array(present.length);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < kvHeads; h++) {
        for (let s = 0; s < total; s++) {
          const at = layout === 'bshd' ? ((b * total + s) * kvHeads + h) * dim : ((s * batch + b) * kvHeads + h) * dim;
          const from = ((b * kvHeads + h) * total + s) * dim;
          inLayout.set(present.subarray(from, from + dim), at);
        }
      }
    }
    return [present, inLayout];
  };
  const [presentKey, kAll] = concat(pastKey, k, headDim);
  const [presentValue, vAll] = concat(pastValue, v, valueHeadDim);
  const result = attention(module, q, kAll, vAll, { ...rest, seqK: total });
  if (!returnPresent) return result;
  const isPlain = result instanceof Float32Array || result instanceof WasmTensor;
  return { ...(isPlain ? { output: result } : result), presentKey, presentValue };
}
