// train.bench.js: the trainer's speed and quality. Measured in this one run:
//   1. throughput of one optimizer step of a configuration (forward, backward, clipping, AdamW)
//      in tokens/s: rope-wasm on 1 thread, rope-wasm on 2 threads (js/trainer.js), and the same C
//      built natively (-O3 -march=native, 1 thread: build/bench_train_native), taking turns in
//      rounds so that the shared machine's noise falls on all of them alike;
//   2. a full training run on Tiny Shakespeare (2 threads), its validation curve next to the
//      PyTorch reference's (../shared/reference/train), the wall time, and a sample.
//
//   npm run bench:train                       (./build.sh, then this file: small, 2000 steps)
//   node tests/bench/train.bench.js [--config small|labml] [--steps N] [--quick]
//     --quick: only the throughput table.
// Progress goes to stderr, the tables to stdout.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { loadRope } from '../../js/index.js';
import { SeededRandom } from '../../js/random.js';
import { CharDataset } from '../../js/text-data.js';
import { TRAIN_CONFIGS, optimizerFor } from '../../js/train-configs.js';
import { createTrainer } from '../../js/trainer.js';
import { runTraining } from '../../js/training-run.js';
import { startTraining } from '../../js/training-session.js';
import { median } from './common.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const shared = join(root, '..', 'shared');
const { values: args } = parseArgs({
  options: {
    config: { type: 'string', default: 'small' },
    steps: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const configName = args.config;
const config = TRAIN_CONFIGS[configName];
if (!config) throw new Error(`--config must be one of ${Object.keys(TRAIN_CONFIGS).join(', ')}`);
const steps = args.steps === undefined ? config.steps : Number(args.steps);
const log = (line) => process.stderr.write(`${line}\n`);

const text = readFileSync(join(shared, 'data', 'tinyshakespeare.txt'), 'utf8');
const dataset = new CharDataset(text);
const { seq, batch } = config;
const tokensPerStep = seq * batch;

// ---------------------------------------------------------------------------------------------
// 1. throughput

const ROUNDS = 5;
const STEPS_PER_TURN = 3;

async function throughput() {
  const rw = await loadRope();
  const modelOptions = { vocabulary: dataset.vocabulary, ...config.model, seed: 1, contextLength: seq };
  const single = rw.transformer(modelOptions);
  single.configureOptimizer(optimizerFor(config, 1000));
  const threaded = rw.transformer(modelOptions);
  threaded.configureOptimizer(optimizerFor(config, 1000));
  const trainer = await createTrainer(threaded, { microBatches: config.microBatches, threads: 2 });
  const random = new SeededRandom(5);
  const batches = Array.from({ length: 4 }, () => dataset.randomBatch(random, seq, batch));
  const samples = { wasm1: [], wasm2: [], native: [] };
  const turns = {
    wasm1: async (b) => single.trainStep(b.tokens, b.targets, { seq, batch, microBatches: config.microBatches }),
    wasm2: async (b) => trainer.step(b.tokens, b.targets, { seq, batch }),
  };
  // Warm up both (the first steps compile and grow memory).
  for (const turn of Object.values(turns)) await turn(batches[0]);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ['wasm1', 'wasm2', 'native'] : ['native', 'wasm2', 'wasm1'];
    for (const name of order) {
      if (name === 'native') {
        samples.native.push(nativeStepSeconds());
        continue;
      }
      for (let i = 0; i < STEPS_PER_TURN; i++) {
        const started = performance.now();
        await turns[name](batches[i % batches.length]);
        samples[name].push((performance.now() - started) / 1000);
      }
    }
    log(`throughput round ${round + 1}/${ROUNDS}`);
  }
  await trainer.close();
  single.dispose();
  threaded.dispose();
  const seconds = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  const rows = [
    ['rope-wasm, 1 thread (SIMD)', seconds.wasm1],
    ['rope-wasm, 2 threads (SIMD, js/trainer.js)', seconds.wasm2],
    ['native C, 1 thread (-O3 -march=native)', seconds.native],
  ];
  console.log(`\n### Training step throughput, config ${configName} (seq ${seq} x batch ${batch} = ${tokensPerStep} tokens per step, ${cpus().length} cores)\n`);
  console.log('| implementation | ms per step | tokens/s | x native C (1 thread) |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, s] of rows) {
    console.log(`| ${name} | ${(s * 1000).toFixed(1)} | ${Math.round(tokensPerStep / s).toLocaleString('en-US')} | ${(seconds.native / s).toFixed(2)}x |`);
  }
  return seconds;
}

/** Seconds of one step of the configuration in build/bench_train_native (median of its own runs). */
function nativeStepSeconds() {
  const binary = join(root, 'build', 'bench_train_native');
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run ./build.sh`);
  const m = config.model;
  const result = spawnSync(binary, [
    String(dataset.vocabSize), String(m.dModel), String(m.heads), String(m.layers), String(m.dFF),
    String(seq), String(batch), String(STEPS_PER_TURN),
  ], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`bench_train_native failed: ${result.stderr}`);
  const match = /seconds_per_step\s+([\d.eE+-]+)/.exec(result.stdout);
  if (!match) throw new Error(`bench_train_native printed no seconds_per_step:\n${result.stdout}`);
  return Number(match[1]);
}

// ---------------------------------------------------------------------------------------------
// 2. a full run

async function fullRun() {
  const rw = await loadRope();
  const session = await startTraining(rw, { dataset, configName, steps, seed: 0, threads: 2 });
  const { trainer, run } = session;
  log(`training ${configName} for ${steps} steps on ${trainer.threads} threads (${trainer.model.paramCount.toLocaleString('en-US')} parameters)`);
  const started = performance.now();
  const result = await runTraining({
    trainer,
    dataset,
    seq: run.seq,
    batch: run.batch,
    steps: run.steps,
    evalEvery: run.evalEvery,
    randomState: run.randomState,
    onProgress: (r) => {
      if (r.validLoss !== undefined || r.step % 50 === 0) {
        log(`step ${r.step}/${steps} loss ${r.trainLoss.toFixed(4)}${r.validLoss !== undefined ? ` valid ${r.validLoss.toFixed(4)}` : ''} `
          + `${Math.round(r.tokensPerSecond)} tok/s elapsed ${r.elapsedSeconds.toFixed(0)} s`);
      }
    },
  });
  const wall = (performance.now() - started) / 1000;
  await trainer.close();
  const reference = loadReferenceCurve();
  console.log(`\n### ${configName}: ${steps} steps on 2 threads, validation loss (nats/char, every validation window)\n`);
  console.log('| step | rope-wasm train loss | rope-wasm validation | PyTorch reference validation (nearest step) |');
  console.log('| ---: | ---: | ---: | ---: |');
  for (const r of result.history) {
    const near = reference?.reduce((best, p) => (Math.abs(p.step - r.step) < Math.abs(best.step - r.step) ? p : best));
    console.log(`| ${r.step} | ${r.trainLoss.toFixed(4)} | ${r.validLoss.toFixed(4)} | ${near ? `${near.valid_loss.toFixed(4)} (step ${near.step})` : '-'} |`);
  }
  const last = result.history.at(-1);
  console.log(`\nwall time ${(wall / 60).toFixed(1)} min (${wall.toFixed(0)} s) including validation; `
    + `training throughput ${Math.round(last.tokensPerSecond).toLocaleString('en-US')} tokens/s; final validation loss ${last.validLoss.toFixed(4)}`);
  const sample = trainer.model.generate('It is ', { maxTokens: 300, temperature: 0.8, seed: 1 });
  console.log(`\nsample (temperature 0.8, seed 1):\n\n\`\`\`\nIt is ${sample}\n\`\`\``);
  const greedy = trainer.model.generate('It is ', { maxTokens: 100, temperature: 0 });
  console.log(`\ngreedy:\n\n\`\`\`\nIt is ${greedy}\n\`\`\``);
  trainer.model.dispose();
}

function loadReferenceCurve() {
  const file = { small: 'small_adamw_2000.json', labml: 'labml_noam_15680.json' }[configName];
  if (!file) return null;
  return JSON.parse(readFileSync(join(shared, 'reference', 'train', file), 'utf8')).curve;
}

await throughput();
if (!args.quick) await fullRun();
