import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { recordRequests, removeTempDirs, tempDir } from '../../test/support/packages.ts';
import { S3RVER_CREDENTIALS, startS3, type TestS3 } from '../../test/support/s3.ts';
import { ArtifactKeyError, artifactKey, openArtifactStore } from './artifact-store.ts';
import { createS3Client } from './s3-client.ts';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
  await s3.client.send(new CreateBucketCommand({ Bucket: 'outputs-bucket' }));
});
afterAll(() => s3.close());
afterEach(removeTempDirs);

const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);

describe('artifact keys', () => {
  it('joins safe segments and refuses ones that could escape the store', () => {
    expect(artifactKey('batch_1', '0.png')).toBe('batch_1/0.png');
    expect(() => artifactKey('..', 'x.png')).toThrow(ArtifactKeyError);
    expect(() => artifactKey('a/b')).toThrow(/"a\/b"/);
    expect(() => artifactKey()).toThrow(ArtifactKeyError);
  });
});

describe('the artifact store in a local folder', () => {
  it('writes a result once and leaves an identical re-write alone', async () => {
    const dir = tempDir('outputs-');
    const store = openArtifactStore({ scheme: 'file', path: dir }, s3.client);
    const key = artifactKey('batch_1', '0.png');
    expect(await store.put(key, png, 'image/png')).toEqual({ uri: `file://${join(dir, key)}`, written: true });
    expect(await store.put(key, png, 'image/png')).toEqual({ uri: `file://${join(dir, key)}`, written: false });
    expect(new Uint8Array(readFileSync(join(dir, key)))).toEqual(png);
    expect(readdirSync(join(dir, 'batch_1'))).toEqual(['0.png']);
  });

  it('replaces different bytes under the same key and reads back what is stored', async () => {
    const store = openArtifactStore({ scheme: 'file', path: tempDir('outputs-') }, s3.client);
    await store.put('b/1.png', png, 'image/png');
    expect((await store.put('b/1.png', new Uint8Array([9]), 'image/png')).written).toBe(true);
    expect(await store.get('b/1.png')).toEqual(new Uint8Array([9]));
    expect(await store.get('b/2.png')).toBeUndefined();
  });

  it('refuses a key that leaves its folder', async () => {
    const store = openArtifactStore({ scheme: 'file', path: tempDir('outputs-') }, s3.client);
    await expect(store.put('../escape.png', png, 'image/png')).rejects.toThrow(ArtifactKeyError);
    for (const key of ['../escape.png', 'a/../../escape.png', '/etc/passwd', 'a//b.png', 'a\\..\\b.png', 'a/\u0000.png']) {
      await expect(store.get(key), key).rejects.toThrow(ArtifactKeyError);
    }
  });

  it('reads a key named as a user uploaded it, spaces and all', async () => {
    const dir = tempDir('inputs-');
    mkdirSync(join(dir, 'inbox'), { recursive: true });
    writeFileSync(join(dir, 'inbox', 'My photo (1).png'), png);
    const store = openArtifactStore({ scheme: 'file', path: dir }, s3.client);
    expect(await store.get('inbox/My photo (1).png')).toEqual(png);
    await expect(store.put('inbox/My photo (2).png', png, 'image/png')).rejects.toThrow(ArtifactKeyError);
  });
});

describe('the artifact store on S3', () => {
  it('writes a result once, with its sha256, and does not upload identical bytes again', async () => {
    const client = createS3Client({ region: 'us-east-1', endpoint: s3.endpoint }, S3RVER_CREDENTIALS);
    const requests = recordRequests(client);
    const store = openArtifactStore({ scheme: 's3', bucket: 'outputs-bucket', key: 'outputs' }, client);
    const first = await store.put('batch_2/0.png', png, 'image/png');
    const again = await store.put('batch_2/0.png', png, 'image/png');
    expect(first).toEqual({ uri: 's3://outputs-bucket/outputs/batch_2/0.png', written: true });
    expect(again.written).toBe(false);
    expect(requests.filter((r) => r.command === 'PutObjectCommand')).toHaveLength(1);
    expect(await store.get('batch_2/0.png')).toEqual(png);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: 'outputs-bucket', Key: 'outputs/batch_2/0.png' }));
    expect(head.ContentType).toBe('image/png');
    expect(head.Metadata?.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('answers undefined for a key with nothing stored', async () => {
    const store = openArtifactStore({ scheme: 's3', bucket: 'outputs-bucket', key: 'outputs/' }, s3.client);
    expect(await store.get('batch_3/0.png')).toBeUndefined();
  });

  it('reads an object named as a user uploaded it, spaces and all', async () => {
    await s3.client.send(new PutObjectCommand({ Bucket: 'outputs-bucket', Key: 'inbox/My photo (1).png', Body: png }));
    const store = openArtifactStore({ scheme: 's3', bucket: 'outputs-bucket', key: 'inbox/' }, s3.client);
    expect(await store.list('')).toContain('My photo (1).png');
    expect(await store.get('My photo (1).png')).toEqual(png);
  });
});

describe.each([
  ['in a local folder', () => openArtifactStore({ scheme: 'file', path: tempDir('outputs-') }, s3.client)],
  ['on S3', () => openArtifactStore({ scheme: 's3', bucket: 'outputs-bucket', key: `created-${Math.random().toString(36).slice(2)}/` }, s3.client)],
])('create and list %s', (_, open) => {
  it('creates a key once: a second create, with any bytes, leaves the first', async () => {
    const store = open();
    expect((await store.create('batch_4/0.png', png, 'image/png')).written).toBe(true);
    expect((await store.create('batch_4/0.png', new Uint8Array([1]), 'image/png')).written).toBe(false);
    expect(await store.get('batch_4/0.png')).toEqual(png);
  });

  it('lists the keys under a folder, at any depth, sorted', async () => {
    const store = open();
    for (const key of ['b/2.json', 'b/1.json', 'b/deep/3.json', 'c/4.json']) await store.put(key, png, 'application/json');
    expect(await store.list('b/')).toEqual(['b/1.json', 'b/2.json', 'b/deep/3.json']);
    expect(await store.list('nothing/')).toEqual([]);
    await expect(store.list('b')).rejects.toThrow(ArtifactKeyError);
  });
});

describe('create under concurrency', () => {
  it('lets exactly one of concurrent creators write in a folder (a hard link either lands or finds the name taken)', async () => {
    const store = openArtifactStore({ scheme: 'file', path: tempDir('outputs-') }, s3.client);
    const writes = await Promise.all(Array.from({ length: 8 }, (_, i) => store.create('race/x.json', new Uint8Array([i]), 'application/json')));
    expect(writes.filter((w) => w.written)).toHaveLength(1);
    expect(await store.get('race/x.json')).toEqual(new Uint8Array([writes.findIndex((w) => w.written)]));
  });

  it('makes a conditional PUT on S3 (If-None-Match: *), which S3 refuses with 412 when the key exists', async () => {
    const client = createS3Client({ region: 'us-east-1', endpoint: s3.endpoint }, S3RVER_CREDENTIALS);
    const seen: unknown[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers?: Record<string, string> };
        if (request.headers?.['if-none-match'] !== undefined) seen.push(request.headers['if-none-match']);
        return next(args);
      },
      { step: 'finalizeRequest' },
    );
    const store = openArtifactStore({ scheme: 's3', bucket: 'outputs-bucket', key: 'conditional/' }, client);
    await store.create('a.json', png, 'application/json');
    expect(seen).toEqual(['*']);
  });
});
