/**
 * `client.images`: `generate` (POST /v1/images/generations) and `edit` (POST /v1/images/edits).
 * With `stream: true` they return a {@link Stream} of partial and completed images; otherwise
 * the images response.
 */
import type { RequestOptions } from './client.ts';
import { APIResource } from './resource.ts';
import type { Stream } from './streaming.ts';
import type {
  ImageEditParams,
  ImageEditParamsNonStreaming,
  ImageEditParamsStreaming,
  ImageEditStreamEvent,
  ImageGenerateParams,
  ImageGenerateParamsNonStreaming,
  ImageGenerateParamsStreaming,
  ImageGenerationStreamEvent,
  ImagesResponse,
  Uploadable,
} from './types.ts';
import { toPngBlob } from './uploads.ts';

export class Images extends APIResource {
  /**
   * An image from a prompt.
   *
   * @example
   * const stream = await client.images.generate({ prompt: 'two green triangles', stream: true, preview_every: 2 });
   * for await (const event of stream) console.log(event.type, event.step, '/', event.total_steps);
   */
  generate(params: ImageGenerateParamsStreaming, options?: RequestOptions): Promise<Stream<ImageGenerationStreamEvent>>;
  generate(params: ImageGenerateParamsNonStreaming, options?: RequestOptions): Promise<ImagesResponse>;
  generate(params: ImageGenerateParams, options?: RequestOptions): Promise<Stream<ImageGenerationStreamEvent> | ImagesResponse>;
  generate(params: ImageGenerateParams, options?: RequestOptions): Promise<Stream<ImageGenerationStreamEvent> | ImagesResponse> {
    const path = '/v1/images/generations';
    return params.stream === true ? this.client.postStream<ImageGenerationStreamEvent>(path, params, options) : this.client.post<ImagesResponse>(path, params, options);
  }

  /**
   * An edit of a PNG following an instruction (`prompt`). Bytes or a Blob are uploaded as
   * multipart/form-data, as OpenAI's API takes them; a string (base64 or a data URL) goes as JSON.
   *
   * @example
   * const edited = await client.images.edit({ image: await readFile('in.png'), prompt: 'make the red circle blue' });
   */
  edit(params: ImageEditParamsStreaming, options?: RequestOptions): Promise<Stream<ImageEditStreamEvent>>;
  edit(params: ImageEditParamsNonStreaming, options?: RequestOptions): Promise<ImagesResponse>;
  edit(params: ImageEditParams, options?: RequestOptions): Promise<Stream<ImageEditStreamEvent> | ImagesResponse>;
  edit(params: ImageEditParams, options?: RequestOptions): Promise<Stream<ImageEditStreamEvent> | ImagesResponse> {
    const path = '/v1/images/edits';
    const { image } = params;
    const body = typeof image === 'string' ? params : editForm(params, image);
    return params.stream === true ? this.client.postStream<ImageEditStreamEvent>(path, body, options) : this.client.post<ImagesResponse>(path, body, options);
  }
}

/** The multipart body of an edit: the PNG as the `image` file, every other field as text. */
function editForm(params: ImageEditParams, image: Uploadable): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(params)) {
    if (name === 'image' || value === undefined) continue;
    form.append(name, String(value));
  }
  form.append('image', toPngBlob(image), 'image.png');
  return form;
}
