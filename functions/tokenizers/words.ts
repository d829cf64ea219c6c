/**
 * Splits text into the words a word-level tokenizer sees: lower-cased runs of letters,
 * and every other non-space character on its own ("," and "?" are words of the grammar).
 *
 * @example
 * splitWords('Where is the red circle?') // ['where', 'is', 'the', 'red', 'circle', '?']
 */
export function splitWords(text: string): string[] {
  return text.toLowerCase().match(/[a-z]+|[^\sa-z]/g) ?? [];
}

/** Joins words back into text, attaching punctuation to the word before it. */
export function joinWords(words: readonly string[]): string {
  let out = '';
  for (const w of words) {
    if (out === '' || /^[^a-z]$/.test(w)) out += w;
    else out += ` ${w}`;
  }
  return out;
}
