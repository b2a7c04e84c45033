// kv-cache.test.js: rw.kvCache (c/kv_cache.h) and rw.attention's ONNX past/present path:
//   (a) decoding with the cache (token by token, or in chunks) equals rw.attention on the whole
//       sequence (causal), with and without RoPE, grouped heads, every layout, growth from a small
//       capacity, truncate then re-append, masks / window / softcap passed through;
//   (b) pastKey/pastValue -> presentKey/presentValue against the float64 reference and against
//       onnxruntime-node running ONNX Attention-23 models with past_key/past_value inputs and
//       present_key/present_value outputs (built here);
//   (c) bad input: errors naming the parameter, the module still usable, the heap back to its level.
// Both builds (SIMD and scalar) are checked.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import * as ort from 'onnxruntime-node';

import { loadRope } from '../js/index.js';
import { attentionF64 } from './helpers/attention-f64.js';
import { singleNodeModel } from './helpers/onnx-model.js';
import { randomArray, randomGenerator } from './helpers/rope-f64.js';

const builds = {};
before(async () => {
  builds.simd = await loadRope({ simd: true });
  builds.scalar = await loadRope({ simd: false });
});

const REL_TOL = 1e-5;

function assertClose(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let err = 0;
  let mag = 1e-30;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= err)) err = d;
    mag = Math.max(mag, Math.abs(expected[i]));
  }
  assert.ok(err <= REL_TOL * mag, `${what}: max error ${err} > ${REL_TOL * mag}`);
}

/** Index of head vector (b, h, s) of [batch, nh, seq, dim] in layout. */
function at(layout, batch, nh, seq, dim, b, h, s) {
  if (layout === 'bhsd') return ((b * nh + h) * seq + s) * dim;
  if (layout === 'bshd') return ((b * seq + s) * nh + h) * dim;
  return ((s * batch + b) * nh + h) * dim;
}

/** Tokens [first, first + n) of x [batch, nh, seq, dim] (layout) as [batch, nh, n, dim] (layout). */
function slice(x, layout, batch, nh, seq, dim, first, n) {
  const y = new Float32Array(batch * nh * n * dim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < nh; h++) {
      for (let s = 0; s < n; s++) {
        const from = at(layout, batch, nh, seq, dim, b, h, first + s);
        y.set(x.subarray(from, from + dim), at(layout, batch, nh, n, dim, b, h, s));
      }
    }
  }
  return y;
}

/** y[tokens first..] = x (the inverse of slice). */
function scatter(y, x, layout, batch, nh, seq, dim, first, n) {
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < nh; h++) {
      for (let s = 0; s < n; s++) {
        const from = at(layout, batch, nh, n, dim, b, h, s);
        y.set(x.subarray(from, from + dim), at(layout, batch, nh, seq, dim, b, h, first + s));
      }
    }
  }
}

/** Decodes seq tokens `chunk` at a time through a cache; returns the rows and the cache's export. */
function decodeWithCache(rw, { batch, heads, kvHeads, seq, headDim, valueHeadDim = headDim, layout, chunk, rope, capacity, attend = {} },
  q, k, v) {
  const cache = rw.kvCache({ batch, kvHeads, headDim, valueHeadDim, rope, capacity });
  const out = new Float32Array(batch * heads * seq * valueHeadDim);
  const capacities = [];
  for (let t = 0; t < seq; t += chunk) {
    const n = Math.min(chunk, seq - t);
    assert.equal(cache.append(slice(k, layout, batch, kvHeads, seq, headDim, t, n),
      slice(v, layout, batch, kvHeads, seq, valueHeadDim, t, n), { seq: n, layout }), t + n);
    const o = cache.attend(slice(q, layout, batch, heads, seq, headDim, t, n), { heads, seqQ: n, layout, ...attend });
    scatter(out, o, layout, batch, heads, seq, valueHeadDim, t, n);
    capacities.push(cache.capacity);
  }
  const present = { key: cache.presentKey(), value: cache.presentValue(), length: cache.length, capacities };
  cache.dispose();
  return { out, present };
}

describe('kvCache decoding equals rw.attention on the whole sequence', () => {
  const cases = [
    { batch: 1, heads: 4, kvHeads: 4, seq: 33, headDim: 16, chunk: 1 },
    { batch: 2, heads: 8, kvHeads: 2, seq: 41, headDim: 64, chunk: 1, rope: 64 },
    { batch: 2, heads: 4, kvHeads: 1, seq: 50, headDim: 20, chunk: 1, capacity: 1 },
    { batch: 1, heads: 6, kvHeads: 3, seq: 45, headDim: 32, valueHeadDim: 12, chunk: 7, rope: 16 },
    { batch: 1, heads: 2, kvHeads: 2, seq: 30, headDim: 8, chunk: 30, rope: 8 },
    { batch: 2, heads: 4, kvHeads: 2, seq: 60, headDim: 16, chunk: 1, capacity: 2,
      attend: { window: { left: 9 }, softcap: 20 } },
  ];
  for (const build of ['simd', 'scalar']) {
    for (const layout of ['bhsd', 'bshd', 'sbhd']) {
      for (const c of cases) {
        test(`${build} ${layout} ${JSON.stringify(c)}`, () => {
          const rw = builds[build];
          const random = randomGenerator(c.seq * 31 + c.heads);
          const vd = c.valueHeadDim ?? c.headDim;
          const q = randomArray(c.batch * c.heads * c.seq * c.headDim, random);
          const k = randomArray(c.batch * c.kvHeads * c.seq * c.headDim, random);
          const v = randomArray(c.batch * c.kvHeads * c.seq * vd, random);
          const rope = c.rope ? rw.rotaryEmbedding({ dim: c.rope }) : undefined;
          const full = rw.attention(q, k, v, { batch: c.batch, heads: c.heads, kvHeads: c.kvHeads, seqQ: c.seq,
            headDim: c.headDim, valueHeadDim: vd, layout, causal: true, rope, ...c.attend });
          const level = rw.heapInUse();
          const { out, present } = decodeWithCache(rw, { ...c, layout, rope }, q, k, v);
          assert.equal(rw.heapInUse(), level, 'the disposed cache left nothing behind');
          assertClose(out, full, 'decoded rows');
          if (!c.rope && c.chunk === 1) assert.deepEqual(out, full, 'one token at a time is bit for bit the full call');
          assert.equal(present.length, c.seq);
          // growth: geometric, so few distinct capacities
          assert.ok(new Set(present.capacities).size <= 8, `capacities ${[...new Set(present.capacities)]}`);
          if (!c.rope) assert.deepEqual(present.key, toBhsd(k, layout, c.batch, c.kvHeads, c.seq, c.headDim));
          assert.deepEqual(present.value, toBhsd(v, layout, c.batch, c.kvHeads, c.seq, vd));
          rope?.dispose();
        });
      }
    }
  }
});

function toBhsd(x, layout, batch, nh, seq, dim) {
  const y = new Float32Array(x.length);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < nh; h++) {
      for (let s = 0; s < seq; s++) {
        const from = at(layout, batch, nh, seq, dim, b, h, s);
        y.set(x.subarray(from, from + dim), at('bhsd', batch, nh, seq, dim, b, h, s));
      }
    }
  }
  return y;
}

describe('kvCache truncate, reset, masks', () => {
  test('truncate then re-append equals the full call on the new sequence; reset keeps capacity', () => {
    const rw = builds.simd;
    const random = randomGenerator(5);
    const [batch, heads, seq, headDim] = [1, 4, 24, 16];
    const n = batch * heads * seq * headDim;
    const [q, k, v] = [0, 1, 2].map(() => randomArray(n, random));
    const rope = rw.rotaryEmbedding({ dim: 16, pairing: 'interleaved' });
    const full = rw.attention(q, k, v, { batch, heads, seqQ: seq, headDim, causal: true, rope });
    const cache = rw.kvCache({ batch, kvHeads: heads, headDim, rope });
    cache.append(slice(k, 'bhsd', batch, heads, seq, headDim, 0, 16), slice(v, 'bhsd', batch, heads, seq, headDim, 0, 16));
    cache.append(randomArray(heads * 8 * headDim, random), randomArray(heads * 8 * headDim, random));  // a rejected draft
    assert.equal(cache.length, 24);
    cache.truncate(16);
    assert.equal(cache.length, 16);
    cache.append(slice(k, 'bhsd', batch, heads, seq, headDim, 16, 8), slice(v, 'bhsd', batch, heads, seq, headDim, 16, 8));
    const last = cache.attend(slice(q, 'bhsd', batch, heads, seq, headDim, 20, 4), { heads });
    assertClose(last, slice(full, 'bhsd', batch, heads, seq, headDim, 20, 4), 'after truncate');
    const capacity = cache.capacity;
    cache.reset();
    assert.equal(cache.length, 0);
    assert.equal(cache.capacity, capacity);
    assert.deepEqual(cache.attend(q.subarray(0, heads * headDim)), new Float32Array(heads * headDim), 'empty cache: zeros');
    cache.dispose();
    rope.dispose();
  });

  test('mask (key padding), kvSeqLengths, returnWeights, returnScores and tensors pass through', () => {
    const rw = builds.simd;
    const random = randomGenerator(6);
    const [batch, heads, kvHeads, seqK, headDim] = [2, 4, 2, 20, 8];
    const q = randomArray(batch * heads * headDim, random);
    const k = randomArray(batch * kvHeads * seqK * headDim, random);
    const v = randomArray(batch * kvHeads * seqK * headDim, random);
    const padding = new Uint8Array(batch * seqK).fill(1).fill(0, 15, 20).fill(0, 20, 26);
    const additive = Float32Array.from({ length: seqK }, (_, j) => (j % 5 === 0 ? -Infinity : j / 10));
    const cache = rw.kvCache({ batch, kvHeads, headDim });
    cache.append(k, v);
    const base = { batch, heads, kvHeads, seqQ: 1, seqK, headDim, causal: true };
    for (const extra of [
      { mask: padding, maskShape: [batch, 1, 1, seqK] },
      { mask: additive, maskShape: [1, seqK], softcap: 3 },
      { kvSeqLengths: [7, 20], window: { left: 4 } },
      { returnWeights: true, returnScores: 'masked', causal: 'top-left' },
    ]) {
      const expected = rw.attention(q, k, v, { ...base, ...extra });
      const got = cache.attend(q, { heads, ...extra });
      assert.deepEqual(got, expected, JSON.stringify(Object.keys(extra)));
    }
    const qt = rw.tensor(q.length);
    qt.data.set(q);
    const out = rw.tensor(q.length);
    assert.equal(cache.attend(qt, { heads, out }), out);
    assert.deepEqual(out.data.slice(), rw.attention(q, k, v, base));
    qt.dispose();
    out.dispose();
    cache.dispose();
  });
});

/** present = concat(past, new) along seq, bhsd; new in bhsd. */
function concatBhsd(past, x, batch, nh, pastSeq, seq, dim) {
  const total = pastSeq + seq;
  const y = new Float32Array(batch * nh * total * dim);
  for (let bh = 0; bh < batch * nh; bh++) {
    y.set(past.subarray(bh * pastSeq * dim, (bh + 1) * pastSeq * dim), bh * total * dim);
    y.set(x.subarray(bh * seq * dim, (bh + 1) * seq * dim), (bh * total + pastSeq) * dim);
  }
  return y;
}

describe('rw.attention with pastKey/pastValue (ONNX past/present)', () => {
  for (const build of ['simd', 'scalar']) {
    test(`${build}: against the float64 reference on random shapes`, () => {
      const rw = builds[build];
      const random = randomGenerator(11);
      for (let trial = 0; trial < 12; trial++) {
        const kvHeads = 1 + (trial % 3);
        const heads = kvHeads * (1 + (trial % 2));
        const batch = 1 + (trial % 2);
        const headDim = [8, 16, 20][trial % 3];
        const valueHeadDim = trial % 4 === 3 ? 12 : headDim;
        const pastSeq = [0, 1, 7, 33][trial % 4];
        const seqQ = [1, 3, 5][trial % 3];
        const causal = trial % 5 !== 4;
        const layout = ['bhsd', 'bshd', 'sbhd'][trial % 3];
        const q = randomArray(batch * heads * seqQ * headDim, random);
        const k = randomArray(batch * kvHeads * seqQ * headDim, random);
        const v = randomArray(batch * kvHeads * seqQ * valueHeadDim, random);
        const pastKey = randomArray(batch * kvHeads * pastSeq * headDim, random);
        const pastValue = randomArray(batch * kvHeads * pastSeq * valueHeadDim, random);
        const o = { batch, heads, kvHeads, seqQ, headDim, valueHeadDim, layout, causal };
        const level = rw.heapInUse();
        const result = rw.attention(q, k, v, { ...o, pastKey, pastValue, returnPresent: true });
        assert.equal(rw.heapInUse(), level);
        const kb = toBhsd(k, layout, batch, kvHeads, seqQ, headDim);
        const vb = toBhsd(v, layout, batch, kvHeads, seqQ, valueHeadDim);
        const presentKey = concatBhsd(pastKey, kb, batch, kvHeads, pastSeq, seqQ, headDim);
        const presentValue = concatBhsd(pastValue, vb, batch, kvHeads, pastSeq, seqQ, valueHeadDim);
        assert.deepEqual(result.presentKey, presentKey);
        assert.deepEqual(result.presentValue, presentValue);
        const qb = toBhsd(q, layout, batch, heads, seqQ, headDim);
        const ref = attentionF64(qb, presentKey, presentValue, { ...o, layout: 'bhsd', seqK: pastSeq + seqQ });
        assertClose(toBhsd(result.output, layout, batch, heads, seqQ, valueHeadDim), ref.out, `trial ${trial}`);
        // without returnPresent: the output alone, the same values
        assert.deepEqual(rw.attention(q, k, v, { ...o, pastKey, pastValue }), result.output);
      }
    });
  }

  test('the same as a kvCache fed the past, then the new tokens', () => {
    const rw = builds.simd;
    const random = randomGenerator(12);
    const [batch, heads, kvHeads, pastSeq, seqQ, headDim] = [1, 8, 2, 40, 1, 64];
    const pastKey = randomArray(batch * kvHeads * pastSeq * headDim, random);
    const pastValue = randomArray(batch * kvHeads * pastSeq * headDim, random);
    const q = randomArray(batch * heads * seqQ * headDim, random);
    const k = randomArray(batch * kvHeads * seqQ * headDim, random);
    const v = randomArray(batch * kvHeads * seqQ * headDim, random);
    const r = rw.attention(q, k, v, { batch, heads, kvHeads, seqQ, headDim, causal: true, pastKey, pastValue, returnPresent: true });
    const cache = rw.kvCache({ batch, kvHeads, headDim });
    cache.append(pastKey, pastValue);
    cache.append(k, v);
    assert.deepEqual(cache.attend(q, { heads }), r.output);
    assert.deepEqual(cache.presentKey(), r.presentKey);
    assert.deepEqual(cache.presentValue(), r.presentValue);
    cache.dispose();
  });

  // onnxruntime 1.30 runs Attention-23 with past_key/past_value and returns present_key/present_value.
  const combos = [];
  for (const causal of [false, true]) {
    for (const mask of [null, 'float', 'bool']) {
      for (const [pastSeq, seqQ] of [[12, 1], [9, 4], [0, 3]]) combos.push({ causal, mask, pastSeq, seqQ });
    }
  }
  for (const combo of combos) {
    test(`against onnxruntime-node: ${JSON.stringify(combo)}`, async () => {
      const rw = builds.simd;
      const random = randomGenerator(100 + combos.indexOf(combo));
      const { causal, pastSeq, seqQ } = combo;
      const [batch, heads, kvHeads, headDim] = [2, 4, 2, 16];
      const total = pastSeq + seqQ;
      const q = randomArray(batch * heads * seqQ * headDim, random);
      const k = randomArray(batch * kvHeads * seqQ * headDim, random);
      const v = randomArray(batch * kvHeads * seqQ * headDim, random);
      const pastKey = randomArray(batch * kvHeads * pastSeq * headDim, random);
      const pastValue = randomArray(batch * kvHeads * pastSeq * headDim, random);
      let mask;
      if (combo.mask === 'float') mask = Float32Array.from({ length: seqQ * total }, () => (random() < -0.7 ? -Infinity : random()));
      if (combo.mask === 'bool') mask = Uint8Array.from({ length: seqQ * total }, (_, i) => (i % total === 0 || random() > -0.5 ? 1 : 0));
      const d4 = (h, s) => [batch, h, s, headDim];
      const inputs = [
        { name: 'Q', type: 'float', dims: d4(heads, seqQ) },
        { name: 'K', type: 'float', dims: d4(kvHeads, seqQ) },
        { name: 'V', type: 'float', dims: d4(kvHeads, seqQ) },
        { name: mask ? 'M' : '', type: combo.mask === 'bool' ? 'bool' : 'float', dims: [seqQ, total] },
        { name: 'PK', type: 'float', dims: d4(kvHeads, pastSeq) },
        { name: 'PV', type: 'float', dims: d4(kvHeads, pastSeq) },
      ];
      const outputs = [
        { name: 'Y', type: 'float', dims: d4(heads, seqQ) },
        { name: 'PKo', type: 'float', dims: d4(kvHeads, total) },
        { name: 'PVo', type: 'float', dims: d4(kvHeads, total) },
      ];
      const model = singleNodeModel({ opType: 'Attention', opset: 23, inputs, outputs, attributes: { is_causal: causal ? 1 : undefined } });
      const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      const feeds = {
        Q: new ort.Tensor('float32', q, d4(heads, seqQ)),
        K: new ort.Tensor('float32', k, d4(kvHeads, seqQ)),
        V: new ort.Tensor('float32', v, d4(kvHeads, seqQ)),
        PK: new ort.Tensor('float32', pastKey, d4(kvHeads, pastSeq)),
        PV: new ort.Tensor('float32', pastValue, d4(kvHeads, pastSeq)),
      };
      if (mask) feeds.M = new ort.Tensor(combo.mask === 'bool' ? 'bool' : 'float32', mask, [seqQ, total]);
      const expected = await session.run(feeds);
      // ONNX's is_causal with past keys: onnxruntime aligns bottom-right (the new queries are the last tokens).
      const got = rw.attention(q, k, v, { batch, heads, kvHeads, seqQ, headDim, causal: causal ? 'bottom-right' : false,
        mask, maskShape: mask ? [seqQ, total] : undefined, pastKey, pastValue, returnPresent: true });
      assert.deepEqual(got.presentKey, expected.PKo.data);
      assert.deepEqual(got.presentValue, expected.PVo.data);
      assertClose(got.output, expected.Y.data, 'output');
    });
  }
});

describe('bad input', () => {
  test('kvCache and its methods throw errors naming the parameter; the heap is unchanged', () => {
    const rw = builds.simd;
    const level = rw.heapInUse();
    assert.throws(() => rw.kvCache(), TypeError);
    assert.throws(() => rw.kvCache({ batch: 1, kvHeads: 2 }), /headDim/);
    assert.throws(() => rw.kvCache({ batch: 0, kvHeads: 2, headDim: 8 }), RangeError);
    assert.throws(() => rw.kvCache({ batch: 1, kvHeads: 2, headDim: 8, capacity: -1 }), /capacity/);
    assert.throws(() => rw.kvCache({ batch: 1, kvHeads: 2, headDim: 8, capacity: 2 ** 30 }), /capacity/);
    assert.throws(() => rw.kvCache({ batch: 1, kvHeads: 2, headDim: 8, heads: 4 }), /unknown option 'heads'/);
    const rope = rw.rotaryEmbedding({ dim: 16 });
    assert.throws(() => rw.kvCache({ batch: 1, kvHeads: 2, headDim: 8, rope }), /rope.dim/);
    assert.throws(() => rw.kvCache({ batch: 1, kvHeads: 2, headDim: 8, rope: {} }), TypeError);
    rope.dispose();
    const rope8 = rw.rotaryEmbedding({ dim: 8 });
    const cache = rw.kvCache({ batch: 1, kvHeads: 2, headDim: 8, rope: rope8 });
    rope8.dispose();
    assert.throws(() => cache.append(new Float32Array(16), new Float32Array(16)), /rotaryEmbedding\) was disposed/);
    cache.dispose();
    const c = rw.kvCache({ batch: 1, kvHeads: 2, headDim: 8, valueHeadDim: 4 });
    assert.throws(() => c.append(new Float32Array(15), new Float32Array(8)), /k has length 15/);
    assert.throws(() => c.append(new Float32Array(16), new Float32Array(16)), /v has length 16/);
    assert.throws(() => c.append([1, 2], new Float32Array(8)), /k must be a Float32Array/);
    assert.throws(() => c.append(new Float32Array(16), new Float32Array(8), { layout: 'bhds' }), /layout/);
    assert.throws(() => c.append(new Float32Array(16), new Float32Array(8), { seq: 2 }), /k has length 16; expected 32/);
    assert.equal(c.append(new Float32Array(16), new Float32Array(8)), 1);
    assert.throws(() => c.attend(new Float32Array(24), { heads: 3 }), /heads \(3\) must be a multiple of kvHeads/);
    assert.throws(() => c.attend(new Float32Array(15)), /q has length 15/);
    assert.throws(() => c.attend(new Float32Array(16), { window: { left: -2 } }), /window.left/);
    assert.throws(() => c.attend(new Float32Array(16), { causal: 'up' }), RangeError);
    assert.throws(() => c.attend(new Float32Array(16), { softcap: -1 }), /softcap/);
    assert.throws(() => c.attend(new Float32Array(16), { mask: new Uint8Array(3) }), /mask has length 3/);
    assert.throws(() => c.attend(new Float32Array(16), { mask: new Uint8Array(2), maskShape: [2, 1] }), /does not broadcast/);
    assert.throws(() => c.attend(new Float32Array(16), { kvSeqLengths: [2] }), /kvSeqLengths\[0\]/);
    assert.throws(() => c.attend(new Float32Array(16), { out: new Float32Array(16) }), /out has length 16; expected 8/);
    assert.throws(() => c.attend(new Float32Array(16), { seqK: 3 }), /unknown option 'seqK'/);
    assert.throws(() => c.truncate(2), /n must be in \[0, 1\]/);
    assert.throws(() => c.truncate(0.5), RangeError);
    assert.equal(c.attend(new Float32Array(16)).length, 8, 'still usable');
    c.dispose();
    c.dispose();
    assert.throws(() => c.length, /disposed/);
    assert.throws(() => c.append(new Float32Array(16), new Float32Array(8)), /disposed/);
    assert.throws(() => c.attend(new Float32Array(16)), /disposed/);
    assert.throws(() => c.presentKey(), /disposed/);
    assert.equal(rw.heapInUse(), level, 'nothing leaked');
  });

  test('rw.attention past/present options', () => {
    const rw = builds.simd;
    const level = rw.heapInUse();
    const o = { batch: 1, heads: 2, seqQ: 1, headDim: 4 };
    const x = new Float32Array(8);
    assert.throws(() => rw.attention(x, x, x, { ...o, pastKey: new Float32Array(8) }), /pastKey and pastValue must be given together/);
    assert.throws(() => rw.attention(x, x, x, { ...o, pastKey: new Float32Array(9), pastValue: new Float32Array(9) }), /pastKey has length 9/);
    assert.throws(() => rw.attention(x, x, x, { ...o, pastKey: new Float32Array(8), pastValue: new Float32Array(16) }), /pastValue has length 16/);
    assert.throws(() => rw.attention(x, x, x, { ...o, pastKey: [0], pastValue: [0] }), /pastKey must be a Float32Array/);
    assert.throws(() => rw.attention(x, x, x, { ...o, returnPresent: 1 }), /returnPresent must be a boolean/);
    assert.throws(() => rw.attention(x, new Float32Array(4), x, { ...o, returnPresent: true }), /k has length 4/);
    assert.throws(() => rw.attention(x, x, x, { ...o, returnPresent: true, bogus: 1 }), /unknown option 'bogus'/);
    const r = rw.attention(x, x, x, { ...o, returnPresent: true });
    assert.deepEqual(r.presentKey, x);
    assert.equal(rw.heapInUse(), level);
  });
});
