import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../functions/storage/package-files.ts';
import { createS3Client, StorageError } from '../functions/storage/s3-client.ts';
import { readManifest, resolvePackage } from '../functions/storage/s3-packages.ts';
import { runInfraCli } from '../test/support/cli.ts';
import { makePackage, recordRequests, removeTempDirs, SMALL, tempDir } from '../test/support/packages.ts';
import { S3RVER_CREDENTIALS, startS3, type TestS3 } from '../test/support/s3.ts';
import { listPackages, pushPackage } from './models.ts';

let s3: TestS3;
let bucketCount = 0;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(() => s3.close());
afterEach(removeTempDirs);

async function newBucket(): Promise<string> {
  const bucket = `push-${++bucketCount}`;
  await s3.client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Each file's sha256 (comparing megabytes element by element would be slow). */
function filesOf(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((name) => [name, sha256Hex(readFileSync(join(dir, name)))]));
}

/** A client whose `failOn`-th request of the given command fails as a dropped connection would. */
function failingClient(command: string, failOn: number): S3Client {
  const client = createS3Client({ region: 'us-east-1', endpoint: s3.endpoint }, S3RVER_CREDENTIALS);
  let seen = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === command && ++seen === failOn) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      return next(args);
    },
    { step: 'initialize' },
  );
  return client;
}

const MIB = 1024 * 1024;

describe('npm run models -- push / pull / ls', () => {
  it('pushes a package and pulls back identical bytes, listing it as latest', async () => {
    const bucket = await newBucket();
    const push = await runInfraCli(['models', 'push', SMALL, `s3://${bucket}/models/`], s3.env);
    expect(push.stderr).not.toContain('infra:');
    expect(push.stdout).toContain(`pushed shapes-tiny@0.1.0 to s3://${bucket}/models/shapes-tiny/0.1.0/`);
    expect(push.stdout).toContain('latest now points to 0.1.0');
    expect(push.stdout).toMatch(/pushing codebook\.bin \(4\.8 KiB\) done/);

    const dest = join(tempDir('pull-'), 'shapes-tiny');
    const pull = await runInfraCli(['models', 'pull', `s3://${bucket}/models/shapes-tiny/latest`, dest], s3.env);
    expect(pull.stdout).toContain(`pulled shapes-tiny@0.1.0 from s3://${bucket}/models/shapes-tiny/0.1.0/ into ${dest}, every file verified`);
    expect(filesOf(dest)).toEqual(filesOf(SMALL));

    const ls = await runInfraCli(['models', 'ls', `s3://${bucket}/models/`], s3.env);
    expect(ls.stdout.trim()).toMatch(/^shapes-tiny\t0\.1\.0\t6\.3 KiB\tlatest$/);
  });

  it('refuses to pull an object tampered with after the push, naming the file and writing nothing', async () => {
    const bucket = await newBucket();
    await pushPackage(s3.client, SMALL, { bucket, prefix: 'models/' });
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/shapes-tiny/0.1.0/vocab.json', Body: '{"tokens":["tampered"]}' }));
    const parent = tempDir('pull-');
    const pull = await runInfraCli(['models', 'pull', `s3://${bucket}/models/shapes-tiny/0.1.0/`, join(parent, 'x')], s3.env);
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain(`infra: vocab.json (s3://${bucket}/models/shapes-tiny/0.1.0/vocab.json) has 23 bytes, the manifest says`);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('keeps the previous version and latest intact when a push stops halfway, and finishes on a second try', async () => {
    const bucket = await newBucket();
    await pushPackage(s3.client, SMALL, { bucket, prefix: 'models/' });
    const next = makePackage({ version: '0.2.0', extra: { 'weights.bin': randomBytes(6 * MIB) } });

    // weights.bin goes up in two parts of 5 MiB; the connection drops during the second. (The
    // upload then tries to abort the multipart upload, which s3rver refuses with a 405; S3
    // aborts it, and the bucket's lifecycle rule clears any that linger.)
    const push = pushPackage(failingClient('UploadPartCommand', 2), next, { bucket, prefix: 'models/' }, { partSize: 5 * MIB });
    await expect(push).rejects.toThrow(StorageError);
    await expect(push).rejects.toThrow(`cannot upload to s3://${bucket}/models/shapes-tiny/0.2.0/weights.bin: `);

    const latest = await resolvePackage(s3.client, { bucket, key: 'models/shapes-tiny/latest' });
    expect(latest.prefix).toBe('models/shapes-tiny/0.1.0/');
    expect((await readManifest(s3.client, latest)).text).toBe(readFileSync(join(SMALL, 'manifest.json'), 'utf8'));
    await expect(readManifest(s3.client, { bucket, prefix: 'models/shapes-tiny/0.2.0/' })).rejects.toThrow(/is not a complete package version/);
    const listed = await listPackages(s3.client, { bucket, prefix: 'models/' });
    expect(listed.map((v) => [v.version, v.complete, v.latest])).toEqual([
      ['0.1.0', true, true],
      ['0.2.0', false, false],
    ]);
    const ls = await runInfraCli(['models', 'ls', `s3://${bucket}/models/`], s3.env);
    expect(ls.stdout).toContain('incomplete: no manifest (an interrupted push)');

    const retried = await pushPackage(s3.client, next, { bucket, prefix: 'models/' }, { partSize: 5 * MIB });
    expect(retried).toMatchObject({ version: '0.2.0', uploaded: true, previousLatest: '0.1.0' });
    const dest = join(tempDir('pull-'), 'pkg');
    const pull = await runInfraCli(['models', 'pull', `s3://${bucket}/models/shapes-tiny/latest`, dest], s3.env);
    expect(pull.stdout).toContain('pulled shapes-tiny@0.2.0');
    expect(filesOf(dest)).toEqual(filesOf(next));
  });

  it('writes the manifest after every file and the latest pointer after the manifest', async () => {
    const bucket = await newBucket();
    const client = createS3Client({ region: 'us-east-1', endpoint: s3.endpoint }, S3RVER_CREDENTIALS);
    const requests = recordRequests(client);
    await pushPackage(client, SMALL, { bucket, prefix: 'models/' });
    const writes = requests.filter((r) => r.command === 'PutObjectCommand').map((r) => r.key);
    expect(writes).toEqual([
      'models/shapes-tiny/0.1.0/codebook.bin',
      'models/shapes-tiny/0.1.0/vocab.json',
      'models/shapes-tiny/0.1.0/manifest.json',
      'models/shapes-tiny/latest',
    ]);
  });

  it('uploads nothing when the same version is pushed again, and refuses different content under that version', async () => {
    const bucket = await newBucket();
    await pushPackage(s3.client, SMALL, { bucket, prefix: 'models/' });
    const again = await runInfraCli(['models', 'push', SMALL, `s3://${bucket}/models/`], s3.env);
    expect(again.stdout).toContain(`s3://${bucket}/models/shapes-tiny/0.1.0/ already holds this exact package: nothing uploaded`);
    expect(again.stdout).toContain('latest already pointed to 0.1.0');

    const changed = makePackage({ version: '0.1.0', extra: { 'notes.txt': Buffer.from('new') } });
    const refused = await runInfraCli(['models', 'push', changed, `s3://${bucket}/models/`], s3.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('already holds a different shapes-tiny@0.1.0; a pushed version never changes');
  });

  it('refuses to push a local package that fails verification, naming the file', async () => {
    const bucket = await newBucket();
    const dir = makePackage({ version: '0.3.0' });
    writeFileSync(join(dir, 'vocab.json'), '{}');
    const push = await runInfraCli(['models', 'push', dir, `s3://${bucket}/models/`], s3.env);
    expect(push.code).toBe(1);
    expect(push.stderr).toMatch(/infra: vocab\.json has 2 bytes, the manifest says \d+/);
    expect(await listPackages(s3.client, { bucket, prefix: 'models/' })).toEqual([]);
  });
});
