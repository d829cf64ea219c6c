/**
 * Text to image with the shipped model and its `sampling.t2i.verify`: the model describes
 * each candidate, the prompt's language reads the description, the description must explain
 * the whole image (`minExplained`) and each of its regions (`minRegionFit`), and drawing
 * stops once `stopAfter` candidates agree.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../functions/engine/engine.ts';
import { Pipeline } from '../functions/pipeline/pipeline.ts';
import { loadPackageDir } from '../functions/storage/package-files.ts';
import { regionFit, RERANK_DEFAULTS, scoreAnswer } from '../functions/sampler/rerank.ts';
import { createTokenizers } from '../functions/tokenizers/model-tokenizers.ts';
import { buildPrompt, codesToIds } from '../functions/tokenizers/prompt-layout.ts';
import { captionCheck } from '../functions/world/language.ts';

const pkg = await loadPackageDir('models/shapes-tiny');
const engine = await createEngine(pkg, { log: () => {} });
afterAll(() => engine.close());
const pipeline = new Pipeline(createTokenizers(pkg), engine);

async function finish<E, R>(it: AsyncGenerator<E, R, void>): Promise<R> {
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

describe('verified candidates', () => {
  const prompt = 'a small red circle at the top left and a large blue square in the center';

  it('draws until two descriptions agree with the prompt and returns the one whose description explains its regions better', async () => {
    const verify = pipeline.manifest.sampling?.t2i?.verify;
    expect(verify).toMatchObject({ question: 'describe the image', stopAfter: 2, minExplained: -5, minRegionFit: -100, rankBy: 'explained' });
    const options = { seed: 1, sampler: 'sparse' as const };
    const result = await finish(pipeline.generate(prompt, options));
    const { agreed, scores, candidate } = result.chosen!;
    const drawn = result.usage.candidates;
    expect(drawn).toBeLessThanOrEqual(pipeline.settings('t2i', options).candidates);
    // Rebuild every drawn candidate on its own and ask the model about it.
    const check = captionCheck(prompt)!;
    const s = pipeline.settings('t2i', options);
    const agreeing: number[] = [];
    const fits: number[] = [];
    const codes: number[][] = [];
    for (let c = 0; c < drawn; c++) {
      const cs = pipeline.candidateSettings(s, c, {});
      const one = await finish(pipeline.generate(prompt, { ...options, seed: cs.seed, guidance: cs.guidance, temperature: cs.temperature, candidates: 1 }));
      codes.push(one.codes);
      const said = await finish(pipeline.answer(one.image, verify!.question, { sampler: 'sparse' }));
      if (!check(said.text)) continue;
      // The description must also explain the whole image, as its text-to-image prompt.
      const asPrompt = buildPrompt(pipeline.manifest, 't2i', pipeline.tokenizers.text.encode(said.text));
      const ids = codesToIds(pipeline.manifest.vocab, one.codes);
      const { score } = await scoreAnswer(engine, pipeline.samplerModel(), pipeline.problem('t2i', asPrompt, asPrompt), ids, { ...RERANK_DEFAULTS, guidance: 1, seed: 1 });
      if (score < verify!.minExplained!) continue;
      // And every region of it: a window the description cannot redraw costs the candidate.
      const fit = (await regionFit(engine, pipeline.samplerModel(), pipeline.problem('t2i', asPrompt, asPrompt), ids)).score;
      if (fit < verify!.minRegionFit!) continue;
      agreeing.push(c);
      fits[c] = fit;
    }
    expect(agreed).toEqual(agreeing);
    expect(agreeing).toHaveLength(2);
    expect(agreeing.at(-1)).toBe(drawn - 1);
    expect(agreeing).toContain(candidate);
    const [a, b] = agreeing as [number, number];
    expect(candidate).toBe(fits[b]! > fits[a]! ? b : a);
    expect(scores[a]).toBeCloseTo(fits[a]!, 3);
    expect(scores[b]).toBeCloseTo(fits[b]!, 3);
    expect(scores.filter((x) => x !== null)).toHaveLength(2);
    expect(result.codes).toEqual(codes[candidate]);
  });

  it.each([
    ['minExplained', 'explain its whole image'],
    ['minRegionFit', 'redraw every region of its image'],
  ] as const)('agrees with no candidate under a %s no description can meet (%s), and then draws them all', async (gate, _what) => {
    const { sampling } = pipeline.manifest;
    const t2i = { ...sampling!.t2i!, candidates: 4, verify: { ...sampling!.t2i!.verify!, [gate]: -1e-12 } };
    const strict = new Pipeline({ ...pipeline.tokenizers, manifest: { ...pipeline.manifest, sampling: { ...sampling!, t2i } } }, engine);
    const result = await finish(strict.generate(prompt, { seed: 1, sampler: 'sparse' }));
    expect(result.chosen!.agreed).toEqual([]);
    expect(result.usage.candidates).toBe(4);
    // With none agreeing the choice falls back to the best-of-n score over all four.
    expect(result.chosen!.scores.every((x) => x !== null)).toBe(true);
  });
});
