// common.js: what every benchmark script needs: deterministic inputs, a shuffled turn order,
// output comparison, medians, timing loops.

/** Deterministic values in [-scale, scale): the same inputs run to run, and no denormals. */
export function randomArray(length, seed, scale = 1) {
  const x = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    x[i] = ((state >>> 8) / 8388608 - 1) * scale;
  }
  return x;
}

// The items in an order drawn from `seed` (Fisher-Yates on the same generator; the seed goes
// through murmur3's finalizer first, or consecutive seeds would begin alike).
export function shuffled(items, seed) {
  const order = [...items];
  let state = seed;
  state = Math.imul(state ^ (state >>> 16), 0x85ebca6b);
  state = Math.imul(state ^ (state >>> 13), 0xc2b2ae35);
  state = (state ^ (state >>> 16)) >>> 0;
  for (let i = order.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = Math.floor((state / 2 ** 32) * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = d;  // also catches NaN
  }
  return max;
}

export function maxAbs(a) {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]));
  return max;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// Runs call() `reps` times; returns ms per call. Sync and async calls get separate loops so that
// sync ones pay no await.
export function timeSync(call, reps) {
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) call();
  return (performance.now() - t0) / reps;
}

export async function timeAsync(call, reps) {
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) await call();
  return (performance.now() - t0) / reps;
}
