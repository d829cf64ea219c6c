/**
 * How many tokens each step decodes (models/train/SAMPLING.md section 2).
 *
 * The masked share at time t (t runs from 1 to 0) follows LaViDa-O's shifted schedule
 * `m(t) = shift·t / (1 + (shift−1)·t)` (shift > 1: few tokens early, many late) or MaskGIT's
 * cosine `m(t) = cos(π/2·(1−t))`. The invariant "at least one per step, all by the last"
 * lives here and only here.
 */
export type ScheduleKind = 'shift' | 'cosine';

export interface Schedule {
  readonly kind: ScheduleKind;
  /** Used by `shift` only. */
  readonly shift: number;
}

/** Share of the answer still masked at time t in [0, 1]. */
export function maskedFraction(schedule: Schedule, t: number): number {
  if (schedule.kind === 'shift') return (schedule.shift * t) / (1 + (schedule.shift - 1) * t);
  return Math.cos((Math.PI / 2) * (1 - t));
}

function roundHalfUp(x: number): number {
  return Math.floor(x + 0.5);
}

/**
 * Tokens decoded at each of `steps` steps: each >= 1, summing to `length`.
 *
 * @example
 * decodedCounts(256, 16, { kind: 'shift', shift: 3 }) // [6, 6, 6, 8, …, 43]
 */
export function decodedCounts(length: number, steps: number, schedule: Schedule): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > length) {
    throw new RangeError(`steps must be an integer in 1..${length}, got ${steps}`);
  }
  const counts: number[] = [];
  let done = 0;
  for (let k = 1; k <= steps; k++) {
    let target = length - roundHalfUp(length * maskedFraction(schedule, 1 - k / steps));
    target = Math.max(done + 1, Math.min(target, length - (steps - k)));
    counts.push(target - done);
    done = target;
  }
  return counts;
}

/** Tokens committed at each of `steps` steps within one text block of `block` tokens (SAMPLING.md section 4). */
export function textBlockCounts(block: number, steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > block) {
    throw new RangeError(`steps per text block must be an integer in 1..${block}, got ${steps}`);
  }
  return Array.from({ length: steps }, (_, i) => Math.floor((block * (i + 1)) / steps) - Math.floor((block * i) / steps));
}
