import { describe, expect, it } from 'vitest';
import { Pipeline } from '../pipeline/pipeline.ts';
import { FakeDenoiser } from '../sampler/fake-denoiser.ts';
import { loadPackageDir } from '../storage/package-files.ts';
import { createTokenizers } from '../tokenizers/model-tokenizers.ts';
import { createApp } from './app.ts';
import { Runs } from './runs.ts';

const tokenizers = createTokenizers(await loadPackageDir('models/shapes-tiny'));
const app = createApp({
  pipeline: new Pipeline(tokenizers, new FakeDenoiser(tokenizers.manifest.vocab.size)),
  runs: new Runs({ concurrentRuns: 1, queuedRuns: 1, deadlineMs: 10_000 }),
  apiKeys: [],
  bodyLimitBytes: 1024 * 1024,
  pingMs: 10_000,
});

interface Document {
  openapi: string;
  webhooks?: Record<string, unknown>;
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, { required?: string[]; additionalProperties?: unknown; properties?: Record<string, unknown> }> };
}

describe('the API description', () => {
  it('serves an OpenAPI 3.1 document of every route, generated from the request schemas', async () => {
    const res = await app.request('/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Document;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz',
      '/v1/batches',
      '/v1/batches/{id}',
      '/v1/batches/{id}/cancel',
      '/v1/chat/completions',
      '/v1/hooks/{source}',
      '/v1/images/edits',
      '/v1/images/generations',
      '/v1/models',
      '/v1/models/{model}',
    ]);
    expect(Object.keys(doc.webhooks ?? {}).sort()).toEqual(['batch.completed', 'batch.failed', 'batch.item.completed']);
    expect(Object.keys(doc.paths['/v1/hooks/{source}']?.post?.responses ?? {})).toEqual(expect.arrayContaining(['201', '401', '422']));
    expect(Object.keys(doc.paths['/v1/images/edits']?.post?.requestBody?.content ?? {}).sort()).toEqual(['application/json', 'multipart/form-data']);
    expect(Object.keys(doc.paths['/v1/images/generations']?.post?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '401', '413', '415', '422', '429', '503']));
    const request = doc.components.schemas.ImageGenerationRequest;
    expect(request?.required).toEqual(['prompt']);
    expect(request?.additionalProperties).toBe(false);
    expect(Object.keys(request?.properties ?? {})).toEqual(expect.arrayContaining(['steps', 'seed', 'sampler', 'guidance_scale', 'temperature', 'preview_every', 'partial_images']));
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['ImageGenerationPartialImageEvent', 'ImageEditCompletedEvent', 'ChatCompletionChunk', 'ErrorResponse', 'ErrorEvent']));
  });

  it('renders the document at /docs as a page that loads nothing from elsewhere', async () => {
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('/v1/images/generations');
    expect(page).toContain('id="schema-ImageGenerationRequest"');
    expect(page).not.toMatch(/<script|<link|https?:\/\//);
  });
});

describe('service routes', () => {
  it('reports health with the model', async () => {
    const res = await app.request('/healthz');
    expect(await res.json()).toEqual({ status: 'ok', model: { name: 'shapes-tiny', version: tokenizers.manifest.version } });
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await app.request('/v2/everything');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { type: 'not_found_error', code: 'not_found', message: 'no route for GET /v2/everything', param: null } });
  });
});
