/**
 * The queue (queue.ts's contract) on Amazon SQS, for AWS: a standard queue whose redrive
 * policy (infra/resources.yml, maxReceiveCount) dead-letters a message received that many
 * times; JOB_MAX_ATTEMPTS should equal it. Differences from the SQLite queue, which the
 * worker is written for: a send waits at most 15 minutes (the worker re-sends for longer),
 * `dedupeId` is not honoured (standard queues have no deduplication; handling stays
 * idempotent), and a lease that ran out is noticed only as a failed ack. Lambda's SQS event
 * source receives and deletes messages itself; see handlers/lambda-worker.ts.
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  SQSServiceException,
  type SQSClientConfig,
} from '@aws-sdk/client-sqs';
import type { Queue, QueueMessage, SendOptions } from './queue.ts';

/** SQS's longest DelaySeconds, and its longest visibility timeout. */
const MAX_DELAY_S = 900;
const MAX_VISIBILITY_S = 43_200;

export interface SqsQueueOptions {
  /** The lease of received messages; the queue's own setting when left out. */
  readonly visibilityTimeoutMs?: number;
  /** Long polling: how long a receive waits for a message (0-20 s). */
  readonly waitSeconds?: number;
}

/**
 * @example
 * const queue = new SqsQueue(createSqsClient({ region: 'us-east-1' }), process.env.BATCH_QUEUE_URL);
 */
export class SqsQueue implements Queue {
  readonly maxDelayMs = MAX_DELAY_S * 1000;

  constructor(
    private readonly client: SQSClient,
    readonly queueUrl: string,
    private readonly options: SqsQueueOptions = {},
  ) {}

  async send(body: string, options: SendOptions = {}): Promise<void> {
    const delay = Math.min(MAX_DELAY_S, Math.ceil(Math.max(0, options.delayMs ?? 0) / 1000));
    await this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: body, ...(delay > 0 ? { DelaySeconds: delay } : {}) }));
  }

  async receive(max: number): Promise<QueueMessage[]> {
    const { visibilityTimeoutMs, waitSeconds } = this.options;
    const res = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
        WaitTimeSeconds: waitSeconds ?? 10,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        ...(visibilityTimeoutMs === undefined ? {} : { VisibilityTimeout: seconds(visibilityTimeoutMs) }),
      }),
    );
    return (res.Messages ?? []).flatMap((m) =>
      m.MessageId === undefined || m.ReceiptHandle === undefined
        ? []
        : [{ id: m.MessageId, body: m.Body ?? '', attempts: Number(m.Attributes?.ApproximateReceiveCount ?? 1), receipt: m.ReceiptHandle }],
    );
  }

  async ack(receipt: string): Promise<boolean> {
    try {
      await this.client.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receipt }));
      return true;
    } catch (e) {
      if (e instanceof SQSServiceException && e.name === 'ReceiptHandleIsInvalid') return false;
      throw e;
    }
  }

  async retry(receipt: string, delayMs: number): Promise<void> {
    await this.#visibility(receipt, delayMs);
  }

  async extend(receipt: string, ms: number): Promise<void> {
    await this.#visibility(receipt, ms);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** The receipt's message becomes visible again in `ms` (the Lambda handler uses this for retries). */
  async #visibility(receipt: string, ms: number): Promise<void> {
    await this.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receipt, VisibilityTimeout: seconds(ms) }));
  }
}

function seconds(ms: number): number {
  return Math.min(MAX_VISIBILITY_S, Math.max(0, Math.ceil(ms / 1000)));
}

/**
 * The SQS client of the service; `endpoint` points it at an SQS-compatible server (tests).
 *
 * @example
 * const sqs = createSqsClient({ region: 'us-east-1' });
 */
export function createSqsClient(settings: { readonly region: string; readonly endpoint?: string }, credentials?: SQSClientConfig['credentials']): SQSClient {
  return new SQSClient({
    region: settings.region,
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    ...(credentials === undefined ? {} : { credentials }),
  });
}
