/**
 * The API app on a real loopback server (@hono/node-server, port 0) over the real engine
 * on the shipped model, and an SSE reader that keeps what a protocol test looks at.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { createApp } from '../../functions/api/app.ts';
import type { HookSource } from '../../functions/core/config.ts';
import type { StorageUri } from '../../functions/core/storage-uri.ts';
import type { BatchService } from '../../functions/jobs/batches.ts';
import { Runs, type RunLimits } from '../../functions/api/runs.ts';
import { createEngine, type Engine } from '../../functions/engine/engine.ts';
import { Pipeline } from '../../functions/pipeline/pipeline.ts';
import { loadPackageDir } from '../../functions/storage/package-files.ts';
import { createTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';

export interface ModelUnderTest {
  readonly pipeline: Pipeline;
  readonly engine: Engine;
}

/** The shipped model on a one-worker engine; close `engine` in afterAll. */
export async function loadModel(): Promise<ModelUnderTest> {
  const pkg = await loadPackageDir('models/shapes-tiny');
  const engine = await createEngine(pkg, { workers: 1 });
  return { pipeline: new Pipeline(createTokenizers(pkg), engine), engine };
}

export interface ApiOptions {
  readonly limits?: Partial<RunLimits>;
  readonly apiKeys?: readonly string[];
  readonly bodyLimitBytes?: number;
  readonly pingMs?: number;
  readonly batches?: BatchService;
  readonly hookSources?: Record<string, HookSource>;
  readonly inputUri?: StorageUri;
}

export interface ApiUnderTest {
  readonly url: string;
  readonly runs: Runs;
  /** Lines the app logged (server failures). */
  readonly logged: string[];
  close(): Promise<void>;
}

/** Serves a fresh app over `model` on 127.0.0.1, port 0. */
export async function serveApi(model: ModelUnderTest, options: ApiOptions = {}): Promise<ApiUnderTest> {
  const runs = new Runs({ concurrentRuns: 4, queuedRuns: 32, deadlineMs: 60_000, ...options.limits });
  const logged: string[] = [];
  const app = createApp({
    pipeline: model.pipeline,
    runs,
    apiKeys: options.apiKeys ?? [],
    bodyLimitBytes: options.bodyLimitBytes ?? 1024 * 1024,
    pingMs: options.pingMs ?? 10_000,
    log: (line) => logged.push(line),
    ...(options.batches ? { batches: options.batches } : {}),
    ...(options.hookSources ? { hookSources: options.hookSources } : {}),
    ...(options.inputUri ? { inputUri: options.inputUri } : {}),
  });
  const { server, port } = await new Promise<{ server: ReturnType<typeof serve>; port: number }>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => resolve({ server: s, port: info.port }));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    runs,
    logged,
    close: () =>
      new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface SseEvent {
  readonly event: string | undefined;
  readonly id: string | undefined;
  readonly data: string;
}

export interface SseRead {
  readonly events: SseEvent[];
  readonly comments: string[];
}

/**
 * Reads an SSE response to its end, or until `stopAfter` returns true for an event (then
 * the request is aborted through `controller`, as a client that goes away).
 */
export async function readSse(res: Response, options: { stopAfter?: (e: SseEvent) => boolean; controller?: AbortController } = {}): Promise<SseRead> {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let stop = false;
  const parser = createParser({
    onEvent: (m: EventSourceMessage) => {
      // One network chunk may carry several events; a reader that stopped reads no further.
      if (stop) return;
      const e = { event: m.event, id: m.id, data: m.data };
      events.push(e);
      if (options.stopAfter?.(e)) stop = true;
    },
    onComment: (c) => comments.push(c),
  });
  if (!res.body) throw new Error('no body');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.feed(value);
    if (stop) {
      options.controller?.abort();
      await reader.cancel().catch(() => undefined);
      break;
    }
  }
  return { events, comments };
}

/** Polls `check` until it returns true (or throws after `ms`). */
export async function eventually(check: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
