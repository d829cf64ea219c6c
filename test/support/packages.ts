/** Model packages for tests, derived from the shipped one so they follow its manifest schema. */
import type { S3Client } from '@aws-sdk/client-s3';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '../../functions/storage/package-files.ts';

export const SHIPPED = 'models/shapes-tiny';

/**
 * The shipped package without its denoiser (vocabulary and codebook only, a few KiB): what
 * storage tests move around, so they exercise transfers without pushing the model's
 * megabytes through s3rver again and again. Created once per test process.
 */
export const SMALL: string = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'pkg-small-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const manifest = JSON.parse(readFileSync(join(SHIPPED, 'manifest.json'), 'utf8')) as {
    files: Record<string, unknown>;
    model?: { file: string };
    sampling?: unknown;
  };
  if (manifest.model) delete manifest.files[manifest.model.file];
  delete manifest.model;
  delete manifest.sampling;
  for (const name of Object.keys(manifest.files)) cpSync(join(SHIPPED, name), join(dir, name));
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
})();

/** Temporary folders that `removeTempDirs` deletes (call it in afterEach/afterAll). */
const temps: string[] = [];
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * A copy of the small package (`SMALL`) as `version`, with extra files listed in its manifest.
 *
 * @example
 * const dir = makePackage({ version: '0.2.0', extra: { 'weights.bin': randomBytes(1024) } });
 */
export function makePackage(options: { version: string; extra?: Record<string, Uint8Array> }): string {
  const dir = tempDir('pkg-');
  cpSync(SMALL, dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { version: string; files: Record<string, unknown> };
  manifest.version = options.version;
  for (const [name, bytes] of Object.entries(options.extra ?? {})) {
    writeFileSync(join(dir, name), bytes);
    manifest.files[name] = { sha256: sha256Hex(bytes), size: bytes.length };
  }
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
}

export interface RecordedRequest {
  readonly command: string;
  readonly key: string | undefined;
}

/** Records every command the client sends (name and object key), as the server sees them. */
export function recordRequests(client: S3Client): RecordedRequest[] {
  const seen: RecordedRequest[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string };
      seen.push({ command: context.commandName ?? '?', key: input.Key });
      return next(args);
    },
    { step: 'initialize' },
  );
  return seen;
}
