// train-worker.js: the training view's worker (web/train.html). It owns the rope-wasm module, the
// training session (js/training-session.js) and the training loop (js/training-run.js), so the
// page never waits for a step. The trainer inside may start a worker of its own for the second
// thread (js/train-worker.js, a nested dedicated worker); when that fails it trains on 1 thread
// and says so.
//
// Everything that reads the model (attention maps, samples, checkpoints) runs between two
// optimizer steps: requests that arrive during training wait in a queue that is emptied at the
// start of the next step, when the model and the batch sampler are at a consistent point.
//
// Messages in (from web/train.js):
//   {type: 'init'}
//   {type: 'start', text, configName, steps, evalEvery, seed, threads}
//   {type: 'pause'}
//   {type: 'resume', steps, evalEvery, threads, text?}   (text: for a loaded checkpoint)
//   {type: 'settings', prompt, temperature, sampleTokens, attentionText}
//   {type: 'sample'}, {type: 'attention'}, {type: 'checkpoint'}
//   {type: 'load', bytes, name}
// Messages out:
//   ready {simd, cores, sharedMemory}, session {...}, state {state, step}, progress {...},
//   validating {step}, sample-start / sample-token / sample-end, attention {...}, checkpoint
//   {bytes, name}, note {text}, error {message, during}

import { decodeCheckpoint } from '../js/checkpoint.js';
import { loadRope } from '../js/module.js';
import { CharDataset } from '../js/text-data.js';
import { TRAIN_CONFIGS, optimizerFor } from '../js/train-configs.js';
import { runTraining } from '../js/training-run.js';
import { checkpointBytes, restoreTraining, startTraining } from '../js/training-session.js';

const post = (message, transfer = []) => self.postMessage(message, transfer);

let rw = null;
let session = null;       // {trainer, dataset, run} while a model can train
let viewModel = null;     // a loaded checkpoint's model (sampling, attention) until it is resumed
let loaded = null;        // {checkpoint, bytes, name}: the loaded checkpoint, restored on resume
let running = null;       // the promise of the training loop while it runs
let pauseRequested = false;
let elapsedBefore = 0;    // seconds trained by earlier runs of this session (pause / resume)
let lastAttention = 0;
let settled = 'idle';     // the state to report when a request fails: idle, paused, finished, loaded
let settings = { prompt: 'It is ', temperature: 0.8, sampleTokens: 160, attentionText: '' };

const model = () => session?.trainer.model ?? viewModel;
const now = () => performance.now() / 1000;

// ------------------------------------------------------------------------------------------------
// jobs that read the model: run now when idle, else between two steps

const jobs = new Map();   // kind -> job (one of each kind: a newer request replaces an older one)
let controlBusy = false;  // a start / resume / load is setting up the model

function request(kind, job = {}) {
  jobs.set(kind, { kind, ...job });
  if (!running && !controlBusy) drain();
}

function drain() {
  // Samples are the slowest: the attention maps and the checkpoint go first.
  for (const kind of ['checkpoint', 'attention', 'sample']) {
    const job = jobs.get(kind);
    if (!job) continue;
    jobs.delete(kind);
    try {
      if (kind === 'checkpoint') sendCheckpoint();
      else if (kind === 'attention') sendAttention();
      else sendSample(job);
    } catch (error) {
      post({ type: 'error', during: kind, message: error?.message ?? String(error) });
    }
  }
}

/** The characters of `text` that are not in the model's vocabulary, or ''. */
function unknownCharacters(text, vocabulary) {
  const known = new Set(vocabulary);
  return [...new Set([...text].filter((c) => !known.has(c)))].map((c) => JSON.stringify(c)).join(', ');
}

function sendAttention() {
  const m = model();
  if (!m) return;
  lastAttention = now();
  const chars = [...settings.attentionText];
  const used = chars.slice(0, m.contextLength).join('');
  const base = { type: 'attention', step: m.step, config: m.config, contextLength: m.contextLength, truncated: chars.length > m.contextLength };
  if (used.length === 0) {
    post({ ...base, error: 'Type a text to see where each head looks.' });
    return;
  }
  const unknown = unknownCharacters(used, m.vocabulary);
  if (unknown) {
    post({ ...base, error: `Not in the model's vocabulary: ${unknown}. Use characters of the training text.` });
    return;
  }
  const maps = m.attentionMaps(used);
  post({ ...base, text: used, maps }, maps.map((a) => a.buffer));
}

function sendSample({ label = '' } = {}) {
  const m = model();
  if (!m) return;
  const prompt = settings.prompt;
  const id = `${m.step}-${Math.random().toString(36).slice(2, 8)}`;
  const header = { type: 'sample-start', id, step: m.step, label, prompt };
  const unknown = prompt ? unknownCharacters(prompt, m.vocabulary) : '';
  if (!prompt || unknown) {
    post({ ...header, error: prompt ? `The prompt has characters outside the vocabulary: ${unknown}` : 'The prompt is empty.' });
    return;
  }
  post(header);
  // The prompt's last contextLength characters are the context; the text streams as it is drawn.
  let buffered = '';
  let lastFlush = now();
  const text = m.generate(prompt, {
    maxTokens: settings.sampleTokens,
    temperature: settings.temperature,
    seed: m.step,
    onToken: (tokenId, char) => {
      buffered += char;
      if (now() - lastFlush > 0.05) {
        post({ type: 'sample-token', id, text: buffered });
        buffered = '';
        lastFlush = now();
      }
    },
  });
  post({ type: 'sample-end', id, text });
}

function sendCheckpoint() {
  if (session) {
    // session.run.randomState is the sampler's state for the next step (kept by onProgress), so a
    // resume from this file continues exactly as this run does.
    const bytes = checkpointBytes(session);
    const name = `rope-wasm-${session.run.configName}-step${session.trainer.model.step}.safetensors`;
    post({ type: 'checkpoint', bytes, name }, [bytes.buffer]);
  } else if (loaded) {
    const bytes = loaded.bytes.slice();
    post({ type: 'checkpoint', bytes, name: loaded.name }, [bytes.buffer]);
  } else {
    post({ type: 'error', during: 'checkpoint', message: 'There is no model yet: start a run or load a checkpoint.' });
  }
}

// ------------------------------------------------------------------------------------------------
// the training loop

function train() {
  const { run, dataset, trainer } = session;
  const started = now();
  post({ type: 'state', state: 'running', step: trainer.model.step, steps: run.steps });
  running = (async () => {
    let state = 'finished';
    try {
      const result = await runTraining({
        trainer,
        dataset,
        seq: run.seq,
        batch: run.batch,
        steps: run.steps,
        evalEvery: run.evalEvery,
        randomState: run.randomState,
        shouldStop: () => pauseRequested,
        // Between two steps the model and the batch sampler agree: queued jobs run there.
        betweenSteps: drain,
        onValidationStart: (step) => post({ type: 'validating', step }),
        onProgress: (report) => {
          session.run.randomState = report.randomState;
          post({ type: 'progress', ...report, elapsedSeconds: elapsedBefore + report.elapsedSeconds });
          if (report.validLoss !== undefined) {
            request('attention');
            request('sample', { label: `validation loss ${report.validLoss.toFixed(3)}` });
          } else if (now() - lastAttention > 2) {
            request('attention');  // the maps stay live between validations too
          }
        },
      });
      session.run.randomState = result.randomState;
      if (result.stopped) state = 'paused';
    } catch (error) {
      state = 'error';
      post({ type: 'error', during: 'training', message: error?.message ?? String(error) });
    } finally {
      elapsedBefore += now() - started;
      running = null;
    }
    drain();
    settled = state === 'error' ? 'paused' : state;
    post({ type: 'state', state, step: trainer.model.step, steps: run.steps });
  })();
}

async function stopTraining() {
  if (!running) return;
  pauseRequested = true;
  await running;
}

async function discard() {
  await stopTraining();
  if (session) {
    await session.trainer.close();
    session.trainer.model.dispose();
    session = null;
  }
  viewModel?.dispose();
  viewModel = null;
  loaded = null;
  elapsedBefore = 0;
  jobs.clear();
}

/**
 * make(threads) with the threads asked for; when a second thread cannot start (no nested
 * workers, say), again on 1 thread, with a note for the page.
 */
async function withThreadFallback(threads, make) {
  try {
    return await make(threads);
  } catch (error) {
    if (threads === 1) throw error;
    const result = await make(1);
    post({ type: 'note', text: `A second training thread could not start (${error?.message ?? error}).` });
    return result;
  }
}

function describeSession(extra = {}) {
  const { trainer, dataset, run } = session;
  const m = trainer.model;
  post({
    type: 'session',
    config: m.config,
    run: { ...run },
    paramCount: m.paramCount,
    threads: trainer.threads,
    simd: m.simd,
    vocabulary: dataset.vocabulary,
    trainChars: dataset.train.length,
    validChars: dataset.valid.length,
    step: m.step,
    ...extra,
  });
}

// ------------------------------------------------------------------------------------------------
// control messages, one at a time

async function start({ text, configName, steps, evalEvery, seed, threads }) {
  await discard();
  pauseRequested = false;  // a Pause pressed from here on stops the new run
  const dataset = new CharDataset(text);
  const config = TRAIN_CONFIGS[configName];
  if (!config) throw new RangeError(`unknown configuration '${configName}'`);
  // The reference's validation protocol needs at least one window of seq + 1 characters.
  dataset.validationBatches(config.seq, config.batch);
  session = await withThreadFallback(threads, (t) => startTraining(rw, { dataset, configName, steps, seed, threads: t }));
  session.run.evalEvery = evalEvery;
  describeSession();
  request('attention');
  train();
}

async function resume({ steps, evalEvery, threads, text }) {
  await stopTraining();
  pauseRequested = false;
  if (!session && loaded) {
    const checkpoint = loaded.checkpoint;
    const restored = await withThreadFallback(threads, (t) => restoreTraining(rw, checkpoint, { text, steps, threads: t }));
    viewModel?.dispose();
    viewModel = null;
    loaded = null;
    session = restored;
    elapsedBefore = 0;
  }
  if (!session) throw new Error('Nothing to resume: start a run or load a checkpoint.');
  const { run, trainer } = session;
  if (steps !== run.steps) {
    // The cosine schedule spans the run: it follows a new length (the moments are kept).
    trainer.model.configureOptimizer(optimizerFor(TRAIN_CONFIGS[run.configName], steps));
    run.steps = steps;
  }
  run.evalEvery = evalEvery;
  describeSession();
  train();
}

async function load({ bytes, name }) {
  let checkpoint;
  try {
    checkpoint = decodeCheckpoint(bytes);
  } catch (error) {
    throw new Error(`${name} is not a checkpoint this page can read: ${error?.message ?? error}`);
  }
  const config = checkpoint.config;
  if (!config || !checkpoint.vocab) {
    throw new Error(`${name} has no rope-wasm config and vocabulary in its metadata: a plain state_dict cannot be used here without them.`);
  }
  await discard();
  const training = config.training ?? null;
  const { vocab, dModel, heads, layers, dFF, ropePercentage, base } = config;
  viewModel = rw.transformer({
    vocab, vocabulary: checkpoint.vocab, dModel, heads, layers, dFF, ropePercentage, base,
    contextLength: training?.seq ?? 256,
  });
  viewModel.loadWeights(checkpoint.weights);
  viewModel.step = checkpoint.step;
  loaded = { checkpoint, bytes: new Uint8Array(bytes), name };
  post({
    type: 'loaded',
    name,
    config: viewModel.config,
    paramCount: viewModel.paramCount,
    vocabulary: checkpoint.vocab,
    step: checkpoint.step,
    training,
    resumable: training !== null && Object.hasOwn(TRAIN_CONFIGS, training.configName),
    contextLength: viewModel.contextLength,
  });
  request('attention');
  request('sample', { label: 'loaded checkpoint' });
}

let control = Promise.resolve();
function runControl(message, action) {
  control = control.then(async () => {
    controlBusy = true;
    try {
      await action(message);
    } catch (error) {
      post({ type: 'error', during: message.type, message: error?.message ?? String(error) });
      const state = running ? 'running' : session ? (settled === 'finished' ? 'finished' : 'paused') : loaded ? 'loaded' : 'idle';
      post({ type: 'state', state, step: model()?.step ?? 0, steps: session?.run.steps });
    } finally {
      controlBusy = false;
      if (!running) drain();
    }
  });
}

self.onmessage = ({ data }) => {
  switch (data.type) {
    case 'init':
      runControl(data, async () => {
        rw = await loadRope();
        post({
          type: 'ready',
          simd: rw.simd,
          cores: navigator.hardwareConcurrency ?? 1,
          sharedMemory: typeof SharedArrayBuffer !== 'undefined' && self.crossOriginIsolated === true,
          nestedWorkers: typeof Worker !== 'undefined',
        });
      });
      break;
    case 'start': runControl(data, start); break;
    case 'resume': runControl(data, resume); break;
    case 'load': runControl(data, load); break;
    case 'pause': pauseRequested = true; break;
    case 'settings': {
      const { type, ...rest } = data;
      settings = { ...settings, ...rest };
      break;
    }
    case 'attention': request('attention'); break;
    case 'sample': request('sample', { label: 'on request' }); break;
    case 'checkpoint': request('checkpoint'); break;
    default:
      post({ type: 'error', during: 'message', message: `unknown message type ${data.type}` });
  }
};
