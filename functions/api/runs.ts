/**
 * Admission of pipeline runs, in front of the engine: at most `concurrentRuns` sample at
 * once (their forward passes share, and merge on, the engine's worker threads), at most
 * `queuedRuns` more wait for a slot in arrival order, and one more is refused with 429 and
 * a Retry-After estimated from recent run times. Every admitted run has a deadline counted
 * from admission (queueing included); a client that goes away, the deadline and a shutdown
 * all abort the run's signal, which the sampler checks between steps.
 */
import { ApiError } from './errors.ts';

export interface RunLimits {
  readonly concurrentRuns: number;
  readonly queuedRuns: number;
  readonly deadlineMs: number;
}

export interface RunStats {
  /** Runs sampling now. */
  readonly running: number;
  /** Admitted runs waiting for a slot. */
  readonly waiting: number;
  readonly completed: number;
  /** Runs whose client went away before the result. */
  readonly cancelled: number;
  /** Runs ended by their deadline. */
  readonly timedOut: number;
  /** Runs that ended with any other error (a shutdown included). */
  readonly failed: number;
}

/** Why a run stopped when its client disconnected; nobody is left to tell. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

interface Waiter {
  readonly run: Run<unknown>;
  resolve(): void;
}

/**
 * @example
 * const runs = new Runs({ concurrentRuns: 4, queuedRuns: 16, deadlineMs: 120_000 });
 * const run = runs.admit(c.req.raw.signal, (signal) => pipeline.generate(prompt, { signal }));
 * const result = await run.execute((steps) => drain(steps));
 */
export class Runs {
  #running = 0;
  readonly #waiting: Waiter[] = [];
  readonly #live = new Set<Run<unknown>>();
  #closed = false;
  #idle: (() => void)[] = [];
  #counts = { completed: 0, cancelled: 0, timedOut: 0, failed: 0 };
  /** Moving average of how long a run samples, for Retry-After. */
  #runSeconds = 1;

  constructor(readonly limits: RunLimits) {
    for (const [name, value, min] of [['concurrentRuns', limits.concurrentRuns, 1], ['queuedRuns', limits.queuedRuns, 0], ['deadlineMs', limits.deadlineMs, 1]] as const) {
      if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be a whole number >= ${min}, got ${value}`);
    }
  }

  /**
   * Admits a request: `start(signal)` builds its work first (a request it refuses never
   * takes a place), then the run takes a place, sampling or waiting. With no place left it
   * is refused with 429; after `close()` with 503. The caller must `execute` the run.
   */
  admit<T>(request: AbortSignal, start: (signal: AbortSignal) => T): Run<T> {
    const controller = new AbortController();
    const work = start(controller.signal);
    if (this.#closed) throw shuttingDown();
    if (this.#live.size >= this.limits.concurrentRuns + this.limits.queuedRuns) {
      const retryAfter = Math.max(1, Math.ceil((this.#runSeconds * (this.#waiting.length + 1)) / this.limits.concurrentRuns));
      throw new ApiError(429, 'queue_full', `the server is busy (${this.#running} running, ${this.#waiting.length} waiting); retry in ${retryAfter} s`, null, {
        'Retry-After': String(retryAfter),
      });
    }
    const run = new Run(this, work, controller, request);
    this.#live.add(run as Run<unknown>);
    return run;
  }

  /** After `close()`: new runs are refused. */
  get closed(): boolean {
    return this.#closed;
  }

  stats(): RunStats {
    return { running: this.#running, waiting: this.#waiting.length, ...this.#counts };
  }

  /** Refuses new runs (503) and cancels the waiting ones; running ones go on. */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiting.splice(0)) waiter.run.abort(shuttingDown());
  }

  /** `close()`, then waits for the running runs, cancelling those still going after `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    this.close();
    if (this.#live.size === 0) return;
    const idle = new Promise<void>((resolve) => this.#idle.push(resolve));
    const timer = setTimeout(() => {
      for (const run of this.#live) run.abort(shuttingDown());
    }, graceMs);
    await idle;
    clearTimeout(timer);
  }

  /** Resolves when `run` may sample; rejects with the run's abort reason if it is aborted first. */
  acquire(run: Run<unknown>): Promise<void> {
    if (run.signal.aborted) return Promise.reject(run.signal.reason);
    if (this.#running < this.limits.concurrentRuns && this.#waiting.length === 0) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { run, resolve };
      const onAbort = () => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(run.signal.reason);
      };
      waiter.resolve = () => {
        run.signal.removeEventListener('abort', onAbort);
        resolve();
      };
      run.signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Frees the slot of a run that sampled for `seconds`, waking the next waiter. */
  release(seconds: number): void {
    this.#runSeconds = 0.8 * this.#runSeconds + 0.2 * seconds;
    const next = this.#waiting.shift();
    if (next) next.resolve();
    else this.#running--;
  }

  /** Counts how a run ended and forgets it. */
  finish(run: Run<unknown>, error: unknown): void {
    if (error === undefined) this.#counts.completed++;
    else if (error instanceof ClientGoneError) this.#counts.cancelled++;
    else if (error instanceof ApiError && error.code === 'deadline_exceeded') this.#counts.timedOut++;
    else this.#counts.failed++;
    this.#live.delete(run);
    if (this.#live.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }
}

/** One admitted request: its work, its signal, and when it was admitted and started. */
export class Run<T> {
  readonly admittedAt = performance.now();
  /** When it got a slot (performance.now()); undefined while waiting. */
  startedAt: number | undefined;
  readonly #deadline: ReturnType<typeof setTimeout>;
  readonly #onRequestAbort: () => void;
  #executed = false;

  constructor(
    private readonly runs: Runs,
    readonly work: T,
    private readonly controller: AbortController,
    private readonly request: AbortSignal,
  ) {
    const { deadlineMs } = runs.limits;
    this.#deadline = setTimeout(() => this.abort(new ApiError(504, 'deadline_exceeded', `the request did not finish within its deadline of ${deadlineMs} ms`)), deadlineMs);
    this.#onRequestAbort = () => this.abort(new ClientGoneError('the client closed the connection'));
    if (request.aborted) this.#onRequestAbort();
    else request.addEventListener('abort', this.#onRequestAbort, { once: true });
  }

  /** Aborted by a disconnect, the deadline or a shutdown; its reason says which. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(reason: Error): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /**
   * Waits for a slot, then runs `use(work)`; the slot is freed however it ends. When the
   * run was aborted, the error is the abort's reason (a 504 ApiError for the deadline, a
   * ClientGoneError, a 503 ApiError for a shutdown) rather than the sampler's cancellation.
   */
  async execute<R>(use: (work: T) => Promise<R>): Promise<R> {
    if (this.#executed) throw new Error('a run executes once');
    this.#executed = true;
    let error: unknown;
    try {
      await this.runs.acquire(this as Run<unknown>);
      this.startedAt = performance.now();
      try {
        return await use(this.work);
      } finally {
        this.runs.release((performance.now() - this.startedAt) / 1000);
      }
    } catch (e) {
      error = this.signal.aborted ? this.signal.reason : e;
      throw error;
    } finally {
      clearTimeout(this.#deadline);
      this.request.removeEventListener('abort', this.#onRequestAbort);
      this.runs.finish(this as Run<unknown>, error);
    }
  }
}

function shuttingDown(): ApiError {
  return new ApiError(503, 'shutting_down', 'the server is shutting down; retry on another instance');
}
