/**
 * The embedded worker: `concurrency` lanes, each receiving one message at a time from the
 * queue and handing it to the {@link BatchWorker}, with the lease extended while the work
 * goes on. A message is acked or retried only after it was handled, so whatever a crash
 * interrupts comes back when its lease runs out. `stop` takes no more messages and waits for
 * those in hand (up to a grace period; what is still running then is redelivered later).
 */
import type { Queue, QueueMessage } from './queue.ts';
import type { BatchWorker } from './worker.ts';

export interface WorkerLoopOptions {
  readonly concurrency: number;
  /** How long an idle lane waits before looking again (`wake` cuts it short). */
  readonly pollMs: number;
  /** The queue's lease; extended every third of it while a message is handled. */
  readonly visibilityTimeoutMs: number;
  readonly log: (line: string) => void;
}

/**
 * @example
 * const loop = new WorkerLoop(worker, queue, { concurrency: 1, pollMs: 250, visibilityTimeoutMs: 60_000, log: console.log });
 * loop.start();
 * await loop.stop(10_000);
 */
export class WorkerLoop {
  #running = false;
  #lanes: Promise<void>[] = [];
  #wakers = new Set<() => void>();

  constructor(
    private readonly worker: BatchWorker,
    private readonly queue: Queue,
    private readonly options: WorkerLoopOptions,
  ) {}

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#lanes = Array.from({ length: this.options.concurrency }, () => this.#lane());
  }

  /** New messages were sent: idle lanes look now instead of at their next poll. */
  wake(): void {
    for (const wake of this.#wakers) wake();
  }

  async stop(graceMs: number): Promise<void> {
    this.#running = false;
    this.wake();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([Promise.all(this.#lanes), grace]);
    clearTimeout(timer);
  }

  async #lane(): Promise<void> {
    while (this.#running) {
      let messages: QueueMessage[] = [];
      try {
        messages = await this.queue.receive(1);
      } catch (e) {
        this.options.log(`batch worker: cannot receive messages: ${e instanceof Error ? e.message : String(e)}`);
      }
      const message = messages[0];
      if (message) await this.#handle(message);
      else await this.#idle();
    }
  }

  async #handle(message: QueueMessage): Promise<void> {
    const { visibilityTimeoutMs, log } = this.options;
    const heartbeat = setInterval(() => {
      this.queue.extend(message.receipt, visibilityTimeoutMs).catch((e: unknown) => log(`batch worker: cannot extend a lease: ${String(e)}`));
    }, Math.max(10, Math.floor(visibilityTimeoutMs / 3)));
    try {
      const disposition = await this.worker.handle(message.body, message.attempts);
      if (disposition.ack) await this.queue.ack(message.receipt);
      else await this.queue.retry(message.receipt, disposition.retryInMs);
    } catch (e) {
      // Unexpected (the store or queue failing): leave the message to come back after its lease.
      log(`batch worker: message ${message.id} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    } finally {
      clearInterval(heartbeat);
    }
  }

  #idle(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.options.pollMs);
      this.#wakers.add(done);
    });
  }
}
