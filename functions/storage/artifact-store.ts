/**
 * The artifact store: where results (images, answers) are written, in a local folder or
 * under an S3 prefix. A key names one result (derived from the batch id and the item, see
 * `artifactKey`), so work that is retried writes to the same object; writing bytes that are
 * already there is a no-op (compared byte for byte, or on S3 by sha256). Local writes are
 * atomic renames. `create` writes only where nothing is stored yet (the first write wins),
 * for results that must never be replaced and for records that may be made once.
 */
import { GetObjectCommand, HeadObjectCommand, paginateListObjectsV2, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { createHash, randomUUID } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
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
  /**
   * Writes only if nothing is stored under the key (`written: false` otherwise, whatever is
   * there). Atomic in a folder (a hard link) and on S3 (a conditional PUT, If-None-Match: *).
   */
  create(key: string, bytes: Uint8Array, contentType: string): Promise<ArtifactWrite>;
  /** The stored bytes, or `undefined` when nothing is stored under the key. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** The keys under a folder `prefix` (ending in `/`), at any depth, sorted. */
  list(prefix: string): Promise<string[]>;
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
 * Checks a key that is only read (batch inputs, named as users uploaded them:
 * `inbox/My photo.png`): any characters but control characters and `\`; like a written key,
 * it cannot leave the store's folder (no empty, `.` or `..` segment, no leading `/`).
 *
 * @example
 * readableKey('inbox/My photo.png'); // 'inbox/My photo.png'
 */
export function readableKey(key: string): string {
  const bad = key.split('/').find((s) => s === '' || s === '.' || s === '..' || /[\u0000-\u001f\u007f\\]/.test(s));
  if (bad !== undefined || Buffer.byteLength(key) > 1024) {
    throw new ArtifactKeyError(`key "${key}" must be at most 1024 bytes of "/"-separated names, none empty, "." or "..", without control characters or "\\"`);
  }
  return key;
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
    async create(key, bytes) {
      checkKey(key);
      const path = join(root, key);
      const uri = formatStorageUri({ scheme: 'file', path });
      await mkdir(dirname(path), { recursive: true });
      const temp = `${path}.partial-${process.pid}-${randomUUID().slice(0, 8)}`;
      try {
        await writeFile(temp, bytes);
        // A hard link fails if the name exists: of concurrent creators, exactly one succeeds.
        await link(temp, path);
        return { uri, written: true };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { uri, written: false };
        throw e;
      } finally {
        await rm(temp, { force: true });
      }
    },
    async get(key) {
      readableKey(key);
      return read(join(root, key));
    },
    async list(prefix) {
      const folder = checkPrefix(prefix);
      const base = join(root, folder);
      const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return [];
        throw e;
      });
      return entries
        .filter((e) => e.isFile() && !e.name.includes('.partial-'))
        .map((e) => `${folder}${relative(base, join(e.parentPath, e.name)).split(sep).join('/')}`)
        .sort();
    },
  };
}

/** A folder prefix `a/b/` (or `` for the root), checked like a key. */
function checkPrefix(prefix: string): string {
  if (prefix === '') return '';
  if (!prefix.endsWith('/')) throw new ArtifactKeyError(`a listing prefix ends with "/", got "${prefix}"`);
  checkKey(prefix.slice(0, -1));
  return prefix;
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
    async create(key, bytes, contentType) {
      checkKey(key);
      const objectKey = `${prefix}${key}`;
      const uri = s3Uri(bucket, objectKey);
      // The HEAD saves an upload in the common case; the conditional PUT settles races.
      const head = await s3Request(uri, 'inspect', () =>
        s3.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey })).catch((e: unknown) => {
          if (isNotFound(e)) return undefined;
          throw e;
        }),
      );
      if (head !== undefined) return { uri, written: false };
      const digest = createHash('sha256').update(bytes).digest();
      return s3Request(uri, 'write', async () => {
        try {
          await s3.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: objectKey,
              Body: bytes,
              ContentType: contentType,
              Metadata: { sha256: digest.toString('hex') },
              ChecksumSHA256: digest.toString('base64'),
              IfNoneMatch: '*',
            }),
          );
          return { uri, written: true };
        } catch (e) {
          // 412: the object exists; 409: a concurrent conditional write is in progress.
          const status = e instanceof S3ServiceException ? e.$metadata.httpStatusCode : undefined;
          if (status === 412 || status === 409) return { uri, written: false };
          throw e;
        }
      });
    },
    async list(folder) {
      const from = `${prefix}${checkPrefix(folder)}`;
      return s3Request(s3Uri(bucket, from), 'list', async () => {
        const keys: string[] = [];
        for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: from })) {
          for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key.slice(prefix.length));
        }
        return keys.sort();
      });
    },
    async get(key) {
      readableKey(key);
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
