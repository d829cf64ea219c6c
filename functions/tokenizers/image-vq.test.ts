import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blankImage, type RgbImage } from '../core/image.ts';
import { Rng } from '../core/rng.ts';
import { render } from '../../models/world/render.ts';
import { sampleScene } from '../world/scene.ts';
import { countPatches, ImageVq, loadCodebook, patchesOf, PATCH_VALUES, saveCodebook, trainCodebook } from './image-vq.ts';

const shipped = loadCodebook(readFileSync(new URL('../../models/shapes-tiny/codebook.bin', import.meta.url)));

/** Scenes the codebook was not trained on (training used seed 1; this stream is unrelated). */
function heldOutScenes(count: number): RgbImage[] {
  const rng = new Rng(20_251_214);
  return Array.from({ length: count }, () => render(sampleScene(rng)));
}

/** A patch of one flat color. */
function flat(r: number, g: number, b: number): Uint8Array {
  const patch = new Uint8Array(PATCH_VALUES);
  for (let i = 0; i < PATCH_VALUES; i += 3) patch.set([r, g, b], i);
  return patch;
}

describe('ImageVq with the shipped codebook', () => {
  it('reconstructs held-out rendered scenes exactly', () => {
    for (const image of heldOutScenes(200)) {
      const codes = shipped.encode(image);
      expect(codes.length).toBe(256);
      expect(Buffer.from(shipped.decode(codes).data).equals(Buffer.from(image.data))).toBe(true);
    }
  });

  it('gives the white background one code', () => {
    const codes = shipped.encode(blankImage(64, 64));
    expect(new Set(codes).size).toBe(1);
  });

  it('maps a noisy render to the codes of the clean one', () => {
    const [image] = heldOutScenes(1) as [RgbImage];
    const rng = new Rng(3);
    const noisy = Uint8Array.from(image.data, (v) => Math.min(255, Math.max(0, Math.round(v + 8 * rng.normal()))));
    expect([...shipped.encode({ width: 64, height: 64, data: noisy })]).toEqual([...shipped.encode(image)]);
  });

  it('rejects images that are not 64x64', () => {
    expect(() => shipped.encode(blankImage(128, 128))).toThrow(/64x64 images, got 128x128/);
    expect(() => shipped.encode(blankImage(64, 32))).toThrow(RangeError);
  });

  it('rejects codes outside [0, K) and code lists of the wrong length', () => {
    const codes = new Int32Array(256);
    codes[7] = shipped.size;
    expect(() => shipped.decode(codes)).toThrow(/code \d+ at position 7 is outside/);
    codes[7] = -1;
    expect(() => shipped.decode(codes)).toThrow(RangeError);
    expect(() => shipped.decode(new Uint16Array(255))).toThrow(/256 codes, got 255/);
  });
});

describe('codebook files', () => {
  it('rejects bytes whose length is not a positive multiple of 48', () => {
    expect(() => loadCodebook(new Uint8Array(100))).toThrow(/not a positive multiple of 48/);
    expect(() => loadCodebook(new Uint8Array(0))).toThrow(RangeError);
  });

  it('saves the bytes it loads', () => {
    const bytes = saveCodebook(shipped);
    expect(bytes.length).toBe(shipped.size * 48);
    expect(saveCodebook(loadCodebook(bytes))).toEqual(bytes);
  });

  it('rounds a float codebook and refuses values outside [0, 255]', () => {
    const values = new Float32Array(PATCH_VALUES).fill(12.6);
    expect(new ImageVq(values).codebook[0]).toBe(13);
    values[5] = 256;
    expect(() => new ImageVq(values)).toThrow(/outside \[0, 255\]/);
  });

  it('encodes to the first of two identical entries', () => {
    const vq = new ImageVq(Uint8Array.from([...flat(1, 2, 3), ...flat(9, 9, 9), ...flat(9, 9, 9)]));
    const image = blankImage(64, 64, [9, 9, 9]);
    expect(new Set(vq.encode(image))).toEqual(new Set([1]));
  });
});

describe('trainCodebook', () => {
  it('counts each distinct patch once, with its frequency as weight', () => {
    const counted = countPatches([Uint8Array.from([...flat(1, 1, 1), ...flat(2, 2, 2)]), flat(1, 1, 1)]);
    expect(counted.weights).toEqual(Float64Array.from([2, 1]));
    expect(counted.patches.length).toBe(2 * PATCH_VALUES);
  });

  it('finds the obvious clusters of a tiny synthetic set', () => {
    const centers = [flat(20, 20, 20), flat(200, 40, 40), flat(40, 200, 40)];
    const rng = new Rng(5);
    const chunks: Uint8Array[] = [];
    for (let n = 0; n < 60; n++) {
      const center = centers[n % 3] as Uint8Array;
      chunks.push(Uint8Array.from(center, (v) => v + rng.int(5) - 2));
    }
    const trained = trainCodebook(countPatches(chunks), 3, new Rng(1), 20);
    expect(trained.exact).toBe(false);
    expect(trained.distinct).toBe(60);
    const vq = new ImageVq(trained.codebook);
    for (const center of centers) {
      // some entry lies within 1 of the center in every value
      const nearest = Math.min(
        ...Array.from({ length: vq.size }, (_, c) =>
          Math.max(...vq.codebook.subarray(c * PATCH_VALUES, (c + 1) * PATCH_VALUES).map((v, i) => Math.abs(v - (center[i] as number)))),
        ),
      );
      expect(nearest).toBeLessThanOrEqual(1);
    }
    expect(trained.meanSquaredError).toBeLessThan(3);
  });

  it('keeps the distinct patches themselves when there are at most k, most frequent first', () => {
    const chunks = [flat(5, 5, 5), flat(7, 7, 7), flat(7, 7, 7)];
    const trained = trainCodebook(countPatches(chunks), 4, new Rng(1), 10);
    expect(trained.exact).toBe(true);
    expect(trained.codebook).toEqual(Uint8Array.from([...flat(7, 7, 7), ...flat(5, 5, 5)]));
  });

  it('lowers the error of rendered scenes as k grows', () => {
    const rng = new Rng(9);
    const counted = countPatches(Array.from({ length: 50 }, () => patchesOf(render(sampleScene(rng)))));
    const coarse = trainCodebook(counted, 8, new Rng(1), 20);
    const fine = trainCodebook(counted, 32, new Rng(1), 20);
    expect(fine.meanSquaredError).toBeLessThan(coarse.meanSquaredError);
  });

  it('is reproducible from its seed', () => {
    const rng = new Rng(9);
    const counted = countPatches(Array.from({ length: 20 }, () => patchesOf(render(sampleScene(rng)))));
    expect(trainCodebook(counted, 10, new Rng(4), 10).codebook).toEqual(trainCodebook(counted, 10, new Rng(4), 10).codebook);
  });
});
