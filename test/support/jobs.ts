/**
 * Batch jobs for tests, wired as the embedded default is (functions/handlers/runtime.ts): a
 * SQLite job database in a temporary folder, the worker over a model under test, its
 * in-process loop, local output and input folders; and a webhook receiver on loopback that
 * records every delivery and answers as a test tells it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchService } from '../../functions/jobs/batches.ts';
import { openJobsDatabase, type JobsDatabase } from '../../functions/jobs/sqlite-db.ts';
import { SqliteJobStore } from '../../functions/jobs/sqlite-job-store.ts';
import { SqliteQueue } from '../../functions/jobs/sqlite-queue.ts';
import { WorkerLoop } from '../../functions/jobs/worker-loop.ts';
import { BatchWorker, queueDeliveries } from '../../functions/jobs/worker.ts';
import { openArtifactStore, type ArtifactStore } from '../../functions/storage/artifact-store.ts';
import { createS3Client } from '../../functions/storage/s3-client.ts';
import type { ModelUnderTest } from './api.ts';

export interface JobsOptions {
  readonly retryScheduleMs?: readonly number[];
  readonly maxAttempts?: number;
  readonly visibilityTimeoutMs?: number;
  readonly concurrency?: number;
  /** Webhook targets and image URLs on loopback are allowed unless this is false. */
  readonly allowPrivate?: boolean;
  readonly webhookTimeoutMs?: number;
}

export interface JobsUnderTest {
  readonly dir: string;
  readonly db: JobsDatabase;
  readonly store: SqliteJobStore;
  readonly queue: SqliteQueue;
  readonly worker: BatchWorker;
  readonly loop: WorkerLoop;
  readonly batches: BatchService;
  readonly outputs: ArtifactStore;
  readonly outputDir: string;
  readonly inputs: ArtifactStore;
  readonly inputDir: string;
  readonly logged: string[];
  close(): Promise<void>;
}

export function startJobs(model: ModelUnderTest, options: JobsOptions = {}): JobsUnderTest {
  const dir = mkdtempSync(join(tmpdir(), 'jobs-'));
  const db = openJobsDatabase(join(dir, 'jobs.db'));
  const store = new SqliteJobStore(db);
  const visibilityTimeoutMs = options.visibilityTimeoutMs ?? 30_000;
  const maxAttempts = options.maxAttempts ?? 5;
  const queue = new SqliteQueue(db, { visibilityTimeoutMs, maxAttempts: queueDeliveries(maxAttempts) });
  const s3 = createS3Client({ region: 'us-east-1' });
  const outputDir = join(dir, 'outputs');
  const inputDir = join(dir, 'inputs');
  const outputs = openArtifactStore({ scheme: 'file', path: outputDir }, s3);
  const inputs = openArtifactStore({ scheme: 'file', path: inputDir }, s3);
  const allowPrivate = options.allowPrivate ?? true;
  const logged: string[] = [];
  const log = (line: string) => logged.push(line);
  const worker = new BatchWorker({
    store,
    queue,
    pipeline: model.pipeline,
    outputs,
    images: { inputs, allowPrivate, timeoutMs: 5_000, maxBytes: 1024 * 1024 },
    maxAttempts,
    webhooks: { allowPrivate, retryScheduleMs: options.retryScheduleMs ?? [100, 200, 400], timeoutMs: options.webhookTimeoutMs ?? 5_000 },
    log,
  });
  const loop = new WorkerLoop(worker, queue, { concurrency: options.concurrency ?? 1, pollMs: 20, visibilityTimeoutMs, log });
  const batches = new BatchService({ store, queue, maxItems: 1_000, allowPrivateWebhooks: allowPrivate, onEnqueued: () => loop.wake() });
  loop.start();
  return {
    dir,
    db,
    store,
    queue,
    worker,
    loop,
    batches,
    outputs,
    outputDir,
    inputs,
    inputDir,
    logged,
    async close() {
      await loop.stop(10_000);
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Delivery {
  readonly id: string;
  readonly timestamp: string;
  readonly signature: string;
  readonly body: string;
  readonly headers: Record<string, string>;
  /** What the receiver answered. */
  readonly status: number;
}

export interface Receiver {
  readonly url: string;
  /** Every request that reached the handler, in order. */
  readonly deliveries: Delivery[];
  /** TCP connections accepted (a refused target must make none). */
  connections: number;
  /** How to answer the n-th delivery (0-based); 204 by default. */
  respond: (delivery: Omit<Delivery, 'status'>, n: number) => number;
  /** Stops listening: deliveries meet a refused connection until `up`. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startReceiver(): Promise<Receiver> {
  let server: Server;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer(async (req, res) => {
        const body = await readBody(req);
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
        const delivery = { id: headers['webhook-id'] ?? '', timestamp: headers['webhook-timestamp'] ?? '', signature: headers['webhook-signature'] ?? '', body, headers };
        const status = receiver.respond(delivery, receiver.deliveries.length);
        receiver.deliveries.push({ ...delivery, status });
        res.writeHead(status).end();
      });
      server.on('connection', () => receiver.connections++);
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  const receiver: Receiver = {
    get url() {
      return `http://127.0.0.1:${port}/hooks`;
    },
    deliveries: [],
    connections: 0,
    respond: () => 204,
    down: stop,
    up: listen,
    close: stop,
  };
  await listen();
  return receiver;
}
