import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openJobsDatabase, type JobsDatabase } from './sqlite-db.ts';
import { SqliteQueue } from './sqlite-queue.ts';

const open: { dir: string; db: JobsDatabase }[] = [];
afterEach(() => {
  for (const { dir, db } of open.splice(0)) {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function database(): { db: JobsDatabase; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'queue-'));
  const path = join(dir, 'nested', 'jobs.db');
  const db = openJobsDatabase(path);
  open.push({ dir, db });
  return { db, path };
}

/** A queue on a clock the test moves. */
function queue(options: { visibilityTimeoutMs?: number; maxAttempts?: number } = {}) {
  const clock = { now: 1_000_000 };
  const { db, path } = database();
  const q = new SqliteQueue(db, { visibilityTimeoutMs: options.visibilityTimeoutMs ?? 1_000, maxAttempts: options.maxAttempts ?? 3, now: () => clock.now });
  return { q, clock, db, path };
}

describe('the SQLite queue', () => {
  it('keeps its database in WAL mode, in a file it creates with its folder', () => {
    const { db } = database();
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('delivers a message, hides it while leased, and forgets it once acked', async () => {
    const { q } = queue();
    await q.send('hello');
    const [m] = await q.receive(5);
    expect(m).toMatchObject({ body: 'hello', attempts: 1 });
    expect(await q.receive(5)).toEqual([]);
    expect(await q.ack(m!.receipt)).toBe(true);
    expect(q.counts()).toEqual({ ready: 0, leased: 0, done: 1, dead: 0 });
  });

  it('delivers a message again when its lease runs out (a crashed worker), counting the attempt', async () => {
    const { q, clock } = queue({ visibilityTimeoutMs: 1_000 });
    await q.send('work');
    const [first] = await q.receive(1);
    clock.now += 999;
    expect(await q.receive(1)).toEqual([]);
    clock.now += 1;
    const [second] = await q.receive(1);
    expect(second).toMatchObject({ id: first!.id, attempts: 2 });
    // The first lease is gone: its ack does nothing.
    expect(await q.ack(first!.receipt)).toBe(false);
    expect(await q.ack(second!.receipt)).toBe(true);
  });

  it('keeps a lease that is extended', async () => {
    const { q, clock } = queue({ visibilityTimeoutMs: 1_000 });
    await q.send('long work');
    const [m] = await q.receive(1);
    clock.now += 900;
    await q.extend(m!.receipt, 1_000);
    clock.now += 900;
    expect(await q.receive(1)).toEqual([]);
  });

  it('delivers a retried message after its delay, and a delayed send after its delay', async () => {
    const { q, clock } = queue();
    await q.send('later', { delayMs: 500 });
    expect(await q.receive(1)).toEqual([]);
    clock.now += 500;
    const [m] = await q.receive(1);
    await q.retry(m!.receipt, 2_000);
    clock.now += 1_999;
    expect(await q.receive(1)).toEqual([]);
    clock.now += 1;
    expect(await q.receive(1)).toMatchObject([{ body: 'later', attempts: 2 }]);
  });

  it('dead-letters a message delivered maxAttempts times without an ack', async () => {
    const { q, clock } = queue({ maxAttempts: 3, visibilityTimeoutMs: 100 });
    await q.send('poison');
    await q.send('fine');
    for (let attempt = 1; attempt <= 3; attempt++) {
      const got = await q.receive(2);
      expect(got.find((m) => m.body === 'poison')?.attempts).toBe(attempt);
      const fine = got.find((m) => m.body === 'fine');
      if (fine) await q.ack(fine.receipt);
      clock.now += 100;
    }
    expect(await q.receive(2)).toEqual([]);
    expect(q.counts()).toEqual({ ready: 0, leased: 0, done: 1, dead: 1 });
  });

  it('sends a message with a dedupe id once, even after it was acked', async () => {
    const { q } = queue();
    await q.send('a', { dedupeId: 'item:1' });
    await q.send('a', { dedupeId: 'item:1' });
    const [m] = await q.receive(5);
    await q.ack(m!.receipt);
    await q.send('a', { dedupeId: 'item:1' });
    expect(await q.receive(5)).toEqual([]);
  });

  it('never leases one message to two queues sharing the file, and hands them out in order', async () => {
    const { q, path } = queue();
    const other = openJobsDatabase(path);
    try {
      const q2 = new SqliteQueue(other, { visibilityTimeoutMs: 1_000, maxAttempts: 3, now: () => 1_000_000 });
      for (let i = 0; i < 10; i++) await q.send(String(i));
      const seen: string[] = [];
      for (let round = 0; round < 12; round++) {
        const a = await (round % 2 === 0 ? q : q2).receive(1);
        seen.push(...a.map((m) => m.body));
      }
      expect(seen).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    } finally {
      other.close();
    }
  });
});
