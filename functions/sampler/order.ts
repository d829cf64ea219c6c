/**
 * The fixed, seeded, coarse-to-fine order in which image positions are decoded
 * (docs/design.md section 1; models/train/SAMPLING.md section 3): one position per cell of a 2×2
 * split of the grid, then one per cell of a 4×4 split that holds none yet, and so on down to
 * single positions. Early steps spread over the whole image; later ones fill in.
 */
import { Rng } from '../core/rng.ts';

/**
 * @example
 * stratifiedOrder(16, new Rng(0)) // 256 distinct positions; the first 4 lie in 4 different quadrants
 */
export function stratifiedOrder(grid: number, rng: Rng): number[] {
  if (!Number.isInteger(grid) || grid < 2 || (grid & (grid - 1)) !== 0) {
    throw new RangeError(`the image grid must be a power of two >= 2, got ${grid}`);
  }
  const chosen = new Uint8Array(grid * grid);
  const order: number[] = [];
  for (let n = 2; n <= grid; n *= 2) {
    const b = grid / n;
    for (const cell of rng.shuffle([...Array(n * n).keys()])) {
      const r0 = Math.floor(cell / n) * b;
      const c0 = (cell % n) * b;
      const members: number[] = [];
      for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) members.push((r0 + i) * grid + c0 + j);
      if (members.some((m) => chosen[m] === 1)) continue;
      const p = members[rng.int(b * b)] as number;
      chosen[p] = 1;
      order.push(p);
    }
  }
  return order;
}
