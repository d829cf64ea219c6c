/**
 * Start-up shared by the entry points: the config, the execution provider check, the
 * model (loaded through the model store: a local folder, or S3 through the local cache),
 * the engine's worker threads, the pipeline, run admission, batch jobs (SQLite, or SQS with
 * an object store) with their worker, and the app over them.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { S3Client } from '@aws-sdk/client-s3';
import { createApp } from '../api/app.ts';
import { Runs } from '../api/runs.ts';
import { ConfigError, loadConfig, type Config } from '../core/config.ts';
import { BatchService } from '../jobs/batches.ts';
import type { JobStore } from '../jobs/job-store.ts';
import { ObjectJobStore } from '../jobs/object-job-store.ts';
import type { Queue } from '../jobs/queue.ts';
import { openJobsDatabase } from '../jobs/sqlite-db.ts';
import { SqliteJobStore } from '../jobs/sqlite-job-store.ts';
import { SqliteQueue } from '../jobs/sqlite-queue.ts';
import { createSqsClient, SqsQueue } from '../jobs/sqs-queue.ts';
import { WorkerLoop } from '../jobs/worker-loop.ts';
import { BatchWorker, queueDeliveries } from '../jobs/worker.ts';
import { openArtifactStore } from '../storage/artifact-store.ts';
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
  readonly jobs: Jobs;
  readonly app: OpenAPIHono;
  /**
   * Stops taking requests (503) and messages, lets running ones finish for
   * SHUTDOWN_GRACE_MS, cancels what is left, and closes the engine and the job database.
   */
  shutdown(): Promise<void>;
}

export interface Jobs {
  readonly store: JobStore;
  readonly queue: Queue;
  readonly batches: BatchService;
  readonly worker: BatchWorker;
  /** The in-process worker, when this process runs one (JOB_CONCURRENCY > 0 and not turned off). */
  readonly loop: WorkerLoop | undefined;
  /** Closes the queue, the store and the job database. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly log: (line: string) => void;
  /** Refuse to start without API_KEYS whatever HOST says (a Lambda function URL is public). */
  readonly requireApiKeys?: boolean;
  /** Run no worker in this process whatever JOB_CONCURRENCY says (the Lambda functions: SQS invokes the worker). */
  readonly noWorkerLoop?: boolean;
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
  const s3 = createS3Client(config.s3);
  const store = createModelStore({
    cacheDir: config.modelCacheDir,
    s3,
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
  const pipeline = new Pipeline(tokenizers, engine);
  const jobs = openJobs(config, s3, pipeline, options);
  const app = createApp({
    pipeline,
    runs,
    apiKeys: config.apiKeys,
    bodyLimitBytes: config.api.bodyLimitBytes,
    pingMs: config.api.pingMs,
    log: options.log,
    batches: jobs.batches,
    hookSources: config.hookSources,
    inputUri: config.jobs.inputUri,
  });
  jobs.loop?.start();
  const shutdown = async () => {
    await Promise.all([runs.drain(config.api.shutdownGraceMs), jobs.loop?.stop(config.api.shutdownGraceMs)]);
    await jobs.close();
    await engine.close();
  };
  return { config, model, engine, runs, jobs, app, shutdown };
}

/** The job store and queue the config names, the batch service, the worker and (unless turned off) its loop. */
function openJobs(config: Config, s3: S3Client, pipeline: Pipeline, options: StartOptions): Jobs {
  const { jobs, webhooks } = config;
  let store: JobStore;
  let queue: Queue;
  let closeDb = () => {};
  if (jobs.queue.kind === 'sqlite') {
    const db = openJobsDatabase(jobs.queue.dbPath);
    store = new SqliteJobStore(db);
    queue = new SqliteQueue(db, { visibilityTimeoutMs: jobs.visibilityTimeoutMs, maxAttempts: queueDeliveries(jobs.maxAttempts) });
    closeDb = () => db.close();
  } else {
    store = new ObjectJobStore(openArtifactStore(jobs.queue.storeUri, s3));
    const client = createSqsClient({ region: config.s3.region, ...(jobs.queue.endpoint === undefined ? {} : { endpoint: jobs.queue.endpoint }) });
    queue = new SqsQueue(client, jobs.queue.queueUrl, { visibilityTimeoutMs: jobs.visibilityTimeoutMs });
  }
  const worker = new BatchWorker({
    store,
    queue,
    pipeline,
    outputs: openArtifactStore(config.outputUri, s3),
    images: { inputs: openArtifactStore(jobs.inputUri, s3), allowPrivate: jobs.imageUrlAllowPrivate, timeoutMs: webhooks.timeoutMs, maxBytes: config.api.bodyLimitBytes },
    maxAttempts: jobs.maxAttempts,
    webhooks,
    log: options.log,
  });
  const runLoop = jobs.concurrency > 0 && !options.noWorkerLoop;
  const loop = runLoop ? new WorkerLoop(worker, queue, { concurrency: jobs.concurrency, pollMs: jobs.pollMs, visibilityTimeoutMs: jobs.visibilityTimeoutMs, log: options.log }) : undefined;
  const batches = new BatchService({
    store,
    queue,
    maxItems: jobs.maxItems,
    allowPrivateWebhooks: webhooks.allowPrivate,
    ...(loop ? { onEnqueued: () => loop.wake() } : {}),
  });
  const close = async () => {
    await queue.close();
    await store.close();
    closeDb();
  };
  return { store, queue, batches, worker, loop, close };
}

/** Errors that mean "this configuration cannot start", reported as one line. */
export function isStartupError(e: unknown): e is Error {
  return e instanceof ConfigError || e instanceof PackageError || e instanceof StorageError || e instanceof ExecutionProviderError;
}
