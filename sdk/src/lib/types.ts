/**
 * The SDK's public types, named from the generated schema (sdk/src/generated/schema.ts),
 * plus the parameter shapes of the overloaded methods (`stream: true` or not).
 */
import type { components } from '../generated/schema.ts';

type Schemas = components['schemas'];

export type ImagesResponse = Schemas['ImagesResponse'];
export type ImageUsage = Schemas['ImageUsage'];
export type Timings = Schemas['Timings'];
export type ImageGenerationPartialImageEvent = Schemas['ImageGenerationPartialImageEvent'];
export type ImageGenerationCompletedEvent = Schemas['ImageGenerationCompletedEvent'];
export type ImageEditPartialImageEvent = Schemas['ImageEditPartialImageEvent'];
export type ImageEditCompletedEvent = Schemas['ImageEditCompletedEvent'];
/** An event of `images.generate({ stream: true })`; an `error` event is thrown as a StreamError instead. */
export type ImageGenerationStreamEvent = Exclude<Schemas['ImageGenerationStreamEvent'], ErrorEvent>;
/** An event of `images.edit({ stream: true })`; an `error` event is thrown as a StreamError instead. */
export type ImageEditStreamEvent = Exclude<Schemas['ImageEditStreamEvent'], ErrorEvent>;
export type ImageStreamEvent = ImageGenerationStreamEvent | ImageEditStreamEvent;
export type ErrorEvent = Schemas['ErrorEvent'];
export type ErrorObject = Schemas['ErrorResponse']['error'];

export type ChatCompletion = Schemas['ChatCompletion'];
export type ChatCompletionChunk = Schemas['ChatCompletionChunk'];
export type ChatUsage = Schemas['ChatUsage'];
export type ChatMessage = Schemas['ChatMessage'];
export type ChatTextPart = Schemas['ChatTextPart'];
export type ChatImagePart = Schemas['ChatImagePart'];

export type Batch = Schemas['Batch'];
export type BatchItem = Schemas['BatchItem'];
export type BatchCreateResponse = Schemas['BatchCreateResponse'];
export type BatchCreateParams = Schemas['BatchCreateRequest'];
export type BatchItemParams = Schemas['BatchItemRequest'];
export type WebhookEvent = Schemas['WebhookEvent'];
export type WebhookEventType = Schemas['WebhookEventType'];

export type Model = Schemas['Model'];
export type ModelList = Schemas['ModelList'];

/** A PNG as bytes or as a Blob (a File included). */
export type Uploadable = Uint8Array | ArrayBuffer | Blob;

export type ImageGenerateParamsBase = Omit<Schemas['ImageGenerationRequest'], 'stream'>;
export type ImageGenerateParamsNonStreaming = ImageGenerateParamsBase & { stream?: false };
export type ImageGenerateParamsStreaming = ImageGenerateParamsBase & { stream: true };
export type ImageGenerateParams = ImageGenerateParamsNonStreaming | ImageGenerateParamsStreaming;

export type ImageEditParamsBase = Omit<Schemas['ImageEditJsonRequest'], 'stream' | 'image'> & {
  /**
   * The PNG to edit: bytes or a Blob are uploaded as multipart/form-data; a string is sent
   * in JSON as it is (base64, or a `data:image/png;base64,` URL).
   */
  image: Uploadable | string;
};
export type ImageEditParamsNonStreaming = ImageEditParamsBase & { stream?: false };
export type ImageEditParamsStreaming = ImageEditParamsBase & { stream: true };
export type ImageEditParams = ImageEditParamsNonStreaming | ImageEditParamsStreaming;

export type ChatCompletionCreateParamsBase = Omit<Schemas['ChatCompletionRequest'], 'stream'>;
export type ChatCompletionCreateParamsNonStreaming = ChatCompletionCreateParamsBase & { stream?: false };
export type ChatCompletionCreateParamsStreaming = ChatCompletionCreateParamsBase & { stream: true };
export type ChatCompletionCreateParams = ChatCompletionCreateParamsNonStreaming | ChatCompletionCreateParamsStreaming;
