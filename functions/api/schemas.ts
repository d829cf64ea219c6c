/**
 * Request and response schemas of the HTTP API, in zod; the OpenAPI 3.1 document at
 * `/openapi.json` is generated from them. Field names follow OpenAI's where a route exists
 * there; our extensions (`steps`, `seed`, `sampler`, `guidance_scale`, `temperature`,
 * `preview_every`, `candidates`, progress and timings) are documented as such.
 *
 * Requests are strict: an unknown field is refused (422) rather than silently ignored.
 */
import { z } from '@hono/zod-openapi';
import { WEBHOOK_EVENTS, webhookSecretSchema } from '../core/config.ts';
import { MAX_CANDIDATES } from '../core/manifest.ts';

/** The only image size the shipped models make. */
export const IMAGE_SIZE = '64x64';

const onlyOne = 'n must be 1: the model makes one image (or answer) per request';

/**
 * Sampling options shared by every task. Ranges that depend on the model (steps up to the
 * answer length; for answers, a multiple of the number of text blocks) and the documented
 * ranges of temperature, guidance and seed are checked by the pipeline, which names the field.
 */
function samplingFields(number: <S extends z.ZodType>(schema: S) => S | z.ZodPreprocess<S>) {
  return {
    steps: number(z.number().int()).optional().openapi({ description: 'Extension: denoising steps (1 up to the answer length; the model default otherwise).', example: 20 }),
    seed: number(z.number().int()).optional().openapi({ description: 'Extension: random seed, 0..4294967295 (drawn and reported when left out).', example: 1 }),
    sampler: z.enum(['sparse', 'dense']).optional().openapi({ description: 'Extension: the Sparse-LaViDa sampler (default) or the dense baseline.' }),
    temperature: number(z.number()).optional().openapi({ description: 'Extension: sampling temperature, 0..10; 0 is greedy.' }),
  };
}

function imageFields(number: <S extends z.ZodType>(schema: S) => S | z.ZodPreprocess<S>, boolean: z.ZodType<boolean>) {
  return {
    prompt: z.string().trim().min(1, 'the prompt is empty').max(1000).openapi({ example: 'a small red circle at the top left' }),
    model: z.string().optional().openapi({ description: 'The model id from GET /v1/models; the served model when left out.', example: 'shapes-tiny' }),
    n: number(z.literal(1, { error: onlyOne })).optional().openapi({ description: 'Number of images: only 1.' }),
    size: z.enum([IMAGE_SIZE, 'auto'], { error: `size must be "${IMAGE_SIZE}" or "auto": the model makes ${IMAGE_SIZE} images` }).optional(),
    response_format: z.literal('b64_json', { error: 'response_format must be "b64_json": images are returned inline, never as URLs' }).optional(),
    output_format: z.literal('png', { error: 'output_format must be "png"' }).optional(),
    user: z.string().optional().openapi({ description: 'Accepted for OpenAI compatibility; unused.' }),
    stream: boolean.optional().openapi({ description: 'Stream Server-Sent Events: partial images while sampling, then the completed image.' }),
    partial_images: number(z.number().int().min(0).max(3)).optional().openapi({
      description: 'Partial images to stream before the completed one, spread evenly over the steps (OpenAI\'s, 0-3). Not with preview_every.',
    }),
    preview_every: number(z.number().int().min(1)).optional().openapi({ description: 'Extension: stream a partial image every N steps. Not with partial_images.' }),
    guidance_scale: number(z.number()).optional().openapi({ description: 'Extension: classifier-free guidance scale, 0..20; 1 disables guidance.' }),
    candidates: number(z.number().int()).optional().openapi({
      description: `Extension: images to draw at most, 1..${MAX_CANDIDATES}; the one the model itself judges best is returned (the model default otherwise). The model may vary guidance and temperature from candidate to candidate; guidance_scale or temperature given here hold for all of them. A model that verifies text to image describes each candidate and stops drawing once enough descriptions agree with the prompt. Partial images show each candidate in turn.`,
      example: 4,
    }),
    ...samplingFields(number),
  };
}

const json = <S extends z.ZodType>(schema: S): S => schema;
/** Multipart fields arrive as strings: numbers and booleans are read from their text. */
const fromText = <S extends z.ZodType>(schema: S) => z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v), schema);
const textBoolean = z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());

export const ImageGenerationRequest = z.strictObject(imageFields(json, z.boolean())).openapi('ImageGenerationRequest');

export const ImageEditJsonRequest = z
  .strictObject({
    ...imageFields(json, z.boolean()),
    image: z.string().min(1).openapi({ description: 'The image to edit: a PNG as base64 or as a data:image/png;base64 URL. Other sizes are center-cropped and resized to 64x64.' }),
  })
  .openapi('ImageEditJsonRequest');

export const ImageEditMultipartRequest = z
  .strictObject({
    ...imageFields(fromText, textBoolean),
    image: z.instanceof(File, { error: 'image must be an uploaded PNG file' }).openapi({ type: 'string', format: 'binary', description: 'The PNG to edit.' }),
  })
  .openapi('ImageEditMultipartRequest');

export type ImageGenerationRequest = z.output<typeof ImageGenerationRequest>;
export type ImageEditJsonRequest = z.output<typeof ImageEditJsonRequest>;
export type ImageEditMultipartRequest = z.output<typeof ImageEditMultipartRequest>;

const ImageUsage = z
  .object({
    input_tokens: z.number().int().openapi({ description: 'Prompt tokens: words, plus the source image\'s codes for edits.' }),
    input_tokens_details: z.object({ text_tokens: z.number().int(), image_tokens: z.number().int() }),
    output_tokens: z.number().int().openapi({ description: 'Image codes generated.' }),
    total_tokens: z.number().int(),
    tokens_processed: z.number().int().openapi({ description: 'Extension: tokens pushed through the network over all steps (the sampler\'s cost).' }),
    forward_calls: z.number().int().openapi({ description: 'Extension: forward passes.' }),
  })
  .openapi('ImageUsage');

export const Timings = z
  .object({
    queued_ms: z.number().openapi({ description: 'Waiting for a run slot.' }),
    sampling_ms: z.number(),
    total_ms: z.number().openapi({ description: 'From admission to the result.' }),
    first_partial_image_ms: z.number().nullable().openapi({ description: 'From admission to the first partial image (streams with partial images only).' }),
  })
  .openapi('Timings');

const sampled = {
  seed: z.number().int().openapi({ description: 'Extension: the seed used; send it back to repeat the result.' }),
  sampler: z.enum(['sparse', 'dense']),
  steps: z.number().int(),
};

const imageSampled = {
  ...sampled,
  candidates: z.number().int().openapi({ description: 'Extension: candidates drawn (at most the candidates asked for); `steps` is per candidate.' }),
};

const imageMeta = {
  size: z.literal(IMAGE_SIZE),
  quality: z.literal('auto'),
  background: z.literal('opaque'),
  output_format: z.literal('png'),
};

export const ImagesResponse = z
  .object({
    created: z.number().int(),
    data: z.array(z.object({ b64_json: z.string().openapi({ description: 'The PNG, base64.' }) })),
    ...imageMeta,
    usage: ImageUsage,
    timings: Timings,
    ...imageSampled,
  })
  .openapi('ImagesResponse');

/** The SSE events of an image stream; `kind` is OpenAI's prefix of the event names. */
export function imageStreamEvents(kind: 'image_generation' | 'image_edit', name: string) {
  const progress = {
    step: z.number().int().openapi({ description: 'Extension: the step this image is from (1-based, counted over every candidate).' }),
    total_steps: z.number().int(),
  };
  const partial = z
    .object({
      type: z.literal(`${kind}.partial_image`),
      b64_json: z.string().openapi({ description: 'The partly decoded PNG (still-masked patches gray), base64.' }),
      partial_image_index: z.number().int().openapi({ description: '0-based.' }),
      created_at: z.number().int(),
      ...imageMeta,
      ...progress,
    })
    .openapi(`${name}PartialImageEvent`);
  const completed = z
    .object({
      type: z.literal(`${kind}.completed`),
      b64_json: z.string(),
      created_at: z.number().int(),
      ...imageMeta,
      usage: ImageUsage,
      timings: Timings,
      ...progress,
      ...imageSampled,
    })
    .openapi(`${name}CompletedEvent`);
  return { partial, completed, any: z.union([partial, completed, ErrorEvent]).openapi(`${name}StreamEvent`) };
}

const TextPart = z.strictObject({ type: z.literal('text'), text: z.string() }).openapi('ChatTextPart');
const ImagePart = z
  .strictObject({
    type: z.literal('image_url'),
    image_url: z.strictObject({
      url: z.string().openapi({ description: 'A data:image/png;base64,… URL (the server fetches nothing).' }),
      detail: z.enum(['auto', 'low', 'high']).optional(),
    }),
  })
  .openapi('ChatImagePart');
const textContent = z.union([z.string(), z.array(TextPart)]);
const name = z.string().optional();

const ChatMessage = z
  .discriminatedUnion('role', [
    z.strictObject({ role: z.literal('system'), content: textContent, name }),
    z.strictObject({ role: z.literal('developer'), content: textContent, name }),
    z.strictObject({ role: z.literal('user'), content: z.union([z.string(), z.array(z.discriminatedUnion('type', [TextPart, ImagePart])).min(1)]), name }),
    z.strictObject({ role: z.literal('assistant'), content: textContent.nullable().optional(), name, refusal: z.string().nullable().optional() }),
  ])
  .openapi('ChatMessage');
export type ChatMessage = z.output<typeof ChatMessage>;

export const ChatCompletionRequest = z
  .strictObject({
    model: z.string().optional().openapi({ example: 'shapes-tiny' }),
    messages: z.array(ChatMessage).min(1).openapi({
      description: 'The question is the text of the last message, which must be the user\'s; the image is the most recent image_url part of a user message. System and earlier messages are accepted and not used.',
    }),
    stream: z.boolean().optional(),
    stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullable().optional(),
    n: z.literal(1, { error: onlyOne }).optional(),
    user: z.string().optional(),
    ...samplingFields(json),
  })
  .openapi('ChatCompletionRequest');
export type ChatCompletionRequest = z.output<typeof ChatCompletionRequest>;

const ChatUsage = z
  .object({
    prompt_tokens: z.number().int(),
    completion_tokens: z.number().int(),
    total_tokens: z.number().int(),
    tokens_processed: z.number().int().openapi({ description: 'Extension: tokens pushed through the network over all steps.' }),
    forward_calls: z.number().int(),
  })
  .openapi('ChatUsage');

export const ChatCompletion = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal('assistant'), content: z.string(), refusal: z.null() }),
        finish_reason: z.literal('stop'),
        logprobs: z.null(),
      }),
    ),
    usage: ChatUsage,
    timings: Timings,
    ...sampled,
  })
  .openapi('ChatCompletion');

export const ChatCompletionChunk = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion.chunk'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        delta: z.object({ role: z.literal('assistant').optional(), content: z.string().optional() }),
        finish_reason: z.literal('stop').nullable(),
        logprobs: z.null(),
      }),
    ),
    usage: ChatUsage.nullable().optional().openapi({ description: 'In the last chunk before [DONE] when stream_options.include_usage is set.' }),
  })
  .openapi('ChatCompletionChunk');

export const Model = z
  .object({
    id: z.string(),
    object: z.literal('model'),
    created: z.number().int(),
    owned_by: z.string(),
    version: z.string().openapi({ description: 'Extension: the model package version.' }),
  })
  .openapi('Model');

export const ModelList = z.object({ object: z.literal('list'), data: z.array(Model) }).openapi('ModelList');

export const Health = z
  .object({
    status: z.literal('ok'),
    model: z.object({ name: z.string(), version: z.string() }),
  })
  .openapi('Health');

const ErrorObject = z.object({
  type: z.string().openapi({ example: 'invalid_request_error' }),
  code: z.string().openapi({ example: 'unknown_word' }),
  message: z.string(),
  param: z.string().nullable().openapi({ example: 'prompt' }),
});

export const ErrorResponse = z.object({ error: ErrorObject }).openapi('ErrorResponse');

export const ErrorEvent = z
  .object({ type: z.literal('error'), error: ErrorObject })
  .openapi('ErrorEvent', { description: 'Sent as the `error` event when a stream fails after it started; the stream then ends.' });

const BatchImage = z
  .union([
    z.string().min(1).openapi({ description: 'An http(s) URL the worker fetches (no redirects; private addresses refused unless IMAGE_URL_ALLOW_PRIVATE), a `data:image/png;base64,…` URL, or a PNG as base64.' }),
    z.strictObject({ key: z.string().min(1).openapi({ description: 'A key of the input store (INPUT_URI), e.g. `inbox/cat.png`.', example: 'inbox/cat.png' }) }),
  ])
  .openapi('BatchImage', { description: 'The image to edit. Other sizes than 64x64 are center-cropped and resized. An image that cannot be read fails its item, not the batch.' });

export const BatchItemRequest = z
  .strictObject({
    image: BatchImage,
    instruction: z.string().trim().min(1, 'the instruction is empty').max(1000).openapi({
      description: 'The edit, in the model\'s language; an instruction outside it fails its item (code `unknown_word`), not the batch.',
      example: 'make the red circle blue',
    }),
  })
  .openapi('BatchItemRequest');

export const WebhookEventType = z.enum(WEBHOOK_EVENTS).openapi('WebhookEventType');

export const BatchWebhookRequest = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: 'webhook.url must be an http(s) URL' }).max(2048).openapi({ description: 'An http(s) URL; private and loopback addresses are refused unless WEBHOOK_ALLOW_PRIVATE.' }),
    events: z.array(WebhookEventType).min(1).optional().openapi({ description: 'The events to send (default: all).' }),
    secret: webhookSecretSchema.optional().openapi({
      description: 'The `whsec_` secret to sign deliveries with (base64 of 24-64 bytes); one is generated, and returned once in the create response, when left out.',
    }),
  })
  .openapi('BatchWebhookRequest');

export const BatchCreateRequest = z
  .strictObject({
    items: z.array(BatchItemRequest).min(1, 'a batch needs at least one item'),
    webhook: BatchWebhookRequest.optional(),
    guidance_scale: z.number().optional().openapi({ description: 'Classifier-free guidance scale, 0..20.' }),
    ...samplingFields(json),
  })
  .openapi('BatchCreateRequest', {
    description: 'Edits to run in the background. `seed` (drawn when left out) seeds item i with seed + i, so an item that is redone makes the same image.',
  });
export type BatchCreateRequest = z.output<typeof BatchCreateRequest>;

const ItemStatus = z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']);
const BatchStatus = z.enum(['queued', 'in_progress', 'completed', 'failed', 'cancelled']);

export const BatchItem = z
  .object({
    index: z.number().int(),
    status: ItemStatus,
    instruction: z.string(),
    attempts: z.number().int().openapi({ description: 'Deliveries of the item so far.' }),
    error: z.object({ code: z.string().openapi({ example: 'unknown_word' }), message: z.string() }).nullable(),
    result: z
      .object({
        key: z.string().openapi({ example: 'batch_k3v9q2m8x1c7r5t0w4y6z2b8/0.png' }),
        uri: z.string().openapi({ description: 'Where the edited PNG is stored (OUTPUT_URI).', example: 's3://outputs-bucket/outputs/batch_k3v9q2m8x1c7r5t0w4y6z2b8/0.png' }),
      })
      .nullable(),
    finished_at: z.number().int().nullable().openapi({ description: 'Unix seconds.' }),
  })
  .openapi('BatchItem');

const RequestCounts = z
  .object({
    total: z.number().int(),
    queued: z.number().int(),
    running: z.number().int(),
    completed: z.number().int(),
    failed: z.number().int(),
    cancelled: z.number().int(),
  })
  .openapi('BatchRequestCounts');

const BatchWebhook = z.object({
  url: z.string(),
  events: z.array(WebhookEventType),
  status: z.enum(['enabled', 'disabled']).openapi({ description: '`disabled` once the endpoint answered 410 Gone or its address was refused.' }),
  disabled_reason: z.string().nullable(),
});

const batchFields = {
  id: z.string().openapi({ example: 'batch_k3v9q2m8x1c7r5t0w4y6z2b8' }),
  object: z.literal('batch'),
  status: BatchStatus.openapi({ description: 'Open (`queued`, `in_progress`) until every item is final; then `completed` if any item was edited, `failed` if none was; `cancelled` after a cancel.' }),
  source: z.string().openapi({ description: '`api`, or `hook:<source>` for a batch an inbound webhook created.' }),
  created_at: z.number().int(),
  finished_at: z.number().int().nullable(),
  cancelled_at: z.number().int().nullable(),
  request_counts: RequestCounts,
  items: z.array(BatchItem),
};

export const Batch = z.object({ ...batchFields, webhook: BatchWebhook.nullable() }).openapi('Batch');

export const BatchCreateResponse = z
  .object({
    ...batchFields,
    webhook: BatchWebhook.extend({
      secret: z.string().openapi({ description: 'The signing secret: returned here only (and to a retry with the same Idempotency-Key).' }),
    }).nullable(),
  })
  .openapi('BatchCreateResponse');

export const S3EventNotification = z
  .object({
    Records: z.array(
      z.looseObject({
        eventName: z.string().openapi({ example: 'ObjectCreated:Put' }),
        s3: z.looseObject({
          bucket: z.looseObject({ name: z.string().openapi({ example: 'outputs-bucket' }) }),
          object: z.looseObject({ key: z.string().openapi({ description: 'URL-encoded, as S3 sends it.', example: 'inbox/recolor/cat.png' }) }),
        }),
      }),
    ),
  })
  .openapi('S3EventNotification', {
    description: 'An S3 event notification (as S3 sends it to SNS, SQS, Lambda or EventBridge; a relay signs it for this route). Each `ObjectCreated:*` record under INPUT_URI whose key matches one of the source\'s rules becomes an item with that rule\'s instruction; other records are ignored.',
  });

export const HookResponse = z
  .object({
    batch: Batch.nullable().openapi({ description: 'The batch created, or null when no record made an item.' }),
    ignored: z.number().int().openapi({ description: 'S3 records that made no item.' }),
  })
  .openapi('HookResponse');

const eventEnvelope = { timestamp: z.string().openapi({ description: 'When it happened (ISO 8601); the same on every delivery.' }) };
const batchFinishedData = z.object({ batch_id: z.string(), status: BatchStatus, request_counts: RequestCounts, items: z.array(BatchItem) });

export const WebhookEvent = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('batch.item.completed'), ...eventEnvelope, data: z.object({ batch_id: z.string(), item: BatchItem }) }).openapi('BatchItemCompletedEvent'),
    z.object({ type: z.literal('batch.completed'), ...eventEnvelope, data: batchFinishedData }).openapi('BatchCompletedEvent'),
    z.object({ type: z.literal('batch.failed'), ...eventEnvelope, data: batchFinishedData }).openapi('BatchFailedEvent'),
  ])
  .openapi('WebhookEvent', {
    description: 'The body of an outbound webhook (Standard Webhooks): `batch.item.completed` for each item edited; `batch.completed` (every item final, at least one edited) or `batch.failed` (none edited).',
  });
