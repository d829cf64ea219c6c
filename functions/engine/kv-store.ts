/**
 * The keys/values of the caches a worker holds, per layer, as [batch, H, C, Dh] blocks at the
 * start of arrays with room to grow (`appendTokens`), so a step's append rarely allocates.
 * They live next to the session that reads them and never cross threads; the main thread
 * holds a KvCache handle naming one of them by id.
 */
import { appendTokens, type HeadDims, type KvBlock } from './kv-rows.ts';
import type { HeldCaches } from './protocol.ts';

interface StoredCache {
  readonly batch: number;
  length: number;
  /** Per layer; the first batch * H * length * Dh elements are the cache, the rest is room. */
  keys: Float32Array[];
  values: Float32Array[];
}

export class KvStore {
  private readonly caches = new Map<number, StoredCache>();

  constructor(
    private readonly layers: number,
    private readonly dims: HeadDims,
  ) {}

  /** Caches held and their tokens (rows × length, summed): what the worker's memory holds. */
  held(): HeldCaches {
    let tokens = 0;
    for (const c of this.caches.values()) tokens += c.batch * c.length;
    return { caches: this.caches.size, tokens };
  }

  create(id: number, batch: number): void {
    if (this.caches.has(id)) throw new Error(`cache ${id} already exists`);
    const empty = () => Array.from({ length: this.layers }, () => new Float32Array(0));
    this.caches.set(id, { batch, length: 0, keys: empty(), values: empty() });
  }

  /** Cached tokens per row. */
  length(id: number): number {
    return this.get(id).length;
  }

  /**
   * The keys (`key`) or values of one layer: a view of exactly [batch, H, length, Dh], valid
   * until the cache's next append.
   */
  block(id: number, layer: number, kind: 'key' | 'value'): KvBlock {
    const cache = this.get(id);
    const data = (kind === 'key' ? cache.keys : cache.values)[layer];
    if (data === undefined) throw new Error(`layer ${layer} out of range`);
    const { heads, headDim } = this.dims;
    return { data: data.subarray(0, cache.batch * heads * cache.length * headDim), batch: cache.batch, length: cache.length };
  }

  /**
   * Appends, in every layer, the first `append` tokens of rows [rowStart, rowStart + batch)
   * of a run's new keys/values ([*, H, n, Dh] per layer).
   */
  append(id: number, keys: readonly KvBlock[], values: readonly KvBlock[], rowStart: number, append: number): void {
    const cache = this.get(id);
    if (append === 0) return;
    const grow = (past: Float32Array[], fresh: readonly KvBlock[]) =>
      past.map((data, layer) => {
        const block = fresh[layer];
        if (block === undefined) throw new Error(`no new keys/values for layer ${layer}`);
        return appendTokens({ data, batch: cache.batch, length: cache.length }, block, rowStart, append, this.dims);
      });
    cache.keys = grow(cache.keys, keys);
    cache.values = grow(cache.values, values);
    cache.length += append;
  }

  /** Frees a cache; unknown ids are ignored (disposing twice is harmless). */
  dispose(id: number): void {
    this.caches.delete(id);
  }

  private get(id: number): StoredCache {
    const cache = this.caches.get(id);
    if (cache === undefined) throw new Error(`cache ${id} is not held by this worker`);
    return cache;
  }
}
