// train.test.js: rw.transformer against PyTorch (../shared/reference/train/grad_tiny: the loss,
// every gradient and 5 Adam steps), on both builds; the multi-threaded trainer gives the same bits
// as one thread; sampling, attention maps, checkpoints of a trained model; bad input.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { decodeCheckpoint } from '../js/checkpoint.js';
import { loadRope } from '../js/index.js';
import { SeededRandom } from '../js/random.js';
import { CharDataset } from '../js/text-data.js';
import { createTrainer } from '../js/trainer.js';
import { checkpointBytes, restoreTraining, startTraining } from '../js/training-session.js';
import { referenceDir } from './helpers/reference.js';

const trainDir = path.join(referenceDir, 'train');
const dataPath = path.join(referenceDir, '..', 'data', 'tinyshakespeare.txt');
// CI must never skip the conformance tests: a missing folder fails unless explicitly allowed.
const missing = existsSync(trainDir) ? false : `reference not found at ${trainDir}`;
if (missing && process.env.ROPE_ALLOW_MISSING_REFERENCE !== '1') throw new Error(missing);

/** grad_tiny: {config, loss, adam_losses, w: {name: Float32Array}, g: {...}, tokens, targets}. */
function loadGradTiny() {
  const meta = JSON.parse(readFileSync(path.join(trainDir, 'grad_tiny.json'), 'utf8'));
  const out = { ...meta, w: {}, g: {} };
  for (const a of meta.arrays) {
    const bytes = readFileSync(path.join(trainDir, a.file));
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const data = a.dtype === 'i32' ? new Int32Array(buffer) : new Float32Array(buffer);
    if (a.name.startsWith('w.')) out.w[a.name.slice(2)] = data;
    else if (a.name.startsWith('g.')) out.g[a.name.slice(2)] = data;
    else out[a.name] = data;
  }
  return out;
}

function tinyModel(rw, ref) {
  const c = ref.config;
  const model = rw.transformer({
    vocab: c.vocab, dModel: c.d_model, heads: c.heads, layers: c.layers, dFF: c.d_ff,
    ropePercentage: c.rope_percentage, base: c.base,
  });
  model.loadWeights(ref.w);
  return model;
}

function relativeL2(actual, expected) {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    diff += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(diff) / Math.sqrt(norm);
}

let ref;
before(() => {
  if (!missing) ref = loadGradTiny();
});

for (const simd of [true, false]) {
  describe(`conformance: the tiny transformer against PyTorch (${simd ? 'SIMD' : 'scalar'} build)`, { skip: missing }, () => {
    let rw;
    before(async () => {
      rw = await loadRope({ simd });
    });

    test('the loss to 1e-5 relative and every gradient to 1e-4 relative L2', () => {
      const model = tinyModel(rw, ref);
      const { seq_len: seq, batch } = ref.config;
      const { loss, grads } = model.lossAndGrads(ref.tokens, ref.targets, { seq, batch });
      assert.ok(Math.abs(loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${loss}, PyTorch ${ref.loss}`);
      assert.deepEqual(Object.keys(grads).sort(), Object.keys(ref.g).sort());
      for (const [name, expected] of Object.entries(ref.g)) {
        const error = relativeL2(grads[name], expected);
        assert.ok(error <= 1e-4, `${name}: relative L2 error ${error}`);
      }
      model.dispose();
    });

    test('5 steps of torch.optim.Adam(lr=1e-2): each loss to 1e-4', () => {
      const model = tinyModel(rw, ref);
      const { seq_len: seq, batch } = ref.config;
      const { lr, betas, eps } = ref.adam;
      model.configureOptimizer({ type: 'adam', lr, betas, eps });
      ref.adam_losses.forEach((expected, i) => {
        const { loss, step } = model.trainStep(ref.tokens, ref.targets, { seq, batch });
        assert.equal(step, i + 1);
        assert.ok(Math.abs(loss - expected) <= 1e-4 * Math.abs(expected), `step ${i + 1}: loss ${loss}, PyTorch ${expected}`);
      });
      model.dispose();
    });
  });
}

describe('training', () => {
  let rw;
  before(async () => {
    rw = await loadRope();
  });

  const config = { vocab: 65, dModel: 32, heads: 4, layers: 2, dFF: 64, seed: 7 };
  const optimizer = { lr: 3e-3, betas: [0.9, 0.99], weightDecay: 0.01, clipNorm: 0.5, schedule: { type: 'cosine', warmup: 2, totalSteps: 10 } };
  function randomBatch(random, seq, batch) {
    const tokens = Int32Array.from({ length: seq * batch }, () => random.nextInt(65));
    const targets = Int32Array.from({ length: seq * batch }, () => random.nextInt(65));
    return { tokens, targets };
  }

  test('two threads give exactly the parameters of one thread with the same micro-batches', async () => {
    const single = rw.transformer(config);
    single.configureOptimizer(optimizer);
    const threaded = rw.transformer(config);
    threaded.configureOptimizer(optimizer);
    const trainer = await createTrainer(threaded, { microBatches: 2, threads: 2 });
    assert.equal(trainer.threads, 2);
    const random = new SeededRandom(1);
    try {
      for (let step = 0; step < 3; step++) {
        const { tokens, targets } = randomBatch(random, 12, 4);
        const a = single.trainStep(tokens, targets, { seq: 12, batch: 4, microBatches: 2 });
        const b = await trainer.step(tokens, targets, { seq: 12, batch: 4 });
        assert.equal(b.loss, a.loss);
        assert.equal(b.gradNorm, a.gradNorm);
      }
      assert.deepEqual(threaded.parameterView(), single.parameterView());
      // A bad token is refused before any thread starts; the trainer and the model stay usable.
      const bad = randomBatch(random, 12, 4);
      bad.tokens[47] = 65;
      await assert.rejects(trainer.step(bad.tokens, bad.targets, { seq: 12, batch: 4 }), /tokens\[47\] = 65 is not a token id in \[0, 65\)/);
      await assert.rejects(trainer.step(bad.tokens.subarray(1), bad.targets, { seq: 12, batch: 4 }), /tokens has length 47; expected 48/);
      assert.deepEqual(threaded.parameterView(), single.parameterView());
      const next = randomBatch(random, 12, 4);
      const c = single.trainStep(next.tokens, next.targets, { seq: 12, batch: 4, microBatches: 2 });
      const d = await trainer.step(next.tokens, next.targets, { seq: 12, batch: 4 });
      assert.equal(d.loss, c.loss);
      assert.deepEqual(threaded.parameterView(), single.parameterView());
      // Evaluation spreads batches over the threads and must agree with one thread too.
      const batches = [0, 1, 2].map(() => ({ ...randomBatch(random, 12, 3), batch: 3 }));
      const spread = await trainer.evaluate(batches, 12);
      let sum = 0;
      for (const b of batches) sum += single.loss(b.tokens, b.targets, { seq: 12, batch: 3 }) * 3;
      assert.equal(spread, sum / 9);
      // New weights loaded into the model reach the workers after parametersChanged(), even right
      // after an evaluation, which published the parameters without a step.
      const other = rw.transformer({ ...config, seed: 99 });
      single.loadWeights(other.weights());
      threaded.loadWeights(other.weights());
      trainer.parametersChanged();
      other.dispose();
      const fresh = randomBatch(random, 12, 4);
      const e = single.trainStep(fresh.tokens, fresh.targets, { seq: 12, batch: 4, microBatches: 2 });
      const f = await trainer.step(fresh.tokens, fresh.targets, { seq: 12, batch: 4 });
      assert.equal(f.loss, e.loss);
      assert.deepEqual(threaded.parameterView(), single.parameterView());
    } finally {
      await trainer.close();
      single.dispose();
      threaded.dispose();
    }
  });

  test('micro-batches change the rounding, not the gradient', () => {
    const random = new SeededRandom(2);
    const { tokens, targets } = randomBatch(random, 8, 4);
    const whole = rw.transformer(config);
    const split = rw.transformer(config);
    const a = whole.lossAndGrads(tokens, targets, { seq: 8, batch: 4 });
    whole.configureOptimizer({ lr: 1e-3 });
    split.configureOptimizer({ lr: 1e-3 });
    const b = split.trainStep(tokens, targets, { seq: 8, batch: 4, microBatches: 4 });
    assert.ok(Math.abs(b.loss - a.loss) < 1e-5, `${b.loss} vs ${a.loss}`);
    let norm = 0;
    for (const g of Object.values(a.grads)) for (const x of g) norm += x * x;
    assert.ok(Math.abs(b.gradNorm - Math.sqrt(norm)) < 1e-5 * Math.sqrt(norm), `${b.gradNorm} vs ${Math.sqrt(norm)}`);
    whole.dispose();
    split.dispose();
  });

  test('training lowers the loss on a repeated batch and the learning rate follows the schedule', () => {
    const model = rw.transformer(config);
    model.configureOptimizer({ lr: 1e-2, schedule: { type: 'cosine', warmup: 5, totalSteps: 40, finalFraction: 0.1 } });
    const { tokens, targets } = randomBatch(new SeededRandom(3), 16, 2);
    const first = model.trainStep(tokens, targets, { seq: 16, batch: 2 });
    // min(1, step / warmup) * (lo + (lr - lo) * 0.5 * (1 + cos(pi * step / total))), lo = 10% of lr
    const expected = (1 / 5) * (1e-3 + 9e-3 * 0.5 * (1 + Math.cos(Math.PI / 40)));
    assert.ok(Math.abs(first.lr - expected) < 1e-12, `first lr ${first.lr}, expected ${expected}`);
    let last = first;
    for (let i = 0; i < 39; i++) last = model.trainStep(tokens, targets, { seq: 16, batch: 2 });
    assert.ok(last.loss < first.loss * 0.6, `loss ${first.loss} -> ${last.loss}`);
    assert.ok(Math.abs(last.lr - 1e-3) < 1e-12, `final lr ${last.lr}`);
    assert.ok(Math.abs(model.learningRate(1) - first.lr) < 1e-15);
    model.configureOptimizer({ type: 'adam', lr: 1, schedule: { type: 'noam', warmup: 2000 } });
    // Noam: lr * dModel^-0.5 * min(step^-0.5, step * warmup^-1.5), dModel 32 here.
    assert.ok(Math.abs(model.learningRate(490) - 32 ** -0.5 * 490 * 2000 ** -1.5) < 1e-12);
    assert.ok(Math.abs(model.learningRate(4000) - 32 ** -0.5 * 4000 ** -0.5) < 1e-12);
    model.dispose();
  });

  test('generate: seeded, greedy is the argmax, strings through the vocabulary', () => {
    const vocabulary = [...new Set('to be or not to be, that is the question')].sort().join('');
    const model = rw.transformer({ vocabulary, dModel: 16, heads: 2, layers: 1, dFF: 32, seed: 1, contextLength: 8 });
    const a = model.generate('to be', { maxTokens: 20, temperature: 1, seed: 5 });
    const b = model.generate('to be', { maxTokens: 20, temperature: 1, seed: 5 });
    assert.equal(typeof a, 'string');
    assert.equal([...a].length, 20);
    assert.equal(a, b);
    for (const c of a) assert.ok(vocabulary.includes(c));
    // Greedy: while the context fits contextLength (8), each token is the argmax of the full
    // forward pass's logits of its context: the KV-cache decoding computes the same function.
    const greedy = model.generate([1, 2, 3], { maxTokens: 12, temperature: 0 });
    const context = [1, 2, 3];
    for (const id of greedy.subarray(0, 6)) {
      const logits = model.logits(context, { seq: context.length, batch: 1 });
      const last = logits.subarray((context.length - 1) * vocabulary.length);
      assert.equal(id, last.indexOf(Math.max(...last)));
      context.push(id);
    }
    // Past it, the newest half is encoded again: generation goes on with the same rule.
    assert.equal(greedy.length, 12);
    assert.deepEqual(model.generate([1, 2, 3], { maxTokens: 12, temperature: 0 }), greedy);
    const tokens = [];
    model.generate('to', { maxTokens: 5, topK: 1, onToken: (id, char) => tokens.push([id, char]) });
    assert.equal(tokens.length, 5);
    for (const [id, char] of tokens) assert.equal(char, vocabulary[id]);
    model.dispose();
  });

  test('attention maps: causal rows that sum to 1, one [heads, seq, seq] per layer', () => {
    const model = rw.transformer({ ...config, layers: 3 });
    const maps = model.attentionMaps([1, 5, 9, 2, 7, 7]);
    assert.equal(maps.length, 3);
    for (const map of maps) {
      assert.equal(map.length, 4 * 6 * 6);
      for (let h = 0; h < 4; h++) {
        for (let i = 0; i < 6; i++) {
          let sum = 0;
          for (let j = 0; j < 6; j++) {
            const w = map[(h * 6 + i) * 6 + j];
            if (j > i) assert.equal(w, 0);
            sum += w;
          }
          assert.ok(Math.abs(sum - 1) < 1e-5, `row ${i} sums to ${sum}`);
        }
      }
    }
    model.dispose();
  });

  test('a checkpoint restores the model, the optimizer and the batch sampler exactly', { skip: existsSync(dataPath) ? false : 'no data' }, async () => {
    const text = readFileSync(dataPath, 'utf8').slice(0, 20000);
    const dataset = new CharDataset(text);
    const session = await startTraining(rw, { dataset, configName: 'tiny', steps: 6, seed: 3, threads: 1 });
    const { trainer, run } = session;
    const step = async () => {
      const random = new SeededRandom(0);
      random.state = run.randomState;
      const { tokens, targets } = dataset.randomBatch(random, run.seq, run.batch);
      run.randomState = random.state;
      return trainer.step(tokens, targets, { seq: run.seq, batch: run.batch });
    };
    for (let i = 0; i < 3; i++) await step();
    const bytes = checkpointBytes(session);
    const restored = await restoreTraining(rw, decodeCheckpoint(bytes), { text, threads: 1 });
    assert.equal(restored.trainer.model.step, 3);
    assert.deepEqual(restored.trainer.model.parameterView(), trainer.model.parameterView());
    // The next step of both is the same bits.
    const a = await step();
    const random = new SeededRandom(0);
    random.state = restored.run.randomState;
    const { tokens, targets } = restored.dataset.randomBatch(random, run.seq, run.batch);
    const b = await restored.trainer.step(tokens, targets, { seq: run.seq, batch: run.batch });
    assert.equal(b.loss, a.loss);
    assert.deepEqual(restored.trainer.model.parameterView(), trainer.model.parameterView());
    for (const s of [session, restored]) {
      await s.trainer.close();
      s.trainer.model.dispose();
    }
  });
});

describe('bad input: clear errors, the module stays usable, nothing leaks', () => {
  let rw;
  before(async () => {
    rw = await loadRope();
  });
  const good = { vocab: 10, dModel: 8, heads: 2, layers: 1, dFF: 16 };
  const seqBatch = { seq: 3, batch: 2 };
  const ids = Int32Array.of(1, 2, 3, 4, 5, 6);

  const cases = [
    ['no options', () => rw.transformer(), TypeError, /options/],
    ['unknown option', () => rw.transformer({ ...good, dmodel: 8 }), TypeError, /unknown option 'dmodel'/],
    ['dModel not a multiple of heads', () => rw.transformer({ ...good, heads: 3 }), RangeError, /multiple of heads/],
    ['odd rotary dim', () => rw.transformer({ ...good, dModel: 6, heads: 1, ropePercentage: 0.5 }), RangeError, /must be even/],
    ['ropePercentage above 1', () => rw.transformer({ ...good, ropePercentage: 1.5 }), RangeError, /ropePercentage/],
    ['NaN base', () => rw.transformer({ ...good, base: NaN }), RangeError, /base/],
    ['vocab and vocabulary disagree', () => rw.transformer({ ...good, vocabulary: 'abc' }), RangeError, /vocabulary/],
    ['a token out of range', (m) => m.lossAndGrads(Int32Array.of(1, 2, 3, 4, 5, 10), ids, seqBatch), RangeError, /tokens\[5\] = 10/],
    ['a negative target', (m) => m.lossAndGrads(ids, Int32Array.of(1, 2, 3, -1, 5, 6), seqBatch), RangeError, /targets\[3\] = -1/],
    ['wrong tokens length', (m) => m.lossAndGrads(ids.subarray(1), ids, seqBatch), RangeError, /tokens has length 5; expected 6/],
    ['tokens not ids', (m) => m.loss('abc', ids, seqBatch), TypeError, /no vocabulary/],
    ['seq 0', (m) => m.loss(ids, ids, { seq: 0, batch: 2 }), RangeError, /seq/],
    ['unknown step option', (m) => m.loss(ids, ids, { seq: 3, batch: 2, steps: 1 }), TypeError, /unknown option 'steps'/],
    ['step without optimizer', (m) => m.trainStep(ids, ids, seqBatch), Error, /configureOptimizer/],
    ['negative lr', (m) => m.configureOptimizer({ lr: -1 }), RangeError, /lr/],
    ['beta of 1', (m) => m.configureOptimizer({ lr: 1, betas: [0.9, 1] }), RangeError, /betas\[1\]/],
    ['unknown schedule', (m) => m.configureOptimizer({ lr: 1, schedule: { type: 'step' } }), RangeError, /schedule.type/],
    ['cosine without totalSteps', (m) => m.configureOptimizer({ lr: 1, schedule: { type: 'cosine' } }), TypeError, /totalSteps/],
    ['micro-batches that do not divide', (m) => { m.configureOptimizer({ lr: 1e-3 }); m.trainStep(ids, ids, { seq: 2, batch: 3, microBatches: 2 }); }, RangeError, /multiple of microBatches/],
    ['weights missing a tensor', (m) => { const w = m.weights(); delete w['norm.bias']; m.loadWeights(w); }, TypeError, /'norm.bias' is missing/],
    ['weights with an unknown tensor', (m) => m.loadWeights({ ...m.weights(), 'pos_embed.weight': new Float32Array(1) }), TypeError, /unknown tensor 'pos_embed.weight'/],
    ['a weight of the wrong size', (m) => m.loadWeights({ ...m.weights(), 'norm.bias': new Float32Array(7) }), RangeError, /'norm.bias'\] has 7 values; expected 8/],
    ['a weight of the wrong shape', (m) => m.loadWeights({ ...m.weights(), 'generator.weight': { shape: [8, 10], data: new Float32Array(80) } }), RangeError, /shape \[8,10\]; expected \[10,8\]/],
    ['negative temperature', (m) => m.generate([1], { temperature: -1 }), RangeError, /temperature/],
    ['topK above vocab', (m) => m.generate([1], { topK: 11 }), RangeError, /topK/],
    ['an empty prompt', (m) => m.generate([], {}), RangeError, /prompt/],
  ];
  for (const [name, call, ErrorClass, pattern] of cases) {
    test(name, () => {
      const model = rw.transformer(good);
      assert.throws(() => call(model), (error) => error instanceof ErrorClass && pattern.test(error.message), name);
      // Still usable.
      assert.ok(Number.isFinite(model.loss(ids, ids, seqBatch)));
      model.dispose();
    });
  }

  test('after dispose: a clear error, and every byte back', () => {
    const level = rw.heapInUse();
    const model = rw.transformer(good);
    model.configureOptimizer({ lr: 1e-3 });
    model.trainStep(ids, ids, seqBatch);
    model.generate([1, 2], { maxTokens: 3 });
    model.lossAndGrads(Int32Array.from({ length: 40 }, (_, i) => i % 10), Int32Array.from({ length: 40 }, (_, i) => (i + 1) % 10), { seq: 20, batch: 2 });
    model.dispose();
    assert.equal(rw.heapInUse(), level);
    assert.throws(() => model.loss(ids, ids, seqBatch), /disposed/);
  });
});
