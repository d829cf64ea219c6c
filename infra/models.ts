/**
 * Pushing and listing model packages on S3 (layout in functions/storage/s3-packages.ts).
 * A push verifies the local package, uploads every file (multipart above the part size,
 * each part with a SHA-256 checksum that S3 verifies), checks each stored size, writes the
 * manifest last and only then moves the `latest` pointer. A push that stops halfway leaves
 * a version without a manifest, which no reader loads, and `latest` where it was.
 */
import { HeadObjectCommand, PutObjectCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPackageDir, PackageError } from '../functions/storage/package-files.ts';
import { s3Request, s3Uri, StorageError } from '../functions/storage/s3-client.ts';
import {
  latestKey,
  latestPointerSchema,
  LATEST_POINTER,
  parseLatestPointer,
  MANIFEST_FILE,
  packageFiles,
  readObjectText,
  versionPrefix,
  type OnProgress,
} from '../functions/storage/s3-packages.ts';

/** An S3 folder that holds packages, e.g. `s3://B/models/` as { bucket: 'B', prefix: 'models/' }. */
export interface PackageRoot {
  readonly bucket: string;
  readonly prefix: string;
}

export function packageRoot(uri: { readonly bucket: string; readonly key: string }): PackageRoot {
  return { bucket: uri.bucket, prefix: uri.key === '' || uri.key.endsWith('/') ? uri.key : `${uri.key}/` };
}

export interface PushOptions {
  readonly onProgress?: OnProgress;
  /** Files larger than this go up in parts of this size (S3's minimum part is 5 MiB). */
  readonly partSize?: number;
}

export interface PushResult {
  readonly name: string;
  readonly version: string;
  /** The version folder, e.g. `s3://B/models/shapes-tiny/0.1.0/`. */
  readonly uri: string;
  /** False when this exact version was already complete on S3 (nothing was uploaded). */
  readonly uploaded: boolean;
  /** The version `latest` named before this push, if any. */
  readonly previousLatest: string | undefined;
}

const DEFAULT_PART_SIZE = 16 * 1024 * 1024;

/**
 * @example
 * await pushPackage(s3, 'models/shapes-tiny', { bucket: 'my-models', prefix: 'models/' });
 */
export async function pushPackage(s3: S3Client, dir: string, root: PackageRoot, options: PushOptions = {}): Promise<PushResult> {
  const pkg = await loadPackageDir(dir);
  const manifestText = await readFile(join(dir, MANIFEST_FILE), 'utf8');
  const { name, version } = pkg.manifest;
  const prefix = versionPrefix(root.prefix, name, version);
  const uri = s3Uri(root.bucket, prefix);
  const manifestKey = `${prefix}${MANIFEST_FILE}`;

  const pushed = await readObjectText(s3, root.bucket, manifestKey);
  if (pushed !== undefined && pushed !== manifestText) {
    throw new StorageError(`${uri} already holds a different ${name}@${version}; a pushed version never changes: give the package a new version`, uri);
  }
  if (pushed === undefined) {
    const { names, totalBytes } = packageFiles(pkg.manifest);
    let doneBytes = 0;
    for (const file of names) {
      const entry = pkg.manifest.files[file];
      if (!entry) continue;
      const report = (fileBytes: number) =>
        options.onProgress?.({ file, fileBytes, fileSize: entry.size, doneBytes: doneBytes + fileBytes, totalBytes });
      await uploadFile(s3, root.bucket, `${prefix}${file}`, join(dir, file), entry, options.partSize ?? DEFAULT_PART_SIZE, report);
      doneBytes += entry.size;
    }
    await putSmallObject(s3, root.bucket, manifestKey, manifestText);
  }

  const pointerKey = latestKey(root.prefix, name);
  const previous = await readObjectText(s3, root.bucket, pointerKey);
  const previousLatest = previous === undefined ? undefined : parseLatestPointer(previous)?.version;
  await putSmallObject(s3, root.bucket, pointerKey, `${JSON.stringify(latestPointerSchema.parse({ name, version }))}\n`);
  return { name, version, uri, uploaded: pushed === undefined, previousLatest };
}

async function uploadFile(
  s3: S3Client,
  bucket: string,
  key: string,
  path: string,
  entry: { readonly sha256: string; readonly size: number },
  partSize: number,
  report: (fileBytes: number) => void,
): Promise<void> {
  const uri = s3Uri(bucket, key);
  report(0);
  const upload = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: createReadStream(path), ChecksumAlgorithm: 'SHA256', Metadata: { sha256: entry.sha256 } },
    partSize,
    queueSize: 4,
  });
  upload.on('httpUploadProgress', (p) => {
    if (p.loaded !== undefined && p.loaded < entry.size) report(p.loaded);
  });
  await s3Request(uri, 'upload to', () => upload.done());
  const head = await s3Request(uri, 'inspect', () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })));
  if (head.ContentLength !== entry.size) {
    throw new PackageError(`${uri} holds ${head.ContentLength} bytes after upload, the manifest says ${entry.size}`, key);
  }
  report(entry.size);
}

async function putSmallObject(s3: S3Client, bucket: string, key: string, text: string): Promise<void> {
  const body = Buffer.from(text, 'utf8');
  await s3Request(s3Uri(bucket, key), 'write', () =>
    s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentType: 'application/json',
        ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
      }),
    ),
  );
}

export interface PackageVersion {
  readonly name: string;
  readonly version: string;
  /** Whether the manifest is there; a version without it is an interrupted push. */
  readonly complete: boolean;
  readonly bytes: number;
  readonly latest: boolean;
}

/**
 * Every version under a root, complete or not, sorted by name and version.
 *
 * @example
 * for (const v of await listPackages(s3, root)) console.log(v.name, v.version, v.latest);
 */
export async function listPackages(s3: S3Client, root: PackageRoot): Promise<PackageVersion[]> {
  const versions = new Map<string, { name: string; version: string; complete: boolean; bytes: number }>();
  const pointers: string[] = [];
  const uri = s3Uri(root.bucket, root.prefix);
  await s3Request(uri, 'list', async () => {
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: root.bucket, Prefix: root.prefix })) {
      for (const object of page.Contents ?? []) {
        const parts = (object.Key ?? '').slice(root.prefix.length).split('/');
        const [name, version, ...rest] = parts;
        if (name === undefined || version === undefined) continue;
        if (rest.length === 0) {
          if (version === LATEST_POINTER) pointers.push(name);
          continue;
        }
        const id = `${name}/${version}`;
        const entry = versions.get(id) ?? { name, version, complete: false, bytes: 0 };
        entry.bytes += object.Size ?? 0;
        entry.complete ||= rest.join('/') === MANIFEST_FILE;
        versions.set(id, entry);
      }
    }
  });
  const latest = new Set<string>();
  for (const name of pointers) {
    const text = await readObjectText(s3, root.bucket, latestKey(root.prefix, name));
    const pointer = text === undefined ? undefined : parseLatestPointer(text);
    if (pointer) latest.add(`${pointer.name}/${pointer.version}`);
  }
  return [...versions.entries()]
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([id, v]) => ({ ...v, latest: latest.has(id) }));
}
