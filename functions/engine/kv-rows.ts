/**
 * Row and token arithmetic on the flat, row-major tensors of the denoiser contract: keys and
 * values are [rows, heads, tokens, headDim], the bias [rows, N, C + N] (columns: the cache,
 * then the current tokens), logits [rows, N, vocab]. Pure functions, no onnxruntime.
 */

export interface HeadDims {
  readonly heads: number;
  readonly headDim: number;
}

/** A [batch, heads, length, headDim] block of keys or values. */
export interface KvBlock {
  readonly data: Float32Array;
  readonly batch: number;
  readonly length: number;
}

/**
 * `past` [batch, H, C, Dh] followed, along the token axis, by the first `append` tokens of
 * rows [rowStart, rowStart + batch) of `fresh` [*, H, freshLength, Dh]: the cache after a
 * step (docs/design.md section 3), [batch, H, C + append, Dh] in the first elements of the
 * array returned. `past.data` may be longer than its block: when the result fits, it is
 * written there in place (each head's tokens moved up by memmove, last head first) and that
 * array is returned; otherwise a new one with room for twice the tokens it now holds. A
 * cache that grows step by step then allocates O(log steps) times instead of once per step
 * (a fresh array costs more than the copy: its pages are faulted in as they are written).
 *
 * @example
 * const room = appendTokens({ data: past, batch: 1, length: 290 }, { data: newKey, batch: 2, length: 40 }, 1, 12, dims);
 * const keys = room.subarray(0, 1 * heads * 302 * headDim);
 */
export function appendTokens(past: KvBlock, fresh: KvBlock, rowStart: number, append: number, dims: HeadDims): Float32Array {
  const { heads, headDim } = dims;
  const c = past.length;
  const rows = past.batch * heads;
  const needed = rows * (c + append) * headDim;
  const inPlace = past.data.length >= needed;
  const out = inPlace ? past.data : new Float32Array(2 * needed);
  // Last head first: in place, every head's destination lies at or above its source.
  for (let r = rows - 1; r >= 0; r--) {
    const at = r * (c + append) * headDim;
    const from = r * c * headDim;
    if (inPlace) out.copyWithin(at, from, from + c * headDim);
    else out.set(past.data.subarray(from, from + c * headDim), at);
    const b = Math.floor(r / heads);
    const h = r % heads;
    const fromFresh = ((rowStart + b) * heads + h) * fresh.length * headDim;
    out.set(fresh.data.subarray(fromFresh, fromFresh + append * headDim), at + c * headDim);
  }
  return out;
}

/**
 * The blocks stacked along the row axis and padded with zeros along the token axis to
 * `length` tokens: [sum of batches, H, length, Dh]. The padding must be masked in the bias
 * (see `widenBias`).
 */
export function stackBlocks(blocks: readonly KvBlock[], length: number, dims: HeadDims): Float32Array {
  const { heads, headDim } = dims;
  const rows = blocks.reduce((s, b) => s + b.batch, 0);
  const out = new Float32Array(rows * heads * length * headDim);
  let row = 0;
  for (const block of blocks) {
    for (let b = 0; b < block.batch; b++, row++) {
      for (let h = 0; h < heads; h++) {
        const from = (b * heads + h) * block.length * headDim;
        out.set(block.data.subarray(from, from + block.length * headDim), (row * heads + h) * length * headDim);
      }
    }
  }
  return out;
}

/**
 * Writes the bias [batch, n, c + n] of one forward into rows [rowStart, rowStart + batch) of
 * `into` [*, n, cTo + n], where the cache columns have been padded from c to cTo: the
 * padding columns get `maskValue`, so padded keys are never attended.
 */
export function widenBias(bias: Float32Array, batch: number, n: number, c: number, into: Float32Array, rowStart: number, cTo: number, maskValue: number): void {
  const w = c + n;
  const wTo = cTo + n;
  for (let q = 0; q < batch * n; q++) {
    const src = q * w;
    const dst = (rowStart * n + q) * wTo;
    into.set(bias.subarray(src, src + c), dst);
    into.fill(maskValue, dst + c, dst + cTo);
    into.set(bias.subarray(src + c, src + w), dst + cTo);
  }
}

/**
 * Tokens [start, start + count) of rows [rowStart, rowStart + batch) of `logits` [*, n, vocab]:
 * a new [batch * count * vocab].
 */
export function readLogits(logits: Float32Array, n: number, vocab: number, rowStart: number, batch: number, start: number, count: number): Float32Array {
  const out = new Float32Array(batch * count * vocab);
  for (let b = 0; b < batch; b++) {
    const from = ((rowStart + b) * n + start) * vocab;
    out.set(logits.subarray(from, from + count * vocab), b * count * vocab);
  }
  return out;
}
