/**
 * The model package manifest (DESIGN.md section 3), parsed with zod at the boundary.
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
  })
  .strict()
  .superRefine((m, ctx) => {
    for (const name of Object.keys(m.files)) {
      if (!isPackagePath(name)) ctx.addIssue({ code: 'custom', path: ['files', name], message: `file "${name}" must be a relative path inside the package` });
    }
    for (const [key, path] of [['vocab', m.vocab.file], ['image', m.image.codebook]] as const) {
      if (!(path in m.files)) ctx.addIssue({ code: 'custom', path: [key], message: `${path} is not listed in files` });
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
export type SpecialTokens = Manifest['vocab']['special'];

/** `vocab.json`: the token strings of ids 0..text.start+text.count-1 (specials, then words). */
export const vocabFileSchema = z.object({ tokens: z.array(z.string().min(1)) }).strict();
export type VocabFile = z.infer<typeof vocabFileSchema>;
