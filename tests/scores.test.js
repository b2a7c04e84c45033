// scores.test.js: rope.scores, the RoPE score matrix computed by the module (c/rope_scores.h),
// against the float64 truth of helpers/rope-f64.js: pairings, pass-through features, positions,
// scale, scalings, relative-position invariance, the two builds, tensors, and bad input.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadRope } from '../js/index.js';
import { defaultFrequencies, randomArray, randomGenerator, ropeF64 } from './helpers/rope-f64.js';

let rw;
let scalar;
before(async () => {
  rw = await loadRope();
  scalar = await loadRope({ simd: false });
});

/**
 * S[i][j] = scale * rope(q_i, pq[i]) . rope(k_j, pk[j]) in float64, each vector rotated by the
 * reference, and the bound |q_i| |k_j| s^2 |scale| each score's error is measured against.
 */
function scoresF64(q, k, { headDim, dim, pairing, invFreq, attentionScaling = 1, positionsQ, positionsK, scale = 1 }) {
  const nQ = q.length / headDim;
  const nK = k.length / headDim;
  const rotate = (x, n, positions) => ropeF64(x, {
    shape: [n, 1, 1, headDim], layout: 'sbhd', dim, invFreq, attentionScaling, pairing,
    positionOf: (b, s) => (positions ? positions[s] : s),
  });
  const rq = rotate(q, nQ, positionsQ);
  const rk = rotate(k, nK, positionsK);
  const norm = (x, r) => Math.sqrt(x.subarray(r * headDim, (r + 1) * headDim).reduce((s, v) => s + v * v, 0));
  const S = new Float64Array(nQ * nK);
  const bound = new Float64Array(nQ * nK);
  for (let i = 0; i < nQ; i++) {
    for (let j = 0; j < nK; j++) {
      let s = 0;
      for (let f = 0; f < headDim; f++) s += rq[i * headDim + f] * rk[j * headDim + f];
      S[i * nK + j] = s * scale;
      bound[i * nK + j] = norm(q, i) * norm(k, j) * attentionScaling ** 2 * Math.abs(scale) + 1e-30;
    }
  }
  return { S, bound };
}

/** max |got - S| / bound. */
function relativeError(got, { S, bound }) {
  assert.equal(got.length, S.length);
  let worst = 0;
  for (let c = 0; c < S.length; c++) {
    const e = Math.abs(got[c] - S[c]) / bound[c];
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

const randomPositions = (n, spread, random) => Int32Array.from({ length: n }, () => Math.trunc(random() * spread));

describe('rope.scores against the float64 reference', () => {
  test('pairings, rotary dims, pass-through features, positions, scale', () => {
    const random = randomGenerator(11);
    for (const pairing of ['half', 'interleaved']) {
      for (const [dim, headDim] of [[2, 2], [6, 9], [16, 16], [32, 64], [64, 64], [128, 128], [64, 80]]) {
        for (const [nQ, nK, spread, scale] of [[1, 1, 100, 1], [3, 5, 1000, 0.125], [8, 13, 3_000_000, 1]]) {
          const rope = rw.rotaryEmbedding({ dim, pairing, base: 10000 });
          const q = randomArray(nQ * headDim, random);
          const k = randomArray(nK * headDim, random);
          const positionsQ = randomPositions(nQ, spread, random);
          const positionsK = randomPositions(nK, spread, random);
          const got = rope.scores(q, k, { headDim, positionsQ, positionsK, scale });
          assert.ok(got instanceof Float32Array);
          const truth = scoresF64(q, k, { headDim, dim, pairing, invFreq: defaultFrequencies(dim, 10000), positionsQ, positionsK, scale });
          const error = relativeError(got, truth);
          assert.ok(error < 2e-6, `${pairing} dim ${dim} head_dim ${headDim} [${nQ}, ${nK}]: relative error ${error}`);
          rope.dispose();
        }
      }
    }
  });

  test('positions default to 0, 1, 2, ...; plain arrays of positions work', () => {
    const random = randomGenerator(12);
    const rope = rw.rotaryEmbedding({ dim: 8, base: 500 });
    const q = randomArray(5 * 12, random);
    const k = randomArray(7 * 12, random);
    const byDefault = rope.scores(q, k, { headDim: 12 });
    const explicit = rope.scores(q, k, { headDim: 12, positionsQ: [0, 1, 2, 3, 4], positionsK: Int32Array.from([0, 1, 2, 3, 4, 5, 6]) });
    assert.deepEqual(byDefault, explicit);
    const truth = scoresF64(q, k, { headDim: 12, dim: 8, pairing: 'half', invFreq: defaultFrequencies(8, 500) });
    assert.ok(relativeError(byDefault, truth) < 2e-6);
    rope.dispose();
  });

  test('each scaling rotates queries and keys with the frequencies it reports, the same for both', () => {
    const random = randomGenerator(13);
    const dim = 32;
    const headDim = 40;
    const half = dim / 2;
    const scalings = [
      { type: 'linear', factor: 4 },
      { type: 'dynamic', factor: 4, originalMaxPositions: 512 },
      { type: 'yarn', factor: 8, originalMaxPositions: 512 },
      { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 512 },
      { type: 'longrope', shortFactor: Array(half).fill(1), longFactor: Array.from({ length: half }, (_, i) => 1 + i / 2),
        originalMaxPositions: 512, maxPositions: 4096 },
    ];
    // Queries past the original context, keys within it: dynamic NTK and LongRoPE switch for the
    // call as a whole.
    const positionsQ = Int32Array.from([10, 300, 700, 1500, 2047]);
    const positionsK = Int32Array.from([0, 1, 2, 3, 4, 5]);
    for (const scaling of scalings) {
      const rope = rw.rotaryEmbedding({ dim, scaling });
      const plain = rw.rotaryEmbedding({ dim }).inverseFrequencies;
      const q = randomArray(5 * headDim, random);
      const k = randomArray(6 * headDim, random);
      const got = rope.scores(q, k, { headDim, positionsQ, positionsK });
      const truth = scoresF64(q, k, {
        headDim, dim, pairing: 'half', invFreq: rope.inverseFrequencies, attentionScaling: rope.attentionScaling, positionsQ, positionsK,
      });
      assert.ok(relativeError(got, truth) < 2e-6, `${scaling.type}: relative error ${relativeError(got, truth)}`);
      if (scaling.type !== 'linear') assert.ok(rope.inverseFrequencies[half - 1] < plain[half - 1], `${scaling.type} slowed the slowest pair`);
      rope.dispose();
    }
  });

  test('the score depends only on m − n (constant to 1e-5), and a key alone scores as among others', () => {
    const random = randomGenerator(14);
    const rope = rw.rotaryEmbedding({ dim: 64 });
    const q = Float32Array.from({ length: 64 }, () => random() * 2);
    const k = Float32Array.from(q, (v) => 0.8 * v + 0.6 * random());
    const first = rope.scores(q, k, { headDim: 64, positionsQ: [40], positionsK: [25] })[0];
    for (const t of [1, 7, 100, 4000, 1_000_000, -20]) {
      const s = rope.scores(q, k, { headDim: 64, positionsQ: [40 + t], positionsK: [25 + t] })[0];
      assert.ok(Math.abs(s - first) <= 1e-5, `shift ${t}: ${s} vs ${first}`);
    }
    // The page's readout (one query, one key) and its heatmap (every query, every key) agree bit
    // for bit, whichever kernel loop a key lands in.
    const positions = Int32Array.from({ length: 11 }, (_, i) => i * 3);
    const Q = new Float32Array(11 * 64);
    const K = new Float32Array(11 * 64);
    for (let i = 0; i < 11; i++) {
      Q.set(q, i * 64);
      K.set(k, i * 64);
    }
    const heat = rope.scores(Q, K, { headDim: 64, positionsQ: positions, positionsK: positions });
    for (const [i, j] of [[0, 0], [4, 9], [10, 10], [3, 8]]) {
      const one = rope.scores(q, k, { headDim: 64, positionsQ: [positions[i]], positionsK: [positions[j]] })[0];
      assert.equal(one, heat[i * 11 + j], `cell ${i}, ${j}`);
    }
    rope.dispose();
  });

  test('the SIMD and scalar builds agree bit for bit', () => {
    const random = randomGenerator(15);
    for (const pairing of ['half', 'interleaved']) {
      const a = rw.rotaryEmbedding({ dim: 48, pairing });
      const b = scalar.rotaryEmbedding({ dim: 48, pairing });
      const q = randomArray(9 * 50, random);
      const k = randomArray(6 * 50, random);
      const options = { headDim: 50, positionsQ: randomPositions(9, 5000, random), positionsK: randomPositions(6, 5000, random), scale: 0.3 };
      assert.deepEqual(a.scores(q, k, options), b.scores(q, k, options));
      a.dispose();
      b.dispose();
    }
  });

  test('tensors in and out; out arrays; empty matrices; the inputs are not modified', () => {
    const random = randomGenerator(16);
    const rope = rw.rotaryEmbedding({ dim: 16 });
    const q = randomArray(4 * 16, random);
    const k = randomArray(3 * 16, random);
    const qCopy = q.slice();
    const expected = rope.scores(q, k, { headDim: 16, scale: 0.25 });
    assert.deepEqual(q, qCopy);
    const qt = rw.tensor(q.length);
    const kt = rw.tensor(k.length);
    const st = rw.tensor(12);
    qt.data.set(q);
    kt.data.set(k);
    assert.equal(rope.scores(qt, kt, { headDim: 16, scale: 0.25, out: st }), st);
    assert.deepEqual(st.data.slice(), expected);
    assert.deepEqual(qt.data.slice(), q);
    const out = new Float32Array(12);
    assert.equal(rope.scores(q, kt, { headDim: 16, scale: 0.25, out }), out);
    assert.deepEqual(out, expected);
    assert.deepEqual(rope.scores(new Float32Array(0), k, { headDim: 16 }), new Float32Array(0));
    assert.deepEqual(rope.scores(q, new Float32Array(0), { headDim: 16 }), new Float32Array(0));
    qt.dispose();
    kt.dispose();
    st.dispose();
    rope.dispose();
  });
});

describe('bad input to rope.scores', () => {
  const q = new Float32Array(2 * 8).fill(0.5);
  const k = new Float32Array(3 * 8).fill(0.25);

  /** fn throws ErrorClass with a message matching pattern; the module still computes afterwards. */
  function rejects(fn, ErrorClass, pattern) {
    assert.throws(fn, (e) => {
      assert.ok(e instanceof ErrorClass, `expected ${ErrorClass.name}, got ${e.constructor.name}: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
    const rope = rw.rotaryEmbedding({ dim: 8 });
    const s = rope.scores(q, k, { headDim: 8, positionsQ: [1, 2] });
    assert.ok(s.length === 6 && s.every(Number.isFinite), 'the module still computes after the error');
    rope.dispose();
  }

  test('each bad argument names itself, and nothing leaks', () => {
    const rope = rw.rotaryEmbedding({ dim: 8 });
    const other = scalar.tensor(16);
    const disposed = rw.tensor(16);
    disposed.dispose();
    const cases = [
      [() => rope.scores(q, k), TypeError, /scores: options \{headDim, \.\.\.\} are required/],
      [() => rope.scores(q, k, {}), TypeError, /headDim must be an integer/],
      [() => rope.scores(q, k, { headDim: 8, theta: 1 }), TypeError, /unknown option 'theta'/],
      [() => rope.scores(q, k, { headDim: 4.5 }), RangeError, /headDim must be an integer/],
      [() => rope.scores(q, k, { headDim: 0 }), RangeError, /headDim must be in \[1/],
      [() => rope.scores(q, k, { headDim: 6 }), RangeError, /dim \(8\) is larger than headDim \(6\)/],
      [() => rope.scores([0.5], k, { headDim: 8 }), TypeError, /q must be a Float32Array or a tensor/],
      [() => rope.scores(q, new Float64Array(8), { headDim: 8 }), TypeError, /k must be a Float32Array or a tensor/],
      [() => rope.scores(q.subarray(1), k, { headDim: 8 }), RangeError, /q has length 15, not a multiple of headDim \(8\)/],
      [() => rope.scores(q, k.subarray(2), { headDim: 8 }), RangeError, /k has length 22, not a multiple of headDim/],
      [() => rope.scores(other, k, { headDim: 8 }), TypeError, /q is a tensor of another rope-wasm instance/],
      [() => rope.scores(q, disposed, { headDim: 8 }), TypeError, /k is a disposed tensor/],
      [() => rope.scores(q, k, { headDim: 8, positionsQ: [1] }), RangeError, /positionsQ has length 1; expected one position per row \(2\)/],
      [() => rope.scores(q, k, { headDim: 8, positionsK: [1, 2, 2.5] }), RangeError, /positionsK\[2\] must be an integer/],
      [() => rope.scores(q, k, { headDim: 8, positionsK: [1, 2, 2 ** 31] }), RangeError, /positionsK\[2\] must be in/],
      [() => rope.scores(q, k, { headDim: 8, positionsQ: 'ab' }), TypeError, /positionsQ must be an Int32Array or an array of integers/],
      [() => rope.scores(q, k, { headDim: 8, scale: NaN }), RangeError, /scale must be finite/],
      [() => rope.scores(q, k, { headDim: 8, scale: '1' }), TypeError, /scale must be a number/],
      [() => rope.scores(q, k, { headDim: 8, out: new Float32Array(5) }), RangeError, /out has length 5; expected nQ \* nK = 6/],
      [() => rope.scores(q, k, { headDim: 8, out: [0, 0, 0, 0, 0, 0] }), TypeError, /out must be a Float32Array or a tensor/],
      [() => rope.scores(new Float32Array(2 ** 16 * 8), new Float32Array(2 ** 15 * 8), { headDim: 8 }), RangeError,
        /the scores \[65536, 32768\] have 2147483648 elements; at most 2\^30/],
    ];
    for (const [fn, ErrorClass, pattern] of cases) rejects(fn, ErrorClass, pattern);
    const t = rw.tensor(16);
    rejects(() => rope.scores(t, t, { headDim: 4, out: t }), RangeError, /dim \(8\) is larger than headDim/);
    const t6 = rw.tensor(6 * 8);
    rejects(() => rope.scores(t6, k.subarray(0, 8), { headDim: 8, out: t6 }), RangeError, /out has length 48; expected nQ \* nK = 6/);
    const square = rw.tensor(64);  // [8, 8] q against itself would be [8, 8]: the same length as q
    rejects(() => rope.scores(square, square, { headDim: 8, out: square }), RangeError, /out must not be q or k/);
    t.dispose();
    t6.dispose();
    square.dispose();
    other.dispose();
    rope.dispose();
    // Thousands of calls, good and bad, give back every byte they took (after a first call has
    // filled the embedding's cos/sin cache for these positions).
    const again = rw.rotaryEmbedding({ dim: 8 });
    again.scores(q, k, { headDim: 8, positionsQ: [7, 1000] });
    const before = rw.heapInUse();
    for (let i = 0; i < 2000; i++) {
      again.scores(q, k, { headDim: 8, positionsQ: [7 + (i % 900), 1000], scale: 0.5 });
      assert.throws(() => again.scores(q, k, { headDim: 8, scale: Infinity }));
    }
    assert.equal(rw.heapInUse(), before);
    again.dispose();
  });

  test('a disposed embedding refuses', () => {
    const rope = rw.rotaryEmbedding({ dim: 8 });
    rope.dispose();
    assert.throws(() => rope.scores(q, k, { headDim: 8 }), /this rotary embedding was disposed/);
  });
});
