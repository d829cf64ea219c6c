/**
 * The SQS event of the Lambda batch worker (serverless.yml: `functionResponseType:
 * ReportBatchItemFailures`): each record is handled by the {@link BatchWorker}; a record to
 * retry, or one whose handling threw, is reported in `batchItemFailures`, so SQS keeps it
 * (and, after maxReceiveCount receives, moves it to the dead-letter queue) while the others
 * are deleted. A retry's delay is set on the message's visibility before it is reported.
 */
import { z } from 'zod';
import type { Queue } from './queue.ts';
import type { BatchWorker } from './worker.ts';

const sqsEventSchema = z.object({
  Records: z.array(
    z.object({
      messageId: z.string().min(1),
      receiptHandle: z.string(),
      body: z.string(),
      attributes: z.object({ ApproximateReceiveCount: z.coerce.number().int().min(1) }).partial().optional(),
    }),
  ),
});

export interface SqsBatchResponse {
  readonly batchItemFailures: { readonly itemIdentifier: string }[];
}

/**
 * @example
 * export const handler = sqsHandler(worker, queue, console.log);
 */
export function sqsHandler(worker: BatchWorker, queue: Queue, log: (line: string) => void): (event: unknown) => Promise<SqsBatchResponse> {
  return async (event) => {
    const { Records } = sqsEventSchema.parse(event);
    const failures: { itemIdentifier: string }[] = [];
    for (const record of Records) {
      try {
        const disposition = await worker.handle(record.body, record.attributes?.ApproximateReceiveCount ?? 1);
        if (disposition.ack) continue;
        await queue.retry(record.receiptHandle, disposition.retryInMs).catch((e: unknown) => log(`batch worker: cannot delay message ${record.messageId}: ${String(e)}`));
      } catch (e) {
        log(`batch worker: message ${record.messageId} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
      failures.push({ itemIdentifier: record.messageId });
    }
    return { batchItemFailures: failures };
  };
}
