/**
 * Crash safety with real processes: the node server (`npm start`, the embedded default: the
 * worker in-process on SQLite) is killed with SIGKILL in the middle of a batch and started
 * again on the same database and output folder. Afterwards every item is completed exactly
 * once (counted in the artifact store), and every event reached the receiver under one
 * stable webhook-id, verified with the Standard Webhooks reference package.
 */
import Database from 'better-sqlite3';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { blankImage } from '../functions/core/image.ts';
import { encodePng } from '../functions/tokenizers/png.ts';
import { eventually } from './support/api.ts';
import { startReceiver, type Receiver } from './support/jobs.ts';
import { removeTempDirs, tempDir } from './support/packages.ts';
import { listeningServer, stopServers } from './support/server.ts';

let receiver: Receiver | undefined;
afterEach(async () => {
  stopServers();
  await receiver?.close();
  removeTempDirs();
});

const ITEMS = 24;

describe('a worker killed in the middle of a batch', () => {
  it('is restarted and completes every item exactly once, each event delivered under a stable webhook-id', async () => {
    const dir = tempDir('crash-');
    const outputs = join(dir, 'outputs');
    const env = {
      JOBS_DB_PATH: join(dir, 'jobs.db'),
      OUTPUT_URI: `file://${outputs}`,
      JOB_CONCURRENCY: '1',
      JOB_VISIBILITY_TIMEOUT_MS: '1500',
      JOB_POLL_MS: '50',
      WEBHOOK_ALLOW_PRIVATE: '1',
      WEBHOOK_RETRY_SCHEDULE: '200ms,400ms,800ms,1600ms,3200ms',
    };
    receiver = await startReceiver();
    const image = encodePng(blankImage(64, 64, [220, 40, 40])).toString('base64');
    const first = await listeningServer(env);
    const res = await fetch(`${first.url}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: Array.from({ length: ITEMS }, () => ({ image, instruction: 'make the red circle blue' })), webhook: { url: receiver.url }, steps: 4 }),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; webhook: { secret: string } };

    for (let done = 0; done < 3; ) {
      const progress = (await (await fetch(`${first.url}/v1/batches/${created.id}`)).json()) as { request_counts: { completed: number } };
      done = progress.request_counts.completed;
    }
    process.kill(-(first.server.child.pid as number), 'SIGKILL');
    await first.server.exited();
    // Killed mid-way: items were left to do, and a message was in hand (leased, never acked).
    const db = new Database(env.JOBS_DB_PATH, { readonly: true });
    const left = db.prepare(`SELECT COUNT(*) AS n FROM items WHERE status IN ('queued', 'running')`).get() as { n: number };
    const leased = db.prepare(`SELECT COUNT(*) AS n FROM queue_messages WHERE state = 'leased'`).get() as { n: number };
    db.close();
    expect(left.n).toBeGreaterThan(0);
    expect(leased.n).toBeGreaterThan(0);

    const second = await listeningServer(env);
    let batch: { status: string; request_counts: Record<string, number>; items: { status: string; result: { key: string } | null }[] } | undefined;
    const until = Date.now() + 90_000;
    while (batch?.status !== 'completed') {
      if (Date.now() > until) throw new Error(`the batch did not complete: ${JSON.stringify(batch?.request_counts)}`);
      await new Promise((r) => setTimeout(r, 100));
      batch = (await (await fetch(`${second.url}/v1/batches/${created.id}`)).json()) as typeof batch;
    }
    expect(batch.request_counts).toMatchObject({ total: ITEMS, completed: ITEMS, failed: 0 });

    // Exactly one result per item in the artifact store, each where its item says.
    const files = readdirSync(join(outputs, created.id)).filter((f) => !f.includes('.partial-'));
    expect(files.sort()).toEqual(Array.from({ length: ITEMS }, (_, i) => `${i}.png`).sort());
    expect(batch.items.map((i) => i.result?.key)).toEqual(Array.from({ length: ITEMS }, (_, i) => `${created.id}/${i}.png`));

    // Every event arrives (perhaps more than once), always under the same webhook-id.
    await eventually(() => receiver!.deliveries.some((d) => d.body.startsWith('{"type":"batch.completed"')), 30_000);
    const webhook = new Webhook(created.webhook.secret);
    const idsByEvent = new Map<string, Set<string>>();
    for (const d of receiver.deliveries) {
      const event = webhook.verify(d.body, d.headers) as { type: string; data: { item?: { index: number } } };
      const name = `${event.type}#${event.data.item?.index ?? ''}`;
      idsByEvent.set(name, (idsByEvent.get(name) ?? new Set()).add(d.id));
    }
    expect(idsByEvent.size).toBe(ITEMS + 1);
    for (const [name, ids] of idsByEvent) expect(ids.size, name).toBe(1);
    expect(new Set(receiver.deliveries.map((d) => d.id)).size).toBe(ITEMS + 1);
  }, 180_000);
});
