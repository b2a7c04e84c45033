// training.ts: compiled (not run) by tests/types.test.js with tsc --strict: the training and
// checkpoint declarations of js/index.d.ts accept the documented usage and reject misuse.
import {
  CharDataset, SeededRandom, Trainer, Transformer, createTrainer, decodeCheckpoint, encodeCheckpoint,
  encodeSafetensors, decodeSafetensors, loadRope,
} from 'rope-wasm';

async function main(): Promise<void> {
  const rw = await loadRope();
  const dataset = new CharDataset('to be or not to be');
  const model: Transformer = rw.transformer({
    vocabulary: dataset.vocabulary, dModel: 32, heads: 4, layers: 2, dFF: 64, ropePercentage: 0.5, seed: 1,
  });
  const { loss, grads } = model.lossAndGrads([1, 2, 3, 4], Int32Array.of(2, 3, 4, 5), { seq: 2, batch: 2 });
  const g: Float32Array = grads['generator.weight'];
  model.configureOptimizer({ lr: 2e-3, betas: [0.9, 0.99], clipNorm: 1, schedule: { type: 'cosine', warmup: 100, totalSteps: 2000 } });
  const batch = dataset.randomBatch(new SeededRandom(0), 4, 2);
  const step: number = model.trainStep(batch.tokens, batch.targets, { seq: 4, batch: 2, microBatches: 2 }).step;
  const trainer: Trainer = await createTrainer(model, { microBatches: 2, threads: 2 });
  const result = await trainer.step(batch.tokens, batch.targets, { seq: 4, batch: 2 });
  const valid: number = await trainer.evaluate(dataset.validationBatches(1, 2), 1);
  await trainer.close();
  const text: string = model.generate('to', { maxTokens: 10, temperature: 0.8, topK: 5 });
  const ids: Int32Array = model.generate([1, 2], { maxTokens: 3 });
  const maps: Float32Array[] = model.attentionMaps('to be');
  const weights = Object.fromEntries(model.tensors.map((t) => [t.name, { shape: [...t.shape], data: model.weights()[t.name] }]));
  const bytes: Uint8Array = encodeCheckpoint({ config: model.config, vocab: dataset.vocabulary, step: model.step, weights });
  const restored = decodeCheckpoint(bytes);
  model.loadWeights(restored.weights);
  const file = decodeSafetensors(encodeSafetensors({ x: { dtype: 'F16', shape: [2], data: new Uint16Array(2) } }));
  // @ts-expect-error an unknown schedule
  model.configureOptimizer({ lr: 1, schedule: { type: 'step' } });
  // @ts-expect-error noam needs its warm-up
  model.configureOptimizer({ lr: 1, schedule: { type: 'noam' } });
  // @ts-expect-error dModel is required
  rw.transformer({ vocab: 10, heads: 2, layers: 1, dFF: 8 });
  // @ts-expect-error F32 data is a Float32Array
  encodeSafetensors({ x: { dtype: 'F32', shape: [1], data: new Uint16Array(1) } });
  console.log(loss, g, step, result.loss, valid, text, ids, maps, file.metadata);
  model.dispose();
}

void main();
