// usage.ts: compiled (not run) by tests/types.test.js with tsc --strict: the declarations in
// js/index.d.ts must accept the documented usage and reject misuse (@ts-expect-error lines).
import { loadRope, RotaryEmbedding, WasmTensor } from 'rope-wasm';

async function main(): Promise<void> {
  const rw = await loadRope({ simd: true });
  const simd: boolean = rw.simd;
  const rope: RotaryEmbedding = rw.rotaryEmbedding({
    dim: 64,
    base: 10000,
    pairing: 'interleaved',
    scaling: { type: 'yarn', factor: 4, originalMaxPositions: 2048 },
  });
  const x = new Float32Array(2 * 1 * 4 * 64);
  const y: Float32Array = rope.apply(x, { shape: [2, 1, 4, 64], layout: 'sbhd', offset: 3 });
  const t: WasmTensor = rw.tensor(x.length);
  const same: WasmTensor = rope.apply(t, { shape: [1, 4, 2, 64], layout: 'bhsd', out: t, inverse: true });
  const inv: Float64Array = rope.inverseFrequencies;
  const scale: number = rope.attentionScaling + rope.cacheInfo.rowsComputed;
  rope.apply(x, { shape: [2, 1, 4, 64], positions: new Int32Array([5, 6]) });
  // @ts-expect-error pairing is 'half' | 'interleaved'
  rw.rotaryEmbedding({ dim: 4, pairing: 'zigzag' });
  // @ts-expect-error layout is one of three
  rope.apply(x, { shape: [2, 1, 4, 64], layout: 'hbsd' });
  // @ts-expect-error linear scaling needs a factor
  rw.rotaryEmbedding({ dim: 4, scaling: { type: 'linear' } });
  // @ts-expect-error dim is required
  rw.rotaryEmbedding({ base: 10 });
  console.log(simd, y, same, inv, scale);
  t.dispose();
  rope.dispose();
}

void main();
