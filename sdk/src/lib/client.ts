/**
 * The `SparseLavida` client: configuration, and the one request path every method takes —
 * headers (auth, Idempotency-Key on POST), a timeout per attempt, the caller's AbortSignal,
 * retries with backoff, answers turned into JSON, a {@link Stream}, or a typed error.
 */
import { Batches } from './batches.ts';
import { Chat } from './chat.ts';
import { APIConnectionError, APIError, APITimeoutError, APIUserAbortError, SparseLavidaError } from './errors.ts';
import { Images } from './images.ts';
import { Models } from './models.ts';
import { isRetryableStatus, retryDelayMs, sleep } from './retries.ts';
import { Stream } from './streaming.ts';
import { Webhooks } from './webhooks.ts';

export interface ClientOptions {
  /** The server's root URL (routes are under `/v1`); default `SPARSE_LAVIDA_BASE_URL`, else http://127.0.0.1:8787. */
  baseURL?: string | undefined;
  /** Sent as `Authorization: Bearer …`; default `SPARSE_LAVIDA_API_KEY`. A server without keys needs none. */
  apiKey?: string | null | undefined;
  /** The fetch to use (default the global one), e.g. to add tracing or run in tests. */
  fetch?: typeof fetch | undefined;
  /** Milliseconds an attempt may wait for its answer (for a stream: for the stream to start). Default 10 minutes. */
  timeout?: number | undefined;
  /** Retries after a connection error, a timeout, or a 408/409/429/5xx answer. Default 2. */
  maxRetries?: number | undefined;
  /** Headers sent with every request. */
  defaultHeaders?: Record<string, string> | undefined;
}

export interface RequestOptions {
  /** Aborts the call, a stream included; the call then fails with APIUserAbortError. */
  signal?: AbortSignal | undefined;
  timeout?: number | undefined;
  maxRetries?: number | undefined;
  headers?: Record<string, string> | undefined;
  /** The Idempotency-Key of a POST; one is made per call (the same on its retries) when left out. */
  idempotencyKey?: string | undefined;
}

export interface APIRequest {
  readonly method: 'GET' | 'POST';
  /** From the root, e.g. `/v1/models`. */
  readonly path: string;
  /** JSON, or a FormData sent as multipart. */
  readonly body?: unknown;
  readonly options?: RequestOptions | undefined;
}

const DEFAULT_BASE_URL = 'http://127.0.0.1:8787';
const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;
const DEFAULT_MAX_RETRIES = 2;
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * @example
 * import { SparseLavida } from '@sparse-lavida/sdk';
 * const client = new SparseLavida({ baseURL: 'http://127.0.0.1:8787' });
 * const image = await client.images.generate({ prompt: 'a small red circle at the top left', steps: 8 });
 */
export class SparseLavida {
  readonly baseURL: string;
  readonly apiKey: string | null;
  readonly timeout: number;
  readonly maxRetries: number;
  readonly #fetch: typeof fetch;
  readonly #defaultHeaders: Record<string, string>;

  readonly images: Images = new Images(this);
  readonly chat: Chat = new Chat(this);
  readonly models: Models = new Models(this);
  readonly batches: Batches = new Batches(this);
  readonly webhooks: Webhooks = new Webhooks();

  constructor(options: ClientOptions = {}) {
    this.baseURL = (options.baseURL ?? env('SPARSE_LAVIDA_BASE_URL') ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    this.apiKey = options.apiKey === undefined ? (env('SPARSE_LAVIDA_API_KEY') ?? null) : options.apiKey;
    this.timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#defaultHeaders = options.defaultHeaders ?? {};
    if (!Number.isInteger(this.maxRetries) || this.maxRetries < 0) throw new SparseLavidaError(`maxRetries must be a whole number >= 0, got ${this.maxRetries}`);
    if (!(this.timeout > 0)) throw new SparseLavidaError(`timeout must be > 0 ms, got ${this.timeout}`);
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>({ method: 'GET', path, options });
  }

  post<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>({ method: 'POST', path, body, options });
  }

  /** A POST answered with Server-Sent Events. */
  postStream<Item>(path: string, body: unknown, options?: RequestOptions): Promise<Stream<Item>> {
    return this.send({ method: 'POST', path, body, options }, true, async (response, attempt) => {
      attempt.stopTimer();
      return Stream.fromSSEResponse<Item>(response, attempt.controller, { failure: (e) => attempt.failure(e), onEnd: () => attempt.close() });
    });
  }

  /** Any request answered with JSON. */
  request<T>(request: APIRequest): Promise<T> {
    return this.send(request, false, async (response, attempt) => {
      const text = await attempt.readText(response);
      const body = parseBody(text);
      if (body === undefined) throw new SparseLavidaError(`${request.method} ${request.path} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
      return body as T;
    });
  }

  /** Sends `request`, retrying what may succeed when tried again, and reads a 2xx answer with `read`. */
  private async send<R>(request: APIRequest, stream: boolean, read: (response: Response, attempt: Attempt) => Promise<R>): Promise<R> {
    const options = request.options ?? {};
    const maxRetries = options.maxRetries ?? this.maxRetries;
    const timeout = options.timeout ?? this.timeout;
    const headers = this.headers(request, stream);
    const body = request.body === undefined ? undefined : request.body instanceof FormData ? request.body : JSON.stringify(request.body);
    const url = `${this.baseURL}${request.path}`;

    for (let retry = 0; ; retry++) {
      const attempt = new Attempt(options.signal, timeout);
      let response: Response;
      try {
        response = await this.#fetch(url, { method: request.method, headers, body: body ?? null, signal: attempt.controller.signal });
      } catch (e) {
        attempt.close();
        const error = attempt.failure(e);
        if (error instanceof APIUserAbortError || retry >= maxRetries) throw error;
        await this.pause(retryDelayMs(retry, undefined), options.signal);
        continue;
      }
      if (response.ok) return read(response, attempt);

      const text = await attempt.readText(response);
      if (retry < maxRetries && isRetryableStatus(response.status)) {
        await this.pause(retryDelayMs(retry, response.headers), options.signal);
        continue;
      }
      throw APIError.generate(response.status, parseBody(text), text || response.statusText, response.headers);
    }
  }

  private headers(request: APIRequest, stream: boolean): Headers {
    const headers = new Headers({ accept: stream ? 'text/event-stream' : 'application/json', ...this.#defaultHeaders });
    if (this.apiKey) headers.set('authorization', `Bearer ${this.apiKey}`);
    if (request.body !== undefined && !(request.body instanceof FormData)) headers.set('content-type', 'application/json');
    if (request.method === 'POST') headers.set('idempotency-key', request.options?.idempotencyKey ?? `sparse-lavida-${crypto.randomUUID()}`);
    for (const [name, value] of Object.entries(request.options?.headers ?? {})) headers.set(name, value);
    return headers;
  }

  private async pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    try {
      await sleep(ms, signal);
    } catch (e) {
      throw new APIUserAbortError({ cause: e });
    }
  }
}

/** One try of a request: its abort controller, fed by the caller's signal and the timeout. */
class Attempt {
  readonly controller = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timedOut = false;
  readonly #onAbort = () => this.controller.abort(this.signal?.reason);

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly timeoutMs: number,
  ) {
    if (signal?.aborted) this.controller.abort(signal.reason);
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      this.controller.abort();
    }, Math.min(timeoutMs, MAX_TIMER_MS));
  }

  /** The answer has started (a stream): from here only the caller's signal or a break ends it. */
  stopTimer(): void {
    clearTimeout(this.#timer);
  }

  close(): void {
    this.stopTimer();
    this.signal?.removeEventListener('abort', this.#onAbort);
  }

  /** Reads the whole body, ending the attempt; a failure while reading means what `failure` says. */
  async readText(response: Response): Promise<string> {
    try {
      return await response.text();
    } catch (e) {
      throw this.failure(e);
    } finally {
      this.close();
    }
  }

  /** What a failure during this attempt means to the caller. */
  failure(e: unknown): Error {
    if (this.signal?.aborted) return new APIUserAbortError({ cause: e });
    if (this.#timedOut) return new APITimeoutError(this.timeoutMs);
    if (e instanceof SparseLavidaError) return e;
    return new APIConnectionError(`Connection error: ${e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e)}`, { cause: e });
  }
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function env(name: string): string | undefined {
  return globalThis.process?.env?.[name] || undefined;
}
