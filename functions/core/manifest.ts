/**
 * The model package manifest (docs/design.md section 3), parsed with zod at the boundary.
 * A package is a folder or S3 prefix holding `manifest.json` and every file it lists.
 */
import { z } from 'zod';

const tokenId = z.number().int().nonnegative();
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 is 64 lower-case hex digits');
/** Whether a file path stays inside the package: relative, forward slashes, no `..`. */
export function isPackagePath(p: string): boolean {
  return p !== '' && !p.startsWith('/') && !p.split('/').includes('..') && !p.includes('\\');
}
const packagePath = z.string().refine(isPackagePath, 'must be a relative path inside the package');

export const TASK_NAMES = ['t2i', 'edit', 'answer'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

const range = z
  .object({ start: tokenId, count: z.number().int().positive() })
  .strict();

const positiveInt = z.number().int().positive();

/** Languages `sampling.t2i.verify` can read a prompt in (functions/pipeline/verify.ts). */
export const VERIFY_LANGUAGES = ['shapes-world'] as const;

/** The most image candidates one request may draw (best of n, `sampling.<task>.candidates`). */
export const MAX_CANDIDATES = 16;

/**
 * The unified position-id layout: every position id has one meaning for all tasks. Each
 * segment is `[start, start + count)`; a t2i prompt is the task token then its words from
 * `text.start`; edit/answer prompts are task, source grid (row-major), sep, words.
 */
const positionsSchema = z
  .object({
    grid: positiveInt,
    size: positiveInt,
    segments: z
      .object({ task: range, source: range, sep: range, text: range, image: range, answer: range, registers: range })
      .strict(),
  })
  .strict();

/** The denoiser graph (docs/design.md section 3): its file, architecture and input conventions. */
const modelSchema = z
  .object({
    file: packagePath,
    dModel: positiveInt,
    layers: positiveInt,
    heads: positiveInt,
    headDim: positiveInt,
    /** R: register tokens fed at every sparse step, at `positions.segments.registers`. */
    registers: z.number().int().nonnegative(),
    /** The additive `attn_bias` value meaning "may not attend" (training used this value). */
    maskValue: z.number().negative(),
    positions: positionsSchema,
  })
  .strict();

/**
 * Per-task sampling defaults. Image schedule (LaViDa-O, docs/design.md section 1): with t the
 * mask ratio running from 1 to 0, the fraction still masked after step k of S is
 * s(1 - k/S), s(t) = shift*t / (1 + (shift-1)*t); per-step counts are its differences, at
 * least one per step. shift > 1 decodes few tokens early and many late. `guidance` is the
 * classifier-free guidance scale (1 = off; logits = uncond + guidance * (cond - uncond)),
 * the unconditional prompt being the task prompt without its text. `block`:
 * semi-autoregressive text block length (text answers). `registers`: register tokens fed at
 * every sparse step of this task (default `model.registers`, all of them; at most that many).
 * `candidates` (image tasks): images drawn per request, the one the model scores best
 * returned (functions/sampler/rerank.ts; default 1). `variants` (image tasks): candidate c
 * samples with `variants[c mod n]` laid over the defaults above, so one request can mix
 * guided, confident draws with unguided, varied ones for the score to choose from; a
 * request's own guidance or temperature applies to every candidate. `verify` (text to image):
 * after drawing each candidate, ask the model `question` about it (an answer task) and read
 * its answer against the prompt in the named `language` (functions/pipeline/verify.ts);
 * candidates are drawn until `stopAfter` agree (or `candidates` are drawn), and the best
 * scored of those that agree is returned (of all drawn when none agrees). With
 * `minExplained`, an answer agrees only if it also explains the whole image: the image's
 * masked-reconstruction log-likelihood with the answer as its text-to-image prompt
 * (functions/sampler/rerank.ts, conditional only) is at least this many nats, so an image
 * holding something its description leaves out does not pass. With `minRegionFit`, it
 * also needs a region fit (`regionFit`, below) of at least this many nats: a fourth copy
 * of an object its description counts as three sits in a window the description cannot
 * account for. `rankBy` chooses among the
 * candidates that agree: 'score' (default) by the best-of-n score; 'explained' by how well
 * each one's own description explains every region of its image (`regionFit` in
 * functions/sampler/rerank.ts: the image in hidden windows, the description as its prompt).
 */
const verifySchema = z
  .object({
    question: z.string().min(1),
    language: z.enum(VERIFY_LANGUAGES),
    stopAfter: positiveInt.max(MAX_CANDIDATES),
    minExplained: z.number().nonpositive().optional(),
    minRegionFit: z.number().nonpositive().optional(),
    rankBy: z.enum(['score', 'explained']).optional(),
  })
  .strict();
export type VerifySettings = z.infer<typeof verifySchema>;

const variantSchema = z
  .object({ guidance: z.number().nonnegative().optional(), temperature: z.number().nonnegative().optional() })
  .strict();
export type SamplingVariant = z.infer<typeof variantSchema>;

const samplingSchema = z
  .object({
    steps: positiveInt,
    shift: z.number().positive(),
    temperature: z.number().nonnegative(),
    guidance: z.number().nonnegative(),
    block: positiveInt.optional(),
    registers: z.number().int().nonnegative().optional(),
    candidates: positiveInt.max(MAX_CANDIDATES).optional(),
    variants: z.array(variantSchema).min(1).max(MAX_CANDIDATES).optional(),
    verify: verifySchema.optional(),
  })
  .strict();
export type SamplingDefaults = z.infer<typeof samplingSchema>;

export const manifestSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" or "-"'),
    version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z._-]*$/),
    description: z.string().optional(),
    files: z.record(z.string(), z.object({ sha256, size: z.number().int().nonnegative() }).strict()),
    vocab: z
      .object({
        size: z.number().int().positive(),
        file: packagePath,
        special: z
          .object({ pad: tokenId, mask: tokenId, reg: tokenId, end: tokenId, sep: tokenId, t2i: tokenId, edit: tokenId, answer: tokenId })
          .strict(),
        text: range,
        image: range,
      })
      .strict(),
    image: z
      .object({
        pixels: z.number().int().positive(),
        patch: z.number().int().positive(),
        grid: z.number().int().positive(),
        codebook: packagePath,
      })
      .strict(),
    /** Maximum prompt and answer lengths, in tokens, per task. */
    limits: z.record(z.enum(TASK_NAMES), z.object({ prompt: z.number().int().positive(), answer: z.number().int().positive() }).strict()),
    /** Present once a denoiser has been exported into the package. */
    model: modelSchema.optional(),
    sampling: z.record(z.enum(TASK_NAMES), samplingSchema).optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    for (const name of Object.keys(m.files)) {
      if (!isPackagePath(name)) ctx.addIssue({ code: 'custom', path: ['files', name], message: `file "${name}" must be a relative path inside the package` });
    }
    for (const [key, path] of [['vocab', m.vocab.file], ['image', m.image.codebook]] as const) {
      if (!(path in m.files)) ctx.addIssue({ code: 'custom', path: [key], message: `${path} is not listed in files` });
    }
    if (m.model) {
      if (!(m.model.file in m.files)) ctx.addIssue({ code: 'custom', path: ['model', 'file'], message: `${m.model.file} is not listed in files` });
      const seg = m.model.positions.segments;
      const end = Math.max(...Object.values(seg).map((r) => r.start + r.count));
      if (end > m.model.positions.size) ctx.addIssue({ code: 'custom', path: ['model', 'positions'], message: 'a position segment ends past positions.size' });
      if (seg.registers.count !== m.model.registers) ctx.addIssue({ code: 'custom', path: ['model', 'registers'], message: 'registers must equal positions.segments.registers.count' });
      if (m.model.positions.grid !== m.image.grid) ctx.addIssue({ code: 'custom', path: ['model', 'positions', 'grid'], message: 'positions.grid must equal image.grid' });
      for (const [task, defaults] of Object.entries(m.sampling ?? {})) {
        if (defaults.registers !== undefined && defaults.registers > m.model.registers) {
          ctx.addIssue({ code: 'custom', path: ['sampling', task, 'registers'], message: `at most model.registers (${m.model.registers}) registers` });
        }
      }
    }
    for (const key of ['candidates', 'variants'] as const) {
      if (m.sampling?.answer?.[key] !== undefined) ctx.addIssue({ code: 'custom', path: ['sampling', 'answer', key], message: `${key} is for image tasks (answers draw one candidate)` });
    }
    for (const task of ['edit', 'answer'] as const) {
      if (m.sampling?.[task]?.verify !== undefined) ctx.addIssue({ code: 'custom', path: ['sampling', task, 'verify'], message: 'verify is for text to image (it reads the prompt as a description)' });
    }
    const { text, image, size } = m.vocab;
    if (text.start + text.count > image.start && image.start + image.count > text.start) {
      ctx.addIssue({ code: 'custom', path: ['vocab'], message: 'text and image id ranges overlap' });
    }
    if (image.start + image.count > size || text.start + text.count > size) {
      ctx.addIssue({ code: 'custom', path: ['vocab', 'size'], message: 'an id range ends past the vocabulary size' });
    }
    if (m.image.grid * m.image.patch !== m.image.pixels) {
      ctx.addIssue({ code: 'custom', path: ['image'], message: 'grid * patch must equal pixels' });
    }
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type ModelSpec = NonNullable<Manifest['model']>;
export type PositionLayout = ModelSpec['positions'];
export type SpecialTokens = Manifest['vocab']['special'];

/** `vocab.json`: the token strings of ids 0..text.start+text.count-1 (specials, then words). */
export const vocabFileSchema = z.object({ tokens: z.array(z.string().min(1)) }).strict();
export type VocabFile = z.infer<typeof vocabFileSchema>;
