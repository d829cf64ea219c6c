/**
 * The AWS side of batch edits, tested without AWS: the SQS queue and the Lambda handler of
 * the SQS-triggered worker, run against an SQS-protocol stand-in on loopback
 * (support/fake-sqs.ts) with the real AWS SDK client, the job store as objects (what S3
 * holds on AWS, here in a folder), and the real engine. What SQS itself does beyond the
 * stand-in (its redrive to the real dead-letter queue, Lambda's event source mapping and its
 * deletes) is not covered here.
 */
import { Webhook } from 'standardwebhooks';
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankImage } from '../functions/core/image.ts';
import { BatchService } from '../functions/jobs/batches.ts';
import { ObjectJobStore } from '../functions/jobs/object-job-store.ts';
import { sqsHandler } from '../functions/jobs/sqs-handler.ts';
import { createSqsClient, SqsQueue } from '../functions/jobs/sqs-queue.ts';
import { BatchWorker, queueDeliveries } from '../functions/jobs/worker.ts';
import { openArtifactStore } from '../functions/storage/artifact-store.ts';
import { createS3Client } from '../functions/storage/s3-client.ts';
import { encodePng } from '../functions/tokenizers/png.ts';
import { loadModel, type ModelUnderTest } from './support/api.ts';
import { FAKE_AWS_CREDENTIALS, startFakeSqs, type FakeSqs } from './support/fake-sqs.ts';
import { startReceiver, type Receiver } from './support/jobs.ts';
import { removeTempDirs, tempDir } from './support/packages.ts';

let model: ModelUnderTest;
let sqs: FakeSqs;
beforeAll(async () => {
  model = await loadModel();
  sqs = await startFakeSqs({ maxReceiveCount: 3 });
});
afterAll(async () => {
  await sqs.close();
  await model.engine.close();
  removeTempDirs();
});

const queue = () => new SqsQueue(createSqsClient({ region: 'us-east-1' }, FAKE_AWS_CREDENTIALS), sqs.queueUrl, { waitSeconds: 0 });

describe('the SQS queue', () => {
  it('sends, receives with the receive count, retries after a delay through the visibility, and deletes on ack', async () => {
    sqs.messages.splice(0);
    const q = queue();
    await q.send('{"n":1}');
    const [m] = await q.receive(10);
    expect(m).toMatchObject({ body: '{"n":1}', attempts: 1 });
    expect(await q.receive(10)).toEqual([]);
    await q.retry(m!.receipt, 2_500);
    expect(sqs.calls.at(-1)).toMatchObject({ action: 'ChangeMessageVisibility', input: { VisibilityTimeout: 3 } });
    sqs.expireAll();
    const [again] = await q.receive(10);
    expect(again).toMatchObject({ id: m!.id, attempts: 2 });
    expect(await q.ack(m!.receipt)).toBe(false);
    expect(await q.ack(again!.receipt)).toBe(true);
    expect(sqs.messages).toEqual([]);
  });

  it('delays a send by at most SQS\'s 15 minutes', async () => {
    const q = queue();
    await q.send('later', { delayMs: 2 * 3_600_000 });
    expect(sqs.calls.at(-1)).toMatchObject({ action: 'SendMessage', input: { DelaySeconds: 900 } });
    expect(q.maxDelayMs).toBe(900_000);
  });

  it('lets the redrive policy dead-letter a message received maxReceiveCount times', async () => {
    sqs.messages.splice(0);
    const q = queue();
    await q.send('poison');
    for (let i = 1; i <= 3; i++) {
      expect((await q.receive(1))[0]?.attempts).toBe(i);
      sqs.expireAll();
    }
    expect(await q.receive(1)).toEqual([]);
    expect(sqs.messages[0]?.dead).toBe(true);
  });
});

describe('the Lambda batch worker (SQS event, ReportBatchItemFailures)', () => {
  let receiver: Receiver;
  let images: Server;
  let imageStatus = 503;
  beforeAll(async () => {
    receiver = await startReceiver();
    images = createServer((_, res) => {
      if (imageStatus === 200) res.writeHead(200, { 'content-type': 'image/png' }).end(encodePng(blankImage(64, 64, [40, 40, 220])));
      else res.writeHead(imageStatus).end();
    });
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await receiver.close();
    images.closeAllConnections();
    images.close();
  });

  /** The worker function as serverless.yml deploys it: jobs as objects, local output and input folders. */
  function lambdaWorker(q: SqsQueue, maxAttempts: number) {
    const s3 = createS3Client({ region: 'us-east-1' });
    const store = new ObjectJobStore(openArtifactStore({ scheme: 'file', path: tempDir('job-objects-') }, s3));
    const outputDir = tempDir('outputs-');
    const logged: string[] = [];
    const worker = new BatchWorker({
      store,
      queue: q,
      pipeline: model.pipeline,
      outputs: openArtifactStore({ scheme: 'file', path: outputDir }, s3),
      images: { inputs: openArtifactStore({ scheme: 'file', path: tempDir('inputs-') }, s3), allowPrivate: true, timeoutMs: 5_000, maxBytes: 1 << 20 },
      maxAttempts,
      webhooks: { allowPrivate: true, retryScheduleMs: [100], timeoutMs: 5_000 },
      log: (line) => logged.push(line),
    });
    return {
      store,
      outputDir,
      logged,
      handler: sqsHandler(worker, q, (line) => logged.push(line)),
      batches: new BatchService({ store, queue: q, maxItems: 100, allowPrivateWebhooks: true }),
      png: encodePng(blankImage(64, 64, [220, 40, 40])).toString('base64'),
    };
  }

  /** What Lambda's event source mapping would hand the function: up to `n` received messages as records. */
  async function sqsEvent(q: SqsQueue, n: number, extra: object[] = []) {
    const messages = await q.receive(n);
    const Records = messages.map((m) => ({
      messageId: m.id,
      receiptHandle: m.receipt,
      body: m.body,
      attributes: { ApproximateReceiveCount: String(m.attempts), SentTimestamp: String(Date.now()) },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:batches',
      awsRegion: 'us-east-1',
    }));
    return { event: { Records: [...Records, ...extra] }, messages };
  }

  it('edits the items of a batch event and reports only the one to retry; the retry then completes the batch', async () => {
    sqs.messages.splice(0);
    const q = queue();
    const { store, logged, handler, batches, png } = lambdaWorker(q, 3);
    const { batch } = await batches.create(
      {
        items: [
          { image: { base64: png }, instruction: 'make the red circle blue' },
          { image: { url: `http://127.0.0.1:${(images.address() as AddressInfo).port}/in.png` }, instruction: 'make the red circle blue' },
          { image: { base64: png }, instruction: 'make the red circle like a dragon' },
        ],
        options: { steps: 2 },
        webhook: { url: receiver.url, events: ['batch.completed'] },
      },
      'api',
    );

    const malformed = { messageId: 'not-a-job', receiptHandle: 'x', body: 'hello', attributes: { ApproximateReceiveCount: '1' } };
    const { event, messages } = await sqsEvent(q, 10, [malformed]);
    expect(messages).toHaveLength(3);
    const response = await handler(event);
    const urlItem = messages.find((m) => m.body.includes('"index":1'))!;
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: urlItem.id }, { itemIdentifier: 'not-a-job' }] });
    // The failed record's retry is delayed through its visibility, not left to the queue's default.
    expect(sqs.calls.some((c) => c.action === 'ChangeMessageVisibility' && c.input.ReceiptHandle === urlItem.receipt && Number(c.input.VisibilityTimeout) >= 1)).toBe(true);
    expect((await store.getBatch(batch.id))?.items.map((i) => [i.status, i.error?.code ?? null])).toEqual([
      ['completed', null],
      ['running', null],
      ['failed', 'unknown_word'],
    ]);
    expect(logged.some((l) => /item 1 attempt 1 failed \(fetching the image answered 503\)/.test(l))).toBe(true);

    // Lambda deleted the successes; here the test does, as the event source mapping would.
    for (const m of messages) if (m !== urlItem) await q.ack(m.receipt);
    imageStatus = 200;
    sqs.expireAll();
    const retry = await sqsEvent(q, 10);
    expect(retry.messages.map((m) => [m.id, m.attempts])).toEqual([[urlItem.id, 2]]);
    expect(await handler(retry.event)).toEqual({ batchItemFailures: [] });
    await q.ack(retry.messages[0]!.receipt);
    expect((await store.getBatch(batch.id))?.status).toBe('completed');

    // The batch.completed event was queued on SQS; its record delivers it.
    const hook = await sqsEvent(q, 10);
    expect(hook.messages.map((m) => JSON.parse(m.body).kind)).toEqual(['webhook']);
    expect(await handler(hook.event)).toEqual({ batchItemFailures: [] });
    const delivery = receiver.deliveries.at(-1)!;
    const secret = (await store.webhookTarget(batch.id))!.endpoint.secret;
    expect(new Webhook(secret).verify(delivery.body, delivery.headers)).toMatchObject({ type: 'batch.completed', data: { batch_id: batch.id, request_counts: { completed: 2, failed: 1 } } });
  });

  it('records the failure of an item whose every attempt was cut short, on the delivery after its last', async () => {
    sqs.messages.splice(0);
    const q = queue();
    // The fake queue dead-letters after 3 receives: queueDeliveries(2).
    expect(queueDeliveries(2)).toBe(3);
    const { store, outputDir: outputs, handler, batches, png } = lambdaWorker(q, 2);
    const { batch } = await batches.create({ items: [{ image: { base64: png }, instruction: 'make the red circle blue' }], options: { steps: 2 } }, 'api');
    for (let attempt = 1; attempt <= 2; attempt++) {
      // The function starts the item, then dies (a timeout): no response, the message comes back.
      const [m] = await q.receive(1);
      expect(m?.attempts).toBe(attempt);
      await store.startItem(batch.id, 0, attempt);
      sqs.expireAll();
    }
    const last = await sqsEvent(q, 10);
    expect(last.messages.map((m) => m.attempts)).toEqual([3]);
    expect(await handler(last.event)).toEqual({ batchItemFailures: [] });
    await q.ack(last.messages[0]!.receipt);
    const record = await store.getBatch(batch.id);
    expect(record?.status).toBe('failed');
    expect(record?.items[0]).toMatchObject({ status: 'failed', error: { code: 'attempts_exhausted' } });
    expect(readdirSync(outputs)).toEqual([]);
    expect(sqs.messages.filter((m) => m.dead)).toEqual([]);
  });

  it('refuses an event that is not an SQS event', async () => {
    const handler = sqsHandler({} as BatchWorker, queue(), () => undefined);
    await expect(handler({ hello: 'world' })).rejects.toThrow();
  });
});
