/**
 * The events a batch sends to its webhook, built from its records alone (never from the
 * moment they are sent), so the same event is the same bytes however often, and by whom,
 * it is enqueued: `batch.item.completed` for every item edited, then `batch.completed`
 * (every item final, at least one edited) or `batch.failed` (none edited). A cancelled
 * batch sends no batch event. The payload follows Standard Webhooks: `{type, timestamp, data}`.
 */
import type { WebhookEventType } from '../core/config.ts';
import { countItems, webhookId, type BatchRecord, type ItemRecord } from './batch.ts';

export interface OutboundEvent {
  /** The webhook-id header: stable for this event. */
  readonly id: string;
  readonly type: WebhookEventType;
  /** The JSON body, exactly as signed and sent. */
  readonly payload: string;
}

/** An item as events and the API show it. */
export function itemSummary(item: ItemRecord) {
  return {
    index: item.index,
    status: item.status,
    instruction: item.instruction,
    attempts: item.attempts,
    error: item.error,
    result: item.result,
    finished_at: item.finishedAt === null ? null : Math.floor(item.finishedAt / 1000),
  };
}

function event(type: WebhookEventType, id: string, at: number, data: unknown): OutboundEvent {
  return { id, type, payload: JSON.stringify({ type, timestamp: new Date(at).toISOString(), data }) };
}

/**
 * The events due for `batch` once item `index` is final, filtered by the webhook's `events`
 * (none without a webhook, or once it is disabled).
 *
 * @example
 * for (const e of dueEvents(batch, 3)) await queue.send(webhookMessage(batch.id, e), { dedupeId: e.id });
 */
export function dueEvents(batch: BatchRecord, index: number): OutboundEvent[] {
  if (batch.webhook === null || batch.webhook.disabled !== null) return [];
  const events: OutboundEvent[] = [];
  const item = batch.items[index];
  if (item?.status === 'completed' && item.finishedAt !== null) {
    events.push(event('batch.item.completed', webhookId(batch.id, 'batch.item.completed', index), item.finishedAt, { batch_id: batch.id, item: itemSummary(item) }));
  }
  if ((batch.status === 'completed' || batch.status === 'failed') && batch.finishedAt !== null) {
    const type = batch.status === 'completed' ? 'batch.completed' : 'batch.failed';
    events.push(
      event(type, webhookId(batch.id, type), batch.finishedAt, {
        batch_id: batch.id,
        status: batch.status,
        request_counts: countItems(batch.items),
        items: batch.items.map(itemSummary),
      }),
    );
  }
  const wanted = batch.webhook.events;
  return events.filter((e) => wanted.includes(e.type));
}
