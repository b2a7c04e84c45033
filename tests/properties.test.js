// properties.test.js: what RoPE must satisfy on random inputs, checked against the float64
// reference of helpers/rope-f64.js: relative-position invariance of q.k, norm preservation,
// inverse, pass-through, positions, layouts, scaling state, builds, zero-copy tensors.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadRope } from '../js/index.js';
import {
  defaultFrequencies, layoutIndex, maxAbs, maxAbsDiff, randomArray, randomGenerator, ropeF64, scaledFrequencies,
} from './helpers/rope-f64.js';

let rw;
let scalar;
before(async () => {
  rw = await loadRope();
  scalar = await loadRope({ simd: false });
});

const dot = (a, b) => a.reduce((sum, v, i) => sum + v * b[i], 0);

/** Transposes x of `shape` in layout `from` into layout `to`. */
function relayout(x, shape, from, to) {
  const src = layoutIndex(from, shape);
  const { seq, batch, heads } = src;
  const d = shape[3];
  const toShape = to === 'sbhd' ? [seq, batch, heads, d] : to === 'bshd' ? [batch, seq, heads, d] : [batch, heads, seq, d];
  const dst = layoutIndex(to, toShape);
  const y = new Float32Array(x.length);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seq; s++) {
      for (let h = 0; h < heads; h++) y.set(x.subarray(src.at(b, s, h), src.at(b, s, h) + d), dst.at(b, s, h));
    }
  }
  return { y, shape: toShape };
}

describe('RoPE properties on random inputs', () => {
  test('q.k depends only on m - n: apply(q, m).apply(k, n) = apply(q, m+t).apply(k, n+t)', () => {
    const random = randomGenerator(1);
    for (const pairing of ['half', 'interleaved']) {
      for (const [headDim, dim] of [[64, 64], [128, 128], [64, 32], [6, 6]]) {
        const rope = rw.rotaryEmbedding({ dim, pairing });
        for (const [m, n, t] of [[0, 0, 5], [3, 17, 100], [1000, 10, 4096], [5, 900, 1_000_000], [-50, 20, 7]]) {
          const q = randomArray(headDim, random);
          const k = randomArray(headDim, random);
          const shape = [1, 1, 1, headDim];
          const a = dot(rope.apply(q, { shape, offset: m }), rope.apply(k, { shape, offset: n }));
          const b = dot(rope.apply(q, { shape, offset: m + t }), rope.apply(k, { shape, offset: n + t }));
          const norm = Math.sqrt(dot(q, q) * dot(k, k));
          assert.ok(Math.abs(a - b) <= 1e-5 * norm, `${pairing} d=${dim} m=${m} n=${n} t=${t}: ${a} vs ${b}`);
        }
        rope.dispose();
      }
    }
  });

  test('rotation keeps the norm of every pair; inverse(apply(x)) = x; pass-through is bit-identical', () => {
    const random = randomGenerator(2);
    for (const pairing of ['half', 'interleaved']) {
      const [seq, batch, heads, headDim, dim] = [37, 2, 3, 40, 26];
      const shape = [seq, batch, heads, headDim];
      const x = randomArray(seq * batch * heads * headDim, random);
      const rope = rw.rotaryEmbedding({ dim, pairing, base: 500 });
      const y = rope.apply(x, { shape, offset: 123 });
      const half = dim / 2;
      for (let v = 0; v < seq * batch * heads; v++) {
        const o = v * headDim;
        for (let i = 0; i < half; i++) {
          const [i1, i2] = pairing === 'half' ? [i, i + half] : [2 * i, 2 * i + 1];
          const before = Math.hypot(x[o + i1], x[o + i2]);
          const after = Math.hypot(y[o + i1], y[o + i2]);
          assert.ok(Math.abs(before - after) <= 1e-6 * Math.max(1, before), `pair norm ${before} -> ${after}`);
        }
        for (let i = dim; i < headDim; i++) assert.ok(Object.is(y[o + i], x[o + i]), 'pass-through feature changed');
      }
      const back = rope.apply(y, { shape, offset: 123, inverse: true });
      assert.ok(maxAbsDiff(back, x) <= 1e-6, `inverse(apply(x)) differs from x by ${maxAbsDiff(back, x)}`);
      rope.dispose();
    }
  });

  test('matches the float64 formula at large and negative positions (float32 rounding only)', () => {
    const random = randomGenerator(3);
    for (const pairing of ['half', 'interleaved']) {
      const dim = 128;
      const rope = rw.rotaryEmbedding({ dim, pairing });
      for (const offset of [0, 4095, 1_000_000, 100_000_000, -1_000_000]) {
        const shape = [8, 1, 2, dim];
        const x = randomArray(8 * 2 * dim, random);
        const y = rope.apply(x, { shape, offset });
        const truth = ropeF64(x, { shape, dim, pairing, invFreq: defaultFrequencies(dim, 10000), positionOf: (b, s) => offset + s });
        const err = maxAbsDiff(y, truth);
        assert.ok(err <= 1e-6 * maxAbs(truth), `${pairing} offset ${offset}: error ${err}`);
      }
      rope.dispose();
    }
  });

  test('offset and explicit positions agree; per-batch positions (left padding) match the formula', () => {
    const random = randomGenerator(4);
    const [seq, batch, heads, dim] = [9, 3, 2, 16];
    const shape = [batch, seq, heads, dim];
    const x = randomArray(seq * batch * heads * dim, random);
    const rope = rw.rotaryEmbedding({ dim });
    const viaOffset = rope.apply(x, { shape, layout: 'bshd', offset: 40 });
    const viaPositions = rope.apply(x, { shape, layout: 'bshd', positions: Int32Array.from({ length: seq }, (_, s) => 40 + s) });
    assert.deepEqual(viaPositions, viaOffset);
    // Left padding: batch row b starts 3b tokens late, padding tokens at position 0.
    const positions = new Int32Array(batch * seq);
    for (let b = 0; b < batch; b++) for (let s = 0; s < seq; s++) positions[b * seq + s] = Math.max(0, s - 3 * b);
    const y = rope.apply(x, { shape, layout: 'bshd', positions });
    const truth = ropeF64(x, { shape, layout: 'bshd', dim, invFreq: defaultFrequencies(dim, 10000), positionOf: (b, s) => positions[b * seq + s] });
    assert.ok(maxAbsDiff(y, truth) <= 1e-6 * maxAbs(truth));
    // A plain array of integers works like an Int32Array.
    assert.deepEqual(rope.apply(x, { shape, layout: 'bshd', positions: Array.from(positions) }), y);
    rope.dispose();
  });

  test('all three layouts give the same rotation', () => {
    const random = randomGenerator(5);
    for (const pairing of ['half', 'interleaved']) {
      const [seq, batch, heads, headDim, dim] = [11, 2, 3, 24, 16];
      const shape = [seq, batch, heads, headDim];
      const x = randomArray(seq * batch * heads * headDim, random);
      const rope = rw.rotaryEmbedding({ dim, pairing });
      const ySbhd = rope.apply(x, { shape, layout: 'sbhd', offset: 7 });
      for (const layout of ['bshd', 'bhsd']) {
        const moved = relayout(x, shape, 'sbhd', layout);
        const y = rope.apply(moved.y, { shape: moved.shape, layout, offset: 7 });
        assert.deepEqual(relayout(y, moved.shape, layout, 'sbhd').y, ySbhd, `${pairing} ${layout}`);
      }
      rope.dispose();
    }
  });

  test('the SIMD and scalar builds agree bit for bit', () => {
    assert.equal(rw.simd, true);
    assert.equal(scalar.simd, false);
    const random = randomGenerator(6);
    for (const pairing of ['half', 'interleaved']) {
      for (const dim of [2, 6, 8, 30, 128]) {
        const shape = [2, 5, 3, dim + 4];
        const x = randomArray(2 * 5 * 3 * (dim + 4), random);
        const a = rw.rotaryEmbedding({ dim, pairing });
        const b = scalar.rotaryEmbedding({ dim, pairing });
        for (const inverse of [false, true]) {
          assert.deepEqual(a.apply(x, { shape, layout: 'bhsd', offset: 3000, inverse }),
            b.apply(x, { shape, layout: 'bhsd', offset: 3000, inverse }), `${pairing} dim ${dim} inverse ${inverse}`);
        }
        a.dispose();
        b.dispose();
      }
    }
  });

  test('the cos/sin table is reused and extended, never recomputed', () => {
    const rope = rw.rotaryEmbedding({ dim: 8 });
    const x = new Float32Array(200 * 8);
    rope.apply(x.subarray(0, 100 * 8), { shape: [100, 1, 1, 8] });
    assert.deepEqual(rope.cacheInfo, { first: 0, rows: 100, rowsComputed: 100 });
    rope.apply(x.subarray(0, 100 * 8), { shape: [100, 1, 1, 8] });
    assert.equal(rope.cacheInfo.rowsComputed, 100, 'a repeated call computed rows again');
    rope.apply(x, { shape: [200, 1, 1, 8] });
    assert.deepEqual(rope.cacheInfo, { first: 0, rows: 200, rowsComputed: 200 });
    rope.apply(x.subarray(0, 10 * 8), { shape: [10, 1, 1, 8], offset: -10 });
    assert.deepEqual(rope.cacheInfo, { first: -10, rows: 210, rowsComputed: 210 });
    // Decoding one token at a time extends the table by one row per step.
    for (let t = 200; t < 264; t++) rope.apply(x.subarray(0, 8), { shape: [1, 1, 1, 8], offset: t });
    assert.deepEqual(rope.cacheInfo, { first: -10, rows: 274, rowsComputed: 274 });
    rope.dispose();
  });

  test('positions too spread out to cache are still exact', () => {
    const rope = rw.rotaryEmbedding({ dim: 16 });
    const positions = new Int32Array([-2_000_000_000, 5, 2_000_000_000]);
    const x = randomArray(3 * 16, randomGenerator(7));
    const y = rope.apply(x, { shape: [3, 1, 1, 16], positions });
    const truth = ropeF64(x, { shape: [3, 1, 1, 16], dim: 16, invFreq: defaultFrequencies(16, 10000), positionOf: (b, s) => positions[s] });
    assert.ok(maxAbsDiff(y, truth) <= 1e-6 * maxAbs(truth));
    rope.dispose();
  });

  test('dynamic NTK scaling follows transformers: grows with the longest position, resets within the original context', () => {
    const dim = 32;
    const scaling = { type: 'dynamic', factor: 4, originalMaxPositions: 64 };
    const rope = rw.rotaryEmbedding({ dim, scaling });
    const close = (a, b) => a.every((v, i) => Math.abs(v - b[i]) <= 1e-14 * b[i]);
    assert.ok(close(rope.inverseFrequencies, defaultFrequencies(dim, 10000)), 'starts at the default frequencies');
    const x = randomArray(200 * dim, randomGenerator(8));
    const y = rope.apply(x, { shape: [200, 1, 1, dim] });
    const grown = scaledFrequencies(dim, 10000, scaling, 200);
    assert.ok(close(rope.inverseFrequencies, grown.invFreq), 'grows the base for 200 positions');
    const truth = ropeF64(x, { shape: [200, 1, 1, dim], dim, invFreq: grown.invFreq });
    assert.ok(maxAbsDiff(y, truth) <= 1e-6 * maxAbs(truth));
    rope.apply(x.subarray(0, 100 * dim), { shape: [100, 1, 1, dim] });
    assert.ok(close(rope.inverseFrequencies, grown.invFreq), 'a shorter call beyond the original context keeps them');
    rope.apply(x.subarray(0, 10 * dim), { shape: [10, 1, 1, dim] });
    assert.ok(close(rope.inverseFrequencies, defaultFrequencies(dim, 10000)), 'a call within the original context resets them');
    rope.dispose();
  });

  test('yarn with mscale/mscaleAllDim and an explicit attentionFactor, against the formula', () => {
    const dim = 64;
    for (const scaling of [
      { type: 'yarn', factor: 40, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 0.707 },
      { type: 'yarn', factor: 4, originalMaxPositions: 2048, attentionFactor: 1.5, truncate: false },
    ]) {
      const rope = rw.rotaryEmbedding({ dim, scaling });
      const ref = scaledFrequencies(dim, 10000, scaling);
      assert.ok(Math.abs(rope.attentionScaling - ref.attentionScaling) <= 1e-12);
      rope.inverseFrequencies.forEach((v, i) => assert.ok(Math.abs(v - ref.invFreq[i]) <= 1e-14 * ref.invFreq[i]));
      const x = randomArray(50 * dim, randomGenerator(9));
      const y = rope.apply(x, { shape: [50, 1, 1, dim], offset: 8000 });
      const truth = ropeF64(x, { shape: [50, 1, 1, dim], dim, ...ref, positionOf: (b, s) => 8000 + s });
      assert.ok(maxAbsDiff(y, truth) <= 1e-6 * maxAbs(truth));
      rope.dispose();
    }
  });
});

describe('zero-copy tensors and out', () => {
  test('apply on rw.tensor in place equals the Float32Array path, and out receives the result', () => {
    const shape = [1, 32, 64, 128];
    const n = 32 * 64 * 128;
    const x = randomArray(n, randomGenerator(10));
    const rope = rw.rotaryEmbedding({ dim: 128 });
    const expected = rope.apply(x, { shape, layout: 'bhsd', offset: 5 });
    const t = rw.tensor(n);
    t.data.set(x);
    assert.equal(rope.apply(t, { shape, layout: 'bhsd', offset: 5, out: t }), t);
    assert.deepEqual(t.data, expected);
    // Out of place from a tensor into another tensor, and into a Float32Array.
    const u = rw.tensor(n);
    rope.apply(t, { shape, layout: 'bhsd', offset: 5, out: u, inverse: true });
    assert.ok(maxAbsDiff(u.data, x) <= 1e-6);
    const out = new Float32Array(n);
    assert.equal(rope.apply(x, { shape, layout: 'bhsd', offset: 5, out }), out);
    assert.deepEqual(out, expected);
    // out === x: in place on a JS array.
    const inPlace = Float32Array.from(x);
    rope.apply(inPlace, { shape, layout: 'bhsd', offset: 5, out: inPlace });
    assert.deepEqual(inPlace, expected);
    t.dispose();
    u.dispose();
    rope.dispose();
  });

  test('large arrays stream through wasm memory in chunks that split rows of vectors anywhere', () => {
    // 4,200 head vectors of 40 floats: chunks of 1,638 vectors end mid-row in every layout.
    const random = randomGenerator(12);
    const [batch, seq, heads, headDim, dim] = [3, 700, 2, 40, 32];
    const x = randomArray(batch * seq * heads * headDim, random);
    const positions = Int32Array.from({ length: batch * seq }, () => Math.floor(random() * 5000));
    const rope = rw.rotaryEmbedding({ dim, pairing: 'interleaved' });
    for (const layout of ['sbhd', 'bshd', 'bhsd']) {
      const shape = layout === 'sbhd' ? [seq, batch, heads, headDim] : layout === 'bshd' ? [batch, seq, heads, headDim] : [batch, heads, seq, headDim];
      const truth = ropeF64(x, { shape, layout, dim, pairing: 'interleaved', invFreq: defaultFrequencies(dim, 10000), positionOf: (b, s) => positions[b * seq + s] });
      const y = rope.apply(x, { shape, layout, positions });
      assert.ok(maxAbsDiff(y, truth) <= 1e-6 * maxAbs(truth), layout);
      // From a tensor into an array, and in place in an array: the same bits.
      const t = rw.tensor(x.length);
      t.data.set(x);
      assert.deepEqual(rope.apply(t, { shape, layout, positions, out: new Float32Array(x.length) }), y);
      const inPlace = Float32Array.from(x);
      rope.apply(inPlace, { shape, layout, positions, out: inPlace });
      assert.deepEqual(inPlace, y);
      t.dispose();
    }
    rope.dispose();
  });

  test('tensor.data stays valid across memory growth', () => {
    const t = rw.tensor(1000);
    t.data.set(randomArray(1000, randomGenerator(11)));
    const before = Float32Array.from(t.data);
    const memoryBefore = rw.memoryBytes;
    const big = rw.tensor(64 * 1024 * 1024);  // 256 MiB: forces the memory to grow
    assert.ok(rw.memoryBytes > memoryBefore, 'memory grew');
    assert.deepEqual(t.data, before);
    assert.equal(t.data.buffer, rw.exports.memory.buffer, 'data is a view of the current buffer');
    big.dispose();
    t.dispose();
    assert.throws(() => t.data, TypeError);
  });
});
