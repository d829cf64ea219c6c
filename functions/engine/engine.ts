/**
 * The engine: the denoiser of a verified model package (docs/design.md section 3), run by
 * onnxruntime-node in worker threads so the caller's event loop never waits on a forward
 * pass. Each worker holds one session and the keys/values of the caches created on it; the
 * caller holds KvCache handles (id, batch, length, dispose).
 *
 * Scheduling: forwards queue in the engine; whenever a worker is free (and at the end of
 * the event-loop turn in which forwards were submitted) it takes the oldest forward it can
 * run (any dense call; a cached call only on the worker holding its cache) together with
 * every later queued forward of the same N that it can also run, up to `maxBatchRows` rows,
 * as ONE session run: rows are stacked along the batch axis, shorter caches padded and the
 * padding masked in the bias. Each forward still gets exactly its own rows' logits and cache
 * update. Forwards merge when they are submitted together or pile up behind a busy worker.
 */
import { Worker } from 'node:worker_threads';
import type { ExecutionProvider } from '../core/config.ts';
import type { Denoiser, ForwardInput, ForwardOutput, KvCache } from '../core/denoiser.ts';
import type { ModelSpec } from '../core/manifest.ts';
import { loadPackageDir, PackageError, type LoadedPackage } from '../storage/package-files.ts';
import { contractProblems } from './contract.ts';
import { EngineError } from './errors.ts';
import { requireExecutionProvider } from './execution-provider.ts';
import { checkForwardInput, type ForwardLimits } from './forward-check.ts';
import type { FromWorker, HeldCaches, RunPart, ToWorker, WorkerSetup } from './protocol.ts';

/** How long `close` waits for a worker's run in progress before terminating the worker. */
const CLOSE_GRACE_MS = 30_000;

export interface EngineOptions {
  /** Worker threads, each with its own session (default 1). */
  readonly workers?: number;
  /** onnxruntime threads per session (default 2: one worker on a 2-core machine). */
  readonly intraOpNumThreads?: number;
  /** Default `cpu`; `cuda` is checked before any worker starts (see execution-provider.ts). */
  readonly executionProvider?: ExecutionProvider;
  /** The most rows one merged run may stack (default 8); 1 runs every forward alone. */
  readonly maxBatchRows?: number;
  /** Where a failing run is reported, with the dtype and dims of its inputs (default console.error). */
  readonly log?: (line: string) => void;
}

export interface EngineStats {
  /** Forward passes completed. */
  readonly forwards: number;
  /** session.run calls completed; fewer than `forwards` when forwards were merged. */
  readonly runs: number;
  /** session.run calls completed by each worker. */
  readonly runsByWorker: readonly number[];
  /**
   * Caches the workers hold and their tokens (rows × length), as of each worker's latest run.
   * Their arrays have room for up to twice those tokens (kv-store.ts).
   */
  readonly held: HeldCaches;
}

/** A Denoiser on onnxruntime-node worker threads. */
export interface Engine extends Denoiser {
  readonly model: ModelSpec;
  readonly vocab: number;
  readonly workers: number;
  stats(): EngineStats;
  /**
   * Rejects every queued or running forward with a `closed` EngineError, then stops the
   * workers (a run in progress finishes first) and frees every cache. Safe to call twice.
   */
  close(): Promise<void>;
}

/**
 * An engine for the denoiser of a loaded (verified) package; a graph that does not follow
 * the contract for `model.layers` layers is refused with a PackageError naming the file and
 * what is missing.
 *
 * @example
 * const engine = await createEngine(await loadPackageDir('models/shapes-tiny'));
 * // from a model URI: const { pkg } = await createModelStore(options).load(uri); await createEngine(pkg);
 * const out = await engine.forward({ batch: 1, length: n, inputIds, positionIds, attnBias, read: { start: 0, count: n } });
 * await engine.close();
 */
export async function createEngine(pkg: LoadedPackage, options: EngineOptions = {}): Promise<Engine> {
  const { manifest } = pkg;
  const model = manifest.model;
  if (model === undefined) throw new PackageError(`${manifest.name}@${manifest.version} has no model section in manifest.json`, 'manifest.json');
  const workers = options.workers ?? 1;
  const intraOpNumThreads = options.intraOpNumThreads ?? 2;
  const maxBatchRows = options.maxBatchRows ?? 8;
  for (const [name, value] of [['workers', workers], ['intraOpNumThreads', intraOpNumThreads], ['maxBatchRows', maxBatchRows]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  const executionProvider = options.executionProvider ?? 'cpu';
  await requireExecutionProvider(executionProvider);
  const setup: WorkerSetup = {
    model: pkg.file(model.file),
    layers: model.layers,
    heads: model.heads,
    headDim: model.headDim,
    maskValue: model.maskValue,
    executionProvider,
    intraOpNumThreads,
  };
  const started = Array.from({ length: workers }, () => startWorker(setup));
  const ready = await Promise.allSettled(started.map((w) => awaitReady(w, model.file)));
  const failed = ready.find((r) => r.status === 'rejected');
  const names = ready[0]?.status === 'fulfilled' ? ready[0].value : undefined;
  const problems = names === undefined ? [] : contractProblems(names.inputNames, names.outputNames, model.layers);
  if (failed !== undefined || names === undefined || problems.length > 0) {
    await Promise.all(started.map((w) => w.terminate()));
    if (failed !== undefined) throw failed.reason;
    throw new PackageError(`${model.file} does not follow the denoiser contract for ${model.layers} layers (manifest model.layers): ${problems.join('; ')}`, model.file);
  }
  const limits = { vocab: manifest.vocab.size, positions: model.positions.size };
  return new OrtEngine(model, limits, started, maxBatchRows, options.log ?? ((line) => console.error(line)));
}

/**
 * `createEngine` for a package folder, verified by `loadPackageDir` (a bad file is a
 * PackageError naming it).
 *
 * @example
 * const engine = await loadEngine('models/shapes-tiny', { workers: 1 });
 */
export async function loadEngine(dir: string, options: EngineOptions = {}): Promise<Engine> {
  return createEngine(await loadPackageDir(dir), options);
}

/**
 * Compiled (dist/) the worker is JavaScript; in a source checkout (tsx, vitest) it is
 * TypeScript, which a worker thread can only load through tsx's loader, registered first.
 */
function startWorker(setup: WorkerSetup): Worker {
  const compiled = !import.meta.url.endsWith('.ts');
  const entry = new URL(compiled ? './ort-worker.js' : './ort-worker.ts', import.meta.url);
  if (compiled) return new Worker(entry, { workerData: setup });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true, workerData: setup });
}

interface GraphNames {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

function awaitReady(worker: Worker, file: string): Promise<GraphNames> {
  return new Promise((resolve, reject) => {
    const done = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (m: FromWorker) => {
      done();
      if (m.type === 'ready') resolve(m);
      else reject(new PackageError(`${file} cannot be loaded by onnxruntime: ${m.type === 'start-failed' ? m.message : m.type}`, file));
    };
    const onError = (e: Error) => {
      done();
      reject(new EngineError('closed', `an ORT worker failed to start: ${e.message}`, { cause: e }));
    };
    const onExit = (code: number) => {
      done();
      reject(new EngineError('closed', `an ORT worker exited while starting (code ${code})`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

interface Job {
  readonly part: RunPart;
  readonly cache: EngineCache | undefined;
  resolve(output: ForwardOutput): void;
  reject(error: Error): void;
}

/** One worker, its session's caches, and the run it is doing. */
class Slot {
  /** Jobs of the run in progress (empty: idle). */
  running: Job[] = [];
  runId = 0;
  /** Cache rows held, to place new caches on the least loaded worker. */
  cacheRows = 0;
  runs = 0;
  held: HeldCaches = { caches: 0, tokens: 0 };
  exited = false;

  constructor(
    readonly index: number,
    readonly worker: Worker,
  ) {
    worker.once('exit', () => (this.exited = true));
  }

  post(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  /**
   * Ends the worker once its run in progress (if any) has finished: terminating a thread
   * inside session.run aborts the whole process. A worker still busy after `graceMs` (a
   * hung run) is terminated.
   */
  shutDown(graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.exited) return resolve();
      const timer = setTimeout(() => void this.worker.terminate(), graceMs);
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.post({ type: 'close' });
    });
  }
}

/** The main thread's handle on a cache whose keys/values live in `slot`'s worker. */
class EngineCache implements KvCache {
  #length = 0;
  disposed = false;
  /** A forward on this cache is queued or running. */
  busy = false;

  constructor(
    readonly owner: OrtEngine,
    readonly id: number,
    readonly batch: number,
    readonly slot: Slot,
  ) {}

  get length(): number {
    return this.#length;
  }

  grow(tokens: number): void {
    this.#length += tokens;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.owner.release(this);
  }
}

class OrtEngine implements Engine {
  readonly maskValue: number;
  readonly vocab: number;
  readonly workers: number;
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private nextCache = 1;
  private nextRun = 1;
  private forwards = 0;
  /** Why the engine stopped: 'the engine was closed', or a worker's failure. */
  private stopped: string | undefined;
  private dispatching = false;
  private terminated: Promise<void> | undefined;

  constructor(
    readonly model: ModelSpec,
    private readonly limits: ForwardLimits,
    workers: readonly Worker[],
    private readonly maxBatchRows: number,
    private readonly log: (line: string) => void,
  ) {
    this.maskValue = model.maskValue;
    this.vocab = limits.vocab;
    this.workers = workers.length;
    this.slots = workers.map((w, i) => new Slot(i, w));
    for (const slot of this.slots) {
      slot.worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
      slot.worker.on('error', (e: Error) => this.stop(`the engine stopped (ORT worker ${slot.index} failed: ${e.message})`));
      slot.worker.on('exit', (code: number) => this.stop(`the engine stopped (ORT worker ${slot.index} exited with code ${code})`));
      // Idle workers do not keep the process alive; a worker with a run does.
      slot.worker.unref();
    }
  }

  stats(): EngineStats {
    const runsByWorker = this.slots.map((s) => s.runs);
    return {
      forwards: this.forwards,
      runs: runsByWorker.reduce((a, b) => a + b, 0),
      runsByWorker,
      held: {
        caches: this.slots.reduce((n, s) => n + s.held.caches, 0),
        tokens: this.slots.reduce((n, s) => n + s.held.tokens, 0),
      },
    };
  }

  createCache(batch: number): KvCache {
    if (this.stopped) throw new EngineError('closed', `createCache: ${this.stopped}`);
    if (!Number.isInteger(batch) || batch < 1) throw new EngineError('invalid-input', `createCache: batch must be a positive integer, got ${batch}`);
    const slot = this.slots.reduce((best, s) => (s.cacheRows < best.cacheRows ? s : best));
    const cache = new EngineCache(this, this.nextCache++, batch, slot);
    slot.cacheRows += batch;
    slot.post({ type: 'cache-create', cache: cache.id, batch });
    return cache;
  }

  async forward(input: ForwardInput): Promise<ForwardOutput> {
    if (this.stopped) throw new EngineError('closed', `forward: ${this.stopped}`);
    const cache = this.ownCache(input);
    checkForwardInput(input, cache?.length ?? 0, this.limits);
    // Copies: the caller may reuse its arrays as soon as this returns; the copies are transferred.
    const part: RunPart = {
      cache: cache?.id ?? null,
      batch: input.batch,
      length: input.length,
      pastLength: cache?.length ?? 0,
      inputIds: input.inputIds.slice(),
      positionIds: input.positionIds.slice(),
      attnBias: input.attnBias.slice(),
      append: input.append ?? 0,
      read: { start: input.read.start, count: input.read.count },
    };
    return new Promise<ForwardOutput>((resolve, reject) => {
      if (cache) cache.busy = true;
      this.queue.push({ part, cache, resolve, reject });
      this.scheduleDispatch();
    });
  }

  async close(): Promise<void> {
    this.stop('the engine was closed');
    await this.terminated;
  }

  /** Called by EngineCache.dispose: drops its queued forwards and frees its worker-side tensors. */
  release(cache: EngineCache): void {
    if (this.stopped) return;
    for (const job of this.queue.filter((j) => j.cache === cache)) {
      this.queue.splice(this.queue.indexOf(job), 1);
      cache.busy = false;
      job.reject(new EngineError('cache-disposed', `forward: cache ${cache.id} was disposed while this forward was queued`));
    }
    cache.slot.cacheRows -= cache.batch;
    cache.slot.post({ type: 'cache-dispose', cache: cache.id });
  }

  private ownCache(input: ForwardInput): EngineCache | undefined {
    const cache = input.cache;
    if (cache === undefined) return undefined;
    if (!(cache instanceof EngineCache) || cache.owner !== this) throw new EngineError('invalid-input', 'forward: the cache was not created by this engine');
    if (cache.disposed) throw new EngineError('cache-disposed', `forward: cache ${cache.id} has been disposed`);
    if (cache.busy) throw new EngineError('cache-busy', `forward: cache ${cache.id} is in use by an unfinished forward; await it first`);
    if (cache.batch !== input.batch) throw new EngineError('invalid-input', `forward: batch ${input.batch} does not match the cache's ${cache.batch} rows`);
    return cache;
  }

  /**
   * Dispatches once the current turn of the event loop is over, so that forwards submitted
   * together (e.g. by `Promise.all`) reach an idle worker together and can be merged.
   */
  private scheduleDispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    setImmediate(() => {
      this.dispatching = false;
      this.dispatch();
    });
  }

  /** Starts a run on every idle worker that has queued work it can do. */
  private dispatch(): void {
    if (this.stopped) return;
    for (const slot of this.slots) {
      if (slot.running.length > 0) continue;
      const runnable = (job: Job) => job.cache === undefined || job.cache.slot === slot;
      const head = this.queue.find(runnable);
      if (head === undefined) continue;
      const jobs = [head];
      let rows = head.part.batch;
      for (const job of this.queue) {
        if (job === head || !runnable(job) || job.part.length !== head.part.length || rows + job.part.batch > this.maxBatchRows) continue;
        jobs.push(job);
        rows += job.part.batch;
      }
      for (const job of jobs) this.queue.splice(this.queue.indexOf(job), 1);
      slot.running = jobs;
      slot.runId = this.nextRun++;
      slot.worker.ref();
      const transfer = jobs.flatMap(({ part }) => [part.inputIds.buffer, part.positionIds.buffer, part.attnBias.buffer] as ArrayBuffer[]);
      slot.post({ type: 'run', run: slot.runId, parts: jobs.map((j) => j.part) }, transfer);
    }
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    if (this.stopped || (message.type !== 'ran' && message.type !== 'run-failed') || message.run !== slot.runId) return;
    const jobs = slot.running;
    slot.running = [];
    slot.worker.unref();
    for (const job of jobs) if (job.cache) job.cache.busy = false;
    if (message.type === 'ran') {
      slot.runs++;
      slot.held = message.held;
      jobs.forEach((job, i) => {
        job.cache?.grow(job.part.append);
        const logits = message.logits[i];
        if (logits === undefined || message.vocab !== this.vocab) {
          job.reject(new EngineError('run-failed', `forward: the graph returned ${message.vocab} logits per token, the manifest's vocabulary has ${this.vocab}`));
          return;
        }
        this.forwards++;
        job.resolve({ logits, vocab: message.vocab });
      });
    } else {
      const shape = describeRun(jobs);
      this.log(`engine: denoiser run ${message.run} failed (${shape}): ${message.message}; inputs: ${message.inputs}`);
      for (const job of jobs) job.reject(new EngineError('run-failed', `forward: the denoiser run failed (${shape}): ${message.message}`));
    }
    this.dispatch();
  }

  private stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = reason;
    const jobs = [...this.queue.splice(0), ...this.slots.flatMap((s) => s.running.splice(0))];
    for (const job of jobs) job.reject(new EngineError('closed', `forward: ${reason} while this forward was pending`));
    this.terminated = Promise.all(this.slots.map((s) => s.shutDown(CLOSE_GRACE_MS))).then(() => undefined);
  }
}

/** "2 forwards merged, B=3 N=9 C=4": the shape of a run, for messages. */
function describeRun(jobs: readonly Job[]): string {
  const rows = jobs.reduce((s, j) => s + j.part.batch, 0);
  const c = Math.max(...jobs.map((j) => j.part.pastLength));
  const n = jobs[0]?.part.length ?? 0;
  return `${jobs.length === 1 ? '1 forward' : `${jobs.length} forwards merged`}, B=${rows} N=${n} C=${c}`;
}
