/**
 * Inbound webhooks (`POST /v1/hooks/{source}`) that create batches. Each source
 * (HOOK_SOURCES) has a `whsec_` secret; a request is verified as a Standard Webhook by the
 * reference implementation (the `standardwebhooks` package: HMAC-SHA256 compared in constant
 * time, a timestamp at most 5 minutes off); its webhook-id may create one batch only, so a
 * replay creates nothing (the job store remembers the ids).
 *
 * A source with `s3` rules takes S3 event notifications: each new object under INPUT_URI
 * whose key matches a rule becomes an item edited with that rule's instruction.
 */
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { HookSource, S3Rule } from '../core/config.ts';
import type { StorageUri } from '../core/storage-uri.ts';
import type { ItemSpec } from './batch.ts';

/** The request is not a valid webhook from the source (unknown source, bad signature, stale timestamp). */
export class HookRejectedError extends Error {
  override readonly name = 'HookRejectedError';
}

export interface VerifiedHook {
  readonly webhookId: string;
  /** The body, as text: verified, not yet parsed. */
  readonly body: string;
}

/**
 * Verifies a request from `source` (its raw body and headers).
 *
 * @example
 * const { webhookId, body } = verifyHook(sources, 'cms', await c.req.text(), c.req.header());
 */
export function verifyHook(sources: Readonly<Record<string, HookSource>>, source: string, body: string, headers: Record<string, string | undefined>): VerifiedHook {
  const config = Object.hasOwn(sources, source) ? sources[source] : undefined;
  if (!config) throw new HookRejectedError(`no webhook source "${source}" is configured (HOOK_SOURCES)`);
  const named = Object.fromEntries(Object.entries(headers).flatMap(([k, v]) => (v === undefined ? [] : [[k.toLowerCase(), v]])));
  try {
    new Webhook(config.secret).verify(body, named, { jsonParse: false });
  } catch (e) {
    if (e instanceof WebhookVerificationError) throw new HookRejectedError(`the webhook does not verify: ${e.message.toLowerCase()}`);
    throw e;
  }
  return { webhookId: named['webhook-id'] as string, body };
}

/** The parts of an S3 event notification record that are used (the payload is documented in api/schemas.ts). */
export interface S3EventRecord {
  readonly eventName: string;
  readonly s3: { readonly bucket: { readonly name: string }; readonly object: { readonly key: string } };
}

export interface S3Items {
  readonly items: ItemSpec[];
  /** Records that are not new objects, are in another bucket or folder, or match no rule. */
  readonly ignored: number;
}

/**
 * The items of an S3 event notification: each `ObjectCreated:*` record in INPUT_URI's bucket,
 * under its prefix, whose key (relative to the prefix, URL-decoded as S3 sends it) matches a
 * rule becomes `{ image: { key }, instruction }` with the first matching rule's instruction.
 *
 * @example
 * s3EventItems(records, { scheme: 's3', bucket: 'b', key: 'inbox/' }, [{ prefix: 'recolor/', suffix: '.png', instruction: 'make the red circle blue' }]);
 */
export function s3EventItems(records: readonly S3EventRecord[], input: StorageUri, rules: readonly S3Rule[]): S3Items {
  const prefix = input.scheme === 's3' ? input.key : '';
  const items: ItemSpec[] = [];
  for (const record of records) {
    if (!record.eventName.startsWith('ObjectCreated:')) continue;
    if (input.scheme === 's3' && record.s3.bucket.name !== input.bucket) continue;
    const objectKey = decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '));
    if (!objectKey.startsWith(prefix)) continue;
    const key = objectKey.slice(prefix.length);
    const rule = rules.find((r) => key.startsWith(r.prefix) && key.endsWith(r.suffix));
    if (rule) items.push({ image: { key }, instruction: rule.instruction });
  }
  return { items, ignored: records.length - items.length };
}
