/**
 * @sparse-lavida/sdk: a typed client for the sparse-lavida API. The types come from the
 * OpenAPI document (src/generated/, never edited by hand); the client is in src/lib/.
 */
export { SparseLavida, SparseLavida as default, type APIRequest, type ClientOptions, type RequestOptions } from './lib/client.ts';
export {
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
  SparseLavidaError,
  StreamError,
  UnprocessableEntityError,
  UnsupportedMediaTypeError,
  WebhookVerificationError,
} from './lib/errors.ts';
export { type BatchWaitOptions } from './lib/batches.ts';
export { verifyWebhook, type VerifyOptions, type WebhookHeaders } from './lib/webhooks.ts';
export { Stream } from './lib/streaming.ts';
export { imagePart, pngDataURL } from './lib/uploads.ts';
export type * from './lib/types.ts';
export type { components, paths } from './generated/schema.ts';

export const SDK_VERSION = '0.1.0';
