// checkpoint.test.js: training checkpoints round-trip bit for bit, their tensors are exactly the
// state_dict, plain safetensors files load, and corrupted metadata is rejected by name.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { decodeCheckpoint, encodeCheckpoint } from '../js/checkpoint.js';
import { SafetensorsError, decodeSafetensors, encodeSafetensors } from '../js/safetensors.js';

const config = { vocab: 5, dModel: 4, heads: 2, layers: 1, dFF: 8, ropePercentage: 0.5, base: 10000 };
const vocab = 'ab\n"é';

/** Float32 values with the given bit patterns (NaN payloads, -0, infinities, subnormals). */
function fromBits(bits) {
  return new Float32Array(new Uint32Array(bits).buffer);
}

function bitsOf(data) {
  return Array.from(new Uint32Array(data.buffer, data.byteOffset, data.length));
}

/** A deterministic float32 array of `length`, with every kind of special value among them. */
function floats(length, seed) {
  const specials = [0x7fc00000, 0x7fc12345, 0xffc00001, 0x7f800001, 0x80000000, 0x00000000, 0x7f800000,
    0xff800000, 0x00000001, 0x807fffff, 0x7f7fffff, 0x3f800000];
  return fromBits(Array.from({ length }, (_, i) => (i % 3 === 0 ? specials[(i + seed) % specials.length] : Math.imul(i + 1, 2654435761 + seed) >>> 0)));
}

/** A small model's state_dict: names as the trainer's, sizes from config. */
function stateDict() {
  const shapes = {
    'src_embed.weight': [5, 4],
    'layers.0.self_attn.query.weight': [4, 4],
    'layers.0.self_attn.query.bias': [4],
    'layers.0.norm.weight': [4],
    'layers.0.empty': [0, 4],
    'generator.weight': [5, 4],
    'generator.bias': [5],
  };
  return Object.fromEntries(Object.entries(shapes).map(([name, shape], i) => (
    [name, { shape, data: floats(shape.reduce((a, b) => a * b, 1), i) }])));
}

/** Adam state of the weights, moments in the order of names (the model's order, not sorted). */
function adam(weights) {
  const names = Object.keys(weights);
  const length = names.reduce((total, name) => total + weights[name].data.length, 0);
  return {
    type: 'adamw', lr: 3e-4, betas: [0.9, 0.98], eps: 1e-9, weightDecay: 0.01, step: 120, schedule: { type: 'cosine', warmup: 10 },
    names, expAvg: floats(length, 100), expAvgSq: floats(length, 200),
  };
}

function assertSameWeights(got, expected) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort());
  for (const [name, { shape, data }] of Object.entries(expected)) {
    assert.deepEqual(got[name].shape, shape, name);
    assert.ok(got[name].data instanceof Float32Array, name);
    assert.deepEqual(bitsOf(got[name].data), bitsOf(data), `${name} bit for bit`);
  }
}

function assertSameOptimizer(got, expected) {
  const { expAvg, expAvgSq, ...hyperparameters } = got;
  const { expAvg: expectedAvg, expAvgSq: expectedAvgSq, ...expectedHyperparameters } = expected;
  assert.deepEqual(hyperparameters, expectedHyperparameters);
  for (const [moment, expectedMoment] of [[expAvg, expectedAvg], [expAvgSq, expectedAvgSq]]) {
    assert.ok(moment instanceof Float32Array);
    assert.deepEqual(bitsOf(moment), bitsOf(expectedMoment), 'the moments bit for bit');
  }
}

/** Asserts fn throws ErrorClass with a message matching pattern. */
function throwsLike(fn, ErrorClass, pattern) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof ErrorClass, `expected ${ErrorClass.name}, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('round trips', () => {
  test('weights, config, vocab, step and Adam state come back bit for bit (NaN payloads, -0, subnormals)', () => {
    const weights = stateDict();
    const optimizer = adam(weights);
    const bytes = encodeCheckpoint({ config, vocab, step: 1234, weights, optimizer });
    const got = decodeCheckpoint(bytes);
    assert.deepEqual(got.config, config);
    assert.equal(got.vocab, vocab);
    assert.equal(got.step, 1234);
    assertSameWeights(got.weights, weights);
    assertSameOptimizer(got.optimizer, optimizer);
    assert.deepEqual(got.optimizer.names, Object.keys(weights), 'names keep their order');
    assert.equal(got.metadata.format, 'rope-wasm-checkpoint');
  });

  test('a decoded checkpoint encodes to the same bytes', () => {
    const bytes = encodeCheckpoint({ config, vocab, step: 7, weights: stateDict(), optimizer: adam(stateDict()) });
    const { metadata, ...checkpoint } = decodeCheckpoint(bytes);
    assert.deepEqual(encodeCheckpoint(checkpoint), bytes);
  });

  test('through a file on disk, read back as a Node Buffer', () => {
    const weights = stateDict();
    const optimizer = adam(weights);
    const dir = mkdtempSync(path.join(tmpdir(), 'rope-wasm-checkpoint-'));
    try {
      const file = path.join(dir, 'model.safetensors');
      writeFileSync(file, encodeCheckpoint({ config, vocab, step: 9, weights, optimizer }));
      const got = decodeCheckpoint(readFileSync(file));
      assertSameWeights(got.weights, weights);
      assertSameOptimizer(got.optimizer, optimizer);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('the bytes do not depend on the order the weights are listed in', () => {
    const weights = stateDict();
    const reversed = Object.fromEntries(Object.entries(weights).reverse());
    const optimizer = adam(weights);
    assert.deepEqual(encodeCheckpoint({ config, vocab, step: 7, weights: reversed, optimizer }),
      encodeCheckpoint({ config, vocab, step: 7, weights, optimizer }));
  });

  test('without optimizer state', () => {
    const weights = stateDict();
    const bytes = encodeCheckpoint({ config, vocab, step: 0, weights });
    const got = decodeCheckpoint(bytes);
    assert.equal(got.optimizer, null);
    assert.equal(got.step, 0);
    assertSameWeights(got.weights, weights);
    assert.deepEqual(Object.keys(got.metadata).sort(), ['config', 'format', 'step', 'version', 'vocab']);
    assert.deepEqual(encodeCheckpoint({ config, vocab, step: 0, weights, optimizer: null }), bytes);
  });

  test('vocabularies with quotes, control characters and non-BMP characters; the largest safe step', () => {
    for (const text of ['', '\u0000\u001f\\"\'', 'naïve ∑ \u{1F600}', '{"a":1}']) {
      const got = decodeCheckpoint(encodeCheckpoint({ config, vocab: text, step: Number.MAX_SAFE_INTEGER, weights: {} }));
      assert.equal(got.vocab, text);
      assert.equal(got.step, Number.MAX_SAFE_INTEGER);
    }
  });
});

describe('the file is a PyTorch state_dict', () => {
  test('its tensors are exactly the weights, F32, and everything else is string metadata', () => {
    const weights = stateDict();
    const { tensors, metadata } = decodeSafetensors(encodeCheckpoint({ config, vocab, step: 3, weights, optimizer: adam(weights) }));
    assert.deepEqual(Object.keys(tensors).sort(), Object.keys(weights).sort());
    for (const [name, tensor] of Object.entries(tensors)) {
      assert.equal(tensor.dtype, 'F32');
      assert.deepEqual(tensor.shape, weights[name].shape);
    }
    assert.deepEqual(Object.keys(metadata).sort(), ['config', 'format', 'optimizer', 'optimizer.exp_avg', 'optimizer.exp_avg_sq', 'step', 'version', 'vocab']);
    assert.equal(metadata.format, 'rope-wasm-checkpoint');
    assert.equal(metadata.version, '1');
    assert.equal(metadata.step, '3');
    assert.deepEqual(JSON.parse(metadata.config), config);
    assert.equal(metadata.vocab, JSON.stringify(vocab));
  });

  test('the moments are base64 of little-endian float32, in the order of optimizer.names', () => {
    const weights = stateDict();
    const optimizer = adam(weights);
    const { metadata } = decodeSafetensors(encodeCheckpoint({ config, vocab, step: 3, weights, optimizer }));
    const { expAvg, expAvgSq, ...hyperparameters } = optimizer;
    assert.deepEqual(JSON.parse(metadata.optimizer), hyperparameters);
    for (const [key, moment] of [['optimizer.exp_avg', expAvg], ['optimizer.exp_avg_sq', expAvgSq]]) {
      // Node's Buffer is an independent base64 encoder; writeUInt32LE is little-endian whatever the host.
      const bytes = Buffer.alloc(4 * moment.length);
      bitsOf(moment).forEach((bits, i) => bytes.writeUInt32LE(bits, 4 * i));
      assert.equal(metadata[key], bytes.toString('base64'));
    }
  });

  test('base64 of every padding length matches an independent encoder', () => {
    for (let length = 0; length < 7; length++) {
      const weights = { w: { shape: [length], data: floats(length, length) } };
      const optimizer = { type: 'sgd', names: ['w'], expAvg: floats(length, 50), expAvgSq: floats(length, 60) };
      const bytes = encodeCheckpoint({ config, vocab, step: 1, weights, optimizer });
      const { metadata } = decodeSafetensors(bytes);
      assert.equal(metadata['optimizer.exp_avg'], Buffer.from(optimizer.expAvg.buffer).toString('base64'), `${4 * length} bytes`);
      assertSameOptimizer(decodeCheckpoint(bytes).optimizer, optimizer);
    }
  });

  test('moments that are views into a larger array encode only their own floats', () => {
    const weights = { w: { shape: [2], data: new Float32Array(2) } };
    const whole = new Float32Array([9, 1, 2, 9]);
    const optimizer = { type: 'adamw', names: ['w'], expAvg: whole.subarray(1, 3), expAvgSq: whole.subarray(0, 2) };
    const got = decodeCheckpoint(encodeCheckpoint({ config, vocab, step: 1, weights, optimizer })).optimizer;
    assert.deepEqual(Array.from(got.expAvg), [1, 2]);
    assert.deepEqual(Array.from(got.expAvgSq), [9, 1]);
  });

  test('a state_dict saved without metadata loads, with config, vocab and step for the caller to supply', () => {
    const weights = stateDict();
    const tensors = Object.fromEntries(Object.entries(weights).map(([name, { shape, data }]) => [name, { dtype: 'F32', shape, data }]));
    const got = decodeCheckpoint(encodeSafetensors(tensors));
    assert.deepEqual({ ...got, weights: null }, { config: null, vocab: null, step: null, weights: null, optimizer: null, metadata: null });
    assertSameWeights(got.weights, weights);
  });

  test("a transformers-style file with metadata {format: 'pt'} loads as a plain state_dict", () => {
    const got = decodeCheckpoint(encodeSafetensors({ 'generator.bias': { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } }, { format: 'pt' }));
    assert.equal(got.config, null);
    assert.deepEqual(got.metadata, { format: 'pt' });
    assert.deepEqual(Array.from(got.weights['generator.bias'].data), [1, 2]);
  });

  test('a plain file holding a non-F32 tensor is rejected by name', () => {
    const bytes = encodeSafetensors({ 'src_embed.weight': { dtype: 'BF16', shape: [1], data: new Uint16Array(1) } });
    throwsLike(() => decodeCheckpoint(bytes), SafetensorsError, /tensor 'src_embed.weight' is BF16, but rope-wasm weights are F32/);
  });

  test('a corrupted file is rejected by the safetensors decoder', () => {
    const bytes = encodeCheckpoint({ config, vocab, step: 1, weights: stateDict() });
    throwsLike(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 1)), SafetensorsError, /beyond the .*data buffer/);
  });
});

describe('corrupted metadata', () => {
  const weights = { w: { shape: [2], data: new Float32Array([1, 2]) } };
  const f32 = { w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } };
  const good = decodeSafetensors(encodeCheckpoint({
    config, vocab, step: 5, weights, optimizer: { type: 'adamw', lr: 1e-3, names: ['w'], expAvg: new Float32Array(2), expAvgSq: new Float32Array(2) },
  })).metadata;
  const base64Of = (floatsArray) => Buffer.from(new Float32Array(floatsArray).buffer).toString('base64');
  const without = (key) => Object.fromEntries(Object.entries(good).filter(([k]) => k !== key));

  const cases = [
    ['no version', without('version'), /checkpoint metadata has no 'version'/],
    ['an unknown version', { ...good, version: '2' }, /checkpoint version '2' is not supported/],
    ['no config', without('config'), /checkpoint metadata has no 'config'/],
    ['config not JSON', { ...good, config: '{"dModel": 4' }, /checkpoint metadata 'config' is not valid JSON/],
    ['config a JSON array', { ...good, config: '[4, 2]' }, /checkpoint metadata 'config' must be a JSON object, got an array/],
    ['config null', { ...good, config: 'null' }, /'config' must be a JSON object, got null/],
    ['no vocab', without('vocab'), /checkpoint metadata has no 'vocab'/],
    ['vocab not JSON', { ...good, vocab: 'abc' }, /checkpoint metadata 'vocab' is not valid JSON/],
    ['vocab a JSON number', { ...good, vocab: '42' }, /checkpoint metadata 'vocab' must be a JSON string, got 42/],
    ['no step', without('step'), /checkpoint metadata has no 'step'/],
    ['a fractional step', { ...good, step: '1.5' }, /'step' must be a non-negative decimal integer, got '1.5'/],
    ['a negative step', { ...good, step: '-1' }, /'step' must be a non-negative decimal integer/],
    ['an empty step', { ...good, step: '' }, /'step' must be a non-negative decimal integer, got ''/],
    ['a step with a leading zero', { ...good, step: '07' }, /'step' must be/],
    ['a step in exponent form', { ...good, step: '1e3' }, /'step' must be/],
    ['a step with spaces', { ...good, step: ' 5' }, /'step' must be/],
    ['a step beyond 2^53', { ...good, step: '9007199254740993' }, /'step' must be/],
    ['optimizer not JSON', { ...good, optimizer: '{type:1}' }, /checkpoint metadata 'optimizer' is not valid JSON/],
    ['optimizer a JSON string', { ...good, optimizer: '"adamw"' }, /'optimizer' must be a JSON object/],
    ['optimizer without type', { ...good, optimizer: '{"names":["w"]}' }, /'optimizer' has type undefined; it must be a non-empty string/],
    ['optimizer with an empty type', { ...good, optimizer: '{"type":"","names":["w"]}' }, /'optimizer' has type ''; it must be a non-empty string/],
    ['optimizer without names', { ...good, optimizer: '{"type":"adamw"}' }, /'optimizer' has names undefined; it must be an array of weight names/],
    ['names not strings', { ...good, optimizer: '{"type":"adamw","names":[0]}' }, /'optimizer' has names an array of length 1; it must be an array of weight names/],
    ['names missing a weight', { ...good, optimizer: '{"type":"adamw","names":[]}' }, /'optimizer': names does not list the weight 'w'/],
    ['names with an unknown weight', { ...good, optimizer: '{"type":"adamw","names":["w","v"]}' }, /'optimizer': names lists 'v', which is no weight/],
    ['names listing a weight twice', { ...good, optimizer: '{"type":"adamw","names":["w","w"]}' }, /'optimizer': names lists 'w' twice/],
    ['no exp_avg', without('optimizer.exp_avg'), /checkpoint metadata has no 'optimizer.exp_avg'/],
    ['no exp_avg_sq', without('optimizer.exp_avg_sq'), /checkpoint metadata has no 'optimizer.exp_avg_sq'/],
    ['exp_avg one float short', { ...good, 'optimizer.exp_avg': base64Of([1]) }, /'optimizer.exp_avg' holds 4 bytes but the weights need 8/],
    ['exp_avg one float long', { ...good, 'optimizer.exp_avg_sq': base64Of([1, 2, 3]) }, /'optimizer.exp_avg_sq' holds 12 bytes but the weights need 8/],
    ['exp_avg one byte short', { ...good, 'optimizer.exp_avg': Buffer.alloc(7).toString('base64') }, /holds 7 bytes but the weights need 8/],
    ['exp_avg with a character outside base64', { ...good, 'optimizer.exp_avg': 'AAAA*AAAAAA=' }, /'optimizer.exp_avg' is not base64/],
    ['exp_avg without padding', { ...good, 'optimizer.exp_avg': 'AAAAAAAAAAA' }, /'optimizer.exp_avg' is not base64/],
    ['exp_avg with whitespace', { ...good, 'optimizer.exp_avg': 'AAAA AAAAAA=' }, /is not base64/],
    ['exp_avg with padding inside', { ...good, 'optimizer.exp_avg': 'AA==AAAAAAA=' }, /is not base64/],
    ['exp_avg with three padding characters', { ...good, 'optimizer.exp_avg': 'AAAAAAAAA===' }, /is not base64/],
    ['exp_avg with a non-ASCII character', { ...good, 'optimizer.exp_avg': 'AAAAAAAAAAé=' }, /is not base64/],
    ['moments without optimizer', without('optimizer'), /checkpoint metadata has 'optimizer.exp_avg' but no 'optimizer'/],
  ];
  for (const [name, metadata, pattern] of cases) {
    test(name, () => throwsLike(() => decodeCheckpoint(encodeSafetensors(f32, metadata)), SafetensorsError, pattern));
  }

  test('the metadata these cases start from decodes', () => {
    const got = decodeCheckpoint(encodeSafetensors(f32, good));
    assert.equal(got.step, 5);
    assert.deepEqual(Array.from(got.optimizer.expAvg), [0, 0]);
  });

  test('a non-F32 tensor in a rope-wasm checkpoint', () => {
    const tensors = { w: { dtype: 'F64', shape: [2], data: new Float64Array(2) } };
    throwsLike(() => decodeCheckpoint(encodeSafetensors(tensors, good)), SafetensorsError, /tensor 'w' is F64, but rope-wasm weights are F32/);
  });
});

describe('bad input to encodeCheckpoint', () => {
  const weights = { w: { shape: [2], data: new Float32Array(2) } };
  const optimizer = { type: 'adamw', names: ['w'], expAvg: new Float32Array(2), expAvgSq: new Float32Array(2) };
  const checkpoint = { config, vocab, step: 1, weights, optimizer };
  const cases = [
    ['no checkpoint', undefined, TypeError, /encodeCheckpoint: expected \{config, vocab, step, weights, optimizer\}/],
    ['an unknown key', { ...checkpoint, epoch: 2 }, TypeError, /encodeCheckpoint: unknown option 'epoch'/],
    ['no config', { ...checkpoint, config: undefined }, TypeError, /config must be an object, got undefined/],
    ['config an array', { ...checkpoint, config: [1] }, TypeError, /config must be an object, got an array/],
    ['config not JSON-serializable', { ...checkpoint, config: { big: 1n } }, TypeError, /config must be JSON-serializable/],
    ['vocab not a string', { ...checkpoint, vocab: ['a', 'b'] }, TypeError, /vocab must be a string/],
    ['no step', { ...checkpoint, step: undefined }, TypeError, /step must be an integer, got undefined/],
    ['a negative step', { ...checkpoint, step: -1 }, RangeError, /step must be in \[0, 9007199254740991\], got -1/],
    ['a fractional step', { ...checkpoint, step: 1.5 }, RangeError, /step must be an integer, got 1.5/],
    ['weights not an object', { ...checkpoint, weights: null }, TypeError, /weights must be an object of name -> \{shape, data: Float32Array\}/],
    ['a weight not an object', { ...checkpoint, weights: { w: new Float32Array(2) }, optimizer: null }, TypeError, /weights\['w'\]\.shape must be an array/],
    ['a weight of null', { ...checkpoint, weights: { w: null }, optimizer: null }, TypeError, /weights\['w'\] must be \{shape, data: Float32Array\}, got null/],
    ['a weight of float64', { ...checkpoint, weights: { w: { shape: [2], data: new Float64Array(2) } } }, TypeError, /weights\['w'\]\.data must be a Float32Array for dtype 'F32', got a Float64Array/],
    ['a weight of the wrong length', { ...checkpoint, weights: { w: { shape: [3], data: new Float32Array(2) } } }, RangeError, /weights\['w'\]\.data has length 2 but shape \[3\] needs 3/],
    ['a weight named __metadata__', { ...checkpoint, weights: { __metadata__: weights.w }, optimizer: null }, RangeError, /'__metadata__' is reserved/],
    ['optimizer not an object', { ...checkpoint, optimizer: 'adamw' }, TypeError, /optimizer must be \{type, \.\.\.hyperparameters, names, expAvg, expAvgSq\}/],
    ['optimizer without type', { ...checkpoint, optimizer: { ...optimizer, type: undefined } }, TypeError, /optimizer.type must be a non-empty string, got undefined/],
    ['optimizer without names', { ...checkpoint, optimizer: { ...optimizer, names: undefined } }, TypeError, /optimizer.names must be an array of the weight names in the order of the moments, got undefined/],
    ['names not strings', { ...checkpoint, optimizer: { ...optimizer, names: [1] } }, TypeError, /optimizer.names must be an array of the weight names/],
    ['names missing a weight', { ...checkpoint, optimizer: { ...optimizer, names: [] } }, RangeError, /optimizer.names does not list the weight 'w'/],
    ['names with an unknown weight', { ...checkpoint, optimizer: { ...optimizer, names: ['w', 'v'] } }, RangeError, /optimizer.names lists 'v', which is no weight/],
    ['names listing a weight twice', { ...checkpoint, optimizer: { ...optimizer, names: ['w', 'w'] } }, RangeError, /optimizer.names lists 'w' twice/],
    ['optimizer without expAvg', { ...checkpoint, optimizer: { ...optimizer, expAvg: undefined } }, TypeError, /optimizer.expAvg must be a Float32Array, got undefined/],
    ['a moment of the wrong length', { ...checkpoint, optimizer: { ...optimizer, expAvgSq: new Float32Array(3) } }, RangeError, /optimizer.expAvgSq has length 3 but the weights in optimizer.names hold 2 values/],
    ['a moment not float32', { ...checkpoint, optimizer: { ...optimizer, expAvg: [0, 0] } }, TypeError, /optimizer.expAvg must be a Float32Array, got an array/],
    ['hyperparameters not JSON-serializable', { ...checkpoint, optimizer: { ...optimizer, lr: 1n } }, TypeError, /optimizer must be JSON-serializable/],
  ];
  for (const [name, input, ErrorClass, pattern] of cases) {
    test(name, () => throwsLike(() => encodeCheckpoint(input), ErrorClass, pattern));
  }
  test('the checkpoint these cases start from encodes', () => {
    assert.equal(decodeCheckpoint(encodeCheckpoint(checkpoint)).step, 1);
  });
});
