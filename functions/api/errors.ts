/**
 * The one error mapper: whatever a request runs into becomes an {@link ApiError}, answered
 * as `{"error":{"type","code","message","param"}}` with its status (or, once an SSE stream
 * has started, sent as its `error` event).
 *
 * Statuses: 400 malformed body, 401 missing/wrong API key, 404 unknown route or model,
 * 409 an Idempotency-Key reused with another request or a batch that cannot change now,
 * 413 body over MAX_BODY_BYTES, 415 unsupported content type, 422 a request that parses but
 * cannot be taken (wrong types, out of range, unknown word, not a PNG, bad data URL),
 * 429 queue full (with Retry-After), 500 a bug, 503 shutting down or the engine stopped,
 * 504 the request deadline passed before the result was ready.
 */
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import { EngineError } from '../engine/errors.ts';
import { BatchRequestError } from '../jobs/batches.ts';
import { IdempotencyConflictError, ReplayedWebhookError } from '../jobs/job-store.ts';
import { HookRejectedError } from '../jobs/webhooks-in.ts';
import { PipelineInputError } from '../pipeline/pipeline.ts';
import { ImageDecodeError } from '../tokenizers/png.ts';
import { PromptTooLongError } from '../tokenizers/prompt-layout.ts';
import { UnknownWordError } from '../tokenizers/text.ts';

export type ErrorStatus = 400 | 401 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503 | 504;

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable_error'
  | 'timeout_error';

const TYPES: Record<ErrorStatus, ErrorType> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'not_found_error',
  409: 'conflict_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
  500: 'server_error',
  503: 'service_unavailable_error',
  504: 'timeout_error',
};

export interface ErrorBody {
  readonly error: { readonly type: ErrorType; readonly code: string; readonly message: string; readonly param: string | null };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }

  get type(): ErrorType {
    return TYPES[this.status];
  }

  body(): ErrorBody {
    return { error: { type: this.type, code: this.code, message: this.message, param: this.param } };
  }

  withParam(param: string): ApiError {
    return new ApiError(this.status, this.code, this.message, param, this.headers);
  }
}

/**
 * Maps anything thrown while serving a request to the error the client gets.
 *
 * @example
 * app.onError((e, c) => { const err = toApiError(e); return c.json(err.body(), err.status, err.headers); });
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof HTTPException) return fromHttpException(e);
  if (e instanceof z.ZodError) return fromZod(e);
  if (e instanceof UnknownWordError) return new ApiError(422, 'unknown_word', `${e.message}: the model knows only the words of the shapes world`);
  if (e instanceof PromptTooLongError) return new ApiError(422, 'prompt_too_long', e.message);
  if (e instanceof PipelineInputError) return new ApiError(422, 'invalid_value', e.message, e.param);
  if (e instanceof ImageDecodeError) return new ApiError(422, e.code === 'not_png' ? 'invalid_image_format' : e.code === 'corrupt_png' ? 'invalid_image' : 'invalid_image_size', e.message, 'image');
  if (e instanceof BatchRequestError) return new ApiError(422, e.code, e.message, e.param);
  if (e instanceof IdempotencyConflictError) return new ApiError(409, 'idempotency_key_reused', e.message, 'Idempotency-Key');
  if (e instanceof HookRejectedError) return new ApiError(401, 'invalid_webhook', e.message);
  if (e instanceof ReplayedWebhookError) return new ApiError(401, 'webhook_replayed', `${e.message}; a webhook is taken once`);
  if (e instanceof EngineError && e.code === 'closed') return new ApiError(503, 'engine_unavailable', `the model is not available: ${e.message}`);
  return new ApiError(500, 'internal_error', 'the server failed while handling the request');
}

/**
 * Runs `parse` on one request field; a 422 without a param gets `param` (e.g. an unknown
 * word is reported on `prompt`, a bad PNG on `messages[0].content[1].image_url.url`).
 *
 * @example
 * const steps = forParam('prompt', () => pipeline.generate(body.prompt, options));
 */
export function forParam<T>(param: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    const error = toApiError(e);
    throw error.status === 422 && (error.param === null || error.param === 'image') ? error.withParam(param) : error;
  }
}

const HTTP_CODES: Partial<Record<number, string>> = {
  400: 'malformed_body',
  401: 'invalid_api_key',
  404: 'not_found',
  413: 'body_too_large',
  415: 'unsupported_media_type',
};

function fromHttpException(e: HTTPException): ApiError {
  const status = (e.status in TYPES ? e.status : 500) as ErrorStatus;
  const message = status === 415 ? 'the content type must be application/json (or multipart/form-data where a route takes uploads)' : e.message;
  return status === 500 ? toApiError(e.cause) : new ApiError(status, HTTP_CODES[status] ?? 'http_error', message || `HTTP ${status}`);
}

/** `messages[0].content[1].image_url.url` for the path ['messages', 0, 'content', 1, 'image_url', 'url']. */
export function paramPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

const UNKNOWN_INPUT = Symbol('unknown input');

/**
 * The first problem of a request that did not validate, named by its parameter; with the
 * `input`, a missing field is told apart from one of the wrong type.
 */
export function fromZod(e: z.ZodError, input: unknown = UNKNOWN_INPUT): ApiError {
  const issue = e.issues[0];
  if (issue === undefined) return new ApiError(422, 'invalid_request', 'the request is invalid');
  const more = e.issues.length > 1 ? ` (and ${e.issues.length - 1} more problem${e.issues.length > 2 ? 's' : ''})` : '';
  if (issue.code === 'unrecognized_keys') {
    const param = paramPath([...issue.path, issue.keys[0] ?? '']);
    return new ApiError(422, 'unknown_parameter', `unknown parameter: ${issue.keys.map((k) => paramPath([...issue.path, k])).join(', ')}${more}`, param);
  }
  const param = issue.path.length > 0 ? paramPath(issue.path) : null;
  if (param !== null && input !== UNKNOWN_INPUT && at(input, issue.path) === undefined) {
    return new ApiError(422, 'missing_required_parameter', `${param} is required${more}`, param);
  }
  return new ApiError(422, 'invalid_value', `${param ?? 'the request'}: ${issue.message}${more}`, param);
}

function at(value: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((v, key) => (typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[key] : undefined), value);
}

/** The response for an error, as every JSON route sends it. */
export function errorResponse(error: ApiError): Response {
  return new Response(JSON.stringify(error.body()), {
    status: error.status,
    headers: { 'content-type': 'application/json', ...error.headers },
  });
}
