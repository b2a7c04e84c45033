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
  const q = new Float32Array(1 * 4 * 8 * 16);
  const attended: Float32Array = rw.attention(q, q, q, { batch: 1, heads: 4, kvHeads: 2, seqQ: 8, headDim: 16, causal: true, rope });
  const { output, weights }: { output: Float32Array; weights: Float32Array } =
    rw.attention(q, q, q, { batch: 1, heads: 4, seqQ: 8, headDim: 16, returnWeights: true });
  const masked: { output: Float32Array; scores: Float32Array } = rw.attention(q, q, q, {
    batch: 1, heads: 4, seqQ: 8, headDim: 16, causal: 'top-left', mask: new Float32Array(64), maskShape: [8, 8],
    softcap: 30, window: { left: 3, right: 0 }, kvSeqLengths: [8], valueHeadDim: 16, returnScores: 'softcapped' });
  // @ts-expect-error an unknown scores stage
  rw.attention(q, q, q, { batch: 1, heads: 4, seqQ: 8, headDim: 16, returnScores: 'logits' });
  // @ts-expect-error causal alignments are named
  rw.attention(q, q, q, { batch: 1, heads: 4, seqQ: 8, headDim: 16, causal: 'bottom' });
  const h16 = new Uint16Array(1 * 4 * 8 * 16);
  const halfOut: Uint16Array = rw.attention(h16, h16, h16, { batch: 1, heads: 4, seqQ: 8, headDim: 16, dtype: 'float16', causal: true });
  const bfOut: { output: Uint16Array; weights?: Float32Array } =
    rw.attention(h16, h16, h16, { batch: 1, heads: 4, seqQ: 8, headDim: 16, dtype: 'bfloat16', returnWeights: true, out: h16 });
  // @ts-expect-error 16-bit tensors need a 16-bit dtype
  const noDtype: Uint16Array = rw.attention(h16, h16, h16, { batch: 1, heads: 4, seqQ: 8, headDim: 16 });
  const cache = rw.kvCache({ batch: 1, kvHeads: 2, headDim: 16, rope, capacity: 64 });
  const cachedLength: number = cache.append(new Float32Array(32), new Float32Array(32), { layout: 'bshd' });
  const decoded: Float32Array = cache.attend(new Float32Array(64), { heads: 4, window: { left: 7 }, softcap: 30 });
  const presentK: Float32Array = cache.presentKey();
  cache.truncate(cachedLength - 1);
  cache.reset();
  // @ts-expect-error kvCache needs headDim
  rw.kvCache({ batch: 1, kvHeads: 2 });
  cache.dispose();
  const { presentKey, presentValue }: { presentKey: Float32Array; presentValue: Float32Array } = rw.attention(q, q, q, {
    batch: 1, heads: 4, seqQ: 8, headDim: 16, causal: true, pastKey: new Float32Array(0), pastValue: new Float32Array(0),
    returnPresent: true });
  const w = { weight: new Float32Array(64), bias: new Float32Array(8) };
  const mha = rw.rotaryMultiHeadAttention({ heads: 2, dModel: 8, weights: { query: w, key: w, value: w, output: w } });
  const yMha: Float32Array = mha.forward(new Float32Array(3 * 8), { seq: 3, batch: 1, causal: true, mask: new Uint8Array(9) });
  // @ts-expect-error the weights come as {query, key, value, output}
  rw.rotaryMultiHeadAttention({ heads: 2, dModel: 8, weights: [w, w, w, w] });
  mha.dispose();
  console.log(simd, y, same, inv, scale, attended, output, weights, yMha, masked, decoded, presentK, presentKey, presentValue);
  t.dispose();
  rope.dispose();
}

void main();
