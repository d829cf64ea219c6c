/**
 * Streams under load and when things go wrong: every event has an id, idle streams get
 * pings, many clients at once all finish, a client that goes away frees its run slot, a
 * full queue answers 429 with Retry-After, the deadline and a failing engine end a stream
 * with an `error` event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, loadModel, readSse, serveApi, type ApiUnderTest, type ModelUnderTest, type SseEvent } from '../../test/support/api.ts';

let model: ModelUnderTest;
const servers: ApiUnderTest[] = [];

beforeAll(async () => {
  model = await loadModel();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await model.engine.close();
});

async function server(options: Parameters<typeof serveApi>[1], on: ModelUnderTest = model): Promise<ApiUnderTest> {
  const api = await serveApi(on, options);
  servers.push(api);
  return api;
}

function generate(api: ApiUnderTest, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${api.url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a small blue square in the center', ...body }),
    ...(signal ? { signal } : {}),
  });
}

const data = (e: SseEvent) => JSON.parse(e.data) as Record<string, unknown>;
const isPartial = (e: SseEvent) => e.event === 'image_generation.partial_image';

describe('the event stream', () => {
  it('numbers every event, previews every N steps, and pings while idle', async () => {
    const api = await server({ pingMs: 2 });
    const res = await generate(api, { stream: true, steps: 12, preview_every: 3, seed: 3, candidates: 1 });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { events, comments } = await readSse(res);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => String(i)));
    expect(events.map((e) => e.event)).toEqual([...Array(3).fill('image_generation.partial_image'), 'image_generation.completed']);
    expect(events.map((e) => data(e).step)).toEqual([3, 6, 9, 12]);
    for (const e of events) expect(data(e).type).toBe(e.event);
    expect(comments.map((c) => c.trim())).toContain('ping');
  });

  it('pings a client that waits in the queue, then serves it', async () => {
    const api = await server({ pingMs: 10, limits: { concurrentRuns: 1, queuedRuns: 1 } });
    const first = generate(api, { stream: true, steps: 128 }).then((r) => readSse(r));
    await eventually(() => api.runs.stats().running === 1);
    const second = await readSse(await generate(api, { stream: true, steps: 4 }));
    expect(second.comments.length).toBeGreaterThan(0);
    const completed = second.events.at(-1);
    expect(completed?.event).toBe('image_generation.completed');
    expect((data(completed as SseEvent).timings as { queued_ms: number }).queued_ms).toBeGreaterThan(0);
    expect((await first).events.at(-1)?.event).toBe('image_generation.completed');
  });
});

describe('many clients', () => {
  it('completes 20 concurrent streaming clients', async () => {
    const api = await server({ limits: { concurrentRuns: 4, queuedRuns: 16 } });
    const reads = await Promise.all(Array.from({ length: 20 }, (_, i) => generate(api, { stream: true, steps: 4, preview_every: 2, seed: i, candidates: 1 }).then((r) => readSse(r))));
    for (const { events } of reads) {
      expect(events.map((e) => e.event)).toEqual(['image_generation.partial_image', 'image_generation.completed']);
      expect(events.map((e) => e.id)).toEqual(['0', '1']);
    }
    expect(api.runs.stats()).toEqual({ running: 0, waiting: 0, completed: 20, cancelled: 0, timedOut: 0, failed: 0 });
  });
});

describe('a client that disconnects', () => {
  it('cancels its run between steps and frees its slot for the next request', async () => {
    const api = await server({ limits: { concurrentRuns: 1, queuedRuns: 0 } });
    const forwardsBefore = model.engine.stats().forwards;
    const controller = new AbortController();
    const res = await generate(api, { stream: true, steps: 256, preview_every: 1 }, controller.signal);
    const { events } = await readSse(res, { stopAfter: isPartial, controller });
    expect(events).toHaveLength(1);
    await eventually(() => api.runs.stats().cancelled === 1);
    expect(api.runs.stats()).toMatchObject({ running: 0, waiting: 0, completed: 0, cancelled: 1 });
    // A full run would take 256 steps; it stopped long before.
    expect(model.engine.stats().forwards - forwardsBefore).toBeLessThan(100);
    const next = await generate(api, { steps: 4 });
    expect(next.status).toBe(200);
  });
});

describe('admission', () => {
  it('answers 429 with Retry-After when the queue is full', async () => {
    const api = await server({ limits: { concurrentRuns: 1, queuedRuns: 0 } });
    const controller = new AbortController();
    const long = await generate(api, { stream: true, steps: 256, preview_every: 1 }, controller.signal);
    const reading = readSse(long, { stopAfter: () => true, controller });
    await eventually(() => api.runs.stats().running === 1);
    const refused = await generate(api, { steps: 4 });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: { type: 'rate_limit_error', code: 'queue_full' } });
    await reading;
    await eventually(() => api.runs.stats().running === 0);
  });

  it('ends a run at its deadline: an error event when streaming, 504 otherwise', async () => {
    const api = await server({ limits: { deadlineMs: 200 } });
    const { events } = await readSse(await generate(api, { stream: true, steps: 256, preview_every: 64 }));
    const last = events.at(-1) as SseEvent;
    expect(last.event).toBe('error');
    expect(last.id).toBe(String(events.length - 1));
    expect(data(last)).toEqual({ type: 'error', error: { type: 'timeout_error', code: 'deadline_exceeded', message: expect.stringMatching(/200 ms/), param: null } });
    const plain = await generate(api, { steps: 256 });
    expect(plain.status).toBe(504);
    expect(await plain.json()).toMatchObject({ error: { code: 'deadline_exceeded' } });
    expect(api.runs.stats()).toMatchObject({ timedOut: 2, running: 0 });
  });

  it('refuses new work with 503 once shutting down', async () => {
    const api = await server({});
    api.runs.close();
    const res = await generate(api, { steps: 4 });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { type: 'service_unavailable_error', code: 'shutting_down' } });
    expect((await fetch(`${api.url}/healthz`)).status).toBe(503);
  });
});

describe('a failure mid-stream', () => {
  it('becomes an error event, and the stream ends', async () => {
    const own = await loadModel();
    const api = await server({}, own);
    const res = await generate(api, { stream: true, steps: 256, preview_every: 1 });
    let closed = false;
    const { events } = await readSse(res, {
      stopAfter: (e) => {
        if (!closed) void own.engine.close();
        closed = true;
        return e.event === 'error';
      },
    });
    const last = events.at(-1) as SseEvent;
    expect(last.event).toBe('error');
    expect(data(last)).toMatchObject({ type: 'error', error: { type: 'service_unavailable_error', code: 'engine_unavailable' } });
    expect(api.runs.stats()).toMatchObject({ running: 0, failed: 1 });
  });
});
