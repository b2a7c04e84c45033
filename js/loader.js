// loader.js: finds, compiles and instantiates the WebAssembly module, in Node.js and browsers.
//
// The modules are standalone wasm (no Emscripten JS glue): one import,
// env.emscripten_notify_memory_growth, and an _initialize export to call before anything else.

// The smallest module that uses a SIMD128 instruction (i8x16.splat; i8x16.popcnt): it validates
// exactly when the engine has wasm SIMD. The same probe wasm-feature-detect uses.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function simdSupported() {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

const isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null;

const compiled = new Map();  // build name -> Promise<WebAssembly.Module>, compiled once per process

function wasmUrl(build) {
  return new URL(`../dist/rope-${build}.wasm`, import.meta.url);
}

async function compile(build) {
  const url = wasmUrl(build);
  if (isNode) {
    const { readFile } = await import('node:fs/promises');
    let bytes;
    try {
      bytes = await readFile(url);
    } catch (error) {
      throw new Error(`rope-wasm: cannot read ${url.pathname} (run ./build.sh or npm run build): ${error.message}`);
    }
    return WebAssembly.compile(bytes);
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`rope-wasm: fetching ${url} failed with HTTP ${response.status}`);
  if (WebAssembly.compileStreaming && response.headers.get('Content-Type') === 'application/wasm') {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

/**
 * Instantiates the 'simd' or 'scalar' build. Returns the instance's exports.
 * @param {'simd'|'scalar'} build
 */
export async function instantiate(build) {
  if (!compiled.has(build)) {
    const promise = compile(build);
    compiled.set(build, promise);
    promise.catch(() => compiled.delete(build));  // a failed load may be retried
  }
  const module = await compiled.get(build);
  // Views are made afresh at every access (see module.js), so growth needs no action here.
  const imports = { env: { emscripten_notify_memory_growth() {} } };
  const instance = await WebAssembly.instantiate(module, imports);
  instance.exports._initialize();
  return instance.exports;
}
