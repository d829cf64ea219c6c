import { describe, expect, it } from 'vitest';
import { appendTokens, readLogits, stackBlocks, widenBias } from './kv-rows.ts';

const dims = { heads: 2, headDim: 1 };
/** [batch, 2 heads, length, 1]: value = 100·row + 10·head + token, so every element names its place. */
function block(batch: number, length: number, rowOffset = 0): Float32Array {
  const out = new Float32Array(batch * 2 * length);
  for (let b = 0; b < batch; b++) for (let h = 0; h < 2; h++) for (let t = 0; t < length; t++) out[(b * 2 + h) * length + t] = 100 * (b + rowOffset) + 10 * h + t;
  return out;
}

describe('cache rows', () => {
  it('appends the first tokens of the chosen rows of a run along the token axis', () => {
    const past = block(1, 2);
    const fresh = block(2, 3).map((v) => v + 0.5);
    const out = appendTokens({ data: past, batch: 1, length: 2 }, { data: fresh, batch: 2, length: 3 }, 1, 2, dims);
    // row 1 of fresh, tokens 0..1 after each head's two cached tokens
    expect([...out]).toEqual([0, 1, 100.5, 101.5, 10, 11, 110.5, 111.5]);
  });

  it('appends to an empty cache', () => {
    const out = appendTokens({ data: new Float32Array(0), batch: 1, length: 0 }, { data: block(1, 3), batch: 1, length: 3 }, 0, 3, dims);
    expect([...out]).toEqual([...block(1, 3)]);
  });

  it('stacks blocks of different lengths, padding with zeros', () => {
    const out = stackBlocks([{ data: block(1, 1), batch: 1, length: 1 }, { data: block(1, 2, 1), batch: 1, length: 2 }], 2, dims);
    expect([...out]).toEqual([0, 0, 10, 0, 100, 101, 110, 111]);
  });

  it('widens a bias to a padded cache, masking the padding columns', () => {
    // batch 1, n 2, c 1 → cTo 3: columns [cache0, pad, pad, tok0, tok1]
    const bias = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const into = new Float32Array(2 * 2 * 5);
    widenBias(bias, 1, 2, 1, into, 1, 3, -9);
    expect([...into.subarray(10)]).toEqual([1, -9, -9, 2, 3, 4, -9, -9, 5, 6]);
    expect([...into.subarray(0, 10)]).toEqual(new Array(10).fill(0));
  });

  it('reads a window of tokens from chosen rows', () => {
    // [2 rows, 3 tokens, vocab 2]
    const logits = Float32Array.from({ length: 12 }, (_, i) => i);
    expect([...readLogits(logits, 3, 2, 1, 1, 1, 2)]).toEqual([8, 9, 10, 11]);
    expect([...readLogits(logits, 3, 2, 0, 2, 2, 1)]).toEqual([4, 5, 10, 11]);
  });
});
