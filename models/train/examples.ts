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
import { sampleEdit, sampleQuestion, t2iPrompt, T2I_CATEGORIES } from '../world/cases.ts';
import { EDIT_KINDS, instructionText, parseCaption, QUESTION_KINDS, questionText, specWords } from '../world/language.ts';
import { render } from '../world/render.ts';
import { answerQuestion, applyEdit } from '../world/semantics.ts';
import { fillSpec, sampleScene, type ObjectSpec, type SceneSpec } from '../world/scene.ts';

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

export function t2iExample(tok: ModelTokenizers, rng: Rng): Example {
  let text: string;
  let spec: SceneSpec;
  if (rng.next() < 0.5) {
    text = t2iPrompt(rng.pick(T2I_CATEGORIES), rng);
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
