/**
 * The batch worker: handles one queue message at a time, wherever it came from (the embedded
 * loop in worker-loop.ts, or SQS through the Lambda handler), and says what to do with it.
 *
 * - `item`: edits item i of a batch through the pipeline (seeded per item, so a re-delivery
 *   makes the same image), writes the PNG to the artifact store under `<batch>/<i>.png` with
 *   `create` (a result already there stays: nothing is overwritten, nothing duplicated),
 *   records the outcome, then enqueues the webhook events now due. Every step is idempotent,
 *   so a worker killed between any two of them is simply redone by the next delivery. An
 *   item that cannot succeed (an unreadable image, a word outside the model's language) fails
 *   at once; other errors are retried with backoff, and the last allowed attempt records the
 *   failure.
 * - `webhook`: one delivery attempt of one event (webhooks-out.ts); a failed attempt enqueues
 *   the next one after the schedule's wait, 410 or a refused address disables the endpoint.
 */
import { z } from 'zod';
import { WEBHOOK_EVENTS } from '../core/config.ts';
import { PipelineInputError, type Pipeline } from '../pipeline/pipeline.ts';
import { artifactKey, type ArtifactStore } from '../storage/artifact-store.ts';
import { ImageDecodeError, encodePng } from '../tokenizers/png.ts';
import { PromptTooLongError } from '../tokenizers/prompt-layout.ts';
import { UnknownWordError } from '../tokenizers/text.ts';
import { isFinal, itemSeed, type ItemError, type ItemOutcome, type ItemWork } from './batch.ts';
import { dueEvents, type OutboundEvent } from './events.ts';
import { ItemFailure, loadItemImage, type ImageSources } from './item-images.ts';
import type { JobStore } from './job-store.ts';
import type { Queue, SendOptions } from './queue.ts';
import { deliver, retryDelayMs } from './webhooks-out.ts';

const messageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('item'), batch: z.string(), index: z.number().int().min(0) }),
  z.object({
    kind: z.literal('webhook'),
    batch: z.string(),
    id: z.string(),
    type: z.enum(WEBHOOK_EVENTS),
    payload: z.string(),
    attempt: z.number().int().min(1),
    /** Unix ms before which the attempt must not be made (delays beyond what the queue holds in one go). */
    not_before: z.number().optional(),
  }),
]);
export type JobMessage = z.output<typeof messageSchema>;
type WebhookMessage = Extract<JobMessage, { kind: 'webhook' }>;

export interface OutgoingMessage {
  readonly body: string;
  readonly options: SendOptions;
}

/** The message that gets item `index` of a batch edited. */
export function itemMessage(batchId: string, index: number): OutgoingMessage {
  return { body: JSON.stringify({ kind: 'item', batch: batchId, index } satisfies JobMessage), options: { dedupeId: `item:${batchId}:${index}` } };
}

function webhookMessage(batchId: string, event: OutboundEvent, attempt: number, notBefore?: number): JobMessage {
  return { kind: 'webhook', batch: batchId, id: event.id, type: event.type, payload: event.payload, attempt, ...(notBefore === undefined ? {} : { not_before: notBefore }) };
}

/** What to do with a message once handled: delete it, or deliver it again after a while. */
export type Disposition = { readonly ack: true } | { readonly ack: false; readonly retryInMs: number };

const ACK: Disposition = { ack: true };

/**
 * How many times the queue must deliver one message (SqliteQueue `maxAttempts`, SQS
 * `maxReceiveCount`) for a worker allowed `maxAttempts` attempts: one more, so that an item
 * whose last attempt was cut short (the process killed, a Lambda timeout) comes back once
 * and is recorded as failed, instead of being dead-lettered while still `running`.
 */
export function queueDeliveries(maxAttempts: number): number {
  return maxAttempts + 1;
}

export interface WorkerOptions {
  readonly store: JobStore;
  readonly queue: Queue;
  readonly pipeline: Pipeline;
  readonly outputs: ArtifactStore;
  readonly images: ImageSources;
  /**
   * Attempts at an item: its last attempt records its failure instead of asking for another;
   * a delivery after the last (the queue makes `queueDeliveries(maxAttempts)`) records the
   * failure of an item whose attempts all stopped midway.
   */
  readonly maxAttempts: number;
  readonly webhooks: { readonly allowPrivate: boolean; readonly retryScheduleMs: readonly number[]; readonly timeoutMs: number };
  readonly log: (line: string) => void;
  readonly now?: () => number;
  readonly random?: () => number;
}

/**
 * @example
 * const worker = new BatchWorker({ store, queue, pipeline, outputs, images, maxAttempts: 5, webhooks, log: console.log });
 * const disposition = await worker.handle(message.body, message.attempts);
 */
export class BatchWorker {
  readonly #o: WorkerOptions;
  readonly #now: () => number;

  constructor(options: WorkerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Handles a message body on its `attempts`-th delivery. */
  async handle(body: string, attempts: number): Promise<Disposition> {
    let message: JobMessage;
    try {
      message = messageSchema.parse(JSON.parse(body));
    } catch {
      // Never handled: it goes around until the queue dead-letters it, where it can be inspected.
      this.#o.log(`batch worker: a message that is not a job (${body.slice(0, 200)}) is left for the dead-letter queue`);
      return { ack: false, retryInMs: 0 };
    }
    return message.kind === 'item' ? this.#item(message.batch, message.index, attempts) : this.#webhook(message);
  }

  async #item(batchId: string, index: number, attempts: number): Promise<Disposition> {
    const { store, log } = this.#o;
    const work = await store.startItem(batchId, index, attempts);
    if (!work) {
      log(`batch worker: no item ${index} in batch ${batchId}; message dropped`);
      return ACK;
    }
    if (isFinal(work.status)) {
      // A re-delivery after the outcome was recorded: make sure its events went out.
      const batch = await store.getBatch(batchId);
      if (batch) await this.#enqueueEvents(batch.id, dueEvents(batch, index));
      return ACK;
    }
    let outcome: ItemOutcome;
    if (attempts > this.#o.maxAttempts) {
      // The extra delivery (see queueDeliveries): every attempt ended without an outcome.
      const message = `gave up after ${this.#o.maxAttempts} attempts: each one stopped before it finished (the worker was killed or timed out)`;
      log(`batch worker: ${batchId} item ${index}: ${message}`);
      outcome = { status: 'failed', error: { code: 'attempts_exhausted', message } };
    } else {
      try {
        outcome = { status: 'completed', result: await this.#edit(work) };
      } catch (e) {
        const error = itemError(e);
        if (error.retryable && attempts < this.#o.maxAttempts) {
          const delay = Math.round(Math.min(1_000 * 2 ** (attempts - 1), 60_000) * (0.8 + 0.4 * (this.#o.random ?? Math.random)()));
          log(`batch worker: ${batchId} item ${index} attempt ${attempts} failed (${error.message}); retrying in ${delay} ms`);
          return { ack: false, retryInMs: delay };
        }
        const message = error.retryable ? `gave up after ${attempts} attempts: ${error.message}` : error.message;
        outcome = { status: 'failed', error: { code: error.retryable ? 'attempts_exhausted' : error.code, message } };
      }
    }
    const batch = await store.finishItem(batchId, index, outcome, this.#now());
    if (batch) await this.#enqueueEvents(batch.id, dueEvents(batch, index));
    return ACK;
  }

  async #edit(work: ItemWork) {
    const { pipeline, outputs, images } = this.#o;
    const image = await loadItemImage(work.spec.image, images);
    const { options } = work;
    const steps = pipeline.edit(image, work.spec.instruction, {
      seed: itemSeed(options, work.index),
      ...(options.steps === undefined ? {} : { steps: options.steps }),
      ...(options.sampler === undefined ? {} : { sampler: options.sampler }),
      ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
      ...(options.guidance === undefined ? {} : { guidance: options.guidance }),
    });
    let result;
    for (;;) {
      const r = await steps.next();
      if (r.done) {
        result = r.value;
        break;
      }
    }
    const key = artifactKey(work.batchId, `${work.index}.png`);
    const { uri } = await outputs.create(key, encodePng(result.image), 'image/png');
    return { key, uri };
  }

  async #enqueueEvents(batchId: string, events: readonly OutboundEvent[]): Promise<void> {
    for (const event of events) await this.#o.queue.send(JSON.stringify(webhookMessage(batchId, event, 1)), { dedupeId: `${event.id}#1` });
  }

  async #webhook(message: WebhookMessage): Promise<Disposition> {
    const { store, queue, webhooks, log } = this.#o;
    const now = this.#now();
    if (message.not_before !== undefined && message.not_before > now + 1_000) {
      // Longer than the queue can delay in one go (SQS: 15 minutes): wait another round.
      await queue.send(JSON.stringify(message), { delayMs: Math.min(message.not_before - now, queue.maxDelayMs) });
      return ACK;
    }
    const target = await store.webhookTarget(message.batch);
    if (!target || target.disabled) return ACK;
    const event: OutboundEvent = { id: message.id, type: message.type, payload: message.payload };
    const result = await deliver(target.endpoint, event, { allowPrivate: webhooks.allowPrivate, timeoutMs: webhooks.timeoutMs, now: this.#now });
    const what = `webhook ${message.type} ${message.id} of ${message.batch} (attempt ${message.attempt})`;
    switch (result.kind) {
      case 'delivered':
        log(`${what} delivered (${result.status})`);
        return ACK;
      case 'gone':
        log(`${what}: the endpoint answered 410 Gone; it is disabled`);
        await store.disableWebhook(message.batch, 'the endpoint answered 410 Gone', now);
        return ACK;
      case 'refused':
        log(`${what} refused: ${result.reason}; the endpoint is disabled`);
        await store.disableWebhook(message.batch, result.reason, now);
        return ACK;
      case 'failed': {
        const delay = retryDelayMs(webhooks.retryScheduleMs, message.attempt, this.#o.random);
        if (delay === undefined) {
          log(`${what} failed (${result.reason}); no attempts left`);
          return ACK;
        }
        log(`${what} failed (${result.reason}); next attempt in ${delay} ms`);
        const next = webhookMessage(message.batch, event, message.attempt + 1, now + delay);
        await queue.send(JSON.stringify(next), { delayMs: Math.min(delay, queue.maxDelayMs), dedupeId: `${event.id}#${message.attempt + 1}` });
        return ACK;
      }
    }
  }
}

/** What went wrong with an item, and whether another attempt might go better. */
function itemError(e: unknown): ItemError & { readonly retryable: boolean } {
  const final = (code: string, message: string) => ({ code, message, retryable: false });
  if (e instanceof ItemFailure) return final(e.code, e.message);
  if (e instanceof ImageDecodeError) return final(e.code === 'unsupported_size' ? 'invalid_image_size' : 'invalid_image', e.message);
  if (e instanceof UnknownWordError) return final('unknown_word', `${e.message}: the model knows only the words of the shapes world`);
  if (e instanceof PromptTooLongError) return final('prompt_too_long', e.message);
  if (e instanceof PipelineInputError) return final('invalid_value', e.message);
  return { code: 'internal_error', message: e instanceof Error ? e.message : String(e), retryable: true };
}
