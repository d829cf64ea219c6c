/**
 * Provisions the bucket that holds model packages and outputs (docs/design.md section 6): it is
 * created if missing, versioned, encrypted by default, closed to the public, and its
 * outputs expire. Each setting is read first and written only when it differs, so a second
 * run changes nothing and says so. Settings an operator made stronger (KMS encryption,
 * other lifecycle rules) are kept.
 */
import {
  CreateBucketCommand,
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
  S3ServiceException,
  type BucketLocationConstraint,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isNotFound, s3Request, s3Uri, StorageError } from '../functions/storage/s3-client.ts';

export interface ProvisionOptions {
  readonly bucket: string;
  readonly region: string;
  /** Objects under this prefix expire (results are kept for a while, not forever). */
  readonly outputsPrefix: string;
  readonly outputsDays: number;
}

export interface ProvisionStep {
  readonly setting: string;
  /** What the setting is now. */
  readonly state: string;
  readonly changed: boolean;
}

export const OUTPUTS_PREFIX = 'outputs/';
const EXPIRE_OUTPUTS = 'sparse-lavida-expire-outputs';
const ABORT_UPLOADS = 'sparse-lavida-abort-incomplete-uploads';
const ABORT_UPLOADS_DAYS = 7;

/** Reads a bucket setting, or `undefined` where the bucket has none (S3 answers 404). */
function readSetting<T>(bucket: string, what: string, read: () => Promise<T>): Promise<T | undefined> {
  return s3Request(s3Uri(bucket, ''), `read the ${what} of`, () =>
    read().catch((e: unknown) => {
      if (isNotFound(e)) return undefined;
      throw e;
    }),
  );
}

function writeSetting(bucket: string, what: string, write: () => Promise<unknown>): Promise<unknown> {
  return s3Request(s3Uri(bucket, ''), `set the ${what} of`, write);
}

/**
 * @example
 * for (const step of await provisionBucket(s3, { bucket: 'my-models', region: 'eu-west-1', outputsPrefix: 'outputs/', outputsDays: 30 })) {
 *   console.log(step.setting, step.state, step.changed);
 * }
 */
export async function provisionBucket(s3: S3Client, options: ProvisionOptions): Promise<ProvisionStep[]> {
  const { bucket } = options;
  return [
    await ensureBucket(s3, options),
    await ensureVersioning(s3, bucket),
    await ensureEncryption(s3, bucket),
    await ensurePublicAccessBlock(s3, bucket),
    await ensureLifecycle(s3, options),
  ];
}

async function ensureBucket(s3: S3Client, { bucket, region }: ProvisionOptions): Promise<ProvisionStep> {
  const uri = s3Uri(bucket, '');
  const exists = await s3Request(uri, 'look up', () =>
    s3.send(new HeadBucketCommand({ Bucket: bucket })).then(
      () => true,
      (e: unknown) => {
        if (isNotFound(e)) return false;
        if (e instanceof S3ServiceException && e.$metadata.httpStatusCode === 403) {
          throw new StorageError(`bucket ${bucket} exists but these credentials may not use it (it may belong to another account)`, uri);
        }
        throw e;
      },
    ),
  );
  if (exists) return { setting: 'bucket', state: 'exists', changed: false };
  await s3Request(uri, 'create', () =>
    s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        // us-east-1 is the one region S3 refuses to be told about.
        ...(region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
      }),
    ),
  );
  return { setting: 'bucket', state: `created in ${region}`, changed: true };
}

async function ensureVersioning(s3: S3Client, bucket: string): Promise<ProvisionStep> {
  const current = await readSetting(bucket, 'versioning', () => s3.send(new GetBucketVersioningCommand({ Bucket: bucket })));
  if (current?.Status === 'Enabled') return { setting: 'versioning', state: 'enabled', changed: false };
  await writeSetting(bucket, 'versioning', () =>
    s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } })),
  );
  return { setting: 'versioning', state: 'enabled', changed: true };
}

async function ensureEncryption(s3: S3Client, bucket: string): Promise<ProvisionStep> {
  const current = await readSetting(bucket, 'default encryption', () => s3.send(new GetBucketEncryptionCommand({ Bucket: bucket })));
  const algorithm = current?.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm;
  if (algorithm !== undefined) return { setting: 'default encryption', state: algorithm, changed: false };
  await writeSetting(bucket, 'default encryption', () =>
    s3.send(
      new PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      }),
    ),
  );
  return { setting: 'default encryption', state: 'AES256', changed: true };
}

const BLOCK_ALL = { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true } as const;

async function ensurePublicAccessBlock(s3: S3Client, bucket: string): Promise<ProvisionStep> {
  const current = await readSetting(bucket, 'public access block', () => s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket })));
  const config = current?.PublicAccessBlockConfiguration;
  if (config && Object.keys(BLOCK_ALL).every((k) => config[k as keyof typeof BLOCK_ALL] === true)) {
    return { setting: 'public access', state: 'blocked', changed: false };
  }
  await writeSetting(bucket, 'public access block', () =>
    s3.send(new PutPublicAccessBlockCommand({ Bucket: bucket, PublicAccessBlockConfiguration: BLOCK_ALL })),
  );
  return { setting: 'public access', state: 'blocked', changed: true };
}

function lifecycleRules({ outputsPrefix, outputsDays }: ProvisionOptions): LifecycleRule[] {
  return [
    {
      ID: EXPIRE_OUTPUTS,
      Status: 'Enabled',
      Filter: { Prefix: outputsPrefix },
      Expiration: { Days: outputsDays },
      // With versioning on, expiry leaves the old bytes as a noncurrent version: drop those too.
      NoncurrentVersionExpiration: { NoncurrentDays: 1 },
    },
    { ID: ABORT_UPLOADS, Status: 'Enabled', Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: ABORT_UPLOADS_DAYS } },
  ];
}

/** The parts of a rule this tool sets, in a form that compares equal however S3 echoes it back. */
function ruleShape(rule: LifecycleRule): string {
  return JSON.stringify([
    rule.ID,
    rule.Status,
    rule.Filter?.Prefix ?? '',
    rule.Expiration?.Days,
    rule.NoncurrentVersionExpiration?.NoncurrentDays,
    rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation,
  ]);
}

async function ensureLifecycle(s3: S3Client, options: ProvisionOptions): Promise<ProvisionStep> {
  const { bucket, outputsPrefix, outputsDays } = options;
  const state = `${outputsPrefix} expires after ${outputsDays} days; incomplete uploads are aborted after ${ABORT_UPLOADS_DAYS} days`;
  const current = await readSetting(bucket, 'lifecycle rules', () => s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket })));
  const existing = current?.Rules ?? [];
  const wanted = lifecycleRules(options);
  const ours = new Set(wanted.map((r) => r.ID));
  const have = new Set(existing.filter((r) => ours.has(r.ID)).map(ruleShape));
  if (wanted.every((r) => have.has(ruleShape(r)))) return { setting: 'lifecycle', state, changed: false };
  const others = existing.filter((r) => !ours.has(r.ID));
  await writeSetting(bucket, 'lifecycle rules', () =>
    s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [...others, ...wanted] } })),
  );
  return { setting: 'lifecycle', state, changed: true };
}
