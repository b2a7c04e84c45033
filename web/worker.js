// worker.js: the heatmap and decay curves off the main thread (rope.scores of 512 x 512 positions
// at head_dim 128, and 32 random decay curves of up to 4,096 distances, would take several frames).
// It loads its own instance of the wasm module, the same build as the page, and answers {id, state}
// with {id, result} or {id, error}.

import { loadRope } from '../js/index.js';
import { computeHeavy } from './model.js';

let rwPromise = null;

self.onmessage = async ({ data }) => {
  const { id, state, simd } = data;
  try {
    rwPromise ??= loadRope({ simd });
    const rw = await rwPromise;
    const result = computeHeavy(rw, state);
    self.postMessage({ id, result, build: rw.simd ? 'simd' : 'scalar' },
      [result.heat.buffer, result.decay.buffer, result.average.buffer]);
  } catch (error) {
    self.postMessage({ id, error: error.message });
  }
};
