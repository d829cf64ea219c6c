/**
 * `npm run bench`: dense against sparse sampling, side by side in one process, in the shape
 * of the paper's speed ablation (Sparse-LaViDa, Table 5): dense (LaViDa-O), then each of
 * prompt cache, response cache and truncation alone, then all three (Sparse-LaViDa).
 *
 *   npm run bench -- [--task t2i|edit|answer] [--n N] [--seed S] [--steps N] [--candidates N] [--warmup N] [--json OUT]
 *   npm run bench -- --server [--n N] [--seed S] [--steps N] [--candidates N] [--warmup N] [--json OUT]
 *
 * Images are drawn one candidate per request unless `--candidates N` says otherwise, so
 * the rows compare the samplers alone; with N, every row draws N and keeps the best
 * (functions/sampler/rerank.ts), as the manifest's default does for text to image.
 *
 * For every task the same cases run through every variant, interleaved case by case so
 * that drift in machine load hits all rows alike. Each row reports latency per sample
 * (median and the 10th-90th percentile spread), speedup over dense, the quality score on
 * the same cases (the world's scorer), tokens pushed through the network per sample, and
 * the ideal speedup those token counts imply. `--n` defaults to 100 cases per task: with
 * 20, one case moves a score by 0.05 and the answer rows' medians by several percent.
 *
 * With `--server`, text to image through the HTTP service next to the same runs in this
 * process, so the service's overhead shows (bench-server.ts).
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { MAX_CANDIDATES } from '../../functions/core/manifest.ts';
import { createEngine } from '../../functions/engine/engine.ts';
import { Pipeline, type GenerationOptions, type Usage } from '../../functions/pipeline/pipeline.ts';
import type { Ablation } from '../../functions/sampler/sample.ts';
import { loadPackageDir } from '../../functions/storage/package-files.ts';
import { createTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';
import { generateCases, TASKS, type ResolvedCase, type Task } from '../../models/world/cases.ts';
import { render } from '../../models/world/render.ts';
import { judgeAnswer, judgeImage } from '../../models/world/scorer.ts';
import { benchServer, formatServerBench } from './bench-server.ts';
import { formatTable, spread } from './stats.ts';

interface Variant {
  readonly name: string;
  readonly options: Pick<GenerationOptions, 'sampler'> & { ablation?: Ablation };
}

export const VARIANTS: readonly Variant[] = [
  { name: 'dense', options: { sampler: 'dense' } },
  { name: '+prompt cache', options: { sampler: 'sparse', ablation: { promptCache: true, responseCache: false, truncation: false } } },
  { name: '+response cache', options: { sampler: 'sparse', ablation: { promptCache: false, responseCache: true, truncation: false } } },
  { name: '+truncation', options: { sampler: 'sparse', ablation: { promptCache: false, responseCache: false, truncation: true } } },
  { name: 'sparse', options: { sampler: 'sparse', ablation: { promptCache: true, responseCache: true, truncation: true } } },
];

export interface BenchRow {
  readonly task: Task;
  readonly variant: string;
  readonly n: number;
  readonly medianMs: number;
  readonly p10Ms: number;
  readonly p90Ms: number;
  readonly speedup: number;
  readonly score: number;
  readonly tokensPerSample: number;
  readonly idealSpeedup: number;
}

async function finish<E, R>(it: AsyncGenerator<E, R, void>): Promise<R> {
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/** Runs one case through one variant: its wall time, its usage and whether the scorer accepts it. */
async function runCase(pipeline: Pipeline, c: ResolvedCase, options: GenerationOptions): Promise<{ ms: number; usage: Usage; correct: boolean }> {
  const started = performance.now();
  if (c.task === 'answer') {
    const question = c.case.task === 'answer' ? c.case.question : '';
    const r = await finish(pipeline.answer(render(c.source), question, options));
    return { ms: performance.now() - started, usage: r.usage, correct: judgeAnswer(r.text, c) };
  }
  const r = c.task === 't2i'
    ? await finish(pipeline.generate(c.case.task === 't2i' ? c.case.prompt : '', options))
    : await finish(pipeline.edit(render(c.source), c.case.task === 'edit' ? c.case.instruction : '', options));
  return { ms: performance.now() - started, usage: r.usage, correct: judgeImage(r.image, c.expected) };
}

export async function benchTask(pipeline: Pipeline, task: Task, n: number, seed: number, warmup: number, steps?: number, candidates = 1): Promise<BenchRow[]> {
  const cases = generateCases(task, n + warmup, seed);
  const samples = VARIANTS.map(() => ({ ms: [] as number[], tokens: 0, correct: 0 }));
  for (const [i, c] of cases.entries()) {
    for (const [v, variant] of VARIANTS.entries()) {
      const r = await runCase(pipeline, c, { ...variant.options, seed: c.seed, candidates, ...(steps ? { steps } : {}) });
      if (i < warmup) continue;
      const s = samples[v] as (typeof samples)[number];
      s.ms.push(r.ms);
      s.tokens += r.usage.tokensIn;
      if (r.correct) s.correct++;
    }
  }
  const dense = samples[0] as (typeof samples)[number];
  const denseMedian = spread(dense.ms).median;
  return VARIANTS.map((variant, v) => {
    const s = samples[v] as (typeof samples)[number];
    const { median, p10, p90 } = spread(s.ms);
    return {
      task, variant: variant.name, n,
      medianMs: median, p10Ms: p10, p90Ms: p90,
      speedup: denseMedian / median,
      score: s.correct / n,
      tokensPerSample: s.tokens / n,
      idealSpeedup: dense.tokens / s.tokens,
    };
  });
}

export function formatBench(rows: readonly BenchRow[]): string {
  const head = ['task', 'variant', 'n', 'median ms', 'p10-p90 ms', 'speedup', 'ideal', 'tokens/sample', 'score'];
  return formatTable(head, rows.map((r) => [
    r.task, r.variant, String(r.n), r.medianMs.toFixed(1), `${r.p10Ms.toFixed(1)}-${r.p90Ms.toFixed(1)}`,
    `${r.speedup.toFixed(2)}x`, `${r.idealSpeedup.toFixed(2)}x`, r.tokensPerSample.toFixed(0), r.score.toFixed(2),
  ]), 2);
}

const argsSchema = z.object({
  task: z.enum(TASKS).optional(),
  n: z.coerce.number().int().positive().default(100),
  seed: z.coerce.number().int().nonnegative().default(0),
  steps: z.coerce.number().int().positive().optional(),
  candidates: z.coerce.number().int().positive().max(MAX_CANDIDATES).default(1),
  warmup: z.coerce.number().int().nonnegative().default(2),
  json: z.string().min(1).optional(),
  server: z.boolean().default(false),
  model: z.string().min(1).default('models/shapes-tiny'),
});

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      task: { type: 'string' }, n: { type: 'string' }, seed: { type: 'string' }, steps: { type: 'string' }, candidates: { type: 'string' },
      warmup: { type: 'string' }, json: { type: 'string' }, model: { type: 'string' }, server: { type: 'boolean' },
    },
  });
  const parsed = argsSchema.safeParse(values);
  if (!parsed.success) {
    console.error(`npm run bench: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
    process.exit(2);
  }
  const args = parsed.data;
  if (args.server && args.task !== undefined && args.task !== 't2i') {
    console.error('npm run bench: --server measures text to image (t2i) only');
    process.exit(2);
  }
  const pkg = await loadPackageDir(args.model);
  const engine = await createEngine(pkg);
  try {
    const pipeline = new Pipeline(createTokenizers(pkg), engine);
    const model = `${pkg.manifest.name}@${pkg.manifest.version}`;
    if (args.server) {
      const rows = await benchServer(pipeline, { modelDir: args.model, n: args.n, seed: args.seed, warmup: args.warmup, steps: args.steps, candidates: args.candidates });
      console.log(formatServerBench(rows));
      if (args.json) await writeFile(args.json, `${JSON.stringify({ model, seed: args.seed, rows }, null, 2)}\n`);
      return;
    }
    const rows: BenchRow[] = [];
    for (const task of args.task ? [args.task] : TASKS) {
      const taskRows = await benchTask(pipeline, task, args.n, args.seed, args.warmup, args.steps, args.candidates);
      rows.push(...taskRows);
      console.log(formatBench(taskRows));
      console.log('');
    }
    if (args.json) await writeFile(args.json, `${JSON.stringify({ model, seed: args.seed, rows }, null, 2)}\n`);
  } finally {
    await engine.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
