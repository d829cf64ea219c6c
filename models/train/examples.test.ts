import { describe, expect, it } from 'vitest';
import { Rng } from '../../functions/core/rng.ts';
import { loadPackageDir } from '../../functions/storage/package-files.ts';
import { createTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';
import { t2iCategory, T2I_CATEGORIES } from '../world/cases.ts';
import { EVEN_T2I_CATEGORIES, parseCategoryWeights, t2iExample } from './examples.ts';

const tok = createTokenizers(await loadPackageDir('models/shapes-tiny'));
const captionOf = (prompt: number[]) => tok.text.decode(prompt.slice(1).filter((id) => id !== tok.manifest.vocab.special.pad));

describe('text-to-image category weights', () => {
  it('parses named weights and keeps weight 1 for the others', () => {
    const w = parseCategoryWeights('counting:3, color_attribution:0.5');
    expect(w.counting).toBe(3);
    expect(w.color_attribution).toBe(0.5);
    expect(w.single_object).toBe(1);
  });

  it('names an unknown or repeated category, a malformed part, a bad weight, and all-zero weights', () => {
    expect(() => parseCategoryWeights('count:2')).toThrow(/unknown text-to-image category "count"/);
    expect(() => parseCategoryWeights('counting:-1')).toThrow(/weight of counting must be a number >= 0, got "-1"/);
    expect(() => parseCategoryWeights('counting')).toThrow(/"counting" is not name:weight/);
    expect(() => parseCategoryWeights('counting:1:2')).toThrow(/"counting:1:2" is not name:weight/);
    expect(() => parseCategoryWeights('counting:1,counting:2')).toThrow(/counting is weighted twice/);
    const zeros = T2I_CATEGORIES.map((c) => `${c}:0`).join(',');
    expect(() => parseCategoryWeights(zeros)).toThrow(/at least one/);
  });

  it('draws the evaluation-style half of the prompts from the weighted categories', () => {
    const countingOnly = parseCategoryWeights(T2I_CATEGORIES.map((c) => `${c}:${c === 'counting' ? 1 : 0}`).join(','));
    const counting = (weights: typeof EVEN_T2I_CATEGORIES) => {
      const rng = new Rng(3);
      return Array.from({ length: 200 }, () => t2iCategory(captionOf(t2iExample(tok, rng, weights).prompt))).filter((c) => c === 'counting').length;
    };
    // Half the prompts are partial captions of random scenes, whatever the weights.
    expect(counting(countingOnly)).toBeGreaterThan(85);
    expect(counting(EVEN_T2I_CATEGORIES)).toBeLessThan(40);
  });
});
