// safetensors.js: Hugging Face's safetensors format (https://github.com/huggingface/safetensors).
//
// A file is an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON (the header), then the data
// buffer. The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets
// into the data buffer) and may hold "__metadata__", an object of string -> string. Tensors are
// little-endian, row-major, packed one after the other: the buffer has no holes, no overlaps and
// nothing after the last tensor.
//
// Typed arrays use the host's byte order. Every engine that runs rope-wasm is little-endian (its
// Float32Array views of WebAssembly memory, which is little-endian, already rely on it), so tensor
// bytes are copied as they are.

import { describe, integer, oneOf } from './validate.js';

/**
 * The dtypes with whole-byte elements and the typed array that holds each. The order is that of
 * the reference implementation's Dtype enum, which its writer sorts by (widest first).
 * F16, BF16 and the 8-bit floats are kept as their raw bits. The sub-byte F4 and F6 types and
 * C64 are not supported.
 */
const DTYPES = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E5M2: Uint8Array,
  F8_E4M3: Uint8Array,
  F8_E8M0: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
};
const DTYPE_NAMES = Object.keys(DTYPES);

/** The reference implementation refuses larger headers, so a writer must not produce them. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const TENSOR_FIELDS = ['dtype', 'shape', 'data_offsets'];

/** A file that is not valid safetensors (or not a valid rope-wasm checkpoint). */
export class SafetensorsError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

/**
 * @typedef {'BOOL'|'U8'|'I8'|'F8_E5M2'|'F8_E4M3'|'F8_E8M0'|'I16'|'U16'|'F16'|'BF16'|'I32'|'U32'|'F32'|'F64'|'I64'|'U64'} Dtype
 * @typedef {Uint8Array|Int8Array|Int16Array|Uint16Array|Int32Array|Uint32Array|Float32Array|Float64Array|BigInt64Array|BigUint64Array} TensorData
 * @typedef {{dtype: Dtype, shape: number[], data: TensorData}} Tensor
 */

/**
 * The safetensors file of `tensors` (name -> {dtype, shape, data}) and `metadata` (string ->
 * string, or undefined/null for none), laid out as the reference writer does: tensors sorted by
 * dtype (widest first) then name, the header padded with spaces to a multiple of 8 bytes so the
 * data buffer starts 8-byte aligned and every tensor at a multiple of its element size.
 * @param {Record<string, Tensor>} tensors
 * @param {Record<string, string> | null} [metadata]
 * @returns {Uint8Array}
 */
export function encodeSafetensors(tensors, metadata) {
  if (tensors === null || typeof tensors !== 'object' || Array.isArray(tensors)) {
    throw new TypeError(`tensors must be an object of name -> {dtype, shape, data}, got ${describe(tensors)}`);
  }
  const entries = Object.entries(tensors).map(([name, tensor]) => checkTensor(name, tensor, `tensors['${name}']`));
  entries.sort((a, b) => DTYPE_NAMES.indexOf(b.dtype) - DTYPE_NAMES.indexOf(a.dtype) || compareCodePoints(a.name, b.name));

  const parts = [];
  if (metadata !== undefined && metadata !== null) parts.push(`${JSON.stringify(METADATA_KEY)}:${metadataJson(metadata)}`);
  let offset = 0;
  for (const entry of entries) {
    const info = { dtype: entry.dtype, shape: entry.shape, data_offsets: [offset, offset + entry.data.byteLength] };
    // Joined by hand, not JSON.stringify of one object: that would move integer-like names first.
    parts.push(`${JSON.stringify(entry.name)}:${JSON.stringify(info)}`);
    offset += entry.data.byteLength;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerBytes = Math.ceil(json.length / 8) * 8;
  if (headerBytes > MAX_HEADER_BYTES) {
    throw new RangeError(`the header would be ${headerBytes} bytes, above the format's limit of ${MAX_HEADER_BYTES}`);
  }

  const out = new Uint8Array(8 + headerBytes + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerBytes);
  let at = 8 + headerBytes;
  for (const { data } of entries) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/**
 * Checks one tensor to encode, named `label` in error messages; returns {name, dtype, shape, data}.
 * @param {string} name
 * @param {Tensor} tensor
 * @param {string} label
 */
export function checkTensor(name, tensor, label) {
  if (name === '') throw new RangeError('tensor names must be non-empty strings');
  if (name === METADATA_KEY) throw new RangeError(`'${METADATA_KEY}' is reserved for the metadata and cannot name a tensor`);
  wellFormed(name, `tensor name '${name}'`);
  if (tensor === null || typeof tensor !== 'object') {
    throw new TypeError(`${label} must be {dtype, shape, data}, got ${describe(tensor)}`);
  }
  const dtype = oneOf(tensor.dtype, `${label}.dtype`, DTYPE_NAMES);
  const { shape } = tensor;
  if (!Array.isArray(shape)) throw new TypeError(`${label}.shape must be an array of sizes, got ${describe(shape)}`);
  shape.forEach((size, i) => integer(size, `${label}.shape[${i}]`, 0, Number.MAX_SAFE_INTEGER));
  const ArrayType = DTYPES[dtype];
  const { data } = tensor;
  if (!(data instanceof ArrayType)) {
    throw new TypeError(`${label}.data must be a ${ArrayType.name} for dtype '${dtype}', got ${describe(data)}`);
  }
  if (data.length !== elementCount(shape)) {
    throw new RangeError(`${label}.data has length ${data.length} but shape [${shape.join(', ')}] needs ${elementCount(shape)}`);
  }
  return { name, dtype, shape: [...shape], data };
}

/** The JSON of the metadata object, after checking that it maps strings to strings. */
function metadataJson(metadata) {
  if (typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new TypeError(`metadata must be an object of string -> string, got ${describe(metadata)}`);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new TypeError(`metadata['${key}'] must be a string, got ${describe(value)}`);
    wellFormed(key, `metadata key '${key}'`);
    wellFormed(value, `metadata['${key}']`);
  }
  return JSON.stringify(metadata);
}

/** Lone surrogates survive JSON.stringify as \uD800 escapes, which the reference parser rejects. */
function wellFormed(text, name) {
  if (!text.isWellFormed()) throw new RangeError(`${name} contains a lone surrogate (not valid Unicode)`);
}

/** Orders strings by code point, which is the order of their UTF-8 bytes, as the reference writer sorts names. */
function compareCodePoints(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

/** The number of elements of a shape of safe integers; above 2^53 - 1 it is not exact but is too large anyway. */
function elementCount(shape) {
  return shape.reduce((count, size) => count * size, 1);
}

/**
 * The tensors (fresh, aligned copies) and metadata (null when the file has none) of a safetensors
 * file. Throws a SafetensorsError naming the problem for anything the format does not allow.
 * @param {Uint8Array | ArrayBuffer} bytes
 * @returns {{tensors: Record<string, Tensor>, metadata: Record<string, string> | null}}
 */
export function decodeSafetensors(bytes) {
  if (!(bytes instanceof Uint8Array || bytes instanceof ArrayBuffer)) {
    throw new TypeError(`bytes must be a Uint8Array or an ArrayBuffer, got ${describe(bytes)}`);
  }
  // A plain Uint8Array over the same memory: Node's Buffer is a Uint8Array whose slice() does not copy.
  const file = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  if (file.length < 8) {
    throw new SafetensorsError(`the file is ${file.length} bytes, shorter than the 8-byte header size`);
  }
  const headerSize = new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true);
  if (headerSize > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`the header size ${headerSize} is above the format's limit of ${MAX_HEADER_BYTES} bytes`);
  }
  const headerEnd = 8 + Number(headerSize);
  if (headerEnd > file.length) {
    throw new SafetensorsError(`the header size ${headerSize} goes beyond the end of the ${file.length}-byte file`);
  }
  const header = parseHeader(file.subarray(8, headerEnd));
  const buffer = file.subarray(headerEnd);

  let metadata = null;
  const infos = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) metadata = checkMetadata(value);
    else infos.push(checkInfo(name, value, buffer.length));
  }
  checkLayout(infos, buffer.length);

  const tensors = Object.fromEntries(infos.map(({ name, dtype, shape, begin, end }) => {
    // slice copies into a fresh ArrayBuffer, so the typed array starts aligned.
    const data = new DTYPES[dtype](buffer.slice(begin, end).buffer);
    return [name, { dtype, shape, data }];
  }));
  return { tensors, metadata };
}

/** The header object: UTF-8, starting with '{' as the format requires, valid JSON, no duplicate keys. */
function parseHeader(headerBytes) {
  if (headerBytes[0] !== 0x7b) throw new SafetensorsError("the header must begin with '{'");
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError('the header is not valid UTF-8');
  }
  let header;
  try {
    header = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(`the header is not valid JSON: ${error.message}`);
  }
  checkNoDuplicateKeys(text);
  return header;
}

/**
 * Throws on a key that appears twice in one object of valid JSON `text` (the format forbids
 * duplicates; JSON.parse would silently keep the last).
 */
function checkNoDuplicateKeys(text) {
  const open = [];  // per open container: the Set of its keys for an object, null for an array
  let expectingKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = closingQuote(text, i);
      if (expectingKey) {
        const key = JSON.parse(text.slice(i, end + 1));
        const keys = open.at(-1);
        if (keys.has(key)) {
          const where = open.length === 1 ? 'the header' : 'an object of the header';
          throw new SafetensorsError(`the key '${key}' appears twice in ${where}`);
        }
        keys.add(key);
        expectingKey = false;
      }
      i = end;
    } else if (c === '{') {
      open.push(new Set());
      expectingKey = true;
    } else if (c === '[') {
      open.push(null);
    } else if (c === '}' || c === ']') {
      open.pop();
    } else if (c === ',') {
      expectingKey = open.at(-1) !== null;
    }
  }
}

/** The index of the quote that closes the JSON string opened at `start`. */
function closingQuote(text, start) {
  let end = text.indexOf('"', start + 1);
  while (isEscaped(text, end)) end = text.indexOf('"', end + 1);
  return end;
}

/** True when an odd number of backslashes precede text[at]. */
function isEscaped(text, at) {
  let backslashes = 0;
  while (text[at - 1 - backslashes] === '\\') backslashes++;
  return backslashes % 2 === 1;
}

function checkMetadata(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SafetensorsError(`'${METADATA_KEY}' must be an object of string -> string, got ${describe(value)}`);
  }
  for (const [key, text] of Object.entries(value)) {
    if (typeof text === 'string') continue;
    if (TENSOR_FIELDS.includes(key)) {
      throw new SafetensorsError(`'${METADATA_KEY}' is reserved for the metadata and cannot name a tensor`);
    }
    throw new SafetensorsError(`'${METADATA_KEY}' values must be strings, but '${key}' is ${describe(text)}`);
  }
  return value;
}

/** Checks one header entry against itself and the buffer size; returns {name, dtype, shape, begin, end}. */
function checkInfo(name, info, bufferLength) {
  const label = `tensor '${name}'`;
  if (name === '') throw new SafetensorsError('a tensor has an empty name');
  if (info === null || typeof info !== 'object' || Array.isArray(info)) {
    throw new SafetensorsError(`${label} must be {dtype, shape, data_offsets}, got ${describe(info)}`);
  }
  for (const field of Object.keys(info)) {
    if (!TENSOR_FIELDS.includes(field)) throw new SafetensorsError(`${label} has an unknown field '${field}'`);
  }
  for (const field of TENSOR_FIELDS) {
    if (!Object.hasOwn(info, field)) throw new SafetensorsError(`${label} has no '${field}'`);
  }
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype)) {
    throw new SafetensorsError(`${label} has the unknown or unsupported dtype ${describe(dtype)} (supported: ${DTYPE_NAMES.join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isSize)) {
    throw new SafetensorsError(`${label} has shape ${JSON.stringify(shape)}; it must be an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSize)) {
    throw new SafetensorsError(`${label} has data_offsets ${JSON.stringify(offsets)}; they must be two non-negative integers`);
  }
  const [begin, end] = offsets;
  if (begin > end) throw new SafetensorsError(`${label} has data_offsets [${begin}, ${end}] that begin after they end`);
  if (end > bufferLength) {
    throw new SafetensorsError(`${label} has data_offsets [${begin}, ${end}] beyond the ${bufferLength}-byte data buffer`);
  }
  const expected = elementCount(shape) * DTYPES[dtype].BYTES_PER_ELEMENT;
  if (end - begin !== expected) {
    throw new SafetensorsError(`${label} spans ${end - begin} bytes but ${dtype} of shape [${shape.join(', ')}] needs ${expected}`);
  }
  return { name, dtype, shape, begin, end };
}

function isSize(value) {
  return Number.isSafeInteger(value) && value >= 0;
}

/** The tensors must tile the data buffer exactly: in offset order, each begins where the previous ends. */
function checkLayout(infos, bufferLength) {
  const ordered = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous = null;
  for (const info of ordered) {
    if (info.begin < covered) {
      throw new SafetensorsError(`tensor '${info.name}' (bytes [${info.begin}, ${info.end})) overlaps tensor '${previous.name}' (bytes [${previous.begin}, ${previous.end}))`);
    }
    if (info.begin > covered) {
      throw new SafetensorsError(`bytes [${covered}, ${info.begin}) of the data buffer belong to no tensor (a hole before tensor '${info.name}')`);
    }
    covered = info.end;
    previous = info;
  }
  if (covered !== bufferLength) {
    throw new SafetensorsError(`${bufferLength - covered} bytes follow the last tensor (the data buffer is ${bufferLength} bytes, the tensors cover ${covered})`);
  }
}
