// rope.bench.js: rope-wasm against its peers on RoPE, all measured in this one run, single thread.
//
//   npm run bench:rope            (./build.sh, then this file)
//   node tests/bench/rope.bench.js [--quick]
//
// x: [1, 32 heads, 2048, 128] float32, layout bhsd, rotary dim 128, base 10000, positions 0..2047,
// for both pairings; and a decode step, x [1, 32, 1, 128] at position 4095. Every implementation's
// output is checked against rope-wasm's first (max abs diff < 1e-4): a fast wrong answer would
// make the table meaningless. The machine is shared and noisy, so the implementations take turns:
// several rounds, each giving every implementation a short time slice, in a new order each round;
// a row's time is the median of all its samples. Progress goes to stderr, the table to stdout.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';

import { loadRope } from '../../js/index.js';
import { maxAbsDiff, median, randomArray, shuffled, timeAsync, timeSync } from './common.js';

const args = process.argv.slice(2);
for (const arg of args) {
  if (arg !== '--quick') throw new Error(`rope.bench.js: unknown argument ${arg} (only --quick)`);
}
const QUICK = args.includes('--quick');

const DIM = 128;
const BASE = 10000;
const PAIRINGS = ['half', 'interleaved'];
const PREFILL = { shape: [1, 32, 2048, DIM], offset: 0 };
const DECODE = { shape: [1, 32, 1, DIM], offset: 4095 };
const TOLERANCE = 1e-4;
// Warm-up per implementation and case: JIT tiers, the cos/sin tables, first touch of memory.
const WARMUP_MS = QUICK ? 100 : 300;
// A sample is as many back-to-back calls as last >= SAMPLE_MS: a decode call is a few
// microseconds, too short to time alone.
const SAMPLE_MS = 1;
const ROUNDS = QUICK ? 3 : 15;
const SLICE_MS = QUICK ? 30 : 120;  // each implementation's time per round (at least one sample)

const NATIVE = fileURLToPath(new URL('../../build/bench_rope_native', import.meta.url));
const PEERS = fileURLToPath(new URL('../../../shared/peers/', import.meta.url));

const started = performance.now();
const log = (message) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}\n`);

// cos/sin tables [positions, dim/2] as float32, evaluated in double from the same frequencies as
// rope-wasm: what plain JS and onnxruntime get precomputed (not timed, as rope-wasm's cache).
function cosSinTables(invFreq, positions) {
  const half = invFreq.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * invFreq[i];
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

// Plain JavaScript RoPE, in place. x: [vectors, seq, dim] (bhsd with batch * heads vectors per
// position); cos, sin: [positions, dim/2]; token s has position offset + s.
function plainRopeHalf(x, cos, sin, vectors, seq, dim, offset) {
  const half = dim >> 1;
  for (let v = 0; v < vectors; v++) {
    for (let s = 0; s < seq; s++) {
      const x1 = (v * seq + s) * dim;
      const x2 = x1 + half;
      const row = (offset + s) * half;
      for (let i = 0; i < half; i++) {
        const a = x[x1 + i];
        const b = x[x2 + i];
        const c = cos[row + i];
        const sn = sin[row + i];
        x[x1 + i] = a * c - b * sn;
        x[x2 + i] = b * c + a * sn;
      }
    }
  }
}

function plainRopeInterleaved(x, cos, sin, vectors, seq, dim, offset) {
  const half = dim >> 1;
  for (let v = 0; v < vectors; v++) {
    for (let s = 0; s < seq; s++) {
      const start = (v * seq + s) * dim;
      const row = (offset + s) * half;
      for (let i = 0; i < half; i++) {
        const j = start + 2 * i;
        const a = x[j];
        const b = x[j + 1];
        const c = cos[row + i];
        const sn = sin[row + i];
        x[j] = a * c - b * sn;
        x[j + 1] = b * c + a * sn;
      }
    }
  }
}

// An implementation measured in this process: check() returns its output for x; call() runs it
// once on its own buffers (async ones return a promise).
function inProcess(key, label, { check, call, async = false }) {
  const time = async ? timeAsync : timeSync;
  let reps = 1;
  return {
    key,
    label,
    check,
    async warmUp() {
      const start = performance.now();
      let calls = 0;
      while (calls < 3 || performance.now() - start < WARMUP_MS) {
        await time(call, 1);
        calls++;
      }
      reps = Math.ceil(SAMPLE_MS / ((performance.now() - start) / calls));
    },
    // Samples (ms per call) for about sliceMs, at least one. The first call is not timed: the
    // other implementations ran in between and evicted this one's 33.5 MB from the caches (the
    // native binary warms up in each run too).
    async measure(sliceMs) {
      await time(call, 1);
      const samples = [];
      const start = performance.now();
      do {
        samples.push(await time(call, reps));
      } while (performance.now() - start < sliceMs);
      return samples;
    },
  };
}

// The native C build, one process per round (it warms up itself). spawnSync: this process stays
// idle while it runs.
function native(key, label, { pairing, shape, offset }, tmp) {
  const shapeArg = shape.join(',');
  let estimateMs = null;
  const run = (samples, files = []) => {
    const result = spawnSync(NATIVE, [pairing, shapeArg, String(samples), String(offset), ...files], { encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(`${NATIVE} failed (status ${result.status}): ${result.stderr || result.error}`);
    }
    return JSON.parse(result.stdout);
  };
  return {
    key,
    label,
    check(x) {
      const input = join(tmp, 'x.f32');
      const output = join(tmp, 'y.f32');
      writeFileSync(input, x);
      run(0, [input, output]);
      const bytes = readFileSync(output);
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    },
    async warmUp() {
      estimateMs = run(3).median_ms;
    },
    async measure(sliceMs) {
      // A sample lasts max(one call, SAMPLE_MS): the binary batches short calls as we do.
      const result = run(Math.max(1, Math.round(sliceMs / Math.max(estimateMs, SAMPLE_MS))));
      estimateMs = result.median_ms;
      return result.samples_ms;
    },
  };
}

// Every implementation for one case (pairing, shape, offset), with its buffers.
function implementations(ctx, c) {
  const { rw, rwScalar, ortWebSessions, ortNodeSessions, tmp } = ctx;
  const { pairing, shape, offset } = c;
  const count = shape.reduce((a, b) => a * b, 1);
  const [batch, heads, seq, dim] = shape;
  const opts = { shape, layout: 'bhsd', offset };
  const x = randomArray(count, 7);

  const rope = rw.rotaryEmbedding({ dim: DIM, base: BASE, pairing });
  const out = new Float32Array(count);
  const tensor = rw.tensor(count);
  const ropeScalar = rwScalar.rotaryEmbedding({ dim: DIM, base: BASE, pairing });
  const tensorScalar = rwScalar.tensor(count);
  const intoOut = { ...opts, out };
  const inPlace = { ...opts, out: tensor };
  const inPlaceScalar = { ...opts, out: tensorScalar };

  const { cos, sin } = cosSinTables(rope.inverseFrequencies, offset + seq);
  const plainRope = pairing === 'half' ? plainRopeHalf : plainRopeInterleaved;
  const plainX = new Float32Array(count);

  const positionIds = new BigInt64Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seq; s++) positionIds[b * seq + s] = BigInt(offset + s);
  }
  const ortInputs = (ort) => ({
    X: new ort.Tensor('float32', x, shape),
    cos: new ort.Tensor('float32', cos, [offset + seq, DIM / 2]),
    sin: new ort.Tensor('float32', sin, [offset + seq, DIM / 2]),
    pos: new ort.Tensor('int64', positionIds, [batch, seq]),
  });
  const webSession = ortWebSessions[pairing];
  const webInputs = ortInputs(ortWeb);
  const nodeSession = ortNodeSessions[pairing];
  const nodeInputs = ortInputs(ortNode);

  return {
    x,
    dispose() {
      rope.dispose();
      tensor.dispose();
      ropeScalar.dispose();
      tensorScalar.dispose();
    },
    list: [
      inProcess('e2eNew', '(a) rope-wasm end to end, returns a new array', {
        check: (input) => rope.apply(input, opts),
        call: () => rope.apply(x, opts),
      }),
      inProcess('e2eOut', '(a) rope-wasm end to end, into `out`', {
        check: (input) => rope.apply(input, { ...opts, out: new Float32Array(count) }),
        call: () => rope.apply(x, intoOut),
      }),
      inProcess('zeroCopy', '(b) rope-wasm zero-copy (rw.tensor, in place)', {
        check: (input) => {
          tensor.data.set(input);
          return rope.apply(tensor, inPlace).data.slice();
        },
        call: () => rope.apply(tensor, inPlace),
      }),
      inProcess('scalar', '(c) rope-wasm scalar build, zero-copy', {
        check: (input) => {
          tensorScalar.data.set(input);
          return ropeScalar.apply(tensorScalar, inPlaceScalar).data.slice();
        },
        call: () => ropeScalar.apply(tensorScalar, inPlaceScalar),
      }),
      inProcess('plainJs', '(d) plain JavaScript, precomputed cos/sin, in place', {
        check: (input) => {
          const y = input.slice();
          plainRope(y, cos, sin, batch * heads, seq, dim, offset);
          return y;
        },
        call: () => plainRope(plainX, cos, sin, batch * heads, seq, dim, offset),
      }),
      inProcess('ortWeb', '(e) onnxruntime-web (wasm, 1 thread)', {
        check: async () => (await webSession.run(webInputs)).Y.data,  // webInputs hold x
        call: () => webSession.run(webInputs),
        async: true,
      }),
      inProcess('ortNode', '(f) onnxruntime-node (CPU, 1 thread)', {
        check: async () => (await nodeSession.run(nodeInputs)).Y.data,  // nodeInputs hold x
        call: () => nodeSession.run(nodeInputs),
        async: true,
      }),
      native('native', '(g) native C (-O3 -march=native), in place', c, tmp),
    ],
  };
}

// Checks, warms up and times every implementation on one shape, both pairings in the same
// rounds (so that both see the same machine). Returns pairing -> {labels, medians (key -> ms)}.
async function runShape(ctx, { shape, offset }, rounds, sliceMs) {
  const what = `[${shape.join(', ')}] offset ${offset}`;
  const cases = PAIRINGS.map((pairing) => ({ pairing, impls: implementations(ctx, { pairing, shape, offset }) }));
  try {
    const entries = [];
    for (const { pairing, impls } of cases) {
      const reference = impls.list[0].check(impls.x);
      for (const impl of impls.list) {
        const diff = maxAbsDiff(await impl.check(impls.x), reference);
        if (!(diff < TOLERANCE)) {
          throw new Error(`${pairing} ${what}: ${impl.label} differs from rope-wasm by ${diff} (tolerance ${TOLERANCE})`);
        }
        log(`  ${pairing}: checked ${impl.key}, max abs diff ${diff.toExponential(2)}`);
        entries.push({ pairing, impl, samples: [] });
      }
    }
    for (const { impl } of entries) await impl.warmUp();
    for (let round = 0; round < rounds; round++) {
      // A new order every round: nobody always runs right after the same neighbour (whose
      // garbage, cache footprint or heat it would inherit).
      for (const entry of shuffled(entries, round + 1)) {
        entry.samples.push(...await entry.impl.measure(sliceMs));
      }
      log(`  ${what}: round ${round + 1}/${rounds}`);
    }
    const results = {};
    for (const pairing of PAIRINGS) {
      const mine = entries.filter((entry) => entry.pairing === pairing);
      results[pairing] = {
        labels: new Map(mine.map(({ impl }) => [impl.key, impl.label])),
        medians: new Map(mine.map(({ impl, samples }) => [impl.key, median(samples)])),
      };
    }
    return results;
  } finally {
    for (const { impls } of cases) impls.dispose();
  }
}

const fixed = (value, digits) => value.toFixed(digits);
const ratio = (value) => `${value.toFixed(value < 10 ? 2 : 1)}x`;

async function main() {
  if (!existsSync(NATIVE)) throw new Error(`${NATIVE} is missing: run ./build.sh native`);
  if (!existsSync(PEERS)) throw new Error(`${PEERS} is missing: the ONNX models of the peers live there`);

  const rw = await loadRope();
  if (!rw.simd) throw new Error('this engine has no WebAssembly SIMD128: nothing to benchmark');
  const rwScalar = await loadRope({ simd: false });

  ortWeb.env.wasm.numThreads = 1;
  const ortWebSessions = {};
  const ortNodeSessions = {};
  for (const [pairing, interleaved] of [['half', 0], ['interleaved', 1]]) {
    const model = join(PEERS, `rope_opset23_interleaved${interleaved}.onnx`);
    ortWebSessions[pairing] = await ortWeb.InferenceSession.create(model, { executionProviders: ['wasm'] });
    ortNodeSessions[pairing] = await ortNode.InferenceSession.create(model, {
      executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1,
    });
    for (const session of [ortWebSessions[pairing], ortNodeSessions[pairing]]) {
      const names = session.inputNames.join(',');
      if (names !== 'X,cos,sin,pos') throw new Error(`${model}: inputs ${names}, expected X,cos,sin,pos`);
    }
  }

  const tmp = mkdtempSync(join(tmpdir(), 'rope-bench-'));
  const ctx = { rw, rwScalar, ortWebSessions, ortNodeSessions, tmp };
  const results = {};
  try {
    log('prefill');
    const prefill = await runShape(ctx, PREFILL, ROUNDS, SLICE_MS);
    log('decode');
    const decode = await runShape(ctx, DECODE, ROUNDS, SLICE_MS / 2);
    for (const pairing of PAIRINGS) {
      results[`prefill ${pairing}`] = prefill[pairing];
      results[`decode ${pairing}`] = decode[pairing];
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }

  // Output: bytes of x read plus bytes of y written, per call.
  const bytes = 2 * 4 * PREFILL.shape.reduce((a, b) => a * b, 1);
  const keys = [...results['prefill half'].labels.keys()];
  const lines = [];
  lines.push(`RoPE, x [${PREFILL.shape.join(', ')}] float32 bhsd (prefill) and [${DECODE.shape.join(', ')}] at position ${DECODE.offset} (decode); dim ${DIM}, base ${BASE}; single thread; median of ${ROUNDS} interleaved rounds${QUICK ? ' (--quick)' : ''}; Node ${process.version}, ${cpus()[0].model}, ${cpus().length} cores. "x plain JS" and "x native C" are speed ratios (their time / this row's time).`);
  lines.push('');
  lines.push('| implementation | half ms | half GB/s | half x plain JS | half x native C | interleaved ms | interleaved GB/s | interleaved x plain JS | interleaved x native C | decode half us | decode interleaved us |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const key of keys) {
    const cells = [results['prefill half'].labels.get(key)];
    for (const pairing of PAIRINGS) {
      const m = results[`prefill ${pairing}`].medians;
      const ms = m.get(key);
      cells.push(fixed(ms, 2), fixed(bytes / (ms * 1e6), 1), ratio(m.get('plainJs') / ms), ratio(m.get('native') / ms));
    }
    for (const pairing of PAIRINGS) cells.push(fixed(results[`decode ${pairing}`].medians.get(key) * 1e3, 2));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  lines.push('Goals (speed ratios, prefill shape; half / interleaved):');
  const goal = (name, numerator, denominator, target) => {
    const values = PAIRINGS.map((p) => {
      const m = results[`prefill ${p}`].medians;
      return m.get(denominator) / m.get(numerator);
    });
    const verdict = values.every((v) => v >= target) ? 'met' : 'NOT met';
    lines.push(`- ${name}: ${values.map(ratio).join(' / ')} (goal >= ${target}: ${verdict})`);
  };
  goal('zero-copy / native C', 'zeroCopy', 'native', 0.9);
  goal('zero-copy / plain JS', 'zeroCopy', 'plainJs', 5);
  goal('end to end (new array) / plain JS', 'e2eNew', 'plainJs', 1.5);
  goal('end to end (into out) / plain JS', 'e2eOut', 'plainJs', 1.5);
  goal('end to end (new array) / onnxruntime-web', 'e2eNew', 'ortWeb', 20);
  goal('end to end (into out) / onnxruntime-web', 'e2eOut', 'ortWeb', 20);
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
