/**
 * The model store: loads a verified model package from a local folder (`file://`) or from S3
 * (`s3://`) through a local cache. Cached copies are named by the manifest's content, so a
 * restart reuses them after one small request for the manifest, and re-verifies every file
 * before use. Concurrent loads of the same version in one process share one download; across
 * processes, the first complete download wins the atomic rename and the others discard theirs.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StorageUri } from '../core/storage-uri.ts';
import { loadPackageDir, PackageError, sha256Hex, type LoadedPackage } from './package-files.ts';
import { downloadPackage, MANIFEST_FILE, readManifest, resolvePackage, type OnProgress, type RemoteManifest } from './s3-packages.ts';

export interface ModelStoreOptions {
  /** Where S3 packages are cached; one folder per package content. */
  readonly cacheDir: string;
  readonly s3: S3Client;
  readonly onProgress?: OnProgress;
}

export interface LoadedModel {
  readonly pkg: LoadedPackage;
  /** `folder`: a local package; `cache`: an earlier download, re-verified; `download`: fetched now. */
  readonly source: 'folder' | 'cache' | 'download';
}

export interface ModelStore {
  load(uri: StorageUri): Promise<LoadedModel>;
}

/**
 * @example
 * const store = createModelStore({ cacheDir: '.cache/models', s3: createS3Client({ region: 'us-east-1' }) });
 * const { pkg } = await store.load(parseStorageUri('s3://models-bucket/models/shapes-tiny/latest'));
 */
export function createModelStore(options: ModelStoreOptions): ModelStore {
  const loading = new Map<string, Promise<LoadedModel>>();
  return {
    async load(uri) {
      if (uri.scheme === 'file') return { pkg: await loadPackageDir(uri.path), source: 'folder' };
      const location = await resolvePackage(options.s3, uri);
      const remote = await readManifest(options.s3, location);
      const dir = join(options.cacheDir, cacheFolderName(remote));
      let pending = loading.get(dir);
      if (pending === undefined) {
        pending = loadThroughCache(dir, remote, () => downloadPackage(options.s3, location, remote, dir, options.onProgress)).finally(() =>
          loading.delete(dir),
        );
        loading.set(dir, pending);
      }
      return pending;
    },
  };
}

/** `name@version-<first 16 hex digits of the manifest's sha256>`: a changed manifest gets a new folder. */
function cacheFolderName(remote: RemoteManifest): string {
  const { name, version } = remote.manifest;
  return `${name}@${version}-${sha256Hex(new TextEncoder().encode(remote.text)).slice(0, 16)}`;
}

async function loadThroughCache(dir: string, remote: RemoteManifest, download: () => Promise<boolean>): Promise<LoadedModel> {
  const cached = await loadCached(dir, remote);
  if (cached) return { pkg: cached, source: 'cache' };
  await download();
  return { pkg: await loadPackageDir(dir), source: 'download' };
}

/** The cached copy if it holds the same manifest and passes verification; anything else there is removed. */
async function loadCached(dir: string, remote: RemoteManifest): Promise<LoadedPackage | undefined> {
  const text = await readFile(join(dir, MANIFEST_FILE), 'utf8').catch(() => undefined);
  if (text === remote.text) {
    try {
      return await loadPackageDir(dir);
    } catch (e) {
      if (!(e instanceof PackageError)) throw e;
    }
  }
  await rm(dir, { recursive: true, force: true });
  return undefined;
}
