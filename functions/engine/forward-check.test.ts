import { describe, expect, it } from 'vitest';
import type { ForwardInput } from '../core/denoiser.ts';
import { EngineError } from './errors.ts';
import { checkForwardInput } from './forward-check.ts';

const limits = { vocab: 10, positions: 20 };
/** B = 2 rows of N = 3 tokens against a cache of C = 1. */
function input(over: Partial<ForwardInput> = {}): ForwardInput {
  return {
    batch: 2,
    length: 3,
    inputIds: Int32Array.from([1, 2, 3, 4, 5, 6]),
    positionIds: Int32Array.from([0, 1, 2, 0, 1, 2]),
    attnBias: new Float32Array(2 * 3 * 4),
    read: { start: 0, count: 3 },
    ...over,
  };
}

describe('checking a forward pass', () => {
  it('accepts a well-formed call', () => {
    expect(() => checkForwardInput(input(), 1, limits)).not.toThrow();
    expect(() => checkForwardInput(input({ read: { start: 3, count: 0 } }), 1, limits)).not.toThrow();
  });

  const cases: [string, Partial<ForwardInput>, RegExp][] = [
    ['a zero batch', { batch: 0 }, /^forward: batch must be a positive integer, got 0$/],
    ['a fractional length', { length: 1.5 }, /length must be a positive integer, got 1.5/],
    ['ids of the wrong count', { inputIds: new Int32Array(5) }, /^forward: inputIds has 5 entries, expected batch × length = 2 × 3 = 6$/],
    ['positions of the wrong count', { positionIds: new Int32Array(7) }, /positionIds has 7 entries/],
    ['a bias sized without the cache', { attnBias: new Float32Array(18) }, /attnBias has 18 entries, expected batch × length × \(cache \+ length\) = 2 × 3 × \(1 \+ 3\) = 24/],
    ['an append longer than the row', { append: 4 }, /append must be an integer in \[0, length = 3\], got 4/],
    ['a read past the row', { read: { start: 2, count: 2 } }, /read \[2, 4\) must lie within the 3 tokens of a row/],
    ['a negative read', { read: { start: -1, count: 1 } }, /read \[-1, 0\)/],
    ['an id outside the vocabulary', { inputIds: Int32Array.from([1, 2, 3, 4, 10, 6]) }, /inputIds\[4\] = 10 is outside the vocabulary \[0, 10\)/],
    ['a negative id', { inputIds: Int32Array.from([-1, 2, 3, 4, 5, 6]) }, /inputIds\[0\] = -1/],
    ['a position outside the table', { positionIds: Int32Array.from([0, 1, 2, 0, 1, 20]) }, /positionIds\[5\] = 20 is outside the position table \[0, 20\)/],
  ];
  for (const [what, over, message] of cases) {
    it(`refuses ${what}`, () => {
      const check = () => checkForwardInput(input(over), 1, limits);
      expect(check).toThrow(EngineError);
      expect(check).toThrow(message);
    });
  }

  it('refuses an append without a cache', () => {
    expect(() => checkForwardInput(input({ append: 1, attnBias: new Float32Array(18) }), 0, limits)).toThrow(/append = 1 needs a cache to append to/);
  });
});
