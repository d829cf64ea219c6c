/**
 * Checking a drawn image with the model's own understanding (`sampling.t2i.verify`): the
 * model answers a question about each candidate ("describe the image"), and the prompt,
 * read in the model's language, says whether that answer shows what it asked for. The
 * perception is the model's; the language says what a prompt means.
 */
import type { VERIFY_LANGUAGES } from '../core/manifest.ts';
import { captionCheck } from '../world/language.ts';

/** Reads a prompt; returns a test of the model's answer about an image, or null when the prompt cannot be read. */
export type PromptCheck = (prompt: string) => ((answer: string) => boolean) | null;

/** The languages a manifest may name, each with how it reads prompts. */
export const PROMPT_CHECKS: Readonly<Record<(typeof VERIFY_LANGUAGES)[number], PromptCheck>> = {
  'shapes-world': captionCheck,
};
