// trainer.js: data-parallel training of a Transformer on several threads (Node worker_threads or
// browser Web Workers), each running its own instance of the wasm module.
//
// A batch is split into a fixed number of micro-batches (groups of columns). Thread 0 is the
// caller's; micro-batch i runs on thread i % threads. Their gradients are summed in the order
// 0, 1, 2, ... and the optimizer runs once, on the caller's thread. Because the split and the
// order do not depend on the number of threads, 1 thread and N threads give the same bits
// (Transformer.trainStep with the same microBatches is the 1-thread case).
//
// Parameters go to the workers, and gradients come back, through SharedArrayBuffers when the
// engine has them (Node; browsers when the page is cross-origin isolated), else by postMessage.

import { splitColumns } from './transformer.js';
import { checkOptions, describe, integer } from './validate.js';

const isNode = typeof process !== 'undefined' && process.versions?.node != null;

export class Trainer {
  #model;             // the caller's Transformer: holds the master parameters and the optimizer
  #workers = [];      // [{port, pending: Map(id -> {resolve, reject})}]
  #microBatches;
  #shared = null;     // {params: Float32Array, grads: [Float32Array per micro-batch]} on SABs, or null
  #version = 0;       // increases whenever the parameters change; workers copy them when behind
  #published = -1;    // the version the workers can read
  #nextId = 1;
  #closed = false;

  /** Use createTrainer(). */
  constructor(model, microBatches, workers, shared) {
    this.#model = model;
    this.#microBatches = microBatches;
    this.#workers = workers;
    this.#shared = shared;
  }

  /** The Transformer being trained (its parameters are the master copy). */
  get model() {
    return this.#model;
  }

  /** Threads in use, the caller's included. */
  get threads() {
    return this.#workers.length + 1;
  }

  get microBatches() {
    return this.#microBatches;
  }

  /** Tell the trainer that the model's parameters were changed from outside (loadWeights). */
  parametersChanged() {
    this.#version++;
  }

  /**
   * One optimizer step on tokens, targets [seq, batch] (batch a multiple of microBatches).
   * Resolves to {step, loss, gradNorm, lr}.
   */
  async step(tokens, targets, options) {
    this.#check();
    if (options === undefined) throw new TypeError('step: options {seq, batch} are required');
    checkOptions(options, ['seq', 'batch'], 'step');
    const seq = integer(options.seq, 'seq', 1);
    const batch = integer(options.batch, 'batch', 1);
    const parts = this.#microBatches;
    if (batch % parts !== 0) throw new RangeError(`batch (${batch}) must be a multiple of microBatches (${parts})`);
    const model = this.#model;
    checkIds(tokens, 'tokens', seq * batch, model.config.vocab);
    checkIds(targets, 'targets', seq * batch, model.config.vocab);
    const lossScale = 1 / (seq * batch);
    this.#publishParameters();
    // Start every worker's micro-batches first, so that they run while this thread computes.
    const results = [];
    for (let i = 0; i < parts; i++) {
      const thread = i % this.threads;
      if (thread === 0) continue;
      const part = splitColumns(tokens, targets, seq, batch, parts, i);
      results[i] = this.#request(thread - 1, { type: 'gradients', part: i, seq, batch: part.batch, tokens: part.tokens, targets: part.targets, lossScale });
    }
    let lossSum = 0;
    try {
      for (let i = 0; i < parts; i++) {
        const thread = i % this.threads;
        if (thread === 0) {
          const part = splitColumns(tokens, targets, seq, batch, parts, i);
          lossSum += model.computeGradients(part.tokens, part.targets, seq, part.batch, lossScale) * part.batch;
          model.accumulateGradients(null);
        } else {
          const reply = await results[i];
          lossSum += reply.loss * (batch / parts);
          model.accumulateGradients(this.#shared ? this.#shared.grads[i] : reply.grads);
        }
      }
    } catch (error) {
      // Let every worker finish (no reply is left unheard), and drop the partial sum: the next
      // step starts clean and the parameters are untouched.
      await Promise.allSettled(results.filter(Boolean));
      model.discardGradients();
      throw error;
    }
    const result = model.applyOptimizer();
    this.#version++;
    return { ...result, loss: lossSum / batch };
  }

  /**
   * The mean loss over batches [{tokens, targets, batch}] of [seq, batch] windows (e.g. every
   * validation window), spread over the threads. Resolves to the token-weighted mean.
   */
  async evaluate(batches, seq) {
    this.#check();
    integer(seq, 'seq', 1);
    if (!Array.isArray(batches)) throw new TypeError(`batches must be an array of {tokens, targets, batch}, got ${describe(batches)}`);
    this.#publishParameters();
    const losses = new Array(batches.length);
    const waiting = [];
    batches.forEach((b, j) => {
      const thread = j % this.threads;
      if (thread !== 0) {
        waiting.push(this.#request(thread - 1, { type: 'loss', seq, batch: b.batch, tokens: b.tokens, targets: b.targets })
          .then((reply) => { losses[j] = reply.loss; }));
      }
    });
    batches.forEach((b, j) => {
      if (j % this.threads === 0) losses[j] = this.#model.loss(b.tokens, b.targets, { seq, batch: b.batch });
    });
    await Promise.all(waiting);
    let sum = 0;
    let count = 0;
    batches.forEach((b, j) => {
      sum += losses[j] * b.batch;
      count += b.batch;
    });
    return sum / count;
  }

  /** Stops the worker threads. The model stays usable; the trainer does not. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.port.terminate()));
    this.#workers = [];
  }

  #check() {
    if (this.#closed) throw new TypeError('this trainer was closed');
  }

  /** Makes the current parameters what the workers will read. */
  #publishParameters() {
    if (this.#published === this.#version || this.#workers.length === 0) return;
    if (this.#shared) this.#shared.params.set(this.#model.parameterView());
    this.#published = this.#version;
  }

  #request(worker, message) {
    const w = this.#workers[worker];
    const id = this.#nextId++;
    message.id = id;
    message.version = this.#published;
    if (!this.#shared && w.version !== this.#published) {
      message.params = this.#model.parameterView().slice();
      w.version = this.#published;
    }
    return new Promise((resolve, reject) => {
      w.pending.set(id, { resolve, reject });
      w.port.post(message);
    });
  }
}

/**
 * A trainer of `model` (a Transformer with its optimizer configured) on `threads` threads (default:
 * the machine's cores, at most microBatches; 1 = no worker). Each worker loads its own wasm
 * instance, of the same build (SIMD or scalar) as the model's.
 */
export async function createTrainer(model, options = {}) {
  checkOptions(options, ['microBatches', 'threads'], 'createTrainer');
  if (!model || typeof model.computeGradients !== 'function') throw new TypeError(`model must be a Transformer, got ${describe(model)}`);
  if (!model.optimizer) throw new Error('createTrainer: configure the model\'s optimizer first (model.configureOptimizer)');
  const microBatches = integer(options.microBatches ?? 1, 'microBatches', 1, 1024);
  const cores = await availableCores();
  const threads = integer(options.threads ?? Math.min(cores, microBatches), 'threads', 1, 1024);
  const workerCount = Math.min(threads, microBatches) - 1;
  let shared = null;
  if (workerCount > 0 && sharedMemoryUsable()) {
    const n = model.paramCount;
    shared = {
      params: new Float32Array(new SharedArrayBuffer(4 * n)),
      grads: Array.from({ length: microBatches }, () => new Float32Array(new SharedArrayBuffer(4 * n))),
    };
  }
  const workers = [];
  try {
    for (let i = 0; i < workerCount; i++) {
      workers.push(await startWorker(model, shared));
    }
  } catch (error) {
    await Promise.all(workers.map((w) => w.port.terminate()));
    throw error;
  }
  return new Trainer(model, microBatches, workers, shared);
}

function sharedMemoryUsable() {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  return isNode || globalThis.crossOriginIsolated === true;
}

async function availableCores() {
  if (isNode) {
    const os = await import('node:os');
    return os.availableParallelism?.() ?? os.cpus().length;
  }
  return globalThis.navigator?.hardwareConcurrency ?? 1;
}

/** Starts js/train-worker.js, loads its model, and wires replies to pending requests. */
async function startWorker(model, shared) {
  const url = new URL('./train-worker.js', import.meta.url);
  let port;
  if (isNode) {
    const { Worker } = await import('node:worker_threads');
    const worker = new Worker(url);
    port = {
      post: (message) => worker.postMessage(message),
      onMessage: (handler) => worker.on('message', handler),
      onError: (handler) => worker.on('error', handler),
      terminate: () => worker.terminate(),
    };
  } else {
    const worker = new Worker(url, { type: 'module' });
    port = {
      post: (message) => worker.postMessage(message),
      onMessage: (handler) => { worker.onmessage = (event) => handler(event.data); },
      onError: (handler) => { worker.onerror = (event) => handler(new Error(`train worker: ${event.message}`)); },
      terminate: () => worker.terminate(),
    };
  }
  const entry = { port, pending: new Map(), version: -1 };
  const failAll = (error) => {
    for (const { reject } of entry.pending.values()) reject(error);
    entry.pending.clear();
  };
  port.onError(failAll);
  port.onMessage((reply) => {
    const waiter = entry.pending.get(reply.id);
    if (!waiter) return;
    entry.pending.delete(reply.id);
    if (reply.error) waiter.reject(new Error(`train worker: ${reply.error}`));
    else waiter.resolve(reply);
  });
  await new Promise((resolve, reject) => {
    entry.pending.set(0, { resolve, reject });
    port.post({
      type: 'init', id: 0, simd: model.simd, config: model.config, shared,
    });
  });
  return entry;
}

function checkIds(value, name, length, vocab) {
  if (!(value instanceof Int32Array)) throw new TypeError(`${name} must be an Int32Array of token ids, got ${describe(value)}`);
  if (value.length !== length) throw new RangeError(`${name} has length ${value.length}; expected ${length} ([seq, batch])`);
  for (let i = 0; i < length; i++) {
    if (!(value[i] >= 0 && value[i] < vocab)) throw new RangeError(`${name}[${i}] = ${value[i]} is not a token id in [0, ${vocab})`);
  }
}
