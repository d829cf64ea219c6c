/**
 * The shapes world's object detector: recovers the scene from pixels, the way GenEval's
 * detector judges the images of real text-to-image models.
 *
 * It has to be fair in both directions. Rendered ground truth reads back exactly, and so
 * does a render with pixel noise or with edges softened by a VQ round trip. But nothing is
 * rounded towards an answer: an object of another color, shape, size or cell reads as that,
 * and a blob whose colors have no clear majority, or whose outline is not clearly one of
 * the world's shapes at one of its sizes, reads as 'unknown', which matches nothing.
 *
 * Steps: each pixel is placed on the nearest line from white to a palette color (this also
 * reads the soft edges of a VQ decoder); pixels at least half-way along a line are
 * foreground. Foreground pixels form 4-connected blobs; specks are dropped. A blob's color
 * is the color of a clear majority of its pixels, provided their mean is near that color.
 * Its shape is the one whose template, drawn by the renderer's own rule at a scale near the
 * blob's, overlaps it best (intersection over union), provided no other shape comes close;
 * its size is the world size at which that shape still overlaps it well; its cell is the
 * one nearest to where the best template sits.
 */
import type { RgbImage } from '../../functions/core/image.ts';
import { BACKGROUND, HALF_EXTENT, IMAGE_SIZE, PALETTE, cellCenter, insideShape } from './render.ts';
import {
  cellName, COLORS, SHAPES, SIZES, satisfies, scenesEqual, sortObjects,
  type Cell, type Color, type Scene, type SceneObject, type SceneSpec, type Shape, type Size,
} from '../../functions/world/scene.ts';

/** An attribute as read from pixels: a value of the world, or 'unknown' when no value fits clearly. */
export type Detected<T> = T | 'unknown';

export interface DetectedObject {
  readonly shape: Detected<Shape>;
  readonly color: Detected<Color>;
  readonly size: Detected<Size>;
  /** The cell whose center is nearest to the object's center. */
  readonly cell: Cell;
  /** Number of foreground pixels in the blob. */
  readonly pixels: number;
}

export interface Detection {
  /** In canonical order (by cell). */
  readonly objects: readonly DetectedObject[];
}

/**
 * A pixel is foreground when it lies at least this far along the line from white to its
 * palette color. One half keeps a VQ decoder's soft edges on the side they mostly belong to.
 */
const FOREGROUND_ALPHA = 0.5;
/**
 * Largest distance (Euclidean, 0..255 per channel) of a blob's mean color from the line to
 * its majority color. The mean averages pixel noise away; an even mix of any two palette
 * colors lands at least 28 from every line (red and yellow make a near-orange), while a
 * 3:1 mix of the closest pairs (red and orange, blue and purple) still reads as the major one.
 */
const MAX_COLOR_DISTANCE = 24;
/** Blobs smaller than this are specks; the smallest object (a small triangle) has 32 pixels. */
const MIN_PIXELS = 12;
/** Share of a blob's pixels its color must hold; below it the color is 'unknown'. */
const COLOR_MAJORITY = 0.75;
/**
 * Least overlap (IoU) with a template for the shape, and with the template at a world size
 * for the size, to be known. A small triangle (32 pixels) keeps it with 5 pixels added or
 * lost at its edges; a circle missing a quarter (0.75) does not, and neither does a square
 * 14 pixels wide (0.77 with the large square) or 12 wide (0.56) have a size.
 */
const MIN_IOU = 0.8;
/**
 * How far the best shape's overlap must exceed every other shape's for the shape to be
 * known: a blob half-way between a circle and a square is neither.
 */
const SHAPE_MARGIN = 0.04;
/** Template centers are tried up to this many pixels from the blob's box center. */
const SEARCH_RADIUS = 3;
/** Shapes are fitted in boxes up to this many pixels wider or narrower than the blob's box. */
const SCALE_SLACK = 2;

/** Rows and columns of the cell grid. */
const GRID = 3;
/** Side of the image, copied out of the import once: the hot loops read it per pixel. */
const SIDE = IMAGE_SIZE;
const [WHITE_R, WHITE_G, WHITE_B] = BACKGROUND;
const BACKGROUND_LABEL = -1;

/** Direction from white to each palette color, in COLORS order. */
const COLOR_DIRECTIONS = COLORS.map((c): readonly [number, number, number] => {
  const [r, g, b] = PALETTE[c];
  return [r - WHITE_R, g - WHITE_G, b - WHITE_B];
});

interface Template {
  readonly shape: Shape;
  /** Side of the template's box in pixels; a world object's box is 2 * HALF_EXTENT[size]. */
  readonly side: number;
  /** Pixels inside the shape, as offsets from the box's top left corner (flat arrays for the hot loop). */
  readonly xs: Int32Array;
  readonly ys: Int32Array;
}

/** A shape drawn in a box of `side` pixels, with the same pixel rule as the renderer. */
function template(shape: Shape, side: number): Template {
  const half = side / 2;
  const xs: number[] = [];
  const ys: number[] = [];
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      if (!insideShape(shape, x + 0.5 - half, y + 0.5 - half, half)) continue;
      xs.push(x);
      ys.push(y);
    }
  }
  return { shape, side, xs: Int32Array.from(xs), ys: Int32Array.from(ys) };
}

/** Every shape in every box that fits the image, indexed [shape][side]. */
const TEMPLATES: Readonly<Record<Shape, readonly Template[]>> = {
  circle: range(0, SIDE).map((side) => template('circle', side)),
  square: range(0, SIDE).map((side) => template('square', side)),
  triangle: range(0, SIDE).map((side) => template('triangle', side)),
};

function templateOf(shape: Shape, side: number): Template {
  const t = TEMPLATES[shape][side];
  if (t === undefined) throw new RangeError(`no template of side ${side}`);
  return t;
}

/**
 * Reads the objects of a 64x64 world image.
 *
 * @example
 * const scene = { objects: [{ shape: 'circle', color: 'red', size: 'large', cell: 4 }] } as const;
 * detectionEquals(detect(render(scene)), scene); // true
 */
export function detect(image: RgbImage): Detection {
  if (image.width !== SIDE || image.height !== SIDE || image.data.length !== SIDE * SIDE * 3) {
    throw new RangeError(`the detector reads ${SIDE}x${SIDE} RGB images, got ${image.width}x${image.height}`);
  }
  const labels = labelPixels(image);
  const blobIds = new Int32Array(labels.length).fill(-1);
  const objects: DetectedObject[] = [];
  let id = 0;
  for (let start = 0; start < labels.length; start++) {
    if (labels[start] === BACKGROUND_LABEL || blobIds[start] !== -1) continue;
    const blob = floodFill(labels, blobIds, start, id);
    if (blob.length >= MIN_PIXELS) objects.push(readBlob(image, blob, id, labels, blobIds));
    id++;
  }
  return { objects: sortObjects(objects) };
}

/**
 * The scene a detection shows, or null when some object has an attribute that is
 * 'unknown': such an object is not a world object, so the image matches no scene or spec.
 * Two objects in one cell also give null: the world holds one object per cell, so such an
 * image is no scene of it, even for a prompt that leaves positions open.
 */
export function detectedScene(detection: Detection): Scene | null {
  const objects: SceneObject[] = [];
  for (const { shape, color, size, cell } of detection.objects) {
    if (shape === 'unknown' || color === 'unknown' || size === 'unknown') return null;
    if (objects.some((o) => o.cell === cell)) return null;
    objects.push({ shape, color, size, cell });
  }
  return { objects };
}

/**
 * What the detector saw, in words: `large blue square at the center; small ? circle at the
 * top` (`?` for an attribute no world value fits), or `nothing`.
 */
export function detectionText(detection: Detection): string {
  if (detection.objects.length === 0) return 'nothing';
  const word = (v: string) => (v === 'unknown' ? '?' : v);
  return detection.objects.map((o) => `${word(o.size)} ${word(o.color)} ${word(o.shape)} at the ${cellName(o.cell)}`).join('; ');
}

/** Whether the detected objects satisfy a spec one-to-one, with `satisfies` semantics. */
export function detectionMatches(detection: Detection, spec: SceneSpec): boolean {
  const scene = detectedScene(detection);
  return scene !== null && satisfies(scene, spec);
}

/** Whether the detected objects are exactly a scene's objects. */
export function detectionEquals(detection: Detection, scene: Scene): boolean {
  const detected = detectedScene(detection);
  return detected !== null && scenesEqual(detected, scene);
}

interface LinePoint {
  /** Index into COLORS of the nearest white-to-palette line. */
  readonly color: number;
  /** How far along that line, 0 (white) to 1 (the palette color). */
  readonly alpha: number;
  /** Euclidean distance from the line, 0..255 per channel. */
  readonly distance: number;
}

/** Places an RGB value on the nearest line from white to a palette color. */
function nearestLine(r: number, g: number, b: number): LinePoint {
  const p0 = r - WHITE_R;
  const p1 = g - WHITE_G;
  const p2 = b - WHITE_B;
  let best: LinePoint = { color: 0, alpha: 0, distance: Infinity };
  for (let color = 0; color < COLOR_DIRECTIONS.length; color++) {
    const [v0, v1, v2] = COLOR_DIRECTIONS[color] as readonly [number, number, number];
    const alpha = Math.min(1, Math.max(0, (p0 * v0 + p1 * v1 + p2 * v2) / (v0 * v0 + v1 * v1 + v2 * v2)));
    const distance = Math.hypot(p0 - alpha * v0, p1 - alpha * v1, p2 - alpha * v2);
    if (distance < best.distance) best = { color, alpha, distance };
  }
  return best;
}

/**
 * Pixels closer to white than this are background without a search: a pixel's position
 * along any line is at most its distance from white over the line's length.
 */
const SURE_BACKGROUND = FOREGROUND_ALPHA * Math.min(...COLOR_DIRECTIONS.map((v) => Math.hypot(...v)));

/** Per pixel: BACKGROUND_LABEL, or the index in COLORS of its nearest line. */
function labelPixels(image: RgbImage): Int8Array {
  const labels = new Int8Array(image.width * image.height);
  const d = image.data;
  for (let i = 0; i < labels.length; i++) {
    const r = d[i * 3] as number;
    const g = d[i * 3 + 1] as number;
    const b = d[i * 3 + 2] as number;
    if (Math.hypot(r - WHITE_R, g - WHITE_G, b - WHITE_B) < SURE_BACKGROUND) {
      labels[i] = BACKGROUND_LABEL;
      continue;
    }
    const { color, alpha } = nearestLine(r, g, b);
    labels[i] = alpha < FOREGROUND_ALPHA ? BACKGROUND_LABEL : color;
  }
  return labels;
}

/** Marks the 4-connected foreground blob holding `start` with `id`; returns its pixel indices. */
function floodFill(labels: Int8Array, blobIds: Int32Array, start: number, id: number): number[] {
  const blob: number[] = [];
  const stack = [start];
  blobIds[start] = id;
  while (stack.length > 0) {
    const i = stack.pop() as number;
    blob.push(i);
    const x = i % SIDE;
    const neighbors = [x > 0 ? i - 1 : -1, x < SIDE - 1 ? i + 1 : -1, i - SIDE, i + SIDE];
    for (const j of neighbors) {
      if (j < 0 || j >= labels.length || labels[j] === BACKGROUND_LABEL || blobIds[j] !== -1) continue;
      blobIds[j] = id;
      stack.push(j);
    }
  }
  return blob;
}

interface Fit {
  readonly template: Template;
  readonly iou: number;
  /** Center of the template's box, in pixel-edge coordinates (a cell center is 12, 32 or 52). */
  readonly x: number;
  readonly y: number;
}

function readBlob(
  image: RgbImage,
  blob: readonly number[],
  id: number,
  labels: Int8Array,
  blobIds: Int32Array,
): DetectedObject {
  const counts = new Array<number>(COLORS.length).fill(0);
  const sums = COLORS.map(() => [0, 0, 0]);
  let x0 = SIDE;
  let x1 = 0;
  let y0 = SIDE;
  let y1 = 0;
  for (const i of blob) {
    const label = labels[i] as number;
    counts[label] = (counts[label] as number) + 1;
    const sum = sums[label] as number[];
    for (let k = 0; k < 3; k++) sum[k] = (sum[k] as number) + (image.data[i * 3 + k] as number);
    const x = i % SIDE;
    const y = Math.floor(i / SIDE);
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  const top = counts.indexOf(Math.max(...counts));
  const [r, g, b] = (sums[top] as number[]).map((v) => v / (counts[top] as number)) as [number, number, number];
  const mean = nearestLine(r, g, b);
  const clear = (counts[top] as number) >= COLOR_MAJORITY * blob.length && mean.color === top;
  const color = clear && mean.distance <= MAX_COLOR_DISTANCE ? (COLORS[top] as Color) : 'unknown';

  // The shape is judged at any scale near the blob's, so that a square a little too small
  // reads as a square of unknown size rather than as the circle it happens to overlap more.
  const boxX = (x0 + x1 + 1) / 2;
  const boxY = (y0 + y1 + 1) / 2;
  const side = Math.max(x1 - x0, y1 - y0) + 1;
  const fit = (t: Template): Fit => bestPlacement(t, blob.length, blobIds, id, boxX, boxY);
  const scales = range(Math.max(1, side - SCALE_SLACK), Math.min(SIDE, side + SCALE_SLACK));
  const fits = SHAPES.map((shape) => scales.map((n) => fit(templateOf(shape, n))).reduce(better));
  const best = fits.reduce(better);
  const rival = Math.max(...fits.filter((f) => f !== best).map((f) => f.iou));
  const shaped = best.iou >= MIN_IOU;
  const [size, sizeFit] = SIZES.map((s) => [s, fit(templateOf(best.template.shape, 2 * HALF_EXTENT[s]))] as const)
    .reduce((a, b) => (b[1].iou > a[1].iou ? b : a));
  return {
    shape: shaped && best.iou - rival >= SHAPE_MARGIN ? best.template.shape : 'unknown',
    color,
    size: sizeFit.iou >= MIN_IOU ? size : 'unknown',
    cell: shaped ? nearestCell(best.x, best.y) : nearestCell(boxX, boxY),
    pixels: blob.length,
  };
}

function better(a: Fit, b: Fit): Fit {
  return b.iou > a.iou ? b : a;
}

/** The integers from..to, inclusive. */
function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The placement of `t` with its center near (x, y) that overlaps blob `id` most. */
function bestPlacement(t: Template, blobSize: number, blobIds: Int32Array, id: number, x: number, y: number): Fit {
  const left = Math.round(x - t.side / 2);
  const top = Math.round(y - t.side / 2);
  let best: Fit = { template: t, iou: 0, x, y };
  for (let ty = top - SEARCH_RADIUS; ty <= top + SEARCH_RADIUS; ty++) {
    for (let tx = left - SEARCH_RADIUS; tx <= left + SEARCH_RADIUS; tx++) {
      let overlap = 0;
      for (let k = 0; k < t.xs.length; k++) {
        const px = tx + (t.xs[k] as number);
        const py = ty + (t.ys[k] as number);
        if (px >= 0 && px < SIDE && py >= 0 && py < SIDE && blobIds[py * SIDE + px] === id) overlap++;
      }
      const iou = overlap / (t.xs.length + blobSize - overlap);
      if (iou > best.iou) best = { template: t, iou, x: tx + t.side / 2, y: ty + t.side / 2 };
    }
  }
  return best;
}

function nearestCell(x: number, y: number): Cell {
  const nearest = (v: number): number => {
    let index = 0;
    for (let i = 1; i < GRID; i++) if (Math.abs(cellCenter(i) - v) < Math.abs(cellCenter(index) - v)) index = i;
    return index;
  };
  return nearest(y) * GRID + nearest(x);
}
