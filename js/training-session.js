// training-session.js: a training run as a whole, for the command line and the browser's training
// view: a model, its optimizer and trainer made from a named configuration (js/train-configs.js),
// and their checkpoint (js/checkpoint.js) to save and to resume from.
//
// A session is {trainer, dataset, run}; run = {configName, seq, batch, microBatches, steps,
// evalEvery, seed, randomState} is everything besides the model needed to continue exactly.

import { encodeCheckpoint } from './checkpoint.js';
import { CharDataset } from './text-data.js';
import { TRAIN_CONFIGS, optimizerFor } from './train-configs.js';
import { createTrainer } from './trainer.js';

/**
 * A new session: the model of configuration `configName`, seeded with `seed` (initialisation and
 * batches), for `steps` steps (default: the configuration's), on `threads` threads.
 */
export async function startTraining(rw, { dataset, configName, steps, seed = 0, threads }) {
  const config = TRAIN_CONFIGS[configName];
  if (!config) throw new RangeError(`unknown configuration '${configName}' (known: ${Object.keys(TRAIN_CONFIGS).join(', ')})`);
  const run = {
    configName,
    seq: config.seq,
    batch: config.batch,
    microBatches: config.microBatches,
    steps: steps ?? config.steps,
    evalEvery: config.evalEvery,
    seed,
    randomState: seed,
  };
  const model = rw.transformer({
    vocabulary: dataset.vocabulary, ...config.model, seed, contextLength: run.seq,
  });
  try {
    model.configureOptimizer(optimizerFor(config, run.steps));
    const trainer = await createTrainer(model, { microBatches: run.microBatches, threads });
    return { trainer, dataset, run };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/**
 * The session saved in `checkpoint` (decodeCheckpoint's result), continued on `text` (which must
 * only use the checkpoint's vocabulary) up to `steps` (default: the saved run's). configName, when
 * given, must be the saved one.
 */
export async function restoreTraining(rw, checkpoint, { text, configName, steps, threads }) {
  const training = checkpoint.config?.training;
  if (!training || !checkpoint.vocab) {
    throw new Error('the checkpoint has no rope-wasm training state (config.training and vocab in its metadata); only checkpoints written by rope-wasm can be resumed');
  }
  if (configName !== undefined && configName !== training.configName) {
    throw new RangeError(`the checkpoint was trained with --config ${training.configName}, not ${configName}`);
  }
  const dataset = new CharDataset(text, checkpoint.vocab);
  const run = { ...training, steps: steps ?? training.steps };
  const { vocab, dModel, heads, layers, dFF, ropePercentage, base } = checkpoint.config;
  const model = rw.transformer({
    vocab, vocabulary: checkpoint.vocab, dModel, heads, layers, dFF, ropePercentage, base, contextLength: run.seq,
  });
  try {
    model.loadWeights(checkpoint.weights);
    const config = TRAIN_CONFIGS[run.configName];
    model.configureOptimizer(optimizerFor(config, run.steps));
    if (checkpoint.optimizer) {
      // The moments are concatenated in the order of optimizer.names: it must be this model's.
      const names = model.tensors.map((t) => t.name);
      if (checkpoint.optimizer.names.join('\n') !== names.join('\n')) {
        throw new RangeError('the checkpoint\'s optimizer state lists its tensors in another order than this model');
      }
      model.loadOptimizerState({
        step: checkpoint.step,
        expAvg: checkpoint.optimizer.expAvg,
        expAvgSq: checkpoint.optimizer.expAvgSq,
      });
    } else {
      model.step = checkpoint.step;
    }
    const trainer = await createTrainer(model, { microBatches: run.microBatches, threads });
    return { trainer, dataset, run };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** The session as a safetensors checkpoint (Uint8Array). */
export function checkpointBytes({ trainer, dataset, run }) {
  const model = trainer.model;
  const weights = model.weights();
  const state = model.optimizerState();
  return encodeCheckpoint({
    config: { ...model.config, training: { ...run } },
    vocab: dataset.vocabulary,
    step: model.step,
    weights: Object.fromEntries(model.tensors.map((t) => [t.name, { shape: [...t.shape], data: weights[t.name] }])),
    optimizer: state && {
      ...model.optimizer,
      step: state.step,
      names: model.tensors.map((t) => t.name),
      expAvg: state.expAvg,
      expAvgSq: state.expAvgSq,
    },
  });
}
