/**
 * The job store (job-store.ts) in the embedded SQLite database (sqlite-db.ts). Each method
 * is one transaction.
 */
import type { WebhookEventType } from '../core/config.ts';
import {
  batchFinishedAt,
  batchStatus,
  isFinal,
  type BatchRecord,
  type EditOptions,
  type ImageSource,
  type ItemOutcome,
  type ItemRecord,
  type ItemStatus,
  type ItemWork,
  type NewBatch,
} from './batch.ts';
import { IDEMPOTENCY_TTL_MS, IdempotencyConflictError, ReplayedWebhookError, type CreateGuard, type Created, type JobStore, type WebhookTarget } from './job-store.ts';
import type { JobsDatabase } from './sqlite-db.ts';

interface BatchRow {
  id: string;
  created_at: number;
  source: string;
  options: string;
  cancelled_at: number | null;
  webhook_url: string | null;
  webhook_secret: string | null;
  webhook_events: string | null;
  webhook_disabled_at: number | null;
  webhook_disabled_reason: string | null;
}

interface ItemRow {
  idx: number;
  image: string;
  instruction: string;
  status: ItemStatus;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  result_key: string | null;
  result_uri: string | null;
  finished_at: number | null;
}

/** Inbound webhook-ids are kept this long; a replay past it fails the timestamp check anyway. */
const KEEP_INBOUND_MS = 24 * 3_600_000;

/**
 * @example
 * const store = new SqliteJobStore(openJobsDatabase('.cache/jobs.db'));
 * const { batch } = await store.createBatch(newBatch);
 */
export class SqliteJobStore implements JobStore {
  readonly #db: JobsDatabase;
  readonly #statements;

  constructor(db: JobsDatabase) {
    this.#db = db;
    this.#statements = {
      batch: db.prepare<[string], BatchRow>('SELECT * FROM batches WHERE id = ?'),
      items: db.prepare<[string], ItemRow>('SELECT * FROM items WHERE batch_id = ? ORDER BY idx'),
      item: db.prepare<[string, number], ItemRow>('SELECT * FROM items WHERE batch_id = ? AND idx = ?'),
      insertBatch: db.prepare(
        `INSERT INTO batches (id, created_at, source, options, webhook_url, webhook_secret, webhook_events) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertItem: db.prepare(`INSERT INTO items (batch_id, idx, image, instruction, status) VALUES (?, ?, ?, ?, 'queued')`),
      idempotency: db.prepare<[string, number], { request_hash: string; batch_id: string }>(
        'SELECT request_hash, batch_id FROM idempotency_keys WHERE key = ? AND created_at > ?',
      ),
      putIdempotency: db.prepare('INSERT OR REPLACE INTO idempotency_keys (key, request_hash, batch_id, created_at) VALUES (?, ?, ?, ?)'),
      pruneIdempotency: db.prepare('DELETE FROM idempotency_keys WHERE created_at <= ?'),
      inbound: db.prepare('INSERT INTO inbound_webhooks (source, webhook_id, batch_id, received_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING'),
      pruneInbound: db.prepare('DELETE FROM inbound_webhooks WHERE received_at <= ?'),
      cancel: db.prepare('UPDATE batches SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL'),
      cancelItems: db.prepare(`UPDATE items SET status = 'cancelled', finished_at = ? WHERE batch_id = ? AND status = 'queued'`),
      start: db.prepare(`UPDATE items SET status = 'running', attempts = ? WHERE batch_id = ? AND idx = ? AND status IN ('queued', 'running')`),
      cancelItem: db.prepare(`UPDATE items SET status = 'cancelled', finished_at = ? WHERE batch_id = ? AND idx = ? AND status IN ('queued', 'running')`),
      complete: db.prepare(
        `UPDATE items SET status = 'completed', result_key = ?, result_uri = ?, error_code = NULL, error_message = NULL, finished_at = ?
         WHERE batch_id = ? AND idx = ? AND status IN ('queued', 'running')`,
      ),
      fail: db.prepare(
        `UPDATE items SET status = 'failed', error_code = ?, error_message = ?, finished_at = ? WHERE batch_id = ? AND idx = ? AND status IN ('queued', 'running')`,
      ),
      disableWebhook: db.prepare('UPDATE batches SET webhook_disabled_at = ?, webhook_disabled_reason = ? WHERE id = ? AND webhook_disabled_at IS NULL'),
    };
  }

  async createBatch(batch: NewBatch, guard: CreateGuard = {}): Promise<Created> {
    const s = this.#statements;
    return this.#db
      .transaction((): Created => {
        const now = Date.now();
        const { idempotency, inbound } = guard;
        if (idempotency) {
          s.pruneIdempotency.run(now - IDEMPOTENCY_TTL_MS);
          const seen = s.idempotency.get(idempotency.key, now - IDEMPOTENCY_TTL_MS);
          if (seen) {
            if (seen.request_hash !== idempotency.requestHash) throw new IdempotencyConflictError('this Idempotency-Key was used with a different request');
            const row = s.batch.get(seen.batch_id);
            if (row) return { created: false, batch: this.#record(row), webhookSecret: row.webhook_secret };
          }
        }
        if (inbound) {
          s.pruneInbound.run(now - KEEP_INBOUND_MS);
          if (s.inbound.run(inbound.source, inbound.webhookId, batch.id, now).changes === 0) {
            throw new ReplayedWebhookError(`webhook-id ${inbound.webhookId} from ${inbound.source} was received before`);
          }
        }
        const { webhook } = batch;
        s.insertBatch.run(batch.id, batch.createdAt, batch.source, JSON.stringify(batch.options), webhook?.url ?? null, webhook?.secret ?? null, webhook ? JSON.stringify(webhook.events) : null);
        batch.items.forEach((item, index) => s.insertItem.run(batch.id, index, JSON.stringify(item.image), item.instruction));
        if (idempotency) s.putIdempotency.run(idempotency.key, idempotency.requestHash, batch.id, now);
        return { created: true, batch: this.#load(batch.id) as BatchRecord, webhookSecret: webhook?.secret ?? null };
      })
      .immediate();
  }

  async getBatch(id: string): Promise<BatchRecord | undefined> {
    return this.#db.transaction(() => this.#load(id))();
  }

  async cancelBatch(id: string, at: number): Promise<BatchRecord | undefined> {
    return this.#db
      .transaction(() => {
        if (this.#statements.cancel.run(at, id).changes === 1) this.#statements.cancelItems.run(at, id);
        return this.#load(id);
      })
      .immediate();
  }

  async startItem(id: string, index: number, attempt: number): Promise<ItemWork | undefined> {
    const s = this.#statements;
    return this.#db
      .transaction((): ItemWork | undefined => {
        const batch = s.batch.get(id);
        if (!batch) return undefined;
        // An item of a cancelled batch that had not started, or is waiting for a retry, ends here.
        if (batch.cancelled_at !== null) s.cancelItem.run(batch.cancelled_at, id, index);
        else s.start.run(attempt, id, index);
        const item = s.item.get(id, index);
        if (!item) return undefined;
        return {
          batchId: id,
          index,
          spec: { image: JSON.parse(item.image) as ImageSource, instruction: item.instruction },
          options: JSON.parse(batch.options) as EditOptions,
          status: item.status,
        };
      })
      .immediate();
  }

  async finishItem(id: string, index: number, outcome: ItemOutcome, at: number): Promise<BatchRecord | undefined> {
    const s = this.#statements;
    return this.#db
      .transaction(() => {
        if (outcome.status === 'completed') s.complete.run(outcome.result.key, outcome.result.uri, at, id, index);
        else s.fail.run(outcome.error.code, outcome.error.message, at, id, index);
        return this.#load(id);
      })
      .immediate();
  }

  async webhookTarget(id: string): Promise<WebhookTarget | undefined> {
    const row = this.#statements.batch.get(id);
    if (!row || row.webhook_url === null || row.webhook_secret === null) return undefined;
    return {
      endpoint: { url: row.webhook_url, secret: row.webhook_secret, events: JSON.parse(row.webhook_events ?? '[]') as WebhookEventType[] },
      disabled: row.webhook_disabled_at !== null,
    };
  }

  async disableWebhook(id: string, reason: string, at: number): Promise<void> {
    this.#statements.disableWebhook.run(at, reason, id);
  }

  /** The database belongs to whoever opened it. */
  async close(): Promise<void> {}

  #load(id: string): BatchRecord | undefined {
    const row = this.#statements.batch.get(id);
    return row && this.#record(row);
  }

  #record(row: BatchRow): BatchRecord {
    const items = this.#statements.items.all(row.id).map(itemRecord);
    const cancelled = row.cancelled_at !== null;
    return {
      id: row.id,
      createdAt: row.created_at,
      source: row.source,
      options: JSON.parse(row.options) as EditOptions,
      status: batchStatus(items, cancelled),
      cancelledAt: row.cancelled_at,
      finishedAt: batchFinishedAt(items),
      webhook:
        row.webhook_url === null
          ? null
          : {
              url: row.webhook_url,
              events: JSON.parse(row.webhook_events ?? '[]') as WebhookEventType[],
              disabled: row.webhook_disabled_at === null ? null : { at: row.webhook_disabled_at, reason: row.webhook_disabled_reason ?? '' },
            },
      items,
    };
  }
}

function itemRecord(row: ItemRow): ItemRecord {
  return {
    index: row.idx,
    instruction: row.instruction,
    status: row.status,
    attempts: row.attempts,
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    result: row.result_key === null || row.result_uri === null ? null : { key: row.result_key, uri: row.result_uri },
    finishedAt: isFinal(row.status) ? row.finished_at : null,
  };
}
