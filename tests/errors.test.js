// errors.test.js: bad input gets a TypeError or RangeError naming the parameter, the module
// stays usable afterwards, and no wasm memory leaks.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadRope } from '../js/index.js';

let rw;
before(async () => {
  rw = await loadRope();
});

const shape = [4, 1, 2, 8];
const x = new Float32Array(4 * 2 * 8).fill(0.5);

/** Asserts fn throws ErrorClass with a message matching pattern, then that the module still works. */
function rejects(fn, ErrorClass, pattern) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof ErrorClass, `expected ${ErrorClass.name}, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
  const rope = rw.rotaryEmbedding({ dim: 8 });
  const y = rope.apply(x, { shape, offset: 1 });
  assert.ok(y.every(Number.isFinite) && y.some((v) => v !== 0.5), 'the module still computes after the error');
  rope.dispose();
}

describe('bad input to rotaryEmbedding', () => {
  const cases = [
    ['odd dim', { dim: 3 }, RangeError, /dim must be even/],
    ['zero dim', { dim: 0 }, RangeError, /dim must be in \[1/],
    ['negative dim', { dim: -4 }, RangeError, /dim/],
    ['non-integer dim', { dim: 4.5 }, RangeError, /dim must be an integer/],
    ['string dim', { dim: '4' }, TypeError, /dim must be an integer/],
    ['missing dim', {}, TypeError, /dim must be an integer/],
    ['base 0', { dim: 4, base: 0 }, RangeError, /base must be > 0/],
    ['base NaN', { dim: 4, base: NaN }, RangeError, /base must be finite/],
    ['unknown pairing', { dim: 4, pairing: 'zigzag' }, RangeError, /pairing must be one of 'half', 'interleaved'/],
    ['unknown option', { dim: 4, theta: 10 }, TypeError, /unknown option 'theta'/],
    ['unknown scaling type', { dim: 4, scaling: { type: 'ntk' } }, RangeError, /scaling.type must be one of/],
    ['scaling without type', { dim: 4, scaling: {} }, TypeError, /scaling.type/],
    ['scaling not an object', { dim: 4, scaling: 'linear' }, TypeError, /scaling must be an object/],
    ['linear without factor', { dim: 4, scaling: { type: 'linear' } }, TypeError, /scaling.factor is required/],
    ['linear factor NaN', { dim: 4, scaling: { type: 'linear', factor: NaN } }, RangeError, /scaling.factor must be finite/],
    ['unknown scaling key', { dim: 4, scaling: { type: 'linear', factor: 2, beta: 1 } }, TypeError, /unknown option 'beta'/],
    ['dynamic with dim 2', { dim: 2, scaling: { type: 'dynamic', factor: 2, originalMaxPositions: 16 } }, RangeError, /dim > 2/],
    ['llama3 high <= low', { dim: 8, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 4, highFreqFactor: 1, originalMaxPositions: 8192 } }, RangeError, /highFreqFactor/],
    ['longrope factors of the wrong length', { dim: 8, scaling: { type: 'longrope', shortFactor: [1, 1], longFactor: [1, 1, 1, 1], originalMaxPositions: 10, maxPositions: 20 } }, RangeError, /scaling.shortFactor must have length 4/],
    ['longrope factor 0', { dim: 4, scaling: { type: 'longrope', shortFactor: [1, 0], longFactor: [1, 1], originalMaxPositions: 10, maxPositions: 20 } }, RangeError, /scaling.shortFactor\[1\] must be > 0/],
  ];
  for (const [name, options, ErrorClass, pattern] of cases) {
    test(name, () => rejects(() => rw.rotaryEmbedding(options), ErrorClass, pattern));
  }
  test('no options at all', () => rejects(() => rw.rotaryEmbedding(), TypeError, /dim/));
});

describe('bad input to apply', () => {
  const rope8 = () => rw.rotaryEmbedding({ dim: 8 });
  const cases = [
    ['x not a Float32Array', () => rope8().apply([1, 2], { shape }), TypeError, /x must be a Float32Array/],
    ['x a Float64Array', () => rope8().apply(new Float64Array(64), { shape }), TypeError, /x must be a Float32Array/],
    ['wrong x length', () => rope8().apply(new Float32Array(63), { shape }), RangeError, /x has length 63 but shape \[4, 1, 2, 8\] needs 64/],
    ['dim larger than head_dim', () => rw.rotaryEmbedding({ dim: 16 }).apply(x, { shape }), RangeError, /dim \(16\) is larger than head_dim/],
    ['unknown layout', () => rope8().apply(x, { shape, layout: 'hsbd' }), RangeError, /layout must be one of 'sbhd', 'bshd', 'bhsd'/],
    ['missing shape', () => rope8().apply(x, {}), TypeError, /shape must be an array of 4 sizes/],
    ['no options', () => rope8().apply(x), TypeError, /options/],
    ['shape of 3 sizes', () => rope8().apply(x, { shape: [4, 2, 8] }), RangeError, /shape must have 4 sizes/],
    ['negative shape size', () => rope8().apply(x, { shape: [-4, -1, 2, 8] }), RangeError, /shape\[0\] must be in \[0/],
    ['non-integer shape size', () => rope8().apply(x, { shape: [4, 1, 2.5, 8] }), RangeError, /shape\[2\] must be an integer/],
    ['shape too large for memory', () => rope8().apply(x, { shape: [65536, 65536, 16, 8] }), RangeError, /at most 2\^30 fit/],
    ['unknown option', () => rope8().apply(x, { shape, position: [1] }), TypeError, /unknown option 'position'/],
    ['non-integer position', () => rope8().apply(x, { shape, positions: [0, 1, 2.5, 3] }), RangeError, /positions\[2\] must be an integer/],
    ['NaN position', () => rope8().apply(x, { shape, positions: [0, NaN, 2, 3] }), RangeError, /positions\[1\] must be an integer, got NaN/],
    ['position beyond int32', () => rope8().apply(x, { shape, positions: [0, 1, 2, 2 ** 31] }), RangeError, /positions\[3\] must be in/],
    ['positions of the wrong length', () => rope8().apply(x, { shape, positions: new Int32Array(5) }), RangeError, /positions has length 5; expected seq \(4\) or batch \* seq \(4\)/],
    ['positions not an array', () => rope8().apply(x, { shape, positions: 7 }), TypeError, /positions must be an Int32Array/],
    ['NaN offset', () => rope8().apply(x, { shape, offset: NaN }), RangeError, /offset must be an integer, got NaN/],
    ['non-integer offset', () => rope8().apply(x, { shape, offset: 0.5 }), RangeError, /offset must be an integer/],
    ['offset + seq beyond int32', () => rope8().apply(x, { shape, offset: 2 ** 31 - 2 }), RangeError, /offset \+ seq/],
    ['offset and positions together', () => rope8().apply(x, { shape, offset: 3, positions: [0, 1, 2, 3] }), TypeError, /either offset or positions/],
    ['inverse not a boolean', () => rope8().apply(x, { shape, inverse: 1 }), TypeError, /inverse must be a boolean/],
    ['out of the wrong length', () => rope8().apply(x, { shape, out: new Float32Array(8) }), RangeError, /out has length 8; expected 64/],
    ['out of the wrong type', () => rope8().apply(x, { shape, out: [] }), TypeError, /out must be a Float32Array/],
    ['use after dispose', () => { const r = rope8(); r.dispose(); r.apply(x, { shape }); }, TypeError, /disposed/],
    ['a disposed tensor', () => { const t = rw.tensor(64); t.dispose(); rope8().apply(t, { shape }); }, TypeError, /disposed/],
  ];
  for (const [name, fn, ErrorClass, pattern] of cases) {
    test(name, () => rejects(fn, ErrorClass, pattern));
  }

  test('a tensor of another instance', async () => {
    const other = await loadRope();
    const t = other.tensor(64);
    rejects(() => rw.rotaryEmbedding({ dim: 8 }).apply(t, { shape }), TypeError, /another rope-wasm instance/);
    t.dispose();
  });
});

describe('bad input to tensor and loadRope', () => {
  test('tensor too large for memory', () => rejects(() => rw.tensor(2 ** 31), RangeError, /length must be in \[0, 1073741823\]/));
  test('tensor larger than what memory can still give', () => rejects(() => rw.tensor(2 ** 30 - 1), RangeError, /cannot allocate 4294967292 bytes/));
  test('negative tensor length', () => rejects(() => rw.tensor(-1), RangeError, /length/));
  test('loadRope with an unknown option', async () => {
    await assert.rejects(loadRope({ threads: 2 }), (e) => e instanceof TypeError && /unknown option 'threads'/.test(e.message));
  });
});

describe('no wasm memory leaks', () => {
  test('the heap returns to its level after 10,000 calls, good and bad', () => {
    const rope = rw.rotaryEmbedding({ dim: 8, scaling: { type: 'longrope', shortFactor: [1, 1, 1, 1], longFactor: [2, 2, 2, 2], originalMaxPositions: 50, maxPositions: 100 } });
    const t = rw.tensor(64);
    const run = (i) => {
      rope.apply(x, { shape, offset: i % 100 });
      rope.apply(t, { shape, positions: [i % 7, 1, 2, -(i % 50)], out: t });
      try {
        rope.apply(x, { shape, positions: [0, 1, NaN, 3] });
      } catch {}
      try {
        rw.rotaryEmbedding({ dim: 8, pairing: 'zigzag' });
      } catch {}
      rw.rotaryEmbedding({ dim: 4, scaling: { type: 'yarn', factor: 2, originalMaxPositions: 64 } }).dispose();
    };
    for (let i = 0; i < 200; i++) run(i);  // warm up: the cos/sin table and scratch reach their size
    const level = rw.heapInUse();
    for (let i = 0; i < 10_000; i++) run(i);
    assert.equal(rw.heapInUse(), level, 'heap in use changed over 10,000 calls');
    t.dispose();
    rope.dispose();
  });

  test('dispose gives every byte back', () => {
    const level = rw.heapInUse();
    const rope = rw.rotaryEmbedding({ dim: 64 });
    rope.apply(new Float32Array(1000 * 64), { shape: [1000, 1, 1, 64] });
    const t = rw.tensor(12345);
    assert.ok(rw.heapInUse() > level);
    rope.dispose();
    t.dispose();
    assert.equal(rw.heapInUse(), level);
  });
});
