/**
 * A real S3-protocol server for tests: s3rver on 127.0.0.1, a free port and a temporary
 * folder (TOOLCHAIN.md, "S3 in tests").
 *
 * s3rver 3.7 answers NotImplemented to the bucket settings that provisioning manages
 * (versioning, default encryption, public access block, lifecycle). A small middleware in
 * front of its router keeps those settings per bucket the way S3 does: a PUT stores the
 * configuration document, a GET returns it, and a GET of a setting never made answers as S3
 * does (versioning: an empty configuration; the others: 404 with S3's error code). Every
 * other request (buckets, objects, multipart uploads, listings) is s3rver's own.
 *
 * s3rver 3.7 also answers a PUT (and a multipart completion) before the object's bytes are
 * on disk: its store resolves when the incoming stream ends, not when the file is written,
 * so a HEAD right after the PUT can see a truncated file, e.g. 0 bytes while it overwrites an
 * object. S3 is read-after-write consistent, so `durablePutObject` replaces the store's
 * putObject: the bytes go to a temporary file next to the object, which is renamed into place
 * once written, before the metadata and before the answer.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import S3rver, { type S3rverObject, type S3rverStore } from 's3rver';
import { createS3Client } from '../../functions/storage/s3-client.ts';

/** s3rver's fixed credentials; its signature check accepts only these. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface TestS3 {
  readonly endpoint: string;
  readonly client: S3Client;
  /** Environment for a child process (the server, the CLI) to reach this server. */
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

const BUCKET_SETTINGS = {
  versioning: { missing: undefined, empty: '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>' },
  encryption: { missing: 'ServerSideEncryptionConfigurationNotFoundError', empty: undefined },
  publicAccessBlock: { missing: 'NoSuchPublicAccessBlockConfiguration', empty: undefined },
  lifecycle: { missing: 'NoSuchLifecycleConfiguration', empty: undefined },
} as const;

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

async function readBody(req: import('node:http').IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The store's putObject, answering only once the object is in place (see the file comment). */
function durablePutObject(store: S3rverStore) {
  return async (object: S3rverObject): Promise<{ size: number; md5: string }> => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(dirname(objectPath), { recursive: true });
    // Not ending in the store's object suffix, so listings never show it.
    const partial = `${objectPath}.${randomUUID()}.partial`;
    const md5 = createHash('md5');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        md5.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    try {
      await pipeline(source, measure, createWriteStream(partial));
      await rename(partial, objectPath);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    const digest = md5.digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
}

export async function startS3(): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 's3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true });
  server.store.putObject = durablePutObject(server.store);
  const settings = new Map<string, string>();
  // Before s3rver's router, which is the last middleware.
  server.middleware.splice(server.middleware.length - 1, 0, async (ctx, next) => {
    const bucket = /^\/([^/]+)\/?$/.exec(ctx.path)?.[1];
    const setting = (Object.keys(BUCKET_SETTINGS) as (keyof typeof BUCKET_SETTINGS)[]).find((s) => s in ctx.query);
    if (bucket === undefined || setting === undefined || (ctx.method !== 'GET' && ctx.method !== 'PUT')) return next();
    ctx.type = 'application/xml';
    if (!(await ctx.store.getBucket(bucket))) {
      ctx.status = 404;
      ctx.body = errorXml('NoSuchBucket', 'The specified bucket does not exist');
      return;
    }
    const id = `${bucket}?${setting}`;
    if (ctx.method === 'PUT') {
      settings.set(id, await readBody(ctx.req));
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    const { missing, empty } = BUCKET_SETTINGS[setting];
    const stored = settings.get(id) ?? empty;
    if (stored === undefined) {
      ctx.status = 404;
      ctx.body = errorXml(missing ?? 'NoSuchConfiguration', `The bucket has no ${setting} configuration`);
      return;
    }
    ctx.status = 200;
    ctx.body = stored;
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    client: createS3Client({ region: 'us-east-1', endpoint }, S3RVER_CREDENTIALS),
    env: {
      S3_ENDPOINT: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    },
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
