// train-worker.js: a worker thread of js/trainer.js (Node worker_threads or a browser module
// Worker). It holds a replica of the model in its own wasm instance and computes the gradients or
// the loss of the micro-batches it is sent; it never runs the optimizer.

import { loadRope } from './module.js';
import { Transformer } from './transformer.js';

const isNode = typeof process !== 'undefined' && process.versions?.node != null;
const port = isNode ? (await import('node:worker_threads')).parentPort : globalThis;
const reply = (message, transfer) => port.postMessage(message, transfer ?? []);

let model = null;
let shared = null;   // {params, grads[]} on SharedArrayBuffers, or null: data comes in messages
let version = -1;    // the parameter version this replica holds

async function handle(message) {
  if (message.type === 'init') {
    const rw = await loadRope({ simd: message.simd });
    model = new Transformer(rw, message.config);
    shared = message.shared;
    return {};
  }
  if (message.version !== version) {
    model.parameterView().set(shared ? shared.params : message.params);
    version = message.version;
  }
  const { seq, batch, tokens, targets } = message;
  if (message.type === 'loss') return { loss: model.loss(tokens, targets, { seq, batch }) };
  if (message.type === 'gradients') {
    const loss = model.computeGradients(tokens, targets, seq, batch, message.lossScale);
    if (shared) {
      shared.grads[message.part].set(model.gradientView());
      return { loss };
    }
    const grads = model.gradientView().slice();
    return { loss, grads, transfer: [grads.buffer] };
  }
  throw new Error(`unknown message type ${message.type}`);
}

// Messages are handled one at a time, in order.
let queue = Promise.resolve();
const onMessage = (message) => {
  queue = queue.then(async () => {
    try {
      const { transfer, ...result } = await handle(message);
      reply({ id: message.id, ...result }, transfer);
    } catch (error) {
      reply({ id: message.id, error: error?.message ?? String(error) });
    }
  });
};
if (isNode) port.on('message', onMessage);
else port.onmessage = (event) => onMessage(event.data);
