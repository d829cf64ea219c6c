/**
 * The bridge between world cases and token sequences, for samplers outside this process
 * (the Python reference sampler): cases are written with their prompt ids, and the ids a
 * sampler decodes are read back and scored by the world's scorer.
 *
 * Case line:   {"index", "seed", "case", "task", "category", "prompt": [ids], "uncond": [ids]}
 * Output line: {"index", "seed", "case", "output": [ids]}
 * `uncond` is the prompt of the classifier-free-guidance branch: the task token alone for
 * t2i, the task token, source image and <sep> for edit (the same for answer, unused).
 */
import { z } from 'zod';
import type { RgbImage } from '../../functions/core/image.ts';
import type { ModelTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';
import { buildPrompt, idsToCodes } from '../../functions/tokenizers/prompt-layout.ts';
import { caseSchema, resolveCase, type ResolvedCase } from './cases.ts';
import { render } from './render.ts';
import { describe } from '../../functions/world/language.ts';
import { judgeAnswer, judgeImageSeen } from './scorer.ts';

export interface TokenizedCase {
  readonly index: number;
  readonly seed: number;
  readonly case: ResolvedCase['case'];
  readonly task: ResolvedCase['task'];
  readonly category: string;
  readonly prompt: number[];
  readonly uncond: number[];
}

/** The prompt ids of a resolved case and of its unconditional branch. */
export function tokenizeCase(tok: ModelTokenizers, c: ResolvedCase, index: number): TokenizedCase {
  const { manifest } = tok;
  let prompt: number[];
  let uncond: number[];
  if (c.task === 't2i') {
    prompt = buildPrompt(manifest, 't2i', tok.text.encode(c.case.task === 't2i' ? c.case.prompt : ''));
    uncond = buildPrompt(manifest, 't2i', []);
  } else {
    const codes = tok.image.encode(render(c.source));
    const text = c.case.task === 'edit' ? c.case.instruction : c.case.task === 'answer' ? c.case.question : '';
    prompt = buildPrompt(manifest, c.task, tok.text.encode(text), codes);
    uncond = buildPrompt(manifest, c.task, [], codes);
  }
  return { index, seed: c.seed, case: c.case, task: c.task, category: c.category, prompt, uncond };
}

export const outputLineSchema = z.object({
  index: z.number().int().nonnegative(),
  seed: z.number().int(),
  case: caseSchema,
  output: z.array(z.number().int().nonnegative()),
});
export type OutputLine = z.infer<typeof outputLineSchema>;

/** What a sampler's output ids mean: an image for t2i/edit, text for answer. */
export function decodeOutput(tok: ModelTokenizers, task: ResolvedCase['task'], ids: readonly number[]): RgbImage | string {
  if (task === 'answer') return tok.text.decode(ids);
  return tok.image.decode(idsToCodes(tok.manifest.vocab, ids));
}

/**
 * Re-resolves an output line's case and judges its ids. Ids that are not valid output count
 * as wrong. `seen` says what the output shows: the answer's text, or what the detector saw.
 */
export function judgeOutput(tok: ModelTokenizers, line: OutputLine): { resolved: ResolvedCase; correct: boolean; seen: string } {
  const resolved = resolveCase(line.case, line.seed);
  let decoded: RgbImage | string;
  try {
    decoded = decodeOutput(tok, resolved.task, line.output);
  } catch (e) {
    return { resolved, correct: false, seen: `invalid output (${e instanceof Error ? e.message : String(e)})` };
  }
  if (typeof decoded === 'string') {
    return { resolved, correct: resolved.task === 'answer' && judgeAnswer(decoded, resolved), seen: decoded };
  }
  if (resolved.task === 'answer') return { resolved, correct: false, seen: 'an image where text was expected' };
  return { resolved, ...judgeImageSeen(decoded, resolved.expected) };
}

/** One line on a case and its output, e.g. for the wrong ones: what was asked, what came out. */
export function explainOutput(resolved: ResolvedCase, seen: string): string {
  switch (resolved.task) {
    case 't2i':
      return `t2i/${resolved.category}: "${resolved.case.task === 't2i' ? resolved.case.prompt : ''}" -> ${seen}`;
    case 'edit':
      return `edit/${resolved.category}: "${describe(resolved.source)}" + "${resolved.case.task === 'edit' ? resolved.case.instruction : ''}" -> ${seen} (want ${describe(resolved.reference)})`;
    case 'answer':
      return `answer/${resolved.category}: "${describe(resolved.source)}" + "${resolved.case.task === 'answer' ? resolved.case.question : ''}" -> "${seen}" (want "${resolved.expected}")`;
  }
}
