/**
 * Ranking finished answers by how well the model itself explains them, for best-of-n
 * sampling: draw several candidates, keep the one with the highest score.
 *
 * The score is a masked-reconstruction likelihood under classifier-free guidance. For each
 * of a few seeded masks that hide a fraction `maskRatio` of the answer, one dense forward
 * pass per branch gives log p(x_i | prompt, visible rest) at every hidden position i, in
 * the conditional (c) and the unconditional (u) branch; the score is the mean over masks of
 *
 *   Σ_i [ w · log p_c(x_i) − (w − 1) · log p_u(x_i) ]
 *
 * (log-probabilities over the ids the task may output). w = 1 is the plain conditional
 * likelihood, which favours whatever is easy to reconstruct (an image with one object over
 * one with the two asked for); w > 1 adds how much the prompt explains, as guidance does
 * when sampling. Every candidate of a request is scored on the same masks, so scores differ
 * by the candidates and not by the draw of the masks.
 */
import type { Denoiser } from '../core/denoiser.ts';
import { Rng } from '../core/rng.ts';
import type { AllowedIds } from './choose.ts';
import type { SampleProblem, SamplerModel } from './sample.ts';

export interface RerankOptions {
  /** Fraction of the answer hidden by each mask, in (0, 1]. */
  readonly maskRatio: number;
  /** Masks per candidate (rows of one forward pass per branch). */
  readonly masks: number;
  /** w above; 1 scores with the conditional branch alone. */
  readonly guidance: number;
  /** Seeds the masks; give every candidate of a request the same one. */
  readonly seed: number;
}

/** The settings measured best on the shapes world (models/train/README.md, "Best of n" and "Varied candidates"). */
export const RERANK_DEFAULTS: Omit<RerankOptions, 'seed'> = { maskRatio: 0.6, masks: 4, guidance: 1.25 };

export interface AnswerScore {
  readonly score: number;
  /** Real tokens pushed through the network for the score. */
  readonly tokensIn: number;
  readonly forwardCalls: number;
}

/** The answer indices each mask hides: `round(maskRatio · L)` distinct ones (at least one). */
export function rerankMasks(length: number, options: Pick<RerankOptions, 'maskRatio' | 'masks' | 'seed'>): number[][] {
  if (!(options.maskRatio > 0 && options.maskRatio <= 1)) throw new RangeError(`maskRatio must be in (0, 1], got ${options.maskRatio}`);
  if (!(Number.isInteger(options.masks) && options.masks >= 1)) throw new RangeError(`masks must be a whole number >= 1, got ${options.masks}`);
  const rng = new Rng((options.seed ^ 0x2c1b3c6d) >>> 0);
  const hidden = Math.max(1, Math.round(options.maskRatio * length));
  const all = [...Array(length).keys()];
  return Array.from({ length: options.masks }, () => rng.shuffle(all).slice(0, hidden));
}

/**
 * Scores one finished answer (see the file comment).
 *
 * @example
 * const { score } = await scoreAnswer(denoiser, model, problem, answer, { ...RERANK_DEFAULTS, seed: 7 });
 */
export async function scoreAnswer(
  denoiser: Denoiser,
  model: Pick<SamplerModel, 'maskId'>,
  problem: SampleProblem,
  answer: readonly number[],
  options: RerankOptions,
): Promise<AnswerScore> {
  if (answer.length !== problem.length) throw new RangeError(`answer has ${answer.length} tokens, the problem ${problem.length}`);
  const branches = options.guidance === 1 ? problem.prompts.slice(0, 1) : problem.prompts.slice(0, 2);
  if (branches.length < (options.guidance === 1 ? 1 : 2)) throw new RangeError('rerank guidance needs a conditional and an unconditional prompt');
  const masks = rerankMasks(problem.length, options);
  const weights = options.guidance === 1 ? [1] : [options.guidance, 1 - options.guidance];
  let score = 0;
  let tokensIn = 0;
  for (const [b, prompt] of branches.entries()) {
    const sums = await maskedLogLikelihoods(denoiser, model.maskId, prompt, problem, answer, masks);
    score += (weights[b] as number) * (sums.reduce((a, s) => a + s, 0) / masks.length);
    tokensIn += masks.length * (prompt.ids.length + problem.length);
  }
  return { score, tokensIn, forwardCalls: branches.length };
}

/**
 * The answer indices of each of 9 overlapping windows of an image answer: squares of half
 * the grid's side at quarter-side steps (row-major indices), together covering the grid.
 *
 * @example
 * windowMasks(16); // 9 lists of 64 indices, the first rows 0-7 × columns 0-7
 */
export function windowMasks(grid: number): number[][] {
  if (!(Number.isInteger(grid) && grid >= 4 && grid % 4 === 0)) throw new RangeError(`window masks need a grid side divisible by 4, got ${grid}`);
  const size = grid / 2;
  const stride = grid / 4;
  const masks: number[][] = [];
  for (let y = 0; y + size <= grid; y += stride) {
    for (let x = 0; x + size <= grid; x += stride) {
      const hidden: number[] = [];
      for (let dy = 0; dy < size; dy++) for (let dx = 0; dx < size; dx++) hidden.push((y + dy) * grid + x + dx);
      masks.push(hidden);
    }
  }
  return masks;
}

/**
 * How well the prompt explains each region of an image answer: Σ over `windowMasks` of
 * Σ log p(x_i | prompt, the image outside the window) over the window's i, conditional
 * branch only, in one dense pass. Random masks leave most of any object visible, so the
 * model completes an object the prompt never mentions from its visible part; a hidden
 * window must be drawn from the prompt and the surroundings alone, so an unmentioned object
 * costs its whole footprint.
 *
 * @example
 * const { score } = await regionFit(denoiser, model, problem, answer);
 */
export async function regionFit(
  denoiser: Denoiser,
  model: Pick<SamplerModel, 'maskId'>,
  problem: SampleProblem,
  answer: readonly number[],
): Promise<AnswerScore> {
  if (problem.kind !== 'image' || problem.grid === undefined) throw new RangeError('regionFit scores image answers');
  if (answer.length !== problem.length) throw new RangeError(`answer has ${answer.length} tokens, the problem ${problem.length}`);
  const prompt = problem.prompts[0];
  if (prompt === undefined) throw new RangeError('regionFit needs the conditional prompt');
  const masks = windowMasks(problem.grid);
  const sums = await maskedLogLikelihoods(denoiser, model.maskId, prompt, problem, answer, masks);
  return { score: sums.reduce((a, s) => a + s, 0), tokensIn: masks.length * (prompt.ids.length + problem.length), forwardCalls: 1 };
}

/** One dense pass of `masks.length` rows: per mask, Σ log p(answer_i) over its hidden i. */
async function maskedLogLikelihoods(
  denoiser: Denoiser,
  maskId: number,
  prompt: SampleProblem['prompts'][number],
  problem: SampleProblem,
  answer: readonly number[],
  masks: readonly (readonly number[])[],
): Promise<number[]> {
  const P = prompt.ids.length;
  const L = problem.length;
  const N = P + L;
  const B = masks.length;
  const inputIds = new Int32Array(B * N);
  const positionIds = new Int32Array(B * N);
  masks.forEach((hidden, b) => {
    inputIds.set(prompt.ids, b * N);
    positionIds.set(prompt.positions, b * N);
    inputIds.set(answer, b * N + P);
    positionIds.set(problem.answerPositions, b * N + P);
    for (const i of hidden) inputIds[b * N + P + i] = maskId;
  });
  // Dense: every token may attend every other (an all-zero bias), as in the dense sampler.
  const out = await denoiser.forward({ batch: B, length: N, inputIds, positionIds, attnBias: new Float32Array(B * N * N), read: { start: P, count: L } });
  const V = out.vocab;
  return masks.map((hidden, b) => {
    let sum = 0;
    for (const i of hidden) sum += logProb(out.logits.subarray((b * L + i) * V, (b * L + i + 1) * V), answer[i] as number, problem.allowed);
    return sum;
  });
}

/** log softmax(row)[id] over the allowed ids. */
function logProb(row: Float32Array, id: number, allowed: AllowedIds): number {
  let max = -Infinity;
  for (const [start, end] of allowed) for (let v = start; v < end; v++) max = Math.max(max, row[v] as number);
  let total = 0;
  for (const [start, end] of allowed) for (let v = start; v < end; v++) total += Math.exp((row[v] as number) - max);
  return (row[id] as number) - max - Math.log(total);
}
