// attention.test.js: rw.attention and rw.rotaryMultiHeadAttention against the reference cases of
// ../shared/reference (rope_sdpa, rope_mha) and against the float64 reference of
// helpers/attention-f64.js on random inputs; decoding consistency; bad input.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadRope } from '../js/index.js';
import { attentionF64, mhaF64 } from './helpers/attention-f64.js';
import { caseNames, loadCase, requireReference } from './helpers/reference.js';
import { maxAbs, maxAbsDiff, randomArray, randomGenerator } from './helpers/rope-f64.js';

const skip = requireReference();
let rw;
before(async () => {
  rw = await loadRope();
});

/** max |a - b| <= tol * max |b| (at least tol absolute, for all-zero references). */
function assertClose(actual, expected, tol, message) {
  const err = maxAbsDiff(actual, expected);
  const bound = tol * Math.max(maxAbs(expected), 1e-30);
  assert.ok(err <= bound, `${message}: max error ${err} > ${bound}`);
}

describe('conformance: RoPE + scaled dot-product attention (PyTorch float64)', { skip }, () => {
  for (const name of caseNames('sdpa_')) {
    test(name, () => {
      const c = loadCase(name);
      const [batch, heads, seq, headDim] = c.shapes.q;
      const rope = rw.rotaryEmbedding({ dim: c.d_rope, base: c.base, pairing: c.pairing });
      const out = rw.attention(c.arrays.q, c.arrays.k, c.arrays.v, {
        batch, heads, seqQ: seq, headDim, layout: 'bhsd', causal: c.causal, rope,
      });
      assertClose(out, c.arrays.out_f64, 1e-5, name);
      rope.dispose();
    });
  }
});

describe('conformance: the seed\'s RotaryPEMultiHeadAttention (PyTorch float64)', { skip }, () => {
  for (const name of caseNames('mha_')) {
    test(name, () => {
      const c = loadCase(name);
      const [seq, batch, dModel] = c.shapes.x;
      const a = c.arrays;
      const mha = rw.rotaryMultiHeadAttention({
        heads: c.heads, dModel, ropePercentage: c.rope_percentage, base: c.base,
        weights: {
          query: { weight: a.query_linear_weight, bias: a.query_linear_bias },
          key: { weight: a.key_linear_weight, bias: a.key_linear_bias },
          value: { weight: a.value_linear_weight, bias: a.value_linear_bias },
          output: { weight: a.output_weight, bias: a.output_bias },
        },
      });
      const y = mha.forward(a.x, { seq, batch, causal: c.causal });
      assertClose(y, a.y_f64, 1e-5, `${name} vs float64`);
      // The same through the seed's own mask form: [seq_q, seq_k, 1], 0 = masked.
      const mask = new Uint8Array(seq * seq);
      for (let i = 0; i < seq; i++) for (let j = 0; j <= i; j++) mask[i * seq + j] = 1;
      assert.deepEqual(mha.forward(a.x, { seq, batch, mask }), y);
      mha.dispose();
    });
  }
});

describe('attention against the float64 reference on random inputs', () => {
  const random = randomGenerator(21);
  const cases = [];
  for (const seq of [1, 7, 33, 257]) cases.push({ batch: 1, heads: 2, seqQ: seq, headDim: 64, causal: true });
  for (const headDim of [8, 24, 40, 64, 128, 256]) cases.push({ batch: 2, heads: 2, seqQ: 19, headDim, causal: false });
  for (const layout of ['bhsd', 'bshd', 'sbhd']) {
    for (const causal of [false, true]) cases.push({ batch: 2, heads: 3, seqQ: 13, headDim: 24, layout, causal });
  }
  cases.push({ batch: 1, heads: 4, seqQ: 5, seqK: 40, headDim: 32, causal: true });  // decoding 5 new tokens
  cases.push({ batch: 2, heads: 4, seqQ: 1, seqK: 65, headDim: 64, causal: true });  // one query
  cases.push({ batch: 1, heads: 8, kvHeads: 2, seqQ: 17, headDim: 40, causal: true, layout: 'bshd' });  // GQA
  cases.push({ batch: 2, heads: 8, kvHeads: 1, seqQ: 9, seqK: 30, headDim: 16, causal: true, layout: 'sbhd' });  // MQA
  cases.push({ batch: 1, heads: 2, seqQ: 12, seqK: 5, headDim: 8, causal: true });  // fully masked rows
  for (const ropeOptions of [{ dim: 64 }, { dim: 32, pairing: 'interleaved' }, { dim: 16, base: 500, scaling: { type: 'linear', factor: 4 } }]) {
    cases.push({ batch: 1, heads: 4, kvHeads: 2, seqQ: 21, seqK: 50, headDim: 64, causal: true, ropeOptions, offset: 1000 });
  }
  for (const options of cases) {
    const { ropeOptions, ...rest } = options;
    const label = JSON.stringify(options);
    test(label, () => {
      const o = { kvHeads: rest.heads, seqK: rest.seqQ, layout: 'bhsd', ...rest };
      const q = randomArray(o.batch * o.heads * o.seqQ * o.headDim, random);
      const k = randomArray(o.batch * o.kvHeads * o.seqK * o.headDim, random);
      const v = randomArray(o.batch * o.kvHeads * o.seqK * o.headDim, random);
      const rope = ropeOptions ? rw.rotaryEmbedding(ropeOptions) : undefined;
      const got = rw.attention(q, k, v, { ...rest, rope, returnWeights: true });
      const ref = attentionF64(q, k, v, {
        ...o,
        rope: rope && { dim: rope.dim, invFreq: rope.inverseFrequencies, attentionScaling: rope.attentionScaling, pairing: rope.pairing },
      });
      assertClose(got.output, ref.out, 1e-5, 'output');
      assertClose(got.weights, ref.weights, 1e-5, 'weights');
      // Every row's weights sum to 1, or are all 0 when the row sees no key.
      for (let row = 0; row < o.batch * o.heads * o.seqQ; row++) {
        const sum = got.weights.subarray(row * o.seqK, (row + 1) * o.seqK).reduce((a, b) => a + b, 0);
        const i = row % o.seqQ;
        const seesAKey = o.seqK > 0 && (!o.causal || i + o.seqK - o.seqQ >= 0);
        assert.ok(Math.abs(sum - (seesAKey ? 1 : 0)) <= 1e-5, `row ${row} weights sum to ${sum}`);
      }
      // Without weights the same output (a different code path: no seqQ x seqK matrix).
      assert.deepEqual(rw.attention(q, k, v, { ...rest, rope }), got.output);
      rope?.dispose();
    });
  }
});

describe('decoding', () => {
  test('one query at a time against a growing KV cache gives the rows of the full causal attention', () => {
    const random = randomGenerator(22);
    const [heads, seq, headDim] = [4, 24, 32];
    const q = randomArray(heads * seq * headDim, random);
    const k = randomArray(heads * seq * headDim, random);
    const v = randomArray(heads * seq * headDim, random);
    const rope = rw.rotaryEmbedding({ dim: headDim });
    // layout bshd: token t of every head is contiguous, so a prefix of tokens is a prefix of the array.
    const full = rw.attention(q, k, v, { batch: 1, heads, seqQ: seq, headDim, layout: 'bshd', causal: true, rope });
    const row = heads * headDim;
    for (let t = 0; t < seq; t++) {
      const step = rw.attention(q.subarray(t * row, (t + 1) * row), k.subarray(0, (t + 1) * row), v.subarray(0, (t + 1) * row), {
        batch: 1, heads, seqQ: 1, seqK: t + 1, headDim, layout: 'bshd', causal: true, rope,
      });
      assertClose(step, full.subarray(t * row, (t + 1) * row), 1e-6, `token ${t}`);
    }
    rope.dispose();
  });
});

describe('attention edge values', () => {
  test('NaN and Infinity propagate to the affected outputs, others stay finite', () => {
    const [seq, headDim] = [6, 8];
    const q = new Float32Array(seq * headDim).fill(0.1);
    const k = new Float32Array(seq * headDim).fill(0.2);
    const v = new Float32Array(seq * headDim).fill(0.3);
    v[3 * headDim + 2] = NaN;  // key 3's value: causal rows 3.. see it
    const out = rw.attention(q, k, v, { batch: 1, heads: 1, seqQ: seq, headDim, causal: true });
    for (let i = 0; i < seq; i++) {
      for (let d = 0; d < headDim; d++) {
        const value = out[i * headDim + d];
        if (i >= 3 && d === 2) assert.ok(Number.isNaN(value), `row ${i} col ${d} should be NaN`);
        else assert.ok(Number.isFinite(value), `row ${i} col ${d} should be finite, got ${value}`);
      }
    }
    const qNan = Float32Array.from(q);
    qNan[2 * headDim] = NaN;
    const out2 = rw.attention(qNan, k, v.fill(0.3), { batch: 1, heads: 1, seqQ: seq, headDim, causal: true });
    for (let i = 0; i < seq; i++) {
      const row = out2.subarray(i * headDim, (i + 1) * headDim);
      assert.ok(i === 2 ? row.every(Number.isNaN) : row.every(Number.isFinite), `row ${i}`);
    }
  });

  test('seqK 0 gives zeros', () => {
    const out = rw.attention(new Float32Array(2 * 8).fill(1), new Float32Array(0), new Float32Array(0), {
      batch: 1, heads: 1, seqQ: 2, seqK: 0, headDim: 8,
    });
    assert.deepEqual(out, new Float32Array(16));
  });

  test('zero-copy tensors in and out', () => {
    const n = 2 * 16 * 32;
    const random = randomGenerator(23);
    const [q, k, v] = [0, 1, 2].map(() => randomArray(n, random));
    const expected = rw.attention(q, k, v, { batch: 1, heads: 2, seqQ: 16, headDim: 32, causal: true });
    const tensors = [q, k, v].map((a) => {
      const t = rw.tensor(n);
      t.data.set(a);
      return t;
    });
    const out = rw.tensor(n);
    assert.equal(rw.attention(...tensors, { batch: 1, heads: 2, seqQ: 16, headDim: 32, causal: true, out }), out);
    assert.deepEqual(out.data, expected);
    for (const t of [...tensors, out]) t.dispose();
  });

  test('a causal attention of 16,384 tokens, 8 heads of 64, runs in well under 1 GiB of wasm memory', async () => {
    const big = await loadRope();
    const n = 8 * 16384 * 64;
    const [q, k, v] = [0, 1, 2].map(() => big.tensor(n));
    const random = randomGenerator(24);
    for (const t of [q, k, v]) {
      const data = t.data;
      for (let i = 0; i < n; i += 97) data[i] = random();
    }
    big.attention(q, k, v, { batch: 1, heads: 8, seqQ: 16384, headDim: 64, causal: true, out: q });
    const memory = big.memoryBytes;
    assert.ok(memory < 512 * 2 ** 20, `wasm memory grew to ${memory} bytes`);
    assert.ok(q.data.every(Number.isFinite));
  });
});

describe('bad input to attention', () => {
  const base = { batch: 1, heads: 2, seqQ: 4, headDim: 8 };
  const q = new Float32Array(64);
  const cases = [
    ['heads not divisible by kvHeads', { ...base, heads: 3, kvHeads: 2 }, RangeError, /heads \(3\) must be a multiple of kvHeads \(2\)/],
    ['headDim 0', { ...base, headDim: 0 }, RangeError, /headDim must be in \[1/],
    ['wrong q length', { ...base, seqQ: 5 }, RangeError, /q has length 64; expected 80/],
    ['wrong k length', { ...base, seqK: 3 }, RangeError, /k has length 64; expected 48/],
    ['unknown layout', { ...base, layout: 'bhds' }, RangeError, /layout must be one of/],
    ['unknown option', { ...base, masks: null }, TypeError, /unknown option 'masks'/],
    ['NaN scale', { ...base, scale: NaN }, RangeError, /scale must be finite/],
    ['causal not a boolean', { ...base, causal: 1 }, TypeError, /causal must be a boolean/],
    ['rope not an embedding', { ...base, rope: { dim: 8 } }, TypeError, /rope must be a rotaryEmbedding/],
  ];
  for (const [name, options, ErrorClass, pattern] of cases) {
    test(name, () => {
      assert.throws(() => rw.attention(q, q, q, options), (e) => e instanceof ErrorClass && pattern.test(e.message));
      assert.equal(rw.attention(q, q, q, base).length, 64, 'still usable');
    });
  }
  test('rope dim larger than headDim', () => {
    const rope = rw.rotaryEmbedding({ dim: 16 });
    assert.throws(() => rw.attention(q, q, q, { ...base, rope }), /rope.dim \(16\) is larger than headDim \(8\)/);
    rope.dispose();
  });
  test('no leak over 2,000 calls, good and bad', () => {
    const rope = rw.rotaryEmbedding({ dim: 8 });
    const run = () => {
      rw.attention(q, q, q, { ...base, rope, causal: true, returnWeights: true });
      try {
        rw.attention(q, q, q, { ...base, seqQ: 5 });
      } catch {}
    };
    for (let i = 0; i < 50; i++) run();
    const level = rw.heapInUse();
    for (let i = 0; i < 2000; i++) run();
    assert.equal(rw.heapInUse(), level);
    rope.dispose();
  });
});

describe('bad input to rotaryMultiHeadAttention', () => {
  const dModel = 8;
  const w = () => ({ weight: new Float32Array(dModel * dModel), bias: new Float32Array(dModel) });
  const weights = () => ({ query: w(), key: w(), value: w(), output: w() });
  test('dModel not divisible by heads', () => {
    assert.throws(() => rw.rotaryMultiHeadAttention({ heads: 3, dModel, weights: weights() }), (e) => e instanceof RangeError && /dModel \(8\) must be a multiple of heads \(3\)/.test(e.message));
  });
  test('weight of the wrong size', () => {
    const bad = weights();
    bad.key.weight = new Float32Array(10);
    assert.throws(() => rw.rotaryMultiHeadAttention({ heads: 2, dModel, weights: bad }), (e) => e instanceof RangeError && /weights.key.weight has length 10; expected 64/.test(e.message));
  });
  test('missing weights', () => {
    assert.throws(() => rw.rotaryMultiHeadAttention({ heads: 2, dModel }), (e) => e instanceof TypeError && /weights/.test(e.message));
  });
  test('mask of the wrong size, x of the wrong length', () => {
    const mha = rw.rotaryMultiHeadAttention({ heads: 2, dModel, weights: weights() });
    const x = new Float32Array(3 * 2 * dModel);
    assert.throws(() => mha.forward(x, { seq: 3, batch: 2, mask: new Uint8Array(5) }), (e) => e instanceof RangeError && /mask has length 5; expected 9 \(\[seq, seq, 1\]\) or 18 \(\[seq, seq, batch\]\)/.test(e.message));
    assert.throws(() => mha.forward(x, { seq: 4, batch: 2 }), (e) => e instanceof RangeError && /x has length 48; expected 64/.test(e.message));
    assert.equal(mha.forward(x, { seq: 3, batch: 2 }).length, 48);
    mha.dispose();
  });
});

describe('rotaryMultiHeadAttention against the float64 reference', () => {
  test('random weights, partial rope, per-batch mask with a fully masked row', () => {
    const random = randomGenerator(25);
    const [seq, batch, heads, dModel] = [11, 3, 4, 32];
    const layer = () => ({ weight: randomArray(dModel * dModel, random).map((x) => x * 0.3), bias: randomArray(dModel, random) });
    const weights = { query: layer(), key: layer(), value: layer(), output: layer() };
    const x = randomArray(seq * batch * dModel, random);
    const mask = new Uint8Array(seq * seq * batch);
    for (let i = 0; i < mask.length; i++) mask[i] = random() > -0.4 ? 1 : 0;
    for (let j = 0; j < seq; j++) mask[(2 * seq + j) * batch + 1] = 0;  // query 2 of batch row 1 sees nothing
    for (const ropePercentage of [0.5, 1, 0.25]) {
      const mha = rw.rotaryMultiHeadAttention({ heads, dModel, ropePercentage, weights });
      const y = mha.forward(x, { seq, batch, mask, causal: true });
      const ref = mhaF64(x, { seq, batch, heads, dModel, ropePercentage, weights, causal: true, mask: (i, j, b) => mask[(i * seq + j) * batch + b] !== 0 });
      assertClose(y, ref, 1e-5, `ropePercentage ${ropePercentage}`);
      // The fully masked row attends to nothing: its output is the output bias.
      const row = (2 * batch + 1) * dModel;
      assertClose(y.subarray(row, row + dModel), weights.output.bias, 1e-6, 'fully masked row');
      mha.dispose();
    }
  });
});

