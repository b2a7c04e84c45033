// attention.js: rw.attention, scaled dot-product attention on the C kernel (c/attention.h).

import { checkStatus } from './errors.js';
import { ROPE_POINTER, RotaryEmbedding } from './rotary-embedding.js';
import { WasmTensor } from './tensor.js';
import { boolean, checkOptions, describe, finiteNumber, integer, oneOf } from './validate.js';

const LAYOUTS = ['sbhd', 'bshd', 'bhsd'];
const LAYOUT_CODE = { sbhd: 0, bshd: 1, bhsd: 2 };
const OPTIONS = ['batch', 'heads', 'kvHeads', 'seqQ', 'seqK', 'headDim', 'valueHeadDim', 'layout', 'causal', 'scale',
  'rope', 'offset', 'mask', 'maskShape', 'softcap', 'window', 'kvSeqLengths', 'returnWeights', 'returnScores', 'out',
  'dtype'];
const INT32_MAX = 2 ** 31 - 1;
// c/attention.h: ATTENTION_CAUSAL_*, ATTENTION_SCORES_*
const CAUSAL_CODE = { false: 0, true: 1, 'bottom-right': 1, 'top-left': 2 };
export const SCORES = ['raw', 'masked', 'softcapped', 'softmax'];
// c/attention.h: ATTENTION_DTYPE_*. The 16-bit types travel as their bit patterns in Uint16Arrays.
const DTYPES = ['float32', 'float16', 'bfloat16'];

/**
 * Checks a q/k/v/out argument: a Float32Array or a tensor of this module, of `length` elements; with
 * a 16-bit dtype, a Uint16Array of bit patterns.
 */
function checkTensorArgument(module, value, name, length, shapeNote = '', dtype = 'float32') {
  if (dtype !== 'float32') {
    if (!(value instanceof Uint16Array)) {
      throw new TypeError(`${name} must be a Uint16Array (the ${dtype} bit patterns) with dtype '${dtype}', got ${describe(value)}`);
    }
  } else if (value instanceof WasmTensor) {
    if (value.module !== module) throw new TypeError(`${name} is a tensor of another rope-wasm instance`);
    if (value.disposed) throw new TypeError(`${name} is a disposed tensor`);
  } else if (!(value instanceof Float32Array)) {
    throw new TypeError(`${name} must be a Float32Array or a tensor from rw.tensor(), got ${describe(value)}`);
  }
  if (value.length !== length) throw new RangeError(`${name} has length ${value.length}; expected ${length}${shapeNote}`);
}

/**
 * The mask's element strides over [batch, heads, seqQ, seqK] (0 on broadcast axes), from its shape
 * (2 to 4 sizes, numpy broadcasting: aligned right, each size the target's or 1).
 */
function maskStrides(mask, maskShape, target, seqKNote) {
  const names = '[batch, heads, seqQ, seqK]';
  let shape = maskShape;
  if (shape === undefined) {
    const [batch, heads, seqQ, seqK] = target;
    if (mask.length === seqQ * seqK) shape = [seqQ, seqK];
    else if (mask.length === batch * heads * seqQ * seqK) shape = target;
    else {
      throw new RangeError(`mask has length ${mask.length}, neither seqQ * seqK (${seqQ * seqK}) nor batch * heads * seqQ * seqK `
        + `(${batch * heads * seqQ * seqK})${seqKNote}: give maskShape`);
    }
  }
  if (!Array.isArray(shape)) throw new TypeError(`maskShape must be an array of 2 to 4 integers, got ${describe(shape)}`);
  if (shape.length < 2 || shape.length > 4) throw new RangeError(`maskShape must have 2 to 4 sizes, got ${shape.length}`);
  shape.forEach((size, i) => integer(size, `maskShape[${i}]`, 0, INT32_MAX));
  const full = [...Array(4 - shape.length).fill(1), ...shape];
  full.forEach((size, axis) => {
    if (size !== target[axis] && size !== 1) {
      throw new RangeError(`mask of shape [${shape.join(', ')}] does not broadcast to ${names} = [${target.join(', ')}]: `
        + `size ${size} where ${target[axis]} or 1 is needed`);
    }
  });
  const length = full.reduce((a, b) => a * b, 1);
  if (mask.length !== length) throw new RangeError(`mask has length ${mask.length}; maskShape [${shape.join(', ')}] needs ${length}`);
  const strides = [0, 0, 0, 0];
  let stride = 1;
  for (let axis = 3; axis >= 0; axis--) {
    strides[axis] = full[axis] === 1 ? 0 : stride;
    stride *= full[axis];
  }
  return strides;
}

/** kvSeqLengths as an Int32Array of `batch` values in [0, seqK]. */
function kvLengths(value, batch, seqK) {
  if (value === null || typeof value !== 'object' || typeof value.length !== 'number') {
    throw new TypeError(`kvSeqLengths must be an Int32Array, a BigInt64Array or an array of integers, got ${describe(value)}`);
  }
  if (value.length !== batch) throw new RangeError(`kvSeqLengths has length ${value.length}; expected batch (${batch})`);
  const out = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const x = typeof value[b] === 'bigint' ? Number(value[b]) : value[b];
    out[b] = integer(x, `kvSeqLengths[${b}]`, 0, seqK);
  }
  return out;
}

/**
 * @internal The options that decide what each query row sees and how its scores are shaped,
 * shared by rw.attention and kvCache.attend: causal (default `causalDefault`), scale, softcap,
 * window, kvSeqLengths, mask and maskShape, returnWeights, returnScores. Checked, each error
 * naming its option; returns what the C entry points take: {causal (code), scale, softcap,
 * windowLeft, windowRight, lengths (Int32Array or null), mask (or null), strides, returnWeights,
 * returnScores (a stage name or null)}. seqKNote explains seqK in the mask length error.
 */
export function rowOptions(options, { batch, heads, seqQ, seqK, headDim, causalDefault, seqKNote = '' }) {
  const causalOption = options.causal ?? causalDefault;
  if (!(String(causalOption) in CAUSAL_CODE) || (typeof causalOption !== 'boolean' && typeof causalOption !== 'string')) {
    const kind = typeof causalOption === 'string' ? RangeError : TypeError;
    throw new kind(`causal must be a boolean, 'bottom-right' or 'top-left', got ${describe(causalOption)}`);
  }
  const scale = finiteNumber(options.scale ?? 1 / Math.sqrt(headDim), 'scale');
  const softcap = finiteNumber(options.softcap ?? 0, 'softcap');
  if (softcap < 0 || !Number.isFinite(Math.fround(softcap * Math.LOG2E))) {
    throw new RangeError(`softcap must be 0 (none) or a positive float, got ${softcap}`);
  }
  let windowLeft = -1;
  let windowRight = -1;
  if (options.window !== undefined) {
    const window = options.window;
    if (window === null || typeof window !== 'object' || Array.isArray(window)) {
      throw new TypeError(`window must be an object {left, right}, got ${describe(window)}`);
    }
    checkOptions(window, ['left', 'right'], 'window');
    windowLeft = integer(window.left ?? -1, 'window.left', -1, INT32_MAX);
    windowRight = integer(window.right ?? -1, 'window.right', -1, INT32_MAX);
  }
  const returnWeights = boolean(options.returnWeights ?? false, 'returnWeights');
  const returnScores = options.returnScores === undefined ? null : oneOf(options.returnScores, 'returnScores', SCORES);
  const lengths = options.kvSeqLengths === undefined ? null : kvLengths(options.kvSeqLengths, batch, seqK);
  const mask = options.mask ?? null;
  let strides = [0, 0, 0, 0];
  if (mask !== null) {
    if (!(mask instanceof Uint8Array) && !(mask instanceof Float32Array)) {
      throw new TypeError(`mask must be a Uint8Array (boolean, 0 = masked) or a Float32Array (added to the scores), got ${describe(mask)}`);
    }
    strides = maskStrides(mask, options.maskShape, [batch, heads, seqQ, seqK], seqKNote);
  } else if (options.maskShape !== undefined) {
    throw new TypeError('maskShape is given without a mask');
  }
  return {
    causal: CAUSAL_CODE[String(causalOption)], scale, softcap, windowLeft, windowRight, lengths, mask, strides,
    returnWeights, returnScores,
  };
}

/**
 * out = softmax(softcap(scale q k^T + mask)) v. See index.d.ts for the options.
 * Returns the output (a new Float32Array, or `out`), or {output, weights, scores} when
 * returnWeights or returnScores asks for more.
 */
export function attention(module, q, k, v, options) {
  const what = 'attention';
  if (options === undefined) throw new TypeError(`${what}: options {batch, heads, seqQ, headDim, ...} are required`);
  checkOptions(options, OPTIONS, what);
  const batch = integer(options.batch, 'batch', 1, INT32_MAX);
  const heads = integer(options.heads, 'heads', 1, INT32_MAX);
  const kvHeads = integer(options.kvHeads ?? heads, 'kvHeads', 1, INT32_MAX);
  if (heads % kvHeads !== 0) throw new RangeError(`heads (${heads}) must be a multiple of kvHeads (${kvHeads})`);
  const seqQ = integer(options.seqQ, 'seqQ', 0, INT32_MAX);
  const seqK = integer(options.seqK ?? seqQ, 'seqK', 0, INT32_MAX);
  const headDim = integer(options.headDim, 'headDim', 1, INT32_MAX);
  const valueHeadDim = integer(options.valueHeadDim ?? headDim, 'valueHeadDim', 1, INT32_MAX);
  const layout = oneOf(options.layout ?? 'bhsd', 'layout', LAYOUTS);
  const dtype = oneOf(options.dtype ?? 'float32', 'dtype', DTYPES);
  const half = dtype !== 'float32';
  const rope = options.rope ?? null;
  if (rope !== null) {
    if (!(rope instanceof RotaryEmbedding)) throw new TypeError(`rope must be a rotaryEmbedding, got ${describe(rope)}`);
    if (rope.module !== module) throw new TypeError('rope is a rotaryEmbedding of another rope-wasm instance');
    if (rope.dim > headDim) throw new RangeError(`rope.dim (${rope.dim}) is larger than headDim (${headDim})`);
  }
  const offset = integer(options.offset ?? 0, 'offset');
  if (rope !== null && offset + Math.max(seqK, 1) - 1 > INT32_MAX) {
    throw new RangeError(`offset + seqK must be at most 2^31, got ${offset + seqK}`);
  }
  const {
    causal, scale, softcap, windowLeft, windowRight, lengths, mask, strides, returnWeights, returnScores,
  } = rowOptions(options, { batch, heads, seqQ, seqK, headDim, causalDefault: false });

  const qLength = batch * heads * seqQ * headDim;
  const kLength = batch * kvHeads * seqK * headDim;
  const vLength = batch * kvHeads * seqK * valueHeadDim;
  const outLength = batch * heads * seqQ * valueHeadDim;
  const scoresLength = batch * heads * seqQ * seqK;
  const weightsLength = returnWeights ? scoresLength : 0;
  for (const [name, length] of [['q', qLength], ['k', kLength], ['v', vLength], ['output', outLength],
    ['weights', weightsLength], ['scores', returnScores ? scoresLength : 0]]) {
    if (length > 2 ** 30) throw new RangeError(`${name} would have ${length} elements; at most 2^30 fit in WebAssembly memory`);
  }
  checkTensorArgument(module, q, 'q', qLength, '', dtype);
  checkTensorArgument(module, k, 'k', kLength, '', dtype);
  const vNote = valueHeadDim !== headDim ? ` ([batch, kvHeads, seqK, valueHeadDim = ${valueHeadDim}])` : '';
  checkTensorArgument(module, v, 'v', vLength, vNote, dtype);
  const out = options.out;
  if (out !== undefined) {
    checkTensorArgument(module, out, 'out', outLength, '', dtype);
    if (out === q && valueHeadDim !== headDim) throw new RangeError('out may be q only when valueHeadDim equals headDim');
  }

  // Arrays are copied into wasm memory; tensors are used where they are.
  const allocated = [];
  const place = (value, name, length) => {
    if (value instanceof WasmTensor) return value.byteOffset;
    const ptr = module.allocFloats(length, name);
    allocated.push(ptr);
    if (value) module.f32(ptr, length).set(value);
    return ptr;
  };
  // 16-bit tensors: their bit patterns, converted in the kernel.
  const u16 = (ptr, length) => new Uint16Array(module.exports.memory.buffer, ptr, length);
  const placeHalf = (value, name, length) => {
    const ptr = module.allocFloats(Math.ceil(length / 2), name);
    allocated.push(ptr);
    if (value) u16(ptr, length).set(value);
    return ptr;
  };
  try {
    const qPtr = half ? placeHalf(q, 'q', qLength) : place(q, 'q', qLength);
    const kPtr = half ? placeHalf(k, 'k', kLength) : place(k, 'k', kLength);
    const vPtr = half ? placeHalf(v, 'v', vLength) : place(v, 'v', vLength);
    let outPtr;
    if (half) outPtr = out === q ? qPtr : placeHalf(null, 'output', outLength);
    else outPtr = out instanceof WasmTensor ? out.byteOffset : place(null, 'output', outLength);
    const weightsPtr = returnWeights ? place(null, 'weights', weightsLength) : 0;
    const scoresPtr = returnScores ? place(null, 'scores', scoresLength) : 0;
    const ropePtr = rope === null ? 0 : rope[ROPE_POINTER]();
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
    const args = [qPtr, kPtr, vPtr, outPtr, weightsPtr, batch, heads, kvHeads, seqQ, seqK, headDim, LAYOUT_CODE[layout],
      scale, ropePtr, offset, causal, windowLeft, windowRight, valueHeadDim, softcap, lengthsPtr, maskBytes, maskFloats,
      sb, sh, sq, sk, scoresPtr, returnScores ? SCORES.indexOf(returnScores) : 0];
    const status = half ? module.exports.rope_attention_forward_typed_ex(...args, DTYPES.indexOf(dtype))
      : module.exports.rope_attention_forward_ex(...args);
    checkStatus(status, what);
    let output;
    if (half) {
      if (out !== undefined) {
        out.set(u16(outPtr, outLength));
        output = out;
      } else {
        output = u16(outPtr, outLength).slice();
      }
    } else if (out instanceof WasmTensor) {
      output = out;
    } else if (out !== undefined) {
      out.set(module.f32(outPtr, outLength));
      output = out;
    } else {
      output = module.f32(outPtr, outLength).slice();
    }
    if (!returnWeights && !returnScores) return output;
    const result = { output };
    if (returnWeights) result.weights = module.f32(weightsPtr, weightsLength).slice();
    if (returnScores) result.scores = module.f32(scoresPtr, scoresLength).slice();
    return result;
  } finally {
    for (const ptr of allocated) module.exports.free(ptr);
  }
}
