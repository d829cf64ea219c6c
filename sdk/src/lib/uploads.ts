/**
 * Images going up: PNG bytes or Blobs as multipart files, and as the `data:image/png;base64,`
 * URLs that chat messages carry.
 */
import type { Uploadable } from './types.ts';

/** A Blob of a PNG, for a multipart upload. */
export function toPngBlob(image: Uploadable): Blob {
  if (image instanceof Blob) return image;
  // Copied into an ArrayBuffer-backed array: DOM typings take no SharedArrayBuffer views as Blob parts.
  const bytes = image instanceof Uint8Array ? image.slice() : new Uint8Array(image.slice(0));
  return new Blob([bytes], { type: 'image/png' });
}

/**
 * A PNG as a data URL, for an `image_url` content part.
 *
 * @example
 * const answer = await client.chat.completions.create({
 *   messages: [{ role: 'user', content: [
 *     { type: 'image_url', image_url: { url: pngDataURL(await readFile('scene.png')) } },
 *     { type: 'text', text: 'what color is the circle?' },
 *   ] }],
 * });
 */
export function pngDataURL(png: Uint8Array | ArrayBuffer): string {
  return `data:image/png;base64,${toBase64(png instanceof Uint8Array ? png : new Uint8Array(png))}`;
}

/** A chat content part carrying a PNG. */
export function imagePart(png: Uint8Array | ArrayBuffer): { type: 'image_url'; image_url: { url: string } } {
  return { type: 'image_url', image_url: { url: pngDataURL(png) } };
}

/** Base64 without Node's Buffer, so the SDK also runs in browsers. */
function toBase64(bytes: Uint8Array): string {
  let binary = '';
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(binary);
}
