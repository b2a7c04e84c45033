// attention-f64.js: attention and the seed's RoPE multi-head attention in float64 plain
// JavaScript, from the definitions. The independent reference for tests/attention.test.js.
import { defaultFrequencies, layoutIndex, ropeF64 } from './rope-f64.js';

/** The shape of a [batch, heads, seq, headDim] tensor in `layout` order. */
export function shapeOf(layout, batch, heads, seq, headDim) {
  if (layout === 'bhsd') return [batch, heads, seq, headDim];
  if (layout === 'bshd') return [batch, seq, heads, headDim];
  return [seq, batch, heads, headDim];
}

/**
 * Float64 attention. q [batch, heads, seqQ, d], k/v [batch, kvHeads, seqK, d] in `layout`.
 * rope: {dim, invFreq, attentionScaling, pairing} or null: applied to k at offset + j and to q at
 * offset + seqK - seqQ + i. causal: bottom-right. mask(b, h, i, j): optional, false = masked.
 * Returns {out (layout of q), weights [batch, heads, seqQ, seqK]}; fully masked rows give zeros.
 */
export function attentionF64(q, k, v, { batch, heads, kvHeads = heads, seqQ, seqK = seqQ, headDim, layout = 'bhsd',
  causal = false, scale = 1 / Math.sqrt(headDim), rope = null, offset = 0, mask = null }) {
  const qShape = shapeOf(layout, batch, heads, seqQ, headDim);
  const kShape = shapeOf(layout, batch, kvHeads, seqK, headDim);
  if (rope) {
    const common = { layout, dim: rope.dim, invFreq: rope.invFreq, attentionScaling: rope.attentionScaling ?? 1, pairing: rope.pairing ?? 'half' };
    q = ropeF64(q, { ...common, shape: qShape, positionOf: (b, s) => offset + seqK - seqQ + s });
    k = ropeF64(k, { ...common, shape: kShape, positionOf: (b, s) => offset + s });
  }
  const qi = layoutIndex(layout, qShape);
  const ki = layoutIndex(layout, kShape);
  // layoutIndex(...).at(b, s, h): the element offset of the head vector.
  const out = new Float64Array(q.length);
  const weights = new Float64Array(batch * heads * seqQ * seqK);
  const group = heads / kvHeads;
  const scores = new Float64Array(seqK);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < seqQ; i++) {
        const qo = qi.at(b, i, h);
        let max = -Infinity;
        for (let j = 0; j < seqK; j++) {
          const visible = (!causal || j <= i + seqK - seqQ) && (!mask || mask(b, h, i, j));
          if (!visible) {
            scores[j] = -Infinity;
            continue;
          }
          const ko = ki.at(b, j, kh);
          let s = 0;
          for (let d = 0; d < headDim; d++) s += q[qo + d] * k[ko + d];
          scores[j] = s * scale;
          max = Math.max(max, scores[j]);
        }
        if (max === -Infinity) continue;  // fully masked: zeros
        let sum = 0;
        for (let j = 0; j < seqK; j++) {
          scores[j] = scores[j] === -Infinity ? 0 : Math.exp(scores[j] - max);
          sum += scores[j];
        }
        const wo = ((b * heads + h) * seqQ + i) * seqK;
        for (let j = 0; j < seqK; j++) {
          const p = scores[j] / sum;
          weights[wo + j] = p;
          if (p === 0) continue;
          const vo = ki.at(b, j, kh);
          for (let d = 0; d < headDim; d++) out[qo + d] += p * v[vo + d];
        }
      }
    }
  }
  return { out, weights };
}

/** y = x W^T + b in float64; x [rows, in], W [out, in]. */
export function linearF64(x, weight, bias, rows, inSize, outSize) {
  const y = new Float64Array(rows * outSize);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outSize; o++) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < inSize; i++) s += x[r * inSize + i] * weight[o * inSize + i];
      y[r * outSize + o] = s;
    }
  }
  return y;
}

/**
 * The seed's RotaryPEMultiHeadAttention in float64: x [seq, batch, dModel], weights
 * {query, key, value, output: {weight, bias}}, mask(i, j, b) optional (false = masked).
 */
export function mhaF64(x, { seq, batch, heads, dModel, ropePercentage, base = 10000, weights, causal = false, mask = null }) {
  const dK = dModel / heads;
  const dRope = Math.trunc(dK * ropePercentage);
  const rows = seq * batch;
  const project = (w) => linearF64(x, w.weight, w.bias, rows, dModel, dModel);
  const q = project(weights.query);
  const k = project(weights.key);
  const v = project(weights.value);
  const rope = dRope > 0 ? { dim: dRope, invFreq: defaultFrequencies(dRope, base) } : null;
  const { out } = attentionF64(q, k, v, {
    batch, heads, seqQ: seq, headDim: dK, layout: 'sbhd', causal, rope, scale: 1 / Math.sqrt(dK),
    mask: mask && ((b, h, i, j) => mask(i, j, b)),
  });
  return linearF64(out, weights.output.weight, weights.output.bias, rows, dModel, dModel);
}
