/**
 * The image VQ tokenizer (docs/design.md section 4): a 64x64 RGB image is cut into 4x4 patches,
 * a 16x16 grid read row-major, and each patch becomes the index of its nearest codebook
 * entry (squared RGB distance over the 48 values of a patch).
 *
 * Codebook file format (`codebook.bin`): raw bytes, K entries of 48 uint8 values each, an
 * entry being the patch's 16 pixels row-major with 3 bytes (R, G, B) per pixel. K is the
 * file length divided by 48. The codebook is learned by {@link trainCodebook}: weighted
 * k-means over the distinct patches of rendered scenes (`npm run codebook`).
 */
import type { RgbImage } from '../core/image.ts';
import type { Rng } from '../core/rng.ts';

export const IMAGE_SIDE = 64;
export const PATCH_SIDE = 4;
export const GRID_SIDE = IMAGE_SIDE / PATCH_SIDE;
/** Tokens per image. */
export const GRID_CODES = GRID_SIDE * GRID_SIDE;
/** Values per patch: 4x4 pixels, 3 channels. */
export const PATCH_VALUES = PATCH_SIDE * PATCH_SIDE * 3;

/** Codes are Uint16Array elements. */
const MAX_CODEBOOK_SIZE = 65536;

/**
 * Maps patches to codes and back.
 *
 * @example
 * const vq = loadCodebook(readFileSync('models/shapes-tiny/codebook.bin'));
 * const codes = vq.encode(render(scene)); // Uint16Array(256), values in [0, vq.size)
 * const image = vq.decode(codes);
 */
export class ImageVq {
  /** K entries of 48 bytes. */
  readonly codebook: Uint8Array;
  /** Exact-match lookup: rendered scenes repeat a few patches, so most never need a search. */
  private readonly exact: PatchTable;
  /** The code of each row of `exact` (the first codebook entry with those bytes). */
  private readonly codeOfRow: Int32Array;

  /** From K*48 values in [0, 255]; float values are rounded. */
  constructor(codebook: Uint8Array | Float32Array) {
    if (codebook.length === 0 || codebook.length % PATCH_VALUES !== 0) {
      throw new RangeError(
        `a codebook holds K entries of ${PATCH_VALUES} values (4x4 RGB); got ${codebook.length} values, not a positive multiple of ${PATCH_VALUES}`,
      );
    }
    const k = codebook.length / PATCH_VALUES;
    if (k > MAX_CODEBOOK_SIZE) throw new RangeError(`a codebook holds at most ${MAX_CODEBOOK_SIZE} entries, got ${k}`);
    this.codebook = codebook instanceof Uint8Array ? codebook : toBytes(codebook);
    this.exact = new PatchTable(k);
    this.codeOfRow = new Int32Array(k);
    for (let code = 0; code < k; code++) {
      const before = this.exact.size;
      const row = this.exact.insert(this.codebook, code * PATCH_VALUES);
      if (row === before) this.codeOfRow[row] = code;
    }
  }

  /** K, the number of codes. */
  get size(): number {
    return this.codebook.length / PATCH_VALUES;
  }

  /** The 256 codes of a 64x64 image, row-major over the 16x16 patch grid. */
  encode(image: RgbImage): Uint16Array {
    const patches = patchesOf(image);
    const codes = new Uint16Array(GRID_CODES);
    for (let p = 0; p < GRID_CODES; p++) {
      const row = this.exact.find(patches, p * PATCH_VALUES);
      codes[p] = row >= 0 ? (this.codeOfRow[row] as number) : nearestRow(patches, p * PATCH_VALUES, this.codebook, this.size);
    }
    return codes;
  }

  /** The 64x64 image whose patches are the given codes' codebook entries. */
  decode(codes: ArrayLike<number>): RgbImage {
    if (codes.length !== GRID_CODES) throw new RangeError(`an image is ${GRID_CODES} codes, got ${codes.length}`);
    const data = new Uint8Array(IMAGE_SIDE * IMAGE_SIDE * 3);
    for (let p = 0; p < GRID_CODES; p++) {
      const code = codes[p] as number;
      if (!Number.isInteger(code) || code < 0 || code >= this.size) {
        throw new RangeError(`code ${code} at position ${p} is outside the codebook [0, ${this.size})`);
      }
      const px = (p % GRID_SIDE) * PATCH_SIDE;
      const py = Math.floor(p / GRID_SIDE) * PATCH_SIDE;
      for (let y = 0; y < PATCH_SIDE; y++) {
        const from = code * PATCH_VALUES + y * PATCH_SIDE * 3;
        data.set(this.codebook.subarray(from, from + PATCH_SIDE * 3), ((py + y) * IMAGE_SIDE + px) * 3);
      }
    }
    return { width: IMAGE_SIDE, height: IMAGE_SIDE, data };
  }
}

/**
 * Reads a `codebook.bin` (see the file comment); throws a RangeError when its length is
 * not a positive multiple of 48. The bytes are copied.
 *
 * @example
 * const vq = loadCodebook(readFileSync(path));
 */
export function loadCodebook(bytes: Uint8Array): ImageVq {
  return new ImageVq(Uint8Array.from(bytes));
}

/** The `codebook.bin` bytes of a tokenizer. */
export function saveCodebook(vq: ImageVq): Uint8Array {
  return Uint8Array.from(vq.codebook);
}

function toBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!(v >= 0 && v <= 255)) throw new RangeError(`codebook value ${v} at index ${i} is outside [0, 255]`);
    out[i] = Math.round(v);
  }
  return out;
}

/**
 * The 256 patches of a 64x64 image, 48 bytes each, in token order.
 *
 * @example
 * patchesOf(render(scene)).subarray(0, 48) // the top-left patch
 */
export function patchesOf(image: RgbImage): Uint8Array {
  if (image.width !== IMAGE_SIDE || image.height !== IMAGE_SIDE) {
    throw new RangeError(
      `the image tokenizer takes ${IMAGE_SIDE}x${IMAGE_SIDE} images, got ${image.width}x${image.height} (see toModelImage in png.ts)`,
    );
  }
  const out = new Uint8Array(GRID_CODES * PATCH_VALUES);
  for (let p = 0; p < GRID_CODES; p++) {
    const px = (p % GRID_SIDE) * PATCH_SIDE;
    const py = Math.floor(p / GRID_SIDE) * PATCH_SIDE;
    for (let y = 0; y < PATCH_SIDE; y++) {
      const from = ((py + y) * IMAGE_SIDE + px) * 3;
      out.set(image.data.subarray(from, from + PATCH_SIDE * 3), p * PATCH_VALUES + y * PATCH_SIDE * 3);
    }
  }
  return out;
}

/** Index of the center nearest to the patch at `offset` (squared distance; lowest index on ties). */
function nearestRow(patches: Uint8Array, offset: number, centers: Uint8Array | Float64Array, k: number): number {
  let best = 0;
  let bestDist = Infinity;
  for (let c = 0; c < k; c++) {
    const base = c * PATCH_VALUES;
    let dist = 0;
    // stop summing once this center cannot win (partial distance search)
    for (let i = 0; i < PATCH_VALUES && dist < bestDist; i++) {
      const d = (patches[offset + i] as number) - (centers[base + i] as number);
      dist += d * d;
    }
    if (dist < bestDist) {
      bestDist = dist;
      best = c;
    }
  }
  return best;
}

function squaredDistance(a: Uint8Array, aOffset: number, b: Uint8Array | Float64Array, bOffset: number): number {
  let dist = 0;
  for (let i = 0; i < PATCH_VALUES; i++) {
    const d = (a[aOffset + i] as number) - (b[bOffset + i] as number);
    dist += d * d;
  }
  return dist;
}

/**
 * A set of distinct 48-byte patches with stable indices (open addressing on an FNV-1a hash).
 * Serves both exact codebook lookup and patch deduplication.
 */
class PatchTable {
  private rows: Uint8Array;
  private slots: Int32Array;
  private count = 0;

  constructor(capacity: number) {
    this.rows = new Uint8Array(Math.max(1, capacity) * PATCH_VALUES);
    this.slots = new Int32Array(slotCount(capacity));
  }

  get size(): number {
    return this.count;
  }

  /** The distinct patches, in insertion order. */
  get patches(): Uint8Array {
    return this.rows.subarray(0, this.count * PATCH_VALUES);
  }

  /** The row holding the patch at `offset` of `source`, or -1. */
  find(source: Uint8Array, offset: number): number {
    const mask = this.slots.length - 1;
    for (let s = hashPatch(source, offset) & mask; ; s = (s + 1) & mask) {
      const row = (this.slots[s] as number) - 1;
      if (row < 0) return -1;
      if (this.rowEquals(row, source, offset)) return row;
    }
  }

  /** The row holding the patch at `offset` of `source`, added as row `size` when new. */
  insert(source: Uint8Array, offset: number): number {
    const mask = this.slots.length - 1;
    let s = hashPatch(source, offset) & mask;
    for (; ; s = (s + 1) & mask) {
      const row = (this.slots[s] as number) - 1;
      if (row < 0) break;
      if (this.rowEquals(row, source, offset)) return row;
    }
    const row = this.count++;
    if (this.count * PATCH_VALUES > this.rows.length) {
      const grown = new Uint8Array(this.rows.length * 2);
      grown.set(this.rows);
      this.rows = grown;
    }
    this.rows.set(source.subarray(offset, offset + PATCH_VALUES), row * PATCH_VALUES);
    this.slots[s] = row + 1;
    if (this.count * 2 > this.slots.length) this.rehash();
    return row;
  }

  private rowEquals(row: number, source: Uint8Array, offset: number): boolean {
    const base = row * PATCH_VALUES;
    for (let i = 0; i < PATCH_VALUES; i++) if (this.rows[base + i] !== source[offset + i]) return false;
    return true;
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    const mask = this.slots.length - 1;
    for (let row = 0; row < this.count; row++) {
      let s = hashPatch(this.rows, row * PATCH_VALUES) & mask;
      while (this.slots[s] !== 0) s = (s + 1) & mask;
      this.slots[s] = row + 1;
    }
  }
}

/** A power of two at least twice the count, so the table stays at most half full. */
function slotCount(count: number): number {
  let n = 16;
  while (n < count * 2) n *= 2;
  return n;
}

function hashPatch(source: Uint8Array, offset: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < PATCH_VALUES; i++) h = Math.imul(h ^ (source[offset + i] as number), 0x01000193);
  return h >>> 0;
}

/** Distinct patches and how often each occurred. */
export interface WeightedPatches {
  /** D entries of 48 bytes. */
  readonly patches: Uint8Array;
  /** D counts. */
  readonly weights: Float64Array;
}

/**
 * Deduplicates patches, counting each. Every chunk is a whole number of 48-byte patches
 * (for instance `patchesOf(image)`), so images can stream through without being kept.
 *
 * @example
 * const counted = countPatches(scenes.map((s) => patchesOf(render(s))));
 */
export function countPatches(chunks: Iterable<Uint8Array>): WeightedPatches {
  const table = new PatchTable(256);
  let weights = new Float64Array(256);
  for (const chunk of chunks) {
    if (chunk.length % PATCH_VALUES !== 0) {
      throw new RangeError(`a chunk of patches holds a multiple of ${PATCH_VALUES} bytes, got ${chunk.length}`);
    }
    for (let offset = 0; offset < chunk.length; offset += PATCH_VALUES) {
      const row = table.insert(chunk, offset);
      if (row >= weights.length) {
        const grown = new Float64Array(weights.length * 2);
        grown.set(weights);
        weights = grown;
      }
      weights[row] = (weights[row] as number) + 1;
    }
  }
  return { patches: table.patches.slice(), weights: weights.slice(0, table.size) };
}

export interface TrainedCodebook {
  /** K entries of 48 bytes, ordered by how many patches each represents (most first). */
  readonly codebook: Uint8Array;
  /** The number of distinct patches trained on. */
  readonly distinct: number;
  /** True when distinct <= k: the codebook is exactly the distinct patches and K = distinct. */
  readonly exact: boolean;
  /** Lloyd iterations run (0 when exact). */
  readonly iterations: number;
  /** Weighted mean squared error per value of the patches under the rounded codebook. */
  readonly meanSquaredError: number;
}

/**
 * Weighted k-means over distinct patches: k-means++ seeding (Arthur & Vassilvitskii 2007,
 * D^2 sampling, here with each point's probability also scaled by its weight), then Lloyd
 * iterations until no assignment changes or `iterations` is reached. An empty cluster is
 * re-seeded with the point farthest from its center. Centroids are rounded to uint8.
 * With at most k distinct patches the codebook is those patches and no search runs.
 *
 * @example
 * const { codebook } = trainCodebook(countPatches(chunks), 256, new Rng(1), 50);
 */
export function trainCodebook(data: WeightedPatches, k: number, rng: Rng, iterations: number): TrainedCodebook {
  const distinct = data.weights.length;
  if (data.patches.length !== distinct * PATCH_VALUES) {
    throw new RangeError(`${data.patches.length} patch bytes do not match ${distinct} weights`);
  }
  if (distinct === 0) throw new RangeError('cannot train a codebook on no patches');
  if (!Number.isInteger(k) || k < 1 || k > MAX_CODEBOOK_SIZE) throw new RangeError(`k must be an integer in [1, ${MAX_CODEBOOK_SIZE}], got ${k}`);
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`iterations must be a positive integer, got ${iterations}`);

  if (distinct <= k) {
    return { codebook: byWeight(data.patches, data.weights), distinct, exact: true, iterations: 0, meanSquaredError: 0 };
  }

  const centers = seedCenters(data, k, rng);
  const assignment = new Int32Array(distinct).fill(-1);
  let run = 0;
  while (run < iterations) {
    run++;
    let changed = 0;
    for (let i = 0; i < distinct; i++) {
      const c = nearestRow(data.patches, i * PATCH_VALUES, centers, k);
      if (c !== assignment[i]) changed++;
      assignment[i] = c;
    }
    if (changed === 0) break;
    updateCenters(data, assignment, centers, k);
  }

  const codebook = new Uint8Array(k * PATCH_VALUES);
  for (let i = 0; i < codebook.length; i++) codebook[i] = Math.min(255, Math.max(0, Math.round(centers[i] as number)));
  const clusterWeights = new Float64Array(k);
  let squared = 0;
  let total = 0;
  for (let i = 0; i < distinct; i++) {
    const w = data.weights[i] as number;
    const c = nearestRow(data.patches, i * PATCH_VALUES, codebook, k);
    clusterWeights[c] = (clusterWeights[c] as number) + w;
    squared += w * squaredDistance(data.patches, i * PATCH_VALUES, codebook, c * PATCH_VALUES);
    total += w;
  }
  return {
    codebook: byWeight(codebook, clusterWeights),
    distinct,
    exact: false,
    iterations: run,
    meanSquaredError: squared / (total * PATCH_VALUES),
  };
}

/** k-means++ seeding, weighted: P(point) ~ weight * squared distance to the nearest chosen center. */
function seedCenters(data: WeightedPatches, k: number, rng: Rng): Float64Array {
  const distinct = data.weights.length;
  const centers = new Float64Array(k * PATCH_VALUES);
  const nearest = new Float64Array(distinct).fill(Infinity);
  let chosen = pickWeighted(distinct, (i) => data.weights[i] as number, rng);
  for (let c = 0; c < k; c++) {
    for (let v = 0; v < PATCH_VALUES; v++) centers[c * PATCH_VALUES + v] = data.patches[chosen * PATCH_VALUES + v] as number;
    for (let i = 0; i < distinct; i++) {
      const d = squaredDistance(data.patches, i * PATCH_VALUES, centers, c * PATCH_VALUES);
      if (d < (nearest[i] as number)) nearest[i] = d;
    }
    if (c + 1 < k) chosen = pickWeighted(distinct, (i) => (data.weights[i] as number) * (nearest[i] as number), rng);
  }
  return centers;
}

/** An index in [0, count) drawn with probability proportional to `mass(i)`. */
function pickWeighted(count: number, mass: (i: number) => number, rng: Rng): number {
  let total = 0;
  for (let i = 0; i < count; i++) total += mass(i);
  let r = rng.next() * total;
  let last = 0;
  for (let i = 0; i < count; i++) {
    const m = mass(i);
    if (m <= 0) continue;
    last = i;
    r -= m;
    if (r < 0) return i;
  }
  return last;
}

/** Lloyd update: each center becomes the weighted mean of its points. */
function updateCenters(data: WeightedPatches, assignment: Int32Array, centers: Float64Array, k: number): void {
  const distinct = data.weights.length;
  const sums = new Float64Array(k * PATCH_VALUES);
  const mass = new Float64Array(k);
  for (let i = 0; i < distinct; i++) {
    const c = assignment[i] as number;
    const w = data.weights[i] as number;
    mass[c] = (mass[c] as number) + w;
    for (let v = 0; v < PATCH_VALUES; v++) {
      sums[c * PATCH_VALUES + v] = (sums[c * PATCH_VALUES + v] as number) + w * (data.patches[i * PATCH_VALUES + v] as number);
    }
  }
  let farthest: Float64Array | undefined;
  for (let c = 0; c < k; c++) {
    const m = mass[c] as number;
    if (m > 0) {
      for (let v = 0; v < PATCH_VALUES; v++) centers[c * PATCH_VALUES + v] = (sums[c * PATCH_VALUES + v] as number) / m;
      continue;
    }
    farthest ??= distancesToAssigned(data, assignment, centers);
    let pick = 0;
    for (let i = 1; i < distinct; i++) if ((farthest[i] as number) > (farthest[pick] as number)) pick = i;
    farthest[pick] = -1;
    for (let v = 0; v < PATCH_VALUES; v++) centers[c * PATCH_VALUES + v] = data.patches[pick * PATCH_VALUES + v] as number;
  }
}

function distancesToAssigned(data: WeightedPatches, assignment: Int32Array, centers: Float64Array): Float64Array {
  const out = new Float64Array(data.weights.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = squaredDistance(data.patches, i * PATCH_VALUES, centers, (assignment[i] as number) * PATCH_VALUES);
  }
  return out;
}

/** Rows reordered by descending weight, ties broken by the rows' bytes, so output is canonical. */
function byWeight(rows: Uint8Array, weights: Float64Array): Uint8Array {
  const order = [...weights.keys()].sort((a, b) => {
    const dw = (weights[b] as number) - (weights[a] as number);
    if (dw !== 0) return dw;
    for (let v = 0; v < PATCH_VALUES; v++) {
      const d = (rows[a * PATCH_VALUES + v] as number) - (rows[b * PATCH_VALUES + v] as number);
      if (d !== 0) return d;
    }
    return 0;
  });
  const out = new Uint8Array(order.length * PATCH_VALUES);
  order.forEach((row, i) => out.set(rows.subarray(row * PATCH_VALUES, (row + 1) * PATCH_VALUES), i * PATCH_VALUES));
  return out;
}
