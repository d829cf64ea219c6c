/**
 * Writes the shapes-tiny package's vocabulary and manifest from the world's grammar and
 * the files present in the package folder (sha256 and size of each).
 *
 *   npm run package -- [--dir models/shapes-tiny]
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { manifestSchema, type Manifest } from '../../functions/core/manifest.ts';
import { sha256Hex } from '../../functions/storage/package-files.ts';
import { WORDS } from '../world/language.ts';
import { IMAGE_SIZE } from '../world/render.ts';

/** Special tokens, in id order. */
export const SPECIAL_TOKENS = ['<pad>', '<mask>', '<reg>', '<end>', '<sep>', '<t2i>', '<edit>', '<answer>'] as const;
const PATCH = 4;
const PATCH_VALUES = PATCH * PATCH * 3;

export async function buildManifest(dir: string): Promise<Manifest> {
  const tokens = [...SPECIAL_TOKENS, ...WORDS];
  await writeFile(join(dir, 'vocab.json'), `${JSON.stringify({ tokens })}\n`);
  const codebook = await readFile(join(dir, 'codebook.bin'));
  if (codebook.length % PATCH_VALUES !== 0) throw new Error(`codebook.bin length ${codebook.length} is not a multiple of ${PATCH_VALUES}`);
  const codes = codebook.length / PATCH_VALUES;
  const fileNames = ['vocab.json', 'codebook.bin'];
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
  };
  return manifestSchema.parse(manifest);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { dir: { type: 'string', default: 'models/shapes-tiny' } } });
  const dir = values.dir as string;
  const manifest = await buildManifest(dir);
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${join(dir, 'manifest.json')}: ${Object.keys(manifest.files).length} files, vocabulary ${manifest.vocab.size}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
