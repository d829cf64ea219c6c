/**
 * Retries, timeouts and aborts against tiny real HTTP servers on loopback that answer as
 * told (429 with Retry-After, 503s, silence, a dropped connection), and the pure rules
 * behind them: the wait before a retry, and the error class of each status.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  InternalServerError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
  SparseLavida,
  StreamError,
  UnprocessableEntityError,
  UnsupportedMediaTypeError,
} from '../src/index.ts';
import { retryAfterMs, retryDelayMs } from '../src/lib/retries.ts';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly at: number;
}

interface TinyServer {
  readonly url: string;
  readonly seen: Seen[];
}

const open: { close(): void; closeAllConnections(): void }[] = [];

afterEach(() => {
  for (const server of open.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** A server whose n-th request (0-based) is answered by `answer(n, res)`. */
async function tinyServer(answer: (n: number, res: ServerResponse) => void): Promise<TinyServer> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, at: Date.now() });
      answer(seen.length - 1, res);
    });
  });
  open.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

const errorBody = (code: string) => ({ error: { type: 'test_error', code, message: `it is a ${code}`, param: null } });
const imageBody = { created: 1, data: [{ b64_json: 'iVBORw0KGgo=' }] };
const generate = (client: SparseLavida, options = {}) => client.images.generate({ prompt: 'a red circle', steps: 4 }, options);
const keys = (server: TinyServer) => server.seen.map((s) => s.headers['idempotency-key']);

describe('retries', () => {
  it('waits out a 429\'s Retry-After, then succeeds, with the same Idempotency-Key', async () => {
    const server = await tinyServer((n, res) => (n === 0 ? json(res, 429, errorBody('queue_full'), { 'retry-after': '1' }) : json(res, 200, imageBody)));
    const res = await generate(new SparseLavida({ baseURL: server.url }));
    expect(res.data[0]?.b64_json).toBe(imageBody.data[0]?.b64_json);
    expect(server.seen).toHaveLength(2);
    const [first, second] = keys(server);
    expect(first).toMatch(/^sparse-lavida-[0-9a-f-]{36}$/);
    expect(second).toBe(first);
    // The server asked for one second; the client waited at least that long.
    expect((server.seen[1]?.at ?? 0) - (server.seen[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('backs off through two 503s, then succeeds on the third attempt with the same key', async () => {
    const server = await tinyServer((n, res) => (n < 2 ? json(res, 503, errorBody('shutting_down')) : json(res, 200, imageBody)));
    await generate(new SparseLavida({ baseURL: server.url }));
    expect(server.seen).toHaveLength(3);
    expect(new Set(keys(server)).size).toBe(1);
    // Backoff: at least 0.5 s · 0.75 before the first retry, 1 s · 0.75 before the second.
    const at = server.seen.map((s) => s.at);
    expect((at[1] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(370);
    expect((at[2] ?? 0) - (at[1] ?? 0)).toBeGreaterThanOrEqual(740);
  });

  it('gives up after maxRetries with the typed error of the last answer', async () => {
    const server = await tinyServer((_, res) => json(res, 503, errorBody('shutting_down'), { 'retry-after-ms': '1' }));
    const error = await generate(new SparseLavida({ baseURL: server.url, maxRetries: 1 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 503, code: 'shutting_down' });
    expect(server.seen).toHaveLength(2);
  });

  it.each([408, 409, 429, 500, 502, 504])('retries a %i', async (status) => {
    const server = await tinyServer((n, res) => (n === 0 ? json(res, status, errorBody('again'), { 'retry-after-ms': '0' }) : json(res, 200, imageBody)));
    await generate(new SparseLavida({ baseURL: server.url }));
    expect(server.seen).toHaveLength(2);
  });

  it.each([400, 401, 404, 413, 415, 422])('does not retry a %i', async (status) => {
    const server = await tinyServer((_, res) => json(res, status, errorBody('final'), { 'retry-after-ms': '0' }));
    await expect(generate(new SparseLavida({ baseURL: server.url }))).rejects.toMatchObject({ status });
    expect(server.seen).toHaveLength(1);
  });

  it('retries a dropped connection, and reports one that keeps failing as APIConnectionError', async () => {
    const flaky = await tinyServer((n, res) => (n === 0 ? res.socket?.destroy() : json(res, 200, imageBody)));
    await generate(new SparseLavida({ baseURL: flaky.url }));
    expect(flaky.seen).toHaveLength(2);
    expect(new Set(keys(flaky)).size).toBe(1);

    const dead = await tinyServer((_, res) => res.socket?.destroy());
    const error = await generate(new SparseLavida({ baseURL: dead.url, maxRetries: 0 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(error).not.toBeInstanceOf(APITimeoutError);
  });

  it('gives every call its own key, takes one from the caller, and sends none on GET', async () => {
    const server = await tinyServer((_, res) => json(res, 200, imageBody));
    const client = new SparseLavida({ baseURL: server.url });
    await generate(client);
    await generate(client);
    await generate(client, { idempotencyKey: 'mine-1' });
    await client.models.list();
    const [a, b, mine, get] = keys(server);
    expect(a).not.toBe(b);
    expect(mine).toBe('mine-1');
    expect(get).toBeUndefined();
  });
});

describe('timeouts', () => {
  it('ends a request that gets no answer with APITimeoutError', async () => {
    const server = await tinyServer(() => undefined);
    const error = await generate(new SparseLavida({ baseURL: server.url, timeout: 100, maxRetries: 0 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APITimeoutError);
    expect(server.seen).toHaveLength(1);
  });

  it('retries a timed-out attempt, with the same key', async () => {
    const server = await tinyServer((n, res) => (n === 0 ? undefined : json(res, 200, imageBody)));
    // Long enough that the second attempt answers in time on a loaded machine.
    await generate(new SparseLavida({ baseURL: server.url, timeout: 1500, maxRetries: 1 }));
    expect(server.seen).toHaveLength(2);
    expect(new Set(keys(server)).size).toBe(1);
  });

  it('bounds a stream\'s start, not its length', async () => {
    const server = await tinyServer((_, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': ping\n\n');
      setTimeout(() => res.end('event: image_generation.completed\ndata: {"type":"image_generation.completed"}\n\n'), 3000);
    });
    // The stream starts at once and lasts three times the timeout.
    const stream = await new SparseLavida({ baseURL: server.url, timeout: 1000, maxRetries: 0 }).images.generate({ prompt: 'a red circle', stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types).toEqual(['image_generation.completed']);
  });
});

describe('aborts', () => {
  it('stops waiting for a retry when the caller aborts: APIUserAbortError, no second attempt', async () => {
    const server = await tinyServer((_, res) => json(res, 503, errorBody('busy'), { 'retry-after': '30' }));
    const controller = new AbortController();
    const call = generate(new SparseLavida({ baseURL: server.url }), { signal: controller.signal });
    await expect.poll(() => server.seen.length).toBe(1);
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(APIUserAbortError);
    expect(server.seen).toHaveLength(1);
  });

  it('does not send a call whose signal is already aborted', async () => {
    const server = await tinyServer((_, res) => json(res, 200, imageBody));
    await expect(generate(new SparseLavida({ baseURL: server.url }), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(APIUserAbortError);
    expect(server.seen).toHaveLength(0);
  });
});

describe('the wait before a retry', () => {
  const headers = (h: Record<string, string>) => new Headers(h);

  it('is what retry-after-ms or retry-after (seconds or an HTTP date) asks for', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(headers({ 'retry-after-ms': '250' }), now)).toBe(250);
    expect(retryAfterMs(headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(retryAfterMs(headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now)).toBe(5000);
    expect(retryAfterMs(headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(retryAfterMs(headers({}), now)).toBeUndefined();
    expect(retryDelayMs(0, headers({ 'retry-after': '2' }), () => 0.5, now)).toBe(2000);
  });

  it('is an exponential backoff with jitter otherwise, or when the server asks for over a minute', () => {
    expect([0, 1, 2, 3, 4, 5].map((retry) => retryDelayMs(retry, undefined, () => 0))).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect(retryDelayMs(1, undefined, () => 1)).toBe(750);
    expect(retryDelayMs(0, headers({ 'retry-after': '120' }), () => 0)).toBe(500);
  });
});

describe('the error classes', () => {
  it('are chosen by status, in one place', () => {
    const expected: [number, new (...args: never[]) => APIError][] = [
      [400, BadRequestError],
      [401, AuthenticationError],
      [404, NotFoundError],
      [409, ConflictError],
      [413, PayloadTooLargeError],
      [415, UnsupportedMediaTypeError],
      [422, UnprocessableEntityError],
      [429, RateLimitError],
      [500, InternalServerError],
      [503, InternalServerError],
      [504, InternalServerError],
    ];
    for (const [status, Class] of expected) {
      const error = APIError.generate(status, errorBody('x'), undefined, new Headers());
      expect(error, String(status)).toBeInstanceOf(Class);
      expect(error).toMatchObject({ status, code: 'x', message: `${status} x: it is a x` });
    }
    expect(APIError.generate(418, undefined, 'teapot', new Headers())).toMatchObject({ constructor: APIError, status: 418, message: '418 teapot', code: undefined });
    expect(new StreamError(errorBody('deadline_exceeded').error)).toMatchObject({ status: undefined, code: 'deadline_exceeded' });
  });
});
