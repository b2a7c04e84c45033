// rope-f64.js: RoPE in float64 plain JavaScript, written from the formulas (the seed, the
// RoFormer paper, transformers' rope_parameters). The independent reference the tests hold the
// wasm module to; deliberately simple and slow.

export function defaultFrequencies(dim, base) {
  const out = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = 1 / base ** ((2 * i) / dim);
  return out;
}

/**
 * Inverse frequencies and attention scaling of a scaling config (the API's camelCase names),
 * for a call whose longest position + 1 is seqLen (dynamic: the longest seen, HF's rule applied
 * by the caller).
 */
export function scaledFrequencies(dim, base, scaling, seqLen = 0) {
  if (!scaling) return { invFreq: defaultFrequencies(dim, base), attentionScaling: 1 };
  const half = dim / 2;
  switch (scaling.type) {
    case 'linear':
      return { invFreq: defaultFrequencies(dim, base).map((f) => f / scaling.factor), attentionScaling: 1 };
    case 'dynamic': {
      const orig = scaling.originalMaxPositions;
      const L = Math.max(seqLen, orig);
      const grown = base * ((scaling.factor * L) / orig - (scaling.factor - 1)) ** (dim / (dim - 2));
      return { invFreq: defaultFrequencies(dim, grown), attentionScaling: 1 };
    }
    case 'yarn': {
      const { factor, originalMaxPositions: orig } = scaling;
      const betaFast = scaling.betaFast ?? 32;
      const betaSlow = scaling.betaSlow ?? 1;
      const correctionDim = (rot) => (dim * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(base));
      let low = correctionDim(betaFast);
      let high = correctionDim(betaSlow);
      if (scaling.truncate ?? true) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, dim - 1);
      if (low === high) high += 0.001;
      const invFreq = new Float64Array(half);
      for (let i = 0; i < half; i++) {
        const extrapolation = 1 / base ** ((2 * i) / dim);
        const interpolation = extrapolation / factor;
        const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
        const extrapolationWeight = 1 - ramp;
        invFreq[i] = interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight;
      }
      const mscale = (s, m = 1) => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);
      let attentionScaling = scaling.attentionFactor;
      if (!attentionScaling) {
        attentionScaling = scaling.mscale && scaling.mscaleAllDim
          ? mscale(factor, scaling.mscale) / mscale(factor, scaling.mscaleAllDim)
          : mscale(factor);
      }
      return { invFreq, attentionScaling };
    }
    case 'llama3': {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions: orig } = scaling;
      const lowWavelen = orig / lowFreqFactor;
      const highWavelen = orig / highFreqFactor;
      const invFreq = defaultFrequencies(dim, base).map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) return f;
        if (wavelen > lowWavelen) return f / factor;
        const smooth = (orig / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return ((1 - smooth) * f) / factor + smooth * f;
      });
      return { invFreq, attentionScaling: 1 };
    }
    case 'longrope': {
      const orig = scaling.originalMaxPositions;
      const ext = seqLen > orig ? scaling.longFactor : scaling.shortFactor;
      const invFreq = new Float64Array(half);
      for (let i = 0; i < half; i++) invFreq[i] = 1 / (ext[i] * base ** ((2 * i) / dim));
      let attentionScaling = scaling.attentionFactor;
      if (!attentionScaling) {
        const factor = scaling.maxPositions / orig;
        attentionScaling = factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(orig));
      }
      return { invFreq, attentionScaling };
    }
    default:
      throw new Error(`unknown scaling ${scaling.type}`);
  }
}

/** Strides of the token (b, s) and head h of a head vector, in elements, for a layout. */
export function layoutIndex(layout, shape) {
  const [n0, n1, n2, d] = shape;
  if (layout === 'sbhd') return { seq: n0, batch: n1, heads: n2, at: (b, s, h) => ((s * n1 + b) * n2 + h) * d };
  if (layout === 'bshd') return { seq: n1, batch: n0, heads: n2, at: (b, s, h) => ((b * n1 + s) * n2 + h) * d };
  if (layout === 'bhsd') return { seq: n2, batch: n0, heads: n1, at: (b, s, h) => ((b * n1 + h) * n2 + s) * d };
  throw new Error(`unknown layout ${layout}`);
}

/**
 * y = RoPE(x) in float64. positionOf(b, s) gives the position of token s of batch row b.
 * Returns a Float64Array.
 */
export function ropeF64(x, { shape, layout = 'sbhd', dim, invFreq, attentionScaling = 1, pairing = 'half',
  positionOf = (b, s) => s, inverse = false }) {
  const { seq, batch, heads, at } = layoutIndex(layout, shape);
  const y = Float64Array.from(x);
  const half = dim / 2;
  const sign = inverse ? -1 : 1;
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seq; s++) {
      const p = positionOf(b, s);
      for (let h = 0; h < heads; h++) {
        const o = at(b, s, h);
        for (let i = 0; i < half; i++) {
          const angle = p * invFreq[i];
          const c = Math.cos(angle) * attentionScaling;
          const sn = Math.sin(angle) * attentionScaling * sign;
          const [i1, i2] = pairing === 'half' ? [i, i + half] : [2 * i, 2 * i + 1];
          const x1 = x[o + i1];
          const x2 = x[o + i2];
          y[o + i1] = x1 * c - x2 * sn;
          y[o + i2] = x2 * c + x1 * sn;
        }
      }
    }
  }
  return y;
}

export function maxAbs(a) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** A seeded generator of uniform floats in [-1, 1) (mulberry32), so failures reproduce. */
export function randomGenerator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export function randomArray(n, random) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = random();
  return out;
}
