// conformance.test.js: the wasm module against ../shared/reference: the seed's PyTorch RoPE
// (float32 output and float64 formula), the interleaved pairing, and transformers'
// LlamaRotaryEmbedding for every rope type. Both builds (SIMD and scalar) are checked.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadRope } from '../js/index.js';
import { caseNames, loadCase, requireReference } from './helpers/reference.js';
import { maxAbs, maxAbsDiff, ropeF64, scaledFrequencies } from './helpers/rope-f64.js';

const skip = requireReference();
const builds = {};
before(async () => {
  builds.simd = await loadRope({ simd: true });
  builds.scalar = await loadRope({ simd: false });
});

// Float32 output of a correct implementation sits within this many times the largest
// magnitude of the float64 truth (README of the reference: "about 1e-5"; we hold to 1e-6).
const REL_TOL_F64 = 1e-6;

for (const build of ['simd', 'scalar']) {
  describe(`${build} build: the seed's RotaryPositionalEmbeddings`, { skip }, () => {
    for (const name of caseNames('seed_rope_')) {
      test(name, () => {
        const c = loadCase(name);
        const rope = builds[build].rotaryEmbedding({ dim: c.d_rope, base: c.base });
        const y = rope.apply(c.arrays.x, { shape: c.shapes.x, layout: 'sbhd' });
        const scale = maxAbs(c.arrays.y_f64);
        const errTruth = maxAbsDiff(y, c.arrays.y_f64);
        assert.ok(errTruth <= REL_TOL_F64 * scale, `max error vs float64 ${errTruth} > ${REL_TOL_F64 * scale}`);
        // PyTorch computes angles in float32 and drifts from the truth by max_abs_err_f32_vs_f64;
        // we may differ from it by no more than that plus our own float32 rounding.
        const errTorch = maxAbsDiff(y, c.arrays.y_seed_f32);
        const bound = c.max_abs_err_f32_vs_f64 + REL_TOL_F64 * scale;
        assert.ok(errTorch <= bound, `max error vs PyTorch float32 ${errTorch} > ${bound}`);
        rope.dispose();
      });
    }

    for (const name of ['seed_example_d4', 'seed_example_d2']) {
      test(`${name}: the seed's own test vector [[1,2,3,4],[4,5,6,7],[7,8,9,10]]`, () => {
        const c = loadCase(name);
        const rope = builds[build].rotaryEmbedding({ dim: c.d_rope, base: c.base });
        const y = rope.apply(c.arrays.x, { shape: c.shapes.x });
        // Three positions: PyTorch's float32 angles are still exact to float32 rounding here.
        assert.ok(maxAbsDiff(y, c.arrays.y_seed_f32) <= 1e-6 * maxAbs(c.arrays.y_seed_f32));
        const truth = ropeF64(c.arrays.x, {
          shape: c.shapes.x, dim: c.d_rope, invFreq: scaledFrequencies(c.d_rope, c.base).invFreq,
        });
        assert.ok(maxAbsDiff(y, truth) <= 1e-6 * maxAbs(truth));
        rope.dispose();
      });
    }

    test('seed_example with d = 3 (the seed\'s own call) is a RangeError saying dim must be even', () => {
      assert.throws(() => builds[build].rotaryEmbedding({ dim: 3 }), (e) => e instanceof RangeError && /dim must be even/.test(e.message));
    });
  });

  describe(`${build} build: interleaved pairing (RoFormer)`, { skip }, () => {
    for (const name of caseNames('interleaved_')) {
      test(name, () => {
        const c = loadCase(name);
        const rope = builds[build].rotaryEmbedding({ dim: c.d_rope, base: c.base, pairing: 'interleaved' });
        const y = rope.apply(c.arrays.x, { shape: c.shapes.x, layout: 'sbhd' });
        const scale = maxAbs(c.arrays.y_f64);
        assert.ok(maxAbsDiff(y, c.arrays.y_f64) <= REL_TOL_F64 * scale);
        rope.dispose();
      });
    }
  });

  describe(`${build} build: transformers' rope types`, { skip }, () => {
    for (const name of caseNames('hf_')) {
      test(name, () => checkHfCase(builds[build], loadCase(name)));
    }
  });
}

/** The rope-wasm scaling option for a transformers rope_parameters case. */
export function scalingOf(c) {
  const p = c.params;
  switch (c.rope_type) {
    case 'default':
      return undefined;
    case 'linear':
      return { type: 'linear', factor: p.factor };
    case 'dynamic':
      return { type: 'dynamic', factor: p.factor, originalMaxPositions: c.max_position_embeddings };
    case 'yarn':
      return {
        type: 'yarn', factor: p.factor, originalMaxPositions: p.original_max_position_embeddings,
        ...(p.beta_fast !== undefined && { betaFast: p.beta_fast }),
        ...(p.beta_slow !== undefined && { betaSlow: p.beta_slow }),
      };
    case 'llama3':
      return {
        type: 'llama3', factor: p.factor, lowFreqFactor: p.low_freq_factor, highFreqFactor: p.high_freq_factor,
        originalMaxPositions: p.original_max_position_embeddings,
      };
    case 'longrope':
      return {
        type: 'longrope', shortFactor: p.short_factor, longFactor: p.long_factor,
        originalMaxPositions: p.original_max_position_embeddings, maxPositions: c.max_position_embeddings,
      };
  }
  throw new Error(`unknown rope_type ${c.rope_type}`);
}

function checkHfCase(rw, c) {
  const headDim = c.head_dim;
  const dim = Math.trunc(headDim * c.partial_rotary_factor);
  const half = dim / 2;
  const scaling = scalingOf(c);
  const rope = rw.rotaryEmbedding({ dim, base: c.rope_theta, scaling });

  // transformers computes inv_freq in float32 (a few roundings): agree to within 4 float32 ulps.
  const hfInv = c.arrays.inv_freq;
  const inv = rope.inverseFrequencies;
  assert.equal(inv.length, half);
  for (let i = 0; i < half; i++) {
    assert.ok(Math.abs(inv[i] - hfInv[i]) <= 5e-7 * hfInv[i], `inverseFrequencies[${i}] ${inv[i]} vs ${hfInv[i]}`);
  }
  assert.ok(Math.abs(rope.attentionScaling - c.attention_scaling) <= 1e-12, `attentionScaling ${rope.attentionScaling}`);

  for (const which of ['short', 'long']) {
    const positions = c.arrays[`positions_${which}`];
    const hfCos = c.arrays[`cos_${which}`];
    const hfSin = c.arrays[`sin_${which}`];
    const P = positions.length;
    // x = ones on the first half of the rotary features: y[i] = cos_i, y[i + half] = sin_i.
    const x = new Float32Array(P * headDim);
    for (let p = 0; p < P; p++) x.fill(1, p * headDim, p * headDim + half);
    const y = rope.apply(x, { shape: [P, 1, 1, headDim], positions });

    const seqLen = Math.max(...positions) + 1;
    const ref = scaledFrequencies(dim, c.rope_theta, scaling, seqLen);
    for (let p = 0; p < P; p++) {
      for (let i = 0; i < half; i++) {
        const angle = positions[p] * ref.invFreq[i];
        const cosTruth = Math.cos(angle) * ref.attentionScaling;
        const sinTruth = Math.sin(angle) * ref.attentionScaling;
        const cos = y[p * headDim + i];
        const sin = y[p * headDim + half + i];
        const where = `${which} position ${positions[p]} frequency ${i}`;
        assert.ok(Math.abs(cos - cosTruth) <= 4e-7, `cos at ${where}: ${cos} vs float64 ${cosTruth}`);
        assert.ok(Math.abs(sin - sinTruth) <= 4e-7, `sin at ${where}: ${sin} vs float64 ${sinTruth}`);
        // transformers' cos/sin (float32 angles) differ from the truth; we stay within that
        // distance of them (plus float32 rounding), and at both halves of its rotate_half layout.
        for (const j of [i, i + half]) {
          const hfc = hfCos[p * dim + j];
          const hfs = hfSin[p * dim + j];
          assert.ok(Math.abs(cos - hfc) <= Math.abs(hfc - cosTruth) + 4e-7, `cos at ${where} vs transformers ${hfc}`);
          assert.ok(Math.abs(sin - hfs) <= Math.abs(hfs - sinTruth) + 4e-7, `sin at ${where} vs transformers ${hfs}`);
        }
      }
      // Features past the rotary dim pass through untouched (zeros here).
      for (let i = dim; i < headDim; i++) assert.equal(y[p * headDim + i], 0);
    }
  }
  rope.dispose();
}
