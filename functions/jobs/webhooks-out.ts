/**
 * Outbound webhooks, as the Standard Webhooks spec has them: each delivery carries
 * `webhook-id` (the event's, the same on every attempt), `webhook-timestamp` (the attempt's,
 * in Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
 * keyed by the endpoint's `whsec_` secret. A 2xx is delivered; 410 Gone means "stop"; any
 * other answer, a redirect (never followed), a timeout or a connection error is retried on
 * the schedule (WEBHOOK_RETRY_SCHEDULE, each wait ±20 % at random, see worker.ts); a target
 * in a private range is refused without a request (outbound-http.ts).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { WebhookEndpoint } from './batch.ts';
import type { OutboundEvent } from './events.ts';
import { OutboundRequestError, outboundRequest, RefusedTargetError } from './outbound-http.ts';

/**
 * A fresh secret: `whsec_` and 24 random bytes in base64.
 *
 * @example
 * newWebhookSecret(); // 'whsec_3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAA' (random)
 */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/**
 * The `webhook-signature` value for a delivery.
 *
 * @example
 * signature('whsec_…', 'msg_abc', 1700000000, '{"type":"batch.completed",…}'); // 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4='
 */
export function signature(secret: string, id: string, timestamp: number, payload: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${payload}`).digest('base64')}`;
}

export type DeliveryResult =
  | { readonly kind: 'delivered'; readonly status: number }
  /** 410 Gone: the endpoint asks for nothing more. */
  | { readonly kind: 'gone' }
  /** The target's address is refused; no request was made. */
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string };

export interface DeliveryOptions {
  readonly allowPrivate: boolean;
  readonly timeoutMs: number;
  /** The clock, in milliseconds (tests move it). */
  readonly now?: () => number;
}

/**
 * Sends one attempt of `event` to `endpoint`.
 *
 * @example
 * const result = await deliver(endpoint, event, { allowPrivate: false, timeoutMs: 15_000 });
 * if (result.kind === 'gone') await store.disableWebhook(batchId, 'the endpoint answered 410 Gone', Date.now());
 */
export async function deliver(endpoint: WebhookEndpoint, event: OutboundEvent, options: DeliveryOptions): Promise<DeliveryResult> {
  const timestamp = Math.floor((options.now ?? Date.now)() / 1000);
  try {
    const res = await outboundRequest(endpoint.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': event.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signature(endpoint.secret, event.id, timestamp, event.payload),
      },
      body: event.payload,
      allowPrivate: options.allowPrivate,
      timeoutMs: options.timeoutMs,
      maxResponseBytes: 64 * 1024,
    });
    if (res.status >= 200 && res.status < 300) return { kind: 'delivered', status: res.status };
    if (res.status === 410) return { kind: 'gone' };
    if (res.status >= 300 && res.status < 400) return { kind: 'failed', reason: `answered ${res.status} (redirects are not followed)` };
    return { kind: 'failed', reason: `answered ${res.status}` };
  } catch (e) {
    if (e instanceof RefusedTargetError) return { kind: 'refused', reason: e.message };
    if (e instanceof OutboundRequestError) return { kind: 'failed', reason: e.message };
    throw e;
  }
}

/**
 * The wait before attempt `attempt + 1` after attempt `attempt` failed, or undefined when the
 * schedule is spent: the schedule's entry, ±20 % at random so retries spread out.
 *
 * @example
 * retryDelayMs([5_000, 300_000], 1, () => 0.5); // 5000
 * retryDelayMs([5_000, 300_000], 3); // undefined: give up
 */
export function retryDelayMs(scheduleMs: readonly number[], attempt: number, random: () => number = Math.random): number | undefined {
  const base = scheduleMs[attempt - 1];
  return base === undefined ? undefined : Math.round(base * (0.8 + 0.4 * random()));
}
