/**
 * `client.chat.completions.create` (POST /v1/chat/completions): a question about an image,
 * answered as a chat completion or, with `stream: true`, as a {@link Stream} of chunks.
 * The image travels as a data URL content part; see `imagePart` / `pngDataURL`.
 */
import type { SparseLavida, RequestOptions } from './client.ts';
import { APIResource } from './resource.ts';
import type { Stream } from './streaming.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from './types.ts';

export class Completions extends APIResource {
  /**
   * @example
   * const stream = await client.chat.completions.create({
   *   messages: [{ role: 'user', content: [imagePart(png), { type: 'text', text: 'how many shapes are there?' }] }],
   *   stream: true,
   * });
   * for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
   */
  create(params: ChatCompletionCreateParamsStreaming, options?: RequestOptions): Promise<Stream<ChatCompletionChunk>>;
  create(params: ChatCompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<ChatCompletion>;
  create(params: ChatCompletionCreateParams, options?: RequestOptions): Promise<Stream<ChatCompletionChunk> | ChatCompletion>;
  create(params: ChatCompletionCreateParams, options?: RequestOptions): Promise<Stream<ChatCompletionChunk> | ChatCompletion> {
    const path = '/v1/chat/completions';
    return params.stream === true ? this.client.postStream<ChatCompletionChunk>(path, params, options) : this.client.post<ChatCompletion>(path, params, options);
  }
}

export class Chat extends APIResource {
  readonly completions: Completions;

  constructor(client: SparseLavida) {
    super(client);
    this.completions = new Completions(client);
  }
}
