import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function startServer(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn('node_modules/.bin/tsx', ['functions/handlers/server.ts'], { env: { ...process.env, ...env } });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

async function waitFor(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!pred()) throw new Error(`timed out waiting for ${what}`);
}

describe('the node server (npm start)', () => {
  it('answers /healthz on loopback with the loaded model', async () => {
    const { output } = startServer({ PORT: '0', HOST: '127.0.0.1' });
    await waitFor(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(output()), 'the server to listen');
    const port = /127\.0\.0\.1:(\d+)/.exec(output())?.[1];
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', model: { name: 'shapes-tiny', version: expect.any(String) } });
  });

  it('refuses to start on a public address without API keys', async () => {
    const { child, output } = startServer({ PORT: '0', HOST: '0.0.0.0', API_KEYS: '' });
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(1);
    expect(output()).toContain('refusing to listen on 0.0.0.0 without API_KEYS');
  });

  it('refuses to start with a broken model package, naming the file', async () => {
    const { child, output } = startServer({ PORT: '0', MODEL_DIR: 'test/fixtures' });
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(1);
    expect(output()).toContain('manifest.json');
  });
});
