import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPackageDir, PackageError } from './package-files.ts';

const dirs: string[] = [];
function copyOfShippedPackage(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pkg-'));
  dirs.push(dir);
  cpSync('models/shapes-tiny', dir, { recursive: true });
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function loadError(dir: string): Promise<PackageError> {
  try {
    await loadPackageDir(dir);
  } catch (e) {
    if (e instanceof PackageError) return e;
    throw e;
  }
  throw new Error('expected the package to be refused');
}

describe('loading a model package folder', () => {
  it('loads the shipped package with every listed file verified', async () => {
    const pkg = await loadPackageDir('models/shapes-tiny');
    expect(pkg.manifest.name).toBe('shapes-tiny');
    for (const name of Object.keys(pkg.manifest.files)) expect(pkg.file(name).length).toBe(pkg.manifest.files[name]?.size);
  });

  it('refuses a tampered file, naming it', async () => {
    const dir = copyOfShippedPackage();
    const bytes = readFileSync(join(dir, 'codebook.bin'));
    bytes[100] = (bytes[100] as number) ^ 1;
    writeFileSync(join(dir, 'codebook.bin'), bytes);
    const e = await loadError(dir);
    expect(e.file).toBe('codebook.bin');
    expect(e.message).toContain('codebook.bin fails its sha256 check');
  });

  it('refuses a truncated file by its size', async () => {
    const dir = copyOfShippedPackage();
    writeFileSync(join(dir, 'vocab.json'), '{}');
    const e = await loadError(dir);
    expect(e.message).toMatch(/vocab\.json has 2 bytes, the manifest says \d+/);
  });

  it('refuses a missing file, naming it', async () => {
    const dir = copyOfShippedPackage();
    rmSync(join(dir, 'codebook.bin'));
    expect((await loadError(dir)).message).toContain('codebook.bin is listed in the manifest but cannot be read');
  });

  it('refuses a manifest that does not validate, saying what is wrong', async () => {
    const dir = copyOfShippedPackage();
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    manifest.files = { ...(manifest.files as object), '../escape': { sha256: 'x', size: 1 } };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const e = await loadError(dir);
    expect(e.file).toBe('manifest.json');
    expect(e.message).toMatch(/must be a relative path inside the package/);
  });
});
