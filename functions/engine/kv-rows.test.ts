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
    expect([...out.subarray(0, 8)]).toEqual([0, 1, 100.5, 101.5, 10, 11, 110.5, 111.5]);
  });

  it('appends to an empty cache', () => {
    const out = appendTokens({ data: new Float32Array(0), batch: 1, length: 0 }, { data: block(1, 3), batch: 1, length: 3 }, 0, 3, dims);
    expect([...out.subarray(0, 6)]).toEqual([...block(1, 3)]);
  });

  it('appends in place when the array has room, moving each head up, and grows it twice over when not', () => {
    const fresh = block(1, 3).map((v) => v + 0.5);
    // Two cached tokens per head, with room for four: no new array.
    const room = new Float32Array(2 * 4);
    room.set(block(1, 2));
    const same = appendTokens({ data: room, batch: 1, length: 2 }, { data: fresh, batch: 1, length: 3 }, 0, 2, dims);
    expect(same).toBe(room);
    expect([...same]).toEqual([0, 1, 0.5, 1.5, 10, 11, 10.5, 11.5]);
    // Full: a new array with room for twice the 5 tokens, the cache at its start.
    const grown = appendTokens({ data: same, batch: 1, length: 4 }, { data: fresh, batch: 1, length: 3 }, 0, 1, dims);
    expect(grown).not.toBe(same);
    expect(grown.length).toBe(2 * 2 * 5);
    expect([...grown.subarray(0, 10)]).toEqual([0, 1, 0.5, 1.5, 0.5, 10, 11, 10.5, 11.5, 10.5]);
  });

  it('gives the same cache appended token by token as all at once', () => {
    const fresh = block(2, 5, 3);
    let data: Float32Array = new Float32Array(0);
    for (let t = 0; t < 5; t++) {
      const one = fresh.slice().fill(0);
      // token t of every head of both rows, moved to token 0 of a one-token run
      for (let r = 0; r < 4; r++) one[r * 5] = fresh[r * 5 + t] as number;
      data = appendTokens({ data, batch: 2, length: t }, { data: one, batch: 2, length: 5 }, 0, 1, dims);
    }
    expect([...data.subarray(0, 2 * 2 * 5)]).toEqual([...fresh]);
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
