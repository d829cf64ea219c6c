/**
 * Model packages on S3 (docs/design.md section 6). Under a root prefix such as `s3://B/models/`:
 *
 *   <root><name>/<version>/<file>         every file the manifest lists
 *   <root><name>/<version>/manifest.json  written after every file, so a version without it is incomplete
 *   <root><name>/latest                   {"name","version"}, rewritten only after a version is complete
 *
 * Readers name a version folder (`s3://B/models/shapes-tiny/0.1.0/`) or the pointer
 * (`s3://B/models/shapes-tiny/latest`). Downloads are verified against the manifest and
 * renamed into place as a whole folder, so no reader ever sees a partial package.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomUUID, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Manifest } from '../core/manifest.ts';
import { checkFileDigest, PackageError, parseManifest } from './package-files.ts';
import { isNotFound, s3Request, s3Uri, StorageError } from './s3-client.ts';

export const MANIFEST_FILE = 'manifest.json';
export const LATEST_POINTER = 'latest';

export function versionPrefix(root: string, name: string, version: string): string {
  return `${root}${name}/${version}/`;
}

export function latestKey(root: string, name: string): string {
  return `${root}${name}/${LATEST_POINTER}`;
}

export const latestPointerSchema = z.object({ name: z.string().min(1), version: z.string().min(1) }).strict();
export type LatestPointer = z.infer<typeof latestPointerSchema>;

/** The pointer in a `latest` object, or `undefined` when the text is not one. */
export function parseLatestPointer(text: string): LatestPointer | undefined {
  try {
    return latestPointerSchema.safeParse(JSON.parse(text)).data;
  } catch {
    return undefined;
  }
}

/** One package version on S3: its bucket and folder prefix (ending in `/`). */
export interface S3PackageLocation {
  readonly bucket: string;
  readonly prefix: string;
}

/** A manifest as read from S3: its exact text (cached byte for byte) and its parsed form. */
export interface RemoteManifest {
  readonly text: string;
  readonly manifest: Manifest;
}

/** Reads a small object as text, or `undefined` when it does not exist. */
export async function readObjectText(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  return s3Request(s3Uri(bucket, key), 'read', async () => {
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return res.Body === undefined ? '' : await res.Body.transformToString('utf8');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  });
}

/**
 * Resolves a version folder or a `latest` pointer to the version's location.
 *
 * @example
 * await resolvePackage(s3, { bucket: 'b', key: 'models/shapes-tiny/latest' });
 * // { bucket: 'b', prefix: 'models/shapes-tiny/0.1.0/' }
 */
export async function resolvePackage(s3: S3Client, uri: { readonly bucket: string; readonly key: string }): Promise<S3PackageLocation> {
  const { bucket, key } = uri;
  if (key === '' || key === '/') {
    throw new StorageError(`${s3Uri(bucket, key)} names a bucket, not a package version (…/NAME/VERSION/ or …/NAME/latest)`, s3Uri(bucket, key));
  }
  if (key !== LATEST_POINTER && !key.endsWith(`/${LATEST_POINTER}`)) {
    return { bucket, prefix: key.endsWith('/') ? key : `${key}/` };
  }
  const where = s3Uri(bucket, key);
  const text = await readObjectText(s3, bucket, key);
  if (text === undefined) throw new StorageError(`${where} does not exist: no version of this package has been pushed`, where);
  const pointer = parseLatestPointer(text);
  if (pointer === undefined) throw new StorageError(`${where} is not a latest pointer ({"name":…,"version":…})`, where);
  const folder = key.slice(0, -LATEST_POINTER.length);
  if (!folder.endsWith(`${pointer.name}/`)) {
    throw new StorageError(`${where} points to ${pointer.name}@${pointer.version}, which does not live under ${s3Uri(bucket, folder)}`, where);
  }
  return { bucket, prefix: `${folder}${pointer.version}/` };
}

/** Reads and parses a version's manifest; a version without one was never (completely) pushed. */
export async function readManifest(s3: S3Client, location: S3PackageLocation): Promise<RemoteManifest> {
  const key = `${location.prefix}${MANIFEST_FILE}`;
  const where = s3Uri(location.bucket, key);
  const text = await readObjectText(s3, location.bucket, key);
  if (text === undefined) {
    throw new PackageError(`${where} does not exist: ${s3Uri(location.bucket, location.prefix)} is not a complete package version`, MANIFEST_FILE);
  }
  return { text, manifest: parseManifest(text, where) };
}

/** Progress of a transfer: the current file and the whole package. */
export interface TransferProgress {
  readonly file: string;
  readonly fileBytes: number;
  readonly fileSize: number;
  readonly doneBytes: number;
  readonly totalBytes: number;
}
export type OnProgress = (progress: TransferProgress) => void;

/** The files of a manifest in a stable order, with the total byte count. */
export function packageFiles(manifest: Manifest): { names: string[]; totalBytes: number } {
  const names = Object.keys(manifest.files).sort();
  return { names, totalBytes: names.reduce((sum, n) => sum + (manifest.files[n]?.size ?? 0), 0) };
}

/**
 * Downloads every file of a version into a private folder next to `dest`, checks each
 * file's size and sha256 against the manifest, writes the manifest, then renames the folder
 * to `dest` in one step. Returns false when `dest` appeared meanwhile (another process
 * finished the same download first): the private copy is discarded and `dest` is left as is.
 * On any failure nothing is left behind.
 *
 * @example
 * const remote = await readManifest(s3, location);
 * await downloadPackage(s3, location, remote, '.cache/models/shapes-tiny');
 */
export async function downloadPackage(
  s3: S3Client,
  location: S3PackageLocation,
  remote: RemoteManifest,
  dest: string,
  onProgress?: OnProgress,
): Promise<boolean> {
  const partial = `${dest}.partial-${process.pid}-${randomUUID().slice(0, 8)}`;
  await mkdir(partial, { recursive: true });
  try {
    const { names, totalBytes } = packageFiles(remote.manifest);
    let doneBytes = 0;
    for (const name of names) {
      doneBytes += await downloadFile(s3, location, remote.manifest, name, join(partial, name), (fileBytes, fileSize) =>
        onProgress?.({ file: name, fileBytes, fileSize, doneBytes: doneBytes + fileBytes, totalBytes }),
      );
    }
    await writeFile(join(partial, MANIFEST_FILE), remote.text);
    try {
      await rename(partial, dest);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
      throw e;
    }
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

async function downloadFile(
  s3: S3Client,
  location: S3PackageLocation,
  manifest: Manifest,
  name: string,
  path: string,
  progress: (fileBytes: number, fileSize: number) => void,
): Promise<number> {
  const key = `${location.prefix}${name}`;
  const where = s3Uri(location.bucket, key);
  const size = manifest.files[name]?.size ?? 0;
  const res = await s3Request(where, 'download', () => s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: key })));
  const body = res.Body;
  if (!(body instanceof Readable)) throw new StorageError(`${where} returned no body`, where);
  if (res.ContentLength !== undefined && res.ContentLength !== size) {
    body.destroy();
    throw new PackageError(`${name} (${where}) has ${res.ContentLength} bytes, the manifest says ${size}`, name);
  }
  await mkdir(dirname(path), { recursive: true });
  const hash = createHash('sha256');
  let bytes = 0;
  progress(0, size);
  await s3Request(where, 'download', () =>
    pipeline(
      body,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          bytes += chunk.length;
          progress(bytes, size);
          yield chunk;
        }
      },
      createWriteStream(path),
    ),
  );
  checkFileDigest(manifest, name, bytes, hash.digest('hex'), where);
  return bytes;
}
