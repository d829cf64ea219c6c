/**
 * The S3 client every part of the service and the infra CLI uses, and the one place S3
 * failures become errors that name the bucket and key.
 */
import { S3Client, S3ServiceException, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { S3Settings } from '../core/config.ts';

/** An S3 request failed: `uri` names the bucket or object. */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    message: string,
    readonly uri: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Checksums are sent only where an operation requires them or where we ask for them
 * (`ChecksumAlgorithm` on uploads); downloads are checked against the manifest's sha256.
 * With the SDK's defaults, stream uploads use aws-chunked trailers, which S3-compatible test
 * servers store as corrupted bytes. A custom endpoint implies path-style addressing.
 *
 * @example
 * const s3 = createS3Client({ region: 'eu-west-1' });
 */
export function createS3Client(settings: S3Settings, credentials?: S3ClientConfig['credentials']): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    region: settings.region,
    followRegionRedirects: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint, forcePathStyle: true }),
    ...(credentials === undefined ? {} : { credentials }),
  });
}

export function s3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** Whether an S3 failure means "no such bucket, key or configuration". */
export function isNotFound(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.$metadata.httpStatusCode === 404 || error.name === 'NoSuchKey');
}

/**
 * Runs one S3 request; a failure becomes a StorageError saying what was being done to which
 * object (`doing` reads like "cannot <doing>").
 *
 * @example
 * await s3Request(s3Uri(bucket, key), 'read', () => s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
 */
export async function s3Request<T>(uri: string, doing: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (e) {
    if (e instanceof StorageError) throw e;
    throw new StorageError(`cannot ${doing} ${uri}: ${describeS3Error(e)}`, uri, { cause: e });
  }
}

function describeS3Error(error: unknown): string {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    return `${error.name}${status === undefined ? '' : ` (HTTP ${status})`}${error.message && error.message !== error.name && error.message !== 'UnknownError' ? `: ${error.message}` : ''}`;
  }
  return error instanceof Error ? error.message : String(error);
}
