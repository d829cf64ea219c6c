/**
 * `npm run bench -- --server`: what the service costs over the bare sampler, for text to
 * image. The real node server (`npm start`) runs on loopback as a child process with the
 * same model and engine settings as this process; every case then runs four ways,
 * interleaved so that drift in machine load hits all rows alike:
 *
 * - in-process: the pipeline here, with a preview every step (as the stream asks for);
 * - http: `POST /v1/images/generations` with `stream: true, preview_every: 1`, read as SSE;
 *
 * each with the dense and the sparse sampler, on the same prompt, seed and steps. A row
 * reports the medians of the time to the first preview and of the total time; an http row
 * adds its overhead over the in-process row of the same sampler, the server's own total
 * (`timings.total_ms`, so the rest is transport), and how many of its images are the very
 * image the in-process run made.
 */
import { createParser } from 'eventsource-parser';
import { z } from 'zod';
import type { Pipeline } from '../../functions/pipeline/pipeline.ts';
import { encodePng } from '../../functions/tokenizers/png.ts';
import { generateCases } from '../../models/world/cases.ts';
import { listeningServer, stopServers } from '../support/server.ts';
import { formatTable, spread } from './stats.ts';

const SAMPLERS = ['dense', 'sparse'] as const;
type Sampler = (typeof SAMPLERS)[number];
const MODES = ['in-process', 'http'] as const;
type Mode = (typeof MODES)[number];

export interface ServerBenchRow {
  readonly task: 't2i';
  readonly sampler: Sampler;
  readonly mode: Mode;
  readonly n: number;
  readonly firstPreviewMs: number;
  readonly totalMs: number;
  readonly p10Ms: number;
  readonly p90Ms: number;
  /** Dense's median total over this row's, in the same mode. */
  readonly speedup: number;
  /** http rows: the median of the server's `timings.total_ms` (admission to result). */
  readonly serverTotalMs: number | null;
  /** http rows: median first preview and total minus the in-process row's. */
  readonly firstPreviewOverheadMs: number | null;
  readonly totalOverheadMs: number | null;
  /** http rows: the share of images identical to the in-process run's of the same case. */
  readonly sameImage: number | null;
}

interface Sample {
  readonly firstPreviewMs: number;
  readonly totalMs: number;
  readonly png: string;
  readonly serverTotalMs: number | null;
}

/** Each mode's samples of one sampler, and how many http images equal the in-process one. */
type Samples = Record<Mode, Sample[]> & { same: number };

interface Request {
  readonly prompt: string;
  readonly seed: number;
  readonly sampler: Sampler;
  readonly steps: number | undefined;
  readonly candidates: number;
}

async function inProcess(pipeline: Pipeline, r: Request): Promise<Sample> {
  const started = performance.now();
  let first: number | undefined;
  const steps = pipeline.generate(r.prompt, { sampler: r.sampler, seed: r.seed, candidates: r.candidates, previewEvery: 1, ...(r.steps ? { steps: r.steps } : {}) });
  for (;;) {
    const next = await steps.next();
    if (next.done) {
      const totalMs = performance.now() - started;
      return { firstPreviewMs: (first ?? performance.now()) - started, totalMs, png: encodePng(next.value.image).toString('base64'), serverTotalMs: null };
    }
    if (next.value.preview !== undefined) first ??= performance.now();
  }
}

const completedEvent = z.object({ b64_json: z.string(), timings: z.object({ total_ms: z.number() }) });

async function overHttp(url: string, r: Request): Promise<Sample> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: r.prompt, seed: r.seed, sampler: r.sampler, candidates: r.candidates, stream: true, preview_every: 1, ...(r.steps ? { steps: r.steps } : {}) }),
  });
  if (!res.ok || !res.body) throw new Error(`POST /v1/images/generations: HTTP ${res.status} ${await res.text()}`);
  let first: number | undefined;
  let completed: { at: number; data: string } | undefined;
  let failure: string | undefined;
  const parser = createParser({
    onEvent: (e) => {
      if (e.event === 'image_generation.partial_image') first ??= performance.now();
      else if (e.event === 'image_generation.completed') completed = { at: performance.now(), data: e.data };
      else if (e.event === 'error') failure = e.data;
    },
  });
  for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) parser.feed(chunk);
  if (completed === undefined) throw new Error(`the stream ended without the completed event${failure ? `: ${failure}` : ''}`);
  const data = completedEvent.parse(JSON.parse(completed.data));
  return { firstPreviewMs: (first ?? completed.at) - started, totalMs: completed.at - started, png: data.b64_json, serverTotalMs: data.timings.total_ms };
}

export interface ServerBenchOptions {
  readonly modelDir: string;
  readonly n: number;
  readonly seed: number;
  readonly warmup: number;
  readonly steps?: number | undefined;
  /** Images drawn per request (default 1: the samplers alone). */
  readonly candidates?: number | undefined;
}

/**
 * @example
 * const rows = await benchServer(pipeline, { modelDir: 'models/shapes-tiny', n: 20, seed: 0, warmup: 2 });
 * console.log(formatServerBench(rows));
 */
export async function benchServer(pipeline: Pipeline, options: ServerBenchOptions): Promise<ServerBenchRow[]> {
  // A Ctrl-C must not leave the server (its own process group) running.
  const interrupted = () => {
    stopServers();
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    const { url } = await listeningServer({ MODEL_DIR: options.modelDir, ENGINE_WORKERS: '1' });
    const cases = generateCases('t2i', options.n + options.warmup, options.seed);
    const fresh = (): Samples => ({ 'in-process': [], http: [], same: 0 });
    const samples: Record<Sampler, Samples> = { dense: fresh(), sparse: fresh() };
    for (const [i, c] of cases.entries()) {
      for (const sampler of SAMPLERS) {
        const r: Request = { prompt: c.case.task === 't2i' ? c.case.prompt : '', seed: c.seed, sampler, steps: options.steps, candidates: options.candidates ?? 1 };
        const bare = await inProcess(pipeline, r);
        const http = await overHttp(url, r);
        if (i < options.warmup) continue;
        const s = samples[sampler];
        s['in-process'].push(bare);
        s.http.push(http);
        if (http.png === bare.png) s.same++;
      }
    }
    const of = (sampler: Sampler, mode: Mode) => samples[sampler][mode];
    return SAMPLERS.flatMap((sampler) =>
      MODES.map((mode): ServerBenchRow => {
        const s = of(sampler, mode);
        const total = spread(s.map((x) => x.totalMs));
        const first = spread(s.map((x) => x.firstPreviewMs)).median;
        const bare = of(sampler, 'in-process');
        const http = mode === 'http';
        return {
          task: 't2i', sampler, mode, n: s.length,
          firstPreviewMs: first, totalMs: total.median, p10Ms: total.p10, p90Ms: total.p90,
          speedup: spread(of('dense', mode).map((x) => x.totalMs)).median / total.median,
          serverTotalMs: http ? spread(s.map((x) => x.serverTotalMs ?? 0)).median : null,
          firstPreviewOverheadMs: http ? first - spread(bare.map((x) => x.firstPreviewMs)).median : null,
          totalOverheadMs: http ? total.median - spread(bare.map((x) => x.totalMs)).median : null,
          sameImage: http ? samples[sampler].same / s.length : null,
        };
      }),
    );
  } finally {
    process.off('SIGINT', interrupted);
    stopServers();
  }
}

export function formatServerBench(rows: readonly ServerBenchRow[]): string {
  const head = ['task', 'sampler', 'mode', 'n', 'first preview ms', 'total ms', 'p10-p90 ms', 'speedup', 'server total ms', 'overhead first', 'overhead total', 'same image'];
  const signed = (x: number | null) => (x === null ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(1)} ms`);
  return formatTable(head, rows.map((r) => [
    r.task, r.sampler, r.mode, String(r.n), r.firstPreviewMs.toFixed(1), r.totalMs.toFixed(1), `${r.p10Ms.toFixed(1)}-${r.p90Ms.toFixed(1)}`,
    `${r.speedup.toFixed(2)}x`, r.serverTotalMs === null ? '-' : r.serverTotalMs.toFixed(1),
    signed(r.firstPreviewOverheadMs), signed(r.totalOverheadMs),
    r.sameImage === null ? '-' : `${Math.round(r.sameImage * r.n)}/${r.n}`,
  ]), 3);
}
