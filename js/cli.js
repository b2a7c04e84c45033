#!/usr/bin/env node
// cli.js: the `rope-wasm` command: train the seed's character-level RoPE transformer on a text
// (Tiny Shakespeare by default in the docs) and sample from a checkpoint.
//
//   rope-wasm train --data <file or http(s) URL> --config tiny|small|labml [--steps N]
//                   [--eval-every N] [--out ckpt.safetensors] [--resume ckpt] [--json]
//                   [--threads N] [--seed N] [--log-every N]
//   rope-wasm sample --checkpoint ckpt --prompt "It is " [--tokens 200] [--temperature T]
//                    [--top-k K] [--seed N]
//
// Ctrl-C during training saves a checkpoint (to --out) and exits with status 130.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

import { decodeCheckpoint } from './checkpoint.js';
import { loadRope } from './module.js';
import { CharDataset } from './text-data.js';
import { TRAIN_CONFIGS } from './train-configs.js';
import { checkpointBytes, restoreTraining, startTraining } from './training-session.js';
import { runTraining } from './training-run.js';

const USAGE = `usage:
  rope-wasm train --data <file or http(s) URL> --config tiny|small|labml [--steps N] [--eval-every N]
                  [--out ckpt.safetensors] [--resume ckpt] [--json] [--threads N] [--seed N] [--log-every N]
  rope-wasm sample --checkpoint ckpt --prompt "It is " [--tokens 200] [--temperature 0.8] [--top-k 0] [--seed 0]`;

/** A mistake in how the command was called: printed as one line plus the usage, exit status 2. */
class UsageError extends Error {}

async function main(argv) {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (command === 'train') return train(rest);
  if (command === 'sample') return sample(rest);
  throw new UsageError(`unknown command '${command}' (known: train, sample)`);
}

// -------------------------------------------------------------------------------------------------
// train

async function train(argv) {
  const { values } = parse(argv, {
    data: { type: 'string' },
    config: { type: 'string' },
    steps: { type: 'string' },
    'eval-every': { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'string' },
    json: { type: 'boolean', default: false },
    threads: { type: 'string' },
    seed: { type: 'string' },
    'log-every': { type: 'string' },
  });
  if (values.data === undefined) throw new UsageError('--data <file or URL> is required');
  if (values.config === undefined && values.resume === undefined) throw new UsageError('--config tiny|small|labml is required (or --resume a checkpoint)');
  if (values.config !== undefined && !Object.hasOwn(TRAIN_CONFIGS, values.config)) {
    throw new UsageError(`--config must be one of ${Object.keys(TRAIN_CONFIGS).join(', ')}, got '${values.config}'`);
  }
  const steps = optionalInteger(values.steps, '--steps', 1);
  const evalEvery = optionalInteger(values['eval-every'], '--eval-every', 0);
  const threads = optionalInteger(values.threads, '--threads', 1);
  const seed = optionalInteger(values.seed, '--seed', 0) ?? 0;
  const logEvery = optionalInteger(values['log-every'], '--log-every', 1) ?? 10;
  const out = values.out ?? 'checkpoint.safetensors';
  const json = values.json;
  const log = (line) => process.stderr.write(`${line}\n`);

  const text = await loadText(values.data, json ? () => {} : log);
  const rw = await loadRope();
  let session;
  if (values.resume !== undefined) {
    const checkpoint = decodeCheckpoint(await readBinary(values.resume, '--resume'));
    session = await restoreTraining(rw, checkpoint, { text, configName: values.config, steps, threads });
  } else {
    const dataset = new CharDataset(text);
    session = await startTraining(rw, { dataset, configName: values.config, steps, seed, threads });
  }
  const { trainer, dataset, run } = session;
  if (evalEvery !== undefined) run.evalEvery = evalEvery;
  const model = trainer.model;
  if (!json) {
    log(`rope-wasm train: config ${run.configName}, ${model.paramCount.toLocaleString('en-US')} parameters, `
      + `${trainer.threads} thread${trainer.threads > 1 ? 's' : ''} (${model.simd ? 'wasm SIMD' : 'wasm scalar'}), `
      + `${dataset.train.length.toLocaleString('en-US')} training / ${dataset.valid.length.toLocaleString('en-US')} validation characters, `
      + `steps ${model.step + 1}..${run.steps}`);
  }

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);  // a second Ctrl-C does not wait for the step
    interrupted = true;
    if (!json) log('\ninterrupted: saving a checkpoint after this step (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', onSigint);
  const progress = makeProgressPrinter({ json, logEvery, tty: process.stderr.isTTY === true });
  let result;
  try {
    result = await runTraining({
      trainer,
      dataset,
      seq: run.seq,
      batch: run.batch,
      steps: run.steps,
      evalEvery: run.evalEvery,
      randomState: run.randomState,
      onProgress: progress,
      shouldStop: () => interrupted,
    });
  } finally {
    process.off('SIGINT', onSigint);
    await trainer.close();
  }
  run.randomState = result.randomState;
  await writeAtomically(out, checkpointBytes(session));
  if (!json) log(`saved ${out} (step ${result.step}${result.validLoss !== null ? `, validation loss ${result.validLoss.toFixed(4)}` : ''})`);
  model.dispose();
  return result.stopped ? 130 : 0;
}

/** Prints a report: a JSON line (--json), or a progress line every logEvery steps and at validations. */
function makeProgressPrinter({ json, logEvery, tty }) {
  return (report) => {
    const validated = report.validLoss !== undefined;
    if (json) {
      const line = {
        step: report.step,
        trainLoss: report.trainLoss,
        ...(validated ? { validLoss: report.validLoss } : {}),
        tokensPerSecond: report.tokensPerSecond,
        elapsedSeconds: report.elapsedSeconds,
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      return;
    }
    if (!validated && report.step % logEvery !== 0) return;
    const width = String(report.steps).length;
    const line = `step ${String(report.step).padStart(width)}/${report.steps}  loss ${report.trainLoss.toFixed(4)}`
      + (validated ? `  valid ${report.validLoss.toFixed(4)}` : '')
      + `  ${Math.round(report.tokensPerSecond).toLocaleString('en-US')} tok/s`
      + `  elapsed ${clock(report.elapsedSeconds)}  ETA ${clock(report.etaSeconds)}`;
    // On a terminal the line is rewritten in place, except the validations, which stay.
    if (tty) process.stderr.write(`\r\x1b[K${line}${validated ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  };
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

// -------------------------------------------------------------------------------------------------
// sample

async function sample(argv) {
  const { values } = parse(argv, {
    checkpoint: { type: 'string' },
    prompt: { type: 'string', default: '\n' },
    tokens: { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
  });
  if (values.checkpoint === undefined) throw new UsageError('--checkpoint <file> is required');
  const tokens = optionalInteger(values.tokens, '--tokens', 0) ?? 200;
  const topK = optionalInteger(values['top-k'], '--top-k', 0) ?? 0;
  const seed = optionalInteger(values.seed, '--seed', 0) ?? 0;
  const temperature = values.temperature === undefined ? 0.8 : Number(values.temperature);
  if (!(temperature >= 0 && Number.isFinite(temperature))) throw new UsageError(`--temperature must be a number >= 0, got '${values.temperature}'`);
  const checkpoint = decodeCheckpoint(await readBinary(values.checkpoint, '--checkpoint'));
  if (!checkpoint.config || !checkpoint.vocab) {
    throw new Error(`${values.checkpoint} has no rope-wasm config and vocabulary in its metadata (a plain safetensors state_dict cannot be sampled without them)`);
  }
  const rw = await loadRope();
  const { vocab, dModel, heads, layers, dFF, ropePercentage, base } = checkpoint.config;
  const model = rw.transformer({
    vocab, vocabulary: checkpoint.vocab, dModel, heads, layers, dFF, ropePercentage, base,
    contextLength: checkpoint.config.training?.seq ?? 256,
  });
  model.loadWeights(checkpoint.weights);
  process.stdout.write(values.prompt);
  model.generate(values.prompt, {
    maxTokens: tokens, temperature, topK, seed,
    onToken: (id, char) => process.stdout.write(char),
  });
  process.stdout.write('\n');
  model.dispose();
  return 0;
}

// -------------------------------------------------------------------------------------------------
// helpers

function parse(argv, options) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(error.message);
  }
}

function optionalInteger(value, name, min) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

async function readBinary(path, what) {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new Error(`${what}: cannot read ${path}: ${error.message}`);
  }
}

/** The text of a file, or of an http(s) URL downloaded once into the user's cache. */
async function loadText(source, log) {
  if (!/^https?:\/\//i.test(source)) {
    try {
      return await readFile(source, 'utf8');
    } catch (error) {
      throw new Error(`--data: cannot read ${source}: ${error.message}`);
    }
  }
  const cacheDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rope-wasm', 'data');
  const name = `${createHash('sha256').update(source).digest('hex').slice(0, 16)}-${basename(new URL(source).pathname) || 'data'}`;
  const cached = join(cacheDir, name);
  try {
    return await readFile(cached, 'utf8');
  } catch {
    // not cached yet
  }
  log(`downloading ${source} (cached in ${cached})`);
  let response;
  try {
    response = await fetch(source);
  } catch (error) {
    throw new Error(`--data: cannot download ${source}: ${error.cause?.message ?? error.message}`);
  }
  if (!response.ok) throw new Error(`--data: downloading ${source} failed with HTTP ${response.status}`);
  const text = await response.text();
  await mkdir(cacheDir, { recursive: true });
  await writeAtomically(cached, text);
  return text;
}

/** Writes a file under a temporary name, then renames it: never a half-written file. */
async function writeAtomically(path, data) {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, data);
  await rename(temporary, path);
}

main(process.argv.slice(2)).then(
  (status) => { process.exitCode = status; },
  (error) => {
    if (error instanceof UsageError) {
      process.stderr.write(`rope-wasm: ${error.message}\n${USAGE}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`rope-wasm: ${error.message}\n`);
      process.exitCode = 1;
    }
  },
);
