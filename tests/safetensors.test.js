// safetensors.test.js: the safetensors format byte for byte, round trips of every dtype, and a
// decoder that rejects every malformed file with a SafetensorsError naming the problem.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { SafetensorsError, decodeSafetensors, encodeSafetensors } from '../js/safetensors.js';

const ARRAY_TYPES = {
  BOOL: Uint8Array, U8: Uint8Array, I8: Int8Array, F8_E5M2: Uint8Array, F8_E4M3: Uint8Array, F8_E8M0: Uint8Array,
  I16: Int16Array, U16: Uint16Array, F16: Uint16Array, BF16: Uint16Array, I32: Int32Array, U32: Uint32Array,
  F32: Float32Array, F64: Float64Array, I64: BigInt64Array, U64: BigUint64Array,
};

/** A deterministic generator of 32-bit values (mulberry32), so every run tests the same cases. */
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A typed array of `length` random elements for `dtype`, filled through its bytes (any bit pattern). */
function randomData(dtype, length, next) {
  const data = new ARRAY_TYPES[dtype](length);
  const bytes = new Uint8Array(data.buffer);
  for (let i = 0; i < bytes.length; i++) bytes[i] = next() & 255;
  return data;
}

function bytesOf(data) {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A file with the given header text (padded to 8 bytes with spaces) and data buffer. */
function file(header, buffer = []) {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const size = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + size + buffer.length).fill(0x20, 8, 8 + size);
  new DataView(out.buffer).setBigUint64(0, BigInt(size), true);
  out.set(json, 8);
  out.set(buffer, 8 + size);
  return out;
}

/** Asserts decoding throws a SafetensorsError whose message matches pattern. */
function rejects(bytes, pattern) {
  assert.throws(() => decodeSafetensors(bytes), (e) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** Asserts every decoded tensor is a typed array of its dtype whose length agrees with its shape. */
function assertConsistent({ tensors, metadata }) {
  for (const [name, { dtype, shape, data }] of Object.entries(tensors)) {
    assert.ok(data instanceof ARRAY_TYPES[dtype], `${name}: ${data?.constructor.name} for ${dtype}`);
    assert.equal(data.length, shape.reduce((a, b) => a * b, 1), `${name}: length against shape`);
  }
  if (metadata !== null) for (const value of Object.values(metadata)) assert.equal(typeof value, 'string');
}

describe('encoding, byte for byte', () => {
  test('a hand-computed file: metadata first, F32 before U8, space padding, little-endian floats', () => {
    const bytes = encodeSafetensors({
      a: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 255]) },
      b: { dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) },
    }, { k: 'v' });
    // The reference writer sorts by dtype, widest first, then by name: b (F32) takes bytes [0, 8).
    const header = '{"__metadata__":{"k":"v"},'
      + '"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
      + '"a":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}';
    assert.equal(header.length, 132);  // padded with 4 spaces to 136 = 0x88
    const expected = [
      0x88, 0, 0, 0, 0, 0, 0, 0,
      ...Array.from(header, (c) => c.charCodeAt(0)), 0x20, 0x20, 0x20, 0x20,
      0x00, 0x00, 0xc0, 0x3f,  // 1.5 = 0x3fc00000
      0x00, 0x00, 0x00, 0xc0,  // -2 = 0xc0000000
      1, 2, 255,
    ];
    assert.deepEqual(Array.from(bytes), expected);
  });

  // The byte vectors of the reference implementation's own tests (safetensors/src/tensor.rs).
  test('the reference vector of an F32 [1, 2, 3] tensor, 64-byte header, no padding', () => {
    const bytes = encodeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    assert.deepEqual(Array.from(bytes), [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
      116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
      58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
      101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
      0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
  });

  test('the reference vector with forced alignment: 7 spaces of padding', () => {
    const bytes = encodeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    assert.deepEqual(Array.from(bytes), [
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
      121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
      91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
      115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
      32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
      160, 64,
    ]);
  });

  test('the reference vectors of empty files, with and without metadata', () => {
    assert.deepEqual(Array.from(encodeSafetensors({})), [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    assert.deepEqual(Array.from(encodeSafetensors({}, { framework: 'pt' })), [
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
      95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
      116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
  });

  test('names sort by code point (UTF-8 byte order), not by UTF-16 unit, and integer-like names keep that order', () => {
    const scalar = () => ({ dtype: 'U8', shape: [], data: new Uint8Array(1) });
    // U+FF61 is one UTF-16 unit above the surrogates of U+1F600, but its UTF-8 bytes sort first.
    const names = ['\u{1F600}', '\uFF61', 'b', '10', '9', 'B'];
    const tensors = Object.fromEntries(names.map((name) => [name, scalar()]));
    const bytes = encodeSafetensors(tensors);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true)))));
    const byOffset = Object.entries(header).sort((x, y) => x[1].data_offsets[0] - y[1].data_offsets[0]).map(([name]) => name);
    assert.deepEqual(byOffset, ['10', '9', 'B', 'b', '\uFF61', '\u{1F600}']);
    const text = new TextDecoder().decode(bytes);
    const byPlace = byOffset.map((name) => text.indexOf(JSON.stringify(name)));
    assert.deepEqual(byPlace, [...byPlace].sort((x, y) => x - y), 'the header lists the tensors in the order of their bytes');
  });

  test('every header is padded with spaces to a multiple of 8, and every tensor starts aligned to its element size', () => {
    const next = random(7);
    const dtypes = Object.keys(ARRAY_TYPES);
    for (let trial = 0; trial < 200; trial++) {
      const tensors = {};
      for (let t = next() % 6; t > 0; t--) {
        const dtype = dtypes[next() % dtypes.length];
        const shape = Array.from({ length: next() % 3 }, () => next() % 4);
        tensors[`t${next() % 1000}`] = { dtype, shape, data: randomData(dtype, shape.reduce((a, b) => a * b, 1), next) };
      }
      const metadata = next() % 2 ? { note: 'x'.repeat(next() % 20) } : undefined;
      const bytes = encodeSafetensors(tensors, metadata);
      const size = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      assert.equal(size % 8, 0);
      const text = new TextDecoder().decode(bytes.subarray(8, 8 + size));
      const json = text.trimEnd();
      assert.ok(size - json.length < 8 && /^ *$/.test(text.slice(json.length)), 'padding is fewer than 8 spaces');
      for (const [name, info] of Object.entries(JSON.parse(json))) {
        if (name === '__metadata__') continue;
        assert.equal((8 + size + info.data_offsets[0]) % ARRAY_TYPES[info.dtype].BYTES_PER_ELEMENT, 0, `${name} is aligned`);
      }
    }
  });
});

describe('round trips', () => {
  const next = random(42);
  for (const dtype of Object.keys(ARRAY_TYPES)) {
    test(`${dtype}: scalars, empty tensors and filled ones, bit for bit`, () => {
      const shapes = [[], [0], [2, 0, 3], [1], [5], [2, 3], [2, 1, 3, 2]];
      const tensors = Object.fromEntries(shapes.map((shape) => {
        const length = shape.reduce((a, b) => a * b, 1);
        return [`x[${shape}]`, { dtype, shape, data: randomData(dtype, length, next) }];
      }));
      const bytes = encodeSafetensors(tensors);
      const decoded = decodeSafetensors(bytes);
      assert.equal(decoded.metadata, null);
      assert.deepEqual(Object.keys(decoded.tensors).sort(), Object.keys(tensors).sort());
      for (const [name, tensor] of Object.entries(tensors)) {
        const got = decoded.tensors[name];
        assert.equal(got.dtype, dtype);
        assert.deepEqual(got.shape, tensor.shape);
        assert.ok(got.data instanceof ARRAY_TYPES[dtype]);
        assert.deepEqual(bytesOf(got.data), bytesOf(tensor.data));
      }
    });
  }

  test('mixed dtypes with metadata, unusual names and metadata keys', () => {
    // ['__proto__'] is computed: a literal '__proto__': would set the prototype instead of making a key.
    const tensors = {
      'layers.0.self_attn.query.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, -0, NaN, Infinity]) },
      ['__proto__']: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
      'constructor': { dtype: 'BF16', shape: [1], data: new Uint16Array([0x3f80]) },
      'naïve "quoted" \\ \n name ∑ \u{1F600}': { dtype: 'U8', shape: [0], data: new Uint8Array(0) },
      '0': { dtype: 'F64', shape: [], data: new Float64Array([Math.PI]) },
    };
    const metadata = { format: 'pt', ['__proto__']: 'own key', 'multi\nline': 'ü "q" \\ \u0000', empty: '' };
    const decoded = decodeSafetensors(encodeSafetensors(tensors, metadata));
    assert.deepEqual(decoded.metadata, metadata);
    assert.deepEqual(Object.keys(decoded.tensors).sort(), Object.keys(tensors).sort());
    for (const [name, tensor] of Object.entries(tensors)) {
      assert.deepEqual(bytesOf(decoded.tensors[name].data), bytesOf(tensor.data), name);
    }
    assert.ok(Object.hasOwn(decoded.tensors, '__proto__') && Object.hasOwn(decoded.metadata, '__proto__'));
    assert.equal(Object.getPrototypeOf(decoded.tensors), Object.prototype, "a tensor named '__proto__' stays an own key");
  });

  test('decoded data are aligned copies, even from an odd offset of a shared buffer', () => {
    const inner = encodeSafetensors({
      a: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
      b: { dtype: 'F64', shape: [2], data: new Float64Array([1.25, -7]) },
    });
    const shifted = new Uint8Array(inner.length + 3);
    shifted.set(inner, 3);
    const view = shifted.subarray(3);
    const { tensors } = decodeSafetensors(view);
    assert.deepEqual(Array.from(tensors.b.data), [1.25, -7]);
    assert.equal(tensors.b.data.byteOffset, 0);
    assert.notEqual(tensors.b.data.buffer, shifted.buffer);
    shifted.fill(0);
    assert.deepEqual(Array.from(tensors.a.data), [1, 2, 3], 'the tensors do not alias the file');
  });

  test("a Node Buffer from the shared pool decodes to copies of its own bytes (Buffer's slice does not copy)", () => {
    const bytes = encodeSafetensors({
      a: { dtype: 'F32', shape: [2], data: new Float32Array([0.5, -1]) },
      b: { dtype: 'U8', shape: [1], data: new Uint8Array([9]) },
    });
    const pooled = Buffer.from(bytes);  // small Buffers share one pool ArrayBuffer at an offset
    assert.ok(pooled.byteOffset > 0 || pooled.buffer.byteLength > pooled.length, 'the Buffer is a view into a larger pool');
    const { tensors } = decodeSafetensors(pooled);
    assert.deepEqual(Array.from(tensors.a.data), [0.5, -1]);
    assert.equal(tensors.a.data.buffer.byteLength, 8);
    pooled.fill(0);
    assert.deepEqual(Array.from(tensors.b.data), [9]);
  });

  test('an ArrayBuffer decodes like its Uint8Array', () => {
    const bytes = encodeSafetensors({ a: { dtype: 'I16', shape: [2], data: new Int16Array([-1, 2]) } });
    assert.deepEqual(Array.from(decodeSafetensors(bytes.buffer).tensors.a.data), [-1, 2]);
  });

  test('encoding copies: changing the input afterwards does not change the file', () => {
    const data = new Float32Array([1, 2]);
    const bytes = encodeSafetensors({ a: { dtype: 'F32', shape: [2], data } });
    data[0] = 99;
    assert.deepEqual(Array.from(decodeSafetensors(bytes).tensors.a.data), [1, 2]);
  });

  test('a view into a larger typed array encodes only its own elements', () => {
    const whole = new Int32Array([10, 20, 30, 40]);
    const bytes = encodeSafetensors({ a: { dtype: 'I32', shape: [2], data: whole.subarray(1, 3) } });
    assert.deepEqual(Array.from(decodeSafetensors(bytes).tensors.a.data), [20, 30]);
  });
});

describe('files written by others', () => {
  test('trailing JSON whitespace of any kind after the header object (the reference accepts it)', () => {
    const bytes = new Uint8Array([6, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 0x0d, 0x20, 0x09, 0x0a]);
    assert.deepEqual(decodeSafetensors(bytes), { tensors: {}, metadata: null });
  });

  test('header entries in any order, spaces inside the JSON, no padding', () => {
    const header = '{ "b" : {"data_offsets":[4, 8],"shape":[1],"dtype":"F32"}, "a": {"dtype":"I32","shape":[1],"data_offsets":[0,4]} }';
    const json = new TextEncoder().encode(header);
    const bytes = new Uint8Array(8 + json.length + 8);
    bytes[0] = json.length;
    bytes.set(json, 8);
    new DataView(bytes.buffer).setFloat32(8 + json.length + 4, 0.5, true);
    new DataView(bytes.buffer).setInt32(8 + json.length, -3, true);
    const { tensors } = decodeSafetensors(bytes);
    assert.deepEqual(Array.from(tensors.a.data), [-3]);
    assert.deepEqual(Array.from(tensors.b.data), [0.5]);
  });

  test('zero-size tensors may share an offset with each other and with the next tensor', () => {
    const bytes = file({
      e1: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      e2: { dtype: 'I64', shape: [3, 0], data_offsets: [4, 4] },
      b: { dtype: 'U8', shape: [2], data_offsets: [4, 6] },
      e3: { dtype: 'U8', shape: [0], data_offsets: [6, 6] },
    }, [0, 0, 128, 63, 7, 8]);
    const { tensors } = decodeSafetensors(bytes);
    assert.deepEqual(Array.from(tensors.a.data), [1]);
    assert.deepEqual(Array.from(tensors.b.data), [7, 8]);
    assert.equal(tensors.e2.data.length, 0);
  });
});

describe('bad input to encodeSafetensors', () => {
  const f32 = (shape, length) => ({ dtype: 'F32', shape, data: new Float32Array(length) });
  const cases = [
    ['tensors not an object', [null], TypeError, /tensors must be an object/],
    ['tensors an array', [[f32([1], 1)]], TypeError, /tensors must be an object/],
    ['a tensor not an object', [{ a: 5 }], TypeError, /tensors\['a'\] must be \{dtype, shape, data\}/],
    ['unknown dtype', [{ a: { dtype: 'F128', shape: [1], data: new Float32Array(1) } }], RangeError, /tensors\['a'\]\.dtype must be one of 'BOOL'/],
    ['dtype not a string', [{ a: { dtype: 4, shape: [1], data: new Float32Array(1) } }], TypeError, /tensors\['a'\]\.dtype must be one of/],
    ['shape not an array', [{ a: { dtype: 'F32', shape: 3, data: new Float32Array(3) } }], TypeError, /tensors\['a'\]\.shape must be an array/],
    ['negative size', [{ a: f32([-1], 1) }], RangeError, /tensors\['a'\]\.shape\[0\] must be in \[0/],
    ['fractional size', [{ a: f32([1, 1.5], 1) }], RangeError, /tensors\['a'\]\.shape\[1\] must be an integer/],
    ['size not a number', [{ a: f32(['2'], 2) }], TypeError, /tensors\['a'\]\.shape\[0\] must be an integer/],
    ['data of another type', [{ a: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }], TypeError, /tensors\['a'\]\.data must be a Float32Array for dtype 'F32', got a Float64Array/],
    ['F16 data not bits', [{ a: { dtype: 'F16', shape: [2], data: new Float32Array(2) } }], TypeError, /must be a Uint16Array for dtype 'F16'/],
    ['I64 data not BigInt64Array', [{ a: { dtype: 'I64', shape: [1], data: new Int32Array(2) } }], TypeError, /must be a BigInt64Array/],
    ['data a plain array', [{ a: { dtype: 'F32', shape: [2], data: [1, 2] } }], TypeError, /must be a Float32Array/],
    ['data shorter than the shape', [{ a: f32([2, 3], 5) }], RangeError, /tensors\['a'\]\.data has length 5 but shape \[2, 3\] needs 6/],
    ['data longer than a scalar', [{ a: f32([], 2) }], RangeError, /has length 2 but shape \[\] needs 1/],
    ['empty name', [{ '': f32([1], 1) }], RangeError, /tensor names must be non-empty/],
    ['the reserved name', [{ __metadata__: f32([1], 1) }], RangeError, /'__metadata__' is reserved/],
    ['a lone surrogate in a name', [{ 'a\uD800': f32([1], 1) }], RangeError, /lone surrogate/],
    ['metadata not an object', [{}, 'pt'], TypeError, /metadata must be an object/],
    ['metadata an array', [{}, ['pt']], TypeError, /metadata must be an object/],
    ['a metadata value not a string', [{}, { step: 3 }], TypeError, /metadata\['step'\] must be a string, got 3/],
    ['a lone surrogate in metadata', [{}, { k: '\uDC00' }], RangeError, /metadata\['k'\] contains a lone surrogate/],
  ];
  for (const [name, args, ErrorClass, pattern] of cases) {
    test(name, () => {
      assert.throws(() => encodeSafetensors(...args), (e) => {
        assert.ok(e instanceof ErrorClass, `expected ${ErrorClass.name}, got ${e.constructor.name}: ${e.message}`);
        assert.match(e.message, pattern);
        return true;
      });
    });
  }

  test('a header above 100 MB', () => {
    assert.throws(() => encodeSafetensors({}, { big: 'x'.repeat(100_000_000) }), /above the format's limit of 100000000/);
  });
});

describe('malformed files', () => {
  const oneF32 = (offsets = [0, 4], shape = [1]) => ({ a: { dtype: 'F32', shape, data_offsets: offsets } });

  test('bytes not a Uint8Array', () => {
    assert.throws(() => decodeSafetensors([8, 0, 0, 0, 0, 0, 0, 0]), (e) => e instanceof TypeError && /bytes must be a Uint8Array or an ArrayBuffer/.test(e.message));
  });
  test('shorter than 8 bytes', () => rejects(new Uint8Array(7), /the file is 7 bytes, shorter than the 8-byte header size/));
  test('header size beyond the file', () => {
    const bytes = file({});
    bytes[0] = 17;
    rejects(bytes, /the header size 17 goes beyond the end of the 16-byte file/);
  });
  test('header size above 100 MB', () => {
    const bytes = file({});
    new DataView(bytes.buffer).setBigUint64(0, 100_000_001n, true);
    rejects(bytes, /the header size 100000001 is above the format's limit of 100000000 bytes/);
  });
  test('header size of 2^64 - 1', () => {
    const bytes = file({});
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    rejects(bytes, /the header size 18446744073709551615 is above/);
  });
  test('an empty header', () => rejects(new Uint8Array(8), /the header must begin with '\{'/));
  test('a header that does not begin with {', () => rejects(file(' {}'), /must begin with '\{'/));
  test('a header that is a JSON array', () => rejects(file('[]'), /must begin with '\{'/));
  test('a header of invalid UTF-8', () => {
    const bytes = file('{"a?":1}');
    bytes[11] = 0xff;
    rejects(bytes, /the header is not valid UTF-8/);
  });
  test('a header of invalid JSON', () => rejects(file('{"a": }'), /the header is not valid JSON/));
  test('a header with text after the object', () => rejects(file('{} {}'), /the header is not valid JSON/));
  test('padding with NUL bytes instead of whitespace', () => {
    const bytes = file({});
    bytes.fill(0, 10, 16);
    rejects(bytes, /the header is not valid JSON/);
  });

  test('metadata not an object', () => rejects(file({ __metadata__: ['pt'] }), /'__metadata__' must be an object of string -> string, got an array/));
  test('metadata null', () => rejects(file({ __metadata__: null }), /'__metadata__' must be an object/));
  test('a metadata value not a string', () => rejects(file({ __metadata__: { format: 'pt', step: 3 } }), /'__metadata__' values must be strings, but 'step' is 3/));
  test('a tensor named __metadata__', () => {
    rejects(file({ __metadata__: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /'__metadata__' is reserved for the metadata and cannot name a tensor/);
  });

  test('a tensor entry not an object', () => rejects(file({ a: [1, 2] }), /tensor 'a' must be \{dtype, shape, data_offsets\}/));
  test('a tensor entry without data_offsets', () => rejects(file({ a: { dtype: 'F32', shape: [0] } }), /tensor 'a' has no 'data_offsets'/));
  test('a tensor entry with an unknown field', () => {
    rejects(file({ a: { dtype: 'F32', shape: [1], offsets: [0, 4], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /tensor 'a' has an unknown field 'offsets'/);
  });
  test('an empty tensor name', () => rejects(file({ '': { dtype: 'U8', shape: [0], data_offsets: [0, 0] } }), /a tensor has an empty name/));

  test('unknown dtype', () => rejects(file({ a: { dtype: 'F128', shape: [0], data_offsets: [0, 0] } }), /tensor 'a' has the unknown or unsupported dtype 'F128' \(supported: BOOL, U8/));
  test('a sub-byte dtype', () => rejects(file({ a: { dtype: 'F4', shape: [2], data_offsets: [0, 1] } }, [0]), /unsupported dtype 'F4'/));
  test('a lower-case dtype', () => rejects(file({ a: { dtype: 'f32', shape: [1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /unsupported dtype 'f32'/));
  test('a dtype that is not a string', () => rejects(file({ a: { dtype: ['F32'], shape: [1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /unsupported dtype an array/));

  test('shape not an array', () => rejects(file(oneF32([0, 4], 1), [0, 0, 0, 0]), /tensor 'a' has shape 1; it must be an array of non-negative integers/));
  test('a negative size', () => rejects(file(oneF32([0, 4], [-1]), [0, 0, 0, 0]), /has shape \[-1\]; it must be an array of non-negative integers/));
  test('a fractional size', () => rejects(file(oneF32([0, 4], [0.5, 2]), [0, 0, 0, 0]), /has shape \[0.5,2\]/));
  test('a size as a string', () => rejects(file(oneF32([0, 4], ['1']), [0, 0, 0, 0]), /has shape \["1"\]/));
  test('a size beyond 2^53', () => rejects(file(oneF32([0, 4], [2 ** 60, 0]), [0, 0, 0, 0]), /has shape \[1152921504606847000,0\]/));
  test('a shape whose product overflows', () => rejects(file(oneF32([0, 4], [2 ** 40, 2 ** 40]), [0, 0, 0, 0]), /spans 4 bytes but F32 of shape \[1099511627776, 1099511627776\] needs 4\.835703278458517e\+24/));

  test('data_offsets of three numbers', () => rejects(file(oneF32([0, 4, 8]), [0, 0, 0, 0]), /tensor 'a' has data_offsets \[0,4,8\]; they must be two non-negative integers/));
  test('data_offsets not an array', () => rejects(file(oneF32({ begin: 0, end: 4 }), [0, 0, 0, 0]), /has data_offsets \{"begin":0,"end":4\}/));
  test('a negative offset', () => rejects(file(oneF32([-4, 0])), /has data_offsets \[-4,0\]/));
  test('a fractional offset', () => rejects(file(oneF32([0, 3.5]), [0, 0, 0, 0]), /has data_offsets \[0,3.5\]/));
  test('begin after end', () => rejects(file(oneF32([4, 0]), [0, 0, 0, 0]), /tensor 'a' has data_offsets \[4, 0\] that begin after they end/));
  test('offsets beyond the buffer', () => rejects(file(oneF32([0, 4]), [0, 0]), /tensor 'a' has data_offsets \[0, 4\] beyond the 2-byte data buffer/));
  test('a span that disagrees with shape and dtype', () => {
    rejects(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /tensor 'a' spans 4 bytes but F32 of shape \[2\] needs 8/);
  });
  test('overlapping tensors', () => {
    rejects(file({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] } }, [1, 2, 3, 4, 5, 6]),
      /tensor 'b' \(bytes \[2, 6\)\) overlaps tensor 'a' \(bytes \[0, 4\)\)/);
  });
  test('two tensors on the same bytes', () => {
    rejects(file({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'I32', shape: [1], data_offsets: [0, 4] } }, [1, 2, 3, 4]), /overlaps tensor/);
  });
  test('an empty tensor inside another', () => {
    rejects(file({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, e: { dtype: 'U8', shape: [0], data_offsets: [2, 2] } }, [1, 2, 3, 4]), /tensor 'e' \(bytes \[2, 2\)\) overlaps tensor 'a'/);
  });
  test('a hole between tensors', () => {
    rejects(file({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [2], data_offsets: [3, 5] } }, [1, 2, 3, 4, 5]),
      /bytes \[2, 3\) of the data buffer belong to no tensor \(a hole before tensor 'b'\)/);
  });
  test('a hole at the start', () => rejects(file({ a: { dtype: 'U8', shape: [2], data_offsets: [1, 3] } }, [1, 2, 3]), /bytes \[0, 1\) of the data buffer belong to no tensor/));
  test('bytes after the last tensor', () => rejects(file(oneF32(), [0, 0, 0, 0, 9]), /1 bytes follow the last tensor \(the data buffer is 5 bytes, the tensors cover 4\)/));
  test('bytes in a file without tensors', () => rejects(file({}, [1, 2, 3]), /3 bytes follow the last tensor/));

  test('a duplicate tensor name', () => {
    rejects(file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', [1, 2]), /the key 'a' appears twice in the header/);
  });
  test('a duplicate tensor name spelled with an escape', () => {
    rejects(file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', [1, 2]), /the key 'a' appears twice/);
  });
  test('a duplicate field in a tensor entry', () => {
    rejects(file('{"a":{"dtype":"F32","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [1]), /the key 'dtype' appears twice in an object of the header/);
  });
  test('a duplicate metadata key', () => {
    rejects(file('{"__metadata__":{"k":"1","k":"2"}}'), /the key 'k' appears twice in an object of the header/);
  });
  test('two metadata objects', () => rejects(file('{"__metadata__":{},"__metadata__":{"k":"v"}}'), /the key '__metadata__' appears twice in the header/));
  test('a duplicate key that ends in an escaped backslash', () => {
    rejects(file('{"__metadata__":{"x\\\\":"1","x\\\\":"2"}}'), /the key 'x\\' appears twice/);
  });
  test('strings inside arrays are values, not keys', () => {
    rejects(file('{"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}', [0, 0, 0, 0]), /has data_offsets \["0","4"\]/);
  });
  test('keys that only look alike are not duplicates', () => {
    const { metadata } = decodeSafetensors(file('{"__metadata__":{"a\\"":"\\\\","a\\\\":"{\\"a\\":1, \\"a\\":2}","[a]":"a"}}'));
    assert.deepEqual(metadata, { 'a"': '\\', 'a\\': '{"a":1, "a":2}', '[a]': 'a' });
  });
});

describe('no malformed file gets past the decoder', () => {
  const valid = encodeSafetensors({
    w: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    ids: { dtype: 'I64', shape: [2], data: new BigInt64Array([5n, -6n]) },
    flags: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    h: { dtype: 'F16', shape: [], data: new Uint16Array([0x3c00]) },
  }, { format: 'pt' });

  /** Decodes, and then the result must be consistent; any error must be a SafetensorsError. */
  function decodesSafely(bytes) {
    try {
      assertConsistent(decodeSafetensors(bytes));
      return true;
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e.constructor.name}: ${e.message}`);
      assert.ok(e.message.length > 10, 'the message says what is wrong');
      return false;
    }
  }

  test('every truncation of a valid file is rejected', () => {
    assert.ok(decodesSafely(valid));
    for (let length = 0; length < valid.length; length++) {
      assert.equal(decodesSafely(valid.slice(0, length)), false, `a file cut to ${length} of ${valid.length} bytes`);
    }
  });

  test('every single-byte corruption (each byte set to each other value) decodes consistently or is rejected', () => {
    let rejected = 0;
    for (let at = 0; at < valid.length; at++) {
      for (let value = 0; value < 256; value++) {
        if (value === valid[at]) continue;
        const bytes = valid.slice();
        bytes[at] = value;
        if (!decodesSafely(bytes)) rejected++;
      }
    }
    // Changes in the tensor bytes, the padding and some names still make valid files; most others do not.
    assert.ok(rejected > 0.8 * valid.length * 255, `${rejected} of ${valid.length * 255} corruptions were rejected`);
  });

  test('random garbage, and garbage behind a plausible header size, is rejected', () => {
    const next = random(99);
    for (let trial = 0; trial < 300; trial++) {
      const bytes = new Uint8Array(next() % 200);
      for (let i = 0; i < bytes.length; i++) bytes[i] = next() & 255;
      if (trial % 2 === 0 && bytes.length >= 9) {
        new DataView(bytes.buffer).setBigUint64(0, BigInt(next() % (bytes.length - 7)), true);
        bytes[8] = 0x7b;
      }
      assert.equal(decodesSafely(bytes), false);
    }
  });

  test('random header texts built from header tokens decode consistently or are rejected', () => {
    const next = random(5);
    const tokens = ['{', '}', '[', ']', ',', ':', '"a"', '"b"', '"dtype"', '"shape"', '"data_offsets"', '"__metadata__"',
      '"F32"', '"U8"', '"I64"', '0', '1', '2', '4', '8', '-1', '1.5', '1e3', 'null', 'true', '" "', ' '];
    let accepted = 0;
    for (let trial = 0; trial < 3000; trial++) {
      let text = '{';
      for (let n = next() % 25; n > 0; n--) text += tokens[next() % tokens.length];
      const buffer = Array.from({ length: next() % 12 }, () => next() & 255);
      if (decodesSafely(file(text, buffer))) accepted++;
    }
    // Headers like {} or {"__metadata__":{}} do decode; the point is that nothing else escapes.
    assert.ok(accepted > 0);
  });
});
