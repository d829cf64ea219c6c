/**
 * One family of errors: `SparseLavidaError` at the root; `APIError` for an answer from the
 * server, with a class per HTTP status chosen in exactly one place ({@link APIError.generate});
 * `StreamError` for an `error` event in a stream that had started; connection failures,
 * timeouts and the caller's own abort for requests that got no answer.
 */
import { retryAfterMs } from './retries.ts';
import type { ErrorObject } from './types.ts';

export class SparseLavidaError extends Error {
  override readonly name: string = 'SparseLavidaError';
}

/** The server answered with an error (or sent one as a stream's `error` event). */
export class APIError extends SparseLavidaError {
  override readonly name: string = 'APIError';
  /** The error object of the body, `{ type, code, message, param }`, when the body had one. */
  readonly error: ErrorObject | undefined;
  /** e.g. `unknown_word`, `model_not_found`, `queue_full`. */
  readonly code: string | undefined;
  /** The request field at fault, e.g. `prompt`. */
  readonly param: string | null | undefined;
  /** e.g. `invalid_request_error`. */
  readonly type: string | undefined;

  constructor(
    /** Undefined for a StreamError (the stream's status was 200). */
    readonly status: number | undefined,
    error: ErrorObject | undefined,
    message: string | undefined,
    readonly headers: Headers | undefined,
  ) {
    super(APIError.#message(status, error, message));
    this.error = error;
    this.code = error?.code;
    this.param = error?.param;
    this.type = error?.type;
  }

  static #message(status: number | undefined, error: ErrorObject | undefined, message: string | undefined): string {
    const text = error ? `${error.code}: ${error.message}` : (message ?? '(no body)');
    return status === undefined ? text : `${status} ${text}`;
  }

  /**
   * The error for an HTTP answer: the one place where statuses map to classes.
   *
   * @example
   * throw APIError.generate(res.status, await res.json(), undefined, res.headers);
   */
  static generate(status: number, body: unknown, message: string | undefined, headers: Headers): APIError {
    const error = errorObject(body);
    const Class = STATUS_CLASSES[status] ?? (status >= 500 ? InternalServerError : APIError);
    return new Class(status, error, message, headers);
  }
}

export class BadRequestError extends APIError {
  override readonly name = 'BadRequestError';
}
export class AuthenticationError extends APIError {
  override readonly name = 'AuthenticationError';
}
export class NotFoundError extends APIError {
  override readonly name = 'NotFoundError';
}
export class ConflictError extends APIError {
  override readonly name = 'ConflictError';
}
export class PayloadTooLargeError extends APIError {
  override readonly name = 'PayloadTooLargeError';
}
export class UnsupportedMediaTypeError extends APIError {
  override readonly name = 'UnsupportedMediaTypeError';
}
export class UnprocessableEntityError extends APIError {
  override readonly name = 'UnprocessableEntityError';
}
export class RateLimitError extends APIError {
  override readonly name = 'RateLimitError';
  /** Seconds the server asked to wait (its Retry-After), when it said. */
  readonly retryAfter: number | undefined;

  constructor(status: number | undefined, error: ErrorObject | undefined, message: string | undefined, headers: Headers | undefined) {
    super(status, error, message, headers);
    const seconds = headers ? retryAfterMs(headers) : undefined;
    this.retryAfter = seconds === undefined ? undefined : seconds / 1000;
  }
}
/** Any 5xx: 500, 503 (shutting down, model unavailable), 504 (deadline passed). */
export class InternalServerError extends APIError {
  override readonly name = 'InternalServerError';
}

/**
 * A stream that had started ended with an `error` event (e.g. `deadline_exceeded`,
 * `engine_unavailable`): the server's error object, no HTTP status.
 */
export class StreamError extends APIError {
  override readonly name = 'StreamError';
  constructor(error: ErrorObject | undefined, message?: string) {
    super(undefined, error, message, undefined);
  }
}

/** No answer: the connection failed (refused, reset, DNS…). `cause` has the underlying error. */
export class APIConnectionError extends SparseLavidaError {
  override readonly name: string = 'APIConnectionError';
  constructor(message = 'Connection error.', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** No answer within the client's `timeout`. */
export class APITimeoutError extends APIConnectionError {
  override readonly name = 'APITimeoutError';
  constructor(timeoutMs: number) {
    super(`Request timed out after ${timeoutMs} ms.`);
  }
}

/** The caller aborted the request through its `signal`. */
export class APIUserAbortError extends SparseLavidaError {
  override readonly name = 'APIUserAbortError';
  constructor(options?: { cause?: unknown }) {
    super('Request was aborted.', options);
  }
}

/** A webhook delivery that does not verify (bad or missing signature, stale timestamp): do not trust it. */
export class WebhookVerificationError extends SparseLavidaError {
  override readonly name = 'WebhookVerificationError';
}

type APIErrorClass = new (status: number | undefined, error: ErrorObject | undefined, message: string | undefined, headers: Headers | undefined) => APIError;

const STATUS_CLASSES: Partial<Record<number, APIErrorClass>> = {
  400: BadRequestError,
  401: AuthenticationError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  422: UnprocessableEntityError,
  429: RateLimitError,
};

/** The `{ type, code, message, param }` of an error body (`{ error: … }`), if it is one. */
export function errorObject(body: unknown): ErrorObject | undefined {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  const error: unknown = body.error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { type, code, message, param } = error as Record<string, unknown>;
  if (typeof message !== 'string') return undefined;
  return {
    type: typeof type === 'string' ? type : 'error',
    code: typeof code === 'string' ? code : 'error',
    message,
    param: typeof param === 'string' ? param : null,
  };
}
