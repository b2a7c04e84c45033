// attention-onnx.test.js: rw.attention's options with the semantics of ONNX Attention-23/24
// (masks, causal alignments, softcap, sliding windows, valueHeadDim, kvSeqLengths, the scores at
// each stage), against
//   (a) the float64 reference of helpers/attention-f64.js on random shapes and the corner cases
//       (fully masked rows, -inf in additive masks, windows wider than the sequence, empty
//       windows, key length 0 for a batch row, seqQ > seqK with both alignments);
//   (b) onnxruntime-node running ONNX Attention models built here (helpers/onnx-model.js), for
//       every attribute combination it supports;
//   (c) bad input: a clear error naming the parameter, then a good call, the heap unchanged.
// Both builds (SIMD and scalar) are checked.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import * as ort from 'onnxruntime-node';

import { loadRope } from '../js/index.js';
import { attentionF64 } from './helpers/attention-f64.js';
import { singleNodeModel } from './helpers/onnx-model.js';
import { maxAbs, randomArray, randomGenerator } from './helpers/rope-f64.js';

const builds = {};
before(async () => {
  builds.simd = await loadRope({ simd: true });
  builds.scalar = await loadRope({ simd: false });
});

// Both float32 against float64, and float32 against onnxruntime: 1e-5 of the largest magnitude.
const REL_TOL = 1e-5;

/**
 * max |actual - expected| <= tol * max |expected|, with -inf (a hidden key's score) exactly where
 * expected has it; `lowest` also takes onnxruntime's -3.4e38 for a hidden key as -inf.
 */
function assertClose(actual, expected, what, { lowest = false } = {}) {
  let err = 0;
  let mag = 1e-30;
  for (let i = 0; i < expected.length; i++) {
    let e = expected[i];
    if (lowest && e <= -3e38) e = -Infinity;
    const a = actual[i];
    if (e === -Infinity || a === -Infinity) {
      if (a !== e) assert.fail(`${what}: element ${i} is ${a}, expected ${e}`);
      continue;
    }
    err = Math.max(err, Math.abs(a - e));
    if (Number.isNaN(a) !== Number.isNaN(e)) assert.fail(`${what}: element ${i} is ${a}, expected ${e}`);
    mag = Math.max(mag, Math.abs(e));
  }
  assert.ok(err <= REL_TOL * mag, `${what}: max error ${err} > ${REL_TOL * mag}`);
}

const pick = (random, list) => list[Math.floor(((random() + 1) / 2) * list.length)];
const between = (random, lo, hi) => lo + Math.floor(((random() + 1) / 2) * (hi - lo + 1));

/** Mask index of (b, h, i, j) for a mask of `shape` broadcast to [batch, heads, seqQ, seqK]. */
function maskIndex(shape) {
  const full = [...Array(4 - shape.length).fill(1), ...shape];
  const strides = [0, 0, 0, 0];
  let stride = 1;
  for (let axis = 3; axis >= 0; axis--) {
    strides[axis] = full[axis] === 1 ? 0 : stride;
    stride *= full[axis];
  }
  return (b, h, i, j) => b * strides[0] + h * strides[1] + i * strides[2] + j * strides[3];
}

/** A random mask of `shape`: boolean (3/4 visible, with a fully masked row) or additive (some -inf). */
// A random mask: bool (half the keys hidden) or float (biases in [0, 2), a fifth -inf; only 0 and
// -inf when `hiddenOnly`). The first row of the first slice sees nothing: a fully masked row.
function randomMask(random, kind, shape, hiddenOnly = false) {
  const length = shape.reduce((a, b) => a * b, 1);
  if (kind === 'bool') {
    const mask = Uint8Array.from({ length }, () => (random() < 0.5 ? 1 : 0));
    mask.fill(0, 0, shape.at(-1));  // the first row (of the first broadcast slice) sees nothing
    return mask;
  }
  const mask = Float32Array.from({ length }, () => (random() < 0.2 ? -Infinity : hiddenOnly ? 0 : 2 * random()));
  mask.fill(-Infinity, 0, shape.at(-1));
  return mask;
}

/** The float64 reference's options for rw.attention's options. */
function referenceOptions(o) {
  const { mask, maskShape, ...rest } = o;
  if (!mask) return rest;
  const at = maskIndex(maskShape ?? [o.seqQ, o.seqK ?? o.seqQ]);
  if (mask instanceof Uint8Array) return { ...rest, mask: (b, h, i, j) => mask[at(b, h, i, j)] !== 0 };
  return { ...rest, additive: (b, h, i, j) => mask[at(b, h, i, j)] };
}

/** Runs rw.attention at every scores stage and compares everything with the float64 reference. */
function checkAgainstF64(rw, o, random, label) {
  const kvHeads = o.kvHeads ?? o.heads;
  const seqK = o.seqK ?? o.seqQ;
  const valueHeadDim = o.valueHeadDim ?? o.headDim;
  const q = randomArray(o.batch * o.heads * o.seqQ * o.headDim, random);
  const k = randomArray(o.batch * kvHeads * seqK * o.headDim, random);
  const v = randomArray(o.batch * kvHeads * seqK * valueHeadDim, random);
  const ref = attentionF64(q, k, v, referenceOptions(o));
  const plain = rw.attention(q, k, v, o);
  assertClose(plain, ref.out, `${label}: output`);
  for (const stage of ['raw', 'masked', 'softcapped', 'softmax']) {
    const got = rw.attention(q, k, v, { ...o, returnScores: stage, returnWeights: stage !== 'softmax' });
    assert.deepEqual(got.output, plain, `${label}: the output does not depend on returnScores`);
    assertClose(got.scores, stage === 'softmax' ? ref.weights : ref.scores[stage], `${label}: scores '${stage}'`);
    if (got.weights) assertClose(got.weights, ref.weights, `${label}: weights`);
  }
  return { q, k, v, plain, ref };
}

describe('attention options against the float64 reference', () => {
  for (const build of ['simd', 'scalar']) {
    test(`${build}: random shapes and options`, () => {
      const rw = builds[build];
      const random = randomGenerator(build === 'simd' ? 61 : 62);
      for (let n = 0; n < 120; n++) {
        const kvHeads = pick(random, [1, 2]);
        const o = {
          batch: between(random, 1, 2), heads: kvHeads * between(random, 1, 2), kvHeads,
          seqQ: n % 12 === 0 ? between(random, 100, 160) : between(random, 0, 20),
          headDim: pick(random, [4, 8, 13, 16, 32]), layout: pick(random, ['bhsd', 'bshd', 'sbhd']),
        };
        o.seqK = n % 12 === 0 ? between(random, 130, 260) : between(random, 0, 20);
        const causal = pick(random, [false, true, 'bottom-right', 'top-left']);
        if (causal) o.causal = causal;
        if (random() < 0) o.window = { left: pick(random, [-1, 0, 1, 3, 17, 500]), right: pick(random, [-1, 0, 2, 40]) };
        if (random() < -0.3) o.softcap = pick(random, [0.5, 2, 20]);
        if (random() < -0.5) o.valueHeadDim = pick(random, [3, 8, 24]);
        if (random() < -0.4) o.kvSeqLengths = Int32Array.from({ length: o.batch }, () => between(random, 0, o.seqK));
        if (random() < 0.3) {
          const shapes = [[o.seqQ, o.seqK], [1, o.seqQ, o.seqK], [o.heads, o.seqQ, o.seqK], [o.batch, 1, o.seqQ, o.seqK],
            [o.batch, o.heads, o.seqQ, o.seqK], [o.batch, 1, 1, o.seqK], [1, o.seqK]];
          o.maskShape = pick(random, shapes);
          o.mask = randomMask(random, pick(random, ['bool', 'float']), o.maskShape);
        }
        if (random() < -0.7) o.scale = 0.3;
        checkAgainstF64(rw, o, random, `${build} case ${n} ${JSON.stringify({ ...o, mask: o.mask?.constructor.name })}`);
      }
    });
  }

  test('corner cases', () => {
    const rw = builds.simd;
    const random = randomGenerator(63);
    const base = { batch: 2, heads: 2, kvHeads: 1, seqQ: 9, seqK: 6, headDim: 8 };
    // seqQ > seqK with both alignments (bottom-right: the first rows see no key)
    for (const causal of ['bottom-right', 'top-left']) {
      const { plain } = checkAgainstF64(rw, { ...base, causal }, random, `seqQ > seqK ${causal}`);
      if (causal === 'bottom-right') assert.ok(plain.subarray(0, 3 * 8).every((x) => x === 0), 'rows 0..2 are zeros');
    }
    // windows wider than the sequence: the same as none
    const q = randomArray(2 * 2 * 40 * 8, random);
    const k = randomArray(2 * 40 * 8, random);
    const wide = { batch: 2, heads: 2, kvHeads: 1, seqQ: 40, headDim: 8, causal: true };
    assert.deepEqual(rw.attention(q, k, k, { ...wide, window: { left: 100, right: 1000 } }), rw.attention(q, k, k, wide));
    // empty windows: non-causal (0, 0) with seqQ > seqK: rows before key 0 see nothing
    checkAgainstF64(rw, { ...base, window: { left: 0, right: 0 } }, random, 'empty windows');
    // key length 0 for one batch row
    const { plain } = checkAgainstF64(rw, { ...base, kvSeqLengths: Int32Array.from([0, 4]), softcap: 3 }, random, 'kv length 0');
    assert.ok(plain.subarray(0, 2 * 9 * 8).every((x) => x === 0), 'batch row 0 is zeros');
    // fully masked rows, by a boolean 0 and by an additive -inf, with softcap on top
    for (const kind of ['bool', 'float']) {
      const mask = randomMask(random, kind, [9, 6]);
      const o = { ...base, mask, maskShape: [9, 6], softcap: 1.5 };
      const { plain: out } = checkAgainstF64(rw, o, random, `fully masked rows (${kind})`);
      assert.ok(out.every(Number.isFinite), 'no NaN');
      const { scores } = rw.attention(randomArray(2 * 2 * 9 * 8, random), k.subarray(0, 2 * 6 * 8), k.subarray(0, 2 * 6 * 8),
        { ...o, returnScores: 'softcapped' });
      assert.ok(scores.subarray(0, 6).every((x) => x === -Infinity), 'the hidden row stays -inf after the softcap');
    }
  });
});

// ---------------------------------------------------------------------------------------------
// onnxruntime-node

/**
 * An ONNX Attention model and its feeds for rw.attention's options `o` (layout 'bhsd' for 4D
 * inputs, 'bshd' for 3D ones). onnxruntime 1.30's order of the score stages is raw, softcap, mask,
 * softmax (modes 0..3), so mode 2 is rope-wasm's 'masked' without softcap and 'softcapped' when the
 * mask is boolean (or -inf only): with a finite additive mask the softcap sees different scores.
 */
function onnxCase(o, { opset, input3d, mode, q, k, v }) {
  const kvHeads = o.kvHeads ?? o.heads;
  const seqK = o.seqK ?? o.seqQ;
  const vd = o.valueHeadDim ?? o.headDim;
  const dims = (heads, seq, d) => (input3d ? [o.batch, seq, heads * d] : [o.batch, heads, seq, d]);
  const inputs = [
    { name: 'Q', type: 'float', dims: dims(o.heads, o.seqQ, o.headDim) },
    { name: 'K', type: 'float', dims: dims(kvHeads, seqK, o.headDim) },
    { name: 'V', type: 'float', dims: dims(kvHeads, seqK, vd) },
  ];
  const feeds = {
    Q: new ort.Tensor('float32', q, inputs[0].dims),
    K: new ort.Tensor('float32', k, inputs[1].dims),
    V: new ort.Tensor('float32', v, inputs[2].dims),
  };
  if (o.mask || o.kvSeqLengths) {
    const maskType = o.mask instanceof Float32Array ? 'float' : 'bool';
    inputs.push({ name: o.mask ? 'M' : '', type: maskType, dims: o.maskShape ?? [1] });
    if (o.mask) feeds.M = new ort.Tensor(maskType === 'bool' ? 'bool' : 'float32', o.mask, o.maskShape);
  }
  if (o.kvSeqLengths) {
    inputs.push({ name: '', type: 'float', dims: [1] }, { name: '', type: 'float', dims: [1] },
      { name: 'N', type: 'int64', dims: [o.batch] });
    feeds.N = new ort.Tensor('int64', BigInt64Array.from(o.kvSeqLengths, BigInt), [o.batch]);
  }
  const outputs = [{ name: 'Y', type: 'float', dims: dims(o.heads, o.seqQ, vd) }];
  if (mode !== undefined) {
    // present_key and present_value (4D whatever the inputs) precede the scores.
    outputs.push({ name: 'PK', type: 'float', dims: [o.batch, kvHeads, seqK, o.headDim] },
      { name: 'PV', type: 'float', dims: [o.batch, kvHeads, seqK, vd] },
      { name: 'S', type: 'float', dims: [o.batch, o.heads, o.seqQ, seqK] });
  }
  const model = singleNodeModel({
    opType: 'Attention', opset, inputs, outputs,
    attributes: {
      is_causal: o.causal ? 1 : undefined,
      scale: o.scale,
      softcap: o.softcap,
      qk_matmul_output_mode: mode,
      q_num_heads: input3d ? o.heads : undefined,
      kv_num_heads: input3d ? kvHeads : undefined,
    },
  });
  return { model, feeds };
}

describe('attention against onnxruntime-node (ONNX Attention-23 and -24)', () => {
  // Every combination of is_causal, attn_mask (none, bool, float), softcap and qk_matmul_output_mode
  // (none, 0..3); the other attributes and shapes (scale, valueHeadDim, 3D inputs with
  // q_num_heads/kv_num_heads, grouped heads, mask broadcast shapes, seqQ != seqK) vary across them.
  const random = randomGenerator(64);
  const combos = [];
  for (const causal of [false, true]) {
    for (const maskKind of [null, 'bool', 'float']) {
      for (const softcap of [undefined, 2.5]) {
        for (const mode of [undefined, 0, 1, 2, 3]) combos.push({ causal, maskKind, softcap, mode, opset: 23 });
      }
    }
  }
  // Opset 24's nonpad_kv_seqlen (onnxruntime 1.30 runs it; it refuses it with attn_mask).
  for (const causal of [false, true]) {
    for (const softcap of [undefined, 2.5]) combos.push({ causal, maskKind: null, softcap, mode: 3, opset: 24, kvLengths: true });
  }
  for (const [n, c] of combos.entries()) {
    const kvHeads = pick(random, [1, 2]);
    const o = {
      batch: between(random, 1, 2), heads: kvHeads * between(random, 1, 2), kvHeads, seqQ: between(random, 1, 12),
      headDim: pick(random, [4, 8, 16]),
    };
    o.seqK = pick(random, [o.seqQ, between(random, 1, 14)]);
    if (random() < 0.3) o.valueHeadDim = pick(random, [4, 12]);
    if (random() < 0.3) o.scale = 0.4;
    // ONNX's is_causal: top-left without past keys; with nonpad_kv_seqlen onnxruntime puts the last
    // query at the last valid key: rope-wasm's bottom-right with kvSeqLengths.
    if (c.causal) o.causal = c.kvLengths ? 'bottom-right' : 'top-left';
    if (c.softcap) o.softcap = c.softcap;
    // onnxruntime softcaps before it adds the mask (ONNX: after). With a float mask of only 0 and
    // -inf the two orders agree, so that is what those combinations get here; finite biases under
    // softcap are checked against the float64 reference (above) only.
    const orderMatters = c.softcap && c.maskKind === 'float';
    if (c.maskKind) {
      o.maskShape = pick(random, [[o.seqQ, o.seqK], [1, o.seqQ, o.seqK], [o.heads, o.seqQ, o.seqK],
        [o.batch, 1, o.seqQ, o.seqK], [o.batch, o.heads, o.seqQ, o.seqK]]);
      o.mask = randomMask(random, c.maskKind, o.maskShape, orderMatters);
    }
    if (c.kvLengths) o.kvSeqLengths = Int32Array.from({ length: o.batch }, () => between(random, 1, o.seqK));
    const input3d = random() < 0.5;
    const layout = input3d ? 'bshd' : 'bhsd';
    const label = `${JSON.stringify({ ...c, ...o, mask: undefined, input3d })}`;
    test(label, async () => {
      const vd = o.valueHeadDim ?? o.headDim;
      const q = randomArray(o.batch * o.heads * o.seqQ * o.headDim, random);
      const k = randomArray(o.batch * o.kvHeads * o.seqK * o.headDim, random);
      const v = randomArray(o.batch * o.kvHeads * o.seqK * vd, random);
      const { model, feeds } = onnxCase(o, { opset: c.opset, input3d, mode: c.mode, q, k, v });
      const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      const result = await session.run(feeds);
      await session.release();
      // Which of rope-wasm's stages onnxruntime's mode shows (see onnxCase).
      const stage = c.mode === undefined ? undefined
        : c.mode === 0 ? 'raw' : c.mode === 3 ? 'softmax'
          : c.mode === 1 ? (c.softcap ? (c.maskKind || c.causal ? null : 'softcapped') : (c.maskKind || c.causal ? null : 'raw'))
            : c.softcap ? 'softcapped' : 'masked';
      for (const build of ['simd', 'scalar']) {
        const got = builds[build].attention(q, k, v, { ...o, layout, returnScores: stage ?? undefined });
        const output = stage ? got.output : got;
        assertClose(output, result.Y.data, `${build}: Y`);
        if (stage) assertClose(got.scores, result.S.data, `${build}: qk_matmul_output (mode ${c.mode})`, { lowest: true });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// bad input

describe('bad input to the attention options', () => {
  const base = { batch: 1, heads: 2, seqQ: 4, headDim: 8 };
  const x = new Float32Array(64);
  const cases = [
    ['a mask that does not broadcast', { ...base, mask: new Uint8Array(12), maskShape: [3, 4] }, RangeError,
      /mask of shape \[3, 4\] does not broadcast to \[batch, heads, seqQ, seqK\] = \[1, 2, 4, 4\]/],
    ['a mask of the wrong length', { ...base, mask: new Uint8Array(15) }, RangeError, /mask has length 15, neither seqQ \* seqK/],
    ['a mask length against maskShape', { ...base, mask: new Uint8Array(15), maskShape: [4, 4] }, RangeError, /maskShape \[4, 4\] needs 16/],
    ['a mask of another type', { ...base, mask: new Int8Array(16) }, TypeError, /mask must be a Uint8Array/],
    ['a 5D maskShape', { ...base, mask: new Uint8Array(16), maskShape: [1, 1, 1, 4, 4] }, RangeError, /maskShape must have 2 to 4 sizes/],
    ['maskShape without a mask', { ...base, maskShape: [4, 4] }, TypeError, /maskShape is given without a mask/],
    ['a window below -1', { ...base, window: { left: -2 } }, RangeError, /window.left must be in \[-1/],
    ['a window right below -1', { ...base, window: { right: -5 } }, RangeError, /window.right must be in \[-1/],
    ['a window with an unknown key', { ...base, window: { size: 3 } }, TypeError, /window: unknown option 'size'/],
    ['a window that is a number', { ...base, window: 3 }, TypeError, /window must be an object/],
    ['mismatched head sizes', { ...base, valueHeadDim: 6 }, RangeError, /v has length 64; expected 48 \(\[batch, kvHeads, seqK, valueHeadDim = 6\]\)/],
    ['a negative softcap', { ...base, softcap: -1 }, RangeError, /softcap must be 0 \(none\) or a positive float/],
    ['a NaN softcap', { ...base, softcap: NaN }, RangeError, /softcap must be finite/],
    ['an unknown causal alignment', { ...base, causal: 'top-right' }, RangeError, /causal must be a boolean, 'bottom-right' or 'top-left'/],
    ['causal a number', { ...base, causal: 1 }, TypeError, /causal must be a boolean/],
    ['an unknown scores stage', { ...base, returnScores: 'logits' }, RangeError, /returnScores must be one of 'raw', 'masked', 'softcapped', 'softmax'/],
    ['kvSeqLengths too long', { ...base, kvSeqLengths: [1, 2] }, RangeError, /kvSeqLengths has length 2; expected batch \(1\)/],
    ['a key length past seqK', { ...base, kvSeqLengths: [5] }, RangeError, /kvSeqLengths\[0\] must be in \[0, 4\], got 5/],
    ['kvSeqLengths not an array', { ...base, kvSeqLengths: 3 }, TypeError, /kvSeqLengths must be an Int32Array/],
  ];
  for (const [name, options, ErrorClass, pattern] of cases) {
    test(name, () => {
      const rw = builds.simd;
      const level = rw.heapInUse();
      assert.throws(() => rw.attention(x, x, x, options), (e) => e instanceof ErrorClass && pattern.test(e.message));
      assert.equal(rw.attention(x, x, x, base).length, 64, 'still usable');
      assert.equal(rw.heapInUse(), level, 'nothing leaked');
    });
  }
  test('out may not be q with a different valueHeadDim', () => {
    const rw = builds.simd;
    const t = rw.tensor(64);
    assert.throws(() => rw.attention(t, t, new Float32Array(2 * 4 * 8), { ...base, valueHeadDim: 8, out: t, kvHeads: 1 }),
      (e) => e instanceof RangeError);
    t.dispose();
  });
  test('no leak over 500 calls with every option', () => {
    const rw = builds.simd;
    const mask = new Float32Array(16).fill(0.5);
    const run = () => rw.attention(x, x, x, { ...base, mask, causal: 'top-left', softcap: 2, window: { left: 1 },
      kvSeqLengths: [3], returnScores: 'masked', returnWeights: true });
    for (let i = 0; i < 20; i++) run();
    const level = rw.heapInUse();
    for (let i = 0; i < 500; i++) run();
    assert.equal(rw.heapInUse(), level);
  });
});

// ---------------------------------------------------------------------------------------------
// float16 and bfloat16 tensors (dtype): Uint16Array bit patterns in and out, converted in the kernel.

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
const roundEven = (y) => {
  const f = Math.floor(y);
  const d = y - f;
  if (d !== 0.5) return d > 0.5 ? f + 1 : f;
  return f % 2 === 0 ? f : f + 1;
};
/** float16 bits -> number, and number -> float16 bits (round to nearest even), written here. */
function halfToNumber(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m ? NaN : sign * Infinity;
  return e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
}
function numberToHalf(x) {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundEven(a * 2 ** 24);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const m = roundEven((a / 2 ** e - 1) * 1024);
  return m === 1024 ? sign | ((e + 16) << 10) : sign | ((e + 15) << 10) | m;
}
function bfloat16ToNumber(h) {
  U32[0] = h << 16;
  return F32[0];
}
function numberToBfloat16(x) {
  F32[0] = x;
  const bits = U32[0];
  if (Number.isNaN(F32[0])) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}
const HALF = {
  float16: { decode: halfToNumber, encode: numberToHalf, eps: 2 ** -11, tiny: 2 ** -25 },
  bfloat16: { decode: bfloat16ToNumber, encode: numberToBfloat16, eps: 2 ** -8, tiny: 0 },
};
const toHalf = (dtype, values) => Uint16Array.from(values, (x) => HALF[dtype].encode(x));
const fromHalf = (dtype, bits) => Float64Array.from(bits, (h) => HALF[dtype].decode(h));

/**
 * Each element within half an ulp of the 16-bit type of the float64 value (the output's rounding)
 * plus `rel` of the largest magnitude (the float32 computation, or another implementation's).
 */
function assertHalfClose(actual, expected, dtype, what, rel = REL_TOL) {
  const { eps, tiny } = HALF[dtype];
  let mag = 1e-30;
  for (const e of expected) mag = Math.max(mag, Math.abs(e));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(a) || Number.isNaN(e)) assert.fail(`${what}: element ${i} is ${a}, expected ${e}`);
    const tol = eps * Math.abs(e) + tiny + rel * mag;
    if (!(Math.abs(a - e) <= tol)) assert.fail(`${what}: element ${i} is ${a}, expected ${e} (tolerance ${tol})`);
  }
}

describe('float16 and bfloat16 tensors (dtype)', () => {
  test('the test conversions round trip every pattern', () => {
    for (let h = 0; h < 65536; h++) {
      for (const dtype of ['float16', 'bfloat16']) {
        const x = HALF[dtype].decode(h);
        if (!Number.isNaN(x)) assert.equal(HALF[dtype].encode(x), h, `${dtype} ${h}`);
      }
    }
  });

  for (const dtype of ['float16', 'bfloat16']) {
    test(`${dtype}: random shapes and options against float64`, () => {
      const random = randomGenerator(dtype === 'float16' ? 161 : 162);
      for (const [name, rw] of Object.entries(builds)) {
        for (let n = 0; n < 40; n++) {
          const kvHeads = pick(random, [1, 2]);
          const heads = kvHeads * pick(random, [1, 2]);
          const batch = pick(random, [1, 2]);
          const seqQ = n % 8 === 0 ? between(random, 100, 140) : between(random, 1, 12);
          const seqK = n % 8 === 0 ? between(random, 100, 160) : between(random, 1, 12);
          const headDim = pick(random, [4, 8, 13, 16]);
          const valueHeadDim = pick(random, [headDim, headDim, 6]);
          const layout = pick(random, ['bhsd', 'bshd', 'sbhd']);
          const causal = pick(random, [false, true, 'top-left']);
          const softcap = pick(random, [0, 0, 3]);
          const window = pick(random, [null, null, { left: 3 }]);
          const values = (count, amplitude) => Array.from(randomArray(count, random), (x) => x * amplitude);
          const q = toHalf(dtype, values(batch * heads * seqQ * headDim, 2));
          const k = toHalf(dtype, values(batch * kvHeads * seqK * headDim, 2));
          const v = toHalf(dtype, values(batch * kvHeads * seqK * valueHeadDim, 4));
          const mask = n % 3 === 0 ? Float32Array.from(randomArray(seqQ * seqK, random), (x) => (x < -0.7 ? -Infinity : x)) : undefined;
          const shape = { batch, heads, kvHeads, seqQ, seqK, headDim, valueHeadDim, layout, causal, softcap };
          const options = { ...shape, ...(window ? { window } : {}), ...(mask ? { mask } : {}) };
          const out = rw.attention(q, k, v, { ...options, dtype });
          assert.ok(out instanceof Uint16Array);
          assert.equal(out.length, batch * heads * seqQ * valueHeadDim);
          const additive = mask ? (b, h, i, j) => mask[i * seqK + j] : null;
          const ref = attentionF64(fromHalf(dtype, q), fromHalf(dtype, k), fromHalf(dtype, v), { ...shape, window, additive });
          assertHalfClose(fromHalf(dtype, out), ref.out, dtype, `${name} ${dtype} case ${n} ${JSON.stringify(shape)}`);
          // Bit for bit the float32 kernel on the same (exactly converted) values, rounded.
          const f32 = rw.attention(Float32Array.from(fromHalf(dtype, q)), Float32Array.from(fromHalf(dtype, k)),
            Float32Array.from(fromHalf(dtype, v)), options);
          assert.deepEqual(out, toHalf(dtype, f32), `${name} ${dtype} case ${n}: the float32 result rounded`);
        }
      }
    });
  }

  test('NaN and inf pass through; large values round to inf in float16; out may be q; weights stay float32', () => {
    const rw = builds.simd;
    // One key: out is v exactly, whatever its bits.
    const patterns = Uint16Array.from([0x3c00, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x8001, 0x7bff, 0x03ff]);
    for (const dtype of ['float16', 'bfloat16']) {
      const out = rw.attention(new Uint16Array(1), new Uint16Array(1), patterns,
        { batch: 1, heads: 1, seqQ: 1, headDim: 1, valueHeadDim: 8, dtype });
      for (let i = 0; i < 8; i++) {
        const want = HALF[dtype].decode(patterns[i]);
        const got = HALF[dtype].decode(out[i]);
        assert.ok(Number.isNaN(want) ? Number.isNaN(got) : got === want, `${dtype} pattern ${patterns[i].toString(16)}: ${got}`);
      }
    }
    // 65504 and 65504 + 32 (bfloat16 can hold it): the mean of two keys, 65520, is float16's inf.
    const big = rw.attention(new Uint16Array(1), new Uint16Array(2), Uint16Array.from([0x7bff, 0x7bff]),
      { batch: 1, heads: 1, seqQ: 1, seqK: 2, headDim: 1, dtype: 'float16' });
    assert.equal(big[0], 0x7bff);
    const q = toHalf('float16', [1, 0, 0, 1, 0.5, 0.5, 1, 1]);
    const expected = rw.attention(q, q, q, { batch: 1, heads: 1, seqQ: 4, headDim: 2, dtype: 'float16' });
    const result = rw.attention(q.slice(), q, q, { batch: 1, heads: 1, seqQ: 4, headDim: 2, dtype: 'float16', returnWeights: true });
    assert.ok(result.weights instanceof Float32Array);
    assert.deepEqual(result.output, expected);
    const inPlace = q.slice();
    assert.equal(rw.attention(inPlace, q, q, { batch: 1, heads: 1, seqQ: 4, headDim: 2, dtype: 'float16', out: inPlace }), inPlace);
    assert.deepEqual(inPlace, expected);
  });

  test('float16 against onnxruntime-node (float16 ONNX Attention-23 models)', async () => {
    // onnxruntime-node runs Attention-23 in float16 on the CPU; not in bfloat16 (no kernel).
    const random = randomGenerator(163);
    const combos = [
      { batch: 1, heads: 2, seqQ: 5, seqK: 5, headDim: 8, attributes: {} },
      { batch: 2, heads: 2, seqQ: 7, seqK: 7, headDim: 16, attributes: { is_causal: 1 } },
      { batch: 1, heads: 4, kvHeads: 2, seqQ: 3, seqK: 9, headDim: 8, attributes: { is_causal: 1 } },
      { batch: 1, heads: 2, seqQ: 6, seqK: 6, headDim: 8, attributes: { softcap: 2.5 } },
      { batch: 1, heads: 2, seqQ: 130, seqK: 130, headDim: 32, attributes: { is_causal: 1, scale: 0.3 } },
    ];
    for (const c of combos) {
      const kvHeads = c.kvHeads ?? c.heads;
      const dimsQ = [c.batch, c.heads, c.seqQ, c.headDim];
      const dimsK = [c.batch, kvHeads, c.seqK, c.headDim];
      const q = toHalf('float16', randomArray(dimsQ.reduce((a, b) => a * b), random));
      const k = toHalf('float16', randomArray(dimsK.reduce((a, b) => a * b), random));
      const v = toHalf('float16', Array.from(randomArray(dimsK.reduce((a, b) => a * b), random), (x) => 3 * x));
      const model = singleNodeModel({ opType: 'Attention', opset: 23,
        inputs: [{ name: 'Q', type: 'float16', dims: dimsQ }, { name: 'K', type: 'float16', dims: dimsK }, { name: 'V', type: 'float16', dims: dimsK }],
        outputs: [{ name: 'Y', type: 'float16', dims: dimsQ }], attributes: c.attributes });
      const session = await ort.InferenceSession.create(model);
      const y = (await session.run({ Q: new ort.Tensor('float16', q, dimsQ), K: new ort.Tensor('float16', k, dimsK),
        V: new ort.Tensor('float16', v, dimsK) })).Y.data;
      const ours = builds.simd.attention(q, k, v, { batch: c.batch, heads: c.heads, kvHeads, seqQ: c.seqQ, seqK: c.seqK,
        headDim: c.headDim, dtype: 'float16', causal: c.attributes.is_causal ? 'top-left' : false,
        softcap: c.attributes.softcap ?? 0, scale: c.attributes.scale ?? 1 / Math.sqrt(c.headDim) });
      // Each side rounds its output to float16 (half an ulp each), and onnxruntime may round on the way.
      assertHalfClose(fromHalf('float16', ours), fromHalf('float16', y), 'float16', `onnxruntime ${JSON.stringify(c)}`, 2e-3);
    }
  });

  test('bad dtype input: clear errors, module still usable', () => {
    const rw = builds.simd;
    const base = { batch: 1, heads: 1, seqQ: 2, headDim: 2 };
    const h = new Uint16Array(4);
    const level = rw.heapInUse();
    assert.throws(() => rw.attention(h, h, h, { ...base, dtype: 'float64' }), (e) => e instanceof RangeError && /dtype must be one of 'float32', 'float16', 'bfloat16'/.test(e.message));
    assert.throws(() => rw.attention(new Float32Array(4), h, h, { ...base, dtype: 'float16' }), (e) => e instanceof TypeError && /q must be a Uint16Array \(the float16 bit patterns\)/.test(e.message));
    assert.throws(() => rw.attention(h, h, h, base), (e) => e instanceof TypeError && /q must be a Float32Array/.test(e.message));
    assert.throws(() => rw.attention(h, h, new Uint16Array(3), { ...base, dtype: 'bfloat16' }), (e) => e instanceof RangeError && /v has length 3; expected 4/.test(e.message));
    assert.throws(() => rw.attention(h, h, h, { ...base, dtype: 'float16', out: new Float32Array(4) }), (e) => e instanceof TypeError && /out must be a Uint16Array/.test(e.message));
    assert.equal(rw.attention(h, h, h, { ...base, dtype: 'float16' }).length, 4, 'still usable');
    assert.equal(rw.heapInUse(), level, 'nothing leaked');
  });
});
