/**
 * The job store port: batches, their items and their webhook, as the API, the worker and the
 * webhook sender see them. Implementations: SQLite (embedded, sqlite-job-store.ts) and
 * objects under an S3 prefix (with SQS, object-job-store.ts), held to the same contract by
 * job-store.test.ts.
 *
 * Every write is idempotent, because every message may be delivered more than once: an
 * item's first final outcome stays (a later one is ignored), cancelling twice is cancelling
 * once, and creating a batch under an Idempotency-Key or an inbound webhook-id already seen
 * creates nothing.
 */
import type { BatchRecord, ItemOutcome, ItemWork, NewBatch, WebhookEndpoint } from './batch.ts';

export interface CreateGuard {
  /** An Idempotency-Key (already scoped to its caller) and a hash of the request it came with. */
  readonly idempotency?: { readonly key: string; readonly requestHash: string };
  /** An inbound webhook: its source and webhook-id, which may create one batch only. */
  readonly inbound?: { readonly source: string; readonly webhookId: string };
}

export interface Created {
  /** False when the Idempotency-Key had already created `batch`. */
  readonly created: boolean;
  readonly batch: BatchRecord;
  /** The webhook's secret, for the create response only. */
  readonly webhookSecret: string | null;
}

/** How long an Idempotency-Key holds. */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;

/** The Idempotency-Key was used before with a different request. */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
}

/** The inbound webhook-id was received before. */
export class ReplayedWebhookError extends Error {
  override readonly name = 'ReplayedWebhookError';
}

export interface WebhookTarget {
  readonly endpoint: WebhookEndpoint;
  readonly disabled: boolean;
}

export interface JobStore {
  createBatch(batch: NewBatch, guard?: CreateGuard): Promise<Created>;
  getBatch(id: string): Promise<BatchRecord | undefined>;
  /** Cancels the batch (its queued items become `cancelled`); the batch as it is then, or undefined if unknown. */
  cancelBatch(id: string, at: number): Promise<BatchRecord | undefined>;
  /** The item's work, marked `running` on its `attempt` unless it is final already; undefined if unknown. */
  startItem(id: string, index: number, attempt: number): Promise<ItemWork | undefined>;
  /** Makes the item final unless it is already (the first outcome stays); the batch as it is then. */
  finishItem(id: string, index: number, outcome: ItemOutcome, at: number): Promise<BatchRecord | undefined>;
  webhookTarget(id: string): Promise<WebhookTarget | undefined>;
  /** No more deliveries to this batch's endpoint (it answered 410, or its address is refused). */
  disableWebhook(id: string, reason: string, at: number): Promise<void>;
  close(): Promise<void>;
}
