// attention.bench.js: rope-wasm's attention (rw.attention) and the seed's RoPE multi-head
// attention (rw.rotaryMultiHeadAttention) against plain JavaScript, onnxruntime-web,
// onnxruntime-node and the same C built natively, all measured in this one run, single thread.
//
//   npm run bench:attention            (./build.sh, then this file)
//   node tests/bench/attention.bench.js [--quick]
//
// Cases (float32, layout bhsd, scale 1/sqrt(head_dim)):
//   causal [1, 8, 512, 64]; causal [1, 16, 2048, 64];
//   decode: one query against 4,096 keys, 8 heads of 64, causal bottom-right (the query is the
//     last token: it sees every key);
//   the seed's RotaryPEMultiHeadAttention: d_model 128, 16 heads (d_k 8), 512 tokens, batch 1,
//     causal, ropePercentage 0.5 (RoPE on 4 of the 8 features of each head).
// Rows: rope-wasm end to end (Float32Arrays in, a new Float32Array out: the copies are timed),
// rope-wasm zero-copy (rw.tensor inputs and out), rope-wasm zero-copy with RoPE (dim 64, half
// pairing) inside the kernel, plain JavaScript, onnxruntime-web (wasm, 1 thread) and
// onnxruntime-node (CPU, 1 intra-op thread) on the ONNX models of ../shared/peers, and
// build/bench_attention_native (tests/bench/attention_native.c: the same C, -O3 -march=native).
// The notes printed under the table say which ONNX model runs where, and why.
//
// Every output is checked before anything is timed: rope-wasm against float64 attention on a few
// rows, and every implementation against rope-wasm on identical inputs (max abs diff <= 1e-4 *
// max |rope-wasm's output|): a fast wrong answer would make the table meaningless. The RoPE rows
// are checked against rope-wasm without RoPE on q and k rotated here in float64.
// The machine is shared and noisy, so the implementations take turns: several rounds, each giving
// every implementation a short time slice, in a new order each round; a row's time is the median
// of all its samples (a call over 5 s, plain JS on 2048 tokens, is timed once, by the call that
// checked it). Last, a causal 16,384-token attention (8 heads of 64, zero-copy) runs once
// in a fresh module instance, for the memory it needs (rw.memoryBytes). Progress goes to stderr,
// the table to stdout.
// A second table (alone with --options) times the attention options against the plain kernel in
// the same run: [1, 8, 512, 64] causal by the flag, by a boolean mask and by an additive mask
// ([seqQ, seqK], copied into wasm memory at each call, as an array argument is), with a key-padding
// mask and with softcap, next to onnxruntime-node's opset-23 Attention with is_causal and with the
// additive mask (models built here); and a causal sliding window of 256 keys over 16,384 tokens
// against full causal attention over the same 16,384 tokens (zero-copy, 8 heads of 64).
// A third table (alone with --kv-cache) times a decoding loop of 512 steps with rw.kvCache against
// re-passing the whole cache to rw.attention each step, rw.attention's ONNX-style past/present and
// onnxruntime-node's Attention-23 with past_key/past_value (kvCacheBench, the last section).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';

import { loadRope } from '../../js/index.js';
import { maxAbs, maxAbsDiff, median, randomArray, shuffled, timeAsync, timeSync } from './common.js';

const args = process.argv.slice(2);
for (const arg of args) {
  if (arg !== '--quick' && arg !== '--options' && arg !== '--kv-cache') {
    throw new Error(`attention.bench.js: unknown argument ${arg} (--quick, --options, --kv-cache)`);
  }
}
const QUICK = args.includes('--quick');
// --options: only the table of the attention options (masks, sliding window).
const OPTIONS_ONLY = args.includes('--options');
// --kv-cache: only the table of KV-cache decoding (kvCacheBench, at the end of this file).
const KV_CACHE_ONLY = args.includes('--kv-cache');

const BASE = 10000;
const TOLERANCE = 1e-4;  // relative to max |rope-wasm's output|
// Warm-up per implementation and case: JIT tiers, first touch of memory. A call longer than
// LONG_CALL_MS is warm after the check (its first call): it gets no more warm-up, and no untimed
// call before its samples of a round.
const WARMUP_MS = QUICK ? 100 : 300;
const LONG_CALL_MS = 200;
// A call this long (plain JS on the 2048-token case: 20 s or more, some 40 times the others) is
// timed once, by its check call, instead of again in every round: one such call already spans
// many of the machine's noise bursts, and its rounds would take most of the run.
const ONCE_MS = 5000;
// A sample is as many back-to-back calls as last >= SAMPLE_MS.
const SAMPLE_MS = 1;

// rounds, and each implementation's time per round (at least one call), fit each case's length.
const CASES = [
  { key: 'causal512', kind: 'attention', label: 'causal [1, 8, 512, 64]', heads: 8, seqQ: 512, seqK: 512,
    headDim: 64, rounds: QUICK ? 3 : 16, sliceMs: QUICK ? 40 : 90 },
  { key: 'causal2048', kind: 'attention', label: 'causal [1, 16, 2048, 64]', heads: 16, seqQ: 2048, seqK: 2048,
    headDim: 64, rounds: QUICK ? 1 : 6, sliceMs: 1 },
  { key: 'decode', kind: 'attention', label: 'decode: 1 query x 4,096 keys, 8 heads of 64', heads: 8, seqQ: 1,
    seqK: 4096, headDim: 64, rounds: QUICK ? 3 : 16, sliceMs: QUICK ? 20 : 40 },
  { key: 'mha', kind: 'mha', label: 'seed MHA: d_model 128, 16 heads, 512 tokens', seq: 512, batch: 1, dModel: 128,
    heads: 16, ropePercentage: 0.5, rounds: QUICK ? 3 : 16, sliceMs: QUICK ? 40 : 75 },
];
// Run once, zero-copy, in a module instance of its own: the peers would need the 16,384^2 score
// matrix (8 GiB), plain JS and native C minutes.
const LONG = { label: 'causal [1, 8, 16384, 64]', heads: 8, seqQ: 16384, seqK: 16384, headDim: 64 };

const NATIVE = fileURLToPath(new URL('../../build/bench_attention_native', import.meta.url));
const PEERS = fileURLToPath(new URL('../../../shared/peers/', import.meta.url));

const started = performance.now();
const log = (message) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}\n`);

// FLOP of one attention: 4 * seq_q * seq_k * head_dim * heads (q k^T and p v, a multiply and an
// add each), halved for a causal square.
function attentionFlops({ batch = 1, heads, seqQ, seqK, headDim, causal = true }) {
  const all = 4 * batch * heads * seqQ * seqK * headDim;
  return causal && seqQ === seqK ? all / 2 : all;
}

// The MHA case: its attention plus the four projections, 2 * tokens * d_model^2 each.
function mhaFlops(c) {
  const tokens = c.seq * c.batch;
  return attentionFlops(mhaAttentionShape(c)) + 4 * 2 * tokens * c.dModel * c.dModel;
}

function mhaAttentionShape(c) {
  return { batch: c.batch, heads: c.heads, seqQ: c.seq, seqK: c.seq, headDim: c.dModel / c.heads, causal: true };
}

// ---------------------------------------------------------------------------------------------
// Plain JavaScript: float32 arrays, double arithmetic (JS numbers), loops unrolled by 4 with
// independent sums. A head's rows are tokStride apart, heads headStride apart (bhsd: seq * d and
// d; sbhd with batch 1: d and heads * d).

// out = softmax(scale q k^T [+ bottom-right causal mask]) v, one query row at a time: the row of
// scores, its softmax, then p v. scores: Float64Array(seqK), acc: Float64Array(d).
function plainAttention(q, k, v, out, g, scores, acc) {
  const { heads, seqQ, seqK, d, causal, scale, qHead, qTok, kHead, kTok } = g;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < seqQ; i++) {
      const qi = h * qHead + i * qTok;
      const qEnd = qi + d;
      const visible = causal ? Math.min(seqK, i + seqK - seqQ + 1) : seqK;
      let max = -Infinity;
      for (let j = 0; j < visible; j++) {
        let kj = h * kHead + j * kTok;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let f = qi; f < qEnd; f += 4, kj += 4) {
          s0 += q[f] * k[kj];
          s1 += q[f + 1] * k[kj + 1];
          s2 += q[f + 2] * k[kj + 2];
          s3 += q[f + 3] * k[kj + 3];
        }
        const s = (s0 + s1 + s2 + s3) * scale;
        scores[j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = 0; j < visible; j++) {
        const e = Math.exp(scores[j] - max);
        scores[j] = e;
        sum += e;
      }
      for (let f = 0; f < d; f++) acc[f] = 0;
      for (let j = 0; j < visible; j++) {
        const p = scores[j];
        let vj = h * kHead + j * kTok;
        for (let f = 0; f < d; f += 4, vj += 4) {
          acc[f] += p * v[vj];
          acc[f + 1] += p * v[vj + 1];
          acc[f + 2] += p * v[vj + 2];
          acc[f + 3] += p * v[vj + 3];
        }
      }
      const inv = 1 / sum;
      for (let f = 0; f < d; f++) out[qi + f] = acc[f] * inv;
    }
  }
}

// y = x w^T + bias (PyTorch's nn.Linear): x [rows, inF], w [outF, inF], y [rows, outF].
function plainLinear(x, w, bias, y, rows, inF, outF) {
  for (let r = 0; r < rows; r++) {
    const xr = r * inF;
    const xEnd = xr + inF;
    for (let o = 0; o < outF; o++) {
      let wo = o * inF;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let f = xr; f < xEnd; f += 4, wo += 4) {
        s0 += x[f] * w[wo];
        s1 += x[f + 1] * w[wo + 1];
        s2 += x[f + 2] * w[wo + 2];
        s3 += x[f + 3] * w[wo + 3];
      }
      y[r * outF + o] = bias[o] + (s0 + s1 + s2 + s3);
    }
  }
}

// cos/sin [positions, dim/2] in double (rope-wasm's cache holds the same values as float).
function cosSinTables(invFreq, positions) {
  const half = invFreq.length;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      cos[p * half + i] = Math.cos(p * invFreq[i]);
      sin[p * half + i] = Math.sin(p * invFreq[i]);
    }
  }
  return { cos, sin };
}

function inverseFrequencies(dim, base) {
  return Float64Array.from({ length: dim / 2 }, (_, i) => 1 / base ** ((2 * i) / dim));
}

// RoPE in place, half pairing (feature i with i + dim/2) on the first `dim` features of each head
// vector; token t of every head has position first + t.
function plainRope(x, { cos, sin }, heads, tokens, headStride, tokStride, dim, first) {
  const half = dim >> 1;
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < tokens; t++) {
      const a0 = h * headStride + t * tokStride;
      const row = (first + t) * half;
      for (let i = 0; i < half; i++) {
        const a = x[a0 + i];
        const b = x[a0 + half + i];
        const c = cos[row + i];
        const s = sin[row + i];
        x[a0 + i] = a * c - b * s;
        x[a0 + half + i] = b * c + a * s;
      }
    }
  }
}

// [seq, heads, d] (sbhd, batch 1) -> [heads, seq, d] (bhsd, batch 1).
function sbhdToBhsd(x, seq, heads, d) {
  const y = new Float32Array(x.length);
  for (let s = 0; s < seq; s++) {
    for (let h = 0; h < heads; h++) y.set(x.subarray((s * heads + h) * d, (s * heads + h + 1) * d), (h * seq + s) * d);
  }
  return y;
}

// Max abs error of rows `rows` of head 0 of out (bhsd, batch 1) against float64 attention.
function float64Error(c, { q, k, v }, out, rows) {
  const d = c.headDim;
  let worst = 0;
  for (const i of rows) {
    const visible = Math.min(c.seqK, i + c.seqK - c.seqQ + 1);
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

// ---------------------------------------------------------------------------------------------
// Implementations. Each: {key, label, work, check(), warmUp(checkMs), measure(sliceMs)}; work is
// what it computes ('attention', 'rope' = attention with RoPE on q and k, 'mha' = the whole seed
// MHA), so that ratios compare like with like. check() runs it once and returns its output.

// Measured in this process; call() runs it once on its own buffers (async: returns a promise,
// timed in a loop of its own so that sync calls pay no await).
function inProcess(key, label, work, { check, call, async = false }) {
  const time = async ? timeAsync : timeSync;
  let reps = 1;
  let estimateMs = 0;
  return {
    key,
    label,
    work,
    check,
    async warmUp(checkMs) {
      estimateMs = checkMs;
      if (checkMs >= LONG_CALL_MS) return;
      const start = performance.now();
      let calls = 0;
      while (calls < 3 || performance.now() - start < WARMUP_MS) {
        await time(call, 1);
        calls++;
      }
      estimateMs = (performance.now() - start) / calls;
      reps = Math.ceil(SAMPLE_MS / estimateMs);
    },
    // Samples (ms per call) for about sliceMs, at least one. A short call gets one untimed call
    // first: the other implementations ran in between and evicted its data from the caches.
    async measure(sliceMs) {
      if (estimateMs < LONG_CALL_MS) await time(call, 1);
      const samples = [];
      const start = performance.now();
      do {
        samples.push(await time(call, reps));
      } while (performance.now() - start < sliceMs);
      return samples;
    },
  };
}

// The native C build, one process per round (it warms up itself); spawnSync leaves this process
// idle while it runs. args: the binary's arguments before SAMPLES; inputs: [Float32Array] written
// to files for the check, whose output comes back in the last file.
function native(key, label, work, mode, shapeArgs, inputs, tmp) {
  let estimateMs = null;
  const run = (samples, files = []) => {
    const result = spawnSync(NATIVE, [mode, ...shapeArgs, String(samples), ...files], { encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(`${NATIVE} failed (status ${result.status}): ${result.stderr || result.error}`);
    }
    return JSON.parse(result.stdout);
  };
  return {
    key,
    label,
    work,
    check() {
      const files = [...inputs.map((_, i) => join(tmp, `${key}-in${i}.f32`)), join(tmp, `${key}-out.f32`)];
      inputs.forEach((x, i) => writeFileSync(files[i], x));
      run(0, files);
      const bytes = readFileSync(files.at(-1));
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    },
    async warmUp(checkMs) {
      estimateMs = checkMs >= LONG_CALL_MS ? checkMs : run(3).median_ms;
    },
    async measure(sliceMs) {
      // A sample lasts max(one call, SAMPLE_MS): the binary batches short calls as we do.
      const result = run(Math.max(1, Math.round(sliceMs / Math.max(estimateMs, SAMPLE_MS))));
      estimateMs = result.median_ms;
      return result.samples_ms;
    },
  };
}

function ortImpl(ort, key, label, session, feeds) {
  return inProcess(key, label, 'attention', {
    check: async () => (await session.run(feeds)).O.data,
    call: () => session.run(feeds),
    async: true,
  });
}

// Every implementation of an attention case, with its buffers, and what to check them against.
function attentionCase(ctx, c) {
  const { rw, sessions, tmp } = ctx;
  const { heads, seqQ, seqK, headDim: d } = c;
  const nq = heads * seqQ * d;
  const nkv = heads * seqK * d;
  const inputs = { q: randomArray(nq, 1), k: randomArray(nkv, 2), v: randomArray(nkv, 3) };
  const { q, k, v } = inputs;
  const opts = { batch: 1, heads, seqQ, seqK, headDim: d, layout: 'bhsd', causal: true };

  const rope = rw.rotaryEmbedding({ dim: d, base: BASE, pairing: 'half' });
  const tensors = ['q', 'k', 'v', 'out', 'ropeOut'].map((name) => [name, rw.tensor(name === 'k' || name === 'v' ? nkv : nq)]);
  const t = Object.fromEntries(tensors);
  t.q.data.set(q);
  t.k.data.set(k);
  t.v.data.set(v);
  const zeroCopy = { ...opts, out: t.out };
  const withRope = { ...opts, rope, out: t.ropeOut };

  const g = { heads, seqQ, seqK, d, causal: true, scale: 1 / Math.sqrt(d), qHead: seqQ * d, qTok: d, kHead: seqK * d, kTok: d };
  const scores = new Float64Array(seqK);
  const acc = new Float64Array(d);
  const plainOut = new Float32Array(nq);

  // RoPE applied here in float64 (q at positions seqK - seqQ + i, k at j): the check of the RoPE rows.
  const tables = cosSinTables(rope.inverseFrequencies, seqK);
  const qRot = q.slice();
  const kRot = k.slice();
  plainRope(qRot, tables, heads, seqQ, seqQ * d, d, d, seqK - seqQ);
  plainRope(kRot, tables, heads, seqK, seqK * d, d, d, 0);

  const list = [
    inProcess('e2e', 'rope-wasm end to end (Float32Array in, new Float32Array out)', 'attention', {
      check: () => rw.attention(q, k, v, opts),
      call: () => rw.attention(q, k, v, opts),
    }),
    inProcess('zeroCopy', 'rope-wasm zero-copy (rw.tensor q, k, v, out)', 'attention', {
      check: () => rw.attention(t.q, t.k, t.v, zeroCopy).data.slice(),
      call: () => rw.attention(t.q, t.k, t.v, zeroCopy),
    }),
    inProcess('ropeZeroCopy', `rope-wasm zero-copy, RoPE (dim ${d}) inside`, 'rope', {
      check: () => rw.attention(t.q, t.k, t.v, withRope).data.slice(),
      call: () => rw.attention(t.q, t.k, t.v, withRope),
    }),
    inProcess('plainJs', 'plain JS (row by row: q k^T, softmax, p v)', 'attention', {
      check: () => {
        plainAttention(q, k, v, plainOut, g, scores, acc);
        return plainOut.slice();
      },
      call: () => plainAttention(q, k, v, plainOut, g, scores, acc),
    }),
  ];

  // onnxruntime: opset-23 Attention, Q/K/V [B, H, S, D]. Its is_causal is top-left aligned
  // (checked in main), so decoding (seqQ 1 < seqK) uses the model without a mask: the last query
  // sees every key anyway. com.microsoft MultiHeadAttention (Q/K/V [B, S, H*D]) is not causal:
  // it runs only where that is the same, i.e. decoding.
  const decoding = seqQ === 1;
  const attentionModel = decoding ? 'causal0' : 'causal1';
  const ortFeeds = (ort) => ({
    Q: new ort.Tensor('float32', q, [1, heads, seqQ, d]),
    K: new ort.Tensor('float32', k, [1, heads, seqK, d]),
    V: new ort.Tensor('float32', v, [1, heads, seqK, d]),
  });
  // bhsd -> bshd for com.microsoft MHA; with seqQ 1, q is the same either way, and so is the output.
  const toBshd = (x, seq) => {
    const y = new Float32Array(x.length);
    for (let h = 0; h < heads; h++) {
      for (let s = 0; s < seq; s++) y.set(x.subarray((h * seq + s) * d, (h * seq + s + 1) * d), (s * heads + h) * d);
    }
    return y;
  };
  const msFeeds = (ort) => ({
    Q: new ort.Tensor('float32', q, [1, seqQ, heads * d]),
    K: new ort.Tensor('float32', toBshd(k, seqK), [1, seqK, heads * d]),
    V: new ort.Tensor('float32', toBshd(v, seqK), [1, seqK, heads * d]),
  });
  const attentionName = `Attention opset 23${decoding ? ', no mask' : ', is_causal'}`;
  for (const [peer, ort, name] of [['web', ortWeb, 'onnxruntime-web (wasm, 1 thread)'],
    ['node', ortNode, 'onnxruntime-node (CPU, 1 thread)']]) {
    const key = peer === 'web' ? 'ortWeb' : 'ortNode';
    list.push(ortImpl(ort, key, `${name}, ${attentionName}`, sessions[peer][attentionModel], ortFeeds(ort)));
    if (decoding) {
      list.push(ortImpl(ort, `${key}Ms`, `${name}, com.microsoft MultiHeadAttention`, sessions[peer][`ms${heads}`],
        msFeeds(ort)));
    }
  }
  const shapeArgs = (ropeDim) => [`1,${heads},${heads},${seqQ},${seqK},${d}`, '1', String(ropeDim)];
  list.push(native('native', 'native C (-O3 -march=native)', 'attention', 'attention', shapeArgs(0), [q, k, v], tmp));
  list.push(native('nativeRope', `native C, RoPE (dim ${d}) inside`, 'rope', 'attention', shapeArgs(d), [q, k, v], tmp));

  return {
    list,
    // The reference of each work: rope-wasm end to end, and rope-wasm on q, k rotated in float64.
    references() {
      const reference = rw.attention(q, k, v, opts);
      const rows = [...new Set([0, seqQ >> 1, seqQ - 1])];
      const err = float64Error(c, inputs, reference, rows);
      const limit = TOLERANCE * maxAbs(reference);
      if (!(err <= limit)) throw new Error(`${c.label}: rope-wasm differs from float64 attention by ${err} (limit ${limit})`);
      log(`  rope-wasm vs float64 attention (rows ${rows.join(', ')} of head 0): max abs error ${err.toExponential(2)}`);
      return { attention: reference, rope: rw.attention(qRot, kRot, v, opts) };
    },
    dispose() {
      rope.dispose();
      for (const [, tensor] of tensors) tensor.dispose();
    },
  };
}

// The seed's RotaryPEMultiHeadAttention: rope-wasm, plain JS, native C; onnxruntime has no op for
// it, so its rows time the attention part alone (on q, k, v projected and rotated here), next to
// rope-wasm's attention on the same inputs.
function mhaCase(ctx, c) {
  const { rw, sessions, tmp } = ctx;
  const { seq, batch, dModel, heads, ropePercentage } = c;
  if (batch !== 1) throw new Error('the MHA case supports batch 1 only');
  const dk = dModel / heads;
  const ropeDim = Math.trunc(dk * ropePercentage);
  const rows = seq * batch;
  const count = rows * dModel;
  const x = randomArray(count, 11);
  // nn.Linear's initialisation range, U(-1/sqrt(in), 1/sqrt(in)).
  const layers = ['query', 'key', 'value', 'output'];
  const weights = Object.fromEntries(layers.map((layer, i) => [layer, {
    weight: randomArray(dModel * dModel, 20 + 2 * i, 1 / Math.sqrt(dModel)),
    bias: randomArray(dModel, 21 + 2 * i, 1 / Math.sqrt(dModel)),
  }]));
  const mha = rw.rotaryMultiHeadAttention({ heads, dModel, ropePercentage, base: BASE, weights });
  const forwardOpts = { seq, batch, causal: true };
  const xTensor = rw.tensor(count);
  xTensor.data.set(x);

  // Plain JS: the four linears, RoPE on q and k, attention (sbhd), the output linear.
  const tables = cosSinTables(inverseFrequencies(ropeDim, BASE), seq);
  const pq = new Float32Array(count);
  const pk = new Float32Array(count);
  const pv = new Float32Array(count);
  const attended = new Float32Array(count);
  const py = new Float32Array(count);
  const g = { heads, seqQ: seq, seqK: seq, d: dk, causal: true, scale: 1 / Math.sqrt(dk), qHead: dk, qTok: dModel,
    kHead: dk, kTok: dModel };
  const scores = new Float64Array(seq);
  const acc = new Float64Array(dk);
  const project = () => {
    plainLinear(x, weights.query.weight, weights.query.bias, pq, rows, dModel, dModel);
    plainLinear(x, weights.key.weight, weights.key.bias, pk, rows, dModel, dModel);
    plainLinear(x, weights.value.weight, weights.value.bias, pv, rows, dModel, dModel);
    if (ropeDim > 0) {
      plainRope(pq, tables, heads, seq, dk, dModel, ropeDim, 0);
      plainRope(pk, tables, heads, seq, dk, dModel, ropeDim, 0);
    }
  };
  const plainMha = () => {
    project();
    plainAttention(pq, pk, pv, attended, g, scores, acc);
    plainLinear(attended, weights.output.weight, weights.output.bias, py, rows, dModel, dModel);
    return py;
  };

  // The attention part, bhsd [1, heads, seq, dk]: for onnxruntime and rope-wasm alike.
  project();
  const part = { q: sbhdToBhsd(pq, seq, heads, dk), k: sbhdToBhsd(pk, seq, heads, dk), v: sbhdToBhsd(pv, seq, heads, dk) };
  const partOpts = { batch: 1, heads, seqQ: seq, seqK: seq, headDim: dk, layout: 'bhsd', causal: true };
  const pt = Object.fromEntries(['q', 'k', 'v', 'out'].map((name) => [name, rw.tensor(count)]));
  pt.q.data.set(part.q);
  pt.k.data.set(part.k);
  pt.v.data.set(part.v);
  const partZeroCopy = { ...partOpts, out: pt.out };
  const ortFeeds = (ort) => ({
    Q: new ort.Tensor('float32', part.q, [1, heads, seq, dk]),
    K: new ort.Tensor('float32', part.k, [1, heads, seq, dk]),
    V: new ort.Tensor('float32', part.v, [1, heads, seq, dk]),
  });

  const packedWeights = new Float32Array(4 * (dModel * dModel + dModel));
  layers.forEach((layer, i) => {
    packedWeights.set(weights[layer].weight, i * (dModel * dModel + dModel));
    packedWeights.set(weights[layer].bias, i * (dModel * dModel + dModel) + dModel * dModel);
  });

  const list = [
    inProcess('e2e', 'rope-wasm mha.forward, x a Float32Array', 'mha', {
      check: () => mha.forward(x, forwardOpts),
      call: () => mha.forward(x, forwardOpts),
    }),
    inProcess('zeroCopy', 'rope-wasm mha.forward, x a tensor (y is still copied out)', 'mha', {
      check: () => mha.forward(xTensor, forwardOpts),
      call: () => mha.forward(xTensor, forwardOpts),
    }),
    inProcess('partZeroCopy', `rope-wasm attention part only, zero-copy [1, ${heads}, ${seq}, ${dk}]`, 'attention', {
      check: () => rw.attention(pt.q, pt.k, pt.v, partZeroCopy).data.slice(),
      call: () => rw.attention(pt.q, pt.k, pt.v, partZeroCopy),
    }),
    inProcess('plainJs', 'plain JS MHA (4 linears, RoPE, attention row by row)', 'mha', {
      check: () => plainMha().slice(),
      call: plainMha,
    }),
    ortImpl(ortWeb, 'ortWeb', 'onnxruntime-web (wasm, 1 thread), attention part only (‡)', sessions.web.causal1, ortFeeds(ortWeb)),
    ortImpl(ortNode, 'ortNode', 'onnxruntime-node (CPU, 1 thread), attention part only (‡)', sessions.node.causal1, ortFeeds(ortNode)),
    native('native', 'native C MHA (-O3 -march=native)', 'mha', 'mha', [`${seq},${batch},${dModel},${heads}`, '1', String(ropeDim)],
      [x, packedWeights], tmp),
  ];
  return {
    list,
    references() {
      return { mha: mha.forward(x, forwardOpts), attention: rw.attention(part.q, part.k, part.v, partOpts) };
    },
    dispose() {
      mha.dispose();
      xTensor.dispose();
      for (const tensor of Object.values(pt)) tensor.dispose();
    },
  };
}

// Checks, warms up and times every implementation of case c. Returns its rows: [{key, label,
// work, ms}], ms the median of the samples.
async function runCase(ctx, c) {
  log(`${c.label}`);
  const impls = c.kind === 'mha' ? mhaCase(ctx, c) : attentionCase(ctx, c);
  try {
    const references = impls.references();
    const checkMs = new Map();
    for (const impl of impls.list) {
      const reference = references[impl.work];
      const t0 = performance.now();
      const output = await impl.check();
      checkMs.set(impl.key, performance.now() - t0);
      const diff = maxAbsDiff(output, reference);
      const limit = TOLERANCE * maxAbs(reference);
      if (!(diff <= limit)) {
        throw new Error(`${c.label}: ${impl.label} differs from rope-wasm (${impl.work}) by ${diff} (limit ${limit})`);
      }
      log(`  checked ${impl.key} (${impl.work}): max abs diff ${diff.toExponential(2)} (limit ${limit.toExponential(2)})`);
    }
    const samples = new Map(impls.list.map((impl) => [impl.key, []]));
    const timed = [];
    for (const impl of impls.list) {
      const ms = checkMs.get(impl.key);
      if (ms >= ONCE_MS) {
        samples.get(impl.key).push(ms);
        impl.once = true;
        log(`  ${impl.key}: timed once, by its check call (${ms.toFixed(0)} ms)`);
      } else {
        await impl.warmUp(ms);
        timed.push(impl);
      }
    }
    for (let round = 0; round < c.rounds; round++) {
      // A new order every round: nobody always runs right after the same neighbour (whose
      // garbage, cache footprint or heat it would inherit).
      for (const impl of shuffled(timed, round + 1)) samples.get(impl.key).push(...await impl.measure(c.sliceMs));
      log(`  ${c.label}: round ${round + 1}/${c.rounds}`);
    }
    for (const impl of impls.list) {
      const values = samples.get(impl.key);
      log(`  ${impl.key}: median ${median(values).toFixed(3)} ms, min ${Math.min(...values).toFixed(3)}, max ${Math.max(...values).toFixed(3)} (${values.length} samples)`);
    }
    return impls.list.map(({ key, label, work, once }) => ({ key, label: once ? `${label} (*)` : label, work,
      ms: median(samples.get(key)) }));
  } finally {
    impls.dispose();
  }
}

// The long case: zero-copy, in a module instance of its own, one timed call. Returns its time and
// the instance's memory size.
async function runLong(c) {
  log(`${c.label}: one call in a fresh module instance`);
  const rw = await loadRope();
  const memoryBefore = rw.memoryBytes;
  const n = c.heads * c.seqQ * c.headDim;
  const inputs = { q: randomArray(n, 1), k: randomArray(n, 2), v: randomArray(n, 3) };
  const t = Object.fromEntries(['q', 'k', 'v', 'out'].map((name) => [name, rw.tensor(n)]));
  try {
    t.q.data.set(inputs.q);
    t.k.data.set(inputs.k);
    t.v.data.set(inputs.v);
    const memoryTensors = rw.memoryBytes;
    const opts = { batch: 1, heads: c.heads, seqQ: c.seqQ, seqK: c.seqK, headDim: c.headDim, causal: true, out: t.out };
    const t0 = performance.now();
    rw.attention(t.q, t.k, t.v, opts);
    const ms = performance.now() - t0;
    const memoryAfter = rw.memoryBytes;
    const rows = [0, 1000, c.seqQ - 1];
    const out = t.out.data;
    const err = float64Error(c, inputs, out, rows);
    const limit = TOLERANCE * maxAbs(out);
    if (!(err <= limit)) throw new Error(`${c.label}: rope-wasm differs from float64 attention by ${err} (limit ${limit})`);
    log(`  ${ms.toFixed(0)} ms; vs float64 attention (rows ${rows.join(', ')} of head 0): max abs error ${err.toExponential(2)}`);
    return { ms, memoryBefore, memoryTensors, memoryAfter, tensorBytes: 4 * 4 * n };
  } finally {
    for (const tensor of Object.values(t)) tensor.dispose();
  }
}

// Opset-23 Attention's causal alignment and com.microsoft MultiHeadAttention's causality, asked of
// the models themselves on a small case (seqQ 4 < seqK 8), against rope-wasm's bottom-right
// causal, top-left causal (query i sees keys j <= i) and no mask.
async function probeSemantics(rw, sessions) {
  const heads = 2;
  const d = 8;
  const [sq, sk] = [4, 8];
  const q = randomArray(heads * sq * d, 5);
  const k = randomArray(heads * sk * d, 6);
  const v = randomArray(heads * sk * d, 7);
  const base = { batch: 1, heads, seqQ: sq, seqK: sk, headDim: d };
  const bottomRight = rw.attention(q, k, v, { ...base, causal: true });
  const none = rw.attention(q, k, v, { ...base, causal: false });
  // Top-left: only the first seqK - seqQ keys are cut, i.e. attention on keys [0, i].
  const topLeft = new Float32Array(heads * sq * d);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < sq; i++) {
      const row = rw.attention(q.subarray((h * sq + i) * d, (h * sq + i + 1) * d), k.subarray(h * sk * d, (h * sk + i + 1) * d),
        v.subarray(h * sk * d, (h * sk + i + 1) * d), { batch: 1, heads: 1, seqQ: 1, seqK: i + 1, headDim: d });
      topLeft.set(row, (h * sq + i) * d);
    }
  }
  const which = (out) => {
    for (const [name, ref] of [['bottom-right', bottomRight], ['top-left', topLeft], ['none', none]]) {
      if (maxAbsDiff(out, ref) <= 1e-5) return name;
    }
    return 'unknown';
  };
  const found = {};
  for (const [peer, ort] of [['web', ortWeb], ['node', ortNode]]) {
    const feeds = {
      Q: new ort.Tensor('float32', q, [1, heads, sq, d]),
      K: new ort.Tensor('float32', k, [1, heads, sk, d]),
      V: new ort.Tensor('float32', v, [1, heads, sk, d]),
    };
    found[`${peer} Attention is_causal`] = which((await sessions[peer].causal1.run(feeds)).O.data);
    // com.microsoft MHA on 8 heads of 8 (q, k, v [1, 8, 64]: the layout does not matter to which()).
    const mq = randomArray(8 * 8 * 8, 8);
    const mk = randomArray(8 * 8 * 8, 9);
    const mv = randomArray(8 * 8 * 8, 10);
    const mhaBase = { batch: 1, heads: 8, seqQ: 8, seqK: 8, headDim: 8, layout: 'bshd' };
    const ms = (await sessions[peer].ms8.run({
      Q: new ort.Tensor('float32', mq, [1, 8, 64]),
      K: new ort.Tensor('float32', mk, [1, 8, 64]),
      V: new ort.Tensor('float32', mv, [1, 8, 64]),
    })).O.data;
    const causalMs = maxAbsDiff(ms, rw.attention(mq, mk, mv, { ...mhaBase, causal: true })) <= 1e-5;
    const plainMs = maxAbsDiff(ms, rw.attention(mq, mk, mv, { ...mhaBase, causal: false })) <= 1e-5;
    found[`${peer} com.microsoft MultiHeadAttention`] = causalMs ? 'causal' : plainMs ? 'none' : 'unknown';
  }
  log(`  onnxruntime masks: ${Object.entries(found).map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  for (const [what, value] of Object.entries(found)) {
    const expected = what.endsWith('is_causal') ? 'top-left' : 'none';
    if (value !== expected) {
      throw new Error(`${what} is ${value}, not ${expected}: this benchmark's choice of models assumes ${expected}`);
    }
  }
}

const fixed = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const ratio = (value) => (Number.isFinite(value) ? `${value.toFixed(value < 10 ? 2 : 1)}x` : '-');
const MiB = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

// float32 <-> the bit patterns of float16 / bfloat16 (round to nearest even), for the 16-bit rows.
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
function toFloat16Bits(x) {
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  if (!(a < 65520)) return Number.isNaN(a) ? 0x7e00 : sign | 0x7c00;
  if (a < 2 ** -14) return sign | Math.round(a * 2 ** 24);
  F32[0] = a;
  const bits = U32[0];
  return sign | (((bits + 0xfff + ((bits >>> 13) & 1)) >>> 13) - (112 << 10));
}
function fromFloat16Bits(h) {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const value = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -value : value;
}
function toBfloat16Bits(x) {
  F32[0] = x;
  const bits = U32[0];
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}
function fromBfloat16Bits(h) {
  U32[0] = h << 16;
  return F32[0];
}

// ---------------------------------------------------------------------------------------------
// The attention options, against the plain kernel and onnxruntime-node, in one run.

async function optionsBench() {
  const { singleNodeModel } = await import('../helpers/onnx-model.js');
  const rw = await loadRope();
  const [heads, seq, d] = [8, 512, 64];
  const n = heads * seq * d;
  const [q, k, v] = [1, 2, 3].map((seed) => randomArray(n, seed));
  const tensors = [q, k, v].map((a) => {
    const t = rw.tensor(n);
    t.data.set(a);
    return t;
  });
  const out = rw.tensor(n);
  const boolMask = new Uint8Array(seq * seq);
  const addMask = new Float32Array(seq * seq).fill(-Infinity);
  for (let i = 0; i < seq; i++) {
    boolMask.fill(1, i * seq, i * seq + i + 1);
    addMask.fill(0, i * seq, i * seq + i + 1);
  }
  const padding = new Uint8Array(seq).fill(1).fill(0, seq - 32);
  const shape = { batch: 1, heads, seqQ: seq, headDim: d, out };
  const rows = [
    ['plain', 'causal flag (plain kernel)', { ...shape, causal: true }],
    ['full', 'not causal, no mask (the work of a [512, 512] mask)', { ...shape }],
    ['bool', 'boolean causal mask [512, 512]', { ...shape, mask: boolMask }],
    ['additive', 'additive causal mask [512, 512] (0 / -inf)', { ...shape, mask: addMask }],
    ['padding', 'causal + key-padding mask [1, 1, 1, 512]', { ...shape, causal: true, mask: padding, maskShape: [1, 1, 1, seq] }],
    ['softcap', 'causal + softcap 50', { ...shape, causal: true, softcap: 50 }],
  ];
  const expected = rw.attention(q, k, v, { batch: 1, heads, seqQ: seq, headDim: d, causal: true });
  const calls = [];
  for (const [key, label, options] of rows) {
    const call = () => rw.attention(...tensors, options);
    call();
    const err = maxAbsDiff(out.data, expected);
    if (key !== 'padding' && key !== 'softcap' && key !== 'full' && !(err <= TOLERANCE * maxAbs(expected))) {
      throw new Error(`${label}: differs from the causal flag by ${err}`);
    }
    calls.push({ key, label, call, async: false });
  }
  // onnxruntime-node and onnxruntime-web (wasm, 1 thread): opset-23 Attention (is_causal = 1 is
  // top-left, the same as bottom-right on a square), and the same with the additive mask as input.
  const dims = [1, heads, seq, d];
  const io = (name) => ({ name, type: 'float', dims });
  ortWeb.env.wasm.numThreads = 1;
  const peers = [
    ['ort', 'onnxruntime-node', ortNode, { intraOpNumThreads: 1, interOpNumThreads: 1 }],
    ['web', 'onnxruntime-web', ortWeb, { executionProviders: ['wasm'] }],
  ];
  for (const [prefix, peerName, ort, sessionOptions] of peers) {
    for (const [kind, what, masked] of [['Causal', 'is_causal', false], ['Mask', 'additive mask [512, 512]', true]]) {
      const inputs = [io('Q'), io('K'), io('V')];
      if (masked) inputs.push({ name: 'M', type: 'float', dims: [seq, seq] });
      const model = singleNodeModel({ opType: 'Attention', opset: 23, inputs, outputs: [io('Y')], attributes: { is_causal: masked ? undefined : 1 } });
      const session = await ort.InferenceSession.create(model, sessionOptions);
      const feeds = { Q: new ort.Tensor('float32', q, dims), K: new ort.Tensor('float32', k, dims), V: new ort.Tensor('float32', v, dims) };
      if (masked) feeds.M = new ort.Tensor('float32', addMask, [seq, seq]);
      const label = `${peerName}, ${what}`;
      const y = (await session.run(feeds)).Y.data;
      const err = maxAbsDiff(y, expected);
      if (!(err <= TOLERANCE * maxAbs(expected))) throw new Error(`${label}: differs from rope-wasm by ${err}`);
      calls.push({ key: `${prefix}${kind}`, label, call: () => session.run(feeds), async: true });
    }
  }
  // 16-bit tensors in and out (Uint16Array bit patterns, converted in the kernel) against float32
  // arrays in and out (both copied into wasm memory at each call), causal; onnxruntime-node's
  // float16 Attention alongside (it has no bfloat16 kernel).
  const causalArrays = { batch: 1, heads, seqQ: seq, headDim: d, causal: true };
  const halves = { float16: [q, k, v].map((a) => Uint16Array.from(a, toFloat16Bits)),
    bfloat16: [q, k, v].map((a) => Uint16Array.from(a, toBfloat16Bits)) };
  calls.push({ key: 'f32arrays', label: 'causal, float32 arrays in and out (copied)', call: () => rw.attention(q, k, v, causalArrays), async: false });
  for (const [dtype, key] of [['float16', 'f16'], ['bfloat16', 'bf16']]) {
    const call = () => rw.attention(...halves[dtype], { ...causalArrays, dtype });
    const y = call();
    const back = dtype === 'float16' ? fromFloat16Bits : fromBfloat16Bits;
    let err = 0;
    for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(back(y[i]) - expected[i]));
    if (!(err <= (dtype === 'float16' ? 2e-3 : 1.6e-2) * maxAbs(expected))) throw new Error(`${dtype}: differs from float32 by ${err}`);
    calls.push({ key, label: `causal, ${dtype} in and out (Uint16Array, copied)`, call, async: false });
  }
  {
    const io16 = (name) => ({ name, type: 'float16', dims });
    const model = singleNodeModel({ opType: 'Attention', opset: 23, inputs: [io16('Q'), io16('K'), io16('V')], outputs: [io16('Y')], attributes: { is_causal: 1 } });
    const session = await ortNode.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const feeds = Object.fromEntries(['Q', 'K', 'V'].map((name, i) => [name, new ortNode.Tensor('float16', halves.float16[i], dims)]));
    await session.run(feeds);
    calls.push({ key: 'ortF16', label: 'onnxruntime-node, is_causal, float16', call: () => session.run(feeds), async: true });
  }
  // Interleaved rounds, a new order each round; median per row.
  const samples = new Map(calls.map((c) => [c.key, []]));
  const rounds = QUICK ? 4 : 16;
  for (const c of calls) {
    for (let i = 0; i < 5; i++) await (c.async ? timeAsync(c.call, 1) : timeSync(c.call, 1));
  }
  for (let round = 0; round < rounds; round++) {
    for (const c of shuffled(calls, round + 1)) {
      for (let i = 0; i < 3; i++) samples.get(c.key).push(await (c.async ? timeAsync(c.call, 1) : timeSync(c.call, 1)));
    }
  }
  const ms = Object.fromEntries([...samples].map(([key, list]) => [key, median(list)]));
  for (const t of [...tensors, out]) t.dispose();
  log('options: [1, 8, 512, 64] done');

  // Sliding window 256 over 16,384 tokens against full causal over 16,384, in a fresh instance.
  const big = await loadRope();
  const long = 16384;
  const m = heads * long * d;
  const [bq, bk, bv] = [0, 1, 2].map(() => big.tensor(m));
  for (const [i, t] of [bq, bk, bv].entries()) t.data.set(randomArray(m, 10 + i));
  const bout = big.tensor(m);
  const longShape = { batch: 1, heads, seqQ: long, headDim: d, out: bout };
  const window = () => big.attention(bq, bk, bv, { ...longShape, causal: true, window: { left: 255 } });
  const full = () => big.attention(bq, bk, bv, { ...longShape, causal: true });
  const s256 = [0, 1, 2, 3].map(() => big.tensor(heads * 256 * d));
  for (const t of s256) t.data.set(randomArray(heads * 256 * d, 20));
  const short = () => big.attention(s256[0], s256[1], s256[2], { batch: 1, heads, seqQ: 256, headDim: d, causal: true, out: s256[3] });
  window();
  const windowSamples = [];
  const fullSamples = [];
  const shortSamples = [];
  for (let round = 0; round < (QUICK ? 1 : 3); round++) {
    fullSamples.push(timeSync(full, 1));
    for (let i = 0; i < 5; i++) windowSamples.push(timeSync(window, 1));
    for (let i = 0; i < 20; i++) shortSamples.push(timeSync(short, 1));
  }
  const windowMs = median(windowSamples);
  const fullMs = median(fullSamples);
  const shortMs = median(shortSamples);
  for (const t of [bq, bk, bv, bout, ...s256]) t.dispose();
  log('options: sliding window done');

  const lines = [];
  lines.push('');
  lines.push(`Attention options, [1, 8, 512, 64] float32, zero-copy q/k/v/out (masks are arrays, copied in at each call); median of ${rounds} interleaved rounds; same run.`);
  lines.push('');
  lines.push('| case | ms | causal flag ms / this ms | not causal ms / this ms | onnxruntime-node ms / this ms | onnxruntime-web ms / this ms |');
  lines.push('| --- | --- | --- | --- | --- | --- |');
  for (const c of calls) {
    const masked = c.key === 'additive' || c.key === 'bool';
    const half = c.key === 'f16' || c.key === 'bf16';
    const peer = c.key.startsWith('ort') || c.key.startsWith('web');
    const node = masked ? ms.ortMask : half ? ms.ortF16 : ms.ortCausal;
    const web = masked ? ms.webMask : half ? undefined : ms.webCausal;
    lines.push(`| ${c.label} | ${fixed(ms[c.key], 3)} | ${ratio(ms.plain / ms[c.key])} | ${ratio(ms.full / ms[c.key])} | `
      + `${peer ? '-' : ratio(node / ms[c.key])} | ${peer || web === undefined ? '-' : ratio(web / ms[c.key])} |`);
  }
  lines.push('');
  lines.push('(onnxruntime columns: against its masked model for the mask rows, its float16 model for the 16-bit rows (onnxruntime-node only), its is_causal model for the others.)');
  lines.push(`16-bit tensors in and out against float32 arrays in and out (all copied at each call), causal: float16 ${ratio(ms.f32arrays / ms.f16)} the speed of float32, bfloat16 ${ratio(ms.f32arrays / ms.bf16)}.`);
  lines.push(`Sliding window, causal, left 255 (256 keys per query), [1, 8, 16384, 64], zero-copy: ${fixed(windowMs, 1)} ms; full causal over the same 16,384 tokens: ${fixed(fullMs, 0)} ms: ${ratio(fullMs / windowMs)} faster; causal over 256 tokens: ${fixed(shortMs, 2)} ms (x 64 = ${fixed(shortMs * 64, 1)} ms, the window's work in 256-token pieces).`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main() {
  if (!existsSync(NATIVE)) throw new Error(`${NATIVE} is missing: run ./build.sh native`);
  if (!existsSync(PEERS)) throw new Error(`${PEERS} is missing: the ONNX models of the peers live there`);

  const rw = await loadRope();
  if (!rw.simd) throw new Error('this engine has no WebAssembly SIMD128: nothing to benchmark');

  ortWeb.env.wasm.numThreads = 1;
  const sessions = { web: {}, node: {} };
  const models = { causal0: 'attention_opset23_causal0', causal1: 'attention_opset23_causal1', ms8: 'mha_ms_heads8',
    ms16: 'mha_ms_heads16' };
  for (const [name, file] of Object.entries(models)) {
    const model = join(PEERS, `${file}.onnx`);
    sessions.web[name] = await ortWeb.InferenceSession.create(model, { executionProviders: ['wasm'] });
    sessions.node[name] = await ortNode.InferenceSession.create(model, {
      executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1,
    });
    for (const session of [sessions.web[name], sessions.node[name]]) {
      const names = `${session.inputNames.join(',')} -> ${session.outputNames.join(',')}`;
      if (names !== 'Q,K,V -> O') throw new Error(`${model}: ${names}, expected Q,K,V -> O`);
    }
  }
  log('onnxruntime models: inputs Q,K,V, output O');
  await probeSemantics(rw, sessions);

  const tmp = mkdtempSync(join(tmpdir(), 'attention-bench-'));
  const results = new Map();
  try {
    for (const c of CASES) results.set(c.key, await runCase({ rw, sessions, tmp }, c));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const long = await runLong(LONG);

  // One table: for each row, the ratio of a peer's time to this row's time (> 1: this row is
  // faster). Against onnxruntime, the fastest of its rows in the case (all time plain attention:
  // a row doing more, RoPE or the whole MHA, is marked †, a lower bound); against native C, the
  // native row doing the same work.
  const lines = [];
  const roundsText = CASES.map((c) => c.rounds).join('/');
  lines.push(`Attention, float32, layout bhsd (the MHA: x [seq, batch, d_model]), scale 1/sqrt(head_dim), single thread; median of ${roundsText} interleaved rounds${QUICK ? ' (--quick)' : ''}; Node ${process.version}, ${cpus()[0].model}, ${cpus().length} cores.`);
  lines.push('GFLOP/s count 4 * seqQ * seqK * headDim * heads per attention, halved for a causal square; the MHA adds its 4 projections (2 * seq * dModel^2 each). "x peer" = the peer\'s ms / this row\'s ms (> 1: this row is faster).');
  lines.push('');
  lines.push('| case | implementation | ms | GFLOP/s | x onnxruntime-web | x onnxruntime-node | x native C |');
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  const vsPeer = (rows, row, prefix) => {
    const peerMs = Math.min(...rows.filter((r) => r.key.startsWith(prefix)).map((r) => r.ms));
    const value = ratio(peerMs / row.ms);
    return row.work === 'attention' || value === '-' ? value : `${value} †`;
  };
  const vsNative = (rows, row) => {
    const nat = rows.find((r) => r.key.startsWith('native') && r.work === row.work);
    return nat ? ratio(nat.ms / row.ms) : '-';
  };
  const flopsOf = (c, row) => {
    if (c.kind !== 'mha') return attentionFlops(c);
    return row.work === 'mha' ? mhaFlops(c) : attentionFlops(mhaAttentionShape(c));
  };
  for (const c of CASES) {
    const rows = results.get(c.key);
    for (const row of rows) {
      const ms = row.ms;
      const cells = [c.label, row.label, fixed(ms, ms < 10 ? 3 : ms < 100 ? 2 : 1), fixed(flopsOf(c, row) / (ms * 1e6), 2),
        vsPeer(rows, row, 'ortWeb'), vsPeer(rows, row, 'ortNode'), vsNative(rows, row)];
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  lines.push('');
  lines.push('Notes:');
  lines.push('- onnxruntime runs /work/shared/peers models. ONNX opset-23 Attention\'s is_causal is top-left aligned (checked here: with seqQ < seqK, query i sees keys j <= i), rope-wasm\'s bottom-right; so the causal squares use attention_opset23_causal1.onnx and decoding uses attention_opset23_causal0.onnx (no mask): the one, last query sees all 4,096 keys either way.');
  lines.push('- com.microsoft MultiHeadAttention (mha_ms_heads8/16.onnx, Q/K/V [B, S, H*D]) has no causal (unidirectional) attribute in these models (checked: its output is unmasked attention), so it runs only in the decode case (mha_ms_heads8); its rows there are timed with K and V already in [B, S, H*D].');
  lines.push('- † the row does more than onnxruntime\'s: RoPE inside, or the whole MHA (4 linears + RoPE + attention); onnxruntime\'s Attention has no RoPE, so the ratio is a lower bound.');
  lines.push('- ‡ onnxruntime has no single op for the seed\'s RotaryPEMultiHeadAttention: its rows time the attention part only (opset-23 Attention, is_causal, on the projected, rotated q, k, v [1, 16, 512, 8], made here in plain JS), checked against and compared with "rope-wasm attention part only" on the same inputs. Native C has no attention-only MHA row ("-").');
  lines.push(`- (*) a call over ${ONCE_MS / 1000} s is timed once, by the call that checked its output, not in the rounds.`);
  lines.push('- RoPE rows: half pairing over all 64 features, base 10000, q at positions seqK - seqQ + i, k at j; their "x native C" is against native C with the same RoPE.');
  lines.push('');
  const goals = [['onnxruntime-web', 'ortWeb', 3], ['onnxruntime-node', 'ortNode', 0.5]];
  lines.push('Goals (peer ms / rope-wasm ms, same run):');
  for (const [name, prefix, target] of goals) {
    const parts = [];
    let met = true;
    for (const c of CASES) {
      const rows = results.get(c.key);
      const peerMs = Math.min(...rows.filter((r) => r.key.startsWith(prefix)).map((r) => r.ms));
      const get = (key) => peerMs / rows.find((r) => r.key === key).ms;
      if (c.kind === 'mha') {
        // Like for like: the attention part; the whole MHA against ORT's attention part is a lower bound.
        const part = get('partZeroCopy');
        met &&= part >= target;
        parts.push(`${c.label}: attention part (zero-copy) ${ratio(part)}; whole MHA ${ratio(get('e2e'))} (lower bound)`);
      } else {
        const e2e = get('e2e');
        const zc = get('zeroCopy');
        met &&= e2e >= target && zc >= target;
        parts.push(`${c.label}: end to end ${ratio(e2e)}, zero-copy ${ratio(zc)}`);
      }
    }
    lines.push(`- >= ${target}x ${name} on every shape: ${met ? 'met' : 'NOT met'}. ${parts.join('; ')}.`);
  }
  lines.push('');
  lines.push(`${LONG.label}, zero-copy, one call in a fresh instance: ${fixed(long.ms, 0)} ms (${fixed(attentionFlops(LONG) / (long.ms * 1e6), 2)} GFLOP/s); rw.memoryBytes after it: ${MiB(long.memoryAfter)} (${MiB(long.memoryBefore)} at instantiation, ${MiB(long.memoryTensors)} with the q, k, v and out tensors, ${MiB(long.tensorBytes)} of data).`);
  process.stdout.write(`${lines.join('\n')}\n`);
  log('done');
}

// ---------------------------------------------------------------------------------------------
// KV-cache decoding (rw.kvCache, c/kv_cache.h): a loop of 512 decoding steps, 8 heads of 64,
// batch 1, float32, from an empty cache and after a prompt of 512 tokens. Each step appends one
// token's k and v and attends its query over every cached token (causal bottom-right; the query
// is the newest token). Rows, all in this run, interleaved rounds, median per row:
//   kvCache: rw.kvCache, append + attend (Float32Arrays of one token in and out);
//   re-pass: the whole cache as Float32Arrays passed to rw.attention each step (seqK = t + 1,
//     layout sbhd: copied into wasm memory at each call);
//   rw.attention past/present: ONNX style, pastKey/pastValue in, presentKey/presentValue out and
//     fed back (a concatenation per step, as ONNX Attention does);
//   onnxruntime-node: an opset-23 Attention with past_key/past_value inputs and
//     present_key/present_value outputs (built here), present fed back as past each step.
// Every row's 512 outputs are checked against the kvCache row's before anything is timed.
// Timed: the whole loop, the cache's creation and the prompt's append (or its upload) included.

async function kvCacheBench() {
  const { singleNodeModel } = await import('../helpers/onnx-model.js');
  const rw = await loadRope();
  const [heads, d, steps, promptLength] = [8, 64, 512, 512];
  const row = heads * d;
  const maxLength = promptLength + steps;
  // token t: k and v rows [1, 8, 1, 64] (the same memory in every layout); K, V as sbhd [t, 1, 8, 64]
  const K = randomArray(maxLength * row, 41);
  const V = randomArray(maxLength * row, 42);
  const Q = randomArray(steps * row, 43);
  const token = (x, t) => x.subarray(t * row, (t + 1) * row);
  const toBhsd = (x, seq) => {
    const y = new Float32Array(seq * row);
    for (let s = 0; s < seq; s++) for (let h = 0; h < heads; h++) y.set(x.subarray((s * heads + h) * d, (s * heads + h + 1) * d), (h * seq + s) * d);
    return y;
  };
  const promptBhsd = { k: toBhsd(K, promptLength), v: toBhsd(V, promptLength) };
  const scenarios = [{ key: 'empty', label: 'from an empty cache (keys 1..512)', prompt: 0 },
    { key: 'prompt', label: 'after a prompt of 512 (keys 513..1024)', prompt: promptLength }];
  const base = { batch: 1, heads, seqQ: 1, headDim: d, causal: true };

  const kvCacheLoop = (prompt, outputs) => {
    const cache = rw.kvCache({ batch: 1, kvHeads: heads, headDim: d });
    if (prompt) cache.append(K.subarray(0, prompt * row), V.subarray(0, prompt * row), { layout: 'sbhd' });
    const out = new Float32Array(row);
    for (let i = 0; i < steps; i++) {
      cache.append(token(K, prompt + i), token(V, prompt + i));
      cache.attend(token(Q, i), { heads, out });
      outputs?.push(out.slice());
    }
    cache.dispose();
  };
  const rePassLoop = (prompt, outputs) => {
    const out = new Float32Array(row);
    for (let i = 0; i < steps; i++) {
      const n = prompt + i + 1;
      rw.attention(token(Q, i), K.subarray(0, n * row), V.subarray(0, n * row), { ...base, seqK: n, layout: 'sbhd', out });
      outputs?.push(out.slice());
    }
  };
  const pastPresentLoop = (prompt, outputs) => {
    let pastKey = prompt ? promptBhsd.k : new Float32Array(0);
    let pastValue = prompt ? promptBhsd.v : new Float32Array(0);
    for (let i = 0; i < steps; i++) {
      const r = rw.attention(token(Q, i), token(K, prompt + i), token(V, prompt + i), { ...base, pastKey, pastValue, returnPresent: true });
      ({ presentKey: pastKey, presentValue: pastValue } = r);
      outputs?.push(r.output);
    }
  };
  const dims = (seq) => [1, heads, seq, d];
  const model = singleNodeModel({
    opType: 'Attention', opset: 23,
    inputs: [{ name: 'Q', type: 'float', dims: dims(1) }, { name: 'K', type: 'float', dims: dims(1) },
      { name: 'V', type: 'float', dims: dims(1) }, { name: '', type: 'float', dims: [1] },
      { name: 'PK', type: 'float', dims: dims('P') }, { name: 'PV', type: 'float', dims: dims('P') }],
    outputs: [{ name: 'Y', type: 'float', dims: dims(1) }, { name: 'PKo', type: 'float', dims: dims('T') },
      { name: 'PVo', type: 'float', dims: dims('T') }],
    attributes: { is_causal: 1 },
  });
  const session = await ortNode.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const ortLoop = async (prompt, outputs) => {
    let pk = new ortNode.Tensor('float32', prompt ? promptBhsd.k : new Float32Array(0), dims(prompt));
    let pv = new ortNode.Tensor('float32', prompt ? promptBhsd.v : new Float32Array(0), dims(prompt));
    for (let i = 0; i < steps; i++) {
      const t = (x, j) => new ortNode.Tensor('float32', token(x, j), dims(1));
      const r = await session.run({ Q: t(Q, i), K: t(K, prompt + i), V: t(V, prompt + i), PK: pk, PV: pv });
      pk = r.PKo;
      pv = r.PVo;
      outputs?.push(r.Y.data);
    }
  };
  const impls = [
    { key: 'cache', label: 'rope-wasm kvCache (append + attend)', loop: kvCacheLoop, async: false },
    { key: 'repass', label: 'rope-wasm rw.attention, whole cache re-passed each step', loop: rePassLoop, async: false },
    { key: 'past', label: 'rope-wasm rw.attention with pastKey/pastValue -> present', loop: pastPresentLoop, async: false },
    { key: 'ort', label: 'onnxruntime-node Attention-23 with past_key/past_value -> present', loop: ortLoop, async: true },
  ];
  // Check: every row's outputs equal the kvCache's.
  for (const s of scenarios) {
    const expected = [];
    kvCacheLoop(s.prompt, expected);
    for (const impl of impls.slice(1)) {
      const got = [];
      await impl.loop(s.prompt, got);
      let err = 0;
      let mag = 0;
      for (let i = 0; i < steps; i++) {
        err = Math.max(err, maxAbsDiff(got[i], expected[i]));
        mag = Math.max(mag, maxAbs(expected[i]));
      }
      if (!(err <= TOLERANCE * mag)) throw new Error(`kv cache, ${s.label}: ${impl.label} differs from the kvCache by ${err}`);
    }
  }
  log('kv cache: outputs checked');
  const calls = [];
  for (const s of scenarios) {
    for (const impl of impls) calls.push({ key: `${s.key}:${impl.key}`, s, impl, call: () => impl.loop(s.prompt) });
  }
  const samples = new Map(calls.map((c) => [c.key, []]));
  const rounds = QUICK ? 2 : 7;
  for (let round = 0; round < rounds; round++) {
    for (const c of shuffled(calls, round + 101)) {
      samples.get(c.key).push(await (c.impl.async ? timeAsync(c.call, 1) : timeSync(c.call, 1)));
    }
  }
  const ms = Object.fromEntries([...samples].map(([key, list]) => [key, median(list)]));
  log('kv cache: done');
  const lines = ['', `KV-cache decoding: ${steps} steps, batch 1, 8 heads of 64, float32, one query per step over every cached key; median of ${rounds} interleaved rounds; same run.`, '',
    '| scenario | implementation | ms per 512 steps | µs per step | re-pass ms / this ms | onnxruntime-node ms / this ms |',
    '| --- | --- | ---: | ---: | ---: | ---: |'];
  for (const c of calls) {
    const t = ms[c.key];
    lines.push(`| ${c.s.label} | ${c.impl.label} | ${fixed(t, 1)} | ${fixed((t * 1000) / steps, 1)} | ${ratio(ms[`${c.s.key}:repass`] / t)} | ${ratio(ms[`${c.s.key}:ort`] / t)} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (KV_CACHE_ONLY) {
  await kvCacheBench();
} else if (OPTIONS_ONLY) {
  await optionsBench();
} else {
  await main();
  await optionsBench();
  await kvCacheBench();
}
