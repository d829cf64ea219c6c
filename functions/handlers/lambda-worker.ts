/**
 * The SQS-triggered batch worker on AWS Lambda (serverless.yml, `functionResponseType:
 * ReportBatchItemFailures`): each message edits one item or delivers one webhook attempt
 * (functions/jobs/worker.ts); failures are reported per message, so SQS retries only those
 * and dead-letters a message after maxReceiveCount receives. The model loads during the
 * function's init phase; a configuration that cannot start fails init with its reason.
 */
import { sqsHandler } from '../jobs/sqs-handler.ts';
import { isStartupError, startRuntime } from './runtime.ts';

const runtime = await startRuntime(process.env, { log: (line) => console.log(line), noWorkerLoop: true }).catch((e: unknown) => {
  if (isStartupError(e)) console.error(`sparse-lavida worker: ${e.message}`);
  throw e;
});

export const handler = sqsHandler(runtime.jobs.worker, runtime.jobs.queue, (line) => console.log(line));
