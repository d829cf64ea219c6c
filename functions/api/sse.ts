/**
 * Server-Sent Events on top of hono's `streamSSE`: every event gets an `id:` (0, 1, 2, …),
 * a stream that has been quiet for `pingMs` gets a `: ping` comment, a failure after the
 * stream started becomes one `error` event carrying the usual error object, and a client
 * that goes away aborts the run (the sampler stops between steps).
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { toApiError } from './errors.ts';
import { ClientGoneError, type Run } from './runs.ts';

/** Sends one event; `data` is JSON-encoded unless it is a string (such as `[DONE]`). */
export type SendEvent = (event: string | undefined, data: unknown) => Promise<void>;

export interface SseOptions {
  readonly pingMs: number;
  /** Where failures the client cannot act on (500s) are reported. */
  readonly log: (line: string) => void;
}

/**
 * @example
 * return sseResponse(c, run, { pingMs: 15_000, log }, async (send) => {
 *   await send('image_generation.completed', { type: 'image_generation.completed', … });
 * });
 */
export function sseResponse(c: Context, run: Run<unknown>, options: SseOptions, body: (send: SendEvent) => Promise<void>): Response {
  return streamSSE(c, async (stream) => {
    stream.onAbort(() => run.abort(new ClientGoneError('the client closed the stream')));
    let nextId = 0;
    let open = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const quiet = () => {
      clearTimeout(timer);
      if (open) timer = setTimeout(() => void stream.write(': ping\n\n').then(quiet), options.pingMs);
    };
    const send: SendEvent = async (event, data) => {
      const text = typeof data === 'string' ? data : JSON.stringify(data);
      await stream.writeSSE({ ...(event === undefined ? {} : { event }), data: text, id: String(nextId++) });
      quiet();
    };
    quiet();
    try {
      await body(send);
    } catch (e) {
      if (e instanceof ClientGoneError) return;
      const error = toApiError(e);
      if (error.status === 500) options.log(`stream ${c.req.method} ${c.req.path} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      await send('error', { type: 'error', error: error.body().error });
    } finally {
      open = false;
      clearTimeout(timer);
    }
  });
}
