/**
 * The progress display of long transfers. On a terminal, one line redrawn in place (a bar,
 * the percentage, bytes so far and the current file); elsewhere (CI logs, pipes), one line
 * per finished file.
 */
import type { OnProgress } from '../functions/storage/s3-packages.ts';

export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

const BAR_WIDTH = 24;

/** `5.4 KiB`, `12.0 MiB`: bytes in binary units. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * @example
 * const progress = progressDisplay(process.stdout, 'pushing');
 * await pushPackage(s3, dir, root, { onProgress: progress.update });
 * progress.finish();
 */
export function progressDisplay(out: ProgressOutput, verb: string): { update: OnProgress; finish(): void } {
  let drawn = '';
  return {
    update(p) {
      if (!out.isTTY) {
        if (p.fileBytes === p.fileSize) out.write(`${verb} ${p.file} (${formatBytes(p.fileSize)}) done\n`);
        return;
      }
      const fraction = p.totalBytes === 0 ? 1 : p.doneBytes / p.totalBytes;
      const filled = Math.round(fraction * BAR_WIDTH);
      const line = `${verb} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${formatBytes(p.doneBytes)} / ${formatBytes(p.totalBytes)}  ${p.file}`;
      if (line !== drawn) out.write(`\r${line.padEnd(drawn.length)}`);
      drawn = line;
    },
    finish() {
      if (out.isTTY && drawn !== '') out.write('\n');
      drawn = '';
    },
  };
}
