/**
 * `client.batches`: batch edits run in the background (POST /v1/batches, GET
 * /v1/batches/{id}, POST /v1/batches/{id}/cancel), and `wait`, which polls a batch until it
 * is finished. `create` carries an Idempotency-Key (the same on its retries; pass
 * `{ idempotencyKey }` to keep it across calls), so a retried create never makes two batches.
 */
import type { RequestOptions } from './client.ts';
import { SparseLavidaError } from './errors.ts';
import { APIResource } from './resource.ts';
import { sleep } from './retries.ts';
import type { Batch, BatchCreateParams, BatchCreateResponse } from './types.ts';

export interface BatchWaitOptions {
  /** Between two looks at the batch; default 1 s. */
  pollIntervalMs?: number | undefined;
  /** Give up (with a SparseLavidaError) after this long; default: never. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

const FINISHED: readonly Batch['status'][] = ['completed', 'failed', 'cancelled'];

export class Batches extends APIResource {
  /**
   * A batch of edits; the response carries the webhook's signing secret (once).
   *
   * @example
   * const batch = await client.batches.create({
   *   items: [{ image: 'https://example.com/in.png', instruction: 'make the red circle blue' }],
   *   webhook: { url: 'https://example.com/hooks/sparse-lavida' },
   * });
   * saveSecret(batch.webhook?.secret);
   */
  create(params: BatchCreateParams, options?: RequestOptions): Promise<BatchCreateResponse> {
    return this.client.post<BatchCreateResponse>('/v1/batches', params, options);
  }

  /** The batch, with each item's status, error and result location; NotFoundError for an unknown id. */
  get(id: string, options?: RequestOptions): Promise<Batch> {
    return this.client.get<Batch>(`/v1/batches/${encodeURIComponent(id)}`, options);
  }

  /** Cancels the items not started yet; ConflictError for a batch that has finished. */
  cancel(id: string, options?: RequestOptions): Promise<Batch> {
    return this.client.post<Batch>(`/v1/batches/${encodeURIComponent(id)}/cancel`, undefined, options);
  }

  /**
   * Polls the batch until it is `completed`, `failed` or `cancelled`, and returns it.
   *
   * @example
   * const done = await client.batches.wait(batch.id, { pollIntervalMs: 500, timeoutMs: 600_000 });
   * for (const item of done.items) console.log(item.index, item.status, item.result?.uri ?? item.error?.message);
   */
  async wait(id: string, options: BatchWaitOptions = {}): Promise<Batch> {
    const interval = options.pollIntervalMs ?? 1_000;
    const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
    for (;;) {
      const batch = await this.get(id, { signal: options.signal });
      if (FINISHED.includes(batch.status)) return batch;
      if (Date.now() + interval > deadline) throw new SparseLavidaError(`the batch ${id} is still ${batch.status} after ${options.timeoutMs} ms`);
      await sleep(interval, options.signal);
    }
  }
}
