/**
 * Verifying the webhooks the service sends (Standard Webhooks): the signature is HMAC-SHA256
 * of `webhook-id.webhook-timestamp.body`, keyed by the base64-decoded part of the endpoint's
 * `whsec_` secret, sent as `v1,<base64>` (several may be sent, space-separated, while a
 * secret is rotated). The check runs on the raw body, before it is parsed, and is constant
 * time (WebCrypto's HMAC verify); a timestamp more than 5 minutes off is refused, so a
 * captured delivery cannot be replayed later. Deduplicate on `webhook-id`: a retried event
 * keeps it. WebCrypto only: runs on Node 20+, Deno, Bun, browsers and edge runtimes.
 */
import { WebhookVerificationError } from './errors.ts';
import type { WebhookEvent } from './types.ts';

export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** How far the timestamp may be from now, in seconds; default 300. */
  toleranceSeconds?: number | undefined;
  /** The clock, in milliseconds (tests). */
  now?: number | undefined;
}

const DEFAULT_TOLERANCE_S = 300;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : headers[key];
  return Array.isArray(value) ? value[0] : value;
}

function base64Bytes(text: string): Uint8Array | undefined {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * Checks a delivery and returns its event; throws WebhookVerificationError otherwise.
 *
 * @example
 * // In an HTTP handler, with the body as received (not re-serialized JSON):
 * const event = await verifyWebhook(await request.text(), request.headers, process.env.WEBHOOK_SECRET!);
 * if (event.type === 'batch.completed') console.log(event.data.request_counts);
 */
export async function verifyWebhook(payload: string | Uint8Array, headers: WebhookHeaders, secret: string, options: VerifyOptions = {}): Promise<WebhookEvent> {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature header');
  const seconds = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || !Number.isSafeInteger(seconds)) throw new WebhookVerificationError('the webhook-timestamp is not a number of seconds');
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_S;
  if (Math.abs(now - seconds) > tolerance) throw new WebhookVerificationError(`the webhook-timestamp is more than ${tolerance} s from now`);
  const keyBytes = base64Bytes(secret.replace(/^whsec_/, ''));
  if (!keyBytes || keyBytes.length === 0) throw new WebhookVerificationError('the secret is not a whsec_ secret (base64 after "whsec_")');
  const body = typeof payload === 'string' ? payload : new TextDecoder().decode(payload);
  const key = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const signed = new TextEncoder().encode(`${id}.${timestamp}.${body}`);
  for (const candidate of signatures.split(' ')) {
    const [version, value] = candidate.split(',');
    const bytes = version === 'v1' && value ? base64Bytes(value) : undefined;
    if (bytes && (await crypto.subtle.verify('HMAC', key, bytes, signed))) {
      try {
        return JSON.parse(body) as WebhookEvent;
      } catch {
        throw new WebhookVerificationError('the signed body is not JSON');
      }
    }
  }
  throw new WebhookVerificationError('no signature matches');
}

/** `client.webhooks`. */
export class Webhooks {
  /**
   * @example
   * const event = await client.webhooks.verify(rawBody, req.headers, 'whsec_…');
   */
  verify(payload: string | Uint8Array, headers: WebhookHeaders, secret: string, options?: VerifyOptions): Promise<WebhookEvent> {
    return verifyWebhook(payload, headers, secret, options);
  }
}
