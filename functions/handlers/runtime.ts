/**
 * Start-up shared by the entry points: the config, the execution provider check and the
 * model, loaded through the model store (a local folder, or S3 through the local cache).
 */
import type { Hono } from 'hono';
import { createApp } from '../api/app.ts';
import { ConfigError, loadConfig, type Config } from '../core/config.ts';
import { formatStorageUri } from '../core/storage-uri.ts';
import { ExecutionProviderError, requireExecutionProvider } from '../engine/execution-provider.ts';
import { createModelStore, type LoadedModel } from '../storage/model-store.ts';
import { PackageError } from '../storage/package-files.ts';
import { createS3Client, StorageError } from '../storage/s3-client.ts';

export interface Runtime {
  readonly config: Config;
  readonly model: LoadedModel;
  readonly app: Hono;
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
  return { config, model, app: createApp({ manifest: model.pkg.manifest }) };
}

/** Errors that mean "this configuration cannot start", reported as one line. */
export function isStartupError(e: unknown): e is Error {
  return e instanceof ConfigError || e instanceof PackageError || e instanceof StorageError || e instanceof ExecutionProviderError;
}
