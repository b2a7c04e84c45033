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
  dispose(): void;
  [Symbol.dispose](): void;
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
  /** bottom-right aligned: query i sees keys j <= i + seqK - seqQ (KV-cache decoding). Default false. */
  causal?: boolean;
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
}

export interface AttentionWithWeights<T> {
  output: T;
  /** [batch, heads, seqQ, seqK]; rows that see no key are all 0 */
  weights: Float32Array;
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
  /** softmax(scale q k^T [+ causal mask]) v; rows that see no key are zeros. */
  attention(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor, v: Float32Array | WasmTensor,
    options: AttentionOptions & { returnWeights?: false; out?: undefined }): Float32Array;
  attention<T extends Float32Array | WasmTensor>(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor,
    v: Float32Array | WasmTensor, options: AttentionOptions & { returnWeights?: false; out: T }): T;
  attention(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor, v: Float32Array | WasmTensor,
    options: AttentionOptions & { returnWeights: true; out?: undefined }): AttentionWithWeights<Float32Array>;
  attention<T extends Float32Array | WasmTensor>(q: Float32Array | WasmTensor, k: Float32Array | WasmTensor,
    v: Float32Array | WasmTensor, options: AttentionOptions & { returnWeights: true; out: T }): AttentionWithWeights<T>;
  rotaryMultiHeadAttention(options: RotaryMultiHeadAttentionOptions): RotaryMultiHeadAttention;
  /** A zero-filled tensor of `length` float32 elements in wasm memory. */
  tensor(length: number): WasmTensor;
  /** Bytes of the wasm heap in use by malloc. */
  heapInUse(): number;
}
