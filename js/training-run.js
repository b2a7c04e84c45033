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
 *     gradNorm, tokensPerSecond (training steps only), elapsedSeconds (wall), etaSeconds,
 *     randomState (the sampler's state for the next step: what a checkpoint saves)}
 *   onValidationStart(step): just before a validation pass (it takes a while)
 *   betweenSteps(): awaited before each step, when the model and the sampler agree: the place to
 *     sample, draw attention maps or save a checkpoint
 *   shouldStop(): checked between steps; true ends the run early
 * The loop yields to the event loop before each step, so signals (Ctrl-C) and messages get in
 * even when every step runs on this thread.
 * Resolves to {step, validLoss (the last), stopped, randomState, history: [reports with validLoss]}.
 */
export async function runTraining({
  trainer, dataset, seq, batch, steps, evalEvery, randomState, onProgress, onValidationStart, betweenSteps, shouldStop,
}) {
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
    await yieldToEventLoop();
    await betweenSteps?.();
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
      onValidationStart?.(result.step);
      validLoss = await trainer.evaluate(validation, seq);
      report.validLoss = validLoss;
    }
    const elapsed = now() - started;
    report.tokensPerSecond = tokens / trainingSeconds;
    report.elapsedSeconds = elapsed;
    report.etaSeconds = (elapsed / (result.step - firstStep)) * (steps - result.step);
    report.randomState = random.state;
    if (report.validLoss !== undefined) history.push(report);
    onProgress?.(report);
  }
  return { step: model.step, validLoss, stopped, randomState: random.state, history };
}

/** Resolves after the events already queued (a macrotask, without setTimeout's 4 ms clamp). */
function yieldToEventLoop() {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  const channel = new MessageChannel();
  return new Promise((resolve) => {
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(0);
  });
}

function now() {
  return performance.now() / 1000;
}
