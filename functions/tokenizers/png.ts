/**
 * PNG codec and the upload policy for images that reach the model.
 *
 * Decoding accepts every PNG flavour pngjs reads (RGB, RGBA, grayscale with or without
 * alpha, palette, 16-bit, interlaced); pngjs normalises them to 8-bit RGBA and we
 * composite alpha over white, the background of the shapes world. Bytes that do not start
 * with the PNG signature, PNGs that fail to parse, and images under 16 px or over 4096 px
 * on a side are refused with an {@link ImageDecodeError}. The size is read from the IHDR
 * chunk before any pixel is inflated, so an oversized upload costs nothing to refuse.
 *
 * **Upload policy** ({@link toModelImage}): the model sees 64x64 images. An upload of any
 * other size is
 * 1. center-cropped to a square (the shorter side is kept whole; when the longer side
 *    exceeds it by an odd number of pixels, the extra pixel is dropped from the right or
 *    bottom), then
 * 2. resized to 64x64: by area averaging (a box filter: each output pixel is the mean of
 *    the source area it covers, partial pixels weighted by coverage) when shrinking, by
 *    bilinear interpolation (pixel centers aligned, edges clamped) when enlarging.
 *
 * A 64x64 upload is used as is. Shrinking by an integer factor averages whole blocks, so a
 * render enlarged by nearest-neighbour (each pixel repeated n x n) comes back byte-exact.
 */
import { PNG } from 'pngjs';
import type { RgbImage } from '../core/image.ts';

export const MIN_IMAGE_SIDE = 16;
export const MAX_IMAGE_SIDE = 4096;

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;
/** Signature (8) + IHDR length (4) + type (4) + width (4) + height (4). */
const IHDR_SIZE_END = 24;
/** "IHDR" as a big-endian uint32. */
const IHDR_TYPE = 0x49484452;
/** "IEND" as a big-endian uint32. */
const IEND_TYPE = 0x49454e44;

export type ImageDecodeCode = 'not_png' | 'corrupt_png' | 'unsupported_size';

/** An upload that cannot become a model image; `code` says why. */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
  constructor(
    readonly code: ImageDecodeCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Encodes an image as an 8-bit PNG: RGB (color type 2), or RGBA (color type 6) when an
 * alpha plane of width*height bytes is given.
 *
 * @example
 * writeFileSync('scene.png', encodePng(render(scene)));
 */
export function encodePng(image: RgbImage, alpha?: Uint8Array): Buffer {
  const { width, height, data } = image;
  if (data.length !== width * height * 3) {
    throw new RangeError(`image data holds ${data.length} bytes, expected ${width * height * 3} for ${width}x${height} RGB`);
  }
  const png = new PNG({ width, height });
  if (alpha === undefined) {
    png.data = Buffer.from(data.buffer, data.byteOffset, data.length);
    return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
  }
  if (alpha.length !== width * height) {
    throw new RangeError(`alpha plane holds ${alpha.length} bytes, expected ${width * height}`);
  }
  for (let p = 0; p < width * height; p++) {
    png.data[p * 4] = data[p * 3] as number;
    png.data[p * 4 + 1] = data[p * 3 + 1] as number;
    png.data[p * 4 + 2] = data[p * 3 + 2] as number;
    png.data[p * 4 + 3] = alpha[p] as number;
  }
  return PNG.sync.write(png, { colorType: 6, inputColorType: 6 });
}

/**
 * Decodes PNG bytes to RGB, compositing any transparency over white.
 *
 * @example
 * const image = decodePng(readFileSync('upload.png')); // throws ImageDecodeError
 */
export function decodePng(bytes: Uint8Array): RgbImage {
  if (bytes.length < SIGNATURE.length || SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw new ImageDecodeError('not_png', 'the image is not a PNG (its first bytes are not the PNG signature)');
  }
  if (bytes.length < IHDR_SIZE_END) {
    throw new ImageDecodeError('corrupt_png', `the PNG is truncated after ${bytes.length} bytes, before its header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(12) !== IHDR_TYPE) {
    throw new ImageDecodeError('corrupt_png', 'the PNG does not start with an IHDR header chunk');
  }
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  checkSide(width, height);
  checkComplete(bytes, view);

  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new ImageDecodeError('corrupt_png', `the PNG could not be decoded: ${reason}`, { cause });
  }
  if (png.width !== width || png.height !== height) {
    throw new ImageDecodeError('corrupt_png', `the PNG header says ${width}x${height} but the image decodes as ${png.width}x${png.height}`);
  }
  return overWhite(png.data, width, height);
}

function checkSide(width: number, height: number): void {
  if (Math.min(width, height) < MIN_IMAGE_SIDE || Math.max(width, height) > MAX_IMAGE_SIDE) {
    throw new ImageDecodeError(
      'unsupported_size',
      `the image is ${width}x${height}; each side must be ${MIN_IMAGE_SIDE} to ${MAX_IMAGE_SIDE} px`,
    );
  }
}

/** Walks the chunk list so that a cut-off upload is named as such, not as a parser failure. */
function checkComplete(bytes: Uint8Array, view: DataView): void {
  let offset: number = SIGNATURE.length;
  while (offset + 8 <= bytes.length) {
    const length = view.getUint32(offset);
    const type = view.getUint32(offset + 4);
    const end = offset + 12 + length;
    if (end > bytes.length) {
      throw new ImageDecodeError('corrupt_png', `the PNG is truncated: a chunk at byte ${offset} needs ${end} bytes, the file has ${bytes.length}`);
    }
    if (type === IEND_TYPE) return;
    offset = end;
  }
  throw new ImageDecodeError('corrupt_png', `the PNG is truncated: no end chunk in its ${bytes.length} bytes`);
}

function overWhite(rgba: Uint8Array, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const a = rgba[p * 4 + 3] as number;
    for (let c = 0; c < 3; c++) {
      const v = rgba[p * 4 + c] as number;
      // round((v * a + 255 * (255 - a)) / 255) in integers
      data[p * 3 + c] = a === 255 ? v : Math.floor((v * a + 255 * (255 - a) + 127) / 255);
    }
  }
  return { width, height, data };
}

/**
 * Applies the upload policy at the top of this file: center-crop to a square, then area
 * averaging to shrink or bilinear to enlarge. An image already `size` x `size` is returned
 * unchanged (the same object).
 *
 * @example
 * const modelImage = toModelImage(decodePng(upload)); // 64x64
 */
export function toModelImage(image: RgbImage, size = 64): RgbImage {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be a positive integer, got ${size}`);
  if (image.width === size && image.height === size) return image;
  const side = Math.min(image.width, image.height);
  const square = crop(image, Math.floor((image.width - side) / 2), Math.floor((image.height - side) / 2), side);
  if (side === size) return square;
  const taps = side > size ? boxTaps(side, size) : bilinearTaps(side, size);
  return resample(square, size, taps);
}

function crop(image: RgbImage, x0: number, y0: number, side: number): RgbImage {
  if (x0 === 0 && y0 === 0 && image.width === side && image.height === side) return image;
  const data = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    const from = ((y0 + y) * image.width + x0) * 3;
    data.set(image.data.subarray(from, from + side * 3), y * side * 3);
  }
  return { width: side, height: side, data };
}

/** For each output index, the source indices it reads and their weights (summing to 1). */
interface Taps {
  readonly index: Int32Array[];
  readonly weight: Float64Array[];
}

/** Area averaging: output i covers source [i*s/d, (i+1)*s/d), weighted by overlap. */
function boxTaps(src: number, dst: number): Taps {
  const scale = src / dst;
  const index: Int32Array[] = [];
  const weight: Float64Array[] = [];
  for (let i = 0; i < dst; i++) {
    const lo = i * scale;
    const hi = (i + 1) * scale;
    const first = Math.floor(lo);
    const last = Math.min(src - 1, Math.ceil(hi) - 1);
    const idx = new Int32Array(last - first + 1);
    const w = new Float64Array(last - first + 1);
    for (let j = first; j <= last; j++) {
      idx[j - first] = j;
      w[j - first] = (Math.min(hi, j + 1) - Math.max(lo, j)) / scale;
    }
    index.push(idx);
    weight.push(w);
  }
  return { index, weight };
}

/** Bilinear: output center (i+0.5) maps to source coordinate (i+0.5)*s/d - 0.5, clamped. */
function bilinearTaps(src: number, dst: number): Taps {
  const index: Int32Array[] = [];
  const weight: Float64Array[] = [];
  for (let i = 0; i < dst; i++) {
    const x = Math.min(src - 1, Math.max(0, ((i + 0.5) * src) / dst - 0.5));
    const left = Math.floor(x);
    const right = Math.min(src - 1, left + 1);
    const t = x - left;
    index.push(Int32Array.of(left, right));
    weight.push(Float64Array.of(1 - t, t));
  }
  return { index, weight };
}

/** Separable resampling of a square image: rows first, then columns. */
function resample(image: RgbImage, size: number, taps: Taps): RgbImage {
  const side = image.width;
  const rows = new Float64Array(side * size * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < size; x++) {
      const idx = taps.index[x] as Int32Array;
      const w = taps.weight[x] as Float64Array;
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < idx.length; k++) sum += (w[k] as number) * (image.data[(y * side + (idx[k] as number)) * 3 + c] as number);
        rows[(y * size + x) * 3 + c] = sum;
      }
    }
  }
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const idx = taps.index[y] as Int32Array;
    const w = taps.weight[y] as Float64Array;
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < idx.length; k++) sum += (w[k] as number) * (rows[((idx[k] as number) * size + x) * 3 + c] as number);
        data[(y * size + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(sum)));
      }
    }
  }
  return { width: size, height: size, data };
}
