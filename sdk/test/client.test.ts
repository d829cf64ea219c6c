/**
 * The SDK against the real server on loopback (the shipped model on the real engine):
 * every method, streaming and not, typed errors, and a stream that stops early cancelling
 * its run on the server. The model is barely trained: these tests check the protocol and
 * the types, never image or answer quality.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankImage } from '../../functions/core/image.ts';
import { decodePng, encodePng } from '../../functions/tokenizers/png.ts';
import { eventually, loadModel, serveApi, type ApiOptions, type ApiUnderTest, type ModelUnderTest } from '../../test/support/api.ts';
import {
  APIUserAbortError,
  AuthenticationError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
  SparseLavida,
  StreamError,
  UnprocessableEntityError,
  UnsupportedMediaTypeError,
  imagePart,
  type ChatCompletionChunk,
  type ChatMessage,
  type ImageEditStreamEvent,
  type ImageGenerationStreamEvent,
} from '../src/index.ts';

let model: ModelUnderTest;
let api: ApiUnderTest;
let client: SparseLavida;
const servers: ApiUnderTest[] = [];

const fast = { steps: 4, seed: 7 };
const prompt = 'a small red circle at the top left';

beforeAll(async () => {
  model = await loadModel();
  api = await server({});
  client = new SparseLavida({ baseURL: api.url, maxRetries: 0 });
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await model.engine.close();
});

async function server(options: ApiOptions): Promise<ApiUnderTest> {
  const s = await serveApi(model, options);
  servers.push(s);
  return s;
}

/** A 64x64 white PNG with a red square in the middle. */
function scenePng(): Uint8Array {
  const image = blankImage(64, 64);
  for (let y = 24; y < 40; y++) for (let x = 24; x < 40; x++) image.data.set([220, 30, 30], (y * 64 + x) * 3);
  return new Uint8Array(encodePng(image));
}

function expectPng(b64: string | undefined): void {
  const image = decodePng(Buffer.from(b64 ?? '', 'base64'));
  expect([image.width, image.height]).toEqual([64, 64]);
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

/** A fetch that remembers the content type of every request it sends. */
function recordingFetch(): { fetch: typeof fetch; contentTypes: (string | null)[] } {
  const contentTypes: (string | null)[] = [];
  return {
    contentTypes,
    fetch: async (input, init) => {
      const request = new Request(input, init);
      contentTypes.push(request.headers.get('content-type'));
      return fetch(request);
    },
  };
}

describe('images.generate', () => {
  it('answers with the image as JSON', async () => {
    const res = await client.images.generate({ prompt, ...fast });
    expect(res).toMatchObject({ size: '64x64', output_format: 'png', steps: 4, seed: 7, sampler: 'sparse', usage: { output_tokens: 256 } });
    expect(res.data).toHaveLength(1);
    expectPng(res.data[0]?.b64_json);
  });

  it('streams a partial image every step, then the completed image, with stream: true', async () => {
    const stream = await client.images.generate({ prompt, stream: true, preview_every: 1, candidates: 1, ...fast });
    const events: ImageGenerationStreamEvent[] = await collect(stream);
    expect(events.map((e) => e.type)).toEqual([...Array(3).fill('image_generation.partial_image'), 'image_generation.completed']);
    expect(events.map((e) => e.step)).toEqual([1, 2, 3, 4]);
    const completed = events.at(-1);
    if (completed?.type !== 'image_generation.completed') throw new Error('no completed event');
    expect(completed).toMatchObject({ total_steps: 4, seed: 7, sampler: 'sparse' });
    expect(completed.timings.first_partial_image_ms).toBeGreaterThan(0);
    for (const e of events) expectPng(e.b64_json);
  });
});

describe('images.edit', () => {
  it('uploads PNG bytes as multipart/form-data and answers with the edited image', async () => {
    const recorder = recordingFetch();
    const own = new SparseLavida({ baseURL: api.url, maxRetries: 0, fetch: recorder.fetch });
    const res = await own.images.edit({ image: scenePng(), prompt: 'make the red square blue', ...fast });
    expect(recorder.contentTypes[0]).toMatch(/^multipart\/form-data; boundary=/);
    expect(res).toMatchObject({ steps: 4, seed: 7, usage: { input_tokens_details: { image_tokens: 256 } } });
    expectPng(res.data[0]?.b64_json);
  });

  it('streams the edit of a Blob as image_edit events', async () => {
    const blob = new Blob([scenePng()], { type: 'image/png' });
    const events: ImageEditStreamEvent[] = await collect(await client.images.edit({ image: blob, prompt: 'make the red square blue', stream: true, partial_images: 1, ...fast }));
    expect(events.map((e) => e.type)).toEqual(['image_edit.partial_image', 'image_edit.completed']);
    expectPng(events.at(-1)?.b64_json);
  });

  it('sends an image given as a base64 string in JSON', async () => {
    const recorder = recordingFetch();
    const own = new SparseLavida({ baseURL: api.url, maxRetries: 0, fetch: recorder.fetch });
    const res = await own.images.edit({ image: Buffer.from(scenePng()).toString('base64'), prompt: 'remove the red square', ...fast });
    expect(recorder.contentTypes).toEqual(['application/json']);
    expectPng(res.data[0]?.b64_json);
  });
});

describe('chat.completions.create', () => {
  const messages: ChatMessage[] = [{ role: 'user', content: [imagePart(scenePng()), { type: 'text', text: 'what color is the square?' }] }];

  it('answers a question about an image given as bytes', async () => {
    const completion = await client.chat.completions.create({ messages, ...fast });
    expect(completion).toMatchObject({ object: 'chat.completion', model: 'shapes-tiny', seed: 7, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant' } }] });
    // Up to 4: sampling stops after the text block that ends the answer.
    expect(completion.steps).toBeGreaterThanOrEqual(1);
    expect(completion.steps).toBeLessThanOrEqual(4);
    expect(typeof completion.choices[0]?.message.content).toBe('string');
  });

  it('streams chunks up to the final one, with usage when asked, and stops at [DONE]', async () => {
    const chunks: ChatCompletionChunk[] = await collect(await client.chat.completions.create({ messages, stream: true, stream_options: { include_usage: true }, ...fast }));
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    const usage = chunks.at(-1);
    expect(usage?.choices).toEqual([]);
    expect(usage?.usage?.completion_tokens).toBeGreaterThanOrEqual(0);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('stop');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    const again = await client.chat.completions.create({ messages, ...fast });
    expect(text).toBe(again.choices[0]?.message.content);
  });
});

describe('models', () => {
  it('lists the served model and describes it', async () => {
    const list = await client.models.list();
    expect(list.object).toBe('list');
    expect(list.data.map((m) => m.id)).toEqual(['shapes-tiny']);
    expect(await client.models.retrieve('shapes-tiny')).toEqual(list.data[0]);
  });
});

describe('typed errors', () => {
  it('an unknown word: UnprocessableEntityError naming the prompt', async () => {
    const error = await client.images.generate({ prompt: 'a red dragon', ...fast }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnprocessableEntityError);
    expect(error).toMatchObject({ status: 422, type: 'invalid_request_error', code: 'unknown_word', param: 'prompt', message: expect.stringMatching(/^422 unknown_word: .*"dragon"/) });
  });

  it('the same before a stream starts', async () => {
    await expect(client.images.generate({ prompt: 'a red dragon', stream: true, ...fast })).rejects.toBeInstanceOf(UnprocessableEntityError);
  });

  it('an unknown model: NotFoundError', async () => {
    await expect(client.models.retrieve('gpt-4o')).rejects.toSatisfy((e) => e instanceof NotFoundError && e.code === 'model_not_found' && e.param === 'model');
    await expect(client.images.generate({ prompt, model: 'gpt-4o', ...fast })).rejects.toMatchObject({ name: 'NotFoundError', status: 404, param: 'model' });
  });

  it('a missing or wrong API key: AuthenticationError; the right one is let in', async () => {
    const keyed = await server({ apiKeys: ['sk-right'] });
    const without = new SparseLavida({ baseURL: keyed.url, apiKey: null, maxRetries: 0 });
    await expect(without.models.list()).rejects.toSatisfy((e) => e instanceof AuthenticationError && e.status === 401 && e.code === 'missing_api_key');
    const wrong = new SparseLavida({ baseURL: keyed.url, apiKey: 'sk-wrong', maxRetries: 0 });
    await expect(wrong.images.generate({ prompt, ...fast })).rejects.toSatisfy((e) => e instanceof AuthenticationError && e.code === 'invalid_api_key');
    const right = new SparseLavida({ baseURL: keyed.url, apiKey: 'sk-right', maxRetries: 0 });
    expect((await right.models.list()).data).toHaveLength(1);
  });

  it('a body over the limit: PayloadTooLargeError; an unsupported content type: UnsupportedMediaTypeError', async () => {
    const small = await server({ bodyLimitBytes: 512 });
    const own = new SparseLavida({ baseURL: small.url, maxRetries: 0 });
    await expect(own.images.edit({ image: scenePng(), prompt: 'remove the red square', ...fast })).rejects.toSatisfy((e) => e instanceof PayloadTooLargeError && e.code === 'body_too_large');
    const text = client.post('/v1/images/edits', { prompt: 'x' }, { headers: { 'content-type': 'text/plain' } });
    await expect(text).rejects.toSatisfy((e) => e instanceof UnsupportedMediaTypeError && e.status === 415);
  });

  it('a full queue: RateLimitError with the server\'s Retry-After', async () => {
    const busy = await server({ limits: { concurrentRuns: 1, queuedRuns: 0 } });
    const own = new SparseLavida({ baseURL: busy.url, maxRetries: 0 });
    const long = await own.images.generate({ prompt, stream: true, steps: 256, preview_every: 1 });
    const iterator = long[Symbol.asyncIterator]();
    await iterator.next();
    const error = await own.images.generate({ prompt, ...fast }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).retryAfter).toBeGreaterThanOrEqual(1);
    expect(error).toMatchObject({ code: 'queue_full', type: 'rate_limit_error' });
    await iterator.return?.();
    await eventually(() => busy.runs.stats().running === 0);
  });

  it('an error event mid-stream: StreamError, thrown from the loop', async () => {
    const hurried = await server({ limits: { deadlineMs: 200 } });
    const own = new SparseLavida({ baseURL: hurried.url, maxRetries: 0 });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const event of await own.images.generate({ prompt, stream: true, steps: 256, preview_every: 64 })) seen.push(event.type);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamError);
    expect(error).toMatchObject({ status: undefined, type: 'timeout_error', code: 'deadline_exceeded', message: expect.stringMatching(/200 ms/) });
    expect(seen.every((t) => t === 'image_generation.partial_image')).toBe(true);
  });
});

describe('a stream that stops early', () => {
  it('aborts its request when the loop breaks: the server cancels the run', async () => {
    const own = await server({ limits: { concurrentRuns: 1, queuedRuns: 0 } });
    const sdk = new SparseLavida({ baseURL: own.url, maxRetries: 0 });
    const forwardsBefore = model.engine.stats().forwards;
    const stream = await sdk.images.generate({ prompt, stream: true, steps: 256, preview_every: 1 });
    let seen = 0;
    for await (const event of stream) {
      expect(event.type).toBe('image_generation.partial_image');
      seen++;
      break;
    }
    expect(seen).toBe(1);
    expect(stream.controller.signal.aborted).toBe(true);
    await eventually(() => own.runs.stats().cancelled === 1);
    expect(own.runs.stats()).toMatchObject({ running: 0, completed: 0, cancelled: 1 });
    // A full run would take a prefill and 256 steps; it stopped long before.
    expect(model.engine.stats().forwards - forwardsBefore).toBeLessThan(100);
    expect((await sdk.images.generate({ prompt, ...fast })).steps).toBe(4);
  });

  it('ends with APIUserAbortError when the caller\'s signal aborts it, and the run is cancelled', async () => {
    const own = await server({});
    const sdk = new SparseLavida({ baseURL: own.url, maxRetries: 0 });
    const controller = new AbortController();
    const stream = await sdk.images.generate({ prompt, stream: true, steps: 256, preview_every: 1 }, { signal: controller.signal });
    const error = await (async () => {
      for await (const event of stream) {
        expect(event.type).toBe('image_generation.partial_image');
        controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIUserAbortError);
    await eventually(() => own.runs.stats().cancelled === 1);
  });
});
