/**
 * When to retry and how long to wait: exponential backoff with jitter, unless the server
 * said how long (`retry-after-ms`, or `retry-after` in seconds or as an HTTP date).
 */

/** The first wait; each retry doubles it, up to MAX_BACKOFF_MS. */
const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;
/** A backoff is shortened by up to this fraction at random, so clients spread out. */
const JITTER = 0.25;
/** A server's Retry-After longer than this is not waited for; the backoff applies instead. */
const MAX_RETRY_AFTER_MS = 60_000;

/** 408 timeout, 409 conflict, 429 rate limit and every 5xx may succeed when tried again. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * How long the server asked to wait, from `retry-after-ms` (milliseconds) or `retry-after`
 * (seconds, or an HTTP date); undefined when it did not say, or said nonsense.
 *
 * @example
 * retryAfterMs(new Headers({ 'retry-after': '2' })); // 2000
 */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number(headers.get('retry-after-ms')?.trim() || Number.NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The wait before retry number `retry` (0 for the first): what the server asked for when it
 * asked for at most a minute, otherwise 0.5 s · 2^retry (at most 8 s) less up to 25 % jitter.
 *
 * @example
 * retryDelayMs(1, undefined, () => 0); // 1000
 */
export function retryDelayMs(retry: number, headers: Headers | undefined, random: () => number = Math.random, now = Date.now()): number {
  const asked = headers === undefined ? undefined : retryAfterMs(headers, now);
  if (asked !== undefined && asked <= MAX_RETRY_AFTER_MS) return asked;
  return Math.min(INITIAL_BACKOFF_MS * 2 ** retry, MAX_BACKOFF_MS) * (1 - JITTER * random());
}

/** Waits `ms`; rejects with the signal's reason if it is aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
