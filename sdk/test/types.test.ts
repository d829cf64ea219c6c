/**
 * The overloads give each call the type of what it returns: `stream: true` a Stream of the
 * route's events, otherwise the JSON answer. Checked by the compiler (`npx tsc --noEmit -p .`);
 * the client below is never asked anything.
 */
import { describe, expectTypeOf, it } from 'vitest';
import {
  SparseLavida,
  type ChatCompletion,
  type ChatCompletionChunk,
  type ImageEditStreamEvent,
  type ImageGenerationStreamEvent,
  type ImagesResponse,
  type Model,
  type ModelList,
  type Stream,
} from '../src/index.ts';

const client = new SparseLavida({ baseURL: 'http://127.0.0.1:1', apiKey: undefined });
const prompt = 'a red circle';
const png = new Uint8Array();

describe('the method types', () => {
  it('follow stream: true or not', () => {
    expectTypeOf(client.images.generate).toBeCallableWith({ prompt, steps: 4, sampler: 'dense' });
    expectTypeOf<ReturnType<typeof streamGenerate>>().toEqualTypeOf<Promise<Stream<ImageGenerationStreamEvent>>>();
    expectTypeOf<ReturnType<typeof plainGenerate>>().toEqualTypeOf<Promise<ImagesResponse>>();
    expectTypeOf<ReturnType<typeof streamEdit>>().toEqualTypeOf<Promise<Stream<ImageEditStreamEvent>>>();
    expectTypeOf<ReturnType<typeof plainEdit>>().toEqualTypeOf<Promise<ImagesResponse>>();
    expectTypeOf<ReturnType<typeof streamChat>>().toEqualTypeOf<Promise<Stream<ChatCompletionChunk>>>();
    expectTypeOf<ReturnType<typeof plainChat>>().toEqualTypeOf<Promise<ChatCompletion>>();
    expectTypeOf<ReturnType<typeof client.models.list>>().toEqualTypeOf<Promise<ModelList>>();
    expectTypeOf<ReturnType<typeof client.models.retrieve>>().toEqualTypeOf<Promise<Model>>();
  });

  it('narrow stream events by type, and leave error events out', () => {
    expectTypeOf<ImageGenerationStreamEvent['type']>().toEqualTypeOf<'image_generation.partial_image' | 'image_generation.completed'>();
    expectTypeOf<Extract<ImageGenerationStreamEvent, { type: 'image_generation.completed' }>['timings']['total_ms']>().toEqualTypeOf<number>();
  });
});

const streamGenerate = () => client.images.generate({ prompt, stream: true });
const plainGenerate = () => client.images.generate({ prompt });
const streamEdit = () => client.images.edit({ prompt, image: png, stream: true });
const plainEdit = () => client.images.edit({ prompt, image: new Blob([]) });
const streamChat = () => client.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], stream: true });
const plainChat = () => client.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] });

// Wrong requests do not compile.
// @ts-expect-error an unknown field
void (() => client.images.generate({ prompt, steeps: 4 }));
// @ts-expect-error the prompt is required
void (() => client.images.edit({ image: png }));
// @ts-expect-error sampler is 'sparse' or 'dense'
void (() => client.images.generate({ prompt, sampler: 'fast' }));
