/**
 * `npm run eval`: quality on the shapes world.
 *
 *   npm run eval -- MODE [--task t2i|edit|answer] [--n N] [--seed S] [--prompts FILE]
 *                   [--json OUT] [--model DIR]
 *
 * Modes:
 *   --sampler dense|sparse   run the model (through the engine) and score what it makes;
 *                     [--steps N] [--temperature T] [--guidance G] [--registers R]
 *                     [--candidates N] override the manifest's sampling defaults; [--switches LIST] runs sparse with only
 *                     the listed switches of the speed ablation on (prompt-cache,
 *                     response-cache, truncation; default all three; '' for none)
 *   --oracle          score ground-truth renders
 *   --oracle-vq       score them after the image tokenizer's encode/decode
 *   --export FILE     write the cases with their prompt ids as JSONL for an outside sampler
 *                     (models/world/model-io.ts gives the line format)
 *   --score FILE      score the output ids an outside sampler wrote for exported cases
 *                     (--png-dir DIR also writes each output image there)
 * --explain (every mode but --export) prints each wrong case: what was asked and what the
 * detector saw, or the answer.
 * Cases are generated evenly over each task's categories from the seed, or read from a
 * JSONL file (one case a line, see docs/design.md section 4).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePng } from '../../functions/tokenizers/png.ts';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadPackageDir } from '../../functions/storage/package-files.ts';
import { createTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';
import { CaseFileError, generateCases, parseCasesJsonl, TASKS, type ResolvedCase } from './cases.ts';
import { oracleProducer, pipelineProducer, runEval, type CaseResult } from './eval.ts';
import { createEngine } from '../../functions/engine/engine.ts';
import { Pipeline, PipelineInputError, type GenerationOptions } from '../../functions/pipeline/pipeline.ts';
import { formatTable, Tally } from './scorer.ts';
import { decodeOutput, explainOutput, judgeOutput, outputLineSchema, tokenizeCase } from './model-io.ts';

/** The sparse sampler's switches (the paper's speed ablation), as `--switches` names them. */
const SWITCHES = ['prompt-cache', 'response-cache', 'truncation'] as const;

const argsSchema = z
  .object({
    oracle: z.boolean().default(false),
    'oracle-vq': z.boolean().default(false),
    export: z.string().min(1).optional(),
    score: z.string().min(1).optional(),
    'png-dir': z.string().min(1).optional(),
    explain: z.boolean().default(false),
    sampler: z.enum(['dense', 'sparse']).optional(),
    steps: z.coerce.number().int().positive().optional(),
    temperature: z.coerce.number().nonnegative().optional(),
    guidance: z.coerce.number().nonnegative().optional(),
    registers: z.coerce.number().int().nonnegative().optional(),
    candidates: z.coerce.number().int().positive().optional(),
    switches: z
      .string()
      .transform((v) => v.split(',').map((w) => w.trim()).filter((w) => w !== ''))
      .pipe(z.array(z.enum(SWITCHES, { error: `--switches lists some of ${SWITCHES.join(', ')}` })))
      .optional(),
    task: z.enum(TASKS).optional(),
    n: z.coerce.number().int().positive().default(300),
    seed: z.coerce.number().int().nonnegative().default(0),
    prompts: z.string().min(1).optional(),
    json: z.string().min(1).optional(),
    model: z.string().min(1).default('models/shapes-tiny'),
  })
  .refine((a) => a.switches === undefined || a.sampler === 'sparse', { message: '--switches needs --sampler sparse' })
  .refine((a) => !(a.explain && a.export !== undefined), { message: '--explain does not go with --export (nothing is scored)' })
  .refine((a) => [a.sampler !== undefined, a.oracle, a['oracle-vq'], a.export !== undefined, a.score !== undefined].filter(Boolean).length === 1, {
    message: 'choose one mode: --sampler dense|sparse, --oracle, --oracle-vq, --export FILE or --score FILE',
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
        oracle: { type: 'boolean' }, 'oracle-vq': { type: 'boolean' }, export: { type: 'string' }, score: { type: 'string' }, 'png-dir': { type: 'string' }, explain: { type: 'boolean' }, sampler: { type: 'string' }, steps: { type: 'string' },
        temperature: { type: 'string' }, guidance: { type: 'string' }, registers: { type: 'string' }, candidates: { type: 'string' }, switches: { type: 'string' }, task: { type: 'string' }, n: { type: 'string' },
        seed: { type: 'string' }, prompts: { type: 'string' }, json: { type: 'string' }, model: { type: 'string' },
      },
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  const parsed = argsSchema.safeParse(values);
  if (!parsed.success) fail(z.prettifyError(parsed.error).replace(/\n/g, '; '));
  const args = parsed.data;

  if (args.score) {
    await scoreOutputs(args.score, args.model, args.json, args['png-dir'], args.explain);
    return;
  }

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

  if (args.export) {
    const tok = createTokenizers(await loadPackageDir(args.model));
    const lines = cases.map((c, i) => JSON.stringify(tokenizeCase(tok, c, i)));
    await writeFile(args.export, `${lines.join('\n')}\n`);
    console.log(`wrote ${cases.length} cases to ${args.export}`);
    return;
  }

  const mode = args.sampler ?? (args.oracle ? 'oracle' : 'oracle-vq');
  const onResult = args.explain
    ? (r: CaseResult) => {
        if (!r.correct) console.log(`wrong #${r.index} ${explainOutput(r.case, r.seen)}`);
      }
    : undefined;
  const pkg = await loadPackageDir(args.model);
  let tally: Tally;
  let tokens = '';
  const started = performance.now();
  if (args.sampler) {
    const options: GenerationOptions = {
      sampler: args.sampler,
      ...(args.steps !== undefined ? { steps: args.steps } : {}),
      ...(args.temperature !== undefined ? { temperature: args.temperature } : {}),
      ...(args.guidance !== undefined ? { guidance: args.guidance } : {}),
      ...(args.registers !== undefined ? { registers: args.registers } : {}),
      ...(args.candidates !== undefined ? { candidates: args.candidates } : {}),
      ...(args.switches !== undefined
        ? { ablation: { promptCache: args.switches.includes('prompt-cache'), responseCache: args.switches.includes('response-cache'), truncation: args.switches.includes('truncation') } }
        : {}),
    };
    const engine = await createEngine(pkg);
    try {
      const pipeline = new Pipeline(createTokenizers(pkg), engine);
      // Settings out of range for a task stop the run before its first case, with the reason.
      for (const task of new Set(cases.map((c) => c.task))) {
        try {
          pipeline.settings(task, options);
        } catch (e) {
          if (!(e instanceof PipelineInputError)) throw e;
          await engine.close();
          fail(`${task}: ${e.message}`);
        }
      }
      const producer = pipelineProducer(pipeline, options);
      tally = await runEval(cases, producer, onResult);
      tokens = `, ${Math.round(producer.tokensIn / Math.max(1, cases.length))} tokens in per case`;
    } finally {
      await engine.close();
    }
  } else {
    tally = await runEval(cases, oracleProducer(mode === 'oracle-vq' ? createTokenizers(pkg).image : undefined), onResult);
  }
  const seconds = (performance.now() - started) / 1000;
  const rows = tally.rows();
  console.log(`mode ${mode}, seed ${args.seed}, ${cases.length} cases${args.prompts ? ` from ${args.prompts}` : ''}, ${seconds.toFixed(1)} s${tokens}`);
  console.log(formatTable(rows));
  if (args.json) {
    await writeFile(args.json, `${JSON.stringify({ mode, seed: args.seed, cases: cases.length, results: rows }, null, 2)}\n`);
  }
}

/** Scores a JSONL file of sampler outputs (models/world/model-io.ts). */
async function scoreOutputs(file: string, model: string, json: string | undefined, pngDir: string | undefined, explain: boolean): Promise<void> {
  const tok = createTokenizers(await loadPackageDir(model));
  if (pngDir) await mkdir(pngDir, { recursive: true });
  const text = await readFile(file, 'utf8').catch((e: Error) => fail(`cannot read ${file}: ${e.message}`));
  const tally = new Tally();
  let count = 0;
  for (const [i, raw] of text.split('\n').entries()) {
    if (raw.trim() === '') continue;
    let parsed: ReturnType<typeof outputLineSchema.safeParse>;
    try {
      parsed = outputLineSchema.safeParse(JSON.parse(raw));
    } catch (e) {
      fail(`${file}: line ${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (!parsed.success) fail(`${file}: line ${i + 1}: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
    const { resolved, correct, seen } = judgeOutput(tok, parsed.data);
    tally.add(resolved.task, resolved.category, correct);
    if (explain && !correct) console.log(`wrong #${parsed.data.index} ${explainOutput(resolved, seen)}`);
    if (pngDir && resolved.task !== 'answer') {
      const image = decodeOutput(tok, resolved.task, parsed.data.output);
      if (typeof image !== 'string') {
        const name = `${String(parsed.data.index).padStart(4, '0')}-${resolved.task}-${resolved.category}-${correct ? 'ok' : 'wrong'}.png`;
        await writeFile(join(pngDir, name), encodePng(image));
      }
    }
    count++;
  }
  const rows = tally.rows();
  console.log(`mode score, ${count} outputs from ${file}`);
  console.log(formatTable(rows));
  if (json) await writeFile(json, `${JSON.stringify({ mode: 'score', file, cases: count, results: rows }, null, 2)}\n`);
}

// Reading the output through `head` is fine: stop quietly when stdout closes.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
await main();
