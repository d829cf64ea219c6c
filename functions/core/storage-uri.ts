/**
 * Storage locations as operators write them: `file://PATH` (a relative PATH resolves against
 * the working directory, `file:///abs` is absolute) or `s3://BUCKET/KEY`. Parsed once at the
 * boundary (environment, command line); the rest of the code sees a `StorageUri`.
 */
import { z } from 'zod';

export type StorageUri =
  | { readonly scheme: 'file'; readonly path: string }
  /** `key` is an object key or a folder prefix ending in `/`; it may be empty (the bucket root). */
  | { readonly scheme: 's3'; readonly bucket: string; readonly key: string };

/** S3 bucket naming rules: 3-63 characters, lower-case letters, digits, dots and hyphens. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export const storageUriSchema = z.string().transform((text, ctx): StorageUri => {
  if (text.startsWith('file://')) {
    const path = text.slice('file://'.length);
    if (path !== '') return { scheme: 'file', path };
    ctx.addIssue({ code: 'custom', message: `"${text}" names no path` });
    return z.NEVER;
  }
  if (text.startsWith('s3://')) {
    const rest = text.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? '' : rest.slice(slash + 1);
    if (BUCKET_NAME.test(bucket)) return { scheme: 's3', bucket, key };
    ctx.addIssue({ code: 'custom', message: `"${bucket}" in "${text}" is not a valid S3 bucket name` });
    return z.NEVER;
  }
  ctx.addIssue({ code: 'custom', message: `"${text}" is not a file:// or s3:// URI` });
  return z.NEVER;
});

/**
 * @example
 * parseStorageUri('s3://models-bucket/models/shapes-tiny/latest');
 * // { scheme: 's3', bucket: 'models-bucket', key: 'models/shapes-tiny/latest' }
 */
export function parseStorageUri(text: string): StorageUri {
  const parsed = storageUriSchema.safeParse(text);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => i.message).join('; '));
  return parsed.data;
}

export function formatStorageUri(uri: StorageUri): string {
  return uri.scheme === 'file' ? `file://${uri.path}` : `s3://${uri.bucket}/${uri.key}`;
}
