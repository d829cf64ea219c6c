/**
 * Reading a model package from a local folder: the manifest is parsed, and every file it
 * lists is checked for size and sha256 before anyone uses it. Any mismatch is an error
 * naming the file.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { manifestSchema, type Manifest } from '../core/manifest.ts';

export class PackageError extends Error {
  override readonly name = 'PackageError';
  constructor(
    message: string,
    /** The package file at fault, relative to the package root. */
    readonly file: string,
  ) {
    super(message);
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Parses manifest JSON text, naming the manifest and every problem when it does not validate. */
export function parseManifest(text: string, where = 'manifest.json'): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PackageError(`${where} is not valid JSON: ${(e as Error).message}`, 'manifest.json');
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new PackageError(`${where} does not validate: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`, 'manifest.json');
  }
  return parsed.data;
}

/**
 * Throws unless a file of `size` bytes with digest `sha256` is the file the manifest lists
 * under `name`. `where` says where the bytes came from (e.g. an S3 URI) in the message.
 */
export function checkFileDigest(manifest: Manifest, name: string, size: number, sha256: string, where?: string): void {
  const entry = manifest.files[name];
  const from = where === undefined ? '' : ` (${where})`;
  if (!entry) throw new PackageError(`${name} is not listed in the manifest`, name);
  if (size !== entry.size) {
    throw new PackageError(`${name}${from} has ${size} bytes, the manifest says ${entry.size}`, name);
  }
  if (sha256 !== entry.sha256) {
    throw new PackageError(`${name}${from} fails its sha256 check (expected ${entry.sha256}, got ${sha256})`, name);
  }
}

/** Throws unless `bytes` are the file the manifest lists under `name`. */
export function verifyFile(manifest: Manifest, name: string, bytes: Uint8Array): void {
  checkFileDigest(manifest, name, bytes.length, sha256Hex(bytes));
}

/** A verified, in-memory view of a package folder. */
export interface LoadedPackage {
  readonly dir: string;
  readonly manifest: Manifest;
  /** The verified bytes of a listed file. */
  file(name: string): Uint8Array;
}

/**
 * Loads and verifies every file of a package folder.
 *
 * @example
 * const pkg = await loadPackageDir('models/shapes-tiny');
 * pkg.file('codebook.bin');
 */
export async function loadPackageDir(dir: string): Promise<LoadedPackage> {
  let text: string;
  try {
    text = await readFile(join(dir, 'manifest.json'), 'utf8');
  } catch (e) {
    throw new PackageError(`cannot read ${join(dir, 'manifest.json')}: ${(e as Error).message}`, 'manifest.json');
  }
  const manifest = parseManifest(text, join(dir, 'manifest.json'));
  const files = new Map<string, Uint8Array>();
  for (const name of Object.keys(manifest.files)) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(join(dir, name));
    } catch (e) {
      throw new PackageError(`${name} is listed in the manifest but cannot be read: ${(e as Error).message}`, name);
    }
    verifyFile(manifest, name, bytes);
    files.set(name, bytes);
  }
  return {
    dir,
    manifest,
    file(name) {
      const bytes = files.get(name);
      if (!bytes) throw new PackageError(`${name} is not part of package ${manifest.name}@${manifest.version}`, name);
      return bytes;
    },
  };
}
