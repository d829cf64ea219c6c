import { afterEach, describe, expect, it } from 'vitest';
import { cudaProviderInstalled } from './support/ort.ts';
import { listeningServer, startServer, stopServers } from './support/server.ts';

afterEach(stopServers);

describe('the node server (npm start)', () => {
  it('answers /healthz on loopback with the loaded model', async () => {
    const { url } = await listeningServer({});
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', model: { name: 'shapes-tiny', version: expect.any(String) } });
  });

  it('streams a generation as Server-Sent Events, as `curl -N` shows them', async () => {
    const { url } = await listeningServer({});
    const res = await fetch(`${url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a small red circle at the top left', stream: true, steps: 4, partial_images: 1 }),
    });
    const text = await res.text();
    expect(text).toMatch(/^event: image_generation\.partial_image\ndata: \{"type":"image_generation\.partial_image","b64_json":"iVBOR[^\n]*\nid: 0\n\n/);
    expect(text).toMatch(/event: image_generation\.completed\ndata: \{"type":"image_generation\.completed"[^\n]*\nid: 1\n\n$/);
  });

  it('on SIGTERM, refuses new work with 503, finishes the runs in progress, and exits 0', async () => {
    const { server, url } = await listeningServer({ SHUTDOWN_GRACE_MS: '60000' });
    const res = await fetch(`${url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'two green triangles', stream: true, steps: 256, candidates: 1, preview_every: 1 }),
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = (await reader.read()).value ?? '';
    server.child.kill('SIGTERM');
    await server.waitFor(/shutting down/);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
    expect(text).toContain('event: image_generation.completed');
    expect(await server.exited()).toBe(0);
  });

  it('refuses to start on a public address without API keys', async () => {
    const server = startServer({ PORT: '0', HOST: '0.0.0.0', API_KEYS: '' });
    expect(await server.exited()).toBe(1);
    expect(server.output()).toContain('refusing to listen on 0.0.0.0 without API_KEYS');
  });

  it('refuses to start with a broken model package, naming the file', async () => {
    const server = startServer({ PORT: '0', MODEL_DIR: 'test/fixtures' });
    expect(await server.exited()).toBe(1);
    expect(server.output()).toContain('manifest.json');
  });

  it.skipIf(cudaProviderInstalled)('refuses to start on CUDA where CUDA is unavailable instead of running on the CPU', async () => {
    const server = startServer({ PORT: '0', ORT_EXECUTION_PROVIDER: 'cuda' });
    expect(await server.exited()).toBe(1);
    expect(server.output()).toContain('sparse-lavida: ORT_EXECUTION_PROVIDER=cuda, but onnxruntime-node cannot use it');
    expect(server.output()).not.toContain('listening');
  });
});
