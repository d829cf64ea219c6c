/**
 * The job store (job-store.ts) as objects in an artifact store: on AWS, an S3 prefix that
 * the API and the SQS workers share (JOB_STORE_URI); in tests, a folder. There are no
 * transactions, so every record is either written once and never changed, or made with
 * `create` (the first writer wins):
 *
 * ```
 * batches/<id>/batch.json            the request: items, options, webhook (written once)
 * batches/<id>/running/<i>.json      item i started: {"attempts"} (rewritten per attempt)
 * batches/<id>/final/<i>.json        item i's outcome (created once: a later outcome is ignored)
 * batches/<id>/cancelled.json        the cancel (created once)
 * batches/<id>/webhook-disabled.json why deliveries stopped (created once)
 * idempotency/<sha256 of key>.json   {requestHash, batchId, createdAt} (created once)
 * inbound/<source>/<sha256 of id>.json an inbound webhook-id seen (created once)
 * ```
 *
 * An item's status comes from which of its records exist; a listing of the batch's folder
 * tells them all. Reading a whole batch reads each started item's record, so `finishItem`
 * reads them only once the batch is finished (the batch events list every item); while the
 * batch is open, the other items it returns carry their status only.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { WEBHOOK_EVENTS } from '../core/config.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import {
  batchFinishedAt,
  batchStatus,
  type BatchRecord,
  type ItemOutcome,
  type ItemRecord,
  type ItemStatus,
  type ItemWork,
  type NewBatch,
} from './batch.ts';
import { IDEMPOTENCY_TTL_MS, IdempotencyConflictError, ReplayedWebhookError, type CreateGuard, type Created, type JobStore, type WebhookTarget } from './job-store.ts';

const imageSource = z.union([z.object({ url: z.string() }), z.object({ base64: z.string() }), z.object({ key: z.string() })]);

const batchFile = z.object({
  id: z.string(),
  createdAt: z.number(),
  source: z.string(),
  options: z.object({
    steps: z.number().optional(),
    sampler: z.enum(['sparse', 'dense']).optional(),
    temperature: z.number().optional(),
    guidance: z.number().optional(),
    seed: z.number(),
  }),
  webhook: z.object({ url: z.string(), secret: z.string(), events: z.array(z.enum(WEBHOOK_EVENTS)) }).nullable(),
  items: z.array(z.object({ image: imageSource, instruction: z.string() })),
});
type BatchFile = z.output<typeof batchFile>;

const finalFile = z.object({
  status: z.enum(['completed', 'failed', 'cancelled']),
  attempts: z.number(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  result: z.object({ key: z.string(), uri: z.string() }).nullable(),
  finishedAt: z.number(),
});
type FinalFile = z.output<typeof finalFile>;

const runningFile = z.object({ attempts: z.number() });
const markFile = z.object({ at: z.number(), reason: z.string().optional() });
const idempotencyFile = z.object({ requestHash: z.string(), batchId: z.string(), createdAt: z.number() });

const JSON_TYPE = 'application/json';
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const hashed = (text: string) => createHash('sha256').update(text).digest('hex');

/** Reads of one batch's records at once. */
const PARALLEL_READS = 16;

/**
 * @example
 * const store = new ObjectJobStore(openArtifactStore(config.jobs.queue.storeUri, s3));
 */
export class ObjectJobStore implements JobStore {
  constructor(private readonly objects: ArtifactStore) {}

  async createBatch(batch: NewBatch, guard: CreateGuard = {}): Promise<Created> {
    const { idempotency, inbound } = guard;
    const keyFile = idempotency && `idempotency/${hashed(idempotency.key)}.json`;
    const seen = keyFile === undefined ? undefined : await this.#read(keyFile, idempotencyFile);
    const live = seen && seen.createdAt > Date.now() - IDEMPOTENCY_TTL_MS;
    if (live && idempotency) return this.#replay(seen, idempotency.requestHash);
    if (inbound) {
      const mark = await this.objects.create(`inbound/${inbound.source}/${hashed(inbound.webhookId)}.json`, encode({ at: Date.now() }), JSON_TYPE);
      if (!mark.written) throw new ReplayedWebhookError(`webhook-id ${inbound.webhookId} from ${inbound.source} was received before`);
    }
    const file: BatchFile = { ...batch, options: { ...batch.options }, webhook: batch.webhook && { ...batch.webhook, events: [...batch.webhook.events] }, items: [...batch.items] };
    await this.objects.create(`batches/${batch.id}/batch.json`, encode(file), JSON_TYPE);
    // The key is taken after the batch exists, so it never points at nothing; of two requests
    // racing with one key, the loser's batch is left unqueued and the winner's is answered.
    if (keyFile !== undefined && idempotency) {
      const record = encode({ requestHash: idempotency.requestHash, batchId: batch.id, createdAt: Date.now() });
      const write = seen ? await this.objects.put(keyFile, record, JSON_TYPE) : await this.objects.create(keyFile, record, JSON_TYPE);
      if (!write.written) {
        const winner = await this.#read(keyFile, idempotencyFile);
        if (winner && winner.batchId !== batch.id) return this.#replay(winner, idempotency.requestHash);
      }
    }
    return { created: true, batch: (await this.getBatch(batch.id)) as BatchRecord, webhookSecret: batch.webhook?.secret ?? null };
  }

  async getBatch(id: string): Promise<BatchRecord | undefined> {
    return this.#load(id, 'all');
  }

  async cancelBatch(id: string, at: number): Promise<BatchRecord | undefined> {
    if (!(await this.#batchFile(id))) return undefined;
    await this.objects.create(`batches/${id}/cancelled.json`, encode({ at }), JSON_TYPE);
    return this.getBatch(id);
  }

  async startItem(id: string, index: number, attempt: number): Promise<ItemWork | undefined> {
    const file = await this.#batchFile(id);
    const spec = file?.items[index];
    if (!file || !spec) return undefined;
    const work = (status: ItemStatus): ItemWork => ({ batchId: id, index, spec, options: file.options, status });
    const done = await this.#read(`batches/${id}/final/${index}.json`, finalFile);
    if (done) return work(done.status);
    const cancel = await this.#read(`batches/${id}/cancelled.json`, markFile);
    if (cancel) {
      const final: FinalFile = { status: 'cancelled', attempts: attempt - 1, error: null, result: null, finishedAt: cancel.at };
      await this.objects.create(`batches/${id}/final/${index}.json`, encode(final), JSON_TYPE);
      return work('cancelled');
    }
    await this.objects.put(`batches/${id}/running/${index}.json`, encode({ attempts: attempt }), JSON_TYPE);
    return work('running');
  }

  async finishItem(id: string, index: number, outcome: ItemOutcome, at: number): Promise<BatchRecord | undefined> {
    if (!(await this.#batchFile(id))) return undefined;
    const running = await this.#read(`batches/${id}/running/${index}.json`, runningFile);
    const final: FinalFile = {
      status: outcome.status,
      attempts: running?.attempts ?? 1,
      error: outcome.status === 'failed' ? outcome.error : null,
      result: outcome.status === 'completed' ? outcome.result : null,
      finishedAt: at,
    };
    await this.objects.create(`batches/${id}/final/${index}.json`, encode(final), JSON_TYPE);
    return this.#load(id, index);
  }

  async webhookTarget(id: string): Promise<WebhookTarget | undefined> {
    const file = await this.#batchFile(id);
    if (!file?.webhook) return undefined;
    const disabled = await this.objects.get(`batches/${id}/webhook-disabled.json`);
    return { endpoint: file.webhook, disabled: disabled !== undefined };
  }

  async disableWebhook(id: string, reason: string, at: number): Promise<void> {
    await this.objects.create(`batches/${id}/webhook-disabled.json`, encode({ at, reason }), JSON_TYPE);
  }

  async close(): Promise<void> {}

  async #replay(seen: z.output<typeof idempotencyFile>, requestHash: string): Promise<Created> {
    if (seen.requestHash !== requestHash) throw new IdempotencyConflictError('this Idempotency-Key was used with a different request');
    const file = await this.#batchFile(seen.batchId);
    const batch = await this.getBatch(seen.batchId);
    if (!file || !batch) throw new Error(`the batch ${seen.batchId} of an Idempotency-Key is missing`);
    return { created: false, batch, webhookSecret: file.webhook?.secret ?? null };
  }

  #batchFile(id: string): Promise<BatchFile | undefined> {
    return /^batch_[a-z0-9]+$/.test(id) ? this.#read(`batches/${id}/batch.json`, batchFile) : Promise.resolve(undefined);
  }

  async #read<S extends z.ZodType>(key: string, schema: S): Promise<z.output<S> | undefined> {
    const bytes = await this.objects.get(key);
    return bytes === undefined ? undefined : schema.parse(JSON.parse(new TextDecoder().decode(bytes)));
  }

  /** The batch; item records are read for every item (`all`) or one (an index: see the header). */
  async #load(id: string, details: 'all' | number): Promise<BatchRecord | undefined> {
    const file = await this.#batchFile(id);
    if (!file) return undefined;
    const keys = new Set(await this.objects.list(`batches/${id}/`));
    const cancel = keys.has(`batches/${id}/cancelled.json`) ? await this.#read(`batches/${id}/cancelled.json`, markFile) : undefined;
    const finals = file.items.map((_, i) => keys.has(`batches/${id}/final/${i}.json`));
    const finished = finals.every(Boolean);
    const wanted = (i: number) => details === 'all' || details === i || finished;
    const items = await mapLimit(file.items, PARALLEL_READS, async (spec, index): Promise<ItemRecord> => {
      const base = { index, instruction: spec.instruction, attempts: 0, error: null, result: null, finishedAt: null };
      if (finals[index]) {
        const final = wanted(index) ? await this.#read(`batches/${id}/final/${index}.json`, finalFile) : undefined;
        return final ? { ...base, ...final } : { ...base, status: 'completed' };
      }
      if (keys.has(`batches/${id}/running/${index}.json`)) {
        const running = wanted(index) ? await this.#read(`batches/${id}/running/${index}.json`, runningFile) : undefined;
        return { ...base, status: 'running', attempts: running?.attempts ?? 0 };
      }
      return cancel ? { ...base, status: 'cancelled', finishedAt: cancel.at } : { ...base, status: 'queued' };
    });
    const disabled = file.webhook && keys.has(`batches/${id}/webhook-disabled.json`) ? await this.#read(`batches/${id}/webhook-disabled.json`, markFile) : undefined;
    return {
      id,
      createdAt: file.createdAt,
      source: file.source,
      options: file.options,
      status: batchStatus(items, cancel !== undefined),
      cancelledAt: cancel?.at ?? null,
      finishedAt: batchFinishedAt(items),
      webhook: file.webhook && { url: file.webhook.url, events: file.webhook.events, disabled: disabled ? { at: disabled.at, reason: disabled.reason ?? '' } : null },
      items,
    };
  }
}

async function mapLimit<T, R>(values: readonly T[], limit: number, f: (value: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(values.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, values.length) }, async () => {
    while (next < values.length) {
      const i = next++;
      out[i] = await f(values[i] as T, i);
    }
  });
  await Promise.all(lanes);
  return out;
}
