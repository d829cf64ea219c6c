/**
 * Exports training data for all three tasks (format: models/train/README.md).
 *
 *   npm run data -- --out DIR [--n N] [--seed S] [--model models/shapes-tiny]
 *                    [--t2i-categories counting:3,color_attribution:3]
 *
 * `--t2i-categories` weights the evaluation categories that half of the text-to-image
 * prompts are drawn from (unnamed categories keep weight 1; the default is even).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { z } from 'zod';
import { Rng } from '../../functions/core/rng.ts';
import { TASK_NAMES } from '../../functions/core/manifest.ts';
import { loadPackageDir } from '../../functions/storage/package-files.ts';
import { createTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';
import { answerLength } from '../../functions/tokenizers/prompt-layout.ts';
import { EVEN_T2I_CATEGORIES, EXAMPLE_MAKERS, parseCategoryWeights, t2iExample, type T2iCategoryWeights } from './examples.ts';
import { encodeNpy } from './npy.ts';

const argsSchema = z.object({
  out: z.string({ error: '--out DIR is required' }).min(1),
  n: z.coerce.number().int().positive().default(1000),
  seed: z.coerce.number().int().nonnegative().default(0),
  model: z.string().min(1).default('models/shapes-tiny'),
  't2i-categories': z
    .string()
    .optional()
    .transform((text, ctx): T2iCategoryWeights => {
      if (text === undefined) return EVEN_T2I_CATEGORIES;
      try {
        return parseCategoryWeights(text);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `--t2i-categories: ${(e as Error).message}` });
        return z.NEVER;
      }
    }),
});

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' }, n: { type: 'string' }, seed: { type: 'string' }, model: { type: 'string' },
      't2i-categories': { type: 'string' },
    },
  });
  const parsed = argsSchema.safeParse(values);
  if (!parsed.success) {
    console.error(`npm run data: ${z.prettifyError(parsed.error)}`);
    process.exit(2);
  }
  const args = parsed.data;
  const pkg = await loadPackageDir(args.model);
  const tok = createTokenizers(pkg);
  const { manifest } = tok;
  await mkdir(args.out, { recursive: true });
  const makers: typeof EXAMPLE_MAKERS = { ...EXAMPLE_MAKERS, t2i: (t, rng) => t2iExample(t, rng, args['t2i-categories']) };
  const tasks: Record<string, { n: number; prompt_len: number; answer_len: number }> = {};
  for (const [t, task] of TASK_NAMES.entries()) {
    const rng = new Rng(args.seed * 7919 + t);
    const promptLen = manifest.limits[task]?.prompt ?? 0;
    const answerLen = answerLength(manifest, task);
    const prompts = new Uint16Array(args.n * promptLen).fill(manifest.vocab.special.pad);
    const answers = new Uint16Array(args.n * answerLen);
    for (let i = 0; i < args.n; i++) {
      const ex = makers[task](tok, rng);
      prompts.set(ex.prompt, i * promptLen);
      answers.set(ex.answer, i * answerLen);
    }
    await writeFile(join(args.out, `${task}.prompt.npy.gz`), gzipSync(encodeNpy({ dtype: '<u2', shape: [args.n, promptLen], data: prompts })));
    await writeFile(join(args.out, `${task}.answer.npy.gz`), gzipSync(encodeNpy({ dtype: '<u2', shape: [args.n, answerLen], data: answers })));
    tasks[task] = { n: args.n, prompt_len: promptLen, answer_len: answerLen };
    console.log(`${task}: ${args.n} examples, prompt ${promptLen} + answer ${answerLen} tokens`);
  }
  const meta = {
    format: 'sparse-lavida-data/1',
    seed: args.seed,
    t2i_categories: args['t2i-categories'],
    model: { name: manifest.name, version: manifest.version },
    vocab: manifest.vocab,
    image: manifest.image,
    tasks,
  };
  await writeFile(join(args.out, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  console.log(`wrote ${args.out}/meta.json`);
}

await main();
