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
 * is the color of a clear majority of its pixels, provided their mean is near that color;
 * its shape and size come from the rendered template that overlaps it best (intersection
 * over union), provided no other shape comes close; its cell from where that template sits.
 */
import type { RgbImage } from '../../functions/core/image.ts';
import { BACKGROUND, HALF_EXTENT, IMAGE_SIZE, PALETTE, cellCenter, insideShape } from './render.ts';
import {
  COLORS, SHAPES, SIZES, satisfies, scenesEqual, sortObjects,
  type Cell, type Color, type Scene, type SceneObject, type SceneSpec, type Shape, type Size,
} from './scene.ts';

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
 * Least overlap (IoU) with the best template for its size to be known. Above the overlap of
 * a circle with the square of its size (0.81) and far above a 12-pixel-wide square's overlap
 * with either size (at most 0.56).
 */
const MIN_IOU = 0.85;
/**
 * How far the best shape's overlap must exceed every other shape's for the shape to be
 * known: a blob half-way between a circle and a square is neither.
 */
const SHAPE_MARGIN = 0.04;
/** Template centers are tried up to this many pixels from the blob's box center. */
const SEARCH_RADIUS = 3;

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
  readonly size: Size;
  readonly half: number;
  /** Pixel offsets (x, y) inside the shape's box, measured from the box's top left corner. */
  readonly offsets: readonly (readonly [number, number])[];
}

/** Every shape at every size, with the same pixel rule as the renderer. */
const TEMPLATES: readonly Template[] = SHAPES.flatMap((shape) =>
  SIZES.map((size): Template => {
    const half = HALF_EXTENT[size];
    const offsets: [number, number][] = [];
    for (let y = 0; y < 2 * half; y++) {
      for (let x = 0; x < 2 * half; x++) {
        if (insideShape(shape, x + 0.5 - half, y + 0.5 - half, half)) offsets.push([x, y]);
      }
    }
    return { shape, size, half, offsets };
  }),
);

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
 * Two objects may share a cell, as a generated image may draw them.
 */
export function detectedScene(detection: Detection): Scene | null {
  const objects: SceneObject[] = [];
  for (const { shape, color, size, cell } of detection.objects) {
    if (shape === 'unknown' || color === 'unknown' || size === 'unknown') return null;
    objects.push({ shape, color, size, cell });
  }
  return { objects };
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

/** Per pixel: BACKGROUND_LABEL, or the index in COLORS of its nearest line. */
function labelPixels(image: RgbImage): Int8Array {
  const labels = new Int8Array(image.width * image.height);
  const d = image.data;
  for (let i = 0; i < labels.length; i++) {
    const { color, alpha } = nearestLine(d[i * 3] as number, d[i * 3 + 1] as number, d[i * 3 + 2] as number);
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

function readBlob(image: RgbImage, blob: readonly number[], id: number, labels: Int8Array, blobIds: Int32Array): DetectedObject {
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
  const clear = (counts[top] as number) >= COLOR_MAJORITY * blob.length && mean.color === top && mean.distance <= MAX_COLOR_DISTANCE;
  const color = clear ? (COLORS[top] as Color) : 'unknown';

  const centerX = Math.round((x0 + x1 + 1) / 2);
  const centerY = Math.round((y0 + y1 + 1) / 2);
  const fits = TEMPLATES.map((t) => bestPlacement(t, blob.length, blobIds, id, centerX, centerY));
  const best = fits.reduce((a, b) => (b.iou > a.iou ? b : a));
  const rival = Math.max(...fits.filter((f) => f.template.shape !== best.template.shape).map((f) => f.iou));
  const sized = best.iou >= MIN_IOU;
  return {
    shape: sized && best.iou - rival >= SHAPE_MARGIN ? best.template.shape : 'unknown',
    color,
    size: sized ? best.template.size : 'unknown',
    cell: nearestCell(sized ? best.x : (x0 + x1 + 1) / 2, sized ? best.y : (y0 + y1 + 1) / 2),
    pixels: blob.length,
  };
}

/** The template position near (centerX, centerY) that overlaps blob `id` most. */
function bestPlacement(t: Template, blobSize: number, blobIds: Int32Array, id: number, centerX: number, centerY: number): Fit {
  let best: Fit = { template: t, iou: 0, x: centerX, y: centerY };
  for (let cy = centerY - SEARCH_RADIUS; cy <= centerY + SEARCH_RADIUS; cy++) {
    for (let cx = centerX - SEARCH_RADIUS; cx <= centerX + SEARCH_RADIUS; cx++) {
      let overlap = 0;
      for (const [dx, dy] of t.offsets) {
        const x = cx - t.half + dx;
        const y = cy - t.half + dy;
        if (x >= 0 && x < SIDE && y >= 0 && y < SIDE && blobIds[y * SIDE + x] === id) overlap++;
      }
      const iou = overlap / (t.offsets.length + blobSize - overlap);
      if (iou > best.iou) best = { template: t, iou, x: cx, y: cy };
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
