/**
 * Batches of edits (docs/design.md section 7): what a batch and its items are, their statuses,
 * and the rules that derive a batch's status from its items. Both job stores (SQLite,
 * objects on S3) keep these records; the worker, the API and the webhooks read them.
 */
import { createHash } from 'node:crypto';
import type { WebhookEventType } from '../core/config.ts';

/** `queued` → `running` → `completed` | `failed`; a queued item of a cancelled batch becomes `cancelled`. */
export type ItemStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export type BatchStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled';

/** Where an item's image comes from: fetched from a URL, inline base64 (or a data URL), or a key of the input store. */
export type ImageSource = { readonly url: string } | { readonly base64: string } | { readonly key: string };

export interface ItemSpec {
  readonly image: ImageSource;
  readonly instruction: string;
}

/** Sampling options every item of a batch is edited with (the request's names: see api/schemas.ts). */
export interface EditOptions {
  readonly steps?: number | undefined;
  readonly sampler?: 'sparse' | 'dense' | undefined;
  readonly temperature?: number | undefined;
  readonly guidance?: number | undefined;
  /** Item i is edited with seed (seed + i) mod 2^32, so a re-delivered item makes the same image. */
  readonly seed: number;
}

export interface WebhookEndpoint {
  readonly url: string;
  /** `whsec_…`: signs every delivery to this endpoint. */
  readonly secret: string;
  readonly events: readonly WebhookEventType[];
}

export interface NewBatch {
  readonly id: string;
  /** Unix milliseconds. */
  readonly createdAt: number;
  /** `api`, or `hook:<source>` for a batch created by an inbound webhook. */
  readonly source: string;
  readonly options: EditOptions;
  readonly webhook: WebhookEndpoint | null;
  readonly items: readonly ItemSpec[];
}

export interface ItemError {
  readonly code: string;
  readonly message: string;
}

export interface ItemResult {
  /** The artifact key, e.g. `batch_…/3.png`. */
  readonly key: string;
  /** Where it is stored, e.g. `s3://bucket/outputs/batch_…/3.png`. */
  readonly uri: string;
}

export interface ItemRecord {
  readonly index: number;
  readonly instruction: string;
  readonly status: ItemStatus;
  /** Deliveries of the item's message so far (1 on a first try). */
  readonly attempts: number;
  readonly error: ItemError | null;
  readonly result: ItemResult | null;
  /** Unix milliseconds; set once the item is final. */
  readonly finishedAt: number | null;
}

export interface WebhookState {
  readonly url: string;
  readonly events: readonly WebhookEventType[];
  /** Set once the endpoint answered 410 Gone, or its address was refused: nothing more is sent. */
  readonly disabled: { readonly at: number; readonly reason: string } | null;
}

export interface BatchRecord {
  readonly id: string;
  readonly createdAt: number;
  readonly source: string;
  readonly options: EditOptions;
  readonly status: BatchStatus;
  readonly cancelledAt: number | null;
  /** When the last item became final (the latest item `finishedAt`); null while items are open. */
  readonly finishedAt: number | null;
  readonly webhook: WebhookState | null;
  readonly items: readonly ItemRecord[];
}

/** What the worker needs to run one item. */
export interface ItemWork {
  readonly batchId: string;
  readonly index: number;
  readonly spec: ItemSpec;
  readonly options: EditOptions;
  /** `running` when the worker should edit it; a final status when that was done before. */
  readonly status: ItemStatus;
}

export type ItemOutcome = { readonly status: 'completed'; readonly result: ItemResult } | { readonly status: 'failed'; readonly error: ItemError };

export const FINAL_ITEM_STATUSES: readonly ItemStatus[] = ['completed', 'failed', 'cancelled'];

export function isFinal(status: ItemStatus): boolean {
  return FINAL_ITEM_STATUSES.includes(status);
}

export function isBatchFinished(status: BatchStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

export type ItemCounts = Record<ItemStatus, number> & { readonly total: number };

export function countItems(items: readonly Pick<ItemRecord, 'status'>[]): ItemCounts {
  const counts = { total: items.length, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
  for (const item of items) counts[item.status]++;
  return counts;
}

/**
 * A batch's status from its items: open while any item is queued or running (`queued` until
 * one has started); once every item is final, `completed` if at least one succeeded, `failed`
 * if none did; `cancelled` after a cancel, whatever the items did.
 */
export function batchStatus(items: readonly Pick<ItemRecord, 'status'>[], cancelled: boolean): BatchStatus {
  if (cancelled) return 'cancelled';
  const counts = countItems(items);
  if (counts.queued + counts.running > 0) return counts.queued === counts.total ? 'queued' : 'in_progress';
  return counts.completed > 0 ? 'completed' : 'failed';
}

/** The latest `finishedAt` of the items once all are final; null while any is open. */
export function batchFinishedAt(items: readonly Pick<ItemRecord, 'status' | 'finishedAt'>[]): number | null {
  let latest = 0;
  for (const item of items) {
    if (!isFinal(item.status) || item.finishedAt === null) return null;
    latest = Math.max(latest, item.finishedAt);
  }
  return latest;
}

/**
 * A new batch id: `batch_` and 24 random base32 characters.
 *
 * @example
 * newBatchId(); // 'batch_k3v9q2m8x1c7r5t0w4y6z2b8'
 */
export function newBatchId(): string {
  return `batch_${base32(crypto.getRandomValues(new Uint8Array(15)))}`;
}

/** The seed item `index` is edited with. */
export function itemSeed(options: EditOptions, index: number): number {
  return (options.seed + index) % 2 ** 32;
}

/**
 * The webhook-id of an event: derived from what the event is about, so every delivery of
 * it, by any worker, after any crash, carries the same id and receivers can deduplicate.
 *
 * @example
 * webhookId('batch_abc', 'batch.item.completed', 3); // 'msg_…' (always the same)
 */
export function webhookId(batchId: string, type: WebhookEventType, index?: number): string {
  const digest = createHash('sha256').update(`${batchId}|${type}|${index ?? ''}`).digest();
  return `msg_${base32(digest.subarray(0, 15))}`;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}
