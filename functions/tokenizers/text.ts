/**
 * Word-level text tokenizer over the vocabulary of a model package: special tokens first,
 * then one id per word. Text outside the vocabulary is an error naming the word and its
 * 1-based position, so a client learns exactly what to change.
 */
import type { Manifest, SpecialTokens, VocabFile } from '../core/manifest.ts';
import { joinWords, splitWords } from './words.ts';

export class UnknownWordError extends Error {
  override readonly name = 'UnknownWordError';
  constructor(
    readonly word: string,
    readonly position: number,
    readonly text: string,
  ) {
    super(`unknown word "${word}" at position ${position} in "${text}"`);
  }
}

export class TextTokenizer {
  readonly special: SpecialTokens;
  private readonly ids = new Map<string, number>();
  private readonly words: string[] = [];
  private readonly textStart: number;

  constructor(vocab: Manifest['vocab'], file: VocabFile) {
    this.special = vocab.special;
    this.textStart = vocab.text.start;
    const tokens = file.tokens;
    if (tokens.length !== vocab.text.start + vocab.text.count) {
      throw new RangeError(`vocab file has ${tokens.length} tokens, the manifest expects ${vocab.text.start + vocab.text.count}`);
    }
    for (let id = vocab.text.start; id < tokens.length; id++) {
      const word = tokens[id] as string;
      this.ids.set(word, id);
      this.words.push(word);
    }
  }

  /** Whether an id is a word (not a special token or an image code). */
  isWord(id: number): boolean {
    return id >= this.textStart && id < this.textStart + this.words.length;
  }

  /**
   * @example
   * tok.encode('what color is the circle?') // [id('what'), id('color'), …, id('?')]
   */
  encode(text: string): number[] {
    return splitWords(text).map((w, i) => {
      const id = this.ids.get(w);
      if (id === undefined) throw new UnknownWordError(w, i + 1, text);
      return id;
    });
  }

  /** Text of ids up to the first end token; pads are skipped, other non-word ids are an error. */
  decode(ids: ArrayLike<number>): string {
    const words: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (id === this.special.end) break;
      if (id === this.special.pad) continue;
      if (!this.isWord(id)) throw new RangeError(`id ${id} at index ${i} is not a word`);
      words.push(this.words[id - this.textStart] as string);
    }
    return joinWords(words);
  }
}
