// attention_kernel.bench.js: the C attention kernel (rope_attention_forward) as WebAssembly SIMD,
// against the same C built natively and against onnxruntime's Attention op, single thread, all
// measured in this one run.
//
//   node tests/bench/attention_kernel.bench.js [--quick]
//
// Needs two builds: the wasm module by hand, the native binary by hand or by ./build.sh native:
//   NODE_PATH=/usr/share/nodejs emcc -O3 -msimd128 c/rope.c c/rope_freq.c c/rope_kernel.c \
//     c/rope_table.c c/attention.c -o build/attention-bench.wasm -s STANDALONE_WASM=1 --no-entry \
//     -s EXPORTED_FUNCTIONS='["_malloc","_free","_rope_create","_rope_destroy","_rope_attention_forward"]' \
//     -s ALLOW_MEMORY_GROWTH=1 -s INITIAL_MEMORY=64MB -s MAXIMUM_MEMORY=4GB
//   cc -std=c11 -Wall -Wextra -Werror -O3 -march=native -Ic c/rope.c c/rope_freq.c c/rope_kernel.c \
//     c/rope_table.c c/attention.c tests/bench/attention_native.c -lm -o build/bench_attention_native
//
// Cases (layout bhsd, float32, scale 1/sqrt(64), no RoPE): causal [1, 8, 512, 64]; causal
// [1, 16, 2048, 64]; decoding one query against 4,096 keys, 8 heads of 64; causal 16,384 tokens x 8
// heads x 64 (wasm only, in a module instance of its own, whose memory size is reported: the
// peers would need the 16,384^2 score matrix, 8 GiB, and the native build takes minutes a call).
// FLOP are counted as 4 * seq_q * seq_k * head_dim * heads, halved for a causal square. "native C"
// is the portable branch of c/simd.h (a struct of 4 floats), which gcc vectorises poorly: it is
// the same C, not a hand-tuned native kernel.
// Every output is checked before timing: a few rows of head 0 against a float64 reference here,
// and every other implementation against the wasm output (max abs diff < 1e-4). The machine is
// shared and noisy, so the implementations take turns: several rounds, each giving each of them a
// short time slice, in a rotating order; a time is the median of all its samples. Progress goes to
// stderr, the table to stdout.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';

const args = process.argv.slice(2);
for (const arg of args) {
  if (arg !== '--quick') throw new Error(`attention_kernel.bench.js: unknown argument ${arg} (only --quick)`);
}
const QUICK = args.includes('--quick');

const WASM = fileURLToPath(new URL('../../build/attention-bench.wasm', import.meta.url));
const NATIVE = fileURLToPath(new URL('../../build/bench_attention_native', import.meta.url));
const PEERS = fileURLToPath(new URL('../../../shared/peers/', import.meta.url));
const LAYOUT_BHSD = 2;
const TOLERANCE = 1e-4;

// key, label, sizes; rounds and slice (ms per implementation per round) fit each case's length.
const CASES = [
  { key: 'causal512', label: 'causal [1, 8, 512, 64]', batch: 1, heads: 8, seqQ: 512, seqK: 512, headDim: 64,
    causal: 1, rounds: QUICK ? 3 : 10, sliceMs: QUICK ? 100 : 300 },
  { key: 'causal2048', label: 'causal [1, 16, 2048, 64]', batch: 1, heads: 16, seqQ: 2048, seqK: 2048, headDim: 64,
    causal: 1, rounds: QUICK ? 1 : 3, sliceMs: 1 },
  { key: 'decode', label: 'decode: 1 query x 4,096 keys, 8 heads of 64', batch: 1, heads: 8, seqQ: 1, seqK: 4096,
    headDim: 64, causal: 0, rounds: QUICK ? 3 : 10, sliceMs: QUICK ? 50 : 150 },
];
const LONG = { key: 'causal16k', label: 'causal [1, 8, 16384, 64]', batch: 1, heads: 8, seqQ: 16384, seqK: 16384,
  headDim: 64, causal: 1, calls: QUICK ? 1 : 2 };

const log = (message) => process.stderr.write(`${message}\n`);

// Deterministic values in [-1, 1): the same inputs run to run, and no denormals.
function randomArray(length, seed) {
  const x = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    x[i] = (state >>> 8) / 8388608 - 1;
  }
  return x;
}

function flops(c) {
  const all = 4 * c.batch * c.heads * c.seqQ * c.seqK * c.headDim;
  return c.causal && c.seqQ === c.seqK ? all / 2 : all;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = d;  // also catches NaN
  }
  return max;
}

// Max abs error of rows `rows` of batch 0, head 0 of out against float64 attention.
function referenceError(c, { q, k, v }, out, rows) {
  const d = c.headDim;
  let worst = 0;
  for (const i of rows) {
    const visible = c.causal ? Math.min(c.seqK, i + c.seqK - c.seqQ + 1) : c.seqK;
    const scores = new Float64Array(visible);
    let max = -Infinity;
    for (let j = 0; j < visible; j++) {
      let dot = 0;
      for (let f = 0; f < d; f++) dot += q[i * d + f] * k[j * d + f];
      scores[j] = dot / Math.sqrt(d);
      max = Math.max(max, scores[j]);
    }
    let sum = 0;
    for (let j = 0; j < visible; j++) {
      scores[j] = Math.exp(scores[j] - max);
      sum += scores[j];
    }
    for (let f = 0; f < d; f++) {
      let o = 0;
      for (let j = 0; j < visible; j++) o += scores[j] * v[j * d + f];
      const err = Math.abs(o / sum - out[i * d + f]);
      if (!(err <= worst)) worst = err;
    }
  }
  return worst;
}

// The wasm module, instantiated afresh (a case may want its memory to itself).
async function instantiateWasm() {
  const imports = { env: { emscripten_notify_memory_growth() {} } };
  const { instance } = await WebAssembly.instantiate(readFileSync(WASM), imports);
  instance.exports._initialize();
  return instance.exports;
}

// rope-wasm on case c with inputs copied into the module's heap once; call() runs it in place.
function wasmImpl(exports, c, inputs) {
  const nq = c.batch * c.heads * c.seqQ * c.headDim;
  const nkv = c.batch * c.heads * c.seqK * c.headDim;
  const pointers = [nq, nkv, nkv, nq].map((n) => exports.malloc(n * 4));
  if (pointers.includes(0)) throw new Error('wasm malloc failed');
  const [q, k, v, out] = pointers;
  new Float32Array(exports.memory.buffer, q, nq).set(inputs.q);
  new Float32Array(exports.memory.buffer, k, nkv).set(inputs.k);
  new Float32Array(exports.memory.buffer, v, nkv).set(inputs.v);
  const call = () => {
    const status = exports.rope_attention_forward(q, k, v, out, 0, c.batch, c.heads, c.heads, c.seqQ, c.seqK,
      c.headDim, LAYOUT_BHSD, c.causal, 1 / Math.sqrt(c.headDim), 0, 0);
    if (status !== 0) throw new Error(`rope_attention_forward returned ${status}`);
  };
  // A copy of the output of the last call.
  const read = () => new Float32Array(exports.memory.buffer, out, nq).slice();
  return {
    call,
    read,
    output() {
      call();
      return read();
    },
    dispose() {
      for (const p of pointers) exports.free(p);
    },
  };
}

// An implementation measured in this process; call() may return a promise (onnxruntime).
function inProcess(key, label, { output, call }) {
  return {
    key,
    label,
    output,
    async warmUp() {
      for (let i = 0; i < 2; i++) await call();
    },
    async measure(sliceMs) {
      const samples = [];
      const start = performance.now();
      do {
        const t0 = performance.now();
        await call();
        samples.push(performance.now() - t0);
      } while (performance.now() - start < sliceMs);
      return samples;
    },
  };
}

// The native build, one process per round (it warms up itself); spawnSync leaves this process idle.
function nativeImpl(c, inputs, tmp) {
  const shape = [c.batch, c.heads, c.heads, c.seqQ, c.seqK, c.headDim].join(',');
  let estimateMs = null;
  const run = (samples, files = []) => {
    const result = spawnSync(NATIVE, [shape, String(c.causal), String(samples), ...files], { encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(`${NATIVE} failed (status ${result.status}): ${result.stderr || result.error}`);
    }
    return JSON.parse(result.stdout);
  };
  return {
    key: 'native',
    label: 'native C (-O3 -march=native)',
    output() {
      const files = ['q', 'k', 'v', 'out'].map((name) => join(tmp, `${name}.f32`));
      writeFileSync(files[0], inputs.q);
      writeFileSync(files[1], inputs.k);
      writeFileSync(files[2], inputs.v);
      run(0, files);
      const bytes = readFileSync(files[3]);
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    },
    async warmUp() {
      estimateMs = run(1).median_ms;
    },
    async measure(sliceMs) {
      const result = run(Math.max(1, Math.round(sliceMs / estimateMs)));
      estimateMs = result.median_ms;
      return result.samples_ms;
    },
  };
}

function ortImpl(ort, key, label, session, c, inputs) {
  const q = new ort.Tensor('float32', inputs.q, [c.batch, c.heads, c.seqQ, c.headDim]);
  const k = new ort.Tensor('float32', inputs.k, [c.batch, c.heads, c.seqK, c.headDim]);
  const v = new ort.Tensor('float32', inputs.v, [c.batch, c.heads, c.seqK, c.headDim]);
  const feeds = { Q: q, K: k, V: v };
  return inProcess(key, label, {
    output: async () => (await session.run(feeds)).O.data,
    call: () => session.run(feeds),
  });
}

async function runCase(ctx, c) {
  const nq = c.batch * c.heads * c.seqQ * c.headDim;
  const nkv = c.batch * c.heads * c.seqK * c.headDim;
  const inputs = { q: randomArray(nq, 1), k: randomArray(nkv, 2), v: randomArray(nkv, 3) };
  const wasm = wasmImpl(ctx.wasm, c, inputs);
  const session = (peer) => ctx.sessions[peer][c.causal];
  const list = [
    inProcess('wasm', 'rope-wasm (wasm SIMD128)', { output: () => wasm.output(), call: wasm.call }),
    nativeImpl(c, inputs, ctx.tmp),
    ortImpl(ortWeb, 'ortWeb', 'onnxruntime-web (wasm, 1 thread)', session('web'), c, inputs),
    ortImpl(ortNode, 'ortNode', 'onnxruntime-node (CPU, 1 thread)', session('node'), c, inputs),
  ];
  try {
    const reference = wasm.output();
    const rows = [0, c.seqQ >> 1, c.seqQ - 1];
    const refErr = referenceError(c, inputs, reference, rows);
    if (!(refErr < TOLERANCE)) throw new Error(`${c.label}: rope-wasm differs from float64 by ${refErr}`);
    log(`${c.label}: rope-wasm vs float64 (rows ${rows.join(', ')} of head 0): max abs error ${refErr.toExponential(2)}`);
    for (const impl of list.slice(1)) {
      const diff = maxAbsDiff(await impl.output(), reference);
      if (!(diff < TOLERANCE)) throw new Error(`${c.label}: ${impl.label} differs from rope-wasm by ${diff}`);
      log(`  ${impl.key} vs rope-wasm: max abs diff ${diff.toExponential(2)}`);
    }
    for (const impl of list) await impl.warmUp();
    const samples = new Map(list.map((impl) => [impl.key, []]));
    for (let round = 0; round < c.rounds; round++) {
      // Rotate the order: nobody always runs right after the same neighbour.
      for (let i = 0; i < list.length; i++) {
        const impl = list[(round + i) % list.length];
        samples.get(impl.key).push(...await impl.measure(c.sliceMs));
      }
      log(`  ${c.label}: round ${round + 1}/${c.rounds}`);
    }
    return new Map([...samples].map(([key, values]) => [key, median(values)]));
  } finally {
    wasm.dispose();
  }
}

// The long case: wasm only, in a fresh instance, a few calls; returns ms and the memory size.
async function runLong(c) {
  const exports = await instantiateWasm();
  const before = exports.memory.buffer.byteLength;
  const nq = c.batch * c.heads * c.seqQ * c.headDim;
  const inputs = { q: randomArray(nq, 1), k: randomArray(nq, 2), v: randomArray(nq, 3) };
  const wasm = wasmImpl(exports, c, inputs);
  try {
    const times = [];
    for (let i = 0; i < c.calls; i++) {
      const t0 = performance.now();
      wasm.call();
      times.push(performance.now() - t0);
      log(`${c.label}: call ${i + 1}/${c.calls}: ${times[i].toFixed(0)} ms`);
    }
    const rows = [0, 1000, c.seqQ - 1];
    const refErr = referenceError(c, inputs, wasm.read(), rows);
    if (!(refErr < TOLERANCE)) throw new Error(`${c.label}: rope-wasm differs from float64 by ${refErr}`);
    log(`${c.label}: rope-wasm vs float64 (rows ${rows.join(', ')} of head 0): max abs error ${refErr.toExponential(2)}`);
    return { ms: median(times), memoryBefore: before, memoryAfter: exports.memory.buffer.byteLength, inputBytes: 4 * 4 * nq };
  } finally {
    wasm.dispose();
  }
}

const fixed = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const ratio = (value) => (Number.isFinite(value) ? `${value.toFixed(value < 10 ? 2 : 1)}x` : '-');
const MiB = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

async function main() {
  for (const [path, what] of [[WASM, 'the wasm module'], [NATIVE, 'the native build']]) {
    if (!existsSync(path)) throw new Error(`${path} is missing: build ${what} by hand (see the top of this file)`);
  }
  if (!existsSync(PEERS)) throw new Error(`${PEERS} is missing: the ONNX models of the peers live there`);

  ortWeb.env.wasm.numThreads = 1;
  const sessions = { web: [], node: [] };
  for (const causal of [0, 1]) {
    const model = join(PEERS, `attention_opset23_causal${causal}.onnx`);
    sessions.web[causal] = await ortWeb.InferenceSession.create(model, { executionProviders: ['wasm'] });
    sessions.node[causal] = await ortNode.InferenceSession.create(model, {
      executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1,
    });
  }
  const tmp = mkdtempSync(join(tmpdir(), 'attention-bench-'));
  const ctx = { wasm: await instantiateWasm(), sessions, tmp };
  const results = new Map();
  try {
    for (const c of CASES) results.set(c.key, await runCase(ctx, c));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const long = await runLong(LONG);

  const lines = [];
  lines.push(`Attention, float32 bhsd, scale 1/sqrt(64), single thread; median of interleaved rounds${QUICK ? ' (--quick)' : ''}; Node ${process.version}, ${cpus()[0].model}, ${cpus().length} cores. GFLOP/s count 4 * seq_q * seq_k * head_dim * heads, halved for a causal square. "x" columns: that implementation's time / rope-wasm's.`);
  lines.push('');
  lines.push('| case | rope-wasm ms | rope-wasm GFLOP/s | native C ms | x native C | onnxruntime-web ms | x onnxruntime-web | onnxruntime-node ms | x onnxruntime-node |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const c of CASES) {
    const m = results.get(c.key);
    const ms = m.get('wasm');
    lines.push(`| ${c.label} | ${fixed(ms, 2)} | ${fixed(flops(c) / (ms * 1e6), 1)} | ${fixed(m.get('native'), 2)} | ${ratio(m.get('native') / ms)} | ${fixed(m.get('ortWeb'), 2)} | ${ratio(m.get('ortWeb') / ms)} | ${fixed(m.get('ortNode'), 2)} | ${ratio(m.get('ortNode') / ms)} |`);
  }
  lines.push(`| ${LONG.label} | ${fixed(long.ms, 0)} | ${fixed(flops(LONG) / (long.ms * 1e6), 1)} | - | - | - | - | - | - |`);
  lines.push('');
  lines.push(`${LONG.label}: wasm memory ${MiB(long.memoryAfter)} after the call (${MiB(long.memoryBefore)} at instantiation; q, k, v and out take ${MiB(long.inputBytes)}).`);
  const m = results.get('causal512');
  const vsWeb = m.get('ortWeb') / m.get('wasm');
  lines.push(`Goal: causal [1, 8, 512, 64] at least 3x faster than onnxruntime-web: ${ratio(vsWeb)} (${vsWeb >= 3 ? 'met' : 'NOT met'}).`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
