/**
 * The embedded queue (queue.ts's contract) in the job database: a message is a row that is
 * `ready`, `leased` (received; invisible until `visible_at`), `done` or `dead`. Receiving
 * leases rows in one write transaction, so two workers, in one process or several, never
 * hold the same message at once; a lease that runs out makes the message receivable again,
 * which is how a killed worker's work comes back. A message received `maxAttempts` times
 * without an ack is dead-lettered at its next receive (as SQS's redrive policy does).
 * Acked rows are kept a week as `done`, so a dedupe id stays taken after the ack.
 */
import { randomUUID } from 'node:crypto';
import type { Queue, QueueMessage, SendOptions } from './queue.ts';
import type { JobsDatabase } from './sqlite-db.ts';

export interface SqliteQueueOptions {
  /** Several queues may share a database. */
  readonly name?: string;
  readonly visibilityTimeoutMs: number;
  readonly maxAttempts: number;
  /** The clock (tests move it). */
  readonly now?: () => number;
}

export interface QueueCounts {
  readonly ready: number;
  readonly leased: number;
  readonly done: number;
  readonly dead: number;
}

const KEEP_DONE_MS = 7 * 24 * 3_600_000;

interface Row {
  id: string;
  body: string;
  attempts: number;
}

/**
 * @example
 * const queue = new SqliteQueue(openJobsDatabase('.cache/jobs.db'), { visibilityTimeoutMs: 60_000, maxAttempts: 5 });
 * await queue.send(JSON.stringify({ kind: 'item', batch: 'batch_…', index: 0 }));
 * for (const m of await queue.receive(1)) await queue.ack(m.receipt);
 */
export class SqliteQueue implements Queue {
  readonly maxDelayMs = Number.MAX_SAFE_INTEGER;
  readonly name: string;
  readonly #db: JobsDatabase;
  readonly #options: SqliteQueueOptions;
  readonly #now: () => number;
  readonly #insert;
  readonly #due;
  readonly #lease;
  readonly #bury;
  readonly #ack;
  readonly #retry;
  readonly #extend;
  readonly #prune;
  readonly #counts;
  #lastPrune = 0;

  constructor(db: JobsDatabase, options: SqliteQueueOptions) {
    this.#db = db;
    this.#options = options;
    this.name = options.name ?? 'batches';
    this.#now = options.now ?? Date.now;
    this.#insert = db.prepare(
      `INSERT INTO queue_messages (id, queue, dedupe_id, body, state, visible_at, created_at) VALUES (?, ?, ?, ?, 'ready', ?, ?)
       ON CONFLICT DO NOTHING`,
    );
    this.#due = db.prepare<[string, number, number], Row>(
      `SELECT id, body, attempts FROM queue_messages WHERE queue = ? AND state IN ('ready', 'leased') AND visible_at <= ? ORDER BY visible_at, rowid LIMIT ?`,
    );
    this.#lease = db.prepare(`UPDATE queue_messages SET state = 'leased', attempts = attempts + 1, receipt = ?, visible_at = ? WHERE id = ?`);
    this.#bury = db.prepare(`UPDATE queue_messages SET state = 'dead', receipt = NULL, finished_at = ? WHERE id = ?`);
    this.#ack = db.prepare(`UPDATE queue_messages SET state = 'done', receipt = NULL, finished_at = ? WHERE receipt = ? AND state = 'leased'`);
    this.#retry = db.prepare(`UPDATE queue_messages SET state = 'ready', receipt = NULL, visible_at = ? WHERE receipt = ? AND state = 'leased'`);
    this.#extend = db.prepare(`UPDATE queue_messages SET visible_at = ? WHERE receipt = ? AND state = 'leased'`);
    this.#prune = db.prepare(`DELETE FROM queue_messages WHERE queue = ? AND state = 'done' AND finished_at < ?`);
    this.#counts = db.prepare<[string], { state: keyof QueueCounts; n: number }>(`SELECT state, COUNT(*) AS n FROM queue_messages WHERE queue = ? GROUP BY state`);
  }

  async send(body: string, options: SendOptions = {}): Promise<void> {
    const now = this.#now();
    this.#insert.run(randomUUID(), this.name, options.dedupeId ?? null, body, now + Math.max(0, options.delayMs ?? 0), now);
  }

  async receive(max: number): Promise<QueueMessage[]> {
    const now = this.#now();
    const received = this.#db.transaction(() => {
      const out: QueueMessage[] = [];
      // Rows over the attempt limit are buried rather than delivered; look past them.
      for (;;) {
        const rows = this.#due.all(this.name, now, max - out.length);
        if (rows.length === 0) return out;
        for (const row of rows) {
          if (row.attempts >= this.#options.maxAttempts) {
            this.#bury.run(now, row.id);
            continue;
          }
          const receipt = randomUUID();
          this.#lease.run(receipt, now + this.#options.visibilityTimeoutMs, row.id);
          out.push({ id: row.id, body: row.body, attempts: row.attempts + 1, receipt });
        }
        if (out.length >= max) return out;
      }
    }).immediate();
    if (now - this.#lastPrune > 3_600_000) {
      this.#lastPrune = now;
      this.#prune.run(this.name, now - KEEP_DONE_MS);
    }
    return received;
  }

  async ack(receipt: string): Promise<boolean> {
    return this.#ack.run(this.#now(), receipt).changes === 1;
  }

  async retry(receipt: string, delayMs: number): Promise<void> {
    this.#retry.run(this.#now() + Math.max(0, delayMs), receipt);
  }

  async extend(receipt: string, ms: number): Promise<void> {
    this.#extend.run(this.#now() + ms, receipt);
  }

  /** How many messages are in each state (for tests and operators). */
  counts(): QueueCounts {
    const counts = { ready: 0, leased: 0, done: 0, dead: 0 };
    for (const { state, n } of this.#counts.all(this.name)) counts[state] = n;
    return counts;
  }

  /** The database belongs to whoever opened it. */
  async close(): Promise<void> {}
}
