/**
 * How a task becomes a token prompt (the model's input contract, shared by training-data
 * export and serving):
 *   t2i:    <t2i> text…
 *   edit:   <edit> image codes (grid*grid, row-major) <sep> instruction…
 *   answer: <answer> image codes <sep> question…
 * Image codes are stored in the vocabulary after the words: id = image.start + code.
 * The answer is grid*grid image ids (t2i, edit) or up to `limits.answer.answer` text ids
 * followed by <end> fill (answer).
 */
import type { Manifest, TaskName } from '../core/manifest.ts';

export class PromptTooLongError extends Error {
  override readonly name = 'PromptTooLongError';
}

export function codesToIds(vocab: Manifest['vocab'], codes: ArrayLike<number>): number[] {
  return Array.from(codes, (c) => {
    if (!Number.isInteger(c) || c < 0 || c >= vocab.image.count) throw new RangeError(`image code ${c} is outside 0..${vocab.image.count - 1}`);
    return vocab.image.start + c;
  });
}

export function idsToCodes(vocab: Manifest['vocab'], ids: ArrayLike<number>): number[] {
  return Array.from(ids, (id, i) => {
    const c = id - vocab.image.start;
    if (c < 0 || c >= vocab.image.count) throw new RangeError(`id ${id} at index ${i} is not an image code`);
    return c;
  });
}

/** The prompt ids of a task. `textIds` are the tokenized text; `imageCodes` the source image for edit/answer. */
export function buildPrompt(
  manifest: Manifest,
  task: TaskName,
  textIds: readonly number[],
  imageCodes?: ArrayLike<number>,
): number[] {
  const { special } = manifest.vocab;
  let ids: number[];
  if (task === 't2i') {
    ids = [special.t2i, ...textIds];
  } else {
    if (!imageCodes) throw new TypeError(`task ${task} needs a source image`);
    const grid = manifest.image.grid;
    if (imageCodes.length !== grid * grid) throw new RangeError(`expected ${grid * grid} image codes, got ${imageCodes.length}`);
    ids = [task === 'edit' ? special.edit : special.answer, ...codesToIds(manifest.vocab, imageCodes), special.sep, ...textIds];
  }
  const limit = manifest.limits[task]?.prompt;
  if (limit === undefined) throw new RangeError(`the model has no limits for task ${task}`);
  if (ids.length > limit) {
    throw new PromptTooLongError(`the ${task} prompt is ${ids.length} tokens, the model takes at most ${limit}`);
  }
  return ids;
}

/** The answer length of a task, in tokens. */
export function answerLength(manifest: Manifest, task: TaskName): number {
  const limit = manifest.limits[task]?.answer;
  if (limit === undefined) throw new RangeError(`the model has no limits for task ${task}`);
  return limit;
}
