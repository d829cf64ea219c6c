/**
 * Batches as the API offers them: create (with an Idempotency-Key, or from a verified
 * inbound webhook), read, cancel. Creating writes the batch, then enqueues one message per
 * item; a retry under the same Idempotency-Key enqueues the still-queued items again (the
 * SQLite queue drops the duplicates, SQS workers skip items already done), so a crash
 * between the two steps is healed by the client's retry.
 */
import { createHash } from 'node:crypto';
import type { WebhookEventType } from '../core/config.ts';
import { WEBHOOK_EVENTS } from '../core/config.ts';
import { newBatchId, type BatchRecord, type EditOptions, type ItemSpec, type NewBatch, type WebhookEndpoint } from './batch.ts';
import type { CreateGuard, Created, JobStore } from './job-store.ts';
import { checkTargetUrl } from './outbound-http.ts';
import type { Queue } from './queue.ts';
import { newWebhookSecret } from './webhooks-out.ts';
import { itemMessage } from './worker.ts';

export interface BatchRequest {
  readonly items: readonly ItemSpec[];
  readonly options: Omit<EditOptions, 'seed'> & { readonly seed?: number | undefined };
  readonly webhook?: { readonly url: string; readonly events?: readonly WebhookEventType[] | undefined; readonly secret?: string | undefined } | undefined;
}

export interface BatchServiceOptions {
  readonly store: JobStore;
  readonly queue: Queue;
  readonly maxItems: number;
  /** Webhook URLs in private ranges are accepted (WEBHOOK_ALLOW_PRIVATE). */
  readonly allowPrivateWebhooks: boolean;
  /** Called after items were enqueued (an in-process worker looks at once). */
  readonly onEnqueued?: () => void;
}

/** A batch request that cannot be taken; `param` names the field. */
export class BatchRequestError extends Error {
  override readonly name = 'BatchRequestError';
  constructor(
    readonly code: string,
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

/**
 * @example
 * const batches = new BatchService({ store, queue, maxItems: 1000, allowPrivateWebhooks: false });
 * const { batch, webhookSecret } = await batches.create(request, 'api', { idempotency: { key, requestHash } });
 */
export class BatchService {
  constructor(private readonly options: BatchServiceOptions) {}

  async create(request: BatchRequest, source: string, guard: CreateGuard = {}): Promise<Created> {
    const { store, maxItems } = this.options;
    if (request.items.length > maxItems) throw new BatchRequestError('too_many_items', `a batch holds at most ${maxItems} items, got ${request.items.length}`, 'items');
    const created = await store.createBatch(
      {
        id: newBatchId(),
        createdAt: Date.now(),
        source,
        options: { ...request.options, seed: request.options.seed ?? Math.floor(Math.random() * 2 ** 32) },
        webhook: request.webhook ? this.#endpoint(request.webhook) : null,
        items: request.items,
      } satisfies NewBatch,
      guard,
    );
    await this.#enqueue(created.batch);
    return created;
  }

  get(id: string): Promise<BatchRecord | undefined> {
    return this.options.store.getBatch(id);
  }

  cancel(id: string): Promise<BatchRecord | undefined> {
    return this.options.store.cancelBatch(id, Date.now());
  }

  #endpoint(webhook: NonNullable<BatchRequest['webhook']>): WebhookEndpoint {
    try {
      checkTargetUrl(webhook.url, this.options.allowPrivateWebhooks);
    } catch (e) {
      throw new BatchRequestError('webhook_url_not_allowed', e instanceof Error ? e.message : String(e), 'webhook.url');
    }
    return { url: webhook.url, secret: webhook.secret ?? newWebhookSecret(), events: [...new Set(webhook.events ?? WEBHOOK_EVENTS)] };
  }

  async #enqueue(batch: BatchRecord): Promise<void> {
    const queued = batch.items.filter((item) => item.status === 'queued');
    for (const item of queued) {
      const message = itemMessage(batch.id, item.index);
      await this.options.queue.send(message.body, message.options);
    }
    if (queued.length > 0) this.options.onEnqueued?.();
  }
}

/**
 * The hash an Idempotency-Key is bound to: the request as sent, so a retry matches and a
 * different request under the same key is refused.
 */
export function requestHash(request: unknown): string {
  return createHash('sha256').update(JSON.stringify(request)).digest('hex');
}
