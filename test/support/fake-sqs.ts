/**
 * A stand-in for Amazon SQS on loopback, for tests: one standard queue with a redrive policy,
 * speaking the JSON protocol the AWS SDK uses (SendMessage, ReceiveMessage, DeleteMessage,
 * ChangeMessageVisibility), so the real SQS client and SqsQueue run against it. It models
 * what the worker relies on (visibility timeouts, receive counts, DelaySeconds up to 900,
 * dead-lettering after maxReceiveCount receives, invalid receipt handles); it is not SQS.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeMessage {
  readonly id: string;
  readonly body: string;
  receiveCount: number;
  visibleAt: number;
  receipt: string | undefined;
  /** Moved to the dead-letter queue. */
  dead: boolean;
}

export interface FakeSqs {
  readonly endpoint: string;
  readonly queueUrl: string;
  readonly messages: FakeMessage[];
  /** Every call, by action name, with its input. */
  readonly calls: { action: string; input: Record<string, unknown> }[];
  /** Makes every message visible now (as if its timeout passed). */
  expireAll(): void;
  close(): Promise<void>;
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
}

export async function startFakeSqs(options: { maxReceiveCount?: number; visibilityTimeoutS?: number } = {}): Promise<FakeSqs> {
  const maxReceiveCount = options.maxReceiveCount ?? 5;
  const messages: FakeMessage[] = [];
  const calls: FakeSqs['calls'] = [];
  const byReceipt = (receipt: unknown) => messages.find((m) => !m.dead && m.receipt !== undefined && m.receipt === receipt);

  const server = createServer(async (req, res) => {
    const action = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonSQS\./, '');
    const input = await readJson(req);
    calls.push({ action, input });
    const now = Date.now();
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', ...headers }).end(JSON.stringify(body));
    const invalidReceipt = () =>
      reply(400, { __type: 'com.amazonaws.sqs#ReceiptHandleIsInvalid', message: 'The receipt handle is not valid.' }, { 'x-amzn-query-error': 'ReceiptHandleIsInvalid;Sender' });
    switch (action) {
      case 'SendMessage': {
        const body = String(input.MessageBody);
        const delay = Number(input.DelaySeconds ?? 0);
        if (delay > 900) return reply(400, { __type: 'com.amazonaws.sqs#InvalidParameterValue', message: 'DelaySeconds must be at most 900' });
        const id = randomUUID();
        messages.push({ id, body, receiveCount: 0, visibleAt: now + delay * 1000, receipt: undefined, dead: false });
        return reply(200, { MessageId: id, MD5OfMessageBody: md5(body) });
      }
      case 'ReceiveMessage': {
        const max = Number(input.MaxNumberOfMessages ?? 1);
        const visibility = Number(input.VisibilityTimeout ?? options.visibilityTimeoutS ?? 30);
        const out = [];
        for (const m of messages) {
          if (out.length >= max) break;
          if (m.dead || m.visibleAt > now) continue;
          if (m.receiveCount >= maxReceiveCount) {
            m.dead = true;
            continue;
          }
          m.receiveCount++;
          m.receipt = randomUUID();
          m.visibleAt = now + visibility * 1000;
          out.push({ MessageId: m.id, ReceiptHandle: m.receipt, MD5OfBody: md5(m.body), Body: m.body, Attributes: { ApproximateReceiveCount: String(m.receiveCount) } });
        }
        return reply(200, out.length === 0 ? {} : { Messages: out });
      }
      case 'DeleteMessage': {
        const m = byReceipt(input.ReceiptHandle);
        if (!m) return invalidReceipt();
        messages.splice(messages.indexOf(m), 1);
        return reply(200, {});
      }
      case 'ChangeMessageVisibility': {
        const m = byReceipt(input.ReceiptHandle);
        if (!m) return invalidReceipt();
        m.visibleAt = now + Number(input.VisibilityTimeout) * 1000;
        return reply(200, {});
      }
      default:
        return reply(400, { __type: 'com.amazonaws.sqs#UnsupportedOperation', message: `${action} is not supported by the stand-in` });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    queueUrl: `${endpoint}/000000000000/batches`,
    messages,
    calls,
    expireAll() {
      for (const m of messages) m.visibleAt = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Dummy credentials: the client signs its requests; the stand-in does not check them. */
export const FAKE_AWS_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;
