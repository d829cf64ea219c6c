/**
 * `npx sparse-lavida generate|edit|ask`: one request against a local model package, with a
 * progress bar on stderr (see USAGE). Exit status: 0 done, 1 a request the model cannot take
 * or a file that cannot be used (one line, no stack trace), 2 bad usage.
 *
 * @example
 * npx sparse-lavida generate "a small red circle at the top left" --seed 1 -o out.png
 * npx sparse-lavida edit out.png "make the red circle blue" -o edited.png
 * npx sparse-lavida ask edited.png "what color is the circle?"
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { RgbImage } from '../core/image.ts';
import { createEngine } from '../engine/engine.ts';
import { Pipeline, PipelineInputError, type GenerationOptions, type ImageResult, type ImageStep, type TextResult, type TextStep, type Usage } from '../pipeline/pipeline.ts';
import { loadPackageDir, PackageError } from '../storage/package-files.ts';
import { createTokenizers } from '../tokenizers/model-tokenizers.ts';
import { decodePng, encodePng, ImageDecodeError, toModelImage } from '../tokenizers/png.ts';
import { PromptTooLongError } from '../tokenizers/prompt-layout.ts';
import { UnknownWordError } from '../tokenizers/text.ts';

const DEFAULT_MODEL = fileURLToPath(new URL('../../models/shapes-tiny', import.meta.url));

const USAGE = `usage:
  sparse-lavida generate "<prompt>" -o out.png [options]
  sparse-lavida edit in.png "<instruction>" -o out.png [options]
  sparse-lavida ask in.png "<question>" [options]

options:
  -o, --output FILE      where the image is written (generate, edit)
  --sampler dense|sparse the sampling loop (default sparse)
  --seed N               random seed (default: drawn, and printed at the end)
  --steps N              denoising steps (default: the model's)
  --guidance G           classifier-free guidance scale (generate, edit)
  --candidates N         draw up to N images, keep the one the model judges best (generate,
                         edit; default: the model's; generate may stop sooner, once the
                         model's descriptions of enough candidates agree with the prompt)
  --temperature T        sampling temperature, 0 = greedy
  --preview-dir DIR      write every step's preview as DIR/step-001.png, ... (generate, edit)
  --model DIR            model package folder (default models/shapes-tiny)
  -h, --help             this text
`;

/** A file named on the command line that cannot be read or written. */
class CliFileError extends Error {
  override readonly name = 'CliFileError';
}

const number = z.coerce.number({ error: 'expected a number' });
const whole = number.int({ error: 'expected a whole number' });
const sampling = {
  sampler: z.enum(['dense', 'sparse'], { error: 'expected dense or sparse' }).optional(),
  seed: whole.nonnegative().optional(),
  steps: whole.positive().optional(),
  temperature: number.optional(),
  model: z.string().min(1).default(DEFAULT_MODEL),
};
const imageOutput = {
  output: z.string({ error: 'required (-o out.png)' }).min(1),
  'preview-dir': z.string().min(1).optional(),
  guidance: number.optional(),
  candidates: whole.positive().optional(),
};
const text = (what: string) => z.string().trim().min(1, `the ${what} is empty`);

const argsSchema = z.discriminatedUnion('command', [
  z.strictObject({
    command: z.literal('generate'),
    positionals: z.tuple([text('prompt')], { error: 'generate takes one argument: "<prompt>"' }),
    ...sampling,
    ...imageOutput,
  }),
  z.strictObject({
    command: z.literal('edit'),
    positionals: z.tuple([z.string().min(1), text('instruction')], { error: 'edit takes two arguments: in.png "<instruction>"' }),
    ...sampling,
    ...imageOutput,
  }),
  z.strictObject({
    command: z.literal('ask'),
    positionals: z.tuple([z.string().min(1), text('question')], { error: 'ask takes two arguments: in.png "<question>"' }),
    ...sampling,
  }),
]);
type Args = z.infer<typeof argsSchema>;

const commandSchema = z.enum(['generate', 'edit', 'ask'], {
  error: (issue) => (issue.input === undefined ? 'no command given' : `unknown command "${String(issue.input)}"`),
});

const OPTIONS = {
  output: { type: 'string', short: 'o' },
  sampler: { type: 'string' },
  seed: { type: 'string' },
  steps: { type: 'string' },
  guidance: { type: 'string' },
  candidates: { type: 'string' },
  temperature: { type: 'string' },
  'preview-dir': { type: 'string' },
  model: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The arguments, 'help', or what is wrong with them (one line). */
function parseCli(argv: string[]): Args | 'help' | { problem: string } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (e) {
    return { problem: (e as Error).message };
  }
  const { help, ...options } = parsed.values;
  if (help) return 'help';
  const command = commandSchema.safeParse(parsed.positionals[0]);
  if (!command.success) return { problem: command.error.issues[0]?.message ?? 'no command given' };
  const args = argsSchema.safeParse({ command: command.data, positionals: parsed.positionals.slice(1), ...options });
  if (args.success) return args.data;
  return { problem: args.error.issues.map((issue) => describeIssue(command.data, issue)).join('; ') };
}

function describeIssue(command: string, issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `${command} does not take ${issue.keys.map((k) => `--${k}`).join(', ')}`;
  const key = String(issue.path[0]);
  return key === 'positionals' ? issue.message : `--${key}: ${issue.message}`;
}

/** The bar on stderr: redrawn in place on a terminal; elsewhere only the closing line is written. */
class Progress {
  private open = false;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly live: boolean,
  ) {}

  step(step: number, total: number): void {
    if (!this.live) return;
    const filled = Math.round((step / total) * 20);
    this.stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] step ${step}/${total}`);
    this.open = true;
  }

  /** A whole line, after ending the bar's line if one is drawn. */
  line(text: string): void {
    if (this.open) this.stream.write('\n');
    this.open = false;
    this.stream.write(`${text}\n`);
  }
}

function summary(usage: Usage): string {
  const drawn = usage.candidates > 1 ? ` for each of ${usage.candidates} candidates` : '';
  return `${usage.steps} step${usage.steps === 1 ? '' : 's'}${drawn} in ${usage.seconds.toFixed(2)} s, ${usage.tokensIn} tokens pushed (${usage.sampler} sampler, seed ${usage.seed})`;
}

function generationOptions(args: Args): GenerationOptions {
  return {
    ...(args.sampler !== undefined ? { sampler: args.sampler } : {}),
    ...(args.seed !== undefined ? { seed: args.seed } : {}),
    ...(args.steps !== undefined ? { steps: args.steps } : {}),
    ...(args.temperature !== undefined ? { temperature: args.temperature } : {}),
    ...(args.command !== 'ask' && args.guidance !== undefined ? { guidance: args.guidance } : {}),
    ...(args.command !== 'ask' && args.candidates !== undefined ? { candidates: args.candidates } : {}),
    ...(args.command !== 'ask' && args['preview-dir'] !== undefined ? { previewEvery: 1 } : {}),
  };
}

async function readImage(file: string): Promise<RgbImage> {
  const bytes = await readFile(file).catch((e: Error) => {
    throw new CliFileError(`cannot read ${file}: ${e.message}`);
  });
  try {
    return toModelImage(decodePng(bytes));
  } catch (e) {
    if (e instanceof ImageDecodeError) throw new ImageDecodeError(e.code, `${file}: ${e.message}`, { cause: e });
    throw e;
  }
}

async function writeOut(file: string, bytes: Uint8Array): Promise<void> {
  await writeFile(file, bytes).catch((e: Error) => {
    throw new CliFileError(`cannot write ${file}: ${e.message}`);
  });
}

/** Drains an image task, writing each preview to `previewDir` as step-001.png, ... */
async function drawImage(steps: AsyncGenerator<ImageStep, ImageResult, void>, previewDir: string | undefined, progress: Progress): Promise<ImageResult> {
  if (previewDir !== undefined) {
    await mkdir(previewDir, { recursive: true }).catch((e: Error) => {
      throw new CliFileError(`cannot create ${previewDir}: ${e.message}`);
    });
  }
  for (;;) {
    const r = await steps.next();
    if (r.done) return r.value;
    const e = r.value;
    if (previewDir !== undefined && e.preview) await writeOut(join(previewDir, `step-${String(e.step).padStart(3, '0')}.png`), encodePng(e.preview));
    progress.step(e.step, e.totalSteps);
  }
}

/** Drains an answer, writing its text to `out` as each part becomes final. */
async function streamAnswer(steps: AsyncGenerator<TextStep, TextResult, void>, out: NodeJS.WritableStream, progress: Progress): Promise<TextResult> {
  for (;;) {
    const r = await steps.next();
    if (r.done) {
      out.write('\n');
      return r.value;
    }
    out.write(r.value.delta);
    progress.step(r.value.step, r.value.totalSteps);
  }
}

/** Runs `use` on a pipeline over the model package in `dir`, closing the engine after. */
async function withPipeline<T>(dir: string, progress: Progress, use: (pipeline: Pipeline) => Promise<T>): Promise<T> {
  const pkg = await loadPackageDir(dir);
  const tokenizers = createTokenizers(pkg);
  const engine = await createEngine(pkg, { log: (line) => progress.line(`sparse-lavida: ${line}`) });
  try {
    return await use(new Pipeline(tokenizers, engine));
  } finally {
    await engine.close();
  }
}

async function run(args: Args, progress: Progress): Promise<void> {
  const options = generationOptions(args);
  switch (args.command) {
    case 'generate':
      return saveImage(args, progress, (p) => p.generate(args.positionals[0], options));
    case 'edit': {
      const image = await readImage(args.positionals[0]);
      return saveImage(args, progress, (p) => p.edit(image, args.positionals[1], options));
    }
    case 'ask': {
      const image = await readImage(args.positionals[0]);
      const result = await withPipeline(args.model, progress, (p) => streamAnswer(p.answer(image, args.positionals[1], options), process.stdout, progress));
      progress.line(summary(result.usage));
    }
  }
}

/** Runs an image task, writing its previews (--preview-dir) and its result (-o). */
async function saveImage(
  args: Exclude<Args, { command: 'ask' }>,
  progress: Progress,
  start: (pipeline: Pipeline) => AsyncGenerator<ImageStep, ImageResult, void>,
): Promise<void> {
  const result = await withPipeline(args.model, progress, (p) => drawImage(start(p), args['preview-dir'], progress));
  await writeOut(args.output, encodePng(result.image));
  progress.line(`${summary(result.usage)}; wrote ${args.output}`);
}

/** Errors that mean "this request or these files cannot be used": one line, exit 1. */
function isUserError(e: unknown): e is Error {
  return (
    e instanceof UnknownWordError || e instanceof ImageDecodeError || e instanceof PipelineInputError ||
    e instanceof PromptTooLongError || e instanceof PackageError || e instanceof CliFileError
  );
}

async function main(argv: string[]): Promise<number> {
  const args = parseCli(argv);
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if ('problem' in args) {
    process.stderr.write(`sparse-lavida: ${args.problem}\n\n${USAGE}`);
    return 2;
  }
  // An answer streaming to the same terminal would be overwritten by a redrawn bar.
  const live = process.stderr.isTTY && !(args.command === 'ask' && process.stdout.isTTY);
  const progress = new Progress(process.stderr, live);
  try {
    await run(args, progress);
    return 0;
  } catch (e) {
    if (!isUserError(e)) throw e;
    progress.line(`sparse-lavida: ${e.message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
