/**
 * Bad requests get their JSON error, with the right status, code and field, before anything
 * runs; and the server keeps serving after them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankImage } from '../core/image.ts';
import { encodePng } from '../tokenizers/png.ts';
import { loadModel, serveApi, type ApiUnderTest, type ModelUnderTest } from '../../test/support/api.ts';

const BODY_LIMIT = 16 * 1024;

let model: ModelUnderTest;
let api: ApiUnderTest;

beforeAll(async () => {
  model = await loadModel();
  api = await serveApi(model, { bodyLimitBytes: BODY_LIMIT });
});

afterAll(async () => {
  await api.close();
  await model.engine.close();
});

const png = encodePng(blankImage(64, 64));
const pngDataUrl = `data:image/png;base64,${png.toString('base64')}`;

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

function multipart(fields: Record<string, string | Blob>): RequestInit {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return { method: 'POST', body: form };
}

const generate = (extra: Record<string, unknown>) => json({ prompt: 'a red circle', steps: 4, ...extra });
const ask = (content: unknown, extra: Record<string, unknown> = {}) => json({ messages: [{ role: 'user', content }], steps: 4, ...extra });
const question = (url: string) => [{ type: 'text', text: 'what color is the circle?' }, { type: 'image_url', image_url: { url } }];

interface Case {
  readonly name: string;
  readonly path: string;
  readonly init: RequestInit;
  readonly status: number;
  readonly code: string;
  readonly param: string | null;
  readonly message?: RegExp;
}

const GEN = '/v1/images/generations';
const EDIT = '/v1/images/edits';
const CHAT = '/v1/chat/completions';

const cases: Case[] = [
  { name: 'a missing prompt', path: GEN, init: json({ steps: 4 }), status: 422, code: 'missing_required_parameter', param: 'prompt', message: /prompt is required/ },
  { name: 'an extra field', path: GEN, init: generate({ colour: 'red' }), status: 422, code: 'unknown_parameter', param: 'colour' },
  { name: 'a wrong-typed prompt', path: GEN, init: json({ prompt: 5 }), status: 422, code: 'invalid_value', param: 'prompt', message: /expected string/ },
  { name: 'wrong-typed steps', path: GEN, init: generate({ steps: 'four' }), status: 422, code: 'invalid_value', param: 'steps' },
  { name: 'steps out of range', path: GEN, init: generate({ steps: 1000 }), status: 422, code: 'invalid_value', param: 'steps', message: /1\.\.256, got 1000/ },
  { name: 'a guidance scale out of range', path: GEN, init: generate({ guidance_scale: 50 }), status: 422, code: 'invalid_value', param: 'guidance_scale' },
  { name: 'too many candidates', path: GEN, init: generate({ candidates: 17 }), status: 422, code: 'invalid_value', param: 'candidates', message: /1\.\.16, got 17/ },
  { name: 'a fractional candidate count', path: GEN, init: generate({ candidates: 1.5 }), status: 422, code: 'invalid_value', param: 'candidates' },
  { name: 'an unknown sampler', path: GEN, init: generate({ sampler: 'fast' }), status: 422, code: 'invalid_value', param: 'sampler' },
  { name: 'n other than 1', path: GEN, init: generate({ n: 2 }), status: 422, code: 'invalid_value', param: 'n', message: /n must be 1/ },
  { name: 'a size the model does not make', path: GEN, init: generate({ size: '1024x1024' }), status: 422, code: 'invalid_value', param: 'size', message: /64x64/ },
  { name: 'response_format url', path: GEN, init: generate({ response_format: 'url' }), status: 422, code: 'invalid_value', param: 'response_format' },
  { name: 'partial_images over 3', path: GEN, init: generate({ stream: true, partial_images: 4 }), status: 422, code: 'invalid_value', param: 'partial_images' },
  { name: 'partial_images with preview_every', path: GEN, init: generate({ stream: true, partial_images: 1, preview_every: 1 }), status: 422, code: 'invalid_value', param: 'preview_every' },
  { name: 'an unknown model', path: GEN, init: generate({ model: 'dall-e-3' }), status: 404, code: 'model_not_found', param: 'model' },
  { name: 'an unknown word', path: GEN, init: generate({ prompt: 'a red dragon', stream: true }), status: 422, code: 'unknown_word', param: 'prompt', message: /unknown word "dragon"/ },
  { name: 'a prompt too long for the model', path: GEN, init: generate({ prompt: 'a red circle and '.repeat(20).trim() }), status: 422, code: 'prompt_too_long', param: 'prompt' },
  { name: 'malformed JSON', path: GEN, init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt": "a red' }, status: 400, code: 'malformed_body', param: null },
  { name: 'an unsupported content type', path: GEN, init: { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'a red circle' }, status: 415, code: 'unsupported_media_type', param: null },
  { name: 'a body over the limit', path: GEN, init: generate({ user: 'x'.repeat(BODY_LIMIT) }), status: 413, code: 'body_too_large', param: null, message: new RegExp(`${BODY_LIMIT} bytes`) },
  { name: 'a non-PNG upload', path: EDIT, init: multipart({ image: new Blob(['GIF89a not a png'], { type: 'image/gif' }), prompt: 'make the circle blue' }), status: 422, code: 'invalid_image_format', param: 'image', message: /not a PNG/ },
  { name: 'an upload over the limit', path: EDIT, init: multipart({ image: new Blob([new Uint8Array(BODY_LIMIT + 1)], { type: 'image/png' }), prompt: 'make the circle blue' }), status: 413, code: 'body_too_large', param: null },
  { name: 'an edit without an image', path: EDIT, init: multipart({ prompt: 'make the circle blue' }), status: 422, code: 'missing_required_parameter', param: 'image' },
  { name: 'multipart steps that are not a number', path: EDIT, init: multipart({ image: new Blob([png]), prompt: 'make the circle blue', steps: 'many' }), status: 422, code: 'invalid_value', param: 'steps' },
  { name: 'an edit image that is not base64', path: EDIT, init: json({ image: 'not base64!', prompt: 'make the circle blue' }), status: 422, code: 'invalid_base64', param: 'image' },
  { name: 'an edit image given as a JPEG data URL', path: EDIT, init: json({ image: 'data:image/jpeg;base64,/9j/4AAQ', prompt: 'make the circle blue' }), status: 422, code: 'invalid_image_format', param: 'image' },
  { name: 'a malformed data URL', path: CHAT, init: ask(question('data:image/png;base64')), status: 422, code: 'invalid_image_url', param: 'messages[0].content[1].image_url.url' },
  { name: 'a data URL that is not base64', path: CHAT, init: ask(question('data:image/png;base64,%%%')), status: 422, code: 'invalid_image_url', param: 'messages[0].content[1].image_url.url' },
  { name: 'a data URL of bytes that are not a PNG', path: CHAT, init: ask(question(`data:image/png;base64,${Buffer.from('hello').toString('base64')}`)), status: 422, code: 'invalid_image_format', param: 'messages[0].content[1].image_url.url' },
  { name: 'an http image URL', path: CHAT, init: ask(question('https://example.com/a.png')), status: 422, code: 'invalid_image_url', param: 'messages[0].content[1].image_url.url', message: /not fetched/ },
  { name: 'a question without an image', path: CHAT, init: ask('what color is the circle?'), status: 422, code: 'missing_image', param: 'messages' },
  { name: 'an unknown word in a question', path: CHAT, init: ask([{ type: 'text', text: 'what flavour is the circle?' }, { type: 'image_url', image_url: { url: pngDataUrl } }]), status: 422, code: 'unknown_word', param: 'messages[0].content', message: /"flavour"/ },
  { name: 'answer steps beyond the answer length', path: CHAT, init: ask(question(pngDataUrl), { steps: 33 }), status: 422, code: 'invalid_value', param: 'steps', message: /1\.\.32, got 33/ },
  { name: 'an unknown content part', path: CHAT, init: ask([{ type: 'input_audio', input_audio: {} }]), status: 422, code: 'invalid_value', param: 'messages[0].content' },
  { name: 'an unknown route', path: '/v1/images/variations', init: generate({}), status: 404, code: 'not_found', param: null },
  { name: 'an unknown model id', path: '/v1/models/dall-e-3', init: { method: 'GET' }, status: 404, code: 'model_not_found', param: 'model' },
];

describe('bad requests', () => {
  it.each(cases)('refuses $name with $status $code', async ({ path, init, status, code, param, message }) => {
    const res = await fetch(`${api.url}${path}`, init);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { error: { type: string; code: string; message: string; param: string | null } };
    expect({ status: res.status, code: body.error.code, param: body.error.param }).toEqual({ status, code, param });
    expect(body.error.type).toMatch(/_error$/);
    if (message) expect(body.error.message).toMatch(message);
  });

  it('keeps serving afterwards, with nothing left running and no server failure', async () => {
    const res = await fetch(`${api.url}${GEN}`, generate({}));
    expect(res.status).toBe(200);
    expect(api.runs.stats()).toMatchObject({ running: 0, waiting: 0, failed: 0 });
    expect(api.logged).toEqual([]);
  });
});

describe('API keys', () => {
  let keyed: ApiUnderTest;
  beforeAll(async () => {
    keyed = await serveApi(model, { apiKeys: ['key-one', 'key-two'] });
  });
  afterAll(() => keyed.close());

  it('refuses /v1 requests without a key or with a wrong one (401), and takes a configured key', async () => {
    const missing = await fetch(`${keyed.url}/v1/models`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect(await missing.json()).toMatchObject({ error: { type: 'authentication_error', code: 'missing_api_key' } });
    const wrong = await fetch(`${keyed.url}/v1/images/generations`, { ...generate({}), headers: { 'content-type': 'application/json', authorization: 'Bearer key-three' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { code: 'invalid_api_key' } });
    const right = await fetch(`${keyed.url}/v1/models`, { headers: { authorization: 'Bearer key-two' } });
    expect(right.status).toBe(200);
  });

  it('leaves health and the API description open', async () => {
    for (const path of ['/healthz', '/openapi.json', '/docs']) expect((await fetch(`${keyed.url}${path}`)).status).toBe(200);
  });
});
