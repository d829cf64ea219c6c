import { describe, expect, it } from 'vitest';
import { loadPackageDir } from '../storage/package-files.ts';
import { createTokenizers } from './model-tokenizers.ts';
import { UnknownWordError } from './text.ts';

const { text, manifest } = createTokenizers(await loadPackageDir('models/shapes-tiny'));

describe('the text tokenizer', () => {
  it('round-trips a sentence of the grammar, punctuation included', () => {
    const ids = text.encode('What color is the small circle at the top left?');
    expect(ids).toHaveLength(11);
    expect(ids.every((id) => text.isWord(id))).toBe(true);
    expect(text.decode(ids)).toBe('what color is the small circle at the top left?');
  });

  it('gives word ids after the special tokens and before the image codes', () => {
    for (const id of text.encode('a red circle')) {
      expect(id).toBeGreaterThanOrEqual(manifest.vocab.text.start);
      expect(id).toBeLessThan(manifest.vocab.image.start);
    }
  });

  it('names an unknown word and its position', () => {
    expect(() => text.encode('a red hexagon')).toThrow(UnknownWordError);
    expect(() => text.encode('a red hexagon')).toThrow('unknown word "hexagon" at position 3');
    expect(() => text.encode('a red circle!')).toThrow('unknown word "!" at position 4');
  });

  it('stops decoding at the end token and skips padding', () => {
    const { end, pad } = manifest.vocab.special;
    const ids = [pad, ...text.encode('two'), end, ...text.encode('circles')];
    expect(text.decode(ids)).toBe('two');
  });

  it('refuses to decode an image code as text', () => {
    expect(() => text.decode([manifest.vocab.image.start])).toThrow(/not a word/);
  });
});
