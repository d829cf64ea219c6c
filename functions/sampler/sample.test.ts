import { describe, expect, it } from 'vitest';
import type { Denoiser, ForwardInput, ForwardOutput, KvCache } from '../core/denoiser.ts';
import { Rng } from '../core/rng.ts';
import { choose, guide } from './choose.ts';
import { FakeDenoiser } from './fake-denoiser.ts';
import { stratifiedOrder } from './order.ts';
import { sample, SamplingAbortedError, type Ablation, type SampleOptions, type SampleProblem, type StepEvent } from './sample.ts';
import { decodedCounts, textBlockCounts } from './schedule.ts';

const V = 40;
const model = { maskId: 1, regId: 2, endId: 3, padId: 0, registers: 4, registerPositions: [900, 901, 902, 903] };
const imageProblem = (guided = false): SampleProblem => ({
  kind: 'image',
  grid: 8,
  length: 64,
  prompts: [
    { ids: [5, 6, 7, 8], positions: [0, 1, 2, 3] },
    ...(guided ? [{ ids: [5], positions: [0] }] : []),
  ],
  answerPositions: Array.from({ length: 64 }, (_, i) => 100 + i),
  allowed: [[20, 40]],
});
const textProblem: SampleProblem = {
  kind: 'text',
  length: 16,
  prompts: [{ ids: [5, 9, 9, 10], positions: [0, 1, 2, 3] }],
  answerPositions: Array.from({ length: 16 }, (_, i) => 500 + i),
  allowed: [[3, 4], [10, 30]],
};
const base: SampleOptions = { sampler: 'sparse', steps: 8, schedule: { kind: 'shift', shift: 3 }, temperature: 0, guidance: 1, seed: 3 };

async function run<D extends Denoiser = FakeDenoiser>(problem: SampleProblem, options: SampleOptions, denoiser: D = new FakeDenoiser(V) as unknown as D) {
  const events: StepEvent[] = [];
  const it = sample(denoiser, model, problem, options);
  for (;;) {
    const r = await it.next();
    if (r.done) return { result: r.value, events, denoiser };
    events.push(r.value);
  }
}

describe('schedules', () => {
  it('decode at least one token per step and all of them by the last step', () => {
    for (const kind of ['shift', 'cosine'] as const) {
      for (const L of [1, 7, 32, 256]) {
        for (const S of [1, 2, 5, 16, L]) {
          if (S > L) continue;
          const counts = decodedCounts(L, S, { kind, shift: 3 });
          expect(counts).toHaveLength(S);
          expect(counts.every((c) => c >= 1)).toBe(true);
          expect(counts.reduce((a, b) => a + b, 0)).toBe(L);
        }
      }
    }
  });

  it('decode few tokens early and many late with a shift above 1', () => {
    const counts = decodedCounts(256, 16, { kind: 'shift', shift: 3 });
    expect(counts[0]).toBeLessThan(counts.at(-1)!);
    expect(counts).toEqual([6, 6, 6, 8, 8, 9, 10, 11, 13, 14, 17, 20, 23, 28, 34, 43]);
  });

  it('refuse more steps than tokens', () => {
    expect(() => decodedCounts(4, 5, { kind: 'shift', shift: 3 })).toThrow(/steps must be an integer in 1\.\.4/);
    expect(textBlockCounts(8, 3)).toEqual([2, 3, 3]);
  });
});

describe('the stratified image order', () => {
  it('covers every position exactly once', () => {
    for (const grid of [2, 4, 8, 16]) {
      const order = stratifiedOrder(grid, new Rng(grid));
      expect([...order].sort((a, b) => a - b)).toEqual([...Array(grid * grid).keys()]);
    }
  });

  it('starts with one position in each quadrant, then one in each of the 16 cells', () => {
    const order = stratifiedOrder(16, new Rng(5));
    const quadrant = (p: number) => Math.floor(Math.floor(p / 16) / 8) * 2 + Math.floor((p % 16) / 8);
    expect(new Set(order.slice(0, 4).map(quadrant)).size).toBe(4);
    const cell = (p: number) => Math.floor(Math.floor(p / 16) / 4) * 4 + Math.floor((p % 16) / 4);
    expect(new Set(order.slice(0, 16).map(cell)).size).toBe(16);
  });

  it('is the same for the same seed and differs across seeds', () => {
    expect(stratifiedOrder(16, new Rng(1))).toEqual(stratifiedOrder(16, new Rng(1)));
    expect(stratifiedOrder(16, new Rng(1))).not.toEqual(stratifiedOrder(16, new Rng(2)));
  });
});

describe('choosing tokens', () => {
  it('combines guidance branches as u + w(c - u)', () => {
    const g = guide(Float32Array.from([1, 2]), Float32Array.from([0.5, 3]), 3);
    expect(Array.from(g)).toEqual([2, 0]);
  });

  it('takes the arg-max among allowed ids at temperature 0, lowest id on ties', () => {
    const logits = Float32Array.from([9, 1, 5, 5, 2]);
    expect(choose(logits, [[1, 5]], 0, new Rng(0)).token).toBe(2);
  });

  it('samples in proportion to the tempered probabilities', () => {
    const logits = Float32Array.from([0, Math.log(3), 0]);
    const rng = new Rng(1);
    let ones = 0;
    for (let i = 0; i < 4000; i++) if (choose(logits, [[0, 3]], 1, rng).token === 1) ones++;
    expect(ones / 4000).toBeGreaterThan(0.55);
    expect(ones / 4000).toBeLessThan(0.65);
  });
});

describe('the sampling loop', () => {
  it('streams one event per step and decodes every position once', async () => {
    const { result, events } = await run(imageProblem(), base);
    expect(events).toHaveLength(8);
    expect(events.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const seen = events.flatMap((e) => e.positions);
    expect([...seen].sort((a, b) => a - b)).toEqual([...Array(64).keys()]);
    expect(events.at(-1)?.maskedFraction).toBe(0);
    expect(result.answer.every((t) => t >= 20 && t < 40)).toBe(true);
  });

  it('gives the same tokens whether keys come from the cache or are recomputed (the cache is exact)', async () => {
    const variants: Ablation[] = [
      { promptCache: true, responseCache: true, truncation: true },
      { promptCache: false, responseCache: true, truncation: true },
      { promptCache: true, responseCache: false, truncation: true },
      { promptCache: false, responseCache: false, truncation: true },
    ];
    for (const problem of [imageProblem(), imageProblem(true), textProblem]) {
      const options = { ...base, guidance: problem.prompts.length > 1 ? 2 : 1, steps: problem.kind === 'text' ? 8 : 8 };
      const answers = [];
      for (const ablation of variants) answers.push((await run(problem, { ...options, ablation })).result.answer);
      for (const a of answers.slice(1)) expect(a).toEqual(answers[0]);
    }
  });

  it('pushes fewer tokens through the network with each cache and with truncation', async () => {
    const tokens = async (options: SampleOptions) => (await run(imageProblem(), options)).result.tokensIn;
    const dense = await tokens({ ...base, sampler: 'dense' });
    const sparse = await tokens(base);
    expect(dense).toBe(8 * (4 + 64));
    // prefill 4, then per step: last step's tokens + this step's masks + 4 registers
    expect(sparse).toBe(4 + 64 - decodedCounts(64, 8, base.schedule).at(-1)! + 64 + 8 * 4);
    expect(await tokens({ ...base, ablation: { promptCache: false, responseCache: true, truncation: true } })).toBeGreaterThan(sparse);
    expect(await tokens({ ...base, ablation: { promptCache: true, responseCache: false, truncation: true } })).toBeGreaterThan(sparse);
    expect(await tokens({ ...base, ablation: { promptCache: true, responseCache: true, truncation: false } })).toBeGreaterThan(sparse);
  });

  it('feeds last step tokens, this step masks and the registers with the step-causal bias', async () => {
    const { denoiser } = await run(imageProblem(), base);
    const step2 = denoiser.calls[1]!; // calls: step 1 (with the prompt), step 2
    const counts = decodedCounts(64, 8, base.schedule);
    const prev = counts[0]!;
    const now = counts[1]!;
    expect(step2.length).toBe(prev + now + 4);
    expect(Array.from(step2.inputIds.slice(prev))).toEqual([...Array(now).fill(model.maskId), ...Array(4).fill(model.regId)]);
    expect(step2.append).toBe(prev);
    expect(step2.read).toEqual({ start: prev, count: now });
    const C = 4 + 0;
    const N = step2.length;
    const row = (q: number) => Array.from(step2.attnBias.slice(q * (C + N), (q + 1) * (C + N)), (v) => (v === 0 ? 1 : 0));
    // a last-step token sees the cache and last step's tokens, not the masks or registers
    expect(row(0)).toEqual([...Array(C + prev).fill(1), ...Array(now + 4).fill(0)]);
    // a mask sees everything
    expect(row(prev)).toEqual(Array(C + N).fill(1));
  });

  it('runs the unconditional branch only when guidance is on', async () => {
    const off = await run(imageProblem(true), { ...base, guidance: 1 });
    expect(off.denoiser.calls.every((c) => c.batch === 1)).toBe(true);
    const shifted = new FakeDenoiser(V, 1000);
    const on = await run(imageProblem(true), { ...base, guidance: 2 }, shifted);
    expect(on.denoiser.calls.every((c) => c.batch === 2)).toBe(true);
    // the unconditional branch favours id 0, which is not allowed: guidance pushes away from it
    expect(on.result.answer.every((t) => t >= 20)).toBe(true);
  });

  it('caches the prompt in the first step: its rows come first, see only the prompt and are appended', async () => {
    const { denoiser, result } = await run(imageProblem(), base);
    expect(result.forwardCalls).toBe(8);
    const step1 = denoiser.calls[0]!;
    const now = decodedCounts(64, 8, base.schedule)[0]!;
    const N = step1.length;
    expect(N).toBe(4 + now + 4);
    expect(step1.append).toBe(4);
    expect(step1.read).toEqual({ start: 4, count: now });
    const row = (q: number) => Array.from(step1.attnBias.slice(q * N, (q + 1) * N), (v) => (v === 0 ? 1 : 0));
    for (let q = 0; q < 4; q++) expect(row(q)).toEqual([1, 1, 1, 1, ...Array(now + 4).fill(0)]);
    expect(row(4)).toEqual(Array(N).fill(1));
  });

  it('pads the shorter guidance prompt and hides the padding', async () => {
    const { denoiser } = await run(imageProblem(true), { ...base, guidance: 2 });
    const step1 = denoiser.calls[0]!;
    const N = step1.length;
    expect(Array.from(step1.inputIds.slice(0, 4))).toEqual([5, 6, 7, 8]);
    expect(Array.from(step1.inputIds.slice(N, N + 4))).toEqual([5, 0, 0, 0]);
    const uncondRow0 = Array.from(step1.attnBias.slice(N * N, N * N + N));
    expect(uncondRow0.map((v) => (v === 0 ? 1 : 0))).toEqual([1, 0, 0, 0, ...Array(N - 4).fill(0)]);
    const uncondMask = Array.from(step1.attnBias.slice((N + 4) * N, (N + 5) * N));
    expect(uncondMask.map((v) => (v === 0 ? 1 : 0))).toEqual([1, 0, 0, 0, ...Array(N - 4).fill(1)]);
  });

  it('decodes text in blocks by confidence and fills the rest with the end token after one', async () => {
    const { result, events } = await run(textProblem, { ...base, steps: 8, textBlock: 4 });
    expect(events.length).toBeLessThanOrEqual(8);
    for (const e of events) expect(e.positions.length).toBeGreaterThan(0);
    const end = result.answer.indexOf(model.endId);
    if (end >= 0) expect(result.answer.slice(Math.floor(end / 4 + 1) * 4).every((t) => t === model.endId)).toBe(true);
    expect(result.answer.every((t) => t !== model.maskId)).toBe(true);
  });

  it('stops as soon as the text before the first end token is decoded, and fills the rest with end tokens', async () => {
    // Answer position i gets the token and logit of script[i] (every other id scores 0).
    const scripted = (script: readonly [number, number][]): Denoiser & { calls: number } => {
      let length = 0;
      const denoiser = {
        maskValue: -1e9,
        calls: 0,
        createCache: (batch: number): KvCache => ({ batch, get length() { return length; }, dispose() {} }),
        async forward(input: ForwardInput): Promise<ForwardOutput> {
          denoiser.calls++;
          length += input.cache ? (input.append ?? 0) : 0;
          const logits = new Float32Array(input.read.count * V);
          for (let r = 0; r < input.read.count; r++) {
            const [token, logit] = script[(input.positionIds[input.read.start + r] as number) - 500] as [number, number];
            logits[r * V + token] = logit;
          }
          return { logits, vocab: V };
        },
      };
      return denoiser;
    };
    const END = model.endId;
    for (const sampler of ['dense', 'sparse'] as const) {
      // One block of 16, 2 tokens a step: step 1 commits positions 2 (a word) and 1 (end), but
      // position 0 is still masked; step 2 commits 0, and the text "12" is final.
      const denoiser = scripted([[12, 15], [END, 20], [13, 25], ...Array(13).fill([END, 10])]);
      const { result, events } = await run(textProblem, { ...base, sampler, steps: 8, textBlock: 16 }, denoiser);
      expect(events.map((e) => e.positions)).toEqual([[1, 2], [0, 3]]);
      expect(result.steps).toBe(2);
      expect(denoiser.calls).toBe(2);
      expect(result.answer).toEqual([12, ...Array(15).fill(END)]);
      expect(events.at(-1)?.answer).toEqual(result.answer);
      expect(events.at(-1)?.maskedFraction).toBe(0);
    }
  });

  it('stops between steps when cancelled and frees its cache', async () => {
    const denoiser = new FakeDenoiser(V);
    const controller = new AbortController();
    const it = sample(denoiser, model, imageProblem(), { ...base, signal: controller.signal });
    await it.next();
    await it.next();
    controller.abort();
    await expect(it.next()).rejects.toThrow(SamplingAbortedError);
    expect(denoiser.calls).toHaveLength(2); // steps 1 and 2, none after the abort
    expect(denoiser.created).toBe(1);
    expect(denoiser.disposed).toBe(1);
  });

  it('frees its cache when the consumer stops early', async () => {
    const denoiser = new FakeDenoiser(V);
    const it = sample(denoiser, model, imageProblem(), base);
    await it.next();
    await it.return(undefined as never);
    expect(denoiser.disposed).toBe(1);
  });
});
