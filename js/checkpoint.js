// checkpoint.js: rope-wasm training checkpoints, as safetensors files.
//
// The tensors of the file are exactly the model's state_dict (name -> F32), so PyTorch reads it
// with safetensors.torch.load_file + model.load_state_dict, and a state_dict saved with
// safetensors.torch.save_file loads here. Everything else is string metadata:
//   format       'rope-wasm-checkpoint'
//   version      '1'
//   config       JSON of the model config ({vocab, dModel, heads, layers, dFF, ropePercentage, base})
//   vocab        JSON of the vocabulary string (character i is token i)
//   step         the training step, a decimal integer
//   optimizer    (optional) JSON of the optimizer's hyperparameters ({type, lr, betas, eps,
//                weightDecay, step, ...}) plus `names`, the weights in the order of the moments
//   optimizer.exp_avg, optimizer.exp_avg_sq
//                base64 of the little-endian float32 first and second moments of the weights,
//                concatenated in the order of `names`
// The moments are metadata rather than tensors so that the tensors stay exactly the state_dict.
// Their base64 counts towards the format's 100 MB header limit: about 10.7 bytes per parameter,
// so optimizer state fits for models of up to about 9 million parameters.

import { SafetensorsError, checkTensor, decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { checkOptions, describe, integer } from './validate.js';

const FORMAT = 'rope-wasm-checkpoint';
const VERSION = '1';
const DECIMAL = /^(0|[1-9][0-9]*)$/;

/**
 * @typedef {{shape: number[], data: Float32Array}} Weight
 * @typedef {Record<string, unknown> & {type: string, names: string[], expAvg: Float32Array, expAvgSq: Float32Array}} OptimizerState
 * @typedef {{config: object, vocab: string, step: number, weights: Record<string, Weight>, optimizer?: OptimizerState | null}} Checkpoint
 */

/**
 * The safetensors file of a training checkpoint. `optimizer` holds the hyperparameters (any JSON
 * values, `type` required), `names` (every weight once, in the order of the moments) and the Adam
 * moments expAvg and expAvgSq: each one Float32Array, the moments of the weights concatenated in
 * the order of `names`.
 * @param {Checkpoint} checkpoint
 * @returns {Uint8Array}
 */
export function encodeCheckpoint(checkpoint) {
  if (checkpoint === null || typeof checkpoint !== 'object') {
    throw new TypeError(`encodeCheckpoint: expected {config, vocab, step, weights, optimizer}, got ${describe(checkpoint)}`);
  }
  checkOptions(checkpoint, ['config', 'vocab', 'step', 'weights', 'optimizer'], 'encodeCheckpoint');
  const { config, vocab, step, weights, optimizer = null } = checkpoint;
  if (typeof vocab !== 'string') throw new TypeError(`vocab must be a string (character i is token i), got ${describe(vocab)}`);
  const metadata = {
    format: FORMAT,
    version: VERSION,
    config: jsonOfObject(config, 'config'),
    vocab: JSON.stringify(vocab),
    step: String(integer(step, 'step', 0, Number.MAX_SAFE_INTEGER)),
  };
  const tensors = weightTensors(weights);
  if (optimizer !== null) Object.assign(metadata, optimizerMetadata(optimizer, tensors));
  return encodeSafetensors(tensors, metadata);
}

/** The weights as F32 tensors, each checked (errors name weights['...']). */
function weightTensors(weights) {
  if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) {
    throw new TypeError(`weights must be an object of name -> {shape, data: Float32Array}, got ${describe(weights)}`);
  }
  return Object.fromEntries(Object.entries(weights).map(([name, weight]) => {
    const label = `weights['${name}']`;
    if (weight === null || typeof weight !== 'object') {
      throw new TypeError(`${label} must be {shape, data: Float32Array}, got ${describe(weight)}`);
    }
    const { dtype, shape, data } = checkTensor(name, { dtype: 'F32', shape: weight.shape, data: weight.data }, label);
    return [name, { dtype, shape, data }];
  }));
}

function optimizerMetadata(optimizer, tensors) {
  if (typeof optimizer !== 'object' || Array.isArray(optimizer)) {
    throw new TypeError(`optimizer must be {type, ...hyperparameters, names, expAvg, expAvgSq}, got ${describe(optimizer)}`);
  }
  const { expAvg, expAvgSq, ...hyperparameters } = optimizer;
  if (typeof hyperparameters.type !== 'string' || hyperparameters.type === '') {
    throw new TypeError(`optimizer.type must be a non-empty string, got ${describe(hyperparameters.type)}`);
  }
  const { names } = hyperparameters;
  if (!isArrayOfStrings(names)) {
    throw new TypeError(`optimizer.names must be an array of the weight names in the order of the moments, got ${describe(names)}`);
  }
  const problem = namesProblem(names, tensors);
  if (problem !== null) throw new RangeError(`optimizer.names ${problem}`);
  const length = momentLength(names, tensors);
  const metadata = { optimizer: jsonOfObject(hyperparameters, 'optimizer') };
  for (const [label, moment, key] of [['expAvg', expAvg, 'optimizer.exp_avg'], ['expAvgSq', expAvgSq, 'optimizer.exp_avg_sq']]) {
    if (!(moment instanceof Float32Array)) throw new TypeError(`optimizer.${label} must be a Float32Array, got ${describe(moment)}`);
    if (moment.length !== length) {
      throw new RangeError(`optimizer.${label} has length ${moment.length} but the weights in optimizer.names hold ${length} values`);
    }
    metadata[key] = encodeBase64(new Uint8Array(moment.buffer, moment.byteOffset, moment.byteLength));
  }
  return metadata;
}

function isArrayOfStrings(value) {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** What is wrong with `names` as a list of every weight once, or null when nothing is. */
function namesProblem(names, weights) {
  const listed = new Set();
  for (const name of names) {
    if (!Object.hasOwn(weights, name)) return `lists '${name}', which is no weight`;
    if (listed.has(name)) return `lists '${name}' twice`;
    listed.add(name);
  }
  const missing = Object.keys(weights).find((name) => !listed.has(name));
  return missing === undefined ? null : `does not list the weight '${missing}'`;
}

/** The number of floats in one moment: every weight's length, added up. */
function momentLength(names, weights) {
  return names.reduce((total, name) => total + weights[name].data.length, 0);
}

function jsonOfObject(value, name) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${name} must be an object, got ${describe(value)}`);
  }
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`${name} must be JSON-serializable: ${error.message}`);
  }
}

/**
 * A checkpoint from its safetensors file. A file without rope-wasm metadata (a state_dict saved
 * from PyTorch, say) gives config, vocab and step null for the caller to supply. Throws a
 * SafetensorsError for a corrupted file or corrupted checkpoint metadata.
 * @param {Uint8Array | ArrayBuffer} bytes
 * @returns {{config: object | null, vocab: string | null, step: number | null, weights: Record<string, Weight>, optimizer: OptimizerState | null, metadata: Record<string, string> | null}}
 */
export function decodeCheckpoint(bytes) {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const weights = Object.fromEntries(Object.entries(tensors).map(([name, { dtype, shape, data }]) => {
    if (dtype !== 'F32') {
      throw new SafetensorsError(`tensor '${name}' is ${dtype}, but rope-wasm weights are F32 (convert with .float() before saving)`);
    }
    return [name, { shape, data }];
  }));
  if (metadata?.format !== FORMAT) return { config: null, vocab: null, step: null, weights, optimizer: null, metadata };

  const version = required(metadata, 'version');
  if (version !== VERSION) throw new SafetensorsError(`checkpoint version '${version}' is not supported (only '${VERSION}')`);
  const config = parseJson(metadata, 'config');
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new SafetensorsError(`checkpoint metadata 'config' must be a JSON object, got ${describe(config)}`);
  }
  const vocab = parseJson(metadata, 'vocab');
  if (typeof vocab !== 'string') throw new SafetensorsError(`checkpoint metadata 'vocab' must be a JSON string, got ${describe(vocab)}`);
  const step = required(metadata, 'step');
  if (!DECIMAL.test(step) || !Number.isSafeInteger(Number(step))) {
    throw new SafetensorsError(`checkpoint metadata 'step' must be a non-negative decimal integer, got '${step}'`);
  }
  const optimizer = decodeOptimizer(metadata, weights);
  return { config, vocab, step: Number(step), weights, optimizer, metadata };
}

/** The optimizer state of the metadata, or null when the checkpoint has none. */
function decodeOptimizer(metadata, weights) {
  if (!Object.hasOwn(metadata, 'optimizer')) {
    for (const key of ['optimizer.exp_avg', 'optimizer.exp_avg_sq']) {
      if (Object.hasOwn(metadata, key)) throw new SafetensorsError(`checkpoint metadata has '${key}' but no 'optimizer'`);
    }
    return null;
  }
  const state = parseJson(metadata, 'optimizer');
  if (state === null || typeof state !== 'object' || Array.isArray(state)) {
    throw new SafetensorsError(`checkpoint metadata 'optimizer' must be a JSON object, got ${describe(state)}`);
  }
  if (typeof state.type !== 'string' || state.type === '') {
    throw new SafetensorsError(`checkpoint metadata 'optimizer' has type ${describe(state.type)}; it must be a non-empty string`);
  }
  if (!isArrayOfStrings(state.names)) {
    throw new SafetensorsError(`checkpoint metadata 'optimizer' has names ${describe(state.names)}; it must be an array of weight names`);
  }
  const problem = namesProblem(state.names, weights);
  if (problem !== null) throw new SafetensorsError(`checkpoint metadata 'optimizer': names ${problem}`);
  const length = momentLength(state.names, weights);
  return {
    ...state,
    expAvg: decodeMoment(metadata, 'optimizer.exp_avg', length),
    expAvgSq: decodeMoment(metadata, 'optimizer.exp_avg_sq', length),
  };
}

/** The moment of `length` floats in base64 in metadata[key]. */
function decodeMoment(metadata, key, length) {
  const bytes = decodeBase64(required(metadata, key), key);
  if (bytes.length !== 4 * length) {
    throw new SafetensorsError(`checkpoint metadata '${key}' holds ${bytes.length} bytes but the weights need ${4 * length} (4 per float32)`);
  }
  return new Float32Array(bytes.buffer);
}

function required(metadata, key) {
  if (!Object.hasOwn(metadata, key)) throw new SafetensorsError(`checkpoint metadata has no '${key}'`);
  return metadata[key];
}

function parseJson(metadata, key) {
  const text = required(metadata, key);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(`checkpoint metadata '${key}' is not valid JSON: ${error.message}`);
  }
}

// Base64 (RFC 4648, padded) by hand: Buffer is Node-only, and btoa/atob need a binary string of
// the whole input and accept unpadded or whitespace-laced text.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DIGITS = new TextEncoder().encode(ALPHABET);
const DIGIT_VALUES = new Uint8Array(128);  // '=' reads as 0; the bytes it pads are not written
for (let i = 0; i < ALPHABET.length; i++) DIGIT_VALUES[ALPHABET.charCodeAt(i)] = i;
const PAD = 0x3d;  // '='
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** @param {Uint8Array} bytes */
function encodeBase64(bytes) {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  for (let i = 0; i < bytes.length; i += 3) {
    const left = bytes.length - i;  // 1, 2 or >= 3 bytes in this group
    const n = (bytes[i] << 16) | ((left > 1 ? bytes[i + 1] : 0) << 8) | (left > 2 ? bytes[i + 2] : 0);
    out[o++] = DIGITS[n >> 18];
    out[o++] = DIGITS[(n >> 12) & 63];
    out[o++] = left > 1 ? DIGITS[(n >> 6) & 63] : PAD;
    out[o++] = left > 2 ? DIGITS[n & 63] : PAD;
  }
  return new TextDecoder().decode(out);  // the digits are ASCII
}

/** The bytes of the base64 text in metadata[key]; a SafetensorsError when it is not padded base64. */
function decodeBase64(text, key) {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new SafetensorsError(`checkpoint metadata '${key}' is not base64`);
  }
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const n = (DIGIT_VALUES[text.charCodeAt(i)] << 18) | (DIGIT_VALUES[text.charCodeAt(i + 1)] << 12)
      | (DIGIT_VALUES[text.charCodeAt(i + 2)] << 6) | DIGIT_VALUES[text.charCodeAt(i + 3)];
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}
