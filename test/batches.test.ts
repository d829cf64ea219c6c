/**
 * Batch edits end to end in one process: the API on loopback over the real engine and the
 * shipped model, the embedded job stack (SQLite, the worker loop), local input and output
 * folders, and a webhook receiver on loopback that verifies every delivery with the
 * Standard Webhooks reference package.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { blankImage } from '../functions/core/image.ts';
import type { HookSource } from '../functions/core/config.ts';
import { decodePng, encodePng } from '../functions/tokenizers/png.ts';
import { eventually, loadModel, serveApi, type ApiUnderTest, type ModelUnderTest } from './support/api.ts';
import { startJobs, startReceiver, type Delivery, type JobsOptions, type JobsUnderTest, type Receiver } from './support/jobs.ts';

let model: ModelUnderTest;
beforeAll(async () => {
  model = await loadModel();
});
afterAll(() => model.engine.close());

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const HOOK_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const PNG = encodePng(blankImage(64, 64, [220, 40, 40])).toString('base64');
const NOT_A_PNG = Buffer.from('not a png').toString('base64');

interface Setup {
  readonly jobs: JobsUnderTest;
  readonly api: ApiUnderTest;
  readonly receiver: Receiver;
}

async function setup(options: JobsOptions & { apiKeys?: string[]; hookSources?: Record<string, HookSource> } = {}): Promise<Setup> {
  const jobs = startJobs(model, options);
  open.push(jobs);
  const api = await serveApi(model, {
    batches: jobs.batches,
    apiKeys: options.apiKeys ?? [],
    hookSources: options.hookSources ?? {},
    inputUri: { scheme: 'file', path: jobs.inputDir },
    bodyLimitBytes: 4 * 1024 * 1024,
  });
  open.push(api);
  const receiver = await startReceiver();
  open.push(receiver);
  return { jobs, api, receiver };
}

type Json = Record<string, any>;

async function call(api: ApiUnderTest, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

async function finished(api: ApiUnderTest, id: string, ms = 60_000): Promise<Json> {
  const until = Date.now() + ms;
  for (;;) {
    const { json } = await call(api, 'GET', `/v1/batches/${id}`);
    if (['completed', 'failed', 'cancelled'].includes(json.status)) return json;
    if (Date.now() > until) throw new Error(`batch ${id} still ${json.status}: ${JSON.stringify(json.request_counts)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every message handled: nothing ready or leased. */
async function drained(jobs: JobsUnderTest): Promise<void> {
  await eventually(() => {
    const c = jobs.queue.counts();
    return c.ready + c.leased === 0;
  }, 20_000);
}

function verified(secret: string, d: Delivery): Json {
  return new Webhook(secret).verify(d.body, d.headers) as Json;
}

const batchCount = (jobs: JobsUnderTest) => (jobs.db.prepare('SELECT COUNT(*) AS n FROM batches').get() as { n: number }).n;

describe('POST /v1/batches', () => {
  it('edits every item in the background, stores each result once, and sends signed webhooks that standardwebhooks verifies', async () => {
    const { jobs, api, receiver } = await setup();
    const created = await call(api, 'POST', '/v1/batches', {
      items: [
        { image: PNG, instruction: 'make the red circle blue' },
        { image: `data:image/png;base64,${PNG}`, instruction: 'remove the red circle' },
      ],
      webhook: { url: receiver.url },
      steps: 4,
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ object: 'batch', status: 'queued', source: 'api', request_counts: { total: 2, queued: 2 } });
    const secret: string = created.json.webhook.secret;
    expect(secret).toMatch(/^whsec_/);
    expect(created.json.webhook).toMatchObject({ url: receiver.url, events: ['batch.item.completed', 'batch.completed', 'batch.failed'], status: 'enabled' });

    const batch = await finished(api, created.json.id);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 2, completed: 2, failed: 0 } });
    expect(batch.webhook).not.toHaveProperty('secret');
    for (const item of batch.items) {
      expect(item.result.key).toBe(`${batch.id}/${item.index}.png`);
      expect(decodePng(readFileSync(new URL(item.result.uri).pathname))).toMatchObject({ width: 64, height: 64 });
    }
    expect(readdirSync(join(jobs.outputDir, batch.id)).sort()).toEqual(['0.png', '1.png']);

    await drained(jobs);
    const events = receiver.deliveries.map((d) => verified(secret, d));
    expect(events.map((e) => e.type).sort()).toEqual(['batch.completed', 'batch.item.completed', 'batch.item.completed']);
    expect(new Set(receiver.deliveries.map((d) => d.id)).size).toBe(3);
    const last = events.find((e) => e.type === 'batch.completed');
    expect(last?.data).toMatchObject({ batch_id: batch.id, status: 'completed', request_counts: { completed: 2 }, items: batch.items });
    const item = events.find((e) => e.type === 'batch.item.completed');
    expect(batch.items).toContainEqual(item?.data.item);
  });

  it('sends only the events the webhook asks for, signed with the client\'s own secret', async () => {
    const { jobs, api, receiver } = await setup();
    const created = await call(api, 'POST', '/v1/batches', {
      items: [{ image: PNG, instruction: 'make the red circle blue' }],
      webhook: { url: receiver.url, events: ['batch.completed'], secret: HOOK_SECRET },
      steps: 2,
    });
    expect(created.json.webhook.secret).toBe(HOOK_SECRET);
    await finished(api, created.json.id);
    await drained(jobs);
    expect(receiver.deliveries.map((d) => verified(HOOK_SECRET, d).type)).toEqual(['batch.completed']);
  });

  it('completes a 100-item batch in which unreadable images and instructions outside the grammar fail one by one', async () => {
    const { jobs, api } = await setup();
    const items = Array.from({ length: 100 }, (_, i) => ({
      image: i % 10 === 3 ? NOT_A_PNG : PNG,
      instruction: i % 10 === 7 ? 'paint the circle like a dragon' : 'make the red circle blue',
    }));
    const created = await call(api, 'POST', '/v1/batches', { items, steps: 2 });
    expect(created.status).toBe(201);
    const batch = await finished(api, created.json.id, 120_000);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 100, completed: 80, failed: 20, queued: 0, running: 0 } });
    for (const item of batch.items) {
      if (item.index % 10 === 3) expect(item.error).toEqual({ code: 'invalid_image', message: 'the image is not a PNG (its first bytes are not the PNG signature)' });
      else if (item.index % 10 === 7) expect(item.error).toEqual({ code: 'unknown_word', message: expect.stringMatching(/^unknown word "paint" at position 1/) });
      else expect(item).toMatchObject({ status: 'completed', error: null, attempts: 1 });
    }
    expect(readdirSync(join(jobs.outputDir, batch.id))).toHaveLength(80);
  }, 150_000);

  it('answers a retry with the same Idempotency-Key with the same batch, and refuses the key with another request', async () => {
    const { jobs, api, receiver } = await setup();
    const body = { items: [{ image: PNG, instruction: 'make the red circle blue' }], webhook: { url: receiver.url }, steps: 2 };
    const first = await call(api, 'POST', '/v1/batches', body, { 'idempotency-key': 'order-17' });
    const again = await call(api, 'POST', '/v1/batches', body, { 'idempotency-key': 'order-17' });
    expect([first.status, again.status]).toEqual([201, 200]);
    expect(again.json.id).toBe(first.json.id);
    expect(again.json.webhook.secret).toBe(first.json.webhook.secret);
    const other = await call(api, 'POST', '/v1/batches', { ...body, steps: 3 }, { 'idempotency-key': 'order-17' });
    expect(other).toMatchObject({ status: 409, json: { error: { type: 'conflict_error', code: 'idempotency_key_reused' } } });
    expect(batchCount(jobs)).toBe(1);
    await finished(api, first.json.id);
    await drained(jobs);
    expect(receiver.deliveries.filter((d) => verified(first.json.webhook.secret, d).type === 'batch.completed')).toHaveLength(1);
  });

  it('refuses a request it cannot take before creating anything, naming the field', async () => {
    const { jobs, api } = await setup({ allowPrivate: false });
    const item = { image: PNG, instruction: 'make the red circle blue' };
    const cases: [unknown, string, string][] = [
      [{ items: [] }, 'invalid_value', 'items'],
      [{ items: [item], steps: 100_000 }, 'invalid_value', 'steps'],
      [{ items: [item], webhook: { url: 'http://10.0.0.7/hook' } }, 'webhook_url_not_allowed', 'webhook.url'],
      [{ items: [item], webhook: { url: 'https://example.com/h', secret: 'whsec_short' } }, 'invalid_value', 'webhook.secret'],
      [{ items: [item], webhook: { url: 'https://example.com/h', events: ['batch.exploded'] } }, 'invalid_value', 'webhook.events[0]'],
      [{ items: [{ image: { key: '../etc/passwd' }, instruction: 'x' }] }, 'invalid_value', 'items[0].image.key'],
      [{ items: [{ ...item, colour: 'red' }] }, 'unknown_parameter', 'items[0].colour'],
    ];
    for (const [body, code, param] of cases) {
      const res = await call(api, 'POST', '/v1/batches', body);
      expect({ status: res.status, code: res.json.error.code, param: res.json.error.param }, JSON.stringify(body)).toEqual({ status: 422, code, param });
    }
    expect(batchCount(jobs)).toBe(0);
  });

  it('reads items given by key from the input store, and fails one whose key holds nothing', async () => {
    const { jobs, api } = await setup();
    mkdirSync(join(jobs.inputDir, 'inbox'), { recursive: true });
    writeFileSync(join(jobs.inputDir, 'inbox', 'my photo.png'), Buffer.from(PNG, 'base64'));
    const created = await call(api, 'POST', '/v1/batches', {
      items: [
        { image: { key: 'inbox/my photo.png' }, instruction: 'make the red circle blue' },
        { image: { key: 'inbox/missing.png' }, instruction: 'make the red circle blue' },
      ],
      steps: 2,
    });
    const batch = await finished(api, created.json.id);
    expect(batch.items.map((i: Json) => [i.status, i.error?.code ?? null])).toEqual([
      ['completed', null],
      ['failed', 'image_not_found'],
    ]);
  });
});

describe('a worker that dies during every attempt', () => {
  it('records the item as failed on the delivery after its last attempt, instead of leaving it running', async () => {
    const { jobs, api } = await setup({ maxAttempts: 2, visibilityTimeoutMs: 50 });
    await jobs.loop.stop(10_000);
    const created = await call(api, 'POST', '/v1/batches', { items: [{ image: PNG, instruction: 'make the red circle blue' }], steps: 2 });
    for (let attempt = 1; attempt <= 2; attempt++) {
      // What a worker does before it edits; then it is killed and its lease runs out.
      const [m] = await jobs.queue.receive(1);
      expect(m?.attempts).toBe(attempt);
      await jobs.store.startItem(created.json.id, 0, attempt);
      expect((await call(api, 'GET', `/v1/batches/${created.json.id}`)).json.items[0].status).toBe('running');
      await new Promise((r) => setTimeout(r, 80));
    }
    jobs.loop.start();
    const batch = await finished(api, created.json.id);
    expect(batch.status).toBe('failed');
    expect(batch.items[0]).toMatchObject({ status: 'failed', error: { code: 'attempts_exhausted', message: expect.stringMatching(/2 attempts.*stopped before it finished/) } });
    await drained(jobs);
    expect(jobs.queue.counts().dead).toBe(0);
    expect(existsSync(jobs.outputDir)).toBe(false);
  });
});

describe('GET /v1/batches/{id} and POST /v1/batches/{id}/cancel', () => {
  it('cancels the items not yet started, answers a second cancel the same, and refuses to cancel a finished batch', async () => {
    const { jobs, api } = await setup();
    await jobs.loop.stop(10_000);
    const created = await call(api, 'POST', '/v1/batches', { items: Array.from({ length: 3 }, () => ({ image: PNG, instruction: 'make the red circle blue' })), steps: 2 });
    const cancelled = await call(api, 'POST', `/v1/batches/${created.json.id}/cancel`);
    expect(cancelled).toMatchObject({ status: 200, json: { status: 'cancelled', request_counts: { cancelled: 3 } } });
    expect(cancelled.json.cancelled_at).toEqual(expect.any(Number));
    expect((await call(api, 'POST', `/v1/batches/${created.json.id}/cancel`)).json.cancelled_at).toBe(cancelled.json.cancelled_at);
    jobs.loop.start();
    await drained(jobs);
    expect((await call(api, 'GET', `/v1/batches/${created.json.id}`)).json.request_counts).toMatchObject({ cancelled: 3, completed: 0 });
    expect(existsSync(jobs.outputDir)).toBe(false);

    const done = await call(api, 'POST', '/v1/batches', { items: [{ image: PNG, instruction: 'make the red circle blue' }], steps: 2 });
    await finished(api, done.json.id);
    expect(await call(api, 'POST', `/v1/batches/${done.json.id}/cancel`)).toMatchObject({ status: 409, json: { error: { code: 'batch_finished' } } });
    expect(await call(api, 'GET', '/v1/batches/batch_nothere')).toMatchObject({ status: 404, json: { error: { code: 'batch_not_found', param: 'id' } } });
  });
});

describe('outbound webhook delivery', () => {
  it('retries a receiver that is down until it is back, with the same webhook-id', async () => {
    const { jobs, api, receiver } = await setup({ retryScheduleMs: [150, 300, 600, 1_200, 2_400] });
    await receiver.down();
    const created = await call(api, 'POST', '/v1/batches', { items: [{ image: PNG, instruction: 'make the red circle blue' }], webhook: { url: receiver.url, events: ['batch.completed'] }, steps: 2 });
    await finished(api, created.json.id);
    await eventually(() => jobs.logged.filter((l) => /batch\.completed .* failed \(cannot reach/.test(l)).length >= 2, 10_000);
    await receiver.up();
    await eventually(() => receiver.deliveries.length === 1, 10_000);
    await drained(jobs);
    expect(receiver.deliveries).toHaveLength(1);
    const [delivery] = receiver.deliveries;
    expect(verified(created.json.webhook.secret, delivery!)).toMatchObject({ type: 'batch.completed', data: { batch_id: created.json.id } });
    expect(jobs.logged.join('\n')).toContain(`webhook batch.completed ${delivery!.id} of ${created.json.id} (attempt 1) failed`);
  });

  it('stops delivering to an endpoint for good once it answers 410 Gone', async () => {
    const { jobs, api, receiver } = await setup({ retryScheduleMs: [100, 100, 100] });
    receiver.respond = (_, n) => (n === 0 ? 503 : 410);
    const created = await call(api, 'POST', '/v1/batches', {
      items: Array.from({ length: 3 }, () => ({ image: PNG, instruction: 'make the red circle blue' })),
      webhook: { url: receiver.url },
      steps: 2,
    });
    const batch = await finished(api, created.json.id);
    await drained(jobs);
    // Four events were due (three items, the batch); after the 410 nothing more was sent, retries included.
    expect(receiver.deliveries.map((d) => d.status)).toEqual([503, 410]);
    expect(jobs.logged.some((l) => /failed \(answered 503\); next attempt in \d+ ms/.test(l))).toBe(true);
    expect((await call(api, 'GET', `/v1/batches/${batch.id}`)).json.webhook).toMatchObject({ status: 'disabled', disabled_reason: 'the endpoint answered 410 Gone' });
  });

  it('refuses a private target at delivery without connecting, and disables the endpoint', async () => {
    const jobs = startJobs(model, { allowPrivate: false });
    open.push(jobs);
    const receiver = await startReceiver();
    open.push(receiver);
    // Accepted when the batch was made (a host name is checked when resolved), refused when sent.
    const url = receiver.url.replace('127.0.0.1', 'localhost');
    const { batch } = await jobs.batches.create({ items: [{ image: { base64: PNG }, instruction: 'make the red circle blue' }], options: { steps: 2 }, webhook: { url } }, 'api');
    await eventually(() => jobs.logged.some((l) => l.includes('refused')), 20_000);
    await drained(jobs);
    expect(receiver.connections).toBe(0);
    expect((await jobs.store.getBatch(batch.id))?.webhook?.disabled?.reason).toMatch(/localhost resolves to 127\.0\.0\.1, a private or loopback address/);
  });
});

describe('POST /v1/hooks/{source}', () => {
  const sources: Record<string, HookSource> = {
    cms: { secret: HOOK_SECRET },
    uploads: { secret: HOOK_SECRET, s3: { rules: [{ prefix: 'recolor/', suffix: '.png', instruction: 'make the red circle blue' }] } },
  };

  function signedHeaders(body: string, options: { id?: string; at?: number; secret?: string } = {}): Record<string, string> {
    const at = options.at ?? Date.now();
    const id = options.id ?? `msg_${Math.random().toString(36).slice(2)}`;
    return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at / 1000)), 'webhook-signature': new Webhook(options.secret ?? HOOK_SECRET).sign(id, new Date(at), body) };
  }

  it('creates a batch from a signed request, without an API key; forged, expired and replayed requests get 401 and create nothing', async () => {
    const { jobs, api } = await setup({ hookSources: sources, apiKeys: ['sk-test'] });
    const body = JSON.stringify({ items: [{ image: PNG, instruction: 'make the red circle blue' }], steps: 2 });
    const headers = signedHeaders(body, { id: 'msg_cms_1' });
    const created = await call(api, 'POST', '/v1/hooks/cms', body, headers);
    expect(created.status).toBe(201);
    expect(created.json.batch).toMatchObject({ source: 'hook:cms', request_counts: { total: 1 } });
    expect(created.json.batch).not.toHaveProperty('webhook.secret');
    expect((await call(api, 'POST', '/v1/batches', JSON.parse(body))).status).toBe(401);

    const refused: [string, string, Record<string, string>][] = [
      ['forged', body, signedHeaders(body, { secret: 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })],
      ['tampered', body.replace('blue', 'green'), signedHeaders(body)],
      ['expired', body, signedHeaders(body, { at: Date.now() - 6 * 60_000 })],
      ['unsigned', body, { 'webhook-id': 'msg_x', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) }],
      ['replayed', body, headers],
    ];
    for (const [what, payload, h] of refused) {
      const res = await call(api, 'POST', '/v1/hooks/cms', payload, h);
      expect({ what, status: res.status, code: res.json.error.code }).toEqual({ what, status: 401, code: what === 'replayed' ? 'webhook_replayed' : 'invalid_webhook' });
    }
    expect((await call(api, 'POST', '/v1/hooks/shop', body, signedHeaders(body))).status).toBe(401);
    expect(batchCount(jobs)).toBe(1);
    await eventually(() => jobs.queue.counts().done >= 1, 20_000);
    expect((await jobs.store.getBatch(created.json.batch.id))?.status).toBe('completed');
  });

  it('edits the new objects of an S3 event notification under the inbox with the rule\'s instruction', async () => {
    const { jobs, api } = await setup({ hookSources: sources });
    mkdirSync(join(jobs.inputDir, 'recolor'), { recursive: true });
    for (const name of ['a.png', 'b_c.png']) writeFileSync(join(jobs.inputDir, 'recolor', name), Buffer.from(PNG, 'base64'));
    const record = (key: string, eventName = 'ObjectCreated:Put') => ({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      eventName,
      eventTime: new Date().toISOString(),
      s3: { s3SchemaVersion: '1.0', bucket: { name: 'inbox-bucket', arn: 'arn:aws:s3:::inbox-bucket' }, object: { key, size: 123, eTag: 'x' } },
    });
    const notification = JSON.stringify({ Records: [record('recolor/a.png'), record('recolor/b%5Fc.png'), record('other/x.png'), record('recolor/a.png', 'ObjectRemoved:Delete')] });
    const created = await call(api, 'POST', '/v1/hooks/uploads', notification, signedHeaders(notification));
    expect(created.status).toBe(201);
    expect(created.json.ignored).toBe(2);
    const batch = await finished(api, created.json.batch.id);
    expect(batch).toMatchObject({ status: 'completed', source: 'hook:uploads' });
    expect(batch.items.map((i: Json) => [i.instruction, i.status])).toEqual([
      ['make the red circle blue', 'completed'],
      ['make the red circle blue', 'completed'],
    ]);
    const nothing = JSON.stringify({ Records: [record('other/y.png')] });
    expect(await call(api, 'POST', '/v1/hooks/uploads', nothing, signedHeaders(nothing))).toMatchObject({ status: 200, json: { batch: null, ignored: 1 } });
    const wrongShape = JSON.stringify({ items: [] });
    expect(await call(api, 'POST', '/v1/hooks/uploads', wrongShape, signedHeaders(wrongShape))).toMatchObject({ status: 422, json: { error: { param: 'Records' } } });
  });
});
