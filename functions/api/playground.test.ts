import { describe, expect, it } from 'vitest';
import { Pipeline } from '../pipeline/pipeline.ts';
import { FakeDenoiser } from '../sampler/fake-denoiser.ts';
import { loadPackageDir } from '../storage/package-files.ts';
import { createTokenizers } from '../tokenizers/model-tokenizers.ts';
import { createApp } from './app.ts';
import { Runs } from './runs.ts';

const tokenizers = createTokenizers(await loadPackageDir('models/shapes-tiny'));

function appWith(apiKeys: readonly string[]) {
  return createApp({
    pipeline: new Pipeline(tokenizers, new FakeDenoiser(tokenizers.manifest.vocab.size)),
    runs: new Runs({ concurrentRuns: 1, queuedRuns: 1, deadlineMs: 10_000 }),
    apiKeys,
    bodyLimitBytes: 1024 * 1024,
    pingMs: 10_000,
  });
}

describe('the playground page', () => {
  const app = appWith([]);

  it('serves the page at / with the model, its script and the controls of every task', async () => {
    const res = await app.request('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await res.text();
    expect(page).toContain(`shapes-tiny@${tokenizers.manifest.version}`);
    expect(page).toContain('<script type="module" src="playground.js">');
    for (const id of ['prompt', 'steps', 'source', 'generate', 'preview', 'stats', 'answer']) expect(page).toContain(`id="${id}"`);
    for (const value of ['generate', 'edit', 'ask', 'sparse', 'dense']) expect(page).toContain(`value="${value}"`);
    expect(page).not.toMatch(/\{\{\w+\}\}/);
  });

  it('loads nothing from elsewhere, and says so to the browser', async () => {
    const res = await app.request('/');
    expect(await res.text()).not.toMatch(/https?:\/\//);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const script = await app.request('/playground.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    const code = await script.text();
    expect(code).not.toMatch(/https?:\/\//);
    expect(code).toContain('preview_every: 1');
  });

  it('asks for an API key only when the server has keys', async () => {
    expect(await (await app.request('/')).text()).toContain('data-auth="none"');
    const locked = appWith(['secret']);
    const res = await locked.request('/');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('data-auth="bearer"');
  });
});
