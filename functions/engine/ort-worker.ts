/**
 * An ORT worker (worker_threads): one onnxruntime session of the denoiser graph and the
 * keys/values of the caches created on it. `session.run()` blocks the thread it runs on, so
 * it runs here, never on the caller's event loop. Messages are handled one at a time, in
 * order, so a cache is never disposed or created in the middle of a run that uses it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { contractOutputs, missingFeeds, newKeyName, newValueName, pastKeyName, pastValueName } from './contract.ts';
import { readLogits, stackBlocks, widenBias, type KvBlock } from './kv-rows.ts';
import { KvStore } from './kv-store.ts';
import type { FromWorker, RunPart, ToWorker, WorkerSetup } from './protocol.ts';

const port = parentPort;
if (port === null) throw new Error('ort-worker.ts runs as a worker thread');
const setup = workerData as WorkerSetup;
const dims = { heads: setup.heads, headDim: setup.headDim };
const store = new KvStore(setup.layers, dims);

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

const session = await ort.InferenceSession.create(setup.model, {
  executionProviders: [setup.executionProvider],
  intraOpNumThreads: setup.intraOpNumThreads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
}).catch((e: unknown) => {
  post({ type: 'start-failed', message: e instanceof Error ? e.message : String(e) });
  port.close();
  return undefined;
});

if (session !== undefined) {
  let queue = Promise.resolve();
  port.on('message', (message: ToWorker) => {
    // Runs report their own failures; anything else ends the worker, which stops the engine with its message.
    queue = queue
      .then(() => handle(session, message))
      .catch((e: unknown) =>
        process.nextTick(() => {
          throw e;
        }),
      );
  });
  post({ type: 'ready', inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
}

async function handle(session: ort.InferenceSession, message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'cache-create':
      store.create(message.cache, message.batch);
      return;
    case 'cache-dispose':
      store.dispose(message.cache);
      return;
    case 'run':
      return run(session, message.run, message.parts);
    case 'close':
      // Only here, with no run in flight: ending the thread during session.run aborts the process.
      await session.release();
      process.exit(0);
  }
}

/** The dtype and dims of every feed, never its data. */
function describe(feeds: Record<string, ort.Tensor>): string {
  return Object.entries(feeds)
    .map(([name, t]) => `${name} ${t.type} [${t.dims.join(',')}]`)
    .join('; ');
}

async function run(session: ort.InferenceSession, id: number, parts: readonly RunPart[]): Promise<void> {
  let feeds: Record<string, ort.Tensor> = {};
  try {
    feeds = buildFeeds(parts);
    const missing = missingFeeds(session.inputNames, feeds);
    if (missing.length > 0) throw new Error(`no feed for graph inputs ${missing.join(', ')}`);
    const appends = parts.some((p) => p.append > 0);
    const results = await session.run(feeds, appends ? contractOutputs(setup.layers) : ['logits']);
    const logits = results.logits;
    if (logits === undefined) throw new Error('the run returned no logits');
    const [rows = 0, n = 0, vocab = 0] = logits.dims;
    const fresh = (name: (layer: number) => string): KvBlock[] =>
      Array.from({ length: setup.layers }, (_, layer) => {
        const t = results[name(layer)];
        if (t === undefined) throw new Error(`the run returned no ${name(layer)}`);
        return { data: t.data as Float32Array, batch: rows, length: n };
      });
    const keys = appends ? fresh(newKeyName) : [];
    const values = appends ? fresh(newValueName) : [];
    const out: Float32Array[] = [];
    let row = 0;
    for (const part of parts) {
      out.push(readLogits(logits.data as Float32Array, n, vocab, row, part.batch, part.read.start, part.read.count));
      if (part.cache !== null) store.append(part.cache, keys, values, row, part.append);
      row += part.batch;
    }
    post({ type: 'ran', run: id, logits: out, vocab, held: store.held() }, out.map((l) => l.buffer as ArrayBuffer));
  } catch (e) {
    post({ type: 'run-failed', run: id, message: e instanceof Error ? e.message : String(e), inputs: describe(feeds) });
  }
}

/**
 * The feeds of one run. Several parts (forwards of the same N) are stacked along the batch
 * axis; caches shorter than the longest are padded with zeros and the padding masked in the
 * bias, so every row computes what it would alone. A single part feeds its arrays as they are.
 */
function buildFeeds(parts: readonly RunPart[]): Record<string, ort.Tensor> {
  const first = parts[0];
  if (first === undefined) throw new Error('a run needs at least one forward');
  const n = first.length;
  const rows = parts.reduce((s, p) => s + p.batch, 0);
  for (const part of parts) {
    if (part.length !== n) throw new Error(`merged forwards must have the same length, got ${n} and ${part.length}`);
    const held = part.cache === null ? 0 : store.length(part.cache);
    if (held !== part.pastLength) throw new Error(`cache ${part.cache} holds ${held} tokens, the engine counted ${part.pastLength}`);
  }
  const c = Math.max(...parts.map((p) => p.pastLength));
  const ids = new BigInt64Array(rows * n);
  const positions = new BigInt64Array(rows * n);
  let at = 0;
  for (const part of parts) {
    for (let i = 0; i < part.inputIds.length; i++, at++) {
      ids[at] = BigInt(part.inputIds[i] as number);
      positions[at] = BigInt(part.positionIds[i] as number);
    }
  }
  let bias = first.attnBias;
  if (parts.length > 1) {
    bias = new Float32Array(rows * n * (c + n));
    let row = 0;
    for (const part of parts) {
      widenBias(part.attnBias, part.batch, n, part.pastLength, bias, row, c, setup.maskValue);
      row += part.batch;
    }
  }
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', ids, [rows, n]),
    position_ids: new ort.Tensor('int64', positions, [rows, n]),
    attn_bias: new ort.Tensor('float32', bias, [rows, 1, n, c + n]),
  };
  const past = (part: RunPart, layer: number, kind: 'key' | 'value'): KvBlock =>
    part.cache === null ? { data: new Float32Array(0), batch: part.batch, length: 0 } : store.block(part.cache, layer, kind);
  for (let layer = 0; layer < setup.layers; layer++) {
    for (const [kind, name] of [['key', pastKeyName(layer)], ['value', pastValueName(layer)]] as const) {
      const blocks = parts.map((p) => past(p, layer, kind));
      const data = blocks.length === 1 && blocks[0] !== undefined ? blocks[0].data : stackBlocks(blocks, c, dims);
      feeds[name] = new ort.Tensor('float32', data, [rows, setup.heads, c, setup.headDim]);
    }
  }
  return feeds;
}
