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
    ...s3Variables,
  })
  .refine((env) => env.MODEL_URI === undefined || env.MODEL_DIR === undefined, {
    path: ['MODEL_URI'],
    message: 'set MODEL_URI or MODEL_DIR, not both',
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
  }));

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
