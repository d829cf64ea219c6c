/**
 * Writes the shapes-tiny package's vocabulary and manifest from the world's grammar and
 * the files present in the package folder (sha256 and size of each).
 *
 *   npm run package -- [--dir models/shapes-tiny] [--model-info runs/NAME/model-info.json]
 *
 * `--model-info` (written by models/train/export.py) supplies the denoiser's `model` and
 * `sampling` sections; without it, those of the existing manifest.json are kept, so
 * re-packaging never drops the model. A folder without a codebook gets the shipped one,
 * models/shapes-tiny/codebook.bin: the one `npm run data` tokenizes images with by default.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { manifestSchema, type Manifest } from '../../functions/core/manifest.ts';
import { sha256Hex } from '../../functions/storage/package-files.ts';
import { WORDS } from '../../functions/world/language.ts';
import { IMAGE_SIZE } from '../world/render.ts';

/** Special tokens, in id order. */
export const SPECIAL_TOKENS = ['<pad>', '<mask>', '<reg>', '<end>', '<sep>', '<t2i>', '<edit>', '<answer>'] as const;
const PATCH = 4;
const PATCH_VALUES = PATCH * PATCH * 3;
/** The shipped package, whose codebook the training data is tokenized with by default. */
const SHIPPED_DIR = resolve(import.meta.dirname, '../shapes-tiny');

/** The model-describing part of a manifest, as export.py writes it (checked by manifestSchema). */
const modelInfoSchema = z.object({ model: z.unknown(), sampling: z.unknown() }).passthrough();
type ModelInfo = Pick<Manifest, 'model' | 'sampling'>;

async function readModelInfo(dir: string, modelInfo?: string): Promise<ModelInfo> {
  if (modelInfo !== undefined) {
    const info = modelInfoSchema.parse(JSON.parse(await readFile(modelInfo, 'utf8')));
    return { model: info.model, sampling: info.sampling } as ModelInfo;
  }
  const current = join(dir, 'manifest.json');
  if (!existsSync(current)) return {};
  const old = JSON.parse(await readFile(current, 'utf8')) as Partial<ModelInfo>;
  return { model: old.model, sampling: old.sampling };
}

export async function buildManifest(dir: string, modelInfo?: string): Promise<Manifest> {
  const { model, sampling } = await readModelInfo(dir, modelInfo);
  const tokens = [...SPECIAL_TOKENS, ...WORDS];
  await writeFile(join(dir, 'vocab.json'), `${JSON.stringify({ tokens })}\n`);
  const codebook = await readFile(join(dir, 'codebook.bin'));
  if (codebook.length % PATCH_VALUES !== 0) throw new Error(`codebook.bin length ${codebook.length} is not a multiple of ${PATCH_VALUES}`);
  const codes = codebook.length / PATCH_VALUES;
  const fileNames = ['vocab.json', 'codebook.bin', ...(model ? [model.file] : [])];
  const files: Manifest['files'] = {};
  for (const name of fileNames) {
    const bytes = await readFile(join(dir, name));
    files[name] = { sha256: sha256Hex(bytes), size: bytes.length };
  }
  const id = (t: (typeof SPECIAL_TOKENS)[number]) => SPECIAL_TOKENS.indexOf(t);
  const manifest: Manifest = {
    name: 'shapes-tiny',
    version: '0.1.0',
    description: 'Reference masked diffusion model for the synthetic shapes world (text-to-image, edits, answers).',
    files,
    vocab: {
      size: tokens.length + codes,
      file: 'vocab.json',
      special: {
        pad: id('<pad>'), mask: id('<mask>'), reg: id('<reg>'), end: id('<end>'), sep: id('<sep>'),
        t2i: id('<t2i>'), edit: id('<edit>'), answer: id('<answer>'),
      },
      text: { start: SPECIAL_TOKENS.length, count: WORDS.length },
      image: { start: tokens.length, count: codes },
    },
    image: { pixels: IMAGE_SIZE, patch: PATCH, grid: IMAGE_SIZE / PATCH, codebook: 'codebook.bin' },
    limits: {
      t2i: { prompt: 32, answer: (IMAGE_SIZE / PATCH) ** 2 },
      edit: { prompt: 272, answer: (IMAGE_SIZE / PATCH) ** 2 },
      answer: { prompt: 272, answer: 32 },
    },
    ...(model ? { model } : {}),
    ...(sampling ? { sampling } : {}),
  };
  return manifestSchema.parse(manifest);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { dir: { type: 'string', default: 'models/shapes-tiny' }, 'model-info': { type: 'string' } } });
  const dir = values.dir as string;
  if (!existsSync(join(dir, 'codebook.bin'))) {
    await copyFile(join(SHIPPED_DIR, 'codebook.bin'), join(dir, 'codebook.bin'));
    console.log(`${dir} had no codebook.bin: copied ${join(SHIPPED_DIR, 'codebook.bin')}`);
  }
  const manifest = await buildManifest(dir, values['model-info']);
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${join(dir, 'manifest.json')}: ${Object.keys(manifest.files).length} files, vocabulary ${manifest.vocab.size}${manifest.model ? `, model ${manifest.model.file}` : ''}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
