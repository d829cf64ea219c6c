/**
 * What edits and questions mean: applying an edit to a scene, answering a question about one.
 */
import { describe, NUMBER_WORDS, resolveRef, WorldError, type Edit, type Question } from '../../functions/world/language.ts';
import { cellName, MAX_OBJECTS, objectsEqual, sortObjects, type ObjectSpec, type Scene, type SceneSpec } from '../../functions/world/scene.ts';

/**
 * The scene an edit asks for, as a spec: the untouched objects complete, an added object
 * with only what the instruction states. Throws WorldError when the edit does not fit the
 * scene (no or several objects match the reference, the target cell is taken, the scene is full).
 */
export function applyEdit(scene: Scene, edit: Edit): SceneSpec {
  if (edit.kind === 'add') {
    if (scene.objects.length >= MAX_OBJECTS) throw new WorldError(`the image already holds ${MAX_OBJECTS} objects`);
    const cell = edit.object.cell;
    if (cell !== undefined && scene.objects.some((o) => o.cell === cell)) {
      throw new WorldError(`the ${cellName(cell)} is already taken`);
    }
    return { objects: [...scene.objects, edit.object] };
  }
  const target = resolveRef(scene, edit.ref);
  const others = scene.objects.filter((o) => !objectsEqual(o, target));
  let changed: ObjectSpec | undefined;
  switch (edit.kind) {
    case 'remove':
      if (others.length === 0) throw new WorldError('cannot remove the only object');
      break;
    case 'recolor':
      changed = { ...target, color: edit.color };
      break;
    case 'resize':
      changed = { ...target, size: edit.size };
      break;
    case 'move':
      if (others.some((o) => o.cell === edit.cell)) throw new WorldError(`the ${cellName(edit.cell)} is already taken`);
      changed = { ...target, cell: edit.cell };
      break;
  }
  return { objects: sortObjects(changed ? [...others, changed] : others) };
}

/** The answer to a question, in the words the grammar uses. */
export function answerQuestion(scene: Scene, q: Question): string {
  switch (q.kind) {
    case 'color':
      return resolveRef(scene, q.ref).color;
    case 'size':
      return resolveRef(scene, q.ref).size;
    case 'position':
      return cellName(resolveRef(scene, q.ref).cell);
    case 'shape': {
      const hit = scene.objects.find((o) => o.cell === q.cell);
      if (!hit) throw new WorldError(`nothing is at the ${cellName(q.cell)}`);
      return hit.shape;
    }
    case 'count': {
      const n = scene.objects.filter(
        (o) => (q.color === undefined || o.color === q.color) && (q.shape === undefined || o.shape === q.shape),
      ).length;
      return NUMBER_WORDS[n] as string;
    }
    case 'describe':
      return describe(scene);
  }
}
