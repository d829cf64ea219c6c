import { describe, expect, it } from 'vitest';
import { blankImage } from '../core/image.ts';
import type { SamplingDefaults } from '../core/manifest.ts';
import { FakeDenoiser } from '../sampler/fake-denoiser.ts';
import { loadPackageDir } from '../storage/package-files.ts';
import { createTokenizers } from '../tokenizers/model-tokenizers.ts';
import { UnknownWordError } from '../tokenizers/text.ts';
import { candidateSeed, Pipeline, PipelineInputError, PREVIEW_MASK_GRAY, type ImageStep, type TextStep } from './pipeline.ts';

const tokenizers = createTokenizers(await loadPackageDir('models/shapes-tiny'));
const vocab = tokenizers.manifest.vocab.size;

async function drain<E, R>(it: AsyncGenerator<E, R, void>): Promise<{ events: E[]; result: R }> {
  const events: E[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) return { events, result: r.value };
    events.push(r.value);
  }
}

describe('text to image', () => {
  it('streams a step event per step with a preview every N steps and the final image', async () => {
    const pipeline = new Pipeline(tokenizers, new FakeDenoiser(vocab));
    const { events, result } = await drain(pipeline.generate('a red circle', { steps: 10, previewEvery: 4, seed: 1, candidates: 1 }));
    expect(events.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(events.filter((e) => e.preview).map((e) => e.step)).toEqual([4, 8, 10]);
    expect(result.codes).toHaveLength(256);
    expect(result.image.width).toBe(64);
    expect(result.usage).toMatchObject({ steps: 10, sampler: 'sparse', seed: 1 });
    expect(Buffer.from(events.at(-1)!.preview!.data).equals(Buffer.from(result.image.data))).toBe(true);
  });

  it('draws still-masked patches in a neutral gray in early previews', async () => {
    const pipeline = new Pipeline(tokenizers, new FakeDenoiser(vocab));
    const { events } = await drain(pipeline.generate('a red circle', { steps: 10, previewEvery: 1, seed: 1 }));
    const first = events[0]!.preview!;
    let gray = 0;
    for (let i = 0; i < first.data.length; i += 3) if (first.data[i] === PREVIEW_MASK_GRAY && first.data[i + 1] === PREVIEW_MASK_GRAY) gray++;
    expect(gray / (64 * 64)).toBeGreaterThan(0.9);
  });

  it('rejects a word outside the vocabulary before sampling anything', async () => {
    const denoiser = new FakeDenoiser(vocab);
    const pipeline = new Pipeline(tokenizers, denoiser);
    expect(() => pipeline.generate('a red hexagon')).toThrow(UnknownWordError);
    expect(denoiser.calls).toHaveLength(0);
  });

  it('names the option that is out of range', async () => {
    const pipeline = new Pipeline(tokenizers, new FakeDenoiser(vocab));
    await expect(drain(pipeline.generate('a circle', { steps: 0 }))).rejects.toMatchObject({ param: 'steps' });
    await expect(drain(pipeline.generate('a circle', { steps: 300 }))).rejects.toThrow(PipelineInputError);
    await expect(drain(pipeline.generate('a circle', { temperature: -1 }))).rejects.toMatchObject({ param: 'temperature' });
    await expect(drain(pipeline.generate('a circle', { seed: 1.5 }))).rejects.toMatchObject({ param: 'seed' });
  });

  it('runs the dense sampler on request, pushing more tokens', async () => {
    const pipeline = new Pipeline(tokenizers, new FakeDenoiser(vocab));
    const dense = await drain(pipeline.generate('a circle', { steps: 8, sampler: 'dense', seed: 2, candidates: 1 }));
    const sparse = await drain(pipeline.generate('a circle', { steps: 8, sampler: 'sparse', seed: 2, candidates: 1 }));
    expect(dense.result.usage.tokensIn).toBeGreaterThan(3 * sparse.result.usage.tokensIn);
  });
});

/** The shipped package with other text-to-image defaults, over a fake denoiser. */
function withT2i(t2i: Partial<SamplingDefaults>, options: { verify?: boolean } = {}): Pipeline {
  const { sampling } = tokenizers.manifest;
  const { verify, ...rest } = sampling!.t2i!;
  const merged = { ...rest, ...(options.verify && verify ? { verify } : {}), ...t2i };
  return new Pipeline({ ...tokenizers, manifest: { ...tokenizers.manifest, sampling: { ...sampling!, t2i: merged } } }, new FakeDenoiser(vocab, 3));
}

describe('best of n', () => {
  it('draws the candidates in turn and returns the one scored best', async () => {
    const pipeline = withT2i({});
    const { events, result } = await drain(pipeline.generate('a red circle', { steps: 5, candidates: 3, seed: 5, previewEvery: 5 }));
    expect(events.map((e) => e.step)).toEqual([...Array(15).keys()].map((i) => i + 1));
    expect(events.map((e) => e.candidate)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    expect(new Set(events.map((e) => e.totalSteps))).toEqual(new Set([15]));
    expect(events.filter((e) => e.preview).map((e) => e.step)).toEqual([5, 10, 15]);
    const { scores, candidate, agreed } = result.chosen!;
    expect(scores).toHaveLength(3);
    expect(scores[candidate]).toBe(Math.max(...scores.map((x) => x!)));
    expect(agreed).toBeUndefined();
    // With this seed a later candidate wins, so keeping the first would fail here.
    expect(candidate).not.toBe(0);
    expect(result.usage).toMatchObject({ steps: 5, candidates: 3, seed: 5 });
    // The winner is what a one-candidate request with its seed and settings draws.
    const { seed, guidance, temperature } = pipeline.candidateSettings(pipeline.settings('t2i', { seed: 5 }), candidate, {});
    expect(seed).toBe(candidateSeed(5, candidate));
    const alone = await drain(pipeline.generate('a red circle', { steps: 5, candidates: 1, seed, guidance, temperature }));
    expect(result.codes).toEqual(alone.result.codes);
    expect(alone.result.chosen).toBeUndefined();
    // Three samples and three scores (one forward per guidance branch each) cost more than one sample.
    expect(result.usage.forwardCalls).toBe(3 * alone.result.usage.forwardCalls + 3 * 2);
  });

  it('takes the count from the manifest, one for answers, and refuses one out of range', () => {
    const pipeline = new Pipeline(tokenizers, new FakeDenoiser(vocab));
    expect(pipeline.settings('t2i', {}).candidates).toBe(tokenizers.manifest.sampling?.t2i?.candidates ?? 1);
    expect(pipeline.settings('t2i', { candidates: 2, steps: 6 }).totalSteps).toBe(12);
    const verifying = withT2i({ candidates: 16 }, { verify: true });
    expect(verifying.settings('t2i', { steps: 4 })).toMatchObject({ totalSteps: 64, fewestSteps: 8 });
    expect(verifying.settings('t2i', { steps: 4, candidates: 1 })).toMatchObject({ totalSteps: 4, fewestSteps: 4 });
    expect(withT2i({ candidates: 16 }).settings('t2i', { steps: 4 })).toMatchObject({ totalSteps: 64, fewestSteps: 64 });
    expect(pipeline.settings('answer', { candidates: 5 }).candidates).toBe(1);
    expect(() => pipeline.settings('t2i', { candidates: 0 })).toThrow(PipelineInputError);
    expect(() => pipeline.settings('edit', { candidates: 17 })).toThrow(/candidates must be a whole number in 1\.\.16/);
  });

  it('draws candidate c with the manifest variant c mod n, under the values the request sets', async () => {
    const withVariants = (variants: { guidance?: number; temperature?: number }[]) => withT2i({ guidance: 2, temperature: 0.5, variants });
    const mixed = withVariants([{}, { guidance: 1, temperature: 1 }]);
    const s = mixed.settings('t2i', { seed: 9, candidates: 3 });
    expect([0, 1, 2].map((c) => mixed.candidateSettings(s, c, {})).map(({ guidance, temperature, seed }) => ({ guidance, temperature, seed }))).toEqual([
      { guidance: 2, temperature: 0.5, seed: candidateSeed(9, 0) },
      { guidance: 1, temperature: 1, seed: candidateSeed(9, 1) },
      { guidance: 2, temperature: 0.5, seed: candidateSeed(9, 2) },
    ]);
    expect(mixed.candidateSettings(s, 1, { guidance: 3 })).toMatchObject({ guidance: 3, temperature: 1 });
    expect(mixed.candidateSettings(s, 1, { temperature: 0 })).toMatchObject({ guidance: 1, temperature: 0 });
    // The unguided second candidate feeds one branch, not two: the tokens add up to two plain
    // draws with those settings and the scores.
    const both = await drain(mixed.generate('a red circle', { steps: 5, candidates: 2, seed: 9 }));
    const first = await drain(mixed.generate('a red circle', { steps: 5, candidates: 1, seed: 9 }));
    const second = await drain(mixed.generate('a red circle', { steps: 5, candidates: 1, seed: candidateSeed(9, 1), guidance: 1, temperature: 1 }));
    const scoring = both.result.usage.tokensIn - first.result.usage.tokensIn - second.result.usage.tokensIn;
    const guided = await drain(mixed.generate('a red circle', { steps: 5, candidates: 1, seed: candidateSeed(9, 1) }));
    expect(second.result.usage.tokensIn).toBeLessThan(guided.result.usage.tokensIn);
    const plain = await drain(withVariants([{}]).generate('a red circle', { steps: 5, candidates: 2, seed: 9 }));
    expect(plain.result.usage.tokensIn - first.result.usage.tokensIn - guided.result.usage.tokensIn).toBe(scoring);
  });

  it('asks the model about every candidate when the manifest verifies, and scores them all when none agrees', async () => {
    const verifying = withT2i({}, { verify: true });
    const plain = withT2i({});
    const options = { steps: 5, candidates: 3, seed: 5 };
    const checked = await drain(verifying.generate('a red circle', options));
    const unchecked = await drain(plain.generate('a red circle', options));
    // The fake denoiser's answers are not captions, so no candidate agrees: all 3 are drawn,
    // described and scored, and the choice is the plain best of n.
    expect(checked.result.chosen).toMatchObject({ agreed: [], candidate: unchecked.result.chosen!.candidate });
    expect(checked.result.chosen!.scores).toEqual(unchecked.result.chosen!.scores);
    expect(checked.result.usage.candidates).toBe(3);
    const ask = await drain(plain.answer(plain.tokenizers.image.decode(checked.result.codes), 'describe the image', { seed: 0 }));
    expect(checked.result.usage.forwardCalls).toBe(unchecked.result.usage.forwardCalls + 3 * ask.result.usage.forwardCalls);
    expect(checked.result.usage.tokensIn).toBe(unchecked.result.usage.tokensIn + 3 * ask.result.usage.tokensIn);
  });

  it('refuses a package whose verify question has a word the model does not know', () => {
    expect(() => withT2i({ verify: { question: 'describe the picture', language: 'shapes-world', stopAfter: 2 } })).toThrow(
      /sampling\.t2i\.verify\.question cannot be asked: .*picture/,
    );
  });

  it('does not verify one candidate, nor a prompt its language cannot read', async () => {
    const verifying = withT2i({}, { verify: true });
    const plain = withT2i({});
    const one = await drain(verifying.generate('a red circle', { steps: 5, candidates: 1, seed: 5 }));
    expect(one.result.usage.tokensIn).toBe((await drain(plain.generate('a red circle', { steps: 5, candidates: 1, seed: 5 }))).result.usage.tokensIn);
    // Known words out of grammatical order: the tokenizer takes them, the check cannot read them.
    const odd = await drain(verifying.generate('circle red a', { steps: 5, candidates: 2, seed: 5 }));
    expect(odd.result.chosen!.agreed).toBeUndefined();
    expect(odd.result.usage.tokensIn).toBe((await drain(plain.generate('circle red a', { steps: 5, candidates: 2, seed: 5 }))).result.usage.tokensIn);
  });

  it('keeps the first seed for the first candidate', () => {
    expect(candidateSeed(123, 0)).toBe(123);
    expect(new Set([0, 1, 2, 3].map((c) => candidateSeed(4294967295, c))).size).toBe(4);
    for (const c of [1, 2, 3]) expect(candidateSeed(4294967295, c)).toBeLessThan(2 ** 32);
  });
});

describe('edits and answers', () => {
  it('edits a 64x64 image and refuses another size', async () => {
    const pipeline = new Pipeline(tokenizers, new FakeDenoiser(vocab));
    const { result } = await drain(pipeline.edit(blankImage(64, 64), 'add a red circle', { steps: 4, seed: 0 }));
    expect(result.codes).toHaveLength(256);
    expect(() => pipeline.edit(blankImage(32, 32), 'add a red circle')).toThrow(/64/);
  });

  it('refuses an unknown word in a question, or answer steps that do not fit the text blocks, before any step', () => {
    const denoiser = new FakeDenoiser(vocab);
    const pipeline = new Pipeline(tokenizers, denoiser);
    expect(() => pipeline.answer(blankImage(64, 64), 'what flavour is the circle?')).toThrow(UnknownWordError);
    expect(() => pipeline.settings('answer', { steps: 40 })).toThrow(/1\.\.32/);
    expect(denoiser.calls).toHaveLength(0);
    // A package that answers in blocks of 8 needs steps that split evenly over its 4 blocks.
    const sampling = tokenizers.manifest.sampling;
    if (sampling === undefined) throw new Error('the shipped manifest has sampling defaults');
    const blocks8 = { ...tokenizers, manifest: { ...tokenizers.manifest, sampling: { ...sampling, answer: { ...sampling.answer, block: 8 } } } };
    const pipeline8 = new Pipeline(blocks8, denoiser);
    expect(() => pipeline8.settings('answer', { steps: 6 })).toThrow(/multiple of 4/);
    expect(pipeline8.settings('answer', { steps: 12 }).steps).toBe(12);
  });

  it("feeds the task's register count from the manifest at sparse steps, unless the request names one", async () => {
    const sampling = tokenizers.manifest.sampling;
    if (sampling === undefined) throw new Error('the shipped manifest has sampling defaults');
    const R = tokenizers.manifest.model!.registers;
    const regId = tokenizers.manifest.vocab.special.reg;
    const registersFed = async (manifestRegisters: number | undefined, requested?: number) => {
      const { registers: _r, ...answer } = sampling.answer;
      const manifest = { ...tokenizers.manifest, sampling: { ...sampling, answer: manifestRegisters === undefined ? answer : { ...answer, registers: manifestRegisters } } };
      const denoiser = new FakeDenoiser(vocab);
      const pipeline = new Pipeline({ ...tokenizers, manifest }, denoiser);
      await drain(pipeline.answer(blankImage(64, 64), 'how many shapes are there?', { steps: 8, seed: 0, ...(requested === undefined ? {} : { registers: requested }) }));
      return denoiser.calls.map((c) => c.inputIds.filter((id) => id === regId).length);
    };
    expect(new Set(await registersFed(undefined))).toEqual(new Set([R]));
    expect(new Set(await registersFed(0))).toEqual(new Set([0]));
    expect(new Set(await registersFed(0, 3))).toEqual(new Set([3]));
    expect(() => new Pipeline(tokenizers, new FakeDenoiser(vocab)).settings('answer', { registers: R + 1 })).toThrow(PipelineInputError);
  });

  it('streams the answer as its prefix becomes final, deltas adding up to the answer', async () => {
    const pipeline = new Pipeline(tokenizers, new FakeDenoiser(vocab));
    const { events, result } = await drain(pipeline.answer(blankImage(64, 64), 'how many shapes are there?', { steps: 8, seed: 0 }));
    const steps = events as TextStep[];
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.map((e) => e.delta).join('')).toBe(steps.at(-1)!.text);
    expect(result.text.startsWith(steps.at(-1)!.text.split(' ')[0] ?? '')).toBe(true);
    for (let i = 1; i < steps.length; i++) expect(steps[i]!.text.startsWith(steps[i - 1]!.text)).toBe(true);
  });
});

describe('cancellation', () => {
  it('stops between steps when its signal aborts', async () => {
    const denoiser = new FakeDenoiser(vocab);
    const pipeline = new Pipeline(tokenizers, denoiser);
    const controller = new AbortController();
    const it = pipeline.generate('a circle', { steps: 10, signal: controller.signal, seed: 0 });
    const first = (await it.next()).value as ImageStep;
    expect(first.step).toBe(1);
    controller.abort();
    await expect(it.next()).rejects.toThrow(/cancelled/);
    expect(denoiser.disposed).toBe(denoiser.created);
  });
});
