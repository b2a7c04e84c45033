// training-run.js: the training loop shared by the command line (js/cli.js) and the browser's
// training view: random training windows, periodic validation over every validation window,
// progress reports with throughput and ETA, and a stop request honoured between steps.

import { SeededRandom } from './random.js';

/**
 * Trains `trainer` (js/trainer.js) on `dataset` (js/text-data.js) until `steps` optimizer steps
 * are done in all (counting the model's steps so far: a resumed run continues).
 *   seq, batch: the window length and the windows per step
 *   evalEvery: validate every this many steps (0 = never; the last step always validates)
 *   randomState: the batch sampler's state (SeededRandom), e.g. from a checkpoint
 *   onProgress(report): after every step {step, steps, trainLoss, validLoss (when validated), lr,
 *     gradNorm, tokensPerSecond (training steps only), elapsedSeconds (wall), etaSeconds}
 *   shouldStop(): checked between steps; true ends the run early
 * Resolves to {step, validLoss (the last), stopped, randomState, history: [reports with validLoss]}.
 */
export async function runTraining({ trainer, dataset, seq, batch, steps, evalEvery, randomState, onProgress, shouldStop }) {
  const model = trainer.model;
  const random = new SeededRandom(0);
  random.state = randomState ?? 0;
  const validation = dataset.validationBatches(seq, batch);
  const history = [];
  const started = now();
  let trainingSeconds = 0;
  let tokens = 0;
  let validLoss = null;
  let stopped = false;
  const firstStep = model.step;
  while (model.step < steps) {
    if (shouldStop?.()) {
      stopped = true;
      break;
    }
    const { tokens: x, targets: y } = dataset.randomBatch(random, seq, batch);
    const stepStarted = now();
    const result = await trainer.step(x, y, { seq, batch });
    trainingSeconds += now() - stepStarted;
    tokens += seq * batch;
    const report = {
      step: result.step,
      steps,
      trainLoss: result.loss,
      lr: result.lr,
      gradNorm: result.gradNorm,
    };
    const last = result.step >= steps;
    if (last || (evalEvery > 0 && result.step % evalEvery === 0)) {
      validLoss = await trainer.evaluate(validation, seq);
      report.validLoss = validLoss;
    }
    const elapsed = now() - started;
    report.tokensPerSecond = tokens / trainingSeconds;
    report.elapsedSeconds = elapsed;
    report.etaSeconds = (elapsed / (result.step - firstStep)) * (steps - result.step);
    if (report.validLoss !== undefined) history.push(report);
    onProgress?.(report);
  }
  return { step: model.step, validLoss, stopped, randomState: random.state, history };
}

function now() {
  return performance.now() / 1000;
}
