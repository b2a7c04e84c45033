// attention.js: rw.attention, scaled dot-product attention on the C kernel (c/attention.h).

import { checkStatus } from './errors.js';
import { ROPE_POINTER, RotaryEmbedding } from './rotary-embedding.js';
import { WasmTensor } from './tensor.js';
import { boolean, checkOptions, describe, finiteNumber, integer, oneOf } from './validate.js';

const LAYOUTS = ['sbhd', 'bshd', 'bhsd'];
const LAYOUT_CODE = { sbhd: 0, bshd: 1, bhsd: 2 };
const OPTIONS = ['batch', 'heads', 'kvHeads', 'seqQ', 'seqK', 'headDim', 'layout', 'causal', 'scale', 'rope',
  'offset', 'returnWeights', 'out'];
const INT32_MAX = 2 ** 31 - 1;

/** Checks a q/k/v/out argument: a Float32Array or a tensor of this module, of `length` elements. */
function checkTensorArgument(module, value, name, length) {
  if (value instanceof WasmTensor) {
    if (value.module !== module) throw new TypeError(`${name} is a tensor of another rope-wasm instance`);
    if (value.disposed) throw new TypeError(`${name} is a disposed tensor`);
  } else if (!(value instanceof Float32Array)) {
    throw new TypeError(`${name} must be a Float32Array or a tensor from rw.tensor(), got ${describe(value)}`);
  }
  if (value.length !== length) throw new RangeError(`${name} has length ${value.length}; expected ${length}`);
}

/**
 * out = softmax(scale q k^T [+ causal mask]) v. See index.d.ts for the options.
 * Returns the output (a new Float32Array, or `out`), or {output, weights} with returnWeights.
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
  const layout = oneOf(options.layout ?? 'bhsd', 'layout', LAYOUTS);
  const causal = boolean(options.causal ?? false, 'causal');
  const scale = finiteNumber(options.scale ?? 1 / Math.sqrt(headDim), 'scale');
  const returnWeights = boolean(options.returnWeights ?? false, 'returnWeights');
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

  const qLength = batch * heads * seqQ * headDim;
  const kvLength = batch * kvHeads * seqK * headDim;
  const weightsLength = returnWeights ? batch * heads * seqQ * seqK : 0;
  for (const [name, length] of [['q', qLength], ['k/v', kvLength], ['weights', weightsLength]]) {
    if (length > 2 ** 30) throw new RangeError(`${name} would have ${length} elements; at most 2^30 fit in WebAssembly memory`);
  }
  checkTensorArgument(module, q, 'q', qLength);
  checkTensorArgument(module, k, 'k', kvLength);
  checkTensorArgument(module, v, 'v', kvLength);
  const out = options.out;
  if (out !== undefined) checkTensorArgument(module, out, 'out', qLength);

  // Arrays are copied into wasm memory; tensors are used where they are.
  const allocated = [];
  const place = (value, name, length) => {
    if (value instanceof WasmTensor) return value.byteOffset;
    const ptr = module.allocFloats(length, name);
    allocated.push(ptr);
    if (value) module.f32(ptr, length).set(value);
    return ptr;
  };
  try {
    const qPtr = place(q, 'q', qLength);
    const kPtr = place(k, 'k', kvLength);
    const vPtr = place(v, 'v', kvLength);
    const outPtr = out instanceof WasmTensor ? out.byteOffset : place(null, 'output', qLength);
    const weightsPtr = returnWeights ? place(null, 'weights', weightsLength) : 0;
    const ropePtr = rope === null ? 0 : rope[ROPE_POINTER]();
    const status = module.exports.rope_attention_forward(qPtr, kPtr, vPtr, outPtr, weightsPtr, batch, heads, kvHeads,
      seqQ, seqK, headDim, LAYOUT_CODE[layout], causal ? 1 : 0, scale, ropePtr, offset);
    checkStatus(status, what);
    let output;
    if (out instanceof WasmTensor) {
      output = out;
    } else if (out !== undefined) {
      out.set(module.f32(outPtr, qLength));
      output = out;
    } else {
      output = module.f32(outPtr, qLength).slice();
    }
    if (!returnWeights) return output;
    return { output, weights: module.f32(weightsPtr, weightsLength).slice() };
  } finally {
    for (const ptr of allocated) module.exports.free(ptr);
  }
}
