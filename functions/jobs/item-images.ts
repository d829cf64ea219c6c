/**
 * An item's image, from wherever the batch said: inline base64 (or a data URL), a URL fetched
 * under the outbound guard (outbound-http.ts: no private targets unless allowed, no
 * redirects, a deadline, a size limit), or a key of the input store (INPUT_URI). Problems
 * that retrying cannot fix are {@link ItemFailure}s; others (a 5xx, a timeout, S3 failing)
 * pass through to be retried.
 */
import type { RgbImage } from '../core/image.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { decodePng, toModelImage } from '../tokenizers/png.ts';
import type { ImageSource } from './batch.ts';
import { OutboundRequestError, outboundRequest, RefusedTargetError } from './outbound-http.ts';

/** An item that cannot succeed, however often it is tried: `code` and `message` are stored on the item. */
export class ItemFailure extends Error {
  override readonly name = 'ItemFailure';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ImageSources {
  readonly inputs: ArtifactStore;
  readonly allowPrivate: boolean;
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * @example
 * const image = await loadItemImage({ url: 'https://example.com/in.png' }, sources);
 */
export async function loadItemImage(source: ImageSource, sources: ImageSources): Promise<RgbImage> {
  return toModelImage(decodePng(await itemImageBytes(source, sources)));
}

async function itemImageBytes(source: ImageSource, sources: ImageSources): Promise<Uint8Array> {
  if ('base64' in source) {
    const text = source.base64.trim();
    const data = /^data:image\/png;base64,(.*)$/is.exec(text)?.[1] ?? text;
    const compact = data.replace(/\s+/g, '');
    if (compact.length === 0 || compact.length % 4 === 1 || !BASE64.test(compact)) throw new ItemFailure('invalid_base64', 'the image is not valid base64');
    return Buffer.from(compact, 'base64');
  }
  if ('key' in source) {
    const bytes = await sources.inputs.get(source.key).catch((e: unknown) => {
      if (e instanceof Error && e.name === 'ArtifactKeyError') throw new ItemFailure('invalid_image_key', e.message);
      throw e;
    });
    if (bytes === undefined) throw new ItemFailure('image_not_found', `no image is stored under the key "${source.key}"`);
    return bytes;
  }
  try {
    const res = await outboundRequest(source.url, { method: 'GET', allowPrivate: sources.allowPrivate, timeoutMs: sources.timeoutMs, maxResponseBytes: sources.maxBytes });
    if (res.status === 200) return res.body;
    const why = res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : '';
    if (res.status >= 500 || res.status === 408 || res.status === 429) throw new Error(`fetching the image answered ${res.status}`);
    throw new ItemFailure('image_fetch_failed', `fetching the image answered ${res.status}${why}`);
  } catch (e) {
    if (e instanceof RefusedTargetError) throw new ItemFailure('image_url_not_allowed', e.message);
    if (e instanceof OutboundRequestError && e.code === 'too_large') throw new ItemFailure('image_too_large', e.message);
    throw e;
  }
}
