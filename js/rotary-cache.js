// rotary-cache.js: rw.applyRotaryWithCache, RoPE with cos/sin caches supplied by the caller, with
// the semantics of ONNX RotaryEmbedding-23 (c/rope_cache.h).
//
// ONNX                                        here
// X 4D [batch, num_heads, seq, head_size]     shape [batch, heads, seq, headDim] (layout 'bhsd',
//                                             the default; 'bshd' and 'sbhd' also work)
// X 3D [batch, seq, num_heads * head_size]    shape [batch, seq, hidden] with numHeads
// cos_cache, sin_cache 2D + position_ids      cosCache, sinCache [maxPosition, rotaryDim/2] +
//                                             positionIds [batch, seq]
// cos_cache, sin_cache 3D                     cosCache, sinCache [batch, seq, rotaryDim/2]
// interleaved (0/1)                           interleaved (boolean)
// rotary_embedding_dim (0 = head_size)        rotaryDim (0 or absent = headDim)
// num_heads                                   numHeads

import { checkStatus } from './errors.js';
import { rotateThroughBuffer } from './rotary-embedding.js';
import { WasmTensor } from './tensor.js';
import { boolean, checkOptions, describe, integer, oneOf } from './validate.js';

const OPTIONS = ['shape', 'layout', 'positionIds', 'interleaved', 'rotaryDim', 'numHeads', 'inverse', 'out'];
const LAYOUTS = ['sbhd', 'bshd', 'bhsd'];
const LAYOUT_BSHD = 1;
const INT32_MAX = 2 ** 31 - 1;
const MAX_FLOATS = 2 ** 30;

/** A Float32Array or a live tensor of this module. */
function checkArray(module, value, name) {
  if (value instanceof WasmTensor) {
    if (value.module !== module) throw new TypeError(`${name} is a tensor of another rope-wasm instance`);
    if (value.disposed) throw new TypeError(`${name} is a disposed tensor`);
  } else if (!(value instanceof Float32Array)) {
    throw new TypeError(`${name} must be a Float32Array or a tensor from rw.tensor(), got ${describe(value)}`);
  }
}

/** x's shape as the C call sees it: {layout, n0, n1, n2, headDim, batch, seq}. */
function checkShape(options) {
  const shape = options.shape;
  if (!Array.isArray(shape) && !ArrayBuffer.isView(shape)) {
    throw new TypeError(`shape must be an array of 3 sizes [batch, seq, heads * headDim] or 4 sizes [batch, heads, seq, headDim], got ${describe(shape)}`);
  }
  if (shape.length !== 3 && shape.length !== 4) {
    throw new RangeError(`shape must have 3 sizes [batch, seq, heads * headDim] or 4 [batch, heads, seq, headDim], got ${shape.length}`);
  }
  const sizes = Array.from(shape, (size, i) => integer(size, `shape[${i}]`, 0, INT32_MAX));
  const count = sizes.reduce((a, b) => a * b, 1);
  if (count > MAX_FLOATS) {
    throw new RangeError(`shape [${sizes.join(', ')}] has ${count} elements; at most 2^30 fit in WebAssembly memory`);
  }
  if (sizes.length === 3) {
    // ONNX's 3D input: [batch, seq, hidden], hidden = num_heads * head_size, the bshd layout.
    if (options.layout !== undefined) {
      throw new TypeError('layout applies to 4D shapes; a 3D shape is always [batch, seq, heads * headDim]');
    }
    if (options.numHeads === undefined) {
      throw new TypeError('numHeads is required with a 3D shape [batch, seq, heads * headDim] (ONNX\'s num_heads)');
    }
    const [batch, seq, hidden] = sizes;
    const numHeads = integer(options.numHeads, 'numHeads', 1, INT32_MAX);
    if (hidden % numHeads !== 0) {
      throw new RangeError(`shape[2] (${hidden}) must be a multiple of numHeads (${numHeads}): it is heads * headDim`);
    }
    return { sizes, count, layout: LAYOUT_BSHD, n0: batch, n1: seq, n2: numHeads, headDim: hidden / numHeads, batch, seq };
  }
  const layout = oneOf(options.layout ?? 'bhsd', 'layout', LAYOUTS);
  const [n0, n1, n2, headDim] = sizes;
  const heads = layout === 'bhsd' ? n1 : n2;
  if (options.numHeads !== undefined) {
    // 0 is ONNX's default: not given.
    const numHeads = integer(options.numHeads, 'numHeads', 0, INT32_MAX);
    if (numHeads !== 0 && numHeads !== heads) {
      throw new RangeError(`numHeads (${numHeads}) differs from the heads of shape [${sizes.join(', ')}] (${heads}) in layout '${layout}'`);
    }
  }
  return {
    sizes,
    count,
    layout: LAYOUTS.indexOf(layout),
    n0,
    n1,
    n2,
    headDim,
    seq: layout === 'sbhd' ? n0 : layout === 'bshd' ? n1 : n2,
    batch: layout === 'sbhd' ? n1 : n0,
  };
}

function checkRotaryDim(value, headDim) {
  if (value === undefined || value === 0) {
    if (headDim < 2 || headDim % 2 !== 0) {
      throw new RangeError(`the head size (${headDim}) must be even and at least 2 when rotaryDim is 0 or not given (all of it is rotated, in pairs)`);
    }
    return headDim;
  }
  const rotaryDim = integer(value, 'rotaryDim', 0, INT32_MAX);
  if (rotaryDim % 2 !== 0) throw new RangeError(`rotaryDim must be even (features are rotated in pairs), got ${rotaryDim}`);
  if (rotaryDim > headDim) throw new RangeError(`rotaryDim (${rotaryDim}) is larger than the head size (${headDim})`);
  return rotaryDim;
}

/**
 * positionIds as an Int32Array, each checked to be an integer in [0, maxPosition). Accepts an
 * Int32Array, a BigInt64Array (ONNX's int64), or any array-like of integers (numbers or bigints).
 */
function checkPositionIds(value, length, maxPosition, half) {
  const name = 'positionIds';
  if (value === null || typeof value !== 'object' || typeof value.length !== 'number') {
    throw new TypeError(`${name} must be an Int32Array, a BigInt64Array or an array of integers [batch, seq], got ${describe(value)}`);
  }
  if (value.length !== length) {
    throw new RangeError(`${name} has length ${value.length}; expected batch * seq = ${length} ([batch, seq])`);
  }
  const outside = (i, p) => new RangeError(`${name}[${i}] is ${p}, outside the cache: position ids must be in [0, maxPosition = ${maxPosition}) (cosCache has ${maxPosition} rows of rotaryDim/2 = ${half})`);
  if (value instanceof Int32Array) {
    for (let i = 0; i < length; i++) {
      const p = value[i];
      if (p < 0 || p >= maxPosition) throw outside(i, p);
    }
    return value;
  }
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const p = value[i];
    if (typeof p === 'bigint') {
      if (p < 0n || p >= BigInt(maxPosition)) throw outside(i, p);
      out[i] = Number(p);
      continue;
    }
    if (typeof p !== 'number') throw new TypeError(`${name}[${i}] must be an integer, got ${describe(p)}`);
    if (!Number.isInteger(p)) throw new RangeError(`${name}[${i}] must be an integer, got ${p}`);
    if (p < 0 || p >= maxPosition) throw outside(i, p);
    out[i] = p;
  }
  return out;
}

/**
 * Rotates the first rotaryDim features of every head vector of x with the caller's cos and sin
 * rows (ONNX RotaryEmbedding-23). Returns a new Float32Array, or `out` (which may be x: in place).
 * See index.d.ts for the options.
 */
export function applyRotaryWithCache(module, x, cosCache, sinCache, options) {
  const what = 'applyRotaryWithCache';
  if (options === undefined) throw new TypeError(`${what}: options {shape, ...} are required`);
  checkOptions(options, OPTIONS, what);
  checkArray(module, x, 'x');
  const { sizes, count, layout, n0, n1, n2, headDim, batch, seq } = checkShape(options);
  if (x.length !== count) throw new RangeError(`x has length ${x.length} but shape [${sizes.join(', ')}] needs ${count}`);
  const rotaryDim = checkRotaryDim(options.rotaryDim, headDim);
  const half = rotaryDim / 2;
  const interleaved = boolean(options.interleaved ?? false, 'interleaved');
  const inverse = boolean(options.inverse ?? false, 'inverse');

  checkArray(module, cosCache, 'cosCache');
  checkArray(module, sinCache, 'sinCache');
  if (cosCache.length !== sinCache.length) {
    throw new RangeError(`cosCache and sinCache must have the same shape, got lengths ${cosCache.length} and ${sinCache.length}`);
  }
  if (cosCache.length > MAX_FLOATS) throw new RangeError(`cosCache has ${cosCache.length} elements; at most 2^30 fit in WebAssembly memory`);
  const tokens = batch * seq;
  let positions = null;
  let cacheRows;
  if (options.positionIds != null) {
    if (cosCache.length % half !== 0) {
      throw new RangeError(`cosCache has length ${cosCache.length}, not a multiple of rotaryDim/2 = ${half}: with positionIds the caches are [maxPosition, rotaryDim/2]`);
    }
    cacheRows = cosCache.length / half;
    positions = checkPositionIds(options.positionIds, tokens, cacheRows, half);
  } else {
    if (cosCache.length !== tokens * half) {
      throw new RangeError(`cosCache has length ${cosCache.length}; without positionIds the caches are [batch, seq, rotaryDim/2] = [${batch}, ${seq}, ${half}] (${tokens * half} floats); give positionIds to index a [maxPosition, rotaryDim/2] cache`);
    }
    cacheRows = tokens;
  }

  const out = options.out;
  if (out !== undefined) {
    checkArray(module, out, 'out');
    if (out.length !== count) throw new RangeError(`out has length ${out.length}; expected ${count}`);
  }
  const vectors = n0 * n1 * n2;
  const result = out ?? new Float32Array(count);
  if (vectors === 0 || headDim === 0) return result;

  const exports = module.exports;
  const allocated = [];
  const alloc = (floats, name) => {
    const ptr = module.allocFloats(Math.max(floats, 1), name);
    allocated.push(ptr);
    return ptr;
  };
  try {
    // The caches: tensors are read where they are. Arrays indexed by fewer position ids than
    // they have rows are gathered into one row per token (a [batch, seq, rotaryDim/2] cache), so
    // that a decoding step does not copy a whole long cache; otherwise they are copied whole.
    let cosPtr;
    let sinPtr;
    let positionsPtr = 0;
    if (positions && !(cosCache instanceof WasmTensor) && !(sinCache instanceof WasmTensor) && tokens < cacheRows) {
      cosPtr = alloc(tokens * half, 'cosCache');
      sinPtr = alloc(tokens * half, 'sinCache');
      const cosRows = module.f32(cosPtr, tokens * half);
      const sinRows = module.f32(sinPtr, tokens * half);
      for (let t = 0; t < tokens; t++) {
        const from = positions[t] * half;
        cosRows.set(cosCache.subarray(from, from + half), t * half);
        sinRows.set(sinCache.subarray(from, from + half), t * half);
      }
      cacheRows = tokens;
      positions = null;
    } else {
      const place = (cache, name) => {
        if (cache instanceof WasmTensor) return cache.byteOffset;
        const ptr = alloc(cache.length, name);
        module.f32(ptr, cache.length).set(cache);
        return ptr;
      };
      cosPtr = place(cosCache, 'cosCache');
      sinPtr = place(sinCache, 'sinCache');
      if (positions) {
        positionsPtr = module.alloc(Math.max(tokens, 1) * 4, 'positionIds');
        allocated.push(positionsPtr);
        module.i32(positionsPtr, tokens).set(positions);
      }
    }

    const rotate = (xPtr, yPtr, first, n) => {
      const status = exports.rope_cache_apply(xPtr, yPtr, layout, n0, n1, n2, headDim, rotaryDim, interleaved ? 1 : 0,
        cosPtr, sinPtr, cacheRows, positionsPtr, inverse ? 1 : 0, first, n);
      checkStatus(status, what);
    };
    return rotateThroughBuffer(module, x, result, vectors, headDim, rotate);
  } finally {
    for (const ptr of allocated) exports.free(ptr);
  }
}
