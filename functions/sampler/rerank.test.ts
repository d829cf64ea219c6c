import { describe, expect, it } from 'vitest';
import type { Denoiser, ForwardInput, ForwardOutput } from '../core/denoiser.ts';
import { FakeDenoiser } from './fake-denoiser.ts';
import { regionFit, rerankMasks, scoreAnswer, RERANK_DEFAULTS, windowMasks } from './rerank.ts';
import type { SampleProblem } from './sample.ts';

const MASK = 1;
const V = 12;
const L = 16;
const problem: SampleProblem = {
  kind: 'image',
  grid: 4,
  length: L,
  prompts: [
    { ids: [2, 3, 4], positions: [0, 1, 2] },
    { ids: [2], positions: [0] },
  ],
  answerPositions: Array.from({ length: L }, (_, i) => 10 + i),
  allowed: [[4, 12]],
};

/** Puts logit `strength` on `favourite` at every position, 0 elsewhere. */
class Favouring implements Denoiser {
  readonly maskValue = -1e9;
  constructor(readonly favourite: number, readonly strength: number) {}
  createCache(): never {
    throw new Error('scoring never caches');
  }
  async forward(input: ForwardInput): Promise<ForwardOutput> {
    const logits = new Float32Array(input.batch * input.read.count * V);
    for (let r = 0; r < input.batch * input.read.count; r++) logits[r * V + this.favourite] = this.strength;
    return { logits, vocab: V };
  }
}

describe('rerank masks', () => {
  it('hide round(ratio * L) distinct positions each, the same for the same seed', () => {
    const masks = rerankMasks(L, { maskRatio: 0.6, masks: 3, seed: 5 });
    expect(masks).toHaveLength(3);
    for (const m of masks) {
      expect(m).toHaveLength(10);
      expect(new Set(m).size).toBe(10);
      for (const i of m) expect(i >= 0 && i < L).toBe(true);
    }
    expect(rerankMasks(L, { maskRatio: 0.6, masks: 3, seed: 5 })).toEqual(masks);
    expect(rerankMasks(L, { maskRatio: 0.6, masks: 3, seed: 6 })).not.toEqual(masks);
    expect(() => rerankMasks(L, { maskRatio: 0, masks: 3, seed: 5 })).toThrow(/maskRatio/);
    expect(() => rerankMasks(L, { maskRatio: 0.5, masks: 0, seed: 5 })).toThrow(/masks/);
  });
});

describe('scoring an answer', () => {
  it('feeds the prompt and the answer with each mask hidden, densely, reading the answer', async () => {
    const denoiser = new FakeDenoiser(V);
    const answer = Array.from({ length: L }, (_, i) => 4 + (i % 8));
    const options = { maskRatio: 0.5, masks: 2, guidance: 1, seed: 3 };
    const scored = await scoreAnswer(denoiser, { maskId: MASK }, problem, answer, options);
    expect(denoiser.calls).toHaveLength(1);
    expect(scored).toMatchObject({ forwardCalls: 1, tokensIn: 2 * (3 + L) });
    const call = denoiser.calls[0]!;
    expect(call).toMatchObject({ batch: 2, length: 3 + L, read: { start: 3, count: L } });
    expect(call.cache).toBeUndefined();
    expect(call.attnBias.every((b) => b === 0)).toBe(true);
    rerankMasks(L, options).forEach((hidden, b) => {
      const row = [...call.inputIds.subarray(b * (3 + L), (b + 1) * (3 + L))];
      expect(row.slice(0, 3)).toEqual([2, 3, 4]);
      expect(row.slice(3)).toEqual(answer.map((id, i) => (hidden.includes(i) ? MASK : id)));
      expect([...call.positionIds.subarray(b * (3 + L), b * (3 + L) + 3 + L)]).toEqual([0, 1, 2, ...problem.answerPositions]);
    });
    expect(Number.isFinite(scored.score) && scored.score < 0).toBe(true);
  });

  it('prefers the answer the model predicts', async () => {
    const denoiser = new Favouring(7, 5);
    const options = { ...RERANK_DEFAULTS, guidance: 1, seed: 0 };
    const liked = await scoreAnswer(denoiser, { maskId: MASK }, problem, new Array(L).fill(7), options);
    const other = await scoreAnswer(denoiser, { maskId: MASK }, problem, new Array(L).fill(8), options);
    expect(liked.score).toBeGreaterThan(other.score);
    // log p over the 8 allowed ids only: e^5 / (e^5 + 7) at each of the 10 hidden positions.
    expect(liked.score).toBeCloseTo(10 * (5 - Math.log(Math.exp(5) + 7)), 5);
  });

  it('combines the branches as w * conditional - (w - 1) * unconditional', async () => {
    const answer = Array.from({ length: L }, (_, i) => 4 + ((i * 3) % 8));
    const base = { maskRatio: 0.75, masks: 3, seed: 9 };
    const denoiser = new FakeDenoiser(V);
    const guided = await scoreAnswer(denoiser, { maskId: MASK }, problem, answer, { ...base, guidance: 1.5 });
    expect(guided.forwardCalls).toBe(2);
    const cond = await scoreAnswer(denoiser, { maskId: MASK }, problem, answer, { ...base, guidance: 1 });
    const uncond = await scoreAnswer(denoiser, { maskId: MASK }, { ...problem, prompts: [problem.prompts[1]!] }, answer, { ...base, guidance: 1 });
    expect(guided.score).toBeCloseTo(1.5 * cond.score - 0.5 * uncond.score, 6);
    await expect(scoreAnswer(denoiser, { maskId: MASK }, { ...problem, prompts: [problem.prompts[0]!] }, answer, { ...base, guidance: 2 })).rejects.toThrow(/unconditional/);
    await expect(scoreAnswer(denoiser, { maskId: MASK }, problem, answer.slice(1), { ...base, guidance: 1 })).rejects.toThrow(/tokens/);
  });
});

describe('window masks', () => {
  it('are 9 half-side squares at quarter-side steps that together cover the grid', () => {
    const masks = windowMasks(8);
    expect(masks).toHaveLength(9);
    for (const m of masks) expect(m).toHaveLength(16);
    expect(masks[0]).toEqual([0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]);
    expect(masks[4]![0]).toBe(2 * 8 + 2);
    expect(masks[8]!.at(-1)).toBe(63);
    expect(new Set(masks.flat()).size).toBe(64);
    expect(windowMasks(16).every((m) => m.length === 64)).toBe(true);
    expect(() => windowMasks(6)).toThrow(/divisible by 4/);
  });
});

describe('region fit', () => {
  it('hides one window per row, conditional branch only, and sums log p over every window', async () => {
    const denoiser = new FakeDenoiser(V);
    const answer = Array.from({ length: L }, (_, i) => 4 + (i % 8));
    const fit = await regionFit(denoiser, { maskId: MASK }, problem, answer);
    expect(fit).toMatchObject({ forwardCalls: 1, tokensIn: 9 * (3 + L) });
    const call = denoiser.calls[0]!;
    expect(call).toMatchObject({ batch: 9, length: 3 + L, read: { start: 3, count: L } });
    windowMasks(4).forEach((hidden, b) => {
      const row = [...call.inputIds.subarray(b * (3 + L), (b + 1) * (3 + L))];
      expect(row).toEqual([2, 3, 4, ...answer.map((id, i) => (hidden.includes(i) ? MASK : id))]);
    });
    // Favouring 7 at strength 5: each of the 9 windows of 4 hidden tokens adds 4 log p(7).
    const liked = await regionFit(new Favouring(7, 5), { maskId: MASK }, problem, new Array(L).fill(7));
    expect(liked.score).toBeCloseTo(9 * 4 * (5 - Math.log(Math.exp(5) + 7)), 5);
    const other = await regionFit(new Favouring(7, 5), { maskId: MASK }, problem, new Array(L).fill(8));
    expect(other.score).toBeLessThan(liked.score);
    await expect(regionFit(denoiser, { maskId: MASK }, { ...problem, kind: 'text' }, answer)).rejects.toThrow(/image/);
  });
});
