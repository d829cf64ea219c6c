/**
 * The API on AWS Lambda behind a function URL with `invokeMode: RESPONSE_STREAM`, so SSE
 * previews stream. The model loads during the function's init phase; a configuration that
 * cannot start fails init with its one-line reason in the logs. Batches are queued on SQS
 * (BATCH_QUEUE_URL) for the worker function; this one runs no worker.
 */
import { streamHandle } from 'hono/aws-lambda';
import { isStartupError, startRuntime } from './runtime.ts';

const runtime = await startRuntime(process.env, { log: (line) => console.log(line), requireApiKeys: true, noWorkerLoop: true }).catch((e: unknown) => {
  if (isStartupError(e)) console.error(`sparse-lavida: ${e.message}`);
  throw e;
});

export const handler = streamHandle(runtime.app);
