/**
 * Where the sampler and the engine meet. The sampler decides what to feed and how tokens
 * may attend (docs/design.md section 1, models/train/SAMPLING.md); the engine runs the graph of
 * docs/design.md section 3 and owns the keys/values it caches. Neither imports the other.
 */

/**
 * Cached keys/values of B rows (one row per guidance branch or per batched request),
 * owned by the denoiser that created it. The sampler only reads its length and disposes of
 * it when sampling ends, however it ends.
 */
export interface KvCache {
  /** Rows. */
  readonly batch: number;
  /** Cached tokens per row (C); every row has the same count, padding included. */
  readonly length: number;
  /** Frees the memory; later use is an error. Safe to call twice. */
  dispose(): void;
}

/**
 * One forward pass of B rows of N tokens.
 *
 * `attnBias` is row-major [B, N, C + N] (columns: the cache, then the current tokens);
 * 0 = may attend, `maskValue` = may not. Padding is expressed in the bias alone.
 */
export interface ForwardInput {
  readonly batch: number;
  /** N, tokens per row. */
  readonly length: number;
  /** [B * N] token ids. */
  readonly inputIds: Int32Array;
  /** [B * N] position ids. */
  readonly positionIds: Int32Array;
  /** [B * N * (C + N)]. */
  readonly attnBias: Float32Array;
  /** The cache to attend to (C = its length); absent for a dense call (C = 0). */
  readonly cache?: KvCache;
  /** After the pass, the keys/values of the first `append` tokens of every row join `cache`. */
  readonly append?: number;
  /** Rows [start, start + count) of every row's tokens whose logits are returned. */
  readonly read: { readonly start: number; readonly count: number };
}

export interface ForwardOutput {
  /** [B * read.count * vocab] logits. */
  readonly logits: Float32Array;
  readonly vocab: number;
}

/** A denoiser as the sampler sees it. */
export interface Denoiser {
  /** The additive bias value meaning "may not attend". */
  readonly maskValue: number;
  /** An empty cache of `batch` rows. */
  createCache(batch: number): KvCache;
  forward(input: ForwardInput): Promise<ForwardOutput>;
}
