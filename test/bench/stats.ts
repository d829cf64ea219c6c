/** What the bench scripts share: quantiles of their samples and the plain-text table they print. */

/** The q-quantile of ascending `sorted` (linear interpolation), e.g. 0.5 for the median. */
export function quantile(sorted: readonly number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (i - lo);
}

/** The median, 10th and 90th percentiles of `samples` (in any order). */
export function spread(samples: readonly number[]): { median: number; p10: number; p90: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p10: quantile(sorted, 0.1), p90: quantile(sorted, 0.9) };
}

/**
 * Columns padded to their widest cell: the first `textColumns` to the left, numbers to the right.
 *
 * @example
 * formatTable(['variant', 'ms'], [['dense', '12.0']], 1)
 */
export function formatTable(head: readonly string[], rows: readonly (readonly string[])[], textColumns: number): string {
  const lines = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  return lines
    .map((l) => l.map((cell, i) => (i < textColumns ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join('  ').trimEnd())
    .join('\n');
}
