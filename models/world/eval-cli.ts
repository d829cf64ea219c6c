/**
 * `npm run eval`: quality on the shapes world.
 *
 *   npm run eval -- --oracle | --oracle-vq [--task t2i|edit|answer] [--n N] [--seed S]
 *                   [--prompts FILE] [--json OUT] [--model DIR]
 *
 * --oracle scores ground-truth renders; --oracle-vq scores them after the image tokenizer's
 * encode/decode. Cases are generated evenly over each task's categories from the seed, or
 * read from a JSONL file (one case a line, see DESIGN.md section 4).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadPackageDir } from '../../functions/storage/package-files.ts';
import { createTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';
import { CaseFileError, generateCases, parseCasesJsonl, TASKS, type ResolvedCase } from './cases.ts';
import { oracleProducer, runEval } from './eval.ts';
import { formatTable } from './scorer.ts';

const argsSchema = z
  .object({
    oracle: z.boolean().default(false),
    'oracle-vq': z.boolean().default(false),
    task: z.enum(TASKS).optional(),
    n: z.coerce.number().int().positive().default(300),
    seed: z.coerce.number().int().nonnegative().default(0),
    prompts: z.string().min(1).optional(),
    json: z.string().min(1).optional(),
    model: z.string().min(1).default('models/shapes-tiny'),
  })
  .refine((a) => a.oracle !== a['oracle-vq'], {
    message: 'choose one mode: --oracle or --oracle-vq (model-backed modes come with the engine)',
  });

function fail(message: string, code = 2): never {
  console.error(`npm run eval: ${message}`);
  process.exit(code);
}

async function main(): Promise<void> {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      options: {
        oracle: { type: 'boolean' }, 'oracle-vq': { type: 'boolean' }, task: { type: 'string' }, n: { type: 'string' },
        seed: { type: 'string' }, prompts: { type: 'string' }, json: { type: 'string' }, model: { type: 'string' },
      },
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  const parsed = argsSchema.safeParse(values);
  if (!parsed.success) fail(z.prettifyError(parsed.error).replace(/\n/g, '; '));
  const args = parsed.data;

  let cases: ResolvedCase[];
  if (args.prompts) {
    const text = await readFile(args.prompts, 'utf8').catch((e: Error) => fail(`cannot read ${args.prompts}: ${e.message}`));
    try {
      cases = parseCasesJsonl(text, args.seed);
    } catch (e) {
      if (e instanceof CaseFileError) fail(`${args.prompts}: ${e.message}`);
      throw e;
    }
    if (args.task) cases = cases.filter((c) => c.task === args.task);
  } else {
    cases = (args.task ? [args.task] : TASKS).flatMap((t) => generateCases(t, args.n, args.seed));
  }

  const mode = args.oracle ? 'oracle' : 'oracle-vq';
  const vq = mode === 'oracle-vq' ? createTokenizers(await loadPackageDir(args.model)).image : undefined;
  const tally = await runEval(cases, oracleProducer(vq));
  const rows = tally.rows();
  console.log(`mode ${mode}, seed ${args.seed}, ${cases.length} cases${args.prompts ? ` from ${args.prompts}` : ''}`);
  console.log(formatTable(rows));
  if (args.json) {
    await writeFile(args.json, `${JSON.stringify({ mode, seed: args.seed, cases: cases.length, results: rows }, null, 2)}\n`);
  }
}

await main();
