/**
 * The checks a forward pass passes before it is queued: every length agrees with B, N and
 * the cache's C, `append` and `read` stay inside the row, ids stay inside the vocabulary and
 * positions inside the model's position table. A failure names the field and the numbers.
 */
import type { ForwardInput } from '../core/denoiser.ts';
import { EngineError } from './errors.ts';

export interface ForwardLimits {
  /** Token ids are in [0, vocab). */
  readonly vocab: number;
  /** Position ids are in [0, positions). */
  readonly positions: number;
}

function invalid(message: string): EngineError {
  return new EngineError('invalid-input', `forward: ${message}`);
}

function isCount(n: number, min: number): boolean {
  return Number.isInteger(n) && n >= min;
}

function checkRange(name: string, values: Int32Array, end: number, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v < 0 || v >= end) throw invalid(`${name}[${i}] = ${v} is outside ${what} [0, ${end})`);
  }
}

/**
 * Throws an `invalid-input` EngineError unless `input` is a well-formed forward against a
 * cache of `pastLength` tokens per row (0 for a dense call).
 *
 * @example
 * checkForwardInput({ batch: 1, length: 2, inputIds, positionIds, attnBias, read: { start: 0, count: 2 } }, 0, { vocab: 161, positions: 586 });
 */
export function checkForwardInput(input: ForwardInput, pastLength: number, limits: ForwardLimits): void {
  const { batch: b, length: n, read } = input;
  if (!isCount(b, 1)) throw invalid(`batch must be a positive integer, got ${b}`);
  if (!isCount(n, 1)) throw invalid(`length must be a positive integer, got ${n}`);
  for (const [name, got] of [['inputIds', input.inputIds.length], ['positionIds', input.positionIds.length]] as const) {
    if (got !== b * n) throw invalid(`${name} has ${got} entries, expected batch × length = ${b} × ${n} = ${b * n}`);
  }
  const width = pastLength + n;
  if (input.attnBias.length !== b * n * width) {
    throw invalid(
      `attnBias has ${input.attnBias.length} entries, expected batch × length × (cache + length) = ${b} × ${n} × (${pastLength} + ${n}) = ${b * n * width}`,
    );
  }
  const append = input.append ?? 0;
  if (!isCount(append, 0) || append > n) throw invalid(`append must be an integer in [0, length = ${n}], got ${append}`);
  if (append > 0 && input.cache === undefined) throw invalid(`append = ${append} needs a cache to append to`);
  if (!isCount(read.start, 0) || !isCount(read.count, 0) || read.start + read.count > n) {
    throw invalid(`read [${read.start}, ${read.start + read.count}) must lie within the ${n} tokens of a row`);
  }
  checkRange('inputIds', input.inputIds, limits.vocab, 'the vocabulary');
  checkRange('positionIds', input.positionIds, limits.positions, 'the position table');
}
