/**
 * What the image and chat routes share: the served model check, the sampling options of a
 * request, draining a pipeline run, and its timings.
 */
import type { GenerationOptions, Pipeline, Usage } from '../pipeline/pipeline.ts';
import { ApiError } from './errors.ts';
import type { Run } from './runs.ts';

/** The request fields every task takes (see schemas.ts). */
export interface SamplingFields {
  readonly steps?: number | undefined;
  readonly seed?: number | undefined;
  readonly sampler?: 'sparse' | 'dense' | undefined;
  readonly temperature?: number | undefined;
  readonly guidance_scale?: number | undefined;
  readonly candidates?: number | undefined;
}

/** 404 unless `model` is left out or names the served model. */
export function checkModel(pipeline: Pipeline, model: string | undefined): void {
  const served = pipeline.manifest.name;
  if (model !== undefined && model !== served) {
    throw new ApiError(404, 'model_not_found', `the model "${model}" does not exist on this server; it serves "${served}" (GET /v1/models)`, 'model');
  }
}

/** Pipeline options from request fields (no signal, no previews). */
export function samplingOptions(fields: SamplingFields): GenerationOptions {
  return {
    ...(fields.steps !== undefined ? { steps: fields.steps } : {}),
    ...(fields.seed !== undefined ? { seed: fields.seed } : {}),
    ...(fields.sampler !== undefined ? { sampler: fields.sampler } : {}),
    ...(fields.temperature !== undefined ? { temperature: fields.temperature } : {}),
    ...(fields.guidance_scale !== undefined ? { guidance: fields.guidance_scale } : {}),
    ...(fields.candidates !== undefined ? { candidates: fields.candidates } : {}),
  };
}

/**
 * Runs a pipeline generator to its result, awaiting `onStep` for every step event. If it
 * stops early (an error in `onStep`), the generator is closed so the sampler frees its cache.
 */
export async function drain<S, R>(steps: AsyncGenerator<S, R, void>, onStep: (step: S) => Promise<void> | void): Promise<R> {
  let finished = false;
  try {
    for (;;) {
      const r = await steps.next();
      if (r.done) {
        finished = true;
        return r.value;
      }
      await onStep(r.value);
    }
  } finally {
    if (!finished) await steps.return(undefined as R).catch(() => undefined);
  }
}

export interface Timings {
  readonly queued_ms: number;
  readonly sampling_ms: number;
  readonly total_ms: number;
  readonly first_partial_image_ms: number | null;
}

const ms = (x: number) => Math.round(x * 10) / 10;

/** The timings of a finished run; `firstPartial` is a performance.now() time or null. */
export function runTimings(run: Run<unknown>, usage: Usage, firstPartial: number | null = null): Timings {
  const now = performance.now();
  return {
    queued_ms: ms((run.startedAt ?? now) - run.admittedAt),
    sampling_ms: ms(usage.seconds * 1000),
    total_ms: ms(now - run.admittedAt),
    first_partial_image_ms: firstPartial === null ? null : ms(firstPartial - run.admittedAt),
  };
}

/** Unix seconds, as OpenAI's `created` fields. */
export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}
