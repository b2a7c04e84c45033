// model.js: what every view needs from the state, computed with the wasm module. Shared by the
// page (app.js) and the worker (worker.js): no DOM here.
//
// Every number a view shows comes from the module: the scores (the q·k readout, the decay curves,
// the heatmap) from rope.scores, the rotated vectors from rope.apply, cos and sin by rotating a unit
// vector, the frequencies from rope.inverseFrequencies. JavaScript only reads angles back with
// atan2 and splits q·k into the parts each pair contributes (the dials' data table).

/** The rotary dim for head_dim and the rope percentage: the seed's int(d_k * p), made even, >= 2. */
export function rotaryDim(headDim, pct) {
  return Math.min(headDim, Math.max(2, 2 * Math.floor((headDim * pct) / 2)));
}

/** The features [a, b] that form plane i. */
export function pairFeatures(i, dim, pairing) {
  return pairing === 'half' ? [i, i + dim / 2] : [2 * i, 2 * i + 1];
}

/**
 * LongRoPE's factors are searched per model; these are illustrative: 1 for the fast pairs rising
 * to `factor` (and a little more) for the slowest, the shape Phi-3's published factors have.
 */
export function longropeFactors(dim, factor) {
  const half = dim / 2;
  const shortFactor = new Array(half).fill(1);
  const longFactor = Array.from({ length: half }, (_, i) => {
    const t = half > 1 ? i / (half - 1) : 1;
    return 1 + (factor * 1.1 - 1) * t * t;
  });
  return { shortFactor, longFactor };
}

/** The scaling option of rw.rotaryEmbedding for the state, or null. */
export function scalingOption(state, dim) {
  const { scaling: type, factor, train } = state;
  switch (type) {
    case 'linear': return { type, factor };
    case 'dynamic': return { type, factor, originalMaxPositions: train };
    case 'yarn': return { type, factor, originalMaxPositions: train };
    case 'llama3': return { type, factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: train };
    case 'longrope': return { type, originalMaxPositions: train, maxPositions: train * factor, ...longropeFactors(dim, factor) };
    default: return null;
  }
}

export function ropeOptions(state, { scaled = true } = {}) {
  const dim = rotaryDim(state.hd, state.pct);
  return { dim, base: state.base, pairing: state.pairing, scaling: scaled ? scalingOption(state, dim) : null };
}

/** A small seeded PRNG (mulberry32) and normal samples from it, so the URL fixes q and k. */
export function rng(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

/** The seed's example x = [[1,2,3,4],[4,5,6,7],[7,8,9,10]]. */
export const SEED_X = new Float32Array([1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10]);

/**
 * q and k for the state: random normal vectors (k = 0.8 q + 0.6 noise: a key whose content matches
 * the query's, as the decay argument assumes), or the seed's first two tokens when head_dim is 4.
 */
export function vectors(state) {
  const hd = state.hd;
  if (state.vec === 'seed' && hd === 4) return { q: SEED_X.slice(0, 4), k: SEED_X.slice(4, 8) };
  const r = rng(state.seed);
  const q = new Float32Array(hd);
  const k = new Float32Array(hd);
  for (let i = 0; i < hd; i++) q[i] = r.normal();
  for (let i = 0; i < hd; i++) k[i] = 0.8 * q[i] + 0.6 * r.normal();
  return { q, k };
}

/** x repeated `count` times, [count, x.length]: one row per position to score it at. */
export function repeatRows(x, count, into = new Float32Array(count * x.length)) {
  for (let r = 0; r < count; r++) into.set(x, r * x.length);
  return into;
}

/** The module's q·k for q at position m and k at position n: a 1 × 1 rope.scores call. */
export function scoreAt(rope, q, k, m, n) {
  return rope.scores(q, k, { headDim: q.length, positionsQ: [m], positionsK: [n] })[0];
}

/** Angle wrapped to (-pi, pi]. */
export function wrap(angle) {
  const t = angle - 2 * Math.PI * Math.floor((angle + Math.PI) / (2 * Math.PI));
  return t <= -Math.PI ? t + 2 * Math.PI : t;
}

/**
 * The largest distance |m − n| at which every pair is turned between q and k no further than
 * training ever turned it, or Infinity. Training (frequencies `trainTheta`, `train` positions)
 * turned pair i through at most (train − 1)·θ_i; a pair whose wavelength fits in that saw every
 * angle, the slower ones only [0, (train − 1)·θ_i]. With the frequencies `theta` in force, a
 * distance d turns pair i by d·θ_i: past the limit for the first slow pair that gets there.
 */
export function seenDistance(theta, trainTheta, train) {
  let limit = Infinity;
  for (let i = 0; i < theta.length; i++) {
    const seen = (train - 1) * trainTheta[i];
    if (seen < 2 * Math.PI) limit = Math.min(limit, Math.floor((seen / theta[i]) * (1 + 1e-9)));
  }
  return limit;
}

/** Milliseconds fn takes, and its result. */
export function timed(fn) {
  const t0 = performance.now();
  const value = fn();
  return [value, performance.now() - t0];
}

/**
 * Everything the dials, spectrum, partial-rotation and computation views need for the state:
 * q·k from rope.scores (q at m, k at n) and without RoPE (both at position 0 of the unscaled
 * embedding, where the rotation is the identity); one apply call rotating q to position m and k to
 * position n ([2, 1, 1, hd], positions [m, n]) for the dials; one rotating the unit vector of the
 * chosen pair to m (the cos and sin the module used); the frequencies with and without scaling.
 */
export function computeFrame(rw, state) {
  const { q, k } = vectors(state);
  const hd = state.hd;
  const options = ropeOptions(state);
  const { dim, pairing } = options;
  const half = dim / 2;
  const rope = rw.rotaryEmbedding(options);
  const plain = rw.rotaryEmbedding(ropeOptions(state, { scaled: false }));
  try {
    const x = new Float32Array(2 * hd);
    x.set(q, 0);
    x.set(k, hd);
    const positions = new Int32Array([state.m, state.n]);
    const [y, applyMs] = timed(() => rope.apply(x, { shape: [2, 1, 1, hd], layout: 'sbhd', positions }));
    const [qk, scoresMs] = timed(() => scoreAt(rope, q, k, state.m, state.n));
    const qkRaw = scoreAt(plain, q, k, 0, 0);
    const theta = rope.inverseFrequencies;
    const thetaPlain = plain.inverseFrequencies;
    const qr = y.subarray(0, hd);
    const kr = y.subarray(hd);

    // cos and sin of the chosen pair at m, as the module applies them: rotate e_a to position m.
    const pair = Math.min(state.pair, half - 1);
    const [a, b] = pairFeatures(pair, dim, pairing);
    const unit = new Float32Array(hd);
    unit[a] = 1;
    const [u, unitMs] = timed(() => rope.apply(unit, { shape: [1, 1, 1, hd], layout: 'sbhd', positions: new Int32Array([state.m]) }));

    const pairs = [];
    for (let i = 0; i < half; i++) {
      const [fa, fb] = pairFeatures(i, dim, pairing);
      const q0 = Math.atan2(q[fb], q[fa]);
      const k0 = Math.atan2(k[fb], k[fa]);
      const qAngle = Math.atan2(qr[fb], qr[fa]);
      const kAngle = Math.atan2(kr[fb], kr[fa]);
      pairs.push({
        i, a: fa, b: fb, theta: theta[i], thetaPlain: thetaPlain[i],
        q: [qr[fa], qr[fb]], k: [kr[fa], kr[fb]],
        qAngle, kAngle,
        rotQ: wrap(qAngle - q0),   // how far the module turned q's pair
        rotK: wrap(kAngle - k0),
        between: wrap(qAngle - kAngle),
        dot: qr[fa] * kr[fa] + qr[fb] * kr[fb],
        qNorm: Math.hypot(q[fa], q[fb]), kNorm: Math.hypot(k[fa], k[fb]),
      });
    }
    let passDot = 0;
    for (let f = dim; f < hd; f++) passDot += qr[f] * kr[f];
    return {
      hd, dim, half, pairing, q, k, qr: qr.slice(), kr: kr.slice(), pairs, theta, thetaPlain,
      qk, qkRaw, passDot,
      attentionScaling: rope.attentionScaling, cacheInfo: rope.cacheInfo,
      unit: { pair, a, b, cos: u[a], sin: u[b] },
      timings: { applyMs, scoresMs, unitMs },
    };
  } finally {
    rope.dispose();
    plain.dispose();
  }
}

/**
 * The heavy part, run in the worker, all of it rope.scores calls: the heatmap S[i][j] = q(m_i) .
 * k(n_j) on `grid` positions spaced `stride` apart; q at distance d against k at 0 for every
 * d < range; and its average over random vectors with k = q. Each call rotates its queries and
 * keys together, so a scaling that depends on the longest position (dynamic NTK) uses the same
 * frequencies for both.
 */
export function computeHeavy(rw, state, { samples = 32 } = {}) {
  const { q, k } = vectors(state);
  const hd = state.hd;
  const range = state.range;
  const grid = Math.min(range, 512);
  const stride = range / grid;
  const timings = {};
  const options = ropeOptions(state);
  const rope = rw.rotaryEmbedding(options);
  const trained = rw.rotaryEmbedding(ropeOptions(state, { scaled: false }));
  try {
    // Heatmap: q at every grid position against k at every grid position.
    const gridPositions = Int32Array.from({ length: grid }, (_, i) => i * stride);
    const t0 = performance.now();
    const heat = rope.scores(repeatRows(q, grid), repeatRows(k, grid),
      { headDim: hd, positionsQ: gridPositions, positionsK: gridPositions });
    timings.heatMs = performance.now() - t0;
    // The frequencies in force for that call (dynamic NTK picks them from its positions), and the
    // unscaled ones training used.
    const heatTheta = rope.inverseFrequencies;
    const trainTheta = trained.inverseFrequencies;
    const seen = seenDistance(heatTheta, trainTheta, state.train);

    // Decay: q at position d against k at position 0, for every d < range: [range, 1].
    const distances = Int32Array.from({ length: range }, (_, d) => d);
    const t1 = performance.now();
    const rows = new Float32Array(range * hd);
    const decay = rope.scores(repeatRows(q, range, rows), k, { headDim: hd, positionsQ: distances, positionsK: [0] });

    // The average over random q with k = q, normalised so that distance 0 scores 1.
    const r = rng(state.seed * 7919 + 1);
    const average = new Float64Array(range);
    const x = new Float32Array(hd);
    const one = new Float32Array(range);
    for (let s = 0; s < samples; s++) {
      for (let f = 0; f < hd; f++) x[f] = r.normal();
      rope.scores(repeatRows(x, range, rows), x, { headDim: hd, positionsQ: distances, positionsK: [0], out: one });
      for (let d = 0; d < range; d++) average[d] += one[d];
    }
    const averageNorm = new Float32Array(range);
    for (let d = 0; d < range; d++) averageNorm[d] = average[d] / average[0];
    timings.decayMs = performance.now() - t1;
    timings.decayCalls = samples + 1;
    return { grid, stride, range, heat, decay, average: averageNorm, seen, heatTheta, trainTheta, timings };
  } finally {
    rope.dispose();
    trained.dispose();
  }
}
