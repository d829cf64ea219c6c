/**
 * The shapes world: scenes of 1-3 objects on a 3x3 grid, one object per cell.
 *
 * A `Scene` is complete (every attribute known, as rendered). A `SceneSpec` is what a
 * sentence states: the shape of each object is always given, the other attributes may be
 * left open. `fillSpec` draws the open attributes from a seed; `satisfies` checks a scene
 * against a spec, which is how every score in the world is computed.
 */
import { Rng } from '../core/rng.ts';

export const SHAPES = ['circle', 'square', 'triangle'] as const;
export const COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] as const;
export const SIZES = ['small', 'large'] as const;
/** Cells in row-major order; the index of a cell is row * 3 + column. */
export const CELLS = [
  'top left', 'top', 'top right',
  'left', 'center', 'right',
  'bottom left', 'bottom', 'bottom right',
] as const;

export type Shape = (typeof SHAPES)[number];
export type Color = (typeof COLORS)[number];
export type Size = (typeof SIZES)[number];
/** Index into CELLS, 0..8. */
export type Cell = number;

export interface SceneObject {
  readonly shape: Shape;
  readonly color: Color;
  readonly size: Size;
  readonly cell: Cell;
}

export interface Scene {
  readonly objects: readonly SceneObject[];
}

/** An object as a sentence states it: shape always, the rest possibly open. */
export interface ObjectSpec {
  readonly shape: Shape;
  readonly color?: Color;
  readonly size?: Size;
  readonly cell?: Cell;
}

export interface SceneSpec {
  readonly objects: readonly ObjectSpec[];
}

export const MAX_OBJECTS = 3;

export function cellName(cell: Cell): string {
  const name = CELLS[cell];
  if (name === undefined) throw new RangeError(`cell ${cell} is outside 0..8`);
  return name;
}

/** Canonical order of objects: by cell. Two scenes are equal iff their sorted lists are. */
export function sortObjects<T extends { cell?: Cell }>(objects: readonly T[]): T[] {
  return objects.slice().sort((a, b) => (a.cell ?? 99) - (b.cell ?? 99));
}

export function objectsEqual(a: SceneObject, b: SceneObject): boolean {
  return a.shape === b.shape && a.color === b.color && a.size === b.size && a.cell === b.cell;
}

export function scenesEqual(a: Scene, b: Scene): boolean {
  if (a.objects.length !== b.objects.length) return false;
  const sa = sortObjects(a.objects);
  const sb = sortObjects(b.objects);
  return sa.every((o, i) => objectsEqual(o, sb[i] as SceneObject));
}

/** Whether one object meets one spec's stated attributes. */
export function objectMatches(o: SceneObject, spec: ObjectSpec): boolean {
  return (
    o.shape === spec.shape &&
    (spec.color === undefined || o.color === spec.color) &&
    (spec.size === undefined || o.size === spec.size) &&
    (spec.cell === undefined || o.cell === spec.cell)
  );
}

/**
 * Whether a scene satisfies a spec: a one-to-one assignment of objects to specs exists,
 * with no object left over (GenEval-style: nothing missing, nothing extra).
 */
export function satisfies(scene: Scene, spec: SceneSpec): boolean {
  const objs = scene.objects;
  const specs = spec.objects;
  if (objs.length !== specs.length) return false;
  const used = new Array<boolean>(objs.length).fill(false);
  const assign = (i: number): boolean => {
    if (i === specs.length) return true;
    const s = specs[i] as ObjectSpec;
    for (let j = 0; j < objs.length; j++) {
      if (used[j] || !objectMatches(objs[j] as SceneObject, s)) continue;
      used[j] = true;
      if (assign(i + 1)) return true;
      used[j] = false;
    }
    return false;
  };
  return assign(0);
}

/** The spec that states everything about a scene. */
export function specOf(scene: Scene): SceneSpec {
  return { objects: scene.objects.map((o) => ({ ...o })) };
}

export function isComplete(spec: ObjectSpec): spec is SceneObject {
  return spec.color !== undefined && spec.size !== undefined && spec.cell !== undefined;
}

/**
 * Draws the unstated attributes of a spec. Stated cells are kept; open cells are drawn
 * from the free ones. Throws if the spec cannot be a scene (too many objects, two objects
 * in one cell).
 */
export function fillSpec(spec: SceneSpec, rng: Rng): Scene {
  if (spec.objects.length < 1 || spec.objects.length > MAX_OBJECTS) {
    throw new RangeError(`a scene holds 1 to ${MAX_OBJECTS} objects, this one states ${spec.objects.length}`);
  }
  const taken = new Set<Cell>();
  for (const o of spec.objects) {
    if (o.cell === undefined) continue;
    if (taken.has(o.cell)) throw new RangeError(`two objects are placed at the ${cellName(o.cell)}`);
    taken.add(o.cell);
  }
  const free = rng.shuffle([...CELLS.keys()].filter((c) => !taken.has(c)));
  const objects = spec.objects.map((o): SceneObject => ({
    shape: o.shape,
    color: o.color ?? rng.pick(COLORS),
    size: o.size ?? rng.pick(SIZES),
    cell: o.cell ?? (free.pop() as Cell),
  }));
  return { objects: sortObjects(objects) };
}

/** A random scene of 1..MAX_OBJECTS objects. */
export function sampleScene(rng: Rng, count: number = 1 + rng.int(MAX_OBJECTS)): Scene {
  const cells = rng.shuffle([...CELLS.keys()]).slice(0, count);
  return {
    objects: sortObjects(
      cells.map((cell) => ({ shape: rng.pick(SHAPES), color: rng.pick(COLORS), size: rng.pick(SIZES), cell })),
    ),
  };
}
