// transformer.js: rw.transformer, the seed's character-level RoPE transformer (c/model.h) with its
// optimizer (c/optim.h), trained and sampled in wasm.
//
// Parameters, gradients and the optimizer's moments live in wasm memory; weights() and
// lossAndGrads() copy them out keyed by the PyTorch state_dict names of the reference model.

import { checkStatus } from './errors.js';
import { SeededRandom } from './random.js';
import { checkOptions, describe, finiteNumber, integer, oneOf, positiveNumber } from './validate.js';

const MODEL_OPTIONS = ['vocab', 'vocabulary', 'dModel', 'heads', 'layers', 'dFF', 'ropePercentage', 'base', 'seed',
  'contextLength'];
const OPTIMIZER_OPTIONS = ['type', 'lr', 'betas', 'eps', 'weightDecay', 'clipNorm', 'schedule'];
const SCHEDULE_KEYS = {
  constant: ['type'],
  cosine: ['type', 'warmup', 'totalSteps', 'finalFraction'],
  noam: ['type', 'warmup'],
};
// Tokens per forward call (seq * batch) at most: the activations of one call stay far below 4 GiB.
const MAX_TOKENS_PER_CALL = 2 ** 20;
const MODEL_CONFIG_BYTES = 40;  // sizeof(model_config) in wasm32: 5 int32, padding, 2 double

const registry = new FinalizationRegistry(({ exports, model, buffers }) => {
  exports.transformer_destroy(model);
  for (const ptr of buffers) if (ptr) exports.free(ptr);
});

export class Transformer {
  #module;
  #model = 0;         // transformer* (c/model.h)
  #maxSeq = 0;        // the activations the C model holds are for seq <= maxSeq, batch <= maxBatch
  #maxBatch = 0;
  #buffers = { gradSum: 0, expAvg: 0, expAvgSq: 0 };  // [paramCount] floats each, made at the first step
  #optimizer = null;  // the checked optimizer options
  #hasGradSum = false;

  /** Use rw.transformer(options). */
  constructor(module, options) {
    const what = 'transformer';
    if (options === undefined) throw new TypeError(`${what}: options {vocab, dModel, heads, layers, dFF} are required`);
    checkOptions(options, MODEL_OPTIONS, what);
    let vocabulary = null;
    if (options.vocabulary !== undefined) {
      if (typeof options.vocabulary !== 'string') {
        throw new TypeError(`vocabulary must be a string of characters (token id = index), got ${describe(options.vocabulary)}`);
      }
      vocabulary = [...options.vocabulary];
      if (new Set(vocabulary).size !== vocabulary.length) throw new RangeError('vocabulary has a repeated character');
    }
    const vocab = integer(options.vocab ?? vocabulary?.length, 'vocab', 1, 2 ** 24);
    if (vocabulary && vocabulary.length !== vocab) {
      throw new RangeError(`vocab (${vocab}) must equal the number of characters of vocabulary (${vocabulary.length})`);
    }
    const dModel = integer(options.dModel, 'dModel', 1, 2 ** 15);
    const heads = integer(options.heads, 'heads', 1, dModel);
    if (dModel % heads !== 0) throw new RangeError(`dModel (${dModel}) must be a multiple of heads (${heads})`);
    const layers = integer(options.layers, 'layers', 1, 1024);
    const dFF = integer(options.dFF, 'dFF', 1, 2 ** 17);
    const ropePercentage = options.ropePercentage ?? 1;
    if (typeof ropePercentage !== 'number' || !(ropePercentage >= 0 && ropePercentage <= 1)) {
      throw new RangeError(`ropePercentage must be a number in [0, 1], got ${describe(ropePercentage)}`);
    }
    const dK = dModel / heads;
    const ropeDim = Math.trunc(dK * ropePercentage);
    if (ropeDim % 2 !== 0) {
      throw new RangeError(`int(d_k * ropePercentage) = ${ropeDim} must be even (features are rotated in pairs)`);
    }
    const base = positiveNumber(options.base ?? 10000, 'base');
    const seed = integer(options.seed ?? 0, 'seed', 0, Number.MAX_SAFE_INTEGER);
    const contextLength = integer(options.contextLength ?? 256, 'contextLength', 1, MAX_TOKENS_PER_CALL);

    this.#module = module;
    /** The model's shape: {vocab, dModel, heads, layers, dFF, ropePercentage, base}. */
    this.config = Object.freeze({ vocab, dModel, heads, layers, dFF, ropePercentage, base });
    /** The characters of the vocabulary (token id = index), or null when only its size is known. */
    this.vocabulary = vocabulary ? vocabulary.join('') : null;
    /** True when the model runs on the wasm SIMD128 build. */
    this.simd = module.simd;
    /** The longest context generate() and attentionMaps() feed the model. */
    this.contextLength = contextLength;
    /** Optimizer steps taken. */
    this.step = 0;

    this.#model = this.#create(1, 1);
    try {
      checkStatus(module.exports.transformer_init(this.#model, BigInt(seed)), what);
      this.paramCount = Number(module.exports.transformer_param_count(this.#model));
      /** [{name, shape, offset, length}] in state_dict order; offset in floats. */
      this.tensors = Object.freeze(this.#readTensorTable());
    } catch (error) {
      module.exports.transformer_destroy(this.#model);
      throw error;
    }
    this.#maxSeq = 1;
    this.#maxBatch = 1;
    registry.register(this, { exports: module.exports, model: this.#model, buffers: [] }, this);
  }

  // ---------------------------------------------------------------------------------------------
  // weights

  /** Every parameter, copied: {state_dict name: Float32Array}. */
  weights() {
    const params = this.#params();
    const out = {};
    for (const t of this.tensors) out[t.name] = params.slice(t.offset, t.offset + t.length);
    return out;
  }

  /**
   * Replaces every parameter: {state_dict name: Float32Array or array of numbers, or {data, shape}}
   * with exactly the names and sizes of this.tensors. Nothing changes unless all of them check.
   */
  loadWeights(weights) {
    this.#check();
    if (weights === null || typeof weights !== 'object') throw new TypeError(`weights must be an object keyed by state_dict names, got ${describe(weights)}`);
    const known = new Set(this.tensors.map((t) => t.name));
    for (const name of Object.keys(weights)) {
      if (!known.has(name)) throw new TypeError(`weights: unknown tensor '${name}' (this model has ${this.tensors.length} tensors, e.g. '${this.tensors[0].name}')`);
    }
    const values = this.tensors.map((t) => {
      const value = weights[t.name];
      if (value === undefined) throw new TypeError(`weights: '${t.name}' is missing`);
      let data = value;
      if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) && !Array.isArray(value)) {
        const shape = value.shape;
        if (shape !== undefined && (!Array.isArray(shape) || shape.join() !== t.shape.join())) {
          throw new RangeError(`weights['${t.name}'] has shape [${shape}]; expected [${t.shape}]`);
        }
        data = value.data;
      }
      if (data === null || typeof data !== 'object' || typeof data.length !== 'number') {
        throw new TypeError(`weights['${t.name}'] must be a Float32Array, got ${describe(data)}`);
      }
      if (data.length !== t.length) throw new RangeError(`weights['${t.name}'] has ${data.length} values; expected ${t.length} ([${t.shape}])`);
      return data;
    });
    const params = this.#params();
    this.tensors.forEach((t, i) => params.set(values[i], t.offset));
  }

  // ---------------------------------------------------------------------------------------------
  // forward and backward

  /**
   * The mean cross-entropy of predicting `targets` from `tokens` and its gradient with respect to
   * every parameter. tokens, targets: [seq, batch] token ids (Int32Array or array of integers).
   * Returns {loss, grads: {state_dict name: Float32Array}}.
   */
  lossAndGrads(tokens, targets, options) {
    const { seq, batch } = this.#shape(options, 'lossAndGrads');
    const loss = this.computeGradients(tokens, targets, seq, batch, 1 / (seq * batch));
    const grads = this.#module.f32(this.#gradsPtr(), this.paramCount);
    const out = {};
    for (const t of this.tensors) out[t.name] = grads.slice(t.offset, t.offset + t.length);
    return { loss, grads: out };
  }

  /** The mean cross-entropy of `targets` given `tokens` ([seq, batch]), forward only. */
  loss(tokens, targets, options) {
    const { seq, batch } = this.#shape(options, 'loss');
    return this.#forward(tokens, targets, seq, batch);
  }

  /** The logits [seq, batch, vocab] for `tokens` [seq, batch], a new Float32Array. */
  logits(tokens, options) {
    const { seq, batch } = this.#shape(options, 'logits');
    this.#forward(tokens, null, seq, batch);
    return this.#module.f32(this.#module.exports.transformer_logits(this.#model) >>> 0, seq * batch * this.config.vocab).slice();
  }

  /**
   * The attention weights of every layer and head for one sequence: tokens (a string when the
   * model has a vocabulary, or token ids) of at most contextLength. Returns an array over layers
   * of Float32Array [heads, seq, seq] (row = query, column = key; causal, so zero above the diagonal).
   */
  attentionMaps(tokens) {
    const ids = this.#tokenIds(tokens, 'tokens');
    if (ids.length < 1 || ids.length > this.contextLength) {
      throw new RangeError(`tokens must have 1 to contextLength (${this.contextLength}) tokens, got ${ids.length}`);
    }
    const seq = ids.length;
    this.#forward(ids, null, seq, 1);
    const maps = [];
    for (let layer = 0; layer < this.config.layers; layer++) {
      const ptr = this.#module.exports.transformer_attention_weights(this.#model, layer) >>> 0;
      maps.push(this.#module.f32(ptr, this.config.heads * seq * seq).slice());
    }
    return maps;
  }

  /**
   * Low level, for data-parallel training: the gradient of lossScale * (sum of the token losses)
   * is left in the model's gradient buffer (gradientView()). Returns the mean loss of the batch.
   */
  computeGradients(tokens, targets, seq, batch, lossScale) {
    const loss = this.#forward(tokens, targets, seq, batch);
    checkStatus(this.#module.exports.transformer_backward(this.#model, lossScale), 'backward');
    return loss;
  }

  /** Low level: a fresh view of the gradient buffer [paramCount] (valid until memory grows). */
  gradientView() {
    return this.#module.f32(this.#gradsPtr(), this.paramCount);
  }

  /** Low level: a fresh view of the parameters [paramCount] in state_dict order. */
  parameterView() {
    return this.#params();
  }

  // ---------------------------------------------------------------------------------------------
  // optimizer

  /**
   * Sets the optimizer: {type: 'adamw' (default) | 'adam', lr, betas = [0.9, 0.999], eps = 1e-8,
   * weightDecay = 0 (adamw only), clipNorm = 0 (off), schedule: {type: 'constant'} |
   * {type: 'cosine', warmup, totalSteps, finalFraction = 0.1} | {type: 'noam', warmup}}.
   * Noam is the seed's: lr * dModel^-0.5 * min(step^-0.5, step * warmup^-1.5).
   */
  configureOptimizer(options) {
    this.#check();
    const what = 'configureOptimizer';
    if (options === undefined) throw new TypeError(`${what}: options {lr, ...} are required`);
    checkOptions(options, OPTIMIZER_OPTIONS, what);
    const type = oneOf(options.type ?? 'adamw', 'type', ['adamw', 'adam']);
    const lr = positiveNumber(options.lr, 'lr');
    const betas = options.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) throw new TypeError(`betas must be an array of 2 numbers, got ${describe(betas)}`);
    betas.forEach((b, i) => {
      finiteNumber(b, `betas[${i}]`);
      if (!(b >= 0 && b < 1)) throw new RangeError(`betas[${i}] must be in [0, 1), got ${b}`);
    });
    const eps = positiveNumber(options.eps ?? 1e-8, 'eps');
    const weightDecay = finiteNumber(options.weightDecay ?? 0, 'weightDecay');
    if (weightDecay < 0) throw new RangeError(`weightDecay must be >= 0, got ${weightDecay}`);
    if (type === 'adam' && weightDecay !== 0) throw new RangeError("weightDecay needs type 'adamw' (decoupled decay)");
    const clipNorm = finiteNumber(options.clipNorm ?? 0, 'clipNorm');
    if (clipNorm < 0) throw new RangeError(`clipNorm must be >= 0 (0 = no clipping), got ${clipNorm}`);
    const schedule = checkSchedule(options.schedule ?? { type: 'constant' });
    this.#optimizer = Object.freeze({ type, lr, betas: [...betas], eps, weightDecay, clipNorm, schedule });
    this.#allocateOptimizerBuffers();
    return this.#optimizer;
  }

  /** The optimizer options in force, or null. */
  get optimizer() {
    return this.#optimizer;
  }

  /** The learning rate of optimizer step `step` (1-based) under the configured schedule. */
  learningRate(step = this.step + 1) {
    const opt = this.#requireOptimizer();
    integer(step, 'step', 1);
    const { schedule, lr } = opt;
    const exports = this.#module.exports;
    if (schedule.type === 'noam') return exports.lr_noam(lr, this.config.dModel, schedule.warmup, step);
    if (schedule.type === 'cosine') {
      return exports.lr_warmup_cosine(lr, schedule.warmup, schedule.totalSteps, schedule.finalFraction, step);
    }
    return lr;
  }

  /**
   * One optimizer step on one batch: tokens, targets [seq, batch]. microBatches splits the batch
   * into that many equal groups of columns whose gradients are summed in order, exactly as the
   * multi-threaded trainer does, so both give the same bits. Returns {step, loss, gradNorm, lr}.
   */
  trainStep(tokens, targets, options) {
    const what = 'trainStep';
    if (options === undefined) throw new TypeError(`${what}: options {seq, batch} are required`);
    checkOptions(options, ['seq', 'batch', 'microBatches'], what);
    const { seq, batch } = this.#shape({ seq: options.seq, batch: options.batch }, what);
    const microBatches = integer(options.microBatches ?? 1, 'microBatches', 1, batch);
    if (batch % microBatches !== 0) throw new RangeError(`batch (${batch}) must be a multiple of microBatches (${microBatches})`);
    this.#requireOptimizer();
    const tokenIds = this.#tokenIds(tokens, 'tokens', seq * batch);
    const targetIds = this.#tokenIds(targets, 'targets', seq * batch);
    let lossSum = 0;
    try {
      for (let i = 0; i < microBatches; i++) {
        const part = splitColumns(tokenIds, targetIds, seq, batch, microBatches, i);
        const loss = this.computeGradients(part.tokens, part.targets, seq, part.batch, 1 / (seq * batch));
        lossSum += loss * part.batch;
        this.accumulateGradients(null);
      }
    } catch (error) {
      this.discardGradients();  // e.g. out of memory half way: the next step starts clean
      throw error;
    }
    return { ...this.applyOptimizer(), loss: lossSum / batch };
  }

  /**
   * Low level: adds a micro-batch's gradients to the running sum: `grads` (a Float32Array of
   * paramCount from another thread), or null for this model's own gradient buffer. The first call
   * after applyOptimizer() copies instead of adding.
   */
  accumulateGradients(grads) {
    this.#requireOptimizer();
    const exports = this.#module.exports;
    const n = this.paramCount;
    const own = this.#gradsPtr();
    if (grads !== null) {
      if (!(grads instanceof Float32Array) || grads.length !== n) {
        throw new TypeError(`grads must be a Float32Array of ${n} values, got ${describe(grads)}`);
      }
      this.#module.f32(own, n).set(grads);
    }
    const sum = this.#buffers.gradSum;
    if (this.#hasGradSum) {
      checkStatus(exports.add_floats(sum, own, BigInt(n)), 'accumulateGradients');
    } else {
      this.#module.f32(sum, n).set(this.#module.f32(own, n));
      this.#hasGradSum = true;
    }
  }

  /** Low level: forgets the gradients accumulated since the last step (after a failed step). */
  discardGradients() {
    this.#hasGradSum = false;
  }

  /**
   * Low level: clips the summed gradients to clipNorm, takes one optimizer step with them and
   * starts a new sum. Returns {step, gradNorm (before clipping), lr}.
   */
  applyOptimizer() {
    const opt = this.#requireOptimizer();
    if (!this.#hasGradSum) throw new Error('applyOptimizer: no gradients were accumulated since the last step');
    const exports = this.#module.exports;
    const n = BigInt(this.paramCount);
    const sum = this.#buffers.gradSum;
    const gradNorm = exports.grad_norm(sum, n);
    if (opt.clipNorm > 0) {
      // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
      const coefficient = opt.clipNorm / (gradNorm + 1e-6);
      if (coefficient < 1) checkStatus(exports.scale_floats(sum, n, coefficient), 'applyOptimizer');
    }
    const step = this.step + 1;
    const lr = this.learningRate(step);
    const status = exports.adamw_update(this.#params().byteOffset, sum, this.#buffers.expAvg, this.#buffers.expAvgSq,
      n, lr, opt.betas[0], opt.betas[1], opt.eps, opt.type === 'adamw' ? opt.weightDecay : 0, step);
    checkStatus(status, 'applyOptimizer');
    this.step = step;
    this.#hasGradSum = false;
    return { step, gradNorm, lr };
  }

  /**
   * The optimizer state, copied, for a checkpoint: {step, expAvg, expAvgSq} (Float32Array of
   * paramCount in state_dict order), or null before configureOptimizer.
   */
  optimizerState() {
    if (!this.#optimizer) return null;
    const n = this.paramCount;
    return {
      step: this.step,
      expAvg: this.#module.f32(this.#buffers.expAvg, n).slice(),
      expAvgSq: this.#module.f32(this.#buffers.expAvgSq, n).slice(),
    };
  }

  /** Restores what optimizerState() returned (configureOptimizer first). */
  loadOptimizerState(state) {
    this.#requireOptimizer();
    if (state === null || typeof state !== 'object') throw new TypeError(`state must be {step, expAvg, expAvgSq}, got ${describe(state)}`);
    const step = integer(state.step, 'state.step', 0);
    for (const key of ['expAvg', 'expAvgSq']) {
      const value = state[key];
      if (!(value instanceof Float32Array)) throw new TypeError(`state.${key} must be a Float32Array, got ${describe(value)}`);
      if (value.length !== this.paramCount) throw new RangeError(`state.${key} has ${value.length} values; expected ${this.paramCount}`);
    }
    this.#module.f32(this.#buffers.expAvg, this.paramCount).set(state.expAvg);
    this.#module.f32(this.#buffers.expAvgSq, this.paramCount).set(state.expAvgSq);
    this.step = step;
  }

  // ---------------------------------------------------------------------------------------------
  // sampling

  /**
   * Continues `prompt` (a string when the model has a vocabulary, or token ids) by maxTokens
   * tokens, each drawn from softmax(logits / temperature) over the topK likeliest (0 = all);
   * temperature 0 is greedy. onToken(id, char) is called for each new token. Returns the new text
   * (string prompt) or token ids (Int32Array).
   * Tokens are decoded one at a time against a KV cache (c/model.h's transformer_decode), so each
   * costs one token's forward pass. The context is at most contextLength tokens: the prompt's last
   * ones; when the cache is full, the newest half of the context is encoded again from position 0.
   */
  generate(prompt, options = {}) {
    const what = 'generate';
    checkOptions(options, ['maxTokens', 'temperature', 'topK', 'seed', 'onToken'], what);
    const maxTokens = integer(options.maxTokens ?? 100, 'maxTokens', 0, 2 ** 24);
    const temperature = finiteNumber(options.temperature ?? 1, 'temperature');
    if (temperature < 0) throw new RangeError(`temperature must be >= 0 (0 = greedy), got ${temperature}`);
    const topK = integer(options.topK ?? 0, 'topK', 0, this.config.vocab);
    const random = new SeededRandom(integer(options.seed ?? 0, 'seed', 0, Number.MAX_SAFE_INTEGER));
    const onToken = options.onToken;
    if (onToken !== undefined && typeof onToken !== 'function') throw new TypeError(`onToken must be a function, got ${describe(onToken)}`);
    const context = [...this.#tokenIds(prompt, 'prompt')];
    if (context.length === 0) throw new RangeError('prompt must have at least one token');
    this.#ensureCapacity(this.contextLength, 1);
    const exports = this.#module.exports;
    const vocab = this.config.vocab;
    const chars = this.vocabulary ? [...this.vocabulary] : null;
    const generated = new Int32Array(maxTokens);
    const logits = this.#module.allocFloats(vocab, what);
    // Feeds `ids` to an empty cache; the logits of the last are left in `logits`.
    const encode = (ids) => {
      checkStatus(exports.transformer_decode_reset(this.#model), what);
      for (const id of ids) checkStatus(exports.transformer_decode(this.#model, id, logits), what);
    };
    try {
      encode(context.slice(-this.contextLength));
      for (let t = 0; t < maxTokens; t++) {
        const id = exports.sample_logits(logits, vocab, temperature, topK, random.nextFloat());
        checkStatus(Math.min(id, 0), what);
        generated[t] = id;
        context.push(id);
        onToken?.(id, chars ? chars[id] : undefined);
        if (t === maxTokens - 1) break;
        if (exports.transformer_decode_length(this.#model) === this.contextLength) {
          encode(context.slice(-Math.max(1, Math.floor(this.contextLength / 2))));
        } else {
          checkStatus(exports.transformer_decode(this.#model, id, logits), what);
        }
      }
    } finally {
      exports.free(logits);
    }
    return chars && typeof prompt === 'string' ? Array.from(generated, (id) => chars[id]).join('') : generated;
  }

  // ---------------------------------------------------------------------------------------------
  // lifetime

  get disposed() {
    return this.#model === 0;
  }

  /** Frees the wasm memory of the model and its optimizer; the object is unusable after. */
  dispose() {
    if (this.#model === 0) return;
    registry.unregister(this);
    this.#module.exports.transformer_destroy(this.#model);
    for (const ptr of Object.values(this.#buffers)) if (ptr) this.#module.exports.free(ptr);
    this.#model = 0;
  }

  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
    this.dispose();
  }

  // ---------------------------------------------------------------------------------------------
  // internals

  #check() {
    if (this.#model === 0) throw new TypeError('this transformer was disposed');
  }

  #requireOptimizer() {
    this.#check();
    if (!this.#optimizer) throw new Error('no optimizer: call configureOptimizer({lr, ...}) first');
    return this.#optimizer;
  }

  #params() {
    this.#check();
    return this.#module.f32(this.#module.exports.transformer_params(this.#model) >>> 0, this.paramCount);
  }

  #gradsPtr() {
    this.#check();
    return this.#module.exports.transformer_grads(this.#model) >>> 0;
  }

  /** A new C model for seq <= maxSeq, batch <= maxBatch (its parameters are zero). */
  #create(maxSeq, maxBatch) {
    const module = this.#module;
    const exports = module.exports;
    const c = this.config;
    const configPtr = module.alloc(MODEL_CONFIG_BYTES + 4, 'transformer');
    try {
      const view = new DataView(exports.memory.buffer, configPtr, MODEL_CONFIG_BYTES + 4);
      [c.vocab, c.dModel, c.heads, c.layers, c.dFF].forEach((v, i) => view.setInt32(4 * i, v, true));
      view.setFloat64(24, c.ropePercentage, true);
      view.setFloat64(32, c.base, true);
      const outPtr = configPtr + MODEL_CONFIG_BYTES;
      checkStatus(exports.transformer_create(configPtr, maxSeq, maxBatch, outPtr), 'transformer');
      return new DataView(exports.memory.buffer).getUint32(outPtr, true);
    } finally {
      exports.free(configPtr);
    }
  }

  /** Makes the C model hold activations for seq x batch, keeping the parameters. */
  #ensureCapacity(seq, batch) {
    if (seq <= this.#maxSeq && batch <= this.#maxBatch) return;
    const maxSeq = Math.max(seq, this.#maxSeq);
    const maxBatch = Math.max(batch, this.#maxBatch);
    const bigger = this.#create(maxSeq, maxBatch);
    const exports = this.#module.exports;
    const n = this.paramCount;
    this.#module.f32(exports.transformer_params(bigger) >>> 0, n).set(this.#params());
    registry.unregister(this);
    exports.transformer_destroy(this.#model);
    this.#model = bigger;
    this.#maxSeq = maxSeq;
    this.#maxBatch = maxBatch;
    registry.register(this, { exports, model: bigger, buffers: Object.values(this.#buffers) }, this);
  }

  #allocateOptimizerBuffers() {
    const n = this.paramCount;
    for (const key of ['gradSum', 'expAvg', 'expAvgSq']) {
      if (this.#buffers[key] === 0) {
        this.#buffers[key] = this.#module.allocFloats(n, 'optimizer state');
        this.#module.f32(this.#buffers[key], n).fill(0);
      }
    }
    registry.unregister(this);
    registry.register(this, { exports: this.#module.exports, model: this.#model, buffers: Object.values(this.#buffers) }, this);
    this.#hasGradSum = false;
  }

  #shape(options, what) {
    if (options === undefined) throw new TypeError(`${what}: options {seq, batch} are required`);
    checkOptions(options, ['seq', 'batch'], what);
    const seq = integer(options.seq, 'seq', 1, MAX_TOKENS_PER_CALL);
    const batch = integer(options.batch, 'batch', 1, MAX_TOKENS_PER_CALL);
    if (seq * batch > MAX_TOKENS_PER_CALL) throw new RangeError(`seq * batch = ${seq * batch} is above ${MAX_TOKENS_PER_CALL} tokens per call`);
    return { seq, batch };
  }

  /** Token ids as an Int32Array, each in [0, vocab); a string is encoded with the vocabulary. */
  #tokenIds(value, name, length) {
    let ids;
    if (typeof value === 'string') {
      if (!this.vocabulary) throw new TypeError(`${name} is a string but this model has no vocabulary (pass vocabulary to rw.transformer)`);
      const index = new Map([...this.vocabulary].map((c, i) => [c, i]));
      ids = Int32Array.from([...value], (c, i) => {
        const id = index.get(c);
        if (id === undefined) throw new RangeError(`${name}[${i}] = ${JSON.stringify(c)} is not in the vocabulary`);
        return id;
      });
    } else if (value instanceof Int32Array) {
      ids = value;
    } else if (value !== null && typeof value === 'object' && typeof value.length === 'number') {
      ids = new Int32Array(value.length);
      for (let i = 0; i < value.length; i++) ids[i] = integer(value[i], `${name}[${i}]`);
    } else {
      throw new TypeError(`${name} must be an Int32Array of token ids, got ${describe(value)}`);
    }
    if (length !== undefined && ids.length !== length) {
      throw new RangeError(`${name} has length ${ids.length}; expected ${length} ([seq, batch])`);
    }
    const vocab = this.config.vocab;
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < vocab)) throw new RangeError(`${name}[${i}] = ${ids[i]} is not a token id in [0, ${vocab})`);
    }
    return ids;
  }

  /** Runs the C forward pass; returns the mean loss (NaN without targets). */
  #forward(tokens, targets, seq, batch) {
    this.#check();
    const tokenIds = this.#tokenIds(tokens, 'tokens', seq * batch);
    const targetIds = targets === null ? null : this.#tokenIds(targets, 'targets', seq * batch);
    this.#ensureCapacity(seq, batch);
    const module = this.#module;
    const count = seq * batch;
    // tokens, targets, then the float loss: one allocation.
    const ptr = module.alloc(8 * count + 4, 'forward');
    try {
      module.i32(ptr, count).set(tokenIds);
      if (targetIds) module.i32(ptr + 4 * count, count).set(targetIds);
      const lossPtr = ptr + 8 * count;
      const status = module.exports.transformer_forward(this.#model, ptr, targetIds ? ptr + 4 * count : 0, seq, batch, lossPtr);
      checkStatus(status, 'forward');
      return module.f32(lossPtr, 1)[0];
    } finally {
      module.exports.free(ptr);
    }
  }

  #readTensorTable() {
    const exports = this.#module.exports;
    const count = exports.transformer_tensor_count(this.#model);
    const tensors = [];
    for (let i = 0; i < count; i++) {
      const name = readCString(exports.memory.buffer, exports.transformer_tensor_name(this.#model, i) >>> 0);
      const dims = exports.transformer_tensor_dims(this.#model, i);
      const shape = [];
      for (let axis = 0; axis < dims; axis++) shape.push(exports.transformer_tensor_dim(this.#model, i, axis));
      const length = shape.reduce((a, b) => a * b, 1);
      tensors.push(Object.freeze({ name, shape: Object.freeze(shape), offset: Number(exports.transformer_tensor_offset(this.#model, i)), length }));
    }
    return tensors;
  }
}

/**
 * Micro-batch `index` of `count`: columns [index * batch / count, (index + 1) * batch / count) of
 * tokens and targets [seq, batch]. Returns {tokens, targets, batch} with [seq, batch / count].
 */
export function splitColumns(tokens, targets, seq, batch, count, index) {
  const width = batch / count;
  const first = index * width;
  const partTokens = new Int32Array(seq * width);
  const partTargets = new Int32Array(seq * width);
  for (let s = 0; s < seq; s++) {
    partTokens.set(tokens.subarray(s * batch + first, s * batch + first + width), s * width);
    partTargets.set(targets.subarray(s * batch + first, s * batch + first + width), s * width);
  }
  return { tokens: partTokens, targets: partTargets, batch: width };
}

function checkSchedule(schedule) {
  if (schedule === null || typeof schedule !== 'object') throw new TypeError(`schedule must be an object, got ${describe(schedule)}`);
  const type = oneOf(schedule.type, 'schedule.type', Object.keys(SCHEDULE_KEYS));
  checkOptions(schedule, SCHEDULE_KEYS[type], 'schedule');
  if (type === 'constant') return Object.freeze({ type });
  const warmup = integer(schedule.warmup ?? 0, 'schedule.warmup', 0);
  if (type === 'noam') {
    if (warmup < 1) throw new RangeError('schedule.warmup must be >= 1 for noam');
    return Object.freeze({ type, warmup });
  }
  const totalSteps = integer(schedule.totalSteps, 'schedule.totalSteps', 1);
  const finalFraction = finiteNumber(schedule.finalFraction ?? 0.1, 'schedule.finalFraction');
  if (!(finalFraction >= 0 && finalFraction <= 1)) throw new RangeError(`schedule.finalFraction must be in [0, 1], got ${finalFraction}`);
  return Object.freeze({ type, warmup, totalSteps, finalFraction });
}

function readCString(buffer, ptr) {
  const bytes = new Uint8Array(buffer, ptr);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end));
}
