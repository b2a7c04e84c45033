// tensor.js: a float32 array that lives in wasm memory, for zero-copy calls.

const registry = new FinalizationRegistry(({ exports, ptr }) => exports.free(ptr));

export class WasmTensor {
  #module;
  #ptr;
  #length;

  /** Use rw.tensor(length). */
  constructor(module, ptr, length) {
    this.#module = module;
    this.#ptr = ptr;
    this.#length = length;
    registry.register(this, { exports: module.exports, ptr }, this);
  }

  /** Number of float32 elements. */
  get length() {
    return this.#length;
  }

  /** Byte offset of the data in wasm memory. */
  get byteOffset() {
    this.#check();
    return this.#ptr;
  }

  /** A fresh Float32Array view of the wasm heap: valid until the next call that may grow memory. */
  get data() {
    this.#check();
    return new Float32Array(this.#module.exports.memory.buffer, this.#ptr, this.#length);
  }

  get disposed() {
    return this.#ptr === 0;
  }

  /** @internal the module this tensor belongs to */
  get module() {
    return this.#module;
  }

  dispose() {
    if (this.#ptr === 0) return;
    registry.unregister(this);
    this.#module.exports.free(this.#ptr);
    this.#ptr = 0;
  }

  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
    this.dispose();
  }

  #check() {
    if (this.#ptr === 0) throw new TypeError('tensor was disposed');
  }
}
