/**
 * The language of the shapes world, generated from scenes and parsed back.
 *
 * Grammar (words are lower case; "," and "?" are words):
 *   caption     := phrase ((',' | 'and') phrase)*
 *   phrase      := ('a' | 'an') [size] [color] shape [where]
 *                | ('two' | 'three') [size] [color] shapes          (counting)
 *   where       := ('at' | 'on' | 'in') 'the' cell
 *   ref         := 'the' [size] [color] shape [where]
 *   instruction := 'make' ref color | 'make' ref size | 'move' ref 'to' 'the' cell
 *                | 'remove' ref | 'add' phrase(singular)
 *   question    := 'what' 'color' 'is' ref '?' | 'what' 'size' 'is' ref '?'
 *                | 'what' 'shape' 'is' where '?' | 'where' 'is' ref '?'
 *                | 'how' 'many' [color] ('shapes' | shapes) 'are' 'there' '?'
 *                | 'describe' 'the' 'image'
 * A word outside this vocabulary, or a word out of place, is a GrammarError naming the
 * word and its 1-based position.
 */
import { joinWords, splitWords } from '../tokenizers/words.ts';
import {
  CELLS, COLORS, SHAPES, SIZES, isComplete, satisfies, sortObjects,
  type Cell, type Color, type ObjectSpec, type Scene, type SceneObject, type SceneSpec, type Shape, type Size,
} from './scene.ts';

export const NUMBER_WORDS = ['zero', 'one', 'two', 'three'] as const;
const PLURALS: Readonly<Record<Shape, string>> = { circle: 'circles', square: 'squares', triangle: 'triangles' };

/** Preposition used before each cell in captions: "at the top left", "on the left", "in the center". */
function preposition(cell: Cell): 'at' | 'on' | 'in' {
  const name = CELLS[cell] ?? '';
  if (name === 'center') return 'in';
  if (name === 'left' || name === 'right') return 'on';
  return 'at';
}

/** Every word the grammar can produce or accept, in a fixed order (the text vocabulary). */
export const WORDS: readonly string[] = [
  ...new Set([
    'a', 'an', 'the', 'and', ',', '?', 'at', 'on', 'in', 'to',
    ...NUMBER_WORDS,
    ...SIZES, ...COLORS, ...SHAPES, ...Object.values(PLURALS), 'shapes',
    ...CELLS.flatMap((c) => c.split(' ')),
    'make', 'move', 'remove', 'add',
    'what', 'color', 'size', 'shape', 'is', 'where', 'how', 'many', 'are', 'there', 'describe', 'image',
  ]),
];
const KNOWN = new Set(WORDS);

export class GrammarError extends Error {
  override readonly name = 'GrammarError';
  constructor(
    message: string,
    /** The offending word, or '' at the end of the text. */
    readonly word: string,
    /** 1-based position of the word in the text; length + 1 at the end. */
    readonly position: number,
    readonly text: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------
// Generation

function article(next: string): 'a' | 'an' {
  return /^[aeiou]/.test(next) ? 'an' : 'a';
}

export function wherePhrase(cell: Cell): string[] {
  return [preposition(cell), 'the', ...(CELLS[cell] ?? '').split(' ')];
}

/** Words of one object phrase with the attributes a spec states: "a small red circle at the top". */
export function objectPhrase(o: ObjectSpec): string[] {
  const body = [...(o.size ? [o.size] : []), ...(o.color ? [o.color] : []), o.shape];
  return [article(body[0] as string), ...body, ...(o.cell !== undefined ? wherePhrase(o.cell) : [])];
}

/** Words of a reference to an object: "the red circle". */
export function refPhrase(o: ObjectSpec): string[] {
  return ['the', ...objectPhrase(o).slice(1)];
}

/** Joins phrases as "p1 , p2 and p3". */
function listPhrases(phrases: readonly string[][]): string[] {
  const out: string[] = [];
  phrases.forEach((p, i) => {
    if (i > 0) out.push(i === phrases.length - 1 ? 'and' : ',');
    out.push(...p);
  });
  return out;
}

/**
 * Words of a caption for a spec. Objects are listed in the given order; counting specs
 * (equal, position-free objects) may be written as "two green triangles".
 */
export function specWords(spec: SceneSpec, options: { counting?: boolean } = {}): string[] {
  const objs = spec.objects;
  const first = objs[0];
  if (options.counting && first && objs.length > 1 && first.cell === undefined &&
      objs.every((o) => o.shape === first.shape && o.color === first.color && o.size === first.size && o.cell === undefined)) {
    return [
      NUMBER_WORDS[objs.length] as string,
      ...(first.size ? [first.size] : []), ...(first.color ? [first.color] : []), PLURALS[first.shape],
    ];
  }
  return listPhrases(objs.map(objectPhrase));
}

/** The canonical full caption of a scene (objects in cell order); also the answer to "describe the image". */
export function describe(scene: Scene): string {
  return joinWords(specWords({ objects: sortObjects(scene.objects) }));
}

// ---------------------------------------------------------------------------------------
// Parsing

class Reader {
  readonly words: string[];
  pos = 0;
  constructor(readonly text: string) {
    this.words = splitWords(text);
    this.words.forEach((w, i) => {
      if (!KNOWN.has(w)) throw new GrammarError(`unknown word "${w}" at position ${i + 1} in "${text}"`, w, i + 1, text);
    });
  }
  peek(): string | undefined {
    return this.words[this.pos];
  }
  done(): boolean {
    return this.pos >= this.words.length;
  }
  fail(expected: string): never {
    const w = this.peek();
    if (w === undefined) {
      throw new GrammarError(`expected ${expected} at the end of "${this.text}"`, '', this.pos + 1, this.text);
    }
    throw new GrammarError(`expected ${expected} but found "${w}" at position ${this.pos + 1} in "${this.text}"`, w, this.pos + 1, this.text);
  }
  accept(...options: string[]): string | undefined {
    const w = this.peek();
    if (w !== undefined && options.includes(w)) {
      this.pos++;
      return w;
    }
    return undefined;
  }
  expect(...options: string[]): string {
    return this.accept(...options) ?? this.fail(options.map((o) => `"${o}"`).join(' or '));
  }
  end(): void {
    if (!this.done()) this.fail('the end of the sentence');
  }
}

function readOf<T extends string>(r: Reader, options: readonly T[]): T | undefined {
  return r.accept(...options) as T | undefined;
}

/** cell := one of the nine cell names ("top left", "top", ..., "bottom right"). */
function readCell(r: Reader): Cell {
  const row = r.accept('top', 'bottom');
  const col = r.accept('left', 'right');
  if (row === undefined && col === undefined) {
    if (r.accept('center')) return 4;
    r.fail('a position (top, bottom, left, right or center)');
  }
  const rowIndex = row === 'top' ? 0 : row === 'bottom' ? 2 : 1;
  const colIndex = col === 'left' ? 0 : col === 'right' ? 2 : 1;
  return rowIndex * 3 + colIndex;
}

function readWhere(r: Reader): Cell | undefined {
  if (!r.accept('at', 'on', 'in')) return undefined;
  r.expect('the');
  return readCell(r);
}

function readShape(r: Reader): Shape {
  return readOf(r, SHAPES) ?? r.fail('a shape (circle, square or triangle)');
}

function spec(shape: Shape, size: Size | undefined, color: Color | undefined, cell: Cell | undefined): ObjectSpec {
  return { shape, ...(size ? { size } : {}), ...(color ? { color } : {}), ...(cell !== undefined ? { cell } : {}) };
}

/** phrase := ('a'|'an') [size] [color] shape [where] | ('two'|'three') [size] [color] shapes */
function readPhrase(r: Reader, allowPlural: boolean): ObjectSpec[] {
  const det = allowPlural ? r.accept('a', 'an', 'one', 'two', 'three') : r.accept('a', 'an');
  if (det === undefined) r.fail(allowPlural ? '"a", "an", "two" or "three"' : '"a" or "an"');
  const size = readOf(r, SIZES);
  const color = readOf(r, COLORS);
  if (det === 'two' || det === 'three') {
    const plural = r.accept(...Object.values(PLURALS));
    if (plural === undefined) r.fail('a plural shape (circles, squares or triangles)');
    const shape = SHAPES.find((s) => PLURALS[s] === plural) as Shape;
    const one = spec(shape, size, color, undefined);
    return det === 'two' ? [one, one] : [one, one, one];
  }
  const shape = readShape(r);
  return [spec(shape, size, color, readWhere(r))];
}

/** ref := 'the' [size] [color] shape [where] */
function readRef(r: Reader): ObjectSpec {
  r.expect('the');
  const size = readOf(r, SIZES);
  const color = readOf(r, COLORS);
  const shape = readShape(r);
  return spec(shape, size, color, readWhere(r));
}

/**
 * Parses a caption or text-to-image prompt into the spec it states.
 *
 * @example
 * parseCaption('two green triangles') // two specs {shape:'triangle', color:'green'}
 */
export function parseCaption(text: string): SceneSpec {
  const r: Reader = new Reader(text);
  const objects: ObjectSpec[] = [...readPhrase(r, true)];
  while (r.accept(',', 'and')) objects.push(...readPhrase(r, true));
  r.end();
  return { objects };
}

/** `parseCaption`, with null for text outside the grammar. */
function readCaption(text: string): SceneSpec | null {
  try {
    return parseCaption(text);
  } catch (e) {
    if (e instanceof GrammarError) return null;
    throw e;
  }
}

/**
 * The scene a caption states in full: every object with its size, colour and cell, no two
 * objects in one cell. Null for text that is not such a caption (outside the grammar, an
 * attribute left open), as an answer to "describe the image" may be.
 *
 * @example
 * sceneOfCaption('a small red circle in the center')  // { objects: [{ shape: 'circle', color: 'red', size: 'small', cell: 4 }] }
 * sceneOfCaption('a red circle')                       // null
 */
export function sceneOfCaption(text: string): Scene | null {
  const spec = readCaption(text);
  if (spec === null) return null;
  const objects = spec.objects.filter((o) => isComplete(o));
  if (objects.length !== spec.objects.length || new Set(objects.map((o) => o.cell)).size !== objects.length) return null;
  return { objects };
}

/**
 * Reads a text-to-image prompt for checking what was drawn: a test of a full caption of the
 * image (the model's own description of it) against the prompt, GenEval-style (nothing
 * missing, nothing extra). Null when the prompt is outside the grammar.
 *
 * @example
 * captionCheck('two green triangles')?.('a small green triangle at the top and a large green triangle on the left')  // true
 */
export function captionCheck(prompt: string): ((caption: string) => boolean) | null {
  const spec = readCaption(prompt);
  if (spec === null) return null;
  return (caption) => {
    const seen = sceneOfCaption(caption);
    return seen !== null && satisfies(seen, spec);
  };
}

export type Edit =
  | { readonly kind: 'recolor'; readonly ref: ObjectSpec; readonly color: Color }
  | { readonly kind: 'resize'; readonly ref: ObjectSpec; readonly size: Size }
  | { readonly kind: 'move'; readonly ref: ObjectSpec; readonly cell: Cell }
  | { readonly kind: 'remove'; readonly ref: ObjectSpec }
  | { readonly kind: 'add'; readonly object: ObjectSpec };

export type EditKind = Edit['kind'];
export const EDIT_KINDS: readonly EditKind[] = ['recolor', 'move', 'remove', 'add', 'resize'];

export function parseInstruction(text: string): Edit {
  const r: Reader = new Reader(text);
  const verb = r.expect('make', 'move', 'remove', 'add');
  let edit: Edit;
  if (verb === 'make') {
    const ref = readRef(r);
    const color = readOf(r, COLORS);
    const size = color ? undefined : readOf(r, SIZES);
    if (color) edit = { kind: 'recolor', ref, color };
    else if (size) edit = { kind: 'resize', ref, size };
    else r.fail('a color or a size');
  } else if (verb === 'move') {
    const ref = readRef(r);
    r.expect('to');
    r.expect('the');
    edit = { kind: 'move', ref, cell: readCell(r) };
  } else if (verb === 'remove') {
    edit = { kind: 'remove', ref: readRef(r) };
  } else {
    edit = { kind: 'add', object: readPhrase(r, false)[0] as ObjectSpec };
  }
  r.end();
  return edit;
}

export function instructionText(edit: Edit): string {
  switch (edit.kind) {
    case 'recolor':
      return joinWords(['make', ...refPhrase(edit.ref), edit.color]);
    case 'resize':
      return joinWords(['make', ...refPhrase(edit.ref), edit.size]);
    case 'move':
      return joinWords(['move', ...refPhrase(edit.ref), 'to', 'the', ...(CELLS[edit.cell] ?? '').split(' ')]);
    case 'remove':
      return joinWords(['remove', ...refPhrase(edit.ref)]);
    case 'add':
      return joinWords(['add', ...objectPhrase(edit.object)]);
  }
}

export type Question =
  | { readonly kind: 'color'; readonly ref: ObjectSpec }
  | { readonly kind: 'size'; readonly ref: ObjectSpec }
  | { readonly kind: 'shape'; readonly cell: Cell }
  | { readonly kind: 'position'; readonly ref: ObjectSpec }
  | { readonly kind: 'count'; readonly color?: Color; readonly shape?: Shape }
  | { readonly kind: 'describe' };

export type QuestionKind = Question['kind'];
export const QUESTION_KINDS: readonly QuestionKind[] = ['color', 'shape', 'size', 'count', 'position', 'describe'];

export function parseQuestion(text: string): Question {
  const r: Reader = new Reader(text);
  const first = r.expect('what', 'where', 'how', 'describe');
  let q: Question;
  if (first === 'what') {
    const attr = r.expect('color', 'size', 'shape') as 'color' | 'size' | 'shape';
    r.expect('is');
    if (attr === 'shape') {
      const cell = readWhere(r);
      if (cell === undefined) r.fail('"at", "on" or "in"');
      q = { kind: 'shape', cell };
    } else {
      q = { kind: attr, ref: readRef(r) };
    }
    r.expect('?');
  } else if (first === 'where') {
    r.expect('is');
    q = { kind: 'position', ref: readRef(r) };
    r.expect('?');
  } else if (first === 'how') {
    r.expect('many');
    const color = readOf(r, COLORS);
    const noun = r.expect('shapes', ...Object.values(PLURALS));
    const shape = SHAPES.find((s) => PLURALS[s] === noun);
    r.expect('are');
    r.expect('there');
    r.expect('?');
    q = { kind: 'count', ...(color ? { color } : {}), ...(shape ? { shape } : {}) };
  } else {
    r.expect('the');
    r.expect('image');
    r.accept('?');
    q = { kind: 'describe' };
  }
  r.end();
  return q;
}

export function questionText(q: Question): string {
  switch (q.kind) {
    case 'color':
    case 'size':
      return joinWords(['what', q.kind, 'is', ...refPhrase(q.ref), '?']);
    case 'shape':
      return joinWords(['what', 'shape', 'is', ...wherePhrase(q.cell), '?']);
    case 'position':
      return joinWords(['where', 'is', ...refPhrase(q.ref), '?']);
    case 'count':
      return joinWords(['how', 'many', ...(q.color ? [q.color] : []), q.shape ? PLURALS[q.shape] : 'shapes', 'are', 'there', '?']);
    case 'describe':
      return 'describe the image';
  }
}

/** Finds the one object a reference names, or explains why there is not exactly one. */
export function resolveRef(scene: Scene, ref: ObjectSpec): SceneObject {
  const hits = scene.objects.filter(
    (o) => o.shape === ref.shape && (ref.color === undefined || o.color === ref.color) &&
      (ref.size === undefined || o.size === ref.size) && (ref.cell === undefined || o.cell === ref.cell),
  );
  const words = joinWords(refPhrase(ref));
  if (hits.length === 0) throw new WorldError(`no object in the image is ${words}`);
  if (hits.length > 1) throw new WorldError(`${words} is ambiguous: ${hits.length} objects match`);
  return hits[0] as SceneObject;
}

/** A sentence that parses but does not fit the scene it is applied to. */
export class WorldError extends Error {
  override readonly name = 'WorldError';
}
