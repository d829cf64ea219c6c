/**
 * Trains the image VQ codebook on rendered random scenes and writes `codebook.bin`.
 *
 * @example
 * npm run codebook -- --k 256 --scenes 5000 --seed 1 --out models/shapes-tiny/codebook.bin
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { Rng } from '../../functions/core/rng.ts';
import { countPatches, GRID_CODES, ImageVq, patchesOf, saveCodebook, trainCodebook } from '../../functions/tokenizers/image-vq.ts';
import { render } from './render.ts';
import { sampleScene } from '../../functions/world/scene.ts';

/** Held-out scenes come from a stream of their own, disjoint in intent from training. */
const HELD_OUT_SEED_OFFSET = 1_000_000;

const Options = z.object({
  k: z.coerce.number().int().min(1).max(65536),
  scenes: z.coerce.number().int().min(1),
  heldOut: z.coerce.number().int().min(1),
  seed: z.coerce.number().int(),
  iterations: z.coerce.number().int().min(1),
  out: z.string().min(1),
});

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '256' },
    scenes: { type: 'string', default: '5000' },
    'held-out': { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    iterations: { type: 'string', default: '50' },
    out: { type: 'string', default: 'models/shapes-tiny/codebook.bin' },
  },
  strict: true,
});
const parsed = Options.safeParse({ ...values, heldOut: values['held-out'] });
if (!parsed.success) {
  console.error(`codebook: bad options\n${z.prettifyError(parsed.error)}`);
  process.exit(2);
}
const options = parsed.data;

function* renderedPatches(count: number, rng: Rng): Generator<Uint8Array> {
  for (let i = 0; i < count; i++) yield patchesOf(render(sampleScene(rng)));
}

const rng = new Rng(options.seed);
const counted = countPatches(renderedPatches(options.scenes, rng));
const trained = trainCodebook(counted, options.k, rng, options.iterations);
const vq = new ImageVq(trained.codebook);

console.log(`scenes: ${options.scenes} (seed ${options.seed}), patches: ${options.scenes * GRID_CODES}, distinct patches: ${trained.distinct}`);
console.log(
  trained.exact
    ? `k requested: ${options.k}; distinct patches <= k, so the codebook is exactly the distinct patches: K = ${vq.size}`
    : `k-means: K = ${vq.size}, ${trained.iterations} Lloyd iterations, training mean squared error per value ${trained.meanSquaredError.toFixed(3)}`,
);

let squared = 0;
let absolute = 0;
let exactImages = 0;
const heldOutRng = new Rng(options.seed + HELD_OUT_SEED_OFFSET);
for (let i = 0; i < options.heldOut; i++) {
  const image = render(sampleScene(heldOutRng));
  const back = vq.decode(vq.encode(image));
  let differs = false;
  for (let j = 0; j < image.data.length; j++) {
    const d = (image.data[j] as number) - (back.data[j] as number);
    squared += d * d;
    absolute += Math.abs(d);
    if (d !== 0) differs = true;
  }
  if (!differs) exactImages++;
}
const valueCount = options.heldOut * 64 * 64 * 3;
console.log(
  `held-out scenes: ${options.heldOut}; reconstruction mean squared error ${(squared / valueCount).toFixed(4)}, ` +
    `mean absolute error ${(absolute / valueCount).toFixed(4)} per value; exact images ${exactImages}/${options.heldOut}`,
);

const bytes = saveCodebook(vq);
mkdirSync(dirname(options.out), { recursive: true });
writeFileSync(options.out, bytes);
console.log(`wrote ${options.out}: ${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}`);
