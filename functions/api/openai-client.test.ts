/**
 * The official `openai` npm client, pointed at the real server on loopback, uses the
 * OpenAI-compatible routes as it would OpenAI's. Our extensions (`steps`, `seed`) travel as
 * extra body fields. The shipped model is barely trained: these tests check the protocol,
 * never image or answer quality.
 */
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankImage } from '../core/image.ts';
import { decodePng, encodePng } from '../tokenizers/png.ts';
import { loadModel, serveApi, type ApiUnderTest, type ModelUnderTest } from '../../test/support/api.ts';

let model: ModelUnderTest;
let api: ApiUnderTest;
let client: OpenAI;

/** A 64x64 white PNG with a red square in the middle. */
function scenePng(): Buffer {
  const image = blankImage(64, 64);
  for (let y = 24; y < 40; y++) for (let x = 24; x < 40; x++) image.data.set([220, 30, 30], (y * 64 + x) * 3);
  return encodePng(image);
}

const fast = { steps: 4, seed: 7 };
/** Our extension: one image drawn, so the partial images count one run's steps. */
const oneCandidate = { candidates: 1 };

beforeAll(async () => {
  model = await loadModel();
  api = await serveApi(model);
  client = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: 'not-needed-on-loopback', maxRetries: 0 });
});

afterAll(async () => {
  await api.close();
  await model.engine.close();
});

function expectPng(b64: string | undefined): void {
  const image = decodePng(Buffer.from(b64 ?? '', 'base64'));
  expect([image.width, image.height]).toEqual([64, 64]);
}

describe('images.generate', () => {
  it('streams two partial images, then the completed image, with stream: true and partial_images: 2', async () => {
    const stream = await client.images.generate({ prompt: 'a small red circle at the top left', stream: true, partial_images: 2, ...fast, ...oneCandidate });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual(['image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed']);
    const [first, second, completed] = events;
    expect(first).toMatchObject({ partial_image_index: 0, step: 1, total_steps: 4, size: '64x64', output_format: 'png' });
    expect(second).toMatchObject({ partial_image_index: 1, step: 3, total_steps: 4 });
    for (const e of events) expectPng(e.b64_json);
    expect(completed).toMatchObject({
      type: 'image_generation.completed',
      step: 4,
      total_steps: 4,
      seed: 7,
      sampler: 'sparse',
      candidates: 1,
      usage: { input_tokens: 8, input_tokens_details: { text_tokens: 8, image_tokens: 0 }, output_tokens: 256, total_tokens: 264 },
      timings: { queued_ms: expect.any(Number), sampling_ms: expect.any(Number), total_ms: expect.any(Number), first_partial_image_ms: expect.any(Number) },
    });
  });

  it('returns the image as b64_json without streaming', async () => {
    const res = await client.images.generate({ prompt: 'two green triangles', response_format: 'b64_json', size: '64x64' as '1024x1024', ...fast });
    expect(res.data).toHaveLength(1);
    expectPng(res.data?.[0]?.b64_json);
    expect(res.usage).toMatchObject({ output_tokens: 256 });
  });

  it('reports a request the model cannot take as an APIError with the field', async () => {
    const refused = client.images.generate({ prompt: 'a small red dragon', ...fast });
    await expect(refused).rejects.toBeInstanceOf(OpenAI.UnprocessableEntityError);
    await expect(client.images.generate({ prompt: 'a small red dragon', ...fast })).rejects.toMatchObject({ status: 422, code: 'unknown_word', param: 'prompt' });
  });
});

describe('images.edit', () => {
  it('edits an uploaded PNG', async () => {
    const res = await client.images.edit({ image: await toFile(scenePng(), 'scene.png', { type: 'image/png' }), prompt: 'make the red square blue', ...fast });
    expectPng(res.data?.[0]?.b64_json);
    expect(res.usage).toMatchObject({ input_tokens_details: { text_tokens: 5, image_tokens: 256 } });
  });

  it('also takes the image as base64 in JSON (a data URL or bare), with the dense sampler on request', async () => {
    for (const image of [`data:image/png;base64,${scenePng().toString('base64')}`, scenePng().toString('base64')]) {
      const res = await fetch(`${api.url}/v1/images/edits`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image, prompt: 'remove the red square', sampler: 'dense', ...fast }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as OpenAI.ImagesResponse & { sampler: string };
      expectPng(body.data?.[0]?.b64_json);
      expect(body.sampler).toBe('dense');
    }
  });

  it('streams image_edit events for an uploaded PNG', async () => {
    const stream = await client.images.edit({
      image: await toFile(scenePng(), 'scene.png', { type: 'image/png' }),
      prompt: 'move the red square to the left',
      stream: true,
      partial_images: 1,
      ...fast,
    });
    const types = [];
    for await (const event of stream) {
      types.push(event.type);
      expectPng(event.b64_json);
    }
    expect(types).toEqual(['image_edit.partial_image', 'image_edit.completed']);
  });
});

describe('chat.completions.create', () => {
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'what color is the square?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${scenePng().toString('base64')}` } },
      ],
    },
  ];

  it('answers a question about an image, and streams the same answer as chunks', async () => {
    const completion = await client.chat.completions.create({ model: 'shapes-tiny', messages, ...fast });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]).toMatchObject({ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: expect.any(String) } });
    expect(completion.usage).toMatchObject({ prompt_tokens: 6 + 256, completion_tokens: expect.any(Number) });

    const stream = await client.chat.completions.create({ model: 'shapes-tiny', messages, stream: true, stream_options: { include_usage: true }, ...fast });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]?.id)).toBe(true);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    // Greedy answers (temperature 0, the model's default) are the same streamed or not.
    expect(text).toBe(completion.choices[0]?.message.content);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('stop');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: completion.usage && { prompt_tokens: completion.usage.prompt_tokens } });
  });

  it('refuses an unknown model with 404', async () => {
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages, ...fast })).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
  });
});

describe('models.list', () => {
  it('lists the served model', async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    expect(models).toEqual([{ id: 'shapes-tiny', object: 'model', created: expect.any(Number), owned_by: 'sparse-lavida', version: expect.any(String) }]);
    await expect(client.models.retrieve('shapes-tiny')).resolves.toMatchObject({ id: 'shapes-tiny' });
  });
});
