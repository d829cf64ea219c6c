/**
 * `POST /v1/images/generations` and `POST /v1/images/edits`: a request becomes a pipeline
 * run, answered as OpenAI's images response or, with `stream: true`, as its SSE events
 * (`image_generation.partial_image` … `image_generation.completed`; `image_edit.*` for edits).
 * Everything a request can get wrong is refused before the run is admitted.
 */
import type { Context } from 'hono';
import type { RgbImage } from '../core/image.ts';
import type { GenerationOptions, ImageResult, ImageStep, Pipeline, Settings } from '../pipeline/pipeline.ts';
import { encodePng } from '../tokenizers/png.ts';
import { ApiError, forParam } from './errors.ts';
import { checkModel, drain, runTimings, samplingOptions, unixNow } from './run-pipeline.ts';
import type { Runs } from './runs.ts';
import { IMAGE_SIZE, type ImageGenerationRequest } from './schemas.ts';
import { sseResponse, type SseOptions } from './sse.ts';

export interface ImageDeps extends SseOptions {
  readonly pipeline: Pipeline;
  readonly runs: Runs;
}

type ImageKind = 'image_generation' | 'image_edit';

/** The fields of an image request other than the source image. */
type ImageFields = ImageGenerationRequest;

const META = { size: IMAGE_SIZE, quality: 'auto', background: 'opaque', output_format: 'png' } as const;

/** Text to image. */
export function generateImage(c: Context, deps: ImageDeps, body: ImageFields): Response | Promise<Response> {
  return serveImage(c, deps, body, {
    kind: 'image_generation',
    task: 't2i',
    imageTokens: 0,
    start: (options) => deps.pipeline.generate(body.prompt, options),
  });
}

/** An edit of `image` (already a 64x64 model image). */
export function editImage(c: Context, deps: ImageDeps, body: ImageFields, image: RgbImage): Response | Promise<Response> {
  return serveImage(c, deps, body, {
    kind: 'image_edit',
    task: 'edit',
    imageTokens: deps.pipeline.manifest.image.grid ** 2,
    start: (options) => deps.pipeline.edit(image, body.prompt, options),
  });
}

interface ImageJob {
  readonly kind: ImageKind;
  readonly task: 't2i' | 'edit';
  readonly imageTokens: number;
  readonly start: (options: GenerationOptions) => AsyncGenerator<ImageStep, ImageResult, void>;
}

function serveImage(c: Context, deps: ImageDeps, body: ImageFields, job: ImageJob): Response | Promise<Response> {
  checkModel(deps.pipeline, body.model);
  if (body.partial_images !== undefined && body.preview_every !== undefined) {
    throw new ApiError(422, 'invalid_value', 'give partial_images or preview_every, not both', 'preview_every');
  }
  const requested = samplingOptions(body);
  const settings = deps.pipeline.settings(job.task, requested);
  const textTokens = forParam('prompt', () => deps.pipeline.tokenizers.text.encode(body.prompt).length);
  const partialSteps = body.stream === true ? partialImageSteps(settings, body) : new Set<number>();
  const options: GenerationOptions = { ...requested, seed: settings.seed, previewEvery: partialSteps.size === 0 ? 0 : (body.preview_every ?? 1) };
  const run = deps.runs.admit(c.req.raw.signal, (signal) => forParam('prompt', () => job.start({ ...options, signal })));

  const finish = (result: ImageResult, firstPartial: number | null) => ({
    b64_json: encodePng(result.image).toString('base64'),
    usage: {
      input_tokens: textTokens + job.imageTokens,
      input_tokens_details: { text_tokens: textTokens, image_tokens: job.imageTokens },
      output_tokens: result.codes.length,
      total_tokens: textTokens + job.imageTokens + result.codes.length,
      tokens_processed: result.usage.tokensIn,
      forward_calls: result.usage.forwardCalls,
    },
    timings: runTimings(run, result.usage, firstPartial),
    seed: result.usage.seed,
    sampler: result.usage.sampler,
    steps: result.usage.steps,
    candidates: result.usage.candidates,
  });

  if (body.stream !== true) {
    return run.execute((steps) => drain(steps, () => undefined)).then((result) => {
      const { b64_json, ...rest } = finish(result, null);
      return c.json({ created: unixNow(), data: [{ b64_json }], ...META, ...rest }, 200);
    });
  }
  return sseResponse(c, run, deps, async (send) => {
    let index = 0;
    let firstPartial: number | null = null;
    const onStep = async (e: ImageStep) => {
      if (e.preview === undefined || !partialSteps.has(e.step)) return;
      firstPartial ??= performance.now();
      const type = `${job.kind}.partial_image`;
      await send(type, {
        type,
        b64_json: encodePng(e.preview).toString('base64'),
        partial_image_index: index++,
        created_at: unixNow(),
        ...META,
        step: e.step,
        total_steps: e.totalSteps,
      });
    };
    const result = await run.execute((steps) => drain(steps, onStep));
    const type = `${job.kind}.completed`;
    // Every step taken; fewer than total_steps promised where checked candidates stopped early.
    const taken = result.usage.steps * result.usage.candidates;
    await send(type, { type, created_at: unixNow(), ...META, step: taken, total_steps: taken, ...finish(result, firstPartial) });
  });
}

/**
 * The steps whose preview is streamed as a partial image, all before the last step (whose
 * image is the completed one): every `preview_every` steps, or `partial_images` spread evenly
 * over the steps every request of these settings takes (a request whose candidates are
 * checked may stop before `totalSteps`).
 */
export function partialImageSteps(settings: Pick<Settings, 'totalSteps' | 'fewestSteps'>, body: Pick<ImageFields, 'partial_images' | 'preview_every'>): Set<number> {
  const { totalSteps } = settings;
  const steps = new Set<number>();
  if (body.preview_every !== undefined) {
    for (let s = body.preview_every; s < totalSteps; s += body.preview_every) steps.add(s);
  } else {
    const n = body.partial_images ?? 0;
    for (let k = 1; k <= n; k++) {
      const s = Math.round((settings.fewestSteps * k) / (n + 1));
      if (s >= 1 && s < totalSteps) steps.add(s);
    }
  }
  return steps;
}
