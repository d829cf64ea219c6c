import { describe, expect, it } from 'vitest';
import { formatBytes, progressDisplay } from './progress.ts';

function output(isTTY: boolean) {
  const written: string[] = [];
  return { isTTY, written, write: (text: string) => written.push(text) };
}

const step = (file: string, fileBytes: number, fileSize: number, doneBytes: number) => ({ file, fileBytes, fileSize, doneBytes, totalBytes: 4096 });

describe('the transfer progress display', () => {
  it('redraws one line on a terminal with a bar, the percentage, bytes and the file', () => {
    const out = output(true);
    const progress = progressDisplay(out, 'pushing');
    progress.update(step('weights.bin', 1024, 3072, 1024));
    progress.update(step('weights.bin', 1024, 3072, 1024));
    progress.update(step('weights.bin', 3072, 3072, 3072));
    progress.finish();
    expect(out.written).toEqual([
      '\rpushing [######..................]  25% 1.0 KiB / 4.0 KiB  weights.bin',
      '\rpushing [##################......]  75% 3.0 KiB / 4.0 KiB  weights.bin',
      '\n',
    ]);
  });

  it('prints one line per finished file elsewhere', () => {
    const out = output(false);
    const progress = progressDisplay(out, 'pulling');
    progress.update(step('a.bin', 0, 1024, 0));
    progress.update(step('a.bin', 1024, 1024, 1024));
    progress.update(step('b.bin', 3072, 3072, 4096));
    progress.finish();
    expect(out.written).toEqual(['pulling a.bin (1.0 KiB) done\n', 'pulling b.bin (3.0 KiB) done\n']);
  });

  it('writes sizes in binary units', () => {
    expect([formatBytes(17), formatBytes(4944), formatBytes(6 * 1024 * 1024), formatBytes(3 * 1024 ** 3)]).toEqual(['17 bytes', '4.8 KiB', '6.0 MiB', '3.0 GiB']);
  });
});
