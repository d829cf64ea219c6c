/**
 * Evaluation cases: generated per category from a seed, or read from JSONL.
 *
 * A case is only sentences (`{"task":"t2i","prompt":…}`, `{"task":"edit","source":…,
 * "instruction":…}`, `{"task":"answer","source":…,"question":…}`); what counts as a correct
 * result is derived from them by the world, never stored. `resolveCase` turns a case into
 * concrete scenes using a seed for whatever the sentences leave open.
 */
import { z } from 'zod';
import { Rng } from '../../functions/core/rng.ts';
import { splitWords } from '../../functions/tokenizers/words.ts';
import {
  EDIT_KINDS, GrammarError, instructionText, parseCaption, parseInstruction, parseQuestion,
  QUESTION_KINDS, questionText, specWords, describe, WorldError,
  type Edit, type EditKind, type Question, type QuestionKind,
} from '../../functions/world/language.ts';
import { joinWords } from '../../functions/tokenizers/words.ts';
import { answerQuestion, applyEdit } from './semantics.ts';
import {
  CELLS, COLORS, fillSpec, MAX_OBJECTS, sampleScene, SHAPES, SIZES,
  type ObjectSpec, type Scene, type SceneObject, type SceneSpec,
} from '../../functions/world/scene.ts';

export const TASKS = ['t2i', 'edit', 'answer'] as const;
export type Task = (typeof TASKS)[number];

/** GenEval-style text-to-image categories. */
export const T2I_CATEGORIES = ['single_object', 'two_objects', 'counting', 'colors', 'position', 'color_attribution'] as const;
export type T2iCategory = (typeof T2I_CATEGORIES)[number];

export const CATEGORIES: Readonly<Record<Task, readonly string[]>> = {
  t2i: T2I_CATEGORIES,
  edit: EDIT_KINDS,
  answer: QUESTION_KINDS,
};

export const caseSchema = z.discriminatedUnion('task', [
  z.object({ task: z.literal('t2i'), prompt: z.string().min(1) }).strict(),
  z.object({ task: z.literal('edit'), source: z.string().min(1), instruction: z.string().min(1) }).strict(),
  z.object({ task: z.literal('answer'), source: z.string().min(1), question: z.string().min(1) }).strict(),
]);
export type EvalCase = z.infer<typeof caseSchema>;

/** A case made concrete: the scenes involved and what a correct result must satisfy. */
export type ResolvedCase = { readonly seed: number } & (
  | { readonly task: 't2i'; readonly case: EvalCase; readonly category: string; readonly expected: SceneSpec; readonly reference: Scene }
  | {
      readonly task: 'edit'; readonly case: EvalCase; readonly category: string; readonly source: Scene;
      readonly edit: Edit; readonly expected: SceneSpec; readonly reference: Scene;
    }
  | {
      readonly task: 'answer'; readonly case: EvalCase; readonly category: string; readonly source: Scene;
      readonly question: Question; readonly expected: string;
    }
);

/** The category a text-to-image prompt belongs to, from what it states. */
export function t2iCategory(prompt: string, spec: SceneSpec = parseCaption(prompt)): T2iCategory {
  const words = splitWords(prompt);
  if (words.includes('two') || words.includes('three')) return 'counting';
  if (spec.objects.some((o) => o.cell !== undefined)) return 'position';
  if (spec.objects.length >= 2) return spec.objects.some((o) => o.color !== undefined) ? 'color_attribution' : 'two_objects';
  return spec.objects[0]?.color !== undefined ? 'colors' : 'single_object';
}

/**
 * Turns a case into scenes, drawing unstated attributes from `seed`. Throws GrammarError
 * for words outside the grammar and WorldError when an edit or question does not fit its
 * source scene.
 */
export function resolveCase(c: EvalCase, seed: number): ResolvedCase {
  const rng = new Rng(seed);
  switch (c.task) {
    case 't2i': {
      const expected = parseCaption(c.prompt);
      return { seed, task: 't2i', case: c, category: t2iCategory(c.prompt, expected), expected, reference: fillSpec(expected, rng) };
    }
    case 'edit': {
      const source = fillSpec(parseCaption(c.source), rng);
      const edit = parseInstruction(c.instruction);
      const expected = applyEdit(source, edit);
      return { seed, task: 'edit', case: c, category: edit.kind, source, edit, expected, reference: fillSpec(expected, rng) };
    }
    case 'answer': {
      const source = fillSpec(parseCaption(c.source), rng);
      const question = parseQuestion(c.question);
      return { seed, task: 'answer', case: c, category: question.kind, source, question, expected: answerQuestion(source, question) };
    }
  }
}

/**
 * Reads a JSONL file of cases. Each bad line is an error naming its line number: invalid
 * JSON, a wrong shape, or a sentence outside the grammar (naming the word).
 */
export function parseCasesJsonl(text: string, seed: number): ResolvedCase[] {
  const out: ResolvedCase[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `line ${i + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new CaseFileError(`${where}: not valid JSON (${(e as Error).message})`);
    }
    const parsed = caseSchema.safeParse(json);
    if (!parsed.success) throw new CaseFileError(`${where}: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
    try {
      out.push(resolveCase(parsed.data, seed + i));
    } catch (e) {
      if (e instanceof GrammarError || e instanceof WorldError || e instanceof RangeError) {
        throw new CaseFileError(`${where}: ${e.message}`);
      }
      throw e;
    }
  });
  return out;
}

export class CaseFileError extends Error {
  override readonly name = 'CaseFileError';
}

// ---------------------------------------------------------------------------------------
// Generation

function objectSpec(o: SceneObject, keep: { size?: boolean; color?: boolean; cell?: boolean }): ObjectSpec {
  return {
    shape: o.shape,
    ...(keep.size ? { size: o.size } : {}),
    ...(keep.color ? { color: o.color } : {}),
    ...(keep.cell ? { cell: o.cell } : {}),
  };
}

/** A text-to-image prompt of one category. */
export function t2iPrompt(category: T2iCategory, rng: Rng): string {
  const scene = (n: number) => sampleScene(rng, n).objects;
  switch (category) {
    case 'single_object':
      return joinWords(specWords({ objects: scene(1).map((o) => objectSpec(o, { size: rng.next() < 0.5 })) }));
    case 'two_objects': {
      const [a, b] = rng.shuffle(SHAPES);
      const objects = [{ shape: a }, { shape: b }] as ObjectSpec[];
      return joinWords(specWords({ objects }));
    }
    case 'counting': {
      const n = 2 + rng.int(MAX_OBJECTS - 1);
      const one: ObjectSpec = { shape: rng.pick(SHAPES), ...(rng.next() < 0.5 ? { color: rng.pick(COLORS) } : {}) };
      return joinWords(specWords({ objects: new Array<ObjectSpec>(n).fill(one) }, { counting: true }));
    }
    case 'colors':
      return joinWords(specWords({ objects: scene(1).map((o) => objectSpec(o, { color: true })) }));
    case 'position':
      return joinWords(specWords({ objects: scene(1 + rng.int(2)).map((o) => objectSpec(o, { cell: true, color: rng.next() < 0.3 })) }));
    case 'color_attribution': {
      const [c1, c2] = rng.shuffle(COLORS);
      const objs = scene(2);
      return joinWords(specWords({ objects: objs.map((o, i) => ({ shape: o.shape, color: i === 0 ? c1 : c2 }) as ObjectSpec) }));
    }
  }
}

/** All references to `target` ("the [size] [color] shape [where]") that pick it out uniquely in `scene`. */
export function uniqueRefs(scene: Scene, target: SceneObject, omit: 'color' | 'size' | 'cell' | null = null): ObjectSpec[] {
  const out: ObjectSpec[] = [];
  for (const size of [false, true]) {
    for (const color of [false, true]) {
      for (const cell of [false, true]) {
        if ((omit === 'size' && size) || (omit === 'color' && color) || (omit === 'cell' && cell)) continue;
        const ref = objectSpec(target, { size, color, cell });
        const hits = scene.objects.filter(
          (o) => o.shape === ref.shape && (!size || o.size === ref.size) && (!color || o.color === ref.color) && (!cell || o.cell === ref.cell),
        );
        if (hits.length === 1) out.push(ref);
      }
    }
  }
  return out;
}

function freeCells(scene: Scene): number[] {
  return [...CELLS.keys()].filter((c) => !scene.objects.some((o) => o.cell === c));
}

/** An edit of the given kind that fits `scene`, or null when none does (e.g. remove from a one-object scene). */
export function sampleEdit(kind: EditKind, scene: Scene, rng: Rng): Edit | null {
  if (kind === 'add') {
    if (scene.objects.length >= MAX_OBJECTS) return null;
    const cell = rng.pick(freeCells(scene));
    return { kind, object: { shape: rng.pick(SHAPES), size: rng.pick(SIZES), color: rng.pick(COLORS), cell } };
  }
  if (kind === 'remove' && scene.objects.length < 2) return null;
  const target = rng.pick(scene.objects);
  const ref = rng.pick(uniqueRefs(scene, target));
  switch (kind) {
    case 'recolor':
      return { kind, ref, color: rng.pick(COLORS.filter((c) => c !== target.color)) };
    case 'resize':
      return { kind, ref, size: target.size === 'small' ? 'large' : 'small' };
    case 'move':
      return { kind, ref, cell: rng.pick(freeCells(scene)) };
    case 'remove':
      return { kind, ref };
  }
}

/**
 * A question of the given kind about `scene`, or null when none fits (e.g. "where is …"
 * when two objects differ only in their cell).
 */
export function sampleQuestion(kind: QuestionKind, scene: Scene, rng: Rng): Question | null {
  const target = rng.pick(scene.objects);
  switch (kind) {
    case 'color':
    case 'size':
    case 'position': {
      const refs = uniqueRefs(scene, target, kind === 'position' ? 'cell' : kind);
      return refs.length === 0 ? null : { kind, ref: rng.pick(refs) };
    }
    case 'shape':
      return { kind, cell: target.cell };
    case 'count': {
      const r = rng.next();
      if (r < 0.4) return { kind };
      if (r < 0.7) return { kind, shape: rng.pick(SHAPES) };
      return { kind, color: rng.pick(COLORS), ...(rng.next() < 0.5 ? { shape: rng.pick(SHAPES) } : {}) };
    }
    case 'describe':
      return { kind };
  }
}

/** One generated case of a task and category. */
export function sampleCase(task: Task, category: string, rng: Rng): EvalCase {
  switch (task) {
    case 't2i':
      return { task, prompt: t2iPrompt(category as T2iCategory, rng) };
    case 'edit': {
      for (;;) {
        const scene = sampleScene(rng);
        const edit = sampleEdit(category as EditKind, scene, rng);
        if (edit) return { task, source: describe(scene), instruction: instructionText(edit) };
      }
    }
    case 'answer': {
      for (;;) {
        const scene = sampleScene(rng);
        const question = sampleQuestion(category as QuestionKind, scene, rng);
        if (question) return { task, source: describe(scene), question: questionText(question) };
      }
    }
  }
}

/**
 * `n` cases of a task, spread evenly over its categories (category i gets cases
 * i, i + k, …), each resolved with its own seed derived from `seed`.
 */
export function generateCases(task: Task, n: number, seed: number): ResolvedCase[] {
  const cats = CATEGORIES[task];
  const rng = new Rng(seed * 1000003 + TASKS.indexOf(task));
  const out: ResolvedCase[] = [];
  for (let i = 0; i < n; i++) {
    const c = sampleCase(task, cats[i % cats.length] as string, rng);
    out.push(resolveCase(c, rng.int(2 ** 31)));
  }
  return out;
}
