/**
 * The one config object, parsed from the environment with zod. Bad values stop start-up
 * with a message naming the variable.
 */
import { z } from 'zod';
import { storageUriSchema, type StorageUri } from './storage-uri.ts';

export const LOOPBACK_HOSTS = ['127.0.0.1', '::1', 'localhost'] as const;

/** Where onnxruntime runs the model; `cuda` fails start-up where CUDA is unavailable. */
export const EXECUTION_PROVIDERS = ['cpu', 'cuda'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** Where S3 requests go: AWS, or an S3-compatible endpoint (s3rver, MinIO) when `endpoint` is set. */
export interface S3Settings {
  readonly region: string;
  readonly endpoint?: string;
}

const s3Variables = {
  AWS_REGION: z.string().min(1).default('us-east-1'),
  S3_ENDPOINT: z.url().optional(),
};

function s3Settings(env: { AWS_REGION: string; S3_ENDPOINT?: string | undefined }): S3Settings {
  return env.S3_ENDPOINT === undefined ? { region: env.AWS_REGION } : { region: env.AWS_REGION, endpoint: env.S3_ENDPOINT };
}

const s3SettingsSchema = z.object(s3Variables).transform(s3Settings);

/**
 * A Standard Webhooks signing secret: `whsec_` and the base64 of 24 to 64 random bytes.
 *
 * @example
 * webhookSecretSchema.parse('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'); // ok
 */
export const webhookSecretSchema = z
  .string()
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'a webhook secret is "whsec_" followed by base64')
  .refine((s) => {
    const bytes = Buffer.from(s.slice('whsec_'.length), 'base64').length;
    return bytes >= 24 && bytes <= 64;
  }, 'a webhook secret must hold 24 to 64 bytes (base64 after "whsec_")');

/** The events a batch's webhook can receive. */
export const WEBHOOK_EVENTS = ['batch.item.completed', 'batch.completed', 'batch.failed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `250ms`, `5s`, `30m`, `2h` (a bare number is milliseconds) as milliseconds. */
const durationSchema = z
  .string()
  .trim()
  .regex(/^\d+(\.\d+)?(ms|s|m|h)?$/, 'a duration is a number with ms, s, m or h, e.g. 5s')
  .transform((text) => {
    const [, value = '0', unit = 'ms'] = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text) ?? [];
    return Math.round(Number(value) * (UNITS[unit] ?? 1));
  });

/** Comma-separated durations, e.g. the Standard Webhooks schedule `5s,5m,30m,2h,5h,10h,10h`. */
const scheduleSchema = z
  .string()
  .transform((text) => text.split(',').map((s) => s.trim()).filter((s) => s !== ''))
  .pipe(z.array(durationSchema).max(50));

/** Where an inbound S3 event notification's new objects are taken from and what is done to them. */
const s3RuleSchema = z.strictObject({
  /** Objects whose key (relative to INPUT_URI) starts with this are edited... */
  prefix: z.string(),
  /** ...following this instruction. */
  instruction: z.string().trim().min(1),
  /** Only keys ending with this (default `.png`). */
  suffix: z.string().default('.png'),
});

/** A sender of inbound webhooks (`POST /v1/hooks/{source}`): its secret, and what its payloads become. */
const hookSourceSchema = z.strictObject({
  secret: webhookSecretSchema,
  /** With `s3`, the source sends S3 event notifications, edited by the first matching rule; without, batch requests. */
  s3: z.strictObject({ rules: z.array(s3RuleSchema).min(1) }).optional(),
  /** Where the batches this source creates report (batch requests may name their own webhook instead). */
  webhook: z
    .strictObject({
      url: z.url({ protocol: /^https?$/ }),
      secret: webhookSecretSchema,
      events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).default([...WEBHOOK_EVENTS]),
    })
    .optional(),
});
export type HookSource = z.output<typeof hookSourceSchema>;
export type S3Rule = z.output<typeof s3RuleSchema>;

const hookSourcesSchema = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON: {"<source>": {"secret": "whsec_…", …}}' });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a source name is lower-case letters, digits, "_" or "-"'), hookSourceSchema));

const flag = z.stringbool().default(false);

export const configSchema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8787),
    HOST: z.string().min(1).default('127.0.0.1'),
    /** Comma-separated bearer keys; empty means no auth, which is allowed on loopback only. */
    API_KEYS: z
      .string()
      .default('')
      .transform((s) => s.split(',').map((k) => k.trim()).filter((k) => k !== '')),
    /** The model package: `file://DIR` or `s3://BUCKET/PREFIX/NAME/VERSION/` (or `.../NAME/latest`). */
    MODEL_URI: storageUriSchema.optional(),
    /** A local package folder; the same as `MODEL_URI=file://DIR`. */
    MODEL_DIR: z.string().min(1).optional(),
    /** Where packages downloaded from S3 are kept, verified, across restarts. */
    MODEL_CACHE_DIR: z.string().min(1).default('.cache/models'),
    /** Where results are written: a local folder or an S3 prefix. */
    OUTPUT_URI: storageUriSchema.default({ scheme: 'file', path: '.cache/outputs' }),
    ORT_EXECUTION_PROVIDER: z.enum(EXECUTION_PROVIDERS).default('cpu'),
    /** ORT worker threads, each with its own session (one per 2 cores on a CPU). */
    ENGINE_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
    /** Pipeline runs sampling at once; their forward passes share (and merge on) the engine's workers. */
    MAX_CONCURRENT_RUNS: z.coerce.number().int().min(1).max(1024).default(4),
    /** Requests waiting for a run slot; one more is answered 429 with Retry-After. */
    MAX_QUEUED_RUNS: z.coerce.number().int().min(0).max(100_000).default(16),
    /** From admission to the last event, queueing included; past it the run ends with `deadline_exceeded`. */
    REQUEST_DEADLINE_MS: z.coerce.number().int().min(1).default(120_000),
    /** The largest request body; a larger one is answered 413. */
    MAX_BODY_BYTES: z.coerce.number().int().min(1).default(4 * 1024 * 1024),
    /** An SSE stream idle this long gets a `: ping` comment. */
    SSE_PING_MS: z.coerce.number().int().min(1).default(15_000),
    /** On SIGTERM/SIGINT, how long runs in progress may finish before they are cancelled. */
    SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
    /** The embedded job database (SQLite): batches, items, the queue. */
    JOBS_DB_PATH: z.string().min(1).default('.cache/jobs.db'),
    /** With an SQS queue URL, batches are queued on SQS and kept under JOB_STORE_URI instead of SQLite. */
    BATCH_QUEUE_URL: z.url().optional(),
    /** Where batches are kept when queued on SQS (an S3 prefix shared by the API and the worker). */
    JOB_STORE_URI: storageUriSchema.optional(),
    /** An SQS-compatible endpoint, e.g. for tests. */
    SQS_ENDPOINT: z.url().optional(),
    /** Where items given by key (`{"key": …}`) and S3-notified objects are read from. */
    INPUT_URI: storageUriSchema.default({ scheme: 'file', path: '.cache/inputs' }),
    /** Batch items this process edits at once (0: this process runs no worker). */
    JOB_CONCURRENCY: z.coerce.number().int().min(0).max(64).default(1),
    /** How long a received message stays invisible to other workers (SQLite queue; SQS has its own). */
    JOB_VISIBILITY_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
    /** Receives of one message before it is dead-lettered (SQS: keep equal to maxReceiveCount). */
    JOB_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(5),
    /** How often an idle worker looks for messages. */
    JOB_POLL_MS: z.coerce.number().int().min(10).default(250),
    BATCH_MAX_ITEMS: z.coerce.number().int().min(1).max(100_000).default(1_000),
    /** Image URLs in private or loopback ranges are refused unless this is set. */
    IMAGE_URL_ALLOW_PRIVATE: flag,
    /** Webhook targets in private or loopback ranges are refused unless this is set. */
    WEBHOOK_ALLOW_PRIVATE: flag,
    /** Waits before the 2nd, 3rd, … delivery attempt (each with ±20 % jitter); Standard Webhooks' schedule by default. */
    WEBHOOK_RETRY_SCHEDULE: scheduleSchema.prefault('5s,5m,30m,2h,5h,10h,10h'),
    WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(1).default(15_000),
    /** Inbound webhook senders, JSON: {"<source>": {"secret": "whsec_…", "s3"?: {"rules": […]}, "webhook"?: {…}}}. */
    HOOK_SOURCES: hookSourcesSchema.default({}),
    ...s3Variables,
  })
  .refine((env) => env.MODEL_URI === undefined || env.MODEL_DIR === undefined, {
    path: ['MODEL_URI'],
    message: 'set MODEL_URI or MODEL_DIR, not both',
  })
  .refine((env) => env.BATCH_QUEUE_URL === undefined || env.JOB_STORE_URI !== undefined, {
    path: ['JOB_STORE_URI'],
    message: 'BATCH_QUEUE_URL needs JOB_STORE_URI (where the API and the workers keep batches)',
  })
  .transform((env) => ({
    port: env.PORT,
    host: env.HOST,
    apiKeys: env.API_KEYS,
    modelUri: env.MODEL_URI ?? ({ scheme: 'file', path: env.MODEL_DIR ?? 'models/shapes-tiny' } satisfies StorageUri),
    modelCacheDir: env.MODEL_CACHE_DIR,
    outputUri: env.OUTPUT_URI,
    executionProvider: env.ORT_EXECUTION_PROVIDER,
    engineWorkers: env.ENGINE_WORKERS,
    api: {
      concurrentRuns: env.MAX_CONCURRENT_RUNS,
      queuedRuns: env.MAX_QUEUED_RUNS,
      deadlineMs: env.REQUEST_DEADLINE_MS,
      bodyLimitBytes: env.MAX_BODY_BYTES,
      pingMs: env.SSE_PING_MS,
      shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    },
    s3: s3Settings(env),
    jobs: {
      queue: env.BATCH_QUEUE_URL === undefined || env.JOB_STORE_URI === undefined
        ? ({ kind: 'sqlite', dbPath: env.JOBS_DB_PATH } as const)
        : ({ kind: 'sqs', queueUrl: env.BATCH_QUEUE_URL, storeUri: env.JOB_STORE_URI, ...(env.SQS_ENDPOINT === undefined ? {} : { endpoint: env.SQS_ENDPOINT }) } as const),
      inputUri: env.INPUT_URI,
      concurrency: env.JOB_CONCURRENCY,
      visibilityTimeoutMs: env.JOB_VISIBILITY_TIMEOUT_MS,
      maxAttempts: env.JOB_MAX_ATTEMPTS,
      pollMs: env.JOB_POLL_MS,
      maxItems: env.BATCH_MAX_ITEMS,
      imageUrlAllowPrivate: env.IMAGE_URL_ALLOW_PRIVATE,
    },
    webhooks: {
      allowPrivate: env.WEBHOOK_ALLOW_PRIVATE,
      retryScheduleMs: env.WEBHOOK_RETRY_SCHEDULE,
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    },
    hookSources: env.HOOK_SOURCES,
  }));

/** How batches are queued and kept: SQLite (embedded) or SQS with an object store. */
export type JobsQueueConfig = Config['jobs']['queue'];

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function invalid(error: z.ZodError): ConfigError {
  return new ConfigError(`invalid environment: ${z.prettifyError(error).replace(/\n/g, '; ')}`);
}

/**
 * @example
 * const config = loadConfig(process.env);
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) throw invalid(parsed.error);
  const config = parsed.data;
  if (config.apiKeys.length === 0 && !(LOOPBACK_HOSTS as readonly string[]).includes(config.host)) {
    throw new ConfigError(`refusing to listen on ${config.host} without API_KEYS: set API_KEYS or bind to 127.0.0.1`);
  }
  return config;
}

/**
 * The S3 settings alone, for tools that need nothing else (the infra CLI).
 *
 * @example
 * const settings = loadS3Settings(process.env); // { region: 'us-east-1' }
 */
export function loadS3Settings(env: Record<string, string | undefined>): S3Settings {
  const parsed = s3SettingsSchema.safeParse(env);
  if (!parsed.success) throw invalid(parsed.error);
  return parsed.data;
}
