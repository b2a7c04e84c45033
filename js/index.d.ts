// Types of the rope-wasm package.

/** Options of loadRope. */
export interface LoadOptions {
  /** true: require the SIMD build; false: force the scalar build; undefined: SIMD when supported. */
  simd?: boolean;
}

/** Loads a new instance of the WebAssembly module (its own memory). */
export function loadRope(options?: LoadOptions): Promise<RopeModule>;

/** True when this engine supports WebAssembly SIMD128. */
export function simdSupported(): boolean;

/** Long-context frequency scaling, with the meaning of transformers' `rope_parameters`. */
export type RopeScaling =
  /** Position interpolation: every frequency divided by factor. */
  | { type: 'linear'; factor: number }
  /**
   * NTK-aware: base * ((factor * L / originalMaxPositions) - (factor - 1)) ^ (dim / (dim - 2)),
   * L = longest position + 1 seen since the last call within originalMaxPositions (transformers'
   * dynamic_frequency_update). originalMaxPositions is transformers' max_position_embeddings.
   */
  | { type: 'dynamic'; factor: number; originalMaxPositions: number }
  /** YaRN: ramp between interpolation and extrapolation; cos and sin scaled by the attention factor. */
  | {
      type: 'yarn';
      factor: number;
      originalMaxPositions: number;
      /** default 32 */
      betaFast?: number;
      /** default 1 */
      betaSlow?: number;
      mscale?: number;
      mscaleAllDim?: number;
      /** default: derived from factor (and mscale / mscaleAllDim when both are given) */
      attentionFactor?: number;
      /** floor/ceil the ramp bounds; default true */
      truncate?: boolean;
    }
  /** Llama 3.1: long wavelengths interpolated, short ones kept, a smooth band in between. */
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  /**
   * LongRoPE (Phi-3): per-frequency factors; a call whose longest position + 1 exceeds
   * originalMaxPositions uses longFactor, else shortFactor.
   */
  | {
      type: 'longrope';
      shortFactor: ArrayLike<number>;
      longFactor: ArrayLike<number>;
      originalMaxPositions: number;
      /** the extended context (transformers' max_position_embeddings) */
      maxPositions: number;
      /** default sqrt(1 + ln(maxPositions / originalMaxPositions) / ln(originalMaxPositions)) */
      attentionFactor?: number;
    };

export interface RotaryEmbeddingOptions {
  /** Rotary dimension: even, at most head_dim; features [dim, head_dim) pass through. */
  dim: number;
  /** theta; default 10000 */
  base?: number;
  /** 'half' (default: i with i + dim/2, the seed, GPT-NeoX, rotate_half) or 'interleaved' (2i with 2i+1). */
  pairing?: 'half' | 'interleaved';
  scaling?: RopeScaling | null;
}

/** Order of the four axes of x; the head vector is innermost in each. */
export type Layout = 'sbhd' | 'bshd' | 'bhsd';

export interface ApplyOptions {
  /** The 4 sizes in the order the layout names them. */
  shape: readonly [number, number, number, number] | readonly number[];
  /** default 'sbhd' ([seq, batch, heads, head_dim], the seed's) */
  layout?: Layout;
  /** Token s has position offset + s (KV-cache decoding). Default 0. */
  offset?: number;
  /** Explicit positions, length seq (shared by the batch) or batch * seq ([batch, seq]). */
  positions?: Int32Array | ArrayLike<number>;
  /** Rotate back by the transpose (RoPE's backward pass). Default false. */
  inverse?: boolean;
  /** Where to write the result (may be x itself). Default: a new Float32Array. */
  out?: Float32Array | WasmTensor;
}

export interface ScoresOptions {
  /** Features per vector: q.length / headDim queries, k.length / headDim keys; at least dim. */
  headDim: number;
  /** The position of each query (length nQ). Default 0, 1, ..., nQ - 1. Negative ones are legal. */
  positionsQ?: Int32Array | ArrayLike<number> | null;
  /** The position of each key (length nK). Default 0, 1, ..., nK - 1. */
  positionsK?: Int32Array | ArrayLike<number> | null;
  /** Multiplies every score: 1 (default) for raw dot products, 1 / sqrt(headDim) for attention logits. */
  scale?: number;
  /** Where to write the [nQ, nK] scores (a tensor must not be q or k). Default: a new Float32Array. */
  out?: Float32Array | WasmTensor;
}

export class RotaryEmbedding {
  readonly dim: number;
  readonly base: number;
  readonly pairing: 'half' | 'interleaved';
  /** The scaling with its defaults filled in, or null. */
  readonly scaling: RopeScaling | null;
  /** theta_i in force, Float64Array(dim / 2) (dynamic and longrope scaling change them per call). */
  readonly inverseFrequencies: Float64Array;
  /** cos and sin are multiplied by it (1 unless yarn or longrope). */
  readonly attentionScaling: number;
  /** The cos/sin cache: positions [first, first + rows); rowsComputed counts every row ever evaluated. */
  readonly cacheInfo: { first: number; rows: number; rowsComputed: number };
  readonly disposed: boolean;
  apply(x: Float32Array, options: ApplyOptions & { out?: undefined }): Float32Array;
  apply<T extends Float32Array | WasmTensor>(x: Float32Array | WasmTensor, options: ApplyOptions & { out: T }): T;
  apply(x: WasmTensor, options: ApplyOptions): Float32Array | WasmTensor;
  /**
   * The RoPE score matrix S[i][j] = scale * RoPE(q_i, positionsQ[i]) . RoPE(k_j, positionsK[j]),
   * computed by the module: q [nQ, headDim] and k [nK, headDim] row-major, features from dim on
   * passed through (they count in the dot products). Returns a new Float32Array [nQ, nK], or `out`.
   */
  scores(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor, options: ScoresOptions & { out?: undefined }): Float32Array;
  scores<T extends Float32Array | WasmTensor>(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor,
    options: ScoresOptions & { out: T }): T;
  dispose(): void;
  [Symbol.dispose](): void;
}

/**
 * Options of rw.applyRotaryWithCache: RoPE with the caller's cos/sin caches, the semantics of ONNX
 * RotaryEmbedding-23. Its attributes and inputs map as: X 4D [batch, num_heads, seq, head_size] =
 * `shape` (layout 'bhsd'); X 3D [batch, seq, hidden] = `shape` of 3 sizes with `numHeads`;
 * position_ids = `positionIds`; interleaved = `interleaved`; rotary_embedding_dim = `rotaryDim`;
 * num_heads = `numHeads`.
 */
export interface RotaryCacheOptions {
  /**
   * x's sizes: 4 in the order `layout` names them ([batch, heads, seq, headDim] by default, ONNX's
   * 4D input), or 3: [batch, seq, heads * headDim] (ONNX's 3D input), which needs numHeads.
   */
  shape: readonly [number, number, number, number] | readonly [number, number, number] | readonly number[];
  /** 4D shapes only: 'bhsd' (default, ONNX's), 'bshd' or 'sbhd'. */
  layout?: Layout;
  /**
   * ONNX's position_ids [batch, seq], each in [0, maxPosition): token (b, s) is rotated with row
   * positionIds[b * seq + s] of caches [maxPosition, rotaryDim/2] (maxPosition = cache length /
   * (rotaryDim/2)). Without them the caches are [batch, seq, rotaryDim/2], one row per token.
   */
  positionIds?: Int32Array | BigInt64Array | ArrayLike<number> | ArrayLike<bigint> | null;
  /** false (default): feature i pairs with i + rotaryDim/2; true: 2i with 2i + 1. */
  interleaved?: boolean;
  /** Features rotated at the start of each head vector: even, <= headDim; 0 or absent: headDim. */
  rotaryDim?: number;
  /** Heads of a 3D shape (required there); with a 4D shape 0, absent, or equal to its heads axis. */
  numHeads?: number;
  /** Rotate by the transpose of each 2x2 block (sin negated): the gradient with respect to x. */
  inverse?: boolean;
  /** Where to write the result (may be x itself). Default: a new Float32Array. */
  out?: Float32Array | WasmTensor;
}

/** A float32 array in wasm memory, for zero-copy calls. */
export class WasmTensor {
  readonly length: number;
  /** Byte offset in wasm memory. */
  readonly byteOffset: number;
  /** A fresh view of the wasm heap at each access: never keep it across calls. */
  readonly data: Float32Array;
  readonly disposed: boolean;
  dispose(): void;
  [Symbol.dispose](): void;
}

export interface AttentionOptions {
  batch: number;
  /** query heads */
  heads: number;
  /** key/value heads; divides heads (grouped-query; 1 = multi-query). Default heads. */
  kvHeads?: number;
  seqQ: number;
  /** default seqQ */
  seqK?: number;
  headDim: number;
  /** q, k, v and the output share it: 'bhsd' (default), 'bshd' or 'sbhd' */
  layout?: Layout;
  /**
   * true or 'bottom-right': query i sees keys j <= i + seqK - seqQ (KV-cache decoding; with
   * kvSeqLengths, seqK is the batch row's valid length); 'top-left': keys j <= i (PyTorch's
   * is_causal, ONNX's without past keys). Default false.
   */
  causal?: boolean | 'bottom-right' | 'top-left';
  /** size of v's and the output's head vectors; default headDim */
  valueHeadDim?: number;
  /**
   * Uint8Array: boolean, 0 = masked; Float32Array: added to the scaled scores (-inf = masked).
   * Combined with causal, window and kvSeqLengths. A row with no visible key gives zeros.
   */
  mask?: Uint8Array | Float32Array;
  /**
   * the mask's shape, broadcast (numpy rules) to [batch, heads, seqQ, seqK]: 2 to 4 sizes, each the
   * target's or 1. Default [seqQ, seqK], or [batch, heads, seqQ, seqK] when the length says so.
   */
  maskShape?: number[];
  /** scores s become softcap * tanh(s / softcap) after the mask (masked stay masked); 0 = none */
  softcap?: number;
  /**
   * sliding window around the query's (causal-aligned) position p: keys p - left ..= p + right;
   * -1 (default) = unbounded (ONNX left_window_size / right_window_size; Mistral: causal, left W - 1)
   */
  window?: { left?: number; right?: number };
  /** [batch] valid key counts in [0, seqK] (ONNX-24 nonpad_kv_seqlen): keys past them are masked */
  kvSeqLengths?: Int32Array | BigInt64Array | number[];
  /**
   * also return the scores [batch, heads, seqQ, seqK] at one stage (ONNX qk_matmul_output_mode):
   * 'raw' (scale q.k), 'masked' (+ mask, -inf where masked), 'softcapped', 'softmax'
   */
  returnScores?: 'raw' | 'masked' | 'softcapped' | 'softmax';
  /**
   * the element type of q, k, v and the output: 'float32' (default; Float32Array or tensors), or
   * 'float16' / 'bfloat16': Uint16Array bit patterns, converted in the kernel, computed in float32,
   * the output rounded to nearest even (NaN and inf kept). Masks, weights and scores stay float32.
   */
  dtype?: 'float32' | 'float16' | 'bfloat16';
  /** default 1 / sqrt(headDim) */
  scale?: number;
  /** RoPE applied inside the kernel to k at offset + j and to q at offset + seqK - seqQ + i */
  rope?: RotaryEmbedding;
  /** default 0 */
  offset?: number;
  /** also return the softmax weights [batch, heads, seqQ, seqK] */
  returnWeights?: boolean;
  /** where to write the output (may be q when q is a tensor) */
  out?: Float32Array | WasmTensor;
  /**
   * ONNX past_key [batch, kvHeads, pastSeq, headDim] (always this order): concatenated before k along
   * the sequence (seqK counts only the new k); masks and kvSeqLengths then see pastSeq + seqK keys.
   * Give pastValue [batch, kvHeads, pastSeq, valueHeadDim] with it.
   */
  pastKey?: Float32Array | WasmTensor;
  pastValue?: Float32Array | WasmTensor;
  /** also return ONNX present_key/present_value (the concatenations, [batch, kvHeads, pastSeq + seqK, dim]) */
  returnPresent?: boolean;
}

/** rw.attention with returnPresent: true. */
export interface AttentionWithPresent<T> {
  output: T;
  /** [batch, kvHeads, pastSeq + seqK, headDim] */
  presentKey: Float32Array;
  /** [batch, kvHeads, pastSeq + seqK, valueHeadDim] */
  presentValue: Float32Array;
  weights?: Float32Array;
  scores?: Float32Array;
}

export interface KvCacheOptions {
  batch: number;
  kvHeads: number;
  headDim: number;
  /** default headDim */
  valueHeadDim?: number;
  /** rotates keys at append (positions length + s, once) and queries at attend (length - seqQ + i) */
  rope?: RotaryEmbedding;
  /** tokens to allocate up front (default 0); the cache doubles when an append needs more */
  capacity?: number;
}

export interface KvAppendOptions {
  /** tokens in k and v; default k.length / (batch * kvHeads * headDim) */
  seq?: number;
  /** of k and v: 'bhsd' (default), 'bshd' or 'sbhd' */
  layout?: Layout;
}

/** rw.attention's options for the queries of the newest seqQ tokens; seqK is the cache length. */
export interface KvAttendOptions extends Pick<AttentionOptions, 'layout' | 'scale' | 'mask' | 'maskShape' | 'softcap' |
  'window' | 'kvSeqLengths' | 'returnWeights' | 'returnScores' | 'out'> {
  /** query heads, a multiple of kvHeads; default kvHeads */
  heads?: number;
  /** default q.length / (batch * heads * headDim) */
  seqQ?: number;
  /** default true (bottom-right: the last query sees every cached key) */
  causal?: boolean | 'bottom-right' | 'top-left';
}

/** A key/value cache in wasm memory for decoding (c/kv_cache.h). */
export class KvCache {
  readonly batch: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly valueHeadDim: number;
  readonly rope: RotaryEmbedding | null;
  /** tokens cached */
  readonly length: number;
  /** tokens that fit before the cache grows */
  readonly capacity: number;
  readonly disposed: boolean;
  /** appends k [batch, kvHeads, seq, headDim] and v [..., valueHeadDim]; returns the new length */
  append(k: Float32Array | WasmTensor, v: Float32Array | WasmTensor, options?: KvAppendOptions): number;
  /** attention of q [batch, heads, seqQ, headDim] over every cached token; output [batch, heads, seqQ, valueHeadDim] */
  attend(q: Float32Array | WasmTensor, options?: KvAttendOptions & { returnWeights?: false; returnScores?: undefined; out?: undefined }): Float32Array;
  attend<T extends Float32Array | WasmTensor>(q: Float32Array | WasmTensor,
    options: KvAttendOptions & { returnWeights?: false; returnScores?: undefined; out: T }): T;
  attend(q: Float32Array | WasmTensor, options: KvAttendOptions & ({ returnWeights: true } | { returnScores: NonNullable<AttentionOptions['returnScores']> })):
    { output: Float32Array | WasmTensor; weights?: Float32Array; scores?: Float32Array };
  /** keeps the first n tokens (0 <= n <= length) */
  truncate(n: number): void;
  /** empties the cache, keeping its memory */
  reset(): void;
  /** ONNX present_key: [batch, kvHeads, length, headDim] */
  presentKey(): Float32Array;
  /** ONNX present_value: [batch, kvHeads, length, valueHeadDim] */
  presentValue(): Float32Array;
  dispose(): void;
  [Symbol.dispose](): void;
}

export interface AttentionWithWeights<T> {
  output: T;
  /** [batch, heads, seqQ, seqK]; rows that see no key are all 0 */
  weights: Float32Array;
}

export interface AttentionWithScores<T> {
  output: T;
  /** [batch, heads, seqQ, seqK] at the stage returnScores names; masked entries -inf before 'softmax' */
  scores: Float32Array;
  /** with returnWeights: the softmax [batch, heads, seqQ, seqK] */
  weights?: Float32Array;
}

/** A PyTorch nn.Linear: weight [out, in] (y = x W^T + b), bias [out]. */
export interface LinearWeights {
  weight: Float32Array;
  bias: Float32Array;
}

export interface RotaryMultiHeadAttentionOptions {
  heads: number;
  dModel: number;
  /** RoPE on the first int(d_k * ropePercentage) features of each head of q and k; default 0.5 */
  ropePercentage?: number;
  /** default 10000 */
  base?: number;
  weights: { query: LinearWeights; key: LinearWeights; value: LinearWeights; output: LinearWeights };
}

/** The seed's RotaryPEMultiHeadAttention (self-attention: query = key = value = x). */
export class RotaryMultiHeadAttention {
  readonly heads: number;
  readonly dModel: number;
  readonly ropePercentage: number;
  readonly base: number;
  /** int(d_k * ropePercentage) */
  readonly ropeDim: number;
  readonly disposed: boolean;
  /**
   * x: [seq, batch, dModel]. mask: [seq, seq, batch or 1], 0 = masked (the seed's prepare_mask).
   * Returns y [seq, batch, dModel]. A query that sees no key gets the output bias.
   */
  forward(x: Float32Array | WasmTensor, options: { seq: number; batch: number; causal?: boolean; mask?: Uint8Array }): Float32Array;
  dispose(): void;
  [Symbol.dispose](): void;
}

export class RopeModule {
  /** True when this instance runs the wasm SIMD128 build. */
  readonly simd: boolean;
  /** Current size of the wasm memory in bytes. */
  readonly memoryBytes: number;
  /** The raw WebAssembly exports (malloc, free, rope_*): for advanced use. */
  readonly exports: WebAssembly.Exports;
  rotaryEmbedding(options: RotaryEmbeddingOptions): RotaryEmbedding;
  /**
   * ONNX RotaryEmbedding-23: the first rotaryDim features of every head vector of x rotated with the
   * caller's cos and sin rows, used as given (any values, not necessarily cos and sin of an angle);
   * the other features pass through. cosCache, sinCache: [maxPosition, rotaryDim/2] with
   * positionIds, [batch, seq, rotaryDim/2] without. Returns a new Float32Array, or `out`.
   */
  applyRotaryWithCache(x: Float32Array | WasmTensor, cosCache: Float32Array | WasmTensor, sinCache: Float32Array | WasmTensor,
    options: RotaryCacheOptions & { out?: undefined }): Float32Array;
  applyRotaryWithCache<T extends Float32Array | WasmTensor>(x: Float32Array | WasmTensor, cosCache: Float32Array | WasmTensor,
    sinCache: Float32Array | WasmTensor, options: RotaryCacheOptions & { out: T }): T;
  /** softmax(scale q k^T [+ causal mask]) v; rows that see no key are zeros. */
  attention(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor, v: Float32Array | WasmTensor,
    options: AttentionOptions & { returnPresent: true; out?: undefined }): AttentionWithPresent<Float32Array>;
  attention<T extends Float32Array | WasmTensor>(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor,
    v: Float32Array | WasmTensor, options: AttentionOptions & { returnPresent: true; out: T }): AttentionWithPresent<T>;
  /** dtype 'float16' / 'bfloat16': q, k, v and the output are Uint16Array bit patterns */
  attention(q: Uint16Array, k: Uint16Array, v: Uint16Array, options: Omit<AttentionOptions, 'out' | 'dtype'> &
    { dtype: 'float16' | 'bfloat16'; returnWeights?: false; returnScores?: undefined; out?: Uint16Array }): Uint16Array;
  attention(q: Uint16Array, k: Uint16Array, v: Uint16Array, options: Omit<AttentionOptions, 'out' | 'dtype'> &
    { dtype: 'float16' | 'bfloat16'; out?: Uint16Array } & ({ returnWeights: true } | { returnScores: NonNullable<AttentionOptions['returnScores']> })):
    { output: Uint16Array; weights?: Float32Array; scores?: Float32Array };
  attention(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor, v: Float32Array | WasmTensor,
    options: AttentionOptions & { returnWeights?: false; returnScores?: undefined; out?: undefined }): Float32Array;
  attention<T extends Float32Array | WasmTensor>(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor,
    v: Float32Array | WasmTensor, options: AttentionOptions & { returnWeights?: false; returnScores?: undefined; out: T }): T;
  attention(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor, v: Float32Array | WasmTensor,
    options: AttentionOptions & { returnWeights: true; returnScores?: undefined; out?: undefined }): AttentionWithWeights<Float32Array>;
  attention<T extends Float32Array | WasmTensor>(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor,
    v: Float32Array | WasmTensor, options: AttentionOptions & { returnWeights: true; returnScores?: undefined; out: T }): AttentionWithWeights<T>;
  /** returnScores: {output, scores} (and weights with returnWeights) */
  attention(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor, v: Float32Array | WasmTensor,
    options: AttentionOptions & { returnScores: NonNullable<AttentionOptions['returnScores']>; out?: undefined }): AttentionWithScores<Float32Array>;
  attention<T extends Float32Array | WasmTensor>(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor,
    v: Float32Array | WasmTensor, options: AttentionOptions & { returnScores: NonNullable<AttentionOptions['returnScores']>; out: T }): AttentionWithScores<T>;
  rotaryMultiHeadAttention(options: RotaryMultiHeadAttentionOptions): RotaryMultiHeadAttention;
  /** A key/value cache in wasm memory for decoding: append new tokens, attend over all of them. */
  kvCache(options: KvCacheOptions): KvCache;
  /** The seed's character-level RoPE transformer, trainable in wasm. */
  transformer(options: TransformerOptions): Transformer;
  /** A zero-filled tensor of `length` float32 elements in wasm memory. */
  tensor(length: number): WasmTensor;
  /** Bytes of the wasm heap in use by malloc. */
  heapInUse(): number;
}

// -------------------------------------------------------------------------------------------------
// training: the seed's character-level RoPE transformer

export interface TransformerOptions {
  /** Vocabulary size (token ids 0 .. vocab-1); may be omitted when `vocabulary` is given. */
  vocab?: number;
  /** The characters of the vocabulary (token id = index): lets prompts and samples be strings. */
  vocabulary?: string;
  dModel: number;
  heads: number;
  layers: number;
  dFF: number;
  /** RoPE rotates the first int(d_k * ropePercentage) features of each head (default 1). */
  ropePercentage?: number;
  /** RoPE's theta base (default 10000). */
  base?: number;
  /** Seeds the initialisation (PyTorch's defaults: Linear U(+-1/sqrt(in)), Embedding N(0,1)). */
  seed?: number;
  /** The longest context generate() and attentionMaps() use (default 256). */
  contextLength?: number;
}

export interface TransformerConfig {
  readonly vocab: number;
  readonly dModel: number;
  readonly heads: number;
  readonly layers: number;
  readonly dFF: number;
  readonly ropePercentage: number;
  readonly base: number;
}

export interface TensorInfo {
  /** The PyTorch state_dict name, e.g. 'layers.0.self_attn.query.weight'. */
  readonly name: string;
  readonly shape: readonly number[];
  /** In floats from the start of the parameters. */
  readonly offset: number;
  readonly length: number;
}

export type LearningRateSchedule =
  | { type: 'constant' }
  | { type: 'cosine'; warmup?: number; totalSteps: number; finalFraction?: number }
  | { type: 'noam'; warmup: number };

export interface OptimizerOptions {
  /** 'adamw' (default; decoupled weight decay) or 'adam'. */
  type?: 'adamw' | 'adam';
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Clip the gradient's L2 norm to this (0 = off), as torch.nn.utils.clip_grad_norm_. */
  clipNorm?: number;
  schedule?: LearningRateSchedule;
}

export interface StepResult {
  step: number;
  /** The mean cross-entropy of the batch before the step. */
  loss: number;
  /** The gradient's L2 norm before clipping. */
  gradNorm: number;
  lr: number;
}

export type TokenIds = Int32Array | ArrayLike<number>;

export class Transformer {
  readonly config: TransformerConfig;
  readonly vocabulary: string | null;
  readonly contextLength: number;
  readonly simd: boolean;
  readonly paramCount: number;
  /** The parameter tensors in state_dict order. */
  readonly tensors: readonly TensorInfo[];
  /** Optimizer steps taken. */
  step: number;
  readonly optimizer: Readonly<Required<OptimizerOptions>> | null;
  readonly disposed: boolean;
  /** Every parameter, copied, keyed by state_dict name. */
  weights(): Record<string, Float32Array>;
  /** Replaces every parameter (all names, exact sizes; a {data, shape} value checks the shape). */
  loadWeights(weights: Record<string, Float32Array | ArrayLike<number> | { data: Float32Array | ArrayLike<number>; shape?: number[] }>): void;
  /** tokens, targets: [seq, batch]. The mean cross-entropy and its gradient, keyed by state_dict name. */
  lossAndGrads(tokens: TokenIds, targets: TokenIds, options: { seq: number; batch: number }): { loss: number; grads: Record<string, Float32Array> };
  loss(tokens: TokenIds, targets: TokenIds, options: { seq: number; batch: number }): number;
  /** [seq, batch, vocab] */
  logits(tokens: TokenIds, options: { seq: number; batch: number }): Float32Array;
  /** Per layer, [heads, seq, seq] causal softmax weights of one sequence. */
  attentionMaps(tokens: TokenIds | string): Float32Array[];
  configureOptimizer(options: OptimizerOptions): Readonly<Required<OptimizerOptions>>;
  /** The learning rate of a (1-based) step under the schedule. */
  learningRate(step?: number): number;
  /** One optimizer step; microBatches splits the batch as the multi-threaded trainer does. */
  trainStep(tokens: TokenIds, targets: TokenIds, options: { seq: number; batch: number; microBatches?: number }): StepResult;
  optimizerState(): { step: number; expAvg: Float32Array; expAvgSq: Float32Array } | null;
  loadOptimizerState(state: { step: number; expAvg: Float32Array; expAvgSq: Float32Array }): void;
  /** A string prompt needs a vocabulary and gives a string; token ids give an Int32Array. */
  generate(prompt: string, options?: GenerateOptions): string;
  generate(prompt: TokenIds, options?: GenerateOptions): Int32Array;
  /** Low level (data-parallel training): gradients of lossScale * sum of token losses. */
  computeGradients(tokens: TokenIds, targets: TokenIds, seq: number, batch: number, lossScale: number): number;
  gradientView(): Float32Array;
  parameterView(): Float32Array;
  accumulateGradients(grads: Float32Array | null): void;
  discardGradients(): void;
  applyOptimizer(): { step: number; gradNorm: number; lr: number };
  dispose(): void;
}

export interface GenerateOptions {
  maxTokens?: number;
  /** 0 = greedy (default 1). */
  temperature?: number;
  /** Sample among the topK likeliest (0 = all). */
  topK?: number;
  seed?: number;
  onToken?: (id: number, char: string | undefined) => void;
}

/** Data-parallel training over worker threads; same bits as 1 thread with the same microBatches. */
export class Trainer {
  readonly model: Transformer;
  readonly threads: number;
  readonly microBatches: number;
  step(tokens: Int32Array, targets: Int32Array, options: { seq: number; batch: number }): Promise<StepResult>;
  /** Token-weighted mean loss over batches of [seq, batch] windows. */
  evaluate(batches: { tokens: Int32Array; targets: Int32Array; batch: number }[], seq: number): Promise<number>;
  parametersChanged(): void;
  close(): Promise<void>;
}

export function createTrainer(model: Transformer, options?: { microBatches?: number; threads?: number }): Promise<Trainer>;

/** A character-level data set: the sorted characters are the vocabulary; 90% trains, 10% validates. */
export class CharDataset {
  constructor(text: string, vocabulary?: string);
  readonly vocabulary: string;
  readonly vocabSize: number;
  readonly tokens: Int32Array;
  readonly train: Int32Array;
  readonly valid: Int32Array;
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
  randomBatch(random: SeededRandom, seq: number, batch: number): { tokens: Int32Array; targets: Int32Array };
  validationBatches(seq: number, batch: number): { tokens: Int32Array; targets: Int32Array; batch: number }[];
}

/** splitmix32: reproducible randomness from one integer seed. */
export class SeededRandom {
  constructor(seed: number);
  state: number;
  nextUint32(): number;
  nextFloat(): number;
  nextInt(n: number): number;
}

// -------------------------------------------------------------------------------------------------
// checkpoints: safetensors

/** A safetensors dtype with whole-byte elements. F16, BF16 and the F8 types hold their raw bits. */
export type SafetensorsDtype =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'F8_E8M0' | 'I16' | 'U16' | 'F16' | 'BF16'
  | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

/** The typed array that holds each dtype. */
export interface SafetensorsArrays {
  BOOL: Uint8Array; U8: Uint8Array; I8: Int8Array; F8_E5M2: Uint8Array; F8_E4M3: Uint8Array; F8_E8M0: Uint8Array;
  I16: Int16Array; U16: Uint16Array; F16: Uint16Array; BF16: Uint16Array; I32: Int32Array; U32: Uint32Array;
  F32: Float32Array; F64: Float64Array; I64: BigInt64Array; U64: BigUint64Array;
}

/** A little-endian, row-major tensor: data.length is the product of shape (1 for a scalar, shape []). */
export type SafetensorsTensor = {
  [D in SafetensorsDtype]: { dtype: D; shape: number[]; data: SafetensorsArrays[D] };
}[SafetensorsDtype];

/** A file that is not valid safetensors, or not a valid rope-wasm checkpoint; the message names the problem. */
export class SafetensorsError extends Error {}

/**
 * The safetensors file of the tensors and metadata (string -> string), laid out as the reference
 * writer does: tensors sorted by dtype (widest first) then name, header padded with spaces to 8 bytes.
 */
export function encodeSafetensors(tensors: Record<string, SafetensorsTensor>, metadata?: Record<string, string> | null): Uint8Array;

/** Tensors as fresh, aligned copies; metadata null when the file has none. Throws SafetensorsError on a malformed file. */
export function decodeSafetensors(bytes: Uint8Array | ArrayBuffer): {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string> | null;
};

/** One entry of a PyTorch state_dict, e.g. 'layers.0.self_attn.query.weight'. */
export interface CheckpointWeight {
  shape: number[];
  data: Float32Array;
}

/** Adam(W) state: the hyperparameters (any JSON values) and both moments of every weight. */
export interface OptimizerState {
  /** e.g. 'adamw' */
  type: string;
  /** every weight once, in the order of the moments */
  names: string[];
  /** the first moments of the weights, concatenated in the order of names */
  expAvg: Float32Array;
  /** the second moments, in the same order */
  expAvgSq: Float32Array;
  /** lr, betas, eps, weightDecay, step, schedule, ... */
  [hyperparameter: string]: unknown;
}

export interface Checkpoint {
  /** the model config ({vocab, dModel, heads, layers, dFF, ropePercentage, base, ...}), stored as JSON */
  config: object;
  /** the vocabulary: character i is token i */
  vocab: string;
  /** a non-negative integer */
  step: number;
  /** the state_dict; the file's tensors are exactly these, as F32 */
  weights: Record<string, CheckpointWeight>;
  optimizer?: OptimizerState | null;
}

export interface DecodedCheckpoint {
  /** null for a plain safetensors file (a state_dict saved from PyTorch): the caller supplies it */
  config: Record<string, unknown> | null;
  vocab: string | null;
  step: number | null;
  weights: Record<string, CheckpointWeight>;
  optimizer: OptimizerState | null;
  /** the file's metadata as stored */
  metadata: Record<string, string> | null;
}

/** A training checkpoint as a safetensors file that PyTorch's load_file + load_state_dict read. */
export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array;

/** A checkpoint from its file; throws SafetensorsError on a corrupted file or metadata, or on a non-F32 tensor. */
export function decodeCheckpoint(bytes: Uint8Array | ArrayBuffer): DecodedCheckpoint;
