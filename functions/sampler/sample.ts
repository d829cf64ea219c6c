/**
 * The MDM sampling loop, dense and sparse (docs/design.md section 1; the rules are specified in
 * models/train/SAMPLING.md and the Python reference `models/train/sample.py` follows them).
 *
 * One loop serves every variant. At each step it decides which tokens to feed, each with a
 * block number, and derives the attention bias from the step-causal rule the model was
 * trained with (Sparse-LaViDa section 3.2): block 0 is the prompt, blocks 1..M the tokens
 * decoded at steps 1..M (in decode order), block M+1 this step's masks and the registers.
 * A query in block i may attend a key in block j iff (i <= M and j <= i) or (i > M and
 * (j <= M or j = i)). Because earlier blocks never see later ones, keys/values computed once
 * stay exact: that is what lets the prompt cache and the response cache reuse them.
 *
 * Switches (the paper's speed ablation, Table 5):
 * - promptCache: the prompt runs once (as the first rows of step 1's call) and is read from
 *   the cache afterwards;
 * - responseCache: tokens decoded last step are fed once and appended to the cache;
 * - truncation: only this step's masks are fed instead of every still-masked position.
 * Every variant but dense feeds the R registers with the masks, as training gave every
 * masked block its registers.
 * All three on is Sparse-LaViDa; `dense` is the LaViDa-O baseline: the whole sequence with
 * full attention every step, no registers, no cache.
 *
 * The denoiser is injected; the loop yields one event per step and returns the answer.
 */
import type { Denoiser, KvCache } from '../core/denoiser.ts';
import { Rng } from '../core/rng.ts';
import { choose, guide, type AllowedIds } from './choose.ts';
import { stratifiedOrder } from './order.ts';
import { decodedCounts, textBlockCounts, type Schedule } from './schedule.ts';

export interface Ablation {
  readonly promptCache: boolean;
  readonly responseCache: boolean;
  readonly truncation: boolean;
}

export const SPARSE: Ablation = { promptCache: true, responseCache: true, truncation: true };

/** What the sampler needs to know about the model and the task's token layout. */
export interface SamplerModel {
  readonly maskId: number;
  readonly regId: number;
  readonly endId: number;
  readonly padId: number;
  /** Registers the model was trained with (R). */
  readonly registers: number;
  /** Position ids of the R registers. */
  readonly registerPositions: readonly number[];
}

export interface SampleProblem {
  /** 'image': a grid×grid answer in stratified order; 'text': semi-autoregressive blocks. */
  readonly kind: 'image' | 'text';
  /** Image side in tokens (kind 'image'). */
  readonly grid?: number;
  /** Answer length in tokens. */
  readonly length: number;
  /** Prompt ids and their position ids, per guidance branch: [conditional, unconditional?]. */
  readonly prompts: readonly { readonly ids: readonly number[]; readonly positions: readonly number[] }[];
  /** Position id of each answer index. */
  readonly answerPositions: readonly number[];
  /** Ids the answer may hold. */
  readonly allowed: AllowedIds;
}

export interface SampleOptions {
  readonly sampler: 'dense' | 'sparse';
  /** Sparse variants for the ablation; default all on. Ignored by dense. */
  readonly ablation?: Ablation;
  readonly steps: number;
  readonly schedule: Schedule;
  readonly temperature: number;
  /** Classifier-free guidance scale; 1 runs the conditional branch only. */
  readonly guidance: number;
  readonly seed: number;
  /** Text block length (kind 'text'). */
  readonly textBlock?: number;
  /** Registers fed per sparse step; default the model's R (0 = ablation). */
  readonly registers?: number;
  readonly signal?: AbortSignal;
}

export interface StepEvent {
  /** 1-based. */
  readonly step: number;
  readonly totalSteps: number;
  /** Answer indices decoded at this step, and their tokens. */
  readonly positions: readonly number[];
  readonly tokens: readonly number[];
  /** The answer so far (`maskId` where still masked). A copy. */
  readonly answer: readonly number[];
  readonly maskedFraction: number;
}

export interface SampleResult {
  readonly answer: number[];
  readonly steps: number;
  /** Real (non-padding) tokens pushed through the network, prefill included. */
  readonly tokensIn: number;
  readonly forwardCalls: number;
}

export class SamplingAbortedError extends Error {
  override readonly name = 'SamplingAbortedError';
}

/** A token to feed: id, position id, block (see the file comment; -1 = padding). */
interface Fed {
  readonly id: number;
  readonly pos: number;
  readonly block: number;
}

const PAD_BLOCK = -1;

/** Step-causal visibility (docs/design.md section 1, "Training"). `m` = clean blocks so far. */
export function mayAttend(query: number, key: number, m: number): boolean {
  return query <= m ? key <= query : key <= m || key === query;
}

/** One guidance branch's view of the cache: the block of every cached column. */
interface BranchCache {
  blocks: number[];
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new SamplingAbortedError('sampling was cancelled');
}

/**
 * Samples one answer, yielding a StepEvent after every step.
 *
 * @example
 * const it = sample(denoiser, model, problem, { sampler: 'sparse', steps: 16, … });
 * for (let r = await it.next(); !r.done; r = await it.next()) render(r.value);
 */
export async function* sample(
  denoiser: Denoiser,
  model: SamplerModel,
  problem: SampleProblem,
  options: SampleOptions,
): AsyncGenerator<StepEvent, SampleResult, void> {
  const L = problem.length;
  const guided = options.guidance !== 1;
  const branches = guided ? problem.prompts.slice(0, 2) : problem.prompts.slice(0, 1);
  if (branches.length === 0 || (guided && branches.length < 2)) {
    throw new RangeError(guided ? 'guidance needs a conditional and an unconditional prompt' : 'a prompt is required');
  }
  const dense = options.sampler === 'dense';
  const ablation = dense ? null : (options.ablation ?? SPARSE);
  const registers = dense ? 0 : (options.registers ?? model.registers);
  if (registers > model.registerPositions.length) throw new RangeError(`at most ${model.registerPositions.length} registers`);
  const B = branches.length;
  const sampleRng = new Rng((options.seed ^ 0x5bd1e995) >>> 0);

  // Plan: for images, the step schedule over the stratified order; for text, blocks.
  const imageOrder = problem.kind === 'image' ? stratifiedOrder(problem.grid ?? 0, new Rng(options.seed)) : [];
  if (problem.kind === 'image' && imageOrder.length !== L) throw new RangeError(`grid ${problem.grid} does not give ${L} positions`);
  const counts = problem.kind === 'image' ? decodedCounts(L, options.steps, options.schedule) : [];
  const block = options.textBlock ?? 8;
  if (problem.kind === 'text') {
    if (L % block !== 0) throw new RangeError(`text block ${block} does not divide the answer length ${L}`);
    if (options.steps % (L / block) !== 0) throw new RangeError(`steps (${options.steps}) must be a multiple of the number of text blocks (${L / block})`);
  }
  const stepsPerBlock = problem.kind === 'text' ? options.steps / (L / block) : 0;

  const answer = new Array<number>(L).fill(model.maskId);
  /** Decode step (1-based) of each answer index; 0 = still masked. */
  const decodedAt = new Int32Array(L);
  let lastDecoded: number[] = [];
  let tokensIn = 0;
  let forwardCalls = 0;
  let cache: KvCache | undefined;
  const cacheViews: BranchCache[] = branches.map(() => ({ blocks: [] }));
  const promptLen = Math.max(...branches.map((b) => b.ids.length));

  const promptFeed = (b: number): Fed[] => {
    const p = branches[b] as SampleProblem['prompts'][number];
    const fed: Fed[] = p.ids.map((id, i) => ({ id, pos: p.positions[i] as number, block: 0 }));
    while (fed.length < promptLen) fed.push({ id: model.padId, pos: 0, block: PAD_BLOCK });
    return fed;
  };

  /** Runs the rows (equal length per branch), reading `read` rows; appends the first `append`. */
  const run = async (rows: Fed[][], read: { start: number; count: number }, m: number, append: number, withCache: boolean): Promise<Float32Array[]> => {
    checkAborted(options.signal);
    const N = (rows[0] as Fed[]).length;
    const C = withCache && cache ? cache.length : 0;
    const inputIds = new Int32Array(B * N);
    const positionIds = new Int32Array(B * N);
    const attnBias = new Float32Array(B * N * (C + N));
    rows.forEach((row, b) => {
      const cachedBlocks = (cacheViews[b] as BranchCache).blocks;
      row.forEach((t, q) => {
        inputIds[b * N + q] = t.id;
        positionIds[b * N + q] = t.pos;
        if (t.block !== PAD_BLOCK) tokensIn++;
        const base = (b * N + q) * (C + N);
        for (let c = 0; c < C; c++) if (!visible(t.block, cachedBlocks[c] as number, m, dense)) attnBias[base + c] = denoiser.maskValue;
        for (let k = 0; k < N; k++) if (!visible(t.block, (row[k] as Fed).block, m, dense)) attnBias[base + C + k] = denoiser.maskValue;
      });
    });
    const out = await denoiser.forward({
      batch: B, length: N, inputIds, positionIds, attnBias, read,
      ...(withCache && cache ? { cache, append } : {}),
    });
    forwardCalls++;
    if (withCache && cache && append > 0) {
      rows.forEach((row, b) => (cacheViews[b] as BranchCache).blocks.push(...row.slice(0, append).map((t) => t.block)));
    }
    const V = out.vocab;
    return Array.from({ length: read.count }, (_, r) => {
      const cond = out.logits.subarray(r * V, (r + 1) * V);
      if (B === 1) return cond;
      const uncond = out.logits.subarray((read.count + r) * V, (read.count + r + 1) * V);
      return guide(cond, uncond, options.guidance);
    });
  };

  /** Logits at `now` (answer indices to decode at step k). */
  const logitsAt = async (k: number, now: readonly number[]): Promise<Float32Array[]> => {
    const m = k - 1;
    if (dense || !ablation) {
      const rows = branches.map((_, b) => [
        ...promptFeed(b),
        ...answer.map((id, i) => ({ id, pos: problem.answerPositions[i] as number, block: 0 })),
      ]);
      const all = await run(rows, { start: promptLen, count: L }, m, 0, false);
      return now.map((i) => all[i] as Float32Array);
    }
    // The prompt cache fills in the first step's call: the prompt rows come first and are
    // appended; under the step-causal rule they see only themselves (block 0), so their keys
    // and values are those a separate prefill would compute, and one call is saved.
    const prefill = ablation.promptCache && !cache;
    if (!cache && (ablation.promptCache || ablation.responseCache)) cache = denoiser.createCache(B);
    const toDecode = new Set(now);
    const decodedFeed = (i: number): Fed => ({ id: answer[i] as number, pos: problem.answerPositions[i] as number, block: decodedAt[i] as number });
    const appended = ablation.responseCache ? lastDecoded.map(decodedFeed) : [];
    const earlier = ablation.responseCache ? [] : [...Array(L).keys()].filter((i) => decodedAt[i] !== 0).map(decodedFeed);
    const masks = [
      ...now,
      ...(ablation.truncation ? [] : [...Array(L).keys()].filter((i) => decodedAt[i] === 0 && !toDecode.has(i))),
    ].map((i) => ({ id: model.maskId, pos: problem.answerPositions[i] as number, block: m + 1 }));
    const regs = model.registerPositions.slice(0, registers).map((pos) => ({ id: model.regId, pos, block: m + 1 }));
    const feedPrompt = prefill || !ablation.promptCache;
    const rows = branches.map((_, b) => [...appended, ...(feedPrompt ? promptFeed(b) : []), ...earlier, ...masks, ...regs]);
    const start = appended.length + (feedPrompt ? promptLen : 0) + earlier.length;
    return run(rows, { start, count: now.length }, m, appended.length + (prefill ? promptLen : 0), cache !== undefined);
  };

  const commit = (k: number, positions: readonly number[], tokens: readonly number[]): void => {
    positions.forEach((p, i) => {
      answer[p] = tokens[i] as number;
      decodedAt[p] = k;
    });
    lastDecoded = [...positions];
  };

  try {
    let k = 0;
    if (problem.kind === 'image') {
      let done = 0;
      for (const count of counts) {
        k++;
        const now = imageOrder.slice(done, done + count);
        done += count;
        const logits = await logitsAt(k, now);
        const tokens = logits.map((row) => choose(row, problem.allowed, options.temperature, sampleRng).token);
        commit(k, now, tokens);
        yield event(k, options.steps, now, tokens, answer, 1 - done / L);
      }
    } else {
      const totalSteps = options.steps;
      text: for (let blk = 0; blk < L / block; blk++) {
        let masked = Array.from({ length: block }, (_, i) => blk * block + i);
        for (const count of textBlockCounts(block, stepsPerBlock)) {
          k++;
          const logits = await logitsAt(k, masked);
          const choices = logits.map((row) => choose(row, problem.allowed, options.temperature, sampleRng));
          const ranked = masked
            .map((p, i) => ({ p, i }))
            .sort((a, b) => (choices[b.i] as { confidence: number }).confidence - (choices[a.i] as { confidence: number }).confidence || a.p - b.p)
            .slice(0, count)
            .sort((a, b) => a.p - b.p);
          const positions = ranked.map((r) => r.p);
          commit(k, positions, ranked.map((r) => (choices[r.i] as { token: number }).token));
          const taken = new Set(positions);
          masked = masked.filter((p) => !taken.has(p));
          const final = finishText(answer, model);
          yield event(k, totalSteps, positions, positions.map((p) => answer[p] as number), answer, answer.filter((t) => t === model.maskId).length / L);
          if (final) break text;
        }
      }
    }
    return { answer: [...answer], steps: k, tokensIn, forwardCalls };
  } finally {
    (cache as KvCache | undefined)?.dispose();
  }
}

/**
 * The answer is final once its first `<end>` is decoded and every position before it is too:
 * later positions cannot change the text. Then every position after that `<end>` becomes
 * `<end>` and sampling stops (SAMPLING.md section 4). Returns whether it stopped.
 */
function finishText(answer: number[], model: SamplerModel): boolean {
  const end = answer.indexOf(model.endId);
  if (end < 0) return false;
  for (let p = 0; p < end; p++) if (answer[p] === model.maskId) return false;
  answer.fill(model.endId, end + 1);
  return true;
}

function visible(query: number, key: number, m: number, dense: boolean): boolean {
  if (key === PAD_BLOCK) return false;
  if (dense || query === PAD_BLOCK) return true;
  return mayAttend(query, key, m);
}

function event(step: number, totalSteps: number, positions: readonly number[], tokens: readonly number[], answer: readonly number[], maskedFraction: number): StepEvent {
  return { step, totalSteps, positions: [...positions], tokens: [...tokens], answer: [...answer], maskedFraction };
}
