/**
 * The HTTP application (docs/design.md section 5): OpenAI-compatible image and chat routes over
 * the pipeline, the model list, health, and the OpenAPI 3.1 document generated from the zod
 * schemas. Handlers are thin: the routes' work lives in images.ts and chat.ts, admission in
 * runs.ts, streaming in sse.ts, the page at `/` in playground.ts, and every error goes
 * through the one mapper in errors.ts. Handlers build the dependencies and pass them in, so tests run the same app on loopback.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { HookSource } from '../core/config.ts';
import type { StorageUri } from '../core/storage-uri.ts';
import type { BatchService } from '../jobs/batches.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import { batchRoutes } from './batches.ts';
import { answerChat } from './chat.ts';
import { renderDocs } from './docs.ts';
import { ApiError, errorResponse, fromZod, toApiError } from './errors.ts';
import { editImage, generateImage, type ImageDeps } from './images.ts';
import { playground } from './playground.ts';
import { ClientGoneError, type Runs } from './runs.ts';
import {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ErrorEvent,
  ErrorResponse,
  Health,
  ImageEditJsonRequest,
  ImageEditMultipartRequest,
  ImageGenerationRequest,
  ImagesResponse,
  imageStreamEvents,
  Model,
  ModelList,
} from './schemas.ts';
import { imageFromFile, imageFromJson } from './uploads.ts';

export interface AppDeps {
  readonly pipeline: Pipeline;
  /** Admission of pipeline runs (concurrency, queue, deadline); its stats count runs. */
  readonly runs: Runs;
  /** Bearer keys accepted on /v1/*; empty: no auth (loopback only, see core/config.ts). */
  readonly apiKeys: readonly string[];
  /** A larger request body is answered 413. */
  readonly bodyLimitBytes: number;
  /** An SSE stream quiet this long gets a `: ping` comment. */
  readonly pingMs: number;
  /** Where server failures are reported (default console.error). */
  readonly log?: (line: string) => void;
  /** Batch edits (functions/jobs); without them the batch routes answer 503. */
  readonly batches?: BatchService;
  /** Inbound webhook senders (HOOK_SOURCES) for `POST /v1/hooks/{source}`. */
  readonly hookSources?: Readonly<Record<string, HookSource>>;
  /** Where items given by key and S3-notified objects are read from (INPUT_URI). */
  readonly inputUri?: StorageUri;
}

export const API_VERSION = '0.1.0';

const errors = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: ERROR_DESCRIPTIONS[status] ?? 'error',
        content: { 'application/json': { schema: ErrorResponse } },
        ...(status === 429 ? { headers: { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' as const } } } } : {}),
      },
    ]),
  );

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed body (e.g. JSON that does not parse).',
  401: 'Missing or wrong API key (when the server has keys).',
  404: 'Unknown model or batch.',
  409: 'Conflict: an Idempotency-Key reused with a different request, or a batch that cannot change now.',
  413: 'Body over the limit (MAX_BODY_BYTES).',
  415: 'Unsupported content type.',
  422: 'The request parses but cannot be taken: wrong types, values out of range, an unknown field or word, an image that is not a usable PNG.',
  429: 'The queue is full; retry after Retry-After seconds.',
  503: 'Shutting down, or the model is not available.',
  504: 'The request deadline (REQUEST_DEADLINE_MS) passed before the result was ready (non-streaming; a stream ends with an `error` event instead).',
};

const RUN_ERRORS = errors(400, 401, 404, 413, 415, 422, 429, 503, 504);
const security = [{ bearerAuth: [] }];
const generationEvents = imageStreamEvents('image_generation', 'ImageGeneration');
const editEvents = imageStreamEvents('image_edit', 'ImageEdit');

const generationRoute = createRoute({
  method: 'post',
  path: '/v1/images/generations',
  tags: ['images'],
  summary: 'Create an image from a prompt (OpenAI-compatible).',
  description: 'With `stream: true`, Server-Sent Events: `image_generation.partial_image` events (`partial_images` or `preview_every`), then `image_generation.completed`; every event has an id, idle streams get `: ping` comments, a failure ends the stream with an `error` event.',
  security,
  request: { body: { required: true, content: { 'application/json': { schema: ImageGenerationRequest } } } },
  responses: {
    200: {
      description: 'The image (JSON), or its stream (SSE).',
      content: { 'application/json': { schema: ImagesResponse }, 'text/event-stream': { schema: generationEvents.any } },
    },
    ...RUN_ERRORS,
  },
});

const editRoute = createRoute({
  method: 'post',
  path: '/v1/images/edits',
  tags: ['images'],
  summary: 'Edit an image following an instruction (OpenAI-compatible).',
  description: 'The image comes as a multipart upload (`image` file, as OpenAI takes it) or as base64 in JSON. With `stream: true`: `image_edit.partial_image` events, then `image_edit.completed`.',
  security,
  request: {
    body: {
      content: {
        'multipart/form-data': { schema: ImageEditMultipartRequest },
        'application/json': { schema: ImageEditJsonRequest },
      },
    },
  },
  responses: {
    200: {
      description: 'The edited image (JSON), or its stream (SSE).',
      content: { 'application/json': { schema: ImagesResponse }, 'text/event-stream': { schema: editEvents.any } },
    },
    ...RUN_ERRORS,
  },
});

const chatRoute = createRoute({
  method: 'post',
  path: '/v1/chat/completions',
  tags: ['chat'],
  summary: 'Answer a question about an image (OpenAI-compatible).',
  description: 'The image is an `image_url` content part with a `data:image/png;base64,…` URL. With `stream: true`: `chat.completion.chunk` events as the answer\'s prefix becomes final, then `data: [DONE]`.',
  security,
  request: { body: { required: true, content: { 'application/json': { schema: ChatCompletionRequest } } } },
  responses: {
    200: {
      description: 'The answer (JSON), or its chunks (SSE).',
      content: { 'application/json': { schema: ChatCompletion }, 'text/event-stream': { schema: z.union([ChatCompletionChunk, ErrorEvent]) } },
    },
    ...RUN_ERRORS,
  },
});

const modelsRoute = createRoute({
  method: 'get',
  path: '/v1/models',
  tags: ['models'],
  summary: 'List the served models.',
  security,
  responses: { 200: { description: 'The models.', content: { 'application/json': { schema: ModelList } } }, ...errors(401) },
});

const modelRoute = createRoute({
  method: 'get',
  path: '/v1/models/{model}',
  tags: ['models'],
  summary: 'Describe a model.',
  security,
  request: { params: z.object({ model: z.string().openapi({ example: 'shapes-tiny' }) }) },
  responses: { 200: { description: 'The model.', content: { 'application/json': { schema: Model } } }, ...errors(401, 404) },
});

const healthRoute = createRoute({
  method: 'get',
  path: '/healthz',
  tags: ['service'],
  summary: 'Liveness: the loaded model; 503 while shutting down.',
  responses: { 200: { description: 'Serving.', content: { 'application/json': { schema: Health } } }, ...errors(503) },
});

/** Bearer keys, compared by digest in constant time. Inbound webhooks (`/v1/hooks/*`) are signed instead. */
function requireApiKey(keys: readonly string[]): MiddlewareHandler {
  const digest = (key: string) => createHash('sha256').update(key).digest();
  const accepted = keys.map(digest);
  const challenge = { 'WWW-Authenticate': 'Bearer' };
  return async (c, next) => {
    if (accepted.length === 0 || c.req.path.startsWith('/v1/hooks/')) return next();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
    if (!match?.[1]) throw new ApiError(401, 'missing_api_key', 'an API key is required: send the header Authorization: Bearer <key>', null, challenge);
    const given = digest(match[1]);
    if (!accepted.some((key) => timingSafeEqual(key, given))) throw new ApiError(401, 'invalid_api_key', 'the API key is not valid', null, challenge);
    return next();
  };
}

/**
 * @example
 * const app = createApp({ pipeline, runs: new Runs(config.api), apiKeys: config.apiKeys, bodyLimitBytes: config.api.bodyLimitBytes, pingMs: config.api.pingMs });
 * serve({ fetch: app.fetch, port: 8787 });
 */
export function createApp(deps: AppDeps): OpenAPIHono {
  const { pipeline, runs } = deps;
  const log = deps.log ?? ((line: string) => console.error(line));
  const imageDeps: ImageDeps = { pipeline, runs, pingMs: deps.pingMs, log };
  const manifest = pipeline.manifest;
  const created = Math.floor(Date.now() / 1000);
  const model = { id: manifest.name, object: 'model' as const, created, owned_by: 'sparse-lavida', version: manifest.version };

  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw fromZod(result.error, 'data' in result ? result.data : undefined);
    },
  });
  app.onError((e, c) => {
    if (e instanceof ClientGoneError) return new Response(null, { status: 499 });
    const error = toApiError(e);
    if (error.status === 500) log(`${c.req.method} ${c.req.path} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return errorResponse(error);
  });
  app.notFound((c) => errorResponse(new ApiError(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`)));
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', description: 'One of the API_KEYS (required when the server has keys).' });

  app.use('/v1/*', requireApiKey(deps.apiKeys));
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: deps.bodyLimitBytes,
      onError: () => {
        throw new ApiError(413, 'body_too_large', `the request body is over the limit of ${deps.bodyLimitBytes} bytes`);
      },
    }),
  );

  app.openapi(generationRoute, (c) => generateImage(c, imageDeps, c.req.valid('json')));
  app.openapi(editRoute, async (c) => {
    const type = (c.req.header('content-type') ?? '').toLowerCase();
    const form = type.startsWith('multipart/form-data') || type.startsWith('application/x-www-form-urlencoded');
    if (type.startsWith('application/json') || form) {
      const { image, ...body } = form ? c.req.valid('form') : c.req.valid('json');
      return editImage(c, imageDeps, body, typeof image === 'string' ? imageFromJson(image, 'image') : await imageFromFile(image, 'image'));
    }
    throw new ApiError(415, 'unsupported_media_type', 'send the edit as multipart/form-data (an `image` file) or as application/json (base64 `image`)');
  });
  app.openapi(chatRoute, (c) => answerChat(c, imageDeps, c.req.valid('json')));
  app.openapi(modelsRoute, (c) => c.json({ object: 'list' as const, data: [model] }, 200));
  app.openapi(modelRoute, (c) => {
    const id = c.req.valid('param').model;
    if (id !== model.id) throw new ApiError(404, 'model_not_found', `the model "${id}" does not exist on this server; it serves "${model.id}"`, 'model');
    return c.json(model, 200);
  });
  batchRoutes(app, { batches: deps.batches, pipeline, hookSources: deps.hookSources ?? {}, inputUri: deps.inputUri ?? { scheme: 'file', path: '.cache/inputs' } }, errors);
  app.openapi(healthRoute, (c) => {
    if (runs.closed) throw new ApiError(503, 'shutting_down', 'the server is shutting down');
    return c.json({ status: 'ok' as const, model: { name: manifest.name, version: manifest.version } }, 200);
  });

  const document = {
    openapi: '3.1.0',
    info: {
      title: 'sparse-lavida',
      version: API_VERSION,
      description: 'Masked discrete diffusion with the Sparse-LaViDa sampler: OpenAI-compatible image generation, edits and image questions, with previews streamed as Server-Sent Events; batch edits in the background, created by API or by signed inbound webhooks, reported by signed outbound webhooks. Errors: {"error":{"type","code","message","param"}}.',
    },
  };
  app.doc31('/openapi.json', document);
  app.get('/docs', (c) => c.html(renderDocs(app.getOpenAPI31Document(document))));
  app.route('/', playground({ model: `${manifest.name}@${manifest.version}`, apiKeyRequired: deps.apiKeys.length > 0 }));
  return app;
}
