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
 * Float64 attention, from the definitions. q [batch, heads, seqQ, headDim], k [batch, kvHeads,
 * seqK, headDim], v [batch, kvHeads, seqK, valueHeadDim] in `layout`.
 * rope: {dim, invFreq, attentionScaling, pairing} or null: applied to k at offset + j and to q at
 * offset + seqK - seqQ + i.
 * causal: false | true | 'bottom-right' (query i at key position i + seqK - seqQ) | 'top-left'
 * (at i); window {left, right} (-1 unbounded) around that position (bottom-right without causal);
 * kvSeqLengths: keys j >= kvSeqLengths[b] hidden, and bottom-right puts the last query at the last
 * valid key; mask(b, h, i, j): false = hidden;
 * additive(b, h, i, j): added to the scaled score (-inf hides); softcap: s -> softcap tanh(s / softcap)
 * after the mask, hidden keys staying -inf.
 * Returns {out (layout of q), weights, scores: {raw, masked, softcapped}} (each [batch, heads, seqQ,
 * seqK]); rows that see no key give zeros.
 */
export function attentionF64(q, k, v, { batch, heads, kvHeads = heads, seqQ, seqK = seqQ, headDim, valueHeadDim = headDim,
  layout = 'bhsd', causal = false, scale = 1 / Math.sqrt(headDim), rope = null, offset = 0, mask = null,
  additive = null, softcap = 0, window = null, kvSeqLengths = null }) {
  const qShape = shapeOf(layout, batch, heads, seqQ, headDim);
  const kShape = shapeOf(layout, batch, kvHeads, seqK, headDim);
  if (rope) {
    const common = { layout, dim: rope.dim, invFreq: rope.invFreq, attentionScaling: rope.attentionScaling ?? 1, pairing: rope.pairing ?? 'half' };
    q = ropeF64(q, { ...common, shape: qShape, positionOf: (b, s) => offset + seqK - seqQ + s });
    k = ropeF64(k, { ...common, shape: kShape, positionOf: (b, s) => offset + s });
  }
  const qi = layoutIndex(layout, qShape);
  const ki = layoutIndex(layout, kShape);
  const oi = layoutIndex(layout, shapeOf(layout, batch, heads, seqQ, valueHeadDim));
  const vi = layoutIndex(layout, shapeOf(layout, batch, kvHeads, seqK, valueHeadDim));
  // layoutIndex(...).at(b, s, h): the element offset of the head vector.
  const out = new Float64Array(batch * heads * seqQ * valueHeadDim);
  const n = batch * heads * seqQ * seqK;
  const weights = new Float64Array(n);
  const scores = { raw: new Float64Array(n), masked: new Float64Array(n), softcapped: new Float64Array(n) };
  const group = heads / kvHeads;
  const topLeft = causal === 'top-left';
  const left = window?.left ?? -1;
  const right = window?.right ?? -1;
  const capped = new Float64Array(seqK);
  const sees = new Uint8Array(seqK);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < seqQ; i++) {
        const qo = qi.at(b, i, h);
        // bottom-right: the last query at the last valid key
        const pos = topLeft ? i : i + (kvSeqLengths ? Number(kvSeqLengths[b]) : seqK) - seqQ;
        const row = ((b * heads + h) * seqQ + i) * seqK;
        let max = -Infinity;
        for (let j = 0; j < seqK; j++) {
          const ko = ki.at(b, j, kh);
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[qo + d] * k[ko + d];
          const raw = dot * scale;
          let visible = (!causal || j <= pos) && (left < 0 || j >= pos - left) && (right < 0 || j <= pos + right)
            && (!kvSeqLengths || j < Number(kvSeqLengths[b])) && (!mask || mask(b, h, i, j));
          let x = -Infinity;
          if (visible) {
            x = raw + (additive ? additive(b, h, i, j) : 0);
            if (x === -Infinity) visible = false;
          }
          scores.raw[row + j] = raw;
          scores.masked[row + j] = x;
          if (softcap && x !== -Infinity) x = softcap * Math.tanh(x / softcap);
          scores.softcapped[row + j] = x;
          capped[j] = x;
          sees[j] = visible ? 1 : 0;
          if (visible && x > max) max = x;
        }
        if (max === -Infinity) continue;  // fully masked: zeros
        let sum = 0;
        for (let j = 0; j < seqK; j++) {
          capped[j] = sees[j] ? Math.exp(capped[j] - max) : 0;
          sum += capped[j];
        }
        const oo = oi.at(b, i, h);
        for (let j = 0; j < seqK; j++) {
          const p = capped[j] / sum;
          weights[row + j] = p;
          if (p === 0) continue;
          const vo = vi.at(b, j, kh);
          for (let d = 0; d < valueHeadDim; d++) out[oo + d] += p * v[vo + d];
        }
      }
    }
  }
  return { out, weights, scores };
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
