import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pushPackage } from '../../infra/models.ts';
import { makePackage, recordRequests, removeTempDirs, SMALL, tempDir } from '../../test/support/packages.ts';
import { startS3, type TestS3 } from '../../test/support/s3.ts';
import { parseStorageUri } from '../core/storage-uri.ts';
import { createModelStore } from './model-store.ts';
import { PackageError } from './package-files.ts';
import { createS3Client, StorageError } from './s3-client.ts';

let s3: TestS3;
/** The shipped package under models/, as `models push` leaves it; tests that change objects make their own bucket. */
let shared: string;
let bucketCount = 0;
beforeAll(async () => {
  s3 = await startS3();
  shared = await bucketWithShippedPackage();
});
afterAll(() => s3.close());
afterEach(removeTempDirs);

async function bucketWithShippedPackage(): Promise<string> {
  const bucket = `models-${++bucketCount}`;
  await s3.client.send(new CreateBucketCommand({ Bucket: bucket }));
  await pushPackage(s3.client, SMALL, { bucket, prefix: 'models/' });
  return bucket;
}

function storeWithRecorder(cacheDir: string) {
  const client = createS3Client({ region: 'us-east-1', endpoint: s3.endpoint }, { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  return { store: createModelStore({ cacheDir, s3: client }), requests: recordRequests(client) };
}

const fileGets = (requests: { command: string; key: string | undefined }[]) =>
  requests.filter((r) => r.command === 'GetObjectCommand' && !r.key?.endsWith('/manifest.json') && !r.key?.endsWith('/latest'));

async function loadError(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the load to fail');
}

describe('the model store', () => {
  it('loads a file:// package from its folder, verified', async () => {
    const { store } = storeWithRecorder(tempDir('cache-'));
    const { pkg, source } = await store.load(parseStorageUri(`file://${SMALL}`));
    expect(source).toBe('folder');
    expect(pkg.manifest.name).toBe('shapes-tiny');
    expect(Buffer.from(pkg.file('codebook.bin'))).toEqual(readFileSync(join(SMALL, 'codebook.bin')));
  });

  it('downloads an s3:// version into the cache, verifies every file and loads it', async () => {
    const bucket = shared;
    const cacheDir = tempDir('cache-');
    const { store } = storeWithRecorder(cacheDir);
    const { pkg, source } = await store.load(parseStorageUri(`s3://${bucket}/models/shapes-tiny/0.1.0/`));
    expect(source).toBe('download');
    expect(pkg.dir.startsWith(cacheDir)).toBe(true);
    for (const name of [...Object.keys(pkg.manifest.files), 'manifest.json']) {
      expect(readFileSync(join(pkg.dir, name))).toEqual(readFileSync(join(SMALL, name)));
    }
    expect(readdirSync(cacheDir)).toEqual([expect.stringMatching(/^shapes-tiny@0\.1\.0-[0-9a-f]{16}$/)]);
  });

  it('follows the latest pointer to the version it names', async () => {
    const bucket = shared;
    const { store } = storeWithRecorder(tempDir('cache-'));
    const { pkg } = await store.load(parseStorageUri(`s3://${bucket}/models/shapes-tiny/latest`));
    expect(pkg.manifest.version).toBe('0.1.0');
  });

  it('reuses the cached package after a restart, fetching only the manifest', async () => {
    const bucket = shared;
    const cacheDir = tempDir('cache-');
    const uri = parseStorageUri(`s3://${bucket}/models/shapes-tiny/0.1.0/`);
    await storeWithRecorder(cacheDir).store.load(uri);
    const restarted = storeWithRecorder(cacheDir);
    const { source } = await restarted.store.load(uri);
    expect(source).toBe('cache');
    expect(restarted.requests.map((r) => r.key)).toEqual(['models/shapes-tiny/0.1.0/manifest.json']);
  });

  it('shares one download among concurrent loads of the same version', async () => {
    const bucket = shared;
    const { store, requests } = storeWithRecorder(tempDir('cache-'));
    const uri = parseStorageUri(`s3://${bucket}/models/shapes-tiny/0.1.0/`);
    const loads = await Promise.all([store.load(uri), store.load(uri), store.load(parseStorageUri(`s3://${bucket}/models/shapes-tiny/latest`))]);
    expect(new Set(loads.map((l) => l.pkg.dir)).size).toBe(1);
    expect(fileGets(requests).map((r) => r.key).sort()).toEqual(['models/shapes-tiny/0.1.0/codebook.bin', 'models/shapes-tiny/0.1.0/vocab.json']);
  });

  it('refuses an object tampered with after the push, naming the file, and caches nothing', async () => {
    const bucket = await bucketWithShippedPackage();
    const bytes = readFileSync(join(SMALL, 'codebook.bin'));
    bytes[10] = (bytes[10] as number) ^ 1;
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/shapes-tiny/0.1.0/codebook.bin', Body: bytes }));
    const cacheDir = tempDir('cache-');
    const e = await loadError(storeWithRecorder(cacheDir).store.load(parseStorageUri(`s3://${bucket}/models/shapes-tiny/latest`)));
    expect(e).toBeInstanceOf(PackageError);
    expect((e as PackageError).file).toBe('codebook.bin');
    expect(e.message).toContain(`codebook.bin (s3://${bucket}/models/shapes-tiny/0.1.0/codebook.bin) fails its sha256 check`);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('names a file missing from the bucket', async () => {
    const bucket = await bucketWithShippedPackage();
    await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'models/shapes-tiny/0.1.0/vocab.json' }));
    const cacheDir = tempDir('cache-');
    const e = await loadError(storeWithRecorder(cacheDir).store.load(parseStorageUri(`s3://${bucket}/models/shapes-tiny/0.1.0/`)));
    expect(e).toBeInstanceOf(StorageError);
    expect(e.message).toContain(`cannot download s3://${bucket}/models/shapes-tiny/0.1.0/vocab.json: NoSuchKey`);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('downloads again over a cached copy that was damaged on disk', async () => {
    const bucket = shared;
    const cacheDir = tempDir('cache-');
    const uri = parseStorageUri(`s3://${bucket}/models/shapes-tiny/0.1.0/`);
    const first = await storeWithRecorder(cacheDir).store.load(uri);
    writeFileSync(join(first.pkg.dir, 'vocab.json'), '{}');
    const again = await storeWithRecorder(cacheDir).store.load(uri);
    expect(again.source).toBe('download');
    expect(readFileSync(join(again.pkg.dir, 'vocab.json'))).toEqual(readFileSync(join(SMALL, 'vocab.json')));
  });

  it('refuses a version whose manifest was never written', async () => {
    const bucket = shared;
    const dir = makePackage({ version: '0.2.0' });
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/shapes-tiny/0.2.0/vocab.json', Body: readFileSync(join(dir, 'vocab.json')) }));
    const e = await loadError(storeWithRecorder(tempDir('cache-')).store.load(parseStorageUri(`s3://${bucket}/models/shapes-tiny/0.2.0/`)));
    expect(e.message).toBe(
      `s3://${bucket}/models/shapes-tiny/0.2.0/manifest.json does not exist: s3://${bucket}/models/shapes-tiny/0.2.0/ is not a complete package version`,
    );
  });
});
