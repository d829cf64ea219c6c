/**
 * Batch edits over HTTP (docs/design.md section 7): `POST /v1/batches` (an Idempotency-Key makes
 * retries safe), `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`, and
 * `POST /v1/hooks/{source}`, where a signed inbound webhook (Standard Webhooks, verified
 * before anything else; no API key) creates a batch. The outbound webhooks are described in
 * the OpenAPI document's `webhooks`. The work is in functions/jobs; these handlers map
 * requests to it and records to responses.
 */
import { createHash } from 'node:crypto';
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { HookSource } from '../core/config.ts';
import type { StorageUri } from '../core/storage-uri.ts';
import { countItems, type BatchRecord, type ImageSource } from '../jobs/batch.ts';
import { requestHash, type BatchRequest, type BatchService } from '../jobs/batches.ts';
import { itemSummary } from '../jobs/events.ts';
import { s3EventItems, verifyHook } from '../jobs/webhooks-in.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import { readableKey } from '../storage/artifact-store.ts';
import { ApiError, fromZod } from './errors.ts';
import { samplingOptions } from './run-pipeline.ts';
import { Batch, BatchCreateRequest, BatchCreateResponse, HookResponse, S3EventNotification, WebhookEvent } from './schemas.ts';

export interface BatchDeps {
  /** Absent where the service runs without jobs: the routes answer 503. */
  readonly batches: BatchService | undefined;
  readonly pipeline: Pipeline;
  /** Inbound webhook senders (HOOK_SOURCES). */
  readonly hookSources: Readonly<Record<string, HookSource>>;
  /** Where S3-notified objects are read from (INPUT_URI). */
  readonly inputUri: StorageUri;
}

type Errors = (...statuses: number[]) => Record<number, unknown>;

const batchId = z.object({ id: z.string().openapi({ example: 'batch_k3v9q2m8x1c7r5t0w4y6z2b8' }) });

const WEBHOOK_HEADERS = z.object({
  'webhook-id': z.string().openapi({ description: 'The event\'s id: the same on every delivery of it; deduplicate on it.', example: 'msg_2b4ndmazr5u3jhxqvpesdk7c' }),
  'webhook-timestamp': z.string().openapi({ description: 'Unix seconds of this delivery attempt.', example: '1767225600' }),
  'webhook-signature': z.string().openapi({ description: '`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`, keyed by the base64-decoded secret after `whsec_`.' }),
});

/** Registers the batch routes, and the outbound webhooks' documentation, on `app`. */
export function batchRoutes(app: OpenAPIHono, deps: BatchDeps, errors: Errors): void {
  const security = [{ bearerAuth: [] }];
  const service = (): BatchService => {
    if (!deps.batches) throw new ApiError(503, 'batches_unavailable', 'this server runs without batch edits');
    return deps.batches;
  };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/batches',
      tags: ['batches'],
      summary: 'Create a batch of edits, run in the background.',
      description:
        'Answers 201 with the batch (and, once, its webhook\'s secret). With an `Idempotency-Key`, a retry of the same request answers 200 with the same batch; the key with a different request is refused (409).',
      security,
      request: {
        headers: z.object({ 'idempotency-key': z.string().max(255).optional().openapi({ description: 'Makes retries safe: kept 24 hours per API key.' }) }),
        body: { required: true, content: { 'application/json': { schema: BatchCreateRequest } } },
      },
      responses: {
        201: { description: 'The batch, queued.', content: { 'application/json': { schema: BatchCreateResponse } } },
        200: { description: 'The batch this Idempotency-Key created before.', content: { 'application/json': { schema: BatchCreateResponse } } },
        ...errors(400, 401, 409, 413, 415, 422, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const key = c.req.valid('header')['idempotency-key'];
      const request = batchRequest(deps.pipeline, body);
      const guard = key === undefined ? {} : { idempotency: { key: `${callerScope(c)}:${key}`, requestHash: requestHash(body) } };
      const { created, batch, webhookSecret } = await service().create(request, 'api', guard);
      const json = batchJson(batch);
      return c.json({ ...json, webhook: json.webhook && { ...json.webhook, secret: webhookSecret ?? '' } }, created ? 201 : 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/batches/{id}',
      tags: ['batches'],
      summary: 'A batch: its status, and each item\'s status, error and result location.',
      security,
      request: { params: batchId },
      responses: { 200: { description: 'The batch.', content: { 'application/json': { schema: Batch } } }, ...errors(401, 404, 503) },
    }),
    async (c) => c.json(batchJson(found(await service().get(c.req.valid('param').id), c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/batches/{id}/cancel',
      tags: ['batches'],
      summary: 'Cancel a batch: items not started are cancelled; items being edited finish.',
      description: 'Cancelling a cancelled batch answers it again; a batch that has finished cannot be cancelled (409).',
      security,
      request: { params: batchId },
      responses: { 200: { description: 'The batch, cancelled.', content: { 'application/json': { schema: Batch } } }, ...errors(401, 404, 409, 503) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const batches = service();
      const batch = found(await batches.get(id), id);
      if (batch.status === 'completed' || batch.status === 'failed') throw new ApiError(409, 'batch_finished', `the batch ${id} has finished (${batch.status}); there is nothing to cancel`);
      return c.json(batchJson(found(await batches.cancel(id), id)), 200);
    },
  );

  // The body is verified as the exact bytes received, so it is read as text here, not validated by a route schema.
  app.openAPIRegistry.registerPath({
    method: 'post',
    path: '/v1/hooks/{source}',
    tags: ['batches'],
    summary: 'An inbound webhook that creates a batch (Standard Webhooks; no API key).',
    description:
      'Signed with the source\'s `whsec_` secret (HOOK_SOURCES) as Standard Webhooks prescribes; a bad signature, a timestamp more than 5 minutes off, or a webhook-id already received is refused (401) and creates nothing. A source without S3 rules sends a `BatchCreateRequest`; a source with them sends an `S3EventNotification`. The source\'s configured webhook receives the batch\'s events unless the request names its own.',
    request: {
      params: z.object({ source: z.string().openapi({ example: 'cms' }) }),
      headers: WEBHOOK_HEADERS,
      body: { required: true, content: { 'application/json': { schema: z.union([BatchCreateRequest, S3EventNotification]) } } },
    },
    responses: {
      201: { description: 'The batch created.', content: { 'application/json': { schema: HookResponse } } },
      200: { description: 'Nothing to do: no record of the notification made an item.', content: { 'application/json': { schema: HookResponse } } },
      ...errors(400, 401, 413, 422, 503),
    },
  });
  app.post('/v1/hooks/:source', async (c) => {
    const source = c.req.param('source');
    const batches = service();
    const { webhookId, body } = verifyHook(deps.hookSources, source, await c.req.text(), c.req.header());
    const config = deps.hookSources[source] as HookSource;
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      throw new ApiError(400, 'malformed_body', 'the webhook body is not JSON');
    }
    let request: BatchRequest;
    let ignored = 0;
    if (config.s3) {
      const parsed = S3EventNotification.safeParse(payload);
      if (!parsed.success) throw fromZod(parsed.error, payload);
      const notified = s3EventItems(parsed.data.Records, deps.inputUri, config.s3.rules);
      ignored = notified.ignored;
      if (notified.items.length === 0) return c.json({ batch: null, ignored }, 200);
      request = { items: notified.items, options: {}, webhook: config.webhook };
    } else {
      const parsed = BatchCreateRequest.safeParse(payload);
      if (!parsed.success) throw fromZod(parsed.error, payload);
      const own = batchRequest(deps.pipeline, parsed.data);
      request = { ...own, webhook: own.webhook ?? config.webhook };
    }
    const { batch } = await batches.create(request, `hook:${source}`, { inbound: { source, webhookId } });
    return c.json({ batch: batchJson(batch), ignored }, 201);
  });

  for (const type of ['batch.item.completed', 'batch.completed', 'batch.failed'] as const) {
    app.openAPIRegistry.registerWebhook({
      method: 'post',
      path: type,
      tags: ['batches'],
      summary: `Sent to a batch's webhook: ${type}.`,
      description:
        'Standard Webhooks: verify the signature over the raw body before parsing (the SDK\'s `webhooks.verify`, or any Standard Webhooks library). Answer 2xx to acknowledge; 410 Gone disables the endpoint; anything else, a redirect or no answer within 15 s is retried on the schedule (WEBHOOK_RETRY_SCHEDULE) with the same webhook-id.',
      request: { headers: WEBHOOK_HEADERS, body: { content: { 'application/json': { schema: WebhookEvent } } } },
      responses: { 200: { description: 'Received.' }, 410: { description: 'Gone: send nothing more to this endpoint.' } },
    });
  }
}

/** The request in the jobs' terms; sampling options are checked now, so a bad one is a 422 naming it. */
function batchRequest(pipeline: Pipeline, body: BatchCreateRequest): BatchRequest {
  const options = samplingOptions(body);
  pipeline.settings('edit', options);
  const items = body.items.map((item, i) => ({ image: imageSource(item.image, `items[${i}].image.key`), instruction: item.instruction }));
  return {
    items,
    options: { steps: options.steps, sampler: options.sampler, temperature: options.temperature, guidance: options.guidance, seed: options.seed },
    webhook: body.webhook,
  };
}

function imageSource(image: BatchCreateRequest['items'][number]['image'], param: string): ImageSource {
  if (typeof image !== 'string') {
    try {
      return { key: readableKey(image.key) };
    } catch (e) {
      throw new ApiError(422, 'invalid_value', `${param}: ${e instanceof Error ? e.message : String(e)}`, param);
    }
  }
  return /^https?:\/\//i.test(image.trim()) ? { url: image.trim() } : { base64: image };
}

function found(batch: BatchRecord | undefined, id: string): BatchRecord {
  if (!batch) throw new ApiError(404, 'batch_not_found', `no batch ${id}`, 'id');
  return batch;
}

/** Idempotency-Keys are kept per caller: the API key's digest, or one scope when the server has none. */
function callerScope(c: Context): string {
  return createHash('sha256').update(c.req.header('authorization') ?? '').digest('hex').slice(0, 32);
}

const seconds = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));

/** A batch as the API shows it. */
export function batchJson(batch: BatchRecord) {
  return {
    id: batch.id,
    object: 'batch' as const,
    status: batch.status,
    source: batch.source,
    created_at: Math.floor(batch.createdAt / 1000),
    finished_at: seconds(batch.finishedAt),
    cancelled_at: seconds(batch.cancelledAt),
    request_counts: countItems(batch.items),
    webhook: batch.webhook && {
      url: batch.webhook.url,
      events: [...batch.webhook.events],
      status: batch.webhook.disabled === null ? ('enabled' as const) : ('disabled' as const),
      disabled_reason: batch.webhook.disabled?.reason ?? null,
    },
    items: batch.items.map(itemSummary),
  };
}
