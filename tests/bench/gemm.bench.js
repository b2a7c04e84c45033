// gemm.bench.js: c/gemm.c's speed in GFLOP/s, as wasm SIMD128, as scalar wasm, as native C, and a
// plain JavaScript loop, all measured in this one run, single thread.
//
//   node tests/bench/gemm.bench.js [--quick]
//
// Until build.sh builds gemm into the main module, this script builds its own modules and
// binaries in build/ when they are missing or older than their sources (the commands are printed
// to stderr): a standalone wasm module exporting gemm and gemm_linear, with and without
// -msimd128, and the native baseline tests/bench/gemm_native.c, compiled by cc with
// -O3 -march=native, and once more adding -fno-tree-loop-vectorize (see the note printed under
// the table: gcc's loop vectorizer handles simd.h's scalar branch badly).
//
// Cases: square in-cache sizes, the projections of attention and of the trainer's feed-forward
// layers (gemm_linear: y = x W^T + b), and their backward passes (dX = dY W: nn; dW = dY^T X: tn).
// Every implementation's output is checked against a float64 reference first (max abs diff <=
// 1e-4 max |reference|). The machine is shared and noisy, so the implementations take turns:
// several rounds, each giving every implementation a short time slice, in a rotating order; a
// row's time is the median of all its samples. wasm SIMD128's best sample is shown too: on a busy
// machine it is the closer estimate of what the kernel can do. Progress goes to stderr, the table
// to stdout.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { median, randomArray, timeSync } from './common.js';

const args = process.argv.slice(2);
for (const arg of args) {
  if (arg !== '--quick') throw new Error(`gemm.bench.js: unknown argument ${arg} (only --quick)`);
}
const QUICK = args.includes('--quick');

// op: nn | nt | tn (gemm, alpha 1, beta 0, no padding) or linear (gemm_linear with a bias).
// [m, n, k]: C [m, n]; for linear x [m, k], W [n, k], y [m, n].
const CASES = [
  { name: 'square 64', op: 'nn', shape: [64, 64, 64], inCache: true },
  { name: 'square 128', op: 'nn', shape: [128, 128, 128], inCache: true },
  { name: 'square 256', op: 'nn', shape: [256, 256, 256], inCache: true },
  { name: 'attention projection x[512,128] W[128,128]^T + b', op: 'linear', shape: [512, 128, 128] },
  { name: 'feed-forward x[512,128] W[512,128]^T + b', op: 'linear', shape: [512, 512, 128] },
  { name: 'feed-forward backward dX = dY[512,512] W[512,128]', op: 'nn', shape: [512, 128, 512] },
  { name: 'weight gradient dW = dY[512,128]^T X[512,128]', op: 'tn', shape: [128, 128, 512] },
  { name: 'decode x[1,128] W[128,128]^T + b', op: 'linear', shape: [1, 128, 128] },
];
const TOLERANCE = 1e-4;  // relative to max |reference|
const WARMUP_MS = QUICK ? 100 : 300;  // JIT tiers (Liftoff -> TurboFan), first touch of memory
const SAMPLE_MS = 1;  // a sample is as many back-to-back calls as last >= 1 ms
const ROUNDS = QUICK ? 3 : 10;
const SLICE_MS = QUICK ? 30 : 100;  // each implementation's time per round (at least one sample)

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WASM_SIMD = join(ROOT, 'build/gemm-bench.wasm');
const WASM_SCALAR = join(ROOT, 'build/gemm-bench-scalar.wasm');
const NATIVE = join(ROOT, 'build/bench_gemm_native');
const NATIVE_NO_LOOP_VEC = join(ROOT, 'build/bench_gemm_native_slp');

const log = (message) => process.stderr.write(`${message}\n`);

// ----------------------------------------------------------------------------
// building what is missing (cwd ROOT, so the commands read as they would be typed there)

const SOURCES = ['c/gemm.c', 'c/gemm.h', 'c/simd.h', 'c/rope_errors.h'];
const EMCC_FLAGS = ['-O3', '-std=c11', '-Wall', '-Wextra', '-Werror', '-s', 'STANDALONE_WASM=1', '--no-entry',
  '-s', 'EXPORTED_FUNCTIONS=["_malloc","_free","_gemm","_gemm_linear"]', '-s', 'ALLOW_MEMORY_GROWTH=1',
  '-s', 'INITIAL_MEMORY=64MB', '-s', 'MAXIMUM_MEMORY=4GB'];
const CC_FLAGS = ['-std=c11', '-Wall', '-Wextra', '-Werror', '-O3', '-march=native', '-Ic'];
const BUILDS = [
  { output: WASM_SIMD, sources: SOURCES, command: ['emcc', ...EMCC_FLAGS, '-msimd128', 'c/gemm.c', '-o', 'build/gemm-bench.wasm'] },
  { output: WASM_SCALAR, sources: SOURCES, command: ['emcc', ...EMCC_FLAGS, 'c/gemm.c', '-o', 'build/gemm-bench-scalar.wasm'] },
  { output: NATIVE, sources: [...SOURCES, 'tests/bench/gemm_native.c'],
    command: ['cc', ...CC_FLAGS, 'c/gemm.c', 'tests/bench/gemm_native.c', '-lm', '-o', 'build/bench_gemm_native'] },
  { output: NATIVE_NO_LOOP_VEC, sources: [...SOURCES, 'tests/bench/gemm_native.c'],
    command: ['cc', ...CC_FLAGS, '-fno-tree-loop-vectorize', 'c/gemm.c', 'tests/bench/gemm_native.c', '-lm', '-o',
      'build/bench_gemm_native_slp'] },
];

function buildIfStale({ output, sources, command }) {
  const built = existsSync(output) ? statSync(output).mtimeMs : -Infinity;
  if (sources.every((source) => statSync(join(ROOT, source)).mtimeMs < built)) return;
  log(`build: ${command.map((word) => (/[\[\]"]/.test(word) ? `'${word}'` : word)).join(' ')}`);
  // Debian's emcc runs its JS optimizer with the system's node: it needs Debian's node modules.
  const env = { ...process.env, NODE_PATH: process.env.NODE_PATH || '/usr/share/nodejs' };
  spawnSync('mkdir', ['-p', 'build'], { cwd: ROOT });
  const result = spawnSync(command[0], command.slice(1), { cwd: ROOT, env, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command[0]} failed: ${result.stderr || result.error}`);
}

// ----------------------------------------------------------------------------
// data, reference, plain JavaScript

// The bias of the linear cases, exact in float32; tests/bench/gemm_native.c makes the same.
function biasArray(n) {
  const bias = new Float32Array(n);
  for (let j = 0; j < n; j++) bias[j] = (j % 7) / 8 - 0.375;
  return bias;
}

// A stored [m, k] (nn, nt, linear) or [k, m] (tn); B stored [k, n] (nn, tn) or [n, k] (nt, linear).
const aElement = (op, a, m, k, i, p) => (op === 'tn' ? a[p * m + i] : a[i * k + p]);
const bElement = (op, b, n, k, p, j) => (op === 'nt' || op === 'linear' ? b[j * k + p] : b[p * n + j]);

function reference(op, [m, n, k], a, b, bias) {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = op === 'linear' ? bias[j] : 0;
      for (let p = 0; p < k; p++) sum += aElement(op, a, m, k, i, p) * bElement(op, b, n, k, p, j);
      c[i * n + j] = sum;
    }
  }
  return c;
}

// Plain JavaScript, the loop order a careful programmer picks for each layout: for B stored by
// rows of C's columns (nn, tn) c[i, :] += a[i, p] b[p, :] (the inner loop runs along rows); for
// B stored [n, k] (nt, linear) c[i, j] = a[i, :] . b[j, :] (both rows contiguous).
function plainGemm(op, [m, n, k], a, b, bias, c) {
  if (op === 'nn' || op === 'tn') {
    c.fill(0);
    for (let i = 0; i < m; i++) {
      const row = i * n;
      for (let p = 0; p < k; p++) {
        const aip = op === 'tn' ? a[p * m + i] : a[i * k + p];
        const bRow = p * n;
        for (let j = 0; j < n; j++) c[row + j] += aip * b[bRow + j];
      }
    }
    return;
  }
  for (let i = 0; i < m; i++) {
    const aRow = i * k;
    for (let j = 0; j < n; j++) {
      const bRow = j * k;
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[aRow + p] * b[bRow + p];
      c[i * n + j] = op === 'linear' ? sum + bias[j] : sum;
    }
  }
}

function maxRelativeDiff(c, ref) {
  let diff = 0;
  let magnitude = 1e-30;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(c[i] - ref[i]);
    if (!(d <= diff)) diff = d;  // also catches NaN
    magnitude = Math.max(magnitude, Math.abs(ref[i]));
  }
  return diff / magnitude;
}

// ----------------------------------------------------------------------------
// implementations

async function loadWasm(path) {
  const { instance } = await WebAssembly.instantiate(readFileSync(path), {
    env: { emscripten_notify_memory_growth() {} },
  });
  instance.exports._initialize();
  return instance.exports;
}

// An implementation measured in this process: output() returns its C for the case's operands;
// call() runs it once.
function inProcess(key, label, { output, call, dispose = () => {} }) {
  let reps = 1;
  return {
    key,
    label,
    output,
    dispose,
    async warmUp() {
      const start = performance.now();
      let calls = 0;
      while (calls < 3 || performance.now() - start < WARMUP_MS) {
        timeSync(call, 1);
        calls++;
      }
      reps = Math.ceil(SAMPLE_MS / ((performance.now() - start) / calls));
    },
    // Samples (ms per call) for about sliceMs, at least one.
    async measure(sliceMs) {
      const samples = [];
      const start = performance.now();
      do {
        samples.push(timeSync(call, reps));
      } while (performance.now() - start < sliceMs);
      return samples;
    },
  };
}

// gemm or gemm_linear of one wasm module on the case's operands, copied into its heap once.
function wasmImpl(key, label, exports, { op, shape }, a, b, bias) {
  const [m, n, k] = shape;
  const pa = exports.malloc(a.byteLength);
  const pb = exports.malloc(b.byteLength);
  const pbias = exports.malloc(bias.byteLength);
  const pc = exports.malloc(m * n * 4);
  if (!pa || !pb || !pbias || !pc) throw new Error(`${label}: malloc failed`);
  // A fresh view after the allocations: growing the heap detaches older ones.
  const heap = new Float32Array(exports.memory.buffer);
  heap.set(a, pa / 4);
  heap.set(b, pb / 4);
  heap.set(bias, pbias / 4);
  const transA = op === 'tn' ? 1 : 0;
  const transB = op === 'nt' ? 1 : 0;
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  const call = op === 'linear'
    ? () => exports.gemm_linear(pa, pb, pbias, pc, m, k, n)
    : () => exports.gemm(transA, transB, m, n, k, 1, pa, lda, pb, ldb, 0, pc, n);
  return inProcess(key, label, {
    output() {
      const status = call();
      if (status !== 0) throw new Error(`${label}: status ${status}`);
      return new Float32Array(exports.memory.buffer, pc, m * n).slice();
    },
    call,
    dispose() {
      for (const p of [pa, pb, pbias, pc]) exports.free(p);
    },
  });
}

// A native binary, one process per round (it warms up itself). spawnSync: this process stays
// idle while it runs.
function nativeImpl(key, label, binary, { op, shape }, a, b, tmp) {
  const shapeArg = shape.join(',');
  let sampleMs = null;  // one sample: `reps` calls (times in the JSON are per call)
  const run = (samples, files = []) => {
    const result = spawnSync(binary, [op, shapeArg, String(samples), ...files], { encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(`${binary} failed (status ${result.status}): ${result.stderr || result.error}`);
    }
    return JSON.parse(result.stdout);
  };
  return {
    key,
    label,
    dispose() {},
    output() {
      const files = ['a.f32', 'b.f32', 'c.f32'].map((name) => join(tmp, name));
      writeFileSync(files[0], a);
      writeFileSync(files[1], b);
      run(0, files);
      const bytes = readFileSync(files[2]);
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    },
    async warmUp() {
      const result = run(3);
      sampleMs = result.median_ms * result.reps;
    },
    async measure(sliceMs) {
      const result = run(Math.max(1, Math.round(sliceMs / sampleMs)));
      sampleMs = result.median_ms * result.reps;
      return result.samples_ms;
    },
  };
}

function implementations(ctx, c) {
  const [m, n, k] = c.shape;
  const a = randomArray(m * k, 7);
  const b = randomArray(k * n, 11);
  const bias = biasArray(n);
  const plainC = new Float32Array(m * n);
  return {
    a,
    b,
    bias,
    list: [
      wasmImpl('simd', 'wasm SIMD128', ctx.simd, c, a, b, bias),
      wasmImpl('scalar', 'wasm scalar', ctx.scalar, c, a, b, bias),
      inProcess('plainJs', 'plain JS', {
        output() {
          plainGemm(c.op, c.shape, a, b, bias, plainC);
          return plainC.slice();
        },
        call: () => plainGemm(c.op, c.shape, a, b, bias, plainC),
      }),
      nativeImpl('native', 'native C', NATIVE, c, a, b, ctx.tmp),
      nativeImpl('nativeSlp', 'native C, no loop vectorizer', NATIVE_NO_LOOP_VEC, c, a, b, ctx.tmp),
    ],
  };
}

// Checks, warms up and times every implementation on one case. Returns key -> median ms and
// key -> best (smallest) sample ms.
async function runCase(ctx, c) {
  const impls = implementations(ctx, c);
  try {
    const ref = reference(c.op, c.shape, impls.a, impls.b, impls.bias);
    for (const impl of impls.list) {
      const diff = maxRelativeDiff(impl.output(), ref);
      if (!(diff <= TOLERANCE)) {
        throw new Error(`${c.name}: ${impl.label} differs from the float64 reference by ${diff} (relative)`);
      }
      log(`  checked ${impl.key}: max diff ${diff.toExponential(2)} of max |reference|`);
    }
    for (const impl of impls.list) await impl.warmUp();
    const samples = new Map(impls.list.map((impl) => [impl.key, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order: nobody always runs right after the same neighbour.
      for (let i = 0; i < impls.list.length; i++) {
        const impl = impls.list[(round + i) % impls.list.length];
        samples.get(impl.key).push(...await impl.measure(SLICE_MS));
      }
    }
    log(`  ${c.name}: ${ROUNDS} rounds`);
    return {
      medians: new Map([...samples].map(([key, values]) => [key, median(values)])),
      bests: new Map([...samples].map(([key, values]) => [key, Math.min(...values)])),
    };
  } finally {
    for (const impl of impls.list) impl.dispose();
  }
}

async function main() {
  for (const build of BUILDS) buildIfStale(build);
  const ctx = {
    simd: await loadWasm(WASM_SIMD),
    scalar: await loadWasm(WASM_SCALAR),
    tmp: mkdtempSync(join(tmpdir(), 'gemm-bench-')),
  };
  const results = [];
  try {
    for (const c of CASES) {
      log(`${c.name}: ${c.op} [${c.shape.join(', ')}]`);
      results.push({ c, ...await runCase(ctx, c) });
    }
  } finally {
    rmSync(ctx.tmp, { recursive: true, force: true });
  }

  const gflops = (c, ms) => (2 * c.shape[0] * c.shape[1] * c.shape[2]) / (ms * 1e6);
  const fixed = (value) => value.toFixed(value < 10 ? 2 : 1);
  const ratio = (value) => `${value.toFixed(value < 10 ? 2 : 1)}x`;
  const lines = [];
  lines.push(`gemm, float32, single thread; GFLOP/s = 2 m n k / median time of ${ROUNDS} interleaved rounds${QUICK ? ' (--quick)' : ''}; Node ${process.version}, ${cpus()[0].model}, ${cpus().length} cores. Ratios are speed ratios (the other's time / wasm SIMD's time).`);
  lines.push('');
  lines.push('| case | op | m, n, k | wasm SIMD128 | wasm SIMD128, best sample | wasm scalar | plain JS | native C -O3 -march=native | native C, -fno-tree-loop-vectorize | SIMD / plain JS | SIMD / scalar wasm | SIMD / native | SIMD / native, no loop vectorizer |');
  lines.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const { c, medians, bests } of results) {
    const simd = medians.get('simd');
    const cells = [c.name, c.op, c.shape.join(', '), fixed(gflops(c, simd)), fixed(gflops(c, bests.get('simd')))];
    for (const key of ['scalar', 'plainJs', 'native', 'nativeSlp']) cells.push(fixed(gflops(c, medians.get(key))));
    for (const key of ['plainJs', 'scalar', 'native', 'nativeSlp']) cells.push(ratio(medians.get(key) / simd));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  const inCache = results.filter(({ c }) => c.inCache);
  const medianGflops = inCache.map(({ c, medians }) => gflops(c, medians.get('simd')));
  const bestGflops = inCache.map(({ c, bests }) => gflops(c, bests.get('simd')));
  const met = medianGflops.every((value) => value >= 40);
  lines.push(`Goal: wasm SIMD128 >= 40 GFLOP/s on the in-cache square sizes: median ${medianGflops.map(fixed).join(' / ')}, best sample ${bestGflops.map(fixed).join(' / ')} (${met ? 'met' : 'NOT met'}).`);
  lines.push('Native C is the same source built with cc: its f32x4 is simd.h\'s scalar struct, and gcc\'s loop vectorizer vectorizes the micro-kernel across k with in-order scalar reductions; with -fno-tree-loop-vectorize its SLP vectorizer packs the lanes into AVX registers instead.');
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
