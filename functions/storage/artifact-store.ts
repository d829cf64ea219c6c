/**
 * The artifact store: where results (images, answers) are written, in a local folder or
 * under an S3 prefix. A key names one result (derived from the batch id and the item, see
 * `artifactKey`), so work that is retried writes to the same object; writing bytes that are
 * already there is a no-op (compared byte for byte, or on S3 by sha256). Local writes are
 * atomic renames.
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { formatStorageUri, type StorageUri } from '../core/storage-uri.ts';
import { isNotFound, s3Request, s3Uri } from './s3-client.ts';

export interface ArtifactWrite {
  /** Where the result lives, e.g. `s3://outputs-bucket/outputs/batch_1/0.png`. */
  readonly uri: string;
  /** False when identical bytes were already stored under the key. */
  readonly written: boolean;
}

export interface ArtifactStore {
  put(key: string, bytes: Uint8Array, contentType: string): Promise<ArtifactWrite>;
  /** The stored bytes, or `undefined` when nothing is stored under the key. */
  get(key: string): Promise<Uint8Array | undefined>;
}

export class ArtifactKeyError extends Error {
  override readonly name = 'ArtifactKeyError';
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Joins key segments, each letters, digits, `.`, `_` or `-` (not starting with a dot), so a
 * key can neither escape the store's folder nor differ between a first try and a retry.
 *
 * @example
 * artifactKey('batch_abc', '3.png'); // 'batch_abc/3.png'
 */
export function artifactKey(...segments: string[]): string {
  const bad = segments.find((s) => !SEGMENT.test(s));
  if (bad !== undefined || segments.length === 0) {
    throw new ArtifactKeyError(`artifact key segment "${bad ?? ''}" must be letters, digits, ".", "_" or "-", not starting with "."`);
  }
  return segments.join('/');
}

function checkKey(key: string): void {
  artifactKey(...key.split('/'));
}

/**
 * @example
 * const outputs = openArtifactStore(config.outputUri, s3);
 * await outputs.put(artifactKey(batchId, `${index}.png`), png, 'image/png');
 */
export function openArtifactStore(uri: StorageUri, s3: S3Client): ArtifactStore {
  return uri.scheme === 'file' ? folderStore(uri.path) : bucketStore(s3, uri.bucket, uri.key === '' || uri.key.endsWith('/') ? uri.key : `${uri.key}/`);
}

function folderStore(root: string): ArtifactStore {
  const read = (path: string) =>
    readFile(path).then(
      (b) => new Uint8Array(b),
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      },
    );
  return {
    async put(key, bytes) {
      checkKey(key);
      const path = join(root, key);
      const uri = formatStorageUri({ scheme: 'file', path });
      const existing = await read(path);
      if (existing !== undefined && Buffer.compare(existing, bytes) === 0) return { uri, written: false };
      await mkdir(dirname(path), { recursive: true });
      const temp = `${path}.partial-${process.pid}-${randomUUID().slice(0, 8)}`;
      try {
        await writeFile(temp, bytes);
        await rename(temp, path);
      } finally {
        await rm(temp, { force: true });
      }
      return { uri, written: true };
    },
    async get(key) {
      checkKey(key);
      return read(join(root, key));
    },
  };
}

/** Objects carry their sha256 as metadata, so an identical re-write is detected by a HEAD request. */
function bucketStore(s3: S3Client, bucket: string, prefix: string): ArtifactStore {
  return {
    async put(key, bytes, contentType) {
      checkKey(key);
      const objectKey = `${prefix}${key}`;
      const uri = s3Uri(bucket, objectKey);
      const digest = createHash('sha256').update(bytes).digest();
      const sha256 = digest.toString('hex');
      const head = await s3Request(uri, 'inspect', () =>
        s3.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey })).catch((e: unknown) => {
          if (isNotFound(e)) return undefined;
          throw e;
        }),
      );
      if (head?.Metadata?.sha256 === sha256 && head.ContentLength === bytes.length) return { uri, written: false };
      await s3Request(uri, 'write', () =>
        s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: objectKey,
            Body: bytes,
            ContentType: contentType,
            Metadata: { sha256 },
            ChecksumSHA256: digest.toString('base64'),
          }),
        ),
      );
      return { uri, written: true };
    },
    async get(key) {
      checkKey(key);
      const objectKey = `${prefix}${key}`;
      return s3Request(s3Uri(bucket, objectKey), 'read', async () => {
        try {
          const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }));
          return res.Body === undefined ? new Uint8Array() : await res.Body.transformToByteArray();
        } catch (e) {
          if (isNotFound(e)) return undefined;
          throw e;
        }
      });
    },
  };
}
