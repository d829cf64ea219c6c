/**
 * `client.batches` and `client.webhooks.verify` against the real server on loopback with
 * the embedded job stack, and a webhook receiver whose deliveries the SDK verifies.
 */
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankImage } from '../../functions/core/image.ts';
import { encodePng } from '../../functions/tokenizers/png.ts';
import { eventually, loadModel, serveApi, type ApiUnderTest, type ModelUnderTest } from '../../test/support/api.ts';
import { startJobs, startReceiver, type JobsUnderTest, type Receiver } from '../../test/support/jobs.ts';
import { ConflictError, NotFoundError, SparseLavida, UnprocessableEntityError, verifyWebhook, WebhookVerificationError, type WebhookEvent } from '../src/index.ts';

let model: ModelUnderTest;
let jobs: JobsUnderTest;
let api: ApiUnderTest;
let receiver: Receiver;
let client: SparseLavida;

beforeAll(async () => {
  model = await loadModel();
  jobs = startJobs(model);
  api = await serveApi(model, { batches: jobs.batches });
  receiver = await startReceiver();
  client = new SparseLavida({ baseURL: api.url, maxRetries: 0 });
});

afterAll(async () => {
  await receiver.close();
  await api.close();
  await jobs.close();
  await model.engine.close();
});

const png = Buffer.from(encodePng(blankImage(64, 64, [220, 40, 40]))).toString('base64');
const item = { image: png, instruction: 'make the red circle blue' };

describe('client.batches', () => {
  it('creates a batch, waits for it, and reads each item\'s result', async () => {
    const created = await client.batches.create({ items: [item, { ...item, instruction: 'make the dragon blue' }], steps: 2, webhook: { url: receiver.url } });
    expect(created.status).toBe('queued');
    expect(created.webhook?.secret).toMatch(/^whsec_/);
    const done = await client.batches.wait(created.id, { pollIntervalMs: 50, timeoutMs: 60_000 });
    expect(done.status).toBe('completed');
    expect(done.items.map((i) => [i.status, i.error?.code ?? null])).toEqual([
      ['completed', null],
      ['failed', 'unknown_word'],
    ]);
    expect(done.items[0]?.result?.uri).toMatch(new RegExp(`${created.id}/0\\.png$`));
    expect(await client.batches.get(created.id)).toEqual(done);
  });

  it('makes one batch of a create retried with the same idempotency key', async () => {
    const a = await client.batches.create({ items: [item], steps: 2 }, { idempotencyKey: 'sdk-test-1' });
    const b = await client.batches.create({ items: [item], steps: 2 }, { idempotencyKey: 'sdk-test-1' });
    expect(b.id).toBe(a.id);
    await expect(client.batches.create({ items: [item], steps: 3 }, { idempotencyKey: 'sdk-test-1' })).rejects.toBeInstanceOf(ConflictError);
  });

  it('cancels a batch, and answers typed errors for an unknown batch, a finished one and a bad request', async () => {
    await jobs.loop.stop(10_000);
    const created = await client.batches.create({ items: [item, item], steps: 2 });
    expect((await client.batches.cancel(created.id)).status).toBe('cancelled');
    jobs.loop.start();
    await expect(client.batches.get('batch_nope')).rejects.toBeInstanceOf(NotFoundError);
    const finished = await client.batches.create({ items: [item], steps: 2 });
    await client.batches.wait(finished.id, { pollIntervalMs: 50 });
    await expect(client.batches.cancel(finished.id)).rejects.toSatisfy((e) => e instanceof ConflictError && e.code === 'batch_finished');
    await expect(client.batches.create({ items: [item], steps: 10_000 })).rejects.toSatisfy((e) => e instanceof UnprocessableEntityError && e.param === 'steps');
  });

  it('gives up waiting after timeoutMs', async () => {
    await jobs.loop.stop(10_000);
    try {
      const created = await client.batches.create({ items: [item], steps: 2 });
      await expect(client.batches.wait(created.id, { pollIntervalMs: 20, timeoutMs: 100 })).rejects.toThrow(/still queued after 100 ms/);
    } finally {
      jobs.loop.start();
    }
  });
});

describe('client.webhooks.verify', () => {
  it('verifies the webhooks the service sends, and refuses a changed body, another secret and an old timestamp', async () => {
    const created = await client.batches.create({ items: [item], steps: 2, webhook: { url: receiver.url, events: ['batch.completed'] } });
    const secret = created.webhook!.secret;
    await eventually(() => receiver.deliveries.some((d) => d.body.includes(created.id)), 30_000);
    const delivery = receiver.deliveries.find((d) => d.body.includes(created.id))!;
    const event: WebhookEvent = await client.webhooks.verify(delivery.body, delivery.headers, secret);
    expect(event.type).toBe('batch.completed');
    if (event.type === 'batch.completed') expect(event.data).toMatchObject({ batch_id: created.id, status: 'completed', request_counts: { completed: 1 } });
    // Headers as a fetch Headers object, and the body as bytes, verify too.
    expect(await verifyWebhook(new TextEncoder().encode(delivery.body), new Headers(delivery.headers), secret)).toEqual(event);

    await expect(client.webhooks.verify(delivery.body.replace('completed', 'failed'), delivery.headers, secret)).rejects.toThrow(WebhookVerificationError);
    await expect(client.webhooks.verify(delivery.body, delivery.headers, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).rejects.toThrow(/no signature matches/);
    await expect(client.webhooks.verify(delivery.body, delivery.headers, secret, { now: Date.now() + 6 * 60_000 })).rejects.toThrow(/more than 300 s from now/);
    await expect(client.webhooks.verify(delivery.body, { 'webhook-id': delivery.id }, secret)).rejects.toThrow(/missing/);
  });

  it('accepts what the Standard Webhooks reference implementation signs, among several signatures', async () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = JSON.stringify({ type: 'batch.failed', timestamp: new Date().toISOString(), data: { batch_id: 'batch_x' } });
    const now = new Date();
    const signed = new Webhook(secret).sign('msg_1', now, body);
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': `v1,bm90IHRoaXMgb25l ${signed}` };
    expect((await verifyWebhook(body, headers, secret)).type).toBe('batch.failed');
  });
});
