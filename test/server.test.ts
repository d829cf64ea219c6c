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
