/**
 * The SQS-triggered batch worker (serverless.yml, `functionResponseType: ReportBatchItemFailures`).
 * Batch edits are issue 7; until they land, every message is reported as failed, so SQS
 * keeps it, retries it and finally moves it to the dead-letter queue: nothing is lost.
 */
import { z } from 'zod';

const sqsEventSchema = z.object({ Records: z.array(z.object({ messageId: z.string().min(1) })) });

export interface WorkerResponse {
  readonly batchItemFailures: { readonly itemIdentifier: string }[];
  readonly message: string;
}

const NOT_IMPLEMENTED = 'the batch worker is not implemented yet (issue 7): every message is returned to the queue for retry';

export async function handler(event: unknown): Promise<WorkerResponse> {
  const { Records } = sqsEventSchema.parse(event);
  console.warn(`sparse-lavida worker: ${NOT_IMPLEMENTED} (${Records.length} messages)`);
  return { batchItemFailures: Records.map((r) => ({ itemIdentifier: r.messageId })), message: NOT_IMPLEMENTED };
}
