/**
 * Tasks on top of the sampler: text-to-image, edit and answer. A request becomes a token
 * problem (prompt ids, position ids, the unconditional branch for guidance); the sampler's
 * step events become previews (the partly decoded image, masked patches in a neutral tone)
 * or the answer's final prefix; the last event carries the result.
 */
import type { Denoiser } from '../core/denoiser.ts';
import type { RgbImage } from '../core/image.ts';
import { MAX_CANDIDATES, type Manifest, type ModelSpec, type SamplingDefaults, type TaskName } from '../core/manifest.ts';
import type { ModelTokenizers } from '../tokenizers/model-tokenizers.ts';
import { buildPrompt, idsToCodes, PromptTooLongError } from '../tokenizers/prompt-layout.ts';
import type { AllowedIds } from '../sampler/choose.ts';
import { sample, SamplingAbortedError, type Ablation, type SampleProblem, type SampleResult, type SamplerModel, type StepEvent } from '../sampler/sample.ts';
import { RERANK_DEFAULTS, regionFit, scoreAnswer, type AnswerScore } from '../sampler/rerank.ts';
import { PATCH_SIDE, PATCH_VALUES } from '../tokenizers/image-vq.ts';
import { PROMPT_CHECKS } from './verify.ts';

/** Knobs a request may set; anything left out comes from the manifest's sampling defaults. */
export interface GenerationOptions {
  readonly sampler?: 'dense' | 'sparse';
  readonly ablation?: Ablation;
  readonly steps?: number;
  readonly temperature?: number;
  readonly guidance?: number;
  readonly seed?: number;
  /** A preview every N steps (0 = none); the last step always has the final image. */
  readonly previewEvery?: number;
  /** Registers fed per sparse step (default: the task's `sampling.registers`, else all R). */
  readonly registers?: number;
  /**
   * Images only: draw up to this many candidates and return the one the model scores best
   * (functions/sampler/rerank.ts), among those its own description agrees with where the
   * manifest sets `sampling.t2i.verify` (which may stop the drawing sooner). Default: the
   * task's `sampling.candidates`, else 1.
   */
  readonly candidates?: number;
  readonly signal?: AbortSignal;
}

export interface ImageStep {
  readonly type: 'step';
  /** Counted over every candidate: candidate c's step s is c * steps + s. */
  readonly step: number;
  /** steps * candidates: the most a request takes (`sampling.t2i.verify` may end it sooner). */
  readonly totalSteps: number;
  /** The candidate being drawn (0-based); previews show it. */
  readonly candidate: number;
  /** Of the candidate being drawn. */
  readonly maskedFraction: number;
  /** Present every `previewEvery` steps. */
  readonly preview?: RgbImage;
}

export interface TextStep {
  readonly type: 'step';
  readonly step: number;
  readonly totalSteps: number;
  readonly maskedFraction: number;
  /** The answer's text as far as it is final (every position before it decoded). */
  readonly text: string;
  /** What `text` added since the previous step. */
  readonly delta: string;
}

export interface Usage {
  /** Steps per candidate. */
  readonly steps: number;
  /** Candidates drawn (1 for answers; with `sampling.t2i.verify`, possibly fewer than asked for). */
  readonly candidates: number;
  /** Tokens pushed through the network, every candidate, its score and its check included. */
  readonly tokensIn: number;
  readonly forwardCalls: number;
  readonly seconds: number;
  readonly sampler: 'dense' | 'sparse';
  readonly seed: number;
}

export interface ImageResult {
  readonly image: RgbImage;
  readonly codes: number[];
  readonly usage: Usage;
  /**
   * Present when candidates > 1: which drawn candidate this is; what each drawn candidate was
   * chosen by, its best-of-n score or, under `verify.rankBy` 'explained', the region fit of an
   * agreeing one (null where none was needed: a lone candidate the check agrees with is not
   * scored); with `sampling.t2i.verify`, the candidates whose description agrees with the prompt.
   */
  readonly chosen?: { readonly candidate: number; readonly scores: readonly (number | null)[]; readonly agreed?: readonly number[] };
}

export interface TextResult {
  readonly text: string;
  readonly usage: Usage;
}

/** Raised for requests the model cannot take (bad option values); tokenizer errors pass through. */
export class PipelineInputError extends Error {
  override readonly name = 'PipelineInputError';
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

/** The sampling settings a request runs with. */
export interface Settings {
  readonly sampler: 'dense' | 'sparse';
  readonly steps: number;
  readonly temperature: number;
  readonly guidance: number;
  readonly seed: number;
  /** Registers per sparse step; undefined: all the model has. */
  readonly registers: number | undefined;
  /** Candidates drawn (always 1 for answers). */
  readonly candidates: number;
  /** Step events of the request at most: steps * candidates. */
  readonly totalSteps: number;
  /**
   * Step events the request takes at least: totalSteps, or fewer where `sampling.t2i.verify`
   * may end it once `stopAfter` candidates agree.
   */
  readonly fewestSteps: number;
  readonly defaults: SamplingDefaults;
}

/** Patches still masked in a preview are this gray. */
export const PREVIEW_MASK_GRAY = 200;

export class Pipeline {
  readonly manifest: Manifest;
  readonly model: ModelSpec;
  private readonly maskPatch: Uint8Array;
  /** The ids of `sampling.t2i.verify.question`, encoded once. */
  private readonly verifyQuestion: number[] = [];

  constructor(
    readonly tokenizers: ModelTokenizers,
    readonly denoiser: Denoiser,
  ) {
    this.manifest = tokenizers.manifest;
    if (!this.manifest.model) throw new RangeError(`package ${this.manifest.name} has no denoiser (manifest.model)`);
    this.model = this.manifest.model;
    const question = this.manifest.sampling?.t2i?.verify?.question;
    if (question !== undefined) {
      try {
        this.verifyQuestion = tokenizers.text.encode(question);
      } catch (e) {
        throw new RangeError(`package ${this.manifest.name}: sampling.t2i.verify.question cannot be asked: ${(e as Error).message}`);
      }
    }
    this.maskPatch = new Uint8Array(PATCH_VALUES).fill(PREVIEW_MASK_GRAY);
  }

  /**
   * Text to image.
   *
   * @example
   * for await (const e of pipeline.generate('a red circle', { previewEvery: 4 })) …
   */
  generate(prompt: string, options: GenerationOptions = {}): AsyncGenerator<ImageStep, ImageResult, void> {
    const ids = this.tokenizers.text.encode(prompt);
    const verify = this.manifest.sampling?.t2i?.verify;
    const check = verify ? PROMPT_CHECKS[verify.language](prompt) : null;
    return this.image('t2i', buildPrompt(this.manifest, 't2i', ids), buildPrompt(this.manifest, 't2i', []), options, check);
  }

  /** Edits a 64x64 image (see functions/tokenizers/png.ts `toModelImage` for other sizes). */
  edit(image: RgbImage, instruction: string, options: GenerationOptions = {}): AsyncGenerator<ImageStep, ImageResult, void> {
    const codes = this.tokenizers.image.encode(image);
    const ids = this.tokenizers.text.encode(instruction);
    return this.image('edit', buildPrompt(this.manifest, 'edit', ids, codes), buildPrompt(this.manifest, 'edit', [], codes), options);
  }

  /**
   * Answers a question about a 64x64 image, streaming the answer's final prefix. Like
   * `generate` and `edit`, an unknown word or a wrong image size throws here, before any step.
   */
  answer(image: RgbImage, question: string, options: GenerationOptions = {}): AsyncGenerator<TextStep, TextResult, void> {
    const codes = this.tokenizers.image.encode(image);
    return this.text(buildPrompt(this.manifest, 'answer', this.tokenizers.text.encode(question), codes), options);
  }

  private async *text(prompt: number[], options: GenerationOptions): AsyncGenerator<TextStep, TextResult, void> {
    const run = this.run(this.settings('answer', options), this.problem('answer', prompt, prompt), options);
    let shown = '';
    for (;;) {
      const r = await run.next();
      if (r.done) {
        const finalText = this.tokenizers.text.decode(r.value.result.answer);
        return { text: finalText, usage: r.value.usage };
      }
      const e = r.value;
      const firstMasked = e.answer.indexOf(this.manifest.vocab.special.mask);
      const text = this.tokenizers.text.decode(firstMasked < 0 ? e.answer : e.answer.slice(0, firstMasked));
      const delta = text.startsWith(shown) ? text.slice(shown.length) : text;
      shown = text;
      yield { type: 'step', step: e.step, totalSteps: e.totalSteps, maskedFraction: e.maskedFraction, text, delta };
    }
  }

  private async *image(
    task: 't2i' | 'edit',
    prompt: number[],
    uncond: number[],
    options: GenerationOptions,
    check: ((answer: string) => boolean) | null = null,
  ): AsyncGenerator<ImageStep, ImageResult, void> {
    const every = options.previewEvery ?? 0;
    if (!Number.isInteger(every) || every < 0) throw new PipelineInputError(`preview_every must be a whole number >= 0, got ${every}`, 'preview_every');
    const s = this.settings(task, options);
    const started = performance.now();
    const problem = this.problem(task, prompt, uncond);
    const verify = s.candidates > 1 && check !== null ? s.defaults.verify : undefined;
    const drawn: number[][] = [];
    const agreed: number[] = [];
    const descriptions: string[] = [];
    /** Region fits computed for `minRegionFit`, reused when ranking by them. */
    const fits: number[] = [];
    let tokensIn = 0;
    let forwardCalls = 0;
    for (let c = 0; c < s.candidates && !(verify && agreed.length >= verify.stopAfter); c++) {
      const run = this.run(this.candidateSettings(s, c, options), problem, options);
      for (;;) {
        const r = await run.next();
        if (r.done) {
          drawn.push(r.value.result.answer);
          tokensIn += r.value.usage.tokensIn;
          forwardCalls += r.value.usage.forwardCalls;
          break;
        }
        const e = r.value;
        const step = c * s.steps + e.step;
        const wantPreview = every > 0 && (step % every === 0 || step === s.totalSteps);
        yield {
          type: 'step', step, totalSteps: s.totalSteps, candidate: c, maskedFraction: e.maskedFraction,
          ...(wantPreview ? { preview: this.preview(e.answer) } : {}),
        };
      }
      if (verify && check) {
        if (options.signal?.aborted) throw new SamplingAbortedError('sampling was cancelled');
        const said = await this.ask(drawn[c] as number[], s.sampler, options);
        tokensIn += said.usage.tokensIn;
        forwardCalls += said.usage.forwardCalls;
        if (!check(said.text)) continue;
        const explained = verify.minExplained === undefined ? null : await this.explained(drawn[c] as number[], said.text, 'likelihood', s.seed);
        if (explained) {
          tokensIn += explained.tokensIn;
          forwardCalls += explained.forwardCalls;
        }
        if (explained !== null && explained.score < (verify.minExplained as number)) continue;
        if (verify.minRegionFit !== undefined) {
          const fit = await this.explained(drawn[c] as number[], said.text, 'regions', s.seed);
          tokensIn += fit.tokensIn;
          forwardCalls += fit.forwardCalls;
          if (fit.score < verify.minRegionFit) continue;
          fits[c] = fit.score;
        }
        agreed.push(c);
        descriptions[c] = said.text;
      }
    }
    // Among the candidates the check agrees with, by how well their descriptions explain
    // them (rankBy 'explained'); otherwise best of n among those, else among all drawn, every
    // candidate scored on the same masks (seeded by the request's seed). Ties go to the
    // earliest candidate; candidate 0 is what a one-candidate request draws.
    const pool = agreed.length > 0 ? agreed : [...drawn.keys()];
    const byFit = agreed.length > 0 && verify?.rankBy === 'explained';
    const scores: (number | null)[] = drawn.map(() => null);
    for (const c of pool.length > 1 ? pool : []) {
      if (options.signal?.aborted) throw new SamplingAbortedError('sampling was cancelled');
      if (byFit && fits[c] !== undefined) {
        scores[c] = fits[c];
        continue;
      }
      const scored = byFit
        ? await this.explained(drawn[c] as number[], descriptions[c] as string, 'regions', s.seed)
        : await scoreAnswer(this.denoiser, this.samplerModel(), problem, drawn[c] as number[], { ...RERANK_DEFAULTS, seed: s.seed });
      scores[c] = scored.score;
      tokensIn += scored.tokensIn;
      forwardCalls += scored.forwardCalls;
    }
    const best = pool.reduce((b, c) => ((scores[c] ?? -Infinity) > (scores[b] ?? -Infinity) ? c : b), pool[0] as number);
    const codes = idsToCodes(this.manifest.vocab, drawn[best] as number[]);
    const usage: Usage = {
      steps: s.steps, candidates: drawn.length, tokensIn, forwardCalls,
      seconds: (performance.now() - started) / 1000, sampler: s.sampler, seed: s.seed,
    };
    const chosen = s.candidates > 1 ? { candidate: best, scores, ...(verify ? { agreed } : {}) } : undefined;
    return { image: this.tokenizers.image.decode(codes), codes, usage, ...(chosen ? { chosen } : {}) };
  }

  /**
   * How well a description explains a drawn image, with the description as the image's
   * text-to-image prompt (conditional only): its masked-reconstruction log-likelihood on the
   * request's masks ('likelihood', for `minExplained`), or its region fit ('regions', for
   * rankBy 'explained'; functions/sampler/rerank.ts). A description too long to be a prompt
   * explains nothing.
   */
  private async explained(answer: readonly number[], description: string, how: 'likelihood' | 'regions', seed: number): Promise<AnswerScore> {
    let prompt: number[];
    try {
      prompt = buildPrompt(this.manifest, 't2i', this.tokenizers.text.encode(description));
    } catch (e) {
      if (e instanceof PromptTooLongError) return { score: -Infinity, tokensIn: 0, forwardCalls: 0 };
      throw e;
    }
    const problem = this.problem('t2i', prompt, prompt);
    return how === 'regions'
      ? regionFit(this.denoiser, this.samplerModel(), problem, answer)
      : scoreAnswer(this.denoiser, this.samplerModel(), problem, answer, { ...RERANK_DEFAULTS, guidance: 1, seed });
  }

  /** The model's answer to `sampling.t2i.verify.question` about a drawn image (ids of the image vocabulary). */
  private async ask(answer: readonly number[], sampler: Settings['sampler'], options: GenerationOptions): Promise<TextResult> {
    const prompt = buildPrompt(this.manifest, 'answer', this.verifyQuestion, idsToCodes(this.manifest.vocab, answer));
    const run = this.run(this.settings('answer', { sampler, seed: 0 }), this.problem('answer', prompt, prompt), options);
    for (;;) {
      const r = await run.next();
      if (r.done) return { text: this.tokenizers.text.decode(r.value.result.answer), usage: r.value.usage };
    }
  }

  /**
   * What candidate `c` samples with: its seed (`candidateSeed`) and the manifest's
   * `variants[c mod n]` over the task defaults; guidance or temperature given in the request
   * hold for every candidate.
   */
  candidateSettings(s: Settings, c: number, options: Pick<GenerationOptions, 'guidance' | 'temperature'>): Settings {
    const variants = s.defaults.variants;
    const variant = variants?.[c % variants.length];
    return {
      ...s,
      seed: candidateSeed(s.seed, c),
      guidance: options.guidance ?? variant?.guidance ?? s.guidance,
      temperature: options.temperature ?? variant?.temperature ?? s.temperature,
    };
  }

  /** The partly decoded image: decoded patches from the codebook, masked ones gray. */
  preview(answer: readonly number[]): RgbImage {
    const { vocab, image } = this.manifest;
    const grid = image.grid;
    const side = grid * PATCH_SIDE;
    const data = new Uint8Array(side * side * 3);
    const codebook = this.tokenizers.image.codebook;
    answer.forEach((id, p) => {
      const code = id - vocab.image.start;
      const patch = code >= 0 && code < vocab.image.count ? codebook.subarray(code * PATCH_VALUES, (code + 1) * PATCH_VALUES) : this.maskPatch;
      const px = (p % grid) * PATCH_SIDE;
      const py = Math.floor(p / grid) * PATCH_SIDE;
      for (let y = 0; y < PATCH_SIDE; y++) data.set(patch.subarray(y * PATCH_SIDE * 3, (y + 1) * PATCH_SIDE * 3), ((py + y) * side + px) * 3);
    });
    return { width: side, height: side, data };
  }

  /**
   * Resolved sampling settings for a task: request values over manifest defaults. Throws the
   * PipelineInputError a run with these options would, so a caller can refuse a request early.
   */
  settings(task: TaskName, options: GenerationOptions): Settings {
    const defaults = this.manifest.sampling?.[task] ?? { steps: task === 'answer' ? 8 : 16, shift: 3, temperature: task === 'answer' ? 0 : 1, guidance: 1 };
    const s: Omit<Settings, 'totalSteps' | 'fewestSteps'> = {
      sampler: options.sampler ?? 'sparse',
      steps: options.steps ?? defaults.steps,
      temperature: options.temperature ?? defaults.temperature,
      guidance: task === 'answer' ? 1 : (options.guidance ?? defaults.guidance),
      seed: options.seed ?? Math.floor(Math.random() * 2 ** 31),
      registers: options.registers ?? defaults.registers,
      candidates: task === 'answer' ? 1 : (options.candidates ?? defaults.candidates ?? 1),
      defaults,
    };
    const limit = this.manifest.limits[task]?.answer ?? 0;
    if (!Number.isInteger(s.steps) || s.steps < 1 || s.steps > limit) throw new PipelineInputError(`steps must be a whole number in 1..${limit}, got ${s.steps}`, 'steps');
    if (!(s.temperature >= 0 && s.temperature <= 10)) throw new PipelineInputError(`temperature must be in 0..10, got ${s.temperature}`, 'temperature');
    if (!(s.guidance >= 0 && s.guidance <= 20)) throw new PipelineInputError(`guidance_scale must be in 0..20, got ${s.guidance}`, 'guidance_scale');
    if (!Number.isInteger(s.seed) || s.seed < 0 || s.seed >= 2 ** 32) throw new PipelineInputError(`seed must be a whole number in 0..4294967295, got ${s.seed}`, 'seed');
    if (s.registers !== undefined && !(Number.isInteger(s.registers) && s.registers >= 0 && s.registers <= this.model.registers)) {
      throw new PipelineInputError(`registers must be a whole number in 0..${this.model.registers}, got ${s.registers}`, 'registers');
    }
    if (!(Number.isInteger(s.candidates) && s.candidates >= 1 && s.candidates <= MAX_CANDIDATES)) {
      throw new PipelineInputError(`candidates must be a whole number in 1..${MAX_CANDIDATES}, got ${s.candidates}`, 'candidates');
    }
    const blocks = limit / (defaults.block ?? 8);
    if (task === 'answer' && s.steps % blocks !== 0) {
      throw new PipelineInputError(`steps must be a multiple of ${blocks} for answers (text blocks of ${defaults.block ?? 8}), got ${s.steps}`, 'steps');
    }
    const stopAfter = task === 't2i' && s.candidates > 1 ? defaults.verify?.stopAfter : undefined;
    return { ...s, totalSteps: s.steps * s.candidates, fewestSteps: s.steps * Math.min(s.candidates, stopAfter ?? s.candidates) };
  }

  /**
   * The token problem of a task: prompts (conditional, unconditional) with their position
   * ids, the answer's positions and the ids it may hold.
   */
  problem(task: TaskName, prompt: readonly number[], uncond: readonly number[]): SampleProblem {
    const seg = this.model.positions.segments;
    const { special, text, image } = this.manifest.vocab;
    const length = this.manifest.limits[task]?.answer ?? 0;
    const allowed: AllowedIds = task === 'answer'
      ? [[special.end, special.end + 1], [text.start, text.start + text.count]]
      : [[image.start, image.start + image.count]];
    return {
      kind: task === 'answer' ? 'text' : 'image',
      grid: this.manifest.image.grid,
      length,
      prompts: [prompt, uncond].map((ids) => ({ ids, positions: this.promptPositions(task, ids.length) })),
      answerPositions: Array.from({ length }, (_, i) => (task === 'answer' ? seg.answer.start : seg.image.start) + i),
      allowed,
    };
  }

  /** One run of the sampler with resolved settings (one candidate). */
  private async *run(s: Settings, problem: SampleProblem, options: GenerationOptions): AsyncGenerator<StepEvent, { result: SampleResult; usage: Usage }, void> {
    const block = s.defaults.block ?? 8;
    const started = performance.now();
    const it = sample(this.denoiser, this.samplerModel(), problem, {
      sampler: s.sampler,
      steps: s.steps,
      schedule: { kind: 'shift', shift: s.defaults.shift },
      temperature: s.temperature,
      guidance: s.guidance,
      seed: s.seed,
      textBlock: block,
      ...(options.ablation ? { ablation: options.ablation } : {}),
      ...(s.registers !== undefined ? { registers: s.registers } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        const usage: Usage = {
          steps: r.value.steps, candidates: 1, tokensIn: r.value.tokensIn, forwardCalls: r.value.forwardCalls,
          seconds: (performance.now() - started) / 1000, sampler: s.sampler, seed: s.seed,
        };
        return { result: r.value, usage };
      }
      yield r.value;
    }
  }

  /** What the sampler needs to know about this model's tokens. */
  samplerModel(): SamplerModel {
    const { special } = this.manifest.vocab;
    const reg = this.model.positions.segments.registers;
    return {
      maskId: special.mask, regId: special.reg, endId: special.end, padId: special.pad,
      registers: this.model.registers,
      registerPositions: Array.from({ length: reg.count }, (_, i) => reg.start + i),
    };
  }

  /** Position ids of a prompt (the manifest's unified layout). */
  promptPositions(task: TaskName, length: number): number[] {
    const seg = this.model.positions.segments;
    if (task === 't2i') return [seg.task.start, ...Array.from({ length: length - 1 }, (_, i) => seg.text.start + i)];
    const g2 = this.manifest.image.grid ** 2;
    return [
      seg.task.start,
      ...Array.from({ length: g2 }, (_, i) => seg.source.start + i),
      seg.sep.start,
      ...Array.from({ length: length - 2 - g2 }, (_, i) => seg.text.start + i),
    ];
  }
}

/**
 * The seed candidate `c` samples with: the request's own for the first, so one candidate
 * reproduces a plain request; the others spread by the golden-ratio increment.
 */
export function candidateSeed(seed: number, c: number): number {
  return (seed + Math.imul(c, 0x9e3779b9)) >>> 0;
}
