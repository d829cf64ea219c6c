import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.ts';
import { ClientGoneError, Runs } from './runs.ts';

/** Work that finishes when told to, or fails once its signal is aborted. */
function gate(signal: AbortSignal) {
  let open!: () => void;
  const opened = new Promise<void>((resolve, reject) => {
    open = resolve;
    signal.addEventListener('abort', () => reject(new Error('sampling was cancelled')));
  });
  // Work that never started is cancelled without anyone awaiting it.
  opened.catch(() => undefined);
  return { open: () => open(), opened };
}

const never = new AbortController().signal;

describe('run admission', () => {
  it('runs at most concurrentRuns at once and starts the waiting ones in arrival order', async () => {
    const runs = new Runs({ concurrentRuns: 2, queuedRuns: 2, deadlineMs: 10_000 });
    const admitted = [0, 1, 2, 3].map(() => runs.admit(never, gate));
    const order: number[] = [];
    const done = admitted.map((run, i) => run.execute(async (g) => {
      order.push(i);
      await g.opened;
      return i;
    }));
    await Promise.resolve();
    expect(runs.stats()).toMatchObject({ running: 2, waiting: 2 });
    admitted[1]?.work.open();
    await done[1];
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([0, 1, 2]);
    for (const run of admitted) run.work.open();
    expect(await Promise.all(done)).toEqual([0, 1, 2, 3]);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(runs.stats()).toEqual({ running: 0, waiting: 0, completed: 4, cancelled: 0, timedOut: 0, failed: 0 });
  });

  it('refuses a request beyond the queue with 429 and a Retry-After', () => {
    const runs = new Runs({ concurrentRuns: 1, queuedRuns: 1, deadlineMs: 10_000 });
    runs.admit(never, gate);
    runs.admit(never, gate);
    let refused: unknown;
    try {
      runs.admit(never, gate);
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 429, code: 'queue_full', headers: { 'Retry-After': expect.stringMatching(/^[1-9]\d*$/) } });
  });

  it('builds the work before taking a place, so a refused request takes none', () => {
    const runs = new Runs({ concurrentRuns: 1, queuedRuns: 0, deadlineMs: 10_000 });
    expect(() => runs.admit(never, () => { throw new ApiError(422, 'unknown_word', 'no'); })).toThrow(/no/);
    expect(() => runs.admit(never, gate)).not.toThrow();
  });

  it('ends a run at its deadline with a 504 error, not the sampler\'s cancellation', async () => {
    const runs = new Runs({ concurrentRuns: 1, queuedRuns: 0, deadlineMs: 20 });
    const run = runs.admit(never, gate);
    await expect(run.execute((g) => g.opened)).rejects.toMatchObject({ status: 504, code: 'deadline_exceeded' });
    expect(runs.stats()).toMatchObject({ timedOut: 1, running: 0 });
  });

  it('cancels a run whose client goes away, waiting or running, and frees its slot', async () => {
    const runs = new Runs({ concurrentRuns: 1, queuedRuns: 1, deadlineMs: 10_000 });
    const first = new AbortController();
    const second = new AbortController();
    const running = runs.admit(first.signal, gate);
    const waiting = runs.admit(second.signal, gate);
    const a = running.execute((g) => g.opened);
    const b = waiting.execute((g) => g.opened);
    second.abort();
    await expect(b).rejects.toBeInstanceOf(ClientGoneError);
    first.abort();
    await expect(a).rejects.toBeInstanceOf(ClientGoneError);
    expect(runs.stats()).toMatchObject({ running: 0, waiting: 0, cancelled: 2 });
    const next = runs.admit(never, gate);
    next.work.open();
    await next.execute((g) => g.opened);
    expect(runs.stats().completed).toBe(1);
  });

  it('drains on shutdown: refuses new runs with 503, lets running ones finish within the grace', async () => {
    const runs = new Runs({ concurrentRuns: 1, queuedRuns: 1, deadlineMs: 10_000 });
    const running = runs.admit(never, gate);
    const waiting = runs.admit(never, gate);
    const a = running.execute((g) => g.opened);
    const b = waiting.execute((g) => g.opened);
    const drained = runs.drain(1_000);
    await expect(b).rejects.toMatchObject({ status: 503, code: 'shutting_down' });
    expect(() => runs.admit(never, gate)).toThrow(/shutting down/);
    running.work.open();
    await a;
    await drained;
    expect(runs.stats()).toMatchObject({ completed: 1, failed: 1 });
  });

  it('cancels what is still running when the grace is over', async () => {
    const runs = new Runs({ concurrentRuns: 1, queuedRuns: 0, deadlineMs: 10_000 });
    const run = runs.admit(never, gate);
    const a = run.execute((g) => g.opened);
    await runs.drain(10);
    await expect(a).rejects.toMatchObject({ status: 503, code: 'shutting_down' });
  });
});
