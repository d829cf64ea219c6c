/** The job store contract, held by both implementations: SQLite, and objects (in a folder, and on an S3-protocol server). */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type TestS3 } from '../../test/support/s3.ts';
import { openArtifactStore } from '../storage/artifact-store.ts';
import { createS3Client } from '../storage/s3-client.ts';
import { newBatchId, type NewBatch } from './batch.ts';
import { dueEvents } from './events.ts';
import { IdempotencyConflictError, ReplayedWebhookError, type JobStore } from './job-store.ts';
import { ObjectJobStore } from './object-job-store.ts';
import { openJobsDatabase } from './sqlite-db.ts';
import { SqliteJobStore } from './sqlite-job-store.ts';

const dirs: string[] = [];
let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
  await s3.client.send(new CreateBucketCommand({ Bucket: 'jobs-bucket' }));
});
afterAll(async () => {
  await s3.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'store-'));
  dirs.push(dir);
  return dir;
}

const stores: [string, () => JobStore][] = [
  ['SQLite', () => new SqliteJobStore(openJobsDatabase(join(temp(), 'jobs.db')))],
  ['objects in a folder', () => new ObjectJobStore(openArtifactStore({ scheme: 'file', path: temp() }, createS3Client({ region: 'us-east-1' })))],
  ['objects on S3', () => new ObjectJobStore(openArtifactStore({ scheme: 's3', bucket: 'jobs-bucket', key: `jobs-${Math.random().toString(36).slice(2)}/` }, s3.client))],
];

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

function newBatch(items = 3, webhook = true): NewBatch {
  return {
    id: newBatchId(),
    createdAt: 1_700_000_000_000,
    source: 'api',
    options: { steps: 4, seed: 7 },
    webhook: webhook ? { url: 'https://example.com/hook', secret: SECRET, events: ['batch.item.completed', 'batch.completed', 'batch.failed'] } : null,
    items: Array.from({ length: items }, (_, i) => ({ image: { key: `in/${i}.png` }, instruction: 'make the red circle blue' })),
  };
}

const result = (id: string, i: number) => ({ key: `${id}/${i}.png`, uri: `file:///out/${id}/${i}.png` });

describe.each(stores)('the job store (%s)', (_, make) => {
  it('creates a batch whose items are queued, and reads it back', async () => {
    const store = make();
    const batch = newBatch();
    const created = await store.createBatch(batch);
    expect(created).toMatchObject({ created: true, webhookSecret: SECRET });
    expect(await store.getBatch(batch.id)).toMatchObject({
      id: batch.id,
      status: 'queued',
      options: { steps: 4, seed: 7 },
      finishedAt: null,
      webhook: { url: 'https://example.com/hook', disabled: null },
      items: [
        { index: 0, status: 'queued', attempts: 0, error: null, result: null },
        { index: 1, status: 'queued' },
        { index: 2, status: 'queued' },
      ],
    });
    expect(await store.getBatch(newBatchId())).toBeUndefined();
  });

  it('runs items to their outcome; the first outcome stays; the batch completes when all are final', async () => {
    const store = make();
    const batch = newBatch();
    await store.createBatch(batch);
    expect(await store.startItem(batch.id, 0, 1)).toMatchObject({ status: 'running', spec: { image: { key: 'in/0.png' } }, options: { seed: 7 } });
    expect((await store.getBatch(batch.id))?.status).toBe('in_progress');
    await store.finishItem(batch.id, 0, { status: 'completed', result: result(batch.id, 0) }, 1_000);
    // A second delivery of the same item cannot change it.
    expect((await store.startItem(batch.id, 0, 2))?.status).toBe('completed');
    await store.finishItem(batch.id, 0, { status: 'failed', error: { code: 'x', message: 'late' } }, 1_500);
    await store.startItem(batch.id, 1, 3);
    await store.finishItem(batch.id, 1, { status: 'failed', error: { code: 'unknown_word', message: 'unknown word "dragon"' } }, 2_000);
    await store.startItem(batch.id, 2, 1);
    const last = await store.finishItem(batch.id, 2, { status: 'completed', result: result(batch.id, 2) }, 3_000);
    expect(last).toMatchObject({ status: 'completed', finishedAt: 3_000 });
    const read = await store.getBatch(batch.id);
    expect(read?.items).toEqual([
      { index: 0, instruction: 'make the red circle blue', status: 'completed', attempts: 1, error: null, result: result(batch.id, 0), finishedAt: 1_000 },
      { index: 1, instruction: 'make the red circle blue', status: 'failed', attempts: 3, error: { code: 'unknown_word', message: 'unknown word "dragon"' }, result: null, finishedAt: 2_000 },
      { index: 2, instruction: 'make the red circle blue', status: 'completed', attempts: 1, error: null, result: result(batch.id, 2), finishedAt: 3_000 },
    ]);
    // The events of the last item: its own, then the batch's, the same however often they are built.
    expect(dueEvents(last!, 2).map((e) => e.type)).toEqual(['batch.item.completed', 'batch.completed']);
    expect(dueEvents(read!, 2)).toEqual(dueEvents(last!, 2));
  });

  it('fails a batch none of whose items succeeded', async () => {
    const store = make();
    const batch = newBatch(1);
    await store.createBatch(batch);
    const done = await store.finishItem(batch.id, 0, { status: 'failed', error: { code: 'invalid_image', message: 'not a PNG' } }, 5);
    expect(done?.status).toBe('failed');
    expect(dueEvents(done!, 0).map((e) => e.type)).toEqual(['batch.failed']);
  });

  it('cancels the items not started; a started item finishes; a waiting retry is cancelled', async () => {
    const store = make();
    const batch = newBatch(3);
    await store.createBatch(batch);
    await store.startItem(batch.id, 0, 1);
    const cancelled = await store.cancelBatch(batch.id, 9_000);
    expect(cancelled?.status).toBe('cancelled');
    expect(cancelled?.items.map((i) => i.status)).toEqual(['running', 'cancelled', 'cancelled']);
    expect((await store.startItem(batch.id, 0, 2))?.status).toBe('cancelled');
    expect((await store.startItem(batch.id, 1, 1))?.status).toBe('cancelled');
    expect((await store.cancelBatch(batch.id, 9_999))?.cancelledAt).toBe(9_000);
    expect(await store.cancelBatch(newBatchId(), 1)).toBeUndefined();
  });

  it('answers a repeated Idempotency-Key with the same batch, and refuses it for another request', async () => {
    const store = make();
    const guard = { idempotency: { key: 'caller:key-1', requestHash: 'h1' } };
    const first = await store.createBatch(newBatch(), guard);
    const again = await store.createBatch(newBatch(), guard);
    expect(again).toMatchObject({ created: false, webhookSecret: SECRET });
    expect(again.batch.id).toBe(first.batch.id);
    await expect(store.createBatch(newBatch(), { idempotency: { key: 'caller:key-1', requestHash: 'h2' } })).rejects.toThrow(IdempotencyConflictError);
    expect((await store.createBatch(newBatch(), { idempotency: { key: 'caller:key-2', requestHash: 'h1' } })).created).toBe(true);
  });

  it('creates one batch per inbound webhook-id: a replay is refused', async () => {
    const store = make();
    const batch = newBatch();
    await store.createBatch(batch, { inbound: { source: 'cms', webhookId: 'msg_1' } });
    const replay = newBatch();
    await expect(store.createBatch(replay, { inbound: { source: 'cms', webhookId: 'msg_1' } })).rejects.toThrow(ReplayedWebhookError);
    expect(await store.getBatch(replay.id)).toBeUndefined();
    expect((await store.createBatch(newBatch(), { inbound: { source: 'other', webhookId: 'msg_1' } })).created).toBe(true);
  });

  it('keeps the webhook target and disables it once', async () => {
    const store = make();
    const batch = newBatch();
    await store.createBatch(batch);
    expect(await store.webhookTarget(batch.id)).toEqual({ endpoint: batch.webhook, disabled: false });
    await store.disableWebhook(batch.id, 'the endpoint answered 410 Gone', 42);
    await store.disableWebhook(batch.id, 'again', 43);
    expect(await store.webhookTarget(batch.id)).toMatchObject({ disabled: true });
    const read = await store.getBatch(batch.id);
    expect(read?.webhook?.disabled).toEqual({ at: 42, reason: 'the endpoint answered 410 Gone' });
    expect(dueEvents(read!, 0)).toEqual([]);
    const plain = newBatch(1, false);
    await store.createBatch(plain);
    expect(await store.webhookTarget(plain.id)).toBeUndefined();
  });
});
