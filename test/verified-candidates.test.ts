/**
 * Text to image with the shipped model and its `sampling.t2i.verify`: the model describes
 * each candidate, the prompt's language reads the description, and drawing stops once
 * `stopAfter` candidates agree with the prompt.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../functions/engine/engine.ts';
import { Pipeline } from '../functions/pipeline/pipeline.ts';
import { loadPackageDir } from '../functions/storage/package-files.ts';
import { createTokenizers } from '../functions/tokenizers/model-tokenizers.ts';
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

  it('draws until two descriptions agree with the prompt and returns the better scored of those two', async () => {
    const verify = pipeline.manifest.sampling?.t2i?.verify;
    expect(verify).toMatchObject({ question: 'describe the image', stopAfter: 2 });
    const options = { seed: 1, sampler: 'sparse' as const };
    const result = await finish(pipeline.generate(prompt, options));
    const { agreed, scores, candidate } = result.chosen!;
    const drawn = result.usage.candidates;
    expect(drawn).toBeLessThanOrEqual(pipeline.settings('t2i', options).candidates);
    // Rebuild every drawn candidate on its own and ask the model about it.
    const check = captionCheck(prompt)!;
    const s = pipeline.settings('t2i', options);
    const agreeing: number[] = [];
    const codes: number[][] = [];
    for (let c = 0; c < drawn; c++) {
      const cs = pipeline.candidateSettings(s, c, {});
      const one = await finish(pipeline.generate(prompt, { ...options, seed: cs.seed, guidance: cs.guidance, temperature: cs.temperature, candidates: 1 }));
      codes.push(one.codes);
      const said = await finish(pipeline.answer(one.image, verify!.question, { sampler: 'sparse' }));
      if (check(said.text)) agreeing.push(c);
    }
    expect(agreed).toEqual(agreeing);
    expect(agreeing).toHaveLength(2);
    expect(agreeing.at(-1)).toBe(drawn - 1);
    expect(agreeing).toContain(candidate);
    const [a, b] = agreeing as [number, number];
    expect(candidate).toBe(scores[b]! > scores[a]! ? b : a);
    expect(scores.filter((x) => x !== null)).toHaveLength(2);
    expect(result.codes).toEqual(codes[candidate]);
  });
});
