/**
 * Images that arrive in requests (a multipart upload, base64 in JSON, a data URL in a chat
 * message) become 64x64 model images under the upload policy of tokenizers/png.ts. Every
 * failure is a 422 naming the field it came from.
 */
import type { RgbImage } from '../core/image.ts';
import { decodePng, toModelImage } from '../tokenizers/png.ts';
import { ApiError, forParam } from './errors.ts';

const DATA_URL = /^data:([^;,]*)((?:;[^;,]*)*),(.*)$/s;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A PNG given as a data URL (`data:image/png;base64,…`).
 *
 * @example
 * const image = imageFromDataUrl(part.image_url.url, 'messages[0].content[1].image_url.url');
 */
export function imageFromDataUrl(url: string, param: string): RgbImage {
  const match = DATA_URL.exec(url.trim());
  if (!match) {
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0];
    const why = scheme !== undefined && scheme.toLowerCase() !== 'data:' ? `${scheme} URLs are not fetched` : 'it is not a well-formed data URL';
    throw new ApiError(422, 'invalid_image_url', `the image must be a data:image/png;base64,… URL; ${why}`, param);
  }
  const [, mime = '', params = '', payload = ''] = match;
  if (mime.toLowerCase() !== 'image/png') throw new ApiError(422, 'invalid_image_format', `the image must be a PNG (data:image/png;base64,…), got ${mime || 'no media type'}`, param);
  if (!params.toLowerCase().split(';').includes('base64')) throw new ApiError(422, 'invalid_image_url', 'the data URL must be base64-encoded (data:image/png;base64,…)', param);
  return imageFromBase64Text(payload, param, 'invalid_image_url');
}

/** A PNG given in JSON: base64, or a data URL. */
export function imageFromJson(value: string, param: string): RgbImage {
  return value.trimStart().startsWith('data:') ? imageFromDataUrl(value, param) : imageFromBase64Text(value, param, 'invalid_base64');
}

/** An uploaded PNG file. */
export async function imageFromFile(file: File, param: string): Promise<RgbImage> {
  return imageFromBytes(new Uint8Array(await file.arrayBuffer()), param);
}

function imageFromBase64Text(text: string, param: string, code: string): RgbImage {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 === 1 || !BASE64.test(compact)) {
    throw new ApiError(422, code, 'the image is not valid base64', param);
  }
  return imageFromBytes(Buffer.from(compact, 'base64'), param);
}

function imageFromBytes(bytes: Uint8Array, param: string): RgbImage {
  return forParam(param, () => toModelImage(decodePng(bytes)));
}
