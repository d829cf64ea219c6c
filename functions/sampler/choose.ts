/**
 * Turning logits into tokens (models/train/SAMPLING.md section 5): classifier-free
 * guidance on raw logits, a restriction to the ids the task may output, then arg-max
 * (temperature 0) or a seeded draw from the tempered softmax.
 */
import type { Rng } from '../core/rng.ts';

/** Ids a task may output, as sorted disjoint ranges [start, end). */
export type AllowedIds = readonly (readonly [number, number])[];

export interface Choice {
  readonly token: number;
  /** Probability of the chosen token (tempered, after guidance); ranks text commits. */
  readonly confidence: number;
}

/**
 * Classifier-free guidance (Ho & Salimans 2022) on one row: `u + w·(c − u)`, in float32
 * as the reference computes it.
 */
export function guide(cond: Float32Array, uncond: Float32Array, scale: number): Float32Array {
  const out = new Float32Array(cond.length);
  const w = Math.fround(scale);
  for (let i = 0; i < cond.length; i++) {
    const u = uncond[i] as number;
    out[i] = Math.fround(u + Math.fround(w * Math.fround((cond[i] as number) - u)));
  }
  return out;
}

/**
 * Picks a token from one row of logits.
 *
 * @example
 * choose(logits, [[58, 161]], 0, rng) // arg-max among image codes 58..160
 */
export function choose(logits: Float32Array, allowed: AllowedIds, temperature: number, rng: Rng): Choice {
  let best = -1;
  let max = -Infinity;
  for (const [start, end] of allowed) {
    for (let id = start; id < end; id++) {
      const v = logits[id] as number;
      if (v > max) {
        max = v;
        best = id;
      }
    }
  }
  if (best < 0) throw new RangeError('no id is allowed');
  const scale = temperature === 0 ? 1 : 1 / temperature;
  let total = 0;
  for (const [start, end] of allowed) for (let id = start; id < end; id++) total += Math.exp(((logits[id] as number) - max) * scale);
  if (temperature === 0) return { token: best, confidence: 1 / total };
  const target = rng.next() * total;
  let cumulative = 0;
  let last = best;
  for (const [start, end] of allowed) {
    for (let id = start; id < end; id++) {
      const p = Math.exp(((logits[id] as number) - max) * scale);
      cumulative += p;
      last = id;
      if (cumulative > target) return { token: id, confidence: p / total };
    }
  }
  return { token: last, confidence: Math.exp(((logits[last] as number) - max) * scale) / total };
}
