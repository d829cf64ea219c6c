/**
 * Start-up shared by the entry points: the config, the execution provider check, the
 * model (loaded through the model store: a local folder, or S3 through the local cache),
 * the engine's worker threads, the pipeline, run admission, and the app over them.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { createApp } from '../api/app.ts';
import { Runs } from '../api/runs.ts';
import { ConfigError, loadConfig, type Config } from '../core/config.ts';
import { formatStorageUri } from '../core/storage-uri.ts';
import { createEngine, type Engine } from '../engine/engine.ts';
import { ExecutionProviderError, requireExecutionProvider } from '../engine/execution-provider.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { createModelStore, type LoadedModel } from '../storage/model-store.ts';
import { PackageError } from '../storage/package-files.ts';
import { createS3Client, StorageError } from '../storage/s3-client.ts';
import { createTokenizers } from '../tokenizers/model-tokenizers.ts';

export interface Runtime {
  readonly config: Config;
  readonly model: LoadedModel;
  readonly engine: Engine;
  readonly runs: Runs;
  readonly app: OpenAPIHono;
  /**
   * Stops taking requests (503), lets running ones finish for SHUTDOWN_GRACE_MS, cancels
   * what is left, and closes the engine.
   */
  shutdown(): Promise<void>;
}

export interface StartOptions {
  readonly log: (line: string) => void;
  /** Refuse to start without API_KEYS whatever HOST says (a Lambda function URL is public). */
  readonly requireApiKeys?: boolean;
}

const SOURCES: Record<LoadedModel['source'], string> = {
  folder: 'read from',
  cache: 'reused from the cache, verified, for',
  download: 'downloaded and verified from',
};

/**
 * @example
 * const { config, app } = await startRuntime(process.env, { log: console.log });
 */
export async function startRuntime(env: Record<string, string | undefined>, options: StartOptions): Promise<Runtime> {
  const config = loadConfig(env);
  if (options.requireApiKeys && config.apiKeys.length === 0) {
    throw new ConfigError('refusing to serve a public endpoint without API_KEYS');
  }
  await requireExecutionProvider(config.executionProvider);
  const store = createModelStore({
    cacheDir: config.modelCacheDir,
    s3: createS3Client(config.s3),
    onProgress: (p) => {
      if (p.fileBytes === p.fileSize) options.log(`downloaded ${p.file} (${p.fileSize} bytes)`);
    },
  });
  const model = await store.load(config.modelUri);
  const { name, version } = model.pkg.manifest;
  options.log(`model ${name}@${version} ${SOURCES[model.source]} ${formatStorageUri(config.modelUri)} (${model.pkg.dir})`);
  const tokenizers = createTokenizers(model.pkg);
  const engine = await createEngine(model.pkg, { workers: config.engineWorkers, executionProvider: config.executionProvider, log: options.log });
  const runs = new Runs({ concurrentRuns: config.api.concurrentRuns, queuedRuns: config.api.queuedRuns, deadlineMs: config.api.deadlineMs });
  const app = createApp({
    pipeline: new Pipeline(tokenizers, engine),
    runs,
    apiKeys: config.apiKeys,
    bodyLimitBytes: config.api.bodyLimitBytes,
    pingMs: config.api.pingMs,
    log: options.log,
  });
  const shutdown = async () => {
    await runs.drain(config.api.shutdownGraceMs);
    await engine.close();
  };
  return { config, model, engine, runs, app, shutdown };
}

/** Errors that mean "this configuration cannot start", reported as one line. */
export function isStartupError(e: unknown): e is Error {
  return e instanceof ConfigError || e instanceof PackageError || e instanceof StorageError || e instanceof ExecutionProviderError;
}
