/** The tokenizers a model package defines: words from `vocab.json`, image codes from its codebook. */
import { z } from 'zod';
import { vocabFileSchema, type Manifest } from '../core/manifest.ts';
import { GRID_SIDE, IMAGE_SIDE, loadCodebook, PATCH_SIDE, type ImageVq } from './image-vq.ts';
import { TextTokenizer } from './text.ts';

export interface ModelTokenizers {
  readonly manifest: Manifest;
  readonly text: TextTokenizer;
  readonly image: ImageVq;
}

/** Anything that hands out a package's verified files by name. */
export interface PackageFiles {
  readonly manifest: Manifest;
  file(name: string): Uint8Array;
}

/**
 * @example
 * const { text, image } = createTokenizers(await loadPackageDir('models/shapes-tiny'));
 */
export function createTokenizers(pkg: PackageFiles): ModelTokenizers {
  const { manifest } = pkg;
  if (manifest.image.pixels !== IMAGE_SIDE || manifest.image.patch !== PATCH_SIDE || manifest.image.grid !== GRID_SIDE) {
    throw new RangeError(
      `this runtime tokenizes ${IMAGE_SIDE}px images in ${PATCH_SIDE}px patches; the package asks for ${manifest.image.pixels}px in ${manifest.image.patch}px patches`,
    );
  }
  const vocabJson: unknown = JSON.parse(new TextDecoder().decode(pkg.file(manifest.vocab.file)));
  const vocab = vocabFileSchema.safeParse(vocabJson);
  if (!vocab.success) throw new RangeError(`${manifest.vocab.file} does not validate: ${z.prettifyError(vocab.error)}`);
  const image = loadCodebook(pkg.file(manifest.image.codebook));
  if (image.size !== manifest.vocab.image.count) {
    throw new RangeError(`${manifest.image.codebook} holds ${image.size} codes, the manifest says ${manifest.vocab.image.count}`);
  }
  return { manifest, text: new TextTokenizer(manifest.vocab, vocab.data), image };
}
