import { randomBytes } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import type { RgbImage } from '../core/image.ts';
import { Rng } from '../core/rng.ts';
import { render } from '../../models/world/render.ts';
import { sampleScene } from '../world/scene.ts';
import { decodePng, encodePng, ImageDecodeError, toModelImage } from './png.ts';

function scene(seed: number): RgbImage {
  return render(sampleScene(new Rng(seed), 3));
}

/** Each pixel repeated factor x factor times. */
function upscale(image: RgbImage, factor: number): RgbImage {
  const width = image.width * factor;
  const height = image.height * factor;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (Math.floor(y / factor) * image.width + Math.floor(x / factor)) * 3;
      data.set(image.data.subarray(from, from + 3), (y * width + x) * 3);
    }
  }
  return { width, height, data };
}

/** The image placed in a wider canvas with `left` and `right` columns of a flat color. */
function padColumns(image: RgbImage, left: number, right: number, value: number): RgbImage {
  const width = image.width + left + right;
  const data = new Uint8Array(width * image.height * 3).fill(value);
  for (let y = 0; y < image.height; y++) {
    data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), (y * width + left) * 3);
  }
  return { width, height: image.height, data };
}

function chunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

/** A 16x16 8-bit palette PNG (color type 3): left half palette entry 0, right half entry 1. */
function palettePng(palette: readonly number[], transparency?: readonly number[]): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(16, 0);
  header.writeUInt32BE(16, 4);
  header.set([8, 3, 0, 0, 0], 8);
  const rows = new Uint8Array(16 * 17);
  for (let y = 0; y < 16; y++) rows.fill(1, y * 17 + 9, y * 17 + 17);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('PLTE', Uint8Array.from(palette)),
    ...(transparency === undefined ? [] : [chunk('tRNS', Uint8Array.from(transparency))]),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

function decodeError(bytes: Uint8Array): ImageDecodeError {
  try {
    decodePng(bytes);
  } catch (error) {
    if (error instanceof ImageDecodeError) return error;
    throw error;
  }
  throw new Error('decodePng accepted the bytes');
}

describe('decodePng', () => {
  it('round-trips a rendered scene byte-exactly', () => {
    const image = scene(1);
    const back = decodePng(encodePng(image));
    expect(back.width).toBe(64);
    expect(back.height).toBe(64);
    expect(Buffer.from(back.data).equals(Buffer.from(image.data))).toBe(true);
  });

  it('writes RGB as PNG color type 2', () => {
    expect(encodePng(scene(2))[25]).toBe(2);
  });

  it('composites transparency over white', () => {
    const image: RgbImage = { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3) };
    const alpha = new Uint8Array(16 * 16);
    alpha[0] = 0;
    alpha[1] = 128;
    alpha[2] = 255;
    for (let p = 3; p < alpha.length; p++) alpha[p] = 255;
    image.data.set([200, 0, 100, 200, 0, 100, 200, 0, 100]);
    const bytes = encodePng(image, alpha);
    expect(bytes[25]).toBe(6);
    const back = decodePng(bytes);
    expect([...back.data.subarray(0, 9)]).toEqual([255, 255, 255, 227, 127, 177, 200, 0, 100]);
  });

  it('reads grayscale PNGs as gray RGB', () => {
    const png = new PNG({ width: 16, height: 16 });
    png.data.fill(255);
    png.data.set([90, 90, 90, 255], 0);
    const back = decodePng(PNG.sync.write(png, { colorType: 0 }));
    expect([...back.data.subarray(0, 6)]).toEqual([90, 90, 90, 255, 255, 255]);
  });

  it('reads palette PNGs, compositing palette transparency over white', () => {
    const opaque = decodePng(palettePng([200, 0, 100, 10, 20, 30]));
    expect([...opaque.data.subarray(0, 3)]).toEqual([200, 0, 100]);
    expect([...opaque.data.subarray(15 * 3, 16 * 3)]).toEqual([10, 20, 30]);
    const clear = decodePng(palettePng([200, 0, 100, 10, 20, 30], [0]));
    expect([...clear.data.subarray(0, 3)]).toEqual([255, 255, 255]);
    expect([...clear.data.subarray(15 * 3, 16 * 3)]).toEqual([10, 20, 30]);
  });

  it('rejects a JPEG header, random bytes and empty input as not_png', () => {
    const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]);
    for (const bytes of [jpeg, new Uint8Array(randomBytes(64)), new Uint8Array(0)]) {
      expect(decodeError(bytes).code).toBe('not_png');
    }
  });

  it('rejects a truncated PNG as corrupt_png', () => {
    const bytes = encodePng(scene(3));
    const cut = decodeError(bytes.subarray(0, bytes.length - 30));
    expect(cut.code).toBe('corrupt_png');
    expect(cut.message).toContain('truncated');
    expect(decodeError(bytes.subarray(0, 20)).code).toBe('corrupt_png');
  });

  it('rejects a PNG whose compressed data is damaged as corrupt_png', () => {
    const bytes = Uint8Array.from(encodePng(scene(4)));
    for (let i = 45; i < 80; i++) bytes[i] = (bytes[i] as number) ^ 0x5a;
    expect(decodeError(bytes).code).toBe('corrupt_png');
  });

  it('rejects images under 16 px or over 4096 px on a side, naming the size', () => {
    const small = encodePng({ width: 15, height: 40, data: new Uint8Array(15 * 40 * 3) });
    const tooSmall = decodeError(small);
    expect(tooSmall.code).toBe('unsupported_size');
    expect(tooSmall.message).toContain('15x40');

    // only the header is read, so a header claiming 5000x20 is enough
    const large = Uint8Array.from(encodePng({ width: 20, height: 20, data: new Uint8Array(20 * 20 * 3) }));
    new DataView(large.buffer).setUint32(16, 5000);
    const tooLarge = decodeError(large);
    expect(tooLarge.code).toBe('unsupported_size');
    expect(tooLarge.message).toContain('5000x20');
  });
});

describe('toModelImage', () => {
  it('returns a 64x64 image unchanged', () => {
    const image = scene(5);
    expect(toModelImage(image)).toBe(image);
  });

  it('shrinks a 2x nearest upscale of a render back to the exact render', () => {
    const image = scene(6);
    const upload = decodePng(encodePng(upscale(image, 2)));
    expect(upload.width).toBe(128);
    expect(Buffer.from(toModelImage(upload).data).equals(Buffer.from(image.data))).toBe(true);
  });

  it('center-crops a wide image to its middle square', () => {
    const image = scene(7);
    const wide = padColumns(image, 10, 11, 0);
    expect(Buffer.from(toModelImage(wide).data).equals(Buffer.from(image.data))).toBe(true);
  });

  it('crops a tall image, then averages areas when shrinking', () => {
    const image = scene(8);
    const tall = upscale(image, 3);
    const tallPadded: RgbImage = {
      width: tall.width,
      height: tall.height + 2,
      data: new Uint8Array((tall.height + 2) * tall.width * 3).fill(9),
    };
    tallPadded.data.set(tall.data, tall.width * 3);
    expect(Buffer.from(toModelImage(tallPadded).data).equals(Buffer.from(image.data))).toBe(true);
  });

  it('averages the area an output pixel covers when the ratio is not whole', () => {
    // 96 columns to 64, columns repeating 0, 100, 200: output 0 covers source 0 and half of 1
    const data = new Uint8Array(96 * 96 * 3);
    for (let y = 0; y < 96; y++) for (let x = 0; x < 96; x++) data.fill((x % 3) * 100, (y * 96 + x) * 3, (y * 96 + x + 1) * 3);
    const out = toModelImage({ width: 96, height: 96, data });
    expect(out.data[0]).toBe(33);
    expect(out.data[3]).toBe(167);
  });

  it('enlarges bilinearly, keeping flat regions flat and blending edges', () => {
    // 32x32: left half black, right half white
    const data = new Uint8Array(32 * 32 * 3);
    for (let y = 0; y < 32; y++) data.fill(255, (y * 32 + 16) * 3, (y * 32 + 32) * 3);
    const out = toModelImage({ width: 32, height: 32, data });
    expect(out.width).toBe(64);
    const at = (x: number): number => out.data[(5 * 64 + x) * 3] as number;
    expect(at(0)).toBe(0);
    expect(at(30)).toBe(0);
    expect(at(31)).toBe(64);
    expect(at(32)).toBe(191);
    expect(at(33)).toBe(255);
    expect(at(63)).toBe(255);
  });
});
