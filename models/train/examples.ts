/**
 * Training examples for the three tasks, drawn from the shapes world and turned into the
 * token layout of functions/tokenizers/prompt-layout.ts.
 *
 * Text-to-image prompts mix the evaluation categories with partial captions of random
 * scenes (each of size, color, cell dropped with probability 0.3, objects in random
 * order), so the model learns to draw what a prompt states and to choose what it leaves
 * open. Edits and questions are drawn evenly over their kinds.
 */
import { Rng } from '../../functions/core/rng.ts';
import type { TaskName } from '../../functions/core/manifest.ts';
import { answerLength, buildPrompt, codesToIds } from '../../functions/tokenizers/prompt-layout.ts';
import type { ModelTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';
import { joinWords } from '../../functions/tokenizers/words.ts';
import { sampleEdit, sampleQuestion, t2iPrompt, T2I_CATEGORIES, type T2iCategory } from '../world/cases.ts';
import { EDIT_KINDS, instructionText, parseCaption, QUESTION_KINDS, questionText, specWords } from '../../functions/world/language.ts';
import { render } from '../world/render.ts';
import { answerQuestion, applyEdit } from '../world/semantics.ts';
import { fillSpec, sampleScene, type ObjectSpec, type SceneSpec } from '../../functions/world/scene.ts';

export interface Example {
  readonly prompt: number[];
  readonly answer: number[];
}

const DROP = 0.3;

/** A partial caption of a random scene. */
function partialCaption(rng: Rng): { text: string; spec: SceneSpec } {
  const scene = sampleScene(rng);
  const objects = rng.shuffle(scene.objects).map((o): ObjectSpec => ({
    shape: o.shape,
    ...(rng.next() >= DROP ? { size: o.size } : {}),
    ...(rng.next() >= DROP ? { color: o.color } : {}),
    ...(rng.next() >= DROP ? { cell: o.cell } : {}),
  }));
  const spec = { objects };
  return { text: joinWords(specWords(spec, { counting: rng.next() < 0.5 })), spec };
}

/** Relative weights of the evaluation categories in the text-to-image prompts that follow one. */
export type T2iCategoryWeights = Readonly<Record<T2iCategory, number>>;

export const EVEN_T2I_CATEGORIES: T2iCategoryWeights = Object.fromEntries(T2I_CATEGORIES.map((c) => [c, 1])) as Record<T2iCategory, number>;

/**
 * Parses `counting:3,color_attribution:3` into weights; categories not named keep weight 1.
 * Throws RangeError naming an unknown or repeated category, a part that is not name:weight,
 * or a weight that is not a number >= 0.
 *
 * @example
 * parseCategoryWeights('counting:2').counting // 2
 */
export function parseCategoryWeights(text: string): T2iCategoryWeights {
  const out: Record<string, number> = { ...EVEN_T2I_CATEGORIES };
  const named = new Set<string>();
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const fields = part.split(':').map((x) => x.trim());
    if (fields.length !== 2) throw new RangeError(`"${part.trim()}" is not name:weight`);
    const [name = '', value = ''] = fields;
    if (!(T2I_CATEGORIES as readonly string[]).includes(name)) {
      throw new RangeError(`unknown text-to-image category "${name}" (expected one of ${T2I_CATEGORIES.join(', ')})`);
    }
    if (named.has(name)) throw new RangeError(`${name} is weighted twice`);
    named.add(name);
    const w = Number(value);
    if (value === '' || !Number.isFinite(w) || w < 0) throw new RangeError(`weight of ${name} must be a number >= 0, got "${value}"`);
    out[name] = w;
  }
  if (T2I_CATEGORIES.every((c) => out[c] === 0)) throw new RangeError('at least one text-to-image category needs a weight > 0');
  return out as Record<T2iCategory, number>;
}

/** One draw of `rng`; with even weights the same category as `rng.pick(T2I_CATEGORIES)`. */
function pickCategory(weights: T2iCategoryWeights, rng: Rng): T2iCategory {
  const total = T2I_CATEGORIES.reduce((sum, c) => sum + weights[c], 0);
  let r = rng.next() * total;
  for (const c of T2I_CATEGORIES) {
    r -= weights[c];
    if (r < 0) return c;
  }
  return T2I_CATEGORIES.findLast((c) => weights[c] > 0) as T2iCategory;
}

export function t2iExample(tok: ModelTokenizers, rng: Rng, weights: T2iCategoryWeights = EVEN_T2I_CATEGORIES): Example {
  let text: string;
  let spec: SceneSpec;
  if (rng.next() < 0.5) {
    text = t2iPrompt(pickCategory(weights, rng), rng);
    spec = parseCaption(text);
  } else {
    ({ text, spec } = partialCaption(rng));
  }
  const image = render(fillSpec(spec, rng));
  return {
    prompt: buildPrompt(tok.manifest, 't2i', tok.text.encode(text)),
    answer: codesToIds(tok.manifest.vocab, tok.image.encode(image)),
  };
}

export function editExample(tok: ModelTokenizers, rng: Rng): Example {
  for (;;) {
    const source = sampleScene(rng);
    const edit = sampleEdit(rng.pick(EDIT_KINDS), source, rng);
    if (!edit) continue;
    const target = fillSpec(applyEdit(source, edit), rng);
    return {
      prompt: buildPrompt(tok.manifest, 'edit', tok.text.encode(instructionText(edit)), tok.image.encode(render(source))),
      answer: codesToIds(tok.manifest.vocab, tok.image.encode(render(target))),
    };
  }
}

export function answerExample(tok: ModelTokenizers, rng: Rng): Example {
  for (;;) {
    const scene = sampleScene(rng);
    const question = sampleQuestion(rng.pick(QUESTION_KINDS), scene, rng);
    if (!question) continue;
    const words = tok.text.encode(answerQuestion(scene, question));
    const length = answerLength(tok.manifest, 'answer');
    if (words.length > length) throw new RangeError(`answer of ${words.length} words exceeds ${length}`);
    return {
      prompt: buildPrompt(tok.manifest, 'answer', tok.text.encode(questionText(question)), tok.image.encode(render(scene))),
      answer: [...words, ...new Array<number>(length - words.length).fill(tok.manifest.vocab.special.end)],
    };
  }
}

export const EXAMPLE_MAKERS: Readonly<Record<TaskName, (tok: ModelTokenizers, rng: Rng) => Example>> = {
  t2i: t2iExample,
  edit: editExample,
  answer: answerExample,
};
