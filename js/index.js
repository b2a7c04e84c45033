// rope-wasm: rotary positional embeddings (RoPE) in WebAssembly SIMD, for Node.js and browsers.
export { loadRope, RopeModule } from './module.js';
export { RotaryEmbedding } from './rotary-embedding.js';
export { RotaryMultiHeadAttention } from './mha.js';
export { WasmTensor } from './tensor.js';
export { KvCache } from './kv-cache.js';
export { simdSupported } from './loader.js';
export { Transformer } from './transformer.js';
export { Trainer, createTrainer } from './trainer.js';
export { CharDataset } from './text-data.js';
export { SeededRandom } from './random.js';
export { SafetensorsError, decodeSafetensors, encodeSafetensors } from './safetensors.js';
export { decodeCheckpoint, encodeCheckpoint } from './checkpoint.js';
