import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pushPackage } from '../infra/models.ts';
import { removeTempDirs, SHIPPED, tempDir } from './support/packages.ts';
import { startS3, type TestS3 } from './support/s3.ts';
import { listeningServer, startServer, stopServers } from './support/server.ts';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
  await s3.client.send(new CreateBucketCommand({ Bucket: 'deployed-models' }));
  await pushPackage(s3.client, SHIPPED, { bucket: 'deployed-models', prefix: 'models/' });
});
afterAll(() => s3.close());
afterEach(() => {
  stopServers();
  removeTempDirs();
});

describe('a server started with MODEL_URI=s3://…', () => {
  it('downloads the package into its cache, verified, serves it, and reuses it after a restart', async () => {
    const cache = tempDir('model-cache-');
    const env = { ...s3.env, MODEL_URI: 's3://deployed-models/models/shapes-tiny/latest', MODEL_CACHE_DIR: cache };

    const first = await listeningServer(env);
    expect(first.server.output()).toContain('model shapes-tiny@0.1.0 downloaded and verified from s3://deployed-models/models/shapes-tiny/latest');
    const health = await fetch(`${first.url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok', model: { name: 'shapes-tiny', version: '0.1.0' } });
    const [folder] = readdirSync(cache);
    for (const name of ['manifest.json', 'vocab.json', 'codebook.bin']) {
      expect(readFileSync(join(cache, folder as string, name))).toEqual(readFileSync(join(SHIPPED, name)));
    }
    first.server.child.kill('SIGTERM');
    expect(await first.server.exited()).toBe(0);

    const second = await listeningServer(env);
    expect(second.server.output()).toContain('model shapes-tiny@0.1.0 reused from the cache, verified, for s3://deployed-models/models/shapes-tiny/latest');
    expect(readdirSync(cache)).toEqual([folder]);
  });

  it('refuses to start when the bucket holds no such package, naming the object', async () => {
    const server = startServer({ ...s3.env, PORT: '0', MODEL_URI: 's3://deployed-models/models/other/latest', MODEL_CACHE_DIR: tempDir('model-cache-') });
    expect(await server.exited()).toBe(1);
    expect(server.output()).toContain('sparse-lavida: s3://deployed-models/models/other/latest does not exist: no version of this package has been pushed');
  });
});
