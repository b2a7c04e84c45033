// rotary-embedding.js: the RotaryEmbedding class, a handle on a C rope_embedding (c/rope.h).

import { checkStatus } from './errors.js';
import { WasmTensor } from './tensor.js';
import {
  boolean, checkOptions, describe, finiteNumber, int32Positions, integer, oneOf, positiveNumber,
  positiveNumbers,
} from './validate.js';

const PAIRINGS = ['half', 'interleaved'];
const LAYOUTS = ['sbhd', 'bshd', 'bhsd'];
const SCALING_TYPES = ['linear', 'dynamic', 'yarn', 'llama3', 'longrope'];
const SCALING_KEYS = {
  linear: ['type', 'factor'],
  dynamic: ['type', 'factor', 'originalMaxPositions'],
  yarn: ['type', 'factor', 'originalMaxPositions', 'betaFast', 'betaSlow', 'mscale', 'mscaleAllDim',
    'attentionFactor', 'truncate'],
  llama3: ['type', 'factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositions'],
  longrope: ['type', 'shortFactor', 'longFactor', 'originalMaxPositions', 'maxPositions', 'attentionFactor'],
};
const INT32_MAX = 2 ** 31 - 1;
// Floats per chunk when a JS array streams through wasm memory: 256 KiB, well inside L2.
const STREAM_CHUNK_FLOATS = 65536;

/** @internal the C rope_embedding pointer, for the other classes of this package */
export const ROPE_POINTER = Symbol('rope-wasm rope_embedding pointer');

const registry = new FinalizationRegistry(({ exports, ptr }) => exports.rope_destroy(ptr));

/**
 * @internal Rotates x into out by `rotate(xPtr, yPtr, firstVector, vectorCount)`, a C call on the
 * `vectors` head vectors of headDim floats, for RotaryEmbedding.apply and rw.applyRotaryWithCache.
 * Tensors are read and written where they are. A JS array streams through a small wasm buffer a
 * chunk of head vectors at a time, so that its copy in, rotation and copy out all stay in cache:
 * one pass over memory instead of three. out: a tensor, a Float32Array or undefined (a new
 * array). Returns out, or the new array.
 */
export function rotateThroughBuffer(module, x, out, vectors, headDim, rotate) {
  const xIsTensor = x instanceof WasmTensor;
  if (out instanceof WasmTensor) {
    if (!xIsTensor) out.data.set(x);
    rotate(xIsTensor ? x.byteOffset : out.byteOffset, out.byteOffset, 0, vectors);
    return out;
  }
  const result = out ?? new Float32Array(vectors * headDim);
  const chunk = Math.max(1, Math.floor(STREAM_CHUNK_FLOATS / Math.max(headDim, 1)));
  const buffer = module.allocFloats(Math.min(vectors, chunk) * headDim, 'x');
  try {
    for (let first = 0; first < vectors; first += chunk) {
      const n = Math.min(chunk, vectors - first);
      const start = first * headDim;
      if (xIsTensor) {
        rotate(x.byteOffset + start * 4, buffer, first, n);
      } else {
        module.f32(buffer, n * headDim).set(x.subarray(start, start + n * headDim));
        rotate(buffer, buffer, first, n);
      }
      result.set(module.f32(buffer, n * headDim), start);
    }
  } finally {
    module.exports.free(buffer);
  }
  return result;
}

export class RotaryEmbedding {
  #module;
  #ptr = 0;

  /** Use rw.rotaryEmbedding(options). */
  constructor(module, options) {
    const what = 'rotaryEmbedding';
    if (options === undefined) throw new TypeError(`${what}: options {dim, ...} are required`);
    checkOptions(options, ['dim', 'base', 'pairing', 'scaling'], what);
    const dim = integer(options.dim, 'dim', 1, INT32_MAX);
    if (dim % 2 !== 0) {
      throw new RangeError(`dim must be even (features are rotated in pairs), got ${dim}`);
    }
    const base = positiveNumber(options.base ?? 10000, 'base');
    const pairing = oneOf(options.pairing ?? 'half', 'pairing', PAIRINGS);
    this.#module = module;
    this.dim = dim;
    this.base = base;
    this.pairing = pairing;
    this.scaling = options.scaling == null ? null : checkScaling(options.scaling, dim);

    const exports = module.exports;
    const ptr = exports.rope_create(dim, base, PAIRINGS.indexOf(pairing)) >>> 0;
    if (ptr === 0) throw new RangeError(`${what}: cannot allocate the embedding (dim ${dim})`);
    try {
      if (this.scaling) this.#setScaling(ptr, this.scaling);
    } catch (error) {
      exports.rope_destroy(ptr);
      throw error;
    }
    this.#ptr = ptr;
    registry.register(this, { exports, ptr }, this);
  }

  /** The frequencies theta_i in force (Float64Array of dim/2); dynamic scaling changes them. */
  get inverseFrequencies() {
    const ptr = this.#check();
    return this.#module.f64(this.#module.exports.rope_inv_freq(ptr) >>> 0, this.dim / 2).slice();
  }

  /** The factor cos and sin are multiplied by (1 except for yarn and longrope). */
  get attentionScaling() {
    return this.#module.exports.rope_attention_scaling(this.#check());
  }

  /**
   * What the cos/sin cache holds: positions [first, first + rows), and how many rows were ever
   * evaluated (rowsComputed grows only by rows that were not cached).
   */
  get cacheInfo() {
    const ptr = this.#check();
    const exports = this.#module.exports;
    return {
      first: exports.rope_table_first(ptr),
      rows: exports.rope_table_rows(ptr),
      rowsComputed: exports.rope_rows_computed(ptr),
    };
  }

  /**
   * Rotates x by position. x: Float32Array or WasmTensor of the 4 sizes in `shape`, in the order
   * `layout` names them. Returns a new Float32Array, or `out` when given (out may be x: in place).
   */
  apply(x, options) {
    const ptr = this.#check();
    const module = this.#module;
    const what = 'apply';
    checkOptions(options, ['shape', 'layout', 'offset', 'positions', 'inverse', 'out'], what);
    if (options === undefined) throw new TypeError(`${what}: options {shape, ...} are required`);

    const xIsTensor = x instanceof WasmTensor;
    if (!xIsTensor && !(x instanceof Float32Array)) {
      throw new TypeError(`x must be a Float32Array or a tensor from rw.tensor(), got ${describe(x)}`);
    }
    if (xIsTensor) this.#checkTensor(x, 'x');
    const shape = checkShape(options.shape);
    const layout = oneOf(options.layout ?? 'sbhd', 'layout', LAYOUTS);
    const [n0, n1, n2, headDim] = shape;
    const count = n0 * n1 * n2 * headDim;
    if (x.length !== count) {
      throw new RangeError(`x has length ${x.length} but shape [${shape.join(', ')}] needs ${count}`);
    }
    if (headDim < this.dim) throw new RangeError(`dim (${this.dim}) is larger than head_dim (shape[3] = ${headDim})`);
    const seq = layout === 'sbhd' ? n0 : layout === 'bshd' ? n1 : n2;
    const batch = layout === 'sbhd' ? n1 : n0;
    const inverse = boolean(options.inverse ?? false, 'inverse');

    let offset = 0;
    let positions = null;
    if (options.positions != null) {
      if (options.offset !== undefined && options.offset !== 0) {
        throw new TypeError('give either offset or positions, not both');
      }
      positions = int32Positions(options.positions, 'positions');
      if (positions.length !== seq && positions.length !== batch * seq) {
        throw new RangeError(`positions has length ${positions.length}; expected seq (${seq}) or batch * seq (${batch * seq})`);
      }
    } else {
      offset = integer(options.offset ?? 0, 'offset');
      if (offset + seq - 1 > INT32_MAX) throw new RangeError(`offset + seq must be at most 2^31, got ${offset + seq}`);
    }

    const out = options.out;
    const outIsTensor = out instanceof WasmTensor;
    if (out !== undefined) {
      if (!outIsTensor && !(out instanceof Float32Array)) {
        throw new TypeError(`out must be a Float32Array or a tensor from rw.tensor(), got ${describe(out)}`);
      }
      if (outIsTensor) this.#checkTensor(out, 'out');
      if (out.length !== count) throw new RangeError(`out has length ${out.length}; expected ${count}`);
    }

    const exports = module.exports;
    const layoutCode = LAYOUTS.indexOf(layout);
    let positionsPtr = 0;
    try {
      if (positions) {
        positionsPtr = module.alloc(Math.max(positions.length, 1) * 4, 'positions');
        module.i32(positionsPtr, positions.length).set(positions);
      }
      const rotate = (xPtr, yPtr, first, vectors) => {
        const status = exports.rope_apply_vectors(ptr, xPtr, yPtr, layoutCode, n0, n1, n2, headDim, offset,
          positionsPtr, positions ? positions.length : 0, inverse ? 1 : 0, first, vectors);
        checkStatus(status, what);
      };
      return rotateThroughBuffer(module, x, out, n0 * n1 * n2, headDim, rotate);
    } finally {
      if (positionsPtr) exports.free(positionsPtr);
    }
  }

  /**
   * The RoPE score matrix: S[i][j] = scale * RoPE(q_i, positionsQ[i]) . RoPE(k_j, positionsK[j]),
   * computed by the module (c/rope_scores.h). q: [nQ, headDim] and k: [nK, headDim], row-major
   * Float32Arrays or tensors; features from dim on pass through and count in the dot products.
   * Positions default to 0, 1, 2, ...; scale to 1 (raw dot products). Returns a new Float32Array
   * [nQ, nK], or `out` when given. q and k are not modified.
   */
  scores(q, k, options) {
    const ptr = this.#check();
    const module = this.#module;
    const what = 'scores';
    if (options === undefined) throw new TypeError(`${what}: options {headDim, ...} are required`);
    checkOptions(options, ['headDim', 'positionsQ', 'positionsK', 'scale', 'out'], what);
    const headDim = integer(options.headDim, 'headDim', 1, INT32_MAX);
    if (headDim < this.dim) throw new RangeError(`dim (${this.dim}) is larger than headDim (${headDim})`);
    const rows = (x, name) => {
      if (x instanceof WasmTensor) this.#checkTensor(x, name);
      else if (!(x instanceof Float32Array)) {
        throw new TypeError(`${name} must be a Float32Array or a tensor from rw.tensor(), got ${describe(x)}`);
      }
      if (x.length % headDim !== 0) {
        throw new RangeError(`${name} has length ${x.length}, not a multiple of headDim (${headDim})`);
      }
      return x.length / headDim;
    };
    const nQ = rows(q, 'q');
    const nK = rows(k, 'k');
    const positions = (value, name, count) => {
      if (value == null) return null;
      const p = int32Positions(value, name);
      if (p.length !== count) throw new RangeError(`${name} has length ${p.length}; expected one position per row (${count})`);
      return p;
    };
    const positionsQ = positions(options.positionsQ, 'positionsQ', nQ);
    const positionsK = positions(options.positionsK, 'positionsK', nK);
    const scale = finiteNumber(options.scale ?? 1, 'scale');
    if (nQ + nK > INT32_MAX) throw new RangeError(`nQ + nK must be at most 2^31 - 1, got ${nQ + nK}`);
    const count = nQ * nK;
    if (count > 2 ** 30) {
      throw new RangeError(`the scores [${nQ}, ${nK}] have ${count} elements; at most 2^30 fit in WebAssembly memory`);
    }

    const out = options.out;
    const outIsTensor = out instanceof WasmTensor;
    if (out !== undefined) {
      if (!outIsTensor && !(out instanceof Float32Array)) {
        throw new TypeError(`out must be a Float32Array or a tensor from rw.tensor(), got ${describe(out)}`);
      }
      if (outIsTensor) this.#checkTensor(out, 'out');
      if (out.length !== count) throw new RangeError(`out has length ${out.length}; expected nQ * nK = ${count}`);
      // The C side reads q and k while it writes the scores: a tensor cannot be both.
      if (outIsTensor && (out === q || out === k)) throw new RangeError('out must not be q or k');
    }
    const result = out ?? new Float32Array(count);
    if (count === 0) return result;

    // Tensors are read and written where they are; arrays are copied in (and the scores out).
    const exports = module.exports;
    const owned = [];
    const place = (x, name) => {
      if (x instanceof WasmTensor) return x.byteOffset;
      const p = module.allocFloats(x.length, name);
      owned.push(p);
      module.f32(p, x.length).set(x);
      return p;
    };
    const placePositions = (p, name) => {
      if (!p) return 0;
      const at = module.alloc(p.length * 4, name);
      owned.push(at);
      module.i32(at, p.length).set(p);
      return at;
    };
    try {
      const qPtr = place(q, 'q');
      const kPtr = place(k, 'k');
      const pqPtr = placePositions(positionsQ, 'positionsQ');
      const pkPtr = placePositions(positionsK, 'positionsK');
      let sPtr;
      if (outIsTensor) {
        sPtr = out.byteOffset;
      } else {
        sPtr = module.allocFloats(count, 'scores');
        owned.push(sPtr);
      }
      checkStatus(exports.rope_scores(ptr, qPtr, kPtr, sPtr, nQ, nK, headDim, pqPtr, pkPtr, scale), what);
      if (!outIsTensor) result.set(module.f32(sPtr, count));
      return result;
    } finally {
      for (const p of owned) exports.free(p);
    }
  }

  get disposed() {
    return this.#ptr === 0;
  }

  /** @internal */
  [ROPE_POINTER]() {
    return this.#check();
  }

  /** @internal */
  get module() {
    return this.#module;
  }

  dispose() {
    if (this.#ptr === 0) return;
    registry.unregister(this);
    this.#module.exports.rope_destroy(this.#ptr);
    this.#ptr = 0;
  }

  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
    this.dispose();
  }

  #check() {
    if (this.#ptr === 0) throw new TypeError('this rotary embedding was disposed');
    return this.#ptr;
  }

  #checkTensor(tensor, name) {
    if (tensor.module !== this.#module) throw new TypeError(`${name} is a tensor of another rope-wasm instance`);
    if (tensor.disposed) throw new TypeError(`${name} is a disposed tensor`);
  }

  #setScaling(ptr, s) {
    const exports = this.#module.exports;
    let status;
    switch (s.type) {
      case 'linear':
        status = exports.rope_set_linear(ptr, s.factor);
        break;
      case 'dynamic':
        status = exports.rope_set_dynamic(ptr, s.factor, s.originalMaxPositions);
        break;
      case 'yarn':
        status = exports.rope_set_yarn(ptr, s.factor, s.originalMaxPositions, s.betaFast, s.betaSlow, s.mscale,
          s.mscaleAllDim, s.attentionFactor, s.truncate ? 1 : 0);
        break;
      case 'llama3':
        status = exports.rope_set_llama3(ptr, s.factor, s.lowFreqFactor, s.highFreqFactor, s.originalMaxPositions);
        break;
      case 'longrope': {
        const half = this.dim / 2;
        const factors = this.#module.alloc(half * 16, 'scaling');
        try {
          this.#module.f64(factors, half).set(s.shortFactor);
          this.#module.f64(factors + half * 8, half).set(s.longFactor);
          status = exports.rope_set_longrope(ptr, factors, factors + half * 8, s.originalMaxPositions,
            s.maxPositions, s.attentionFactor);
        } finally {
          exports.free(factors);
        }
        break;
      }
    }
    checkStatus(status, `scaling '${s.type}'`);
  }
}

function checkShape(shape) {
  if (!Array.isArray(shape) && !ArrayBuffer.isView(shape)) {
    throw new TypeError(`shape must be an array of 4 sizes, got ${describe(shape)}`);
  }
  if (shape.length !== 4) throw new RangeError(`shape must have 4 sizes, got ${shape.length}`);
  const sizes = Array.from(shape, (size, i) => integer(size, `shape[${i}]`, 0, INT32_MAX));
  const count = sizes.reduce((a, b) => a * b, 1);
  if (count > 2 ** 30) {
    throw new RangeError(`shape [${sizes.join(', ')}] has ${count} elements; at most 2^30 fit in WebAssembly memory`);
  }
  return sizes;
}

/** Validates a scaling option and returns it with every default filled in. */
function checkScaling(scaling, dim) {
  if (typeof scaling !== 'object' || Array.isArray(scaling)) {
    throw new TypeError(`scaling must be an object {type, ...}, got ${describe(scaling)}`);
  }
  const type = oneOf(scaling.type, 'scaling.type', SCALING_TYPES);
  checkOptions(scaling, SCALING_KEYS[type], `scaling '${type}'`);
  const required = (key) => {
    if (scaling[key] === undefined) throw new TypeError(`scaling.${key} is required for type '${type}'`);
    return positiveNumber(scaling[key], `scaling.${key}`);
  };
  const optional = (key, fallback) => {
    if (scaling[key] === undefined) return fallback;
    return positiveNumber(scaling[key], `scaling.${key}`);
  };
  switch (type) {
    case 'linear':
      return { type, factor: required('factor') };
    case 'dynamic':
      if (dim <= 2) throw new RangeError(`dynamic scaling needs dim > 2 (the base grows as ^(dim/(dim-2))), got ${dim}`);
      return { type, factor: required('factor'), originalMaxPositions: integerAtLeast1(required('originalMaxPositions')) };
    case 'yarn':
      return {
        type,
        factor: required('factor'),
        originalMaxPositions: required('originalMaxPositions'),
        betaFast: optional('betaFast', 32),
        betaSlow: optional('betaSlow', 1),
        mscale: scaling.mscale === undefined ? 0 : nonNegative(scaling.mscale, 'scaling.mscale'),
        mscaleAllDim: scaling.mscaleAllDim === undefined ? 0 : nonNegative(scaling.mscaleAllDim, 'scaling.mscaleAllDim'),
        attentionFactor: optional('attentionFactor', 0),
        truncate: boolean(scaling.truncate ?? true, 'scaling.truncate'),
      };
    case 'llama3': {
      const s = {
        type,
        factor: required('factor'),
        lowFreqFactor: required('lowFreqFactor'),
        highFreqFactor: required('highFreqFactor'),
        originalMaxPositions: required('originalMaxPositions'),
      };
      if (s.highFreqFactor <= s.lowFreqFactor) {
        throw new RangeError(`scaling.highFreqFactor (${s.highFreqFactor}) must be larger than lowFreqFactor (${s.lowFreqFactor})`);
      }
      return s;
    }
    case 'longrope':
      return {
        type,
        shortFactor: positiveNumbers(scaling.shortFactor, 'scaling.shortFactor', dim / 2),
        longFactor: positiveNumbers(scaling.longFactor, 'scaling.longFactor', dim / 2),
        originalMaxPositions: required('originalMaxPositions'),
        maxPositions: required('maxPositions'),
        attentionFactor: optional('attentionFactor', 0),
      };
  }
}

function nonNegative(value, name) {
  finiteNumber(value, name);
  if (value < 0) throw new RangeError(`${name} must be >= 0, got ${value}`);
  return value;
}

function integerAtLeast1(value) {
  return integer(value, 'scaling.originalMaxPositions', 1, INT32_MAX);
}
