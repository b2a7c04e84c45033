// train-configs.js: the named training configurations of `rope-wasm train --config NAME` and of
// the browser's training view.
//
//   tiny:  a few-second model for tests (the shapes of the reference's grad_tiny model).
//   small: d_model 128, 4 layers, 4 heads, d_ff 512, seq 128, batch 16, AdamW lr 2e-3, betas
//          0.9/0.99, 100 warm-up steps, cosine to 10% over the run, clip 1.0: the reference's
//          small_adamw_2000 run (validation loss 1.5735 after 2000 steps).
//   labml: the seed experiment: 6 layers, d_model 128, 16 heads, d_ff 512, seq 512, batch 4, Adam
//          with the Noam schedule (lr 1.0, 2000 warm-up steps), clip 1.0 (labml_noam_15680).
// Every configuration splits its batch into 2 micro-batches, so that 2 threads can share a step
// and 1 thread gives the same result.

export const TRAIN_CONFIGS = Object.freeze({
  tiny: Object.freeze({
    model: { dModel: 32, heads: 4, layers: 2, dFF: 64, ropePercentage: 1, base: 10000 },
    seq: 32, batch: 16, microBatches: 2, steps: 300, evalEvery: 100,
    optimizer: {
      type: 'adamw', lr: 1e-2, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0, clipNorm: 1,
      schedule: { type: 'cosine', warmup: 20, finalFraction: 0.1 },
    },
  }),
  small: Object.freeze({
    model: { dModel: 128, heads: 4, layers: 4, dFF: 512, ropePercentage: 1, base: 10000 },
    seq: 128, batch: 16, microBatches: 2, steps: 2000, evalEvery: 200,
    optimizer: {
      type: 'adamw', lr: 2e-3, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0, clipNorm: 1,
      schedule: { type: 'cosine', warmup: 100, finalFraction: 0.1 },
    },
  }),
  labml: Object.freeze({
    model: { dModel: 128, heads: 16, layers: 6, dFF: 512, ropePercentage: 1, base: 10000 },
    seq: 512, batch: 4, microBatches: 2, steps: 15680, evalEvery: 490,
    optimizer: {
      type: 'adam', lr: 1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, clipNorm: 1,
      schedule: { type: 'noam', warmup: 2000 },
    },
  }),
});

/**
 * The optimizer options of configuration `config` for a run of `steps` steps (the cosine
 * schedule spans the run).
 */
export function optimizerFor(config, steps) {
  const { schedule, ...rest } = config.optimizer;
  return { ...rest, schedule: schedule.type === 'cosine' ? { ...schedule, totalSteps: steps } : { ...schedule } };
}
