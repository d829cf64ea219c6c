import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../../test/support/jobs.ts';
import { checkTargetUrl, isPrivateAddress, OutboundRequestError, outboundRequest, RefusedTargetError } from './outbound-http.ts';

const receivers: Receiver[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

const post = { method: 'POST' as const, body: '{}', timeoutMs: 2_000, maxResponseBytes: 1024 };

describe('which addresses are private', () => {
  it.each(['10.1.2.3', '127.0.0.1', '127.255.0.9', '169.254.169.254', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', 'not an address'])(
    '%s is private',
    (address) => expect(isPrivateAddress(address)).toBe(true),
  );

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:93.184.216.34'])('%s is public', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });

  it('refuses private IP literals, other schemes and credentials in the URL, before any lookup', () => {
    expect(() => checkTargetUrl('http://10.0.0.7/hook', false)).toThrow(RefusedTargetError);
    expect(() => checkTargetUrl('http://[::1]:8080/hook', false)).toThrow(/private or loopback/);
    // Other spellings of an address are read as the URL standard reads them.
    for (const url of ['http://0x7f000001/', 'http://2130706433/', 'http://127.1/', 'http://[::ffff:127.0.0.1]/']) expect(() => checkTargetUrl(url, false), url).toThrow(RefusedTargetError);
    expect(() => checkTargetUrl('ftp://example.com/x', false)).toThrow(/ftp: URLs are not allowed/);
    expect(() => checkTargetUrl('https://user:pw@example.com/x', false)).toThrow(/credentials/);
    expect(checkTargetUrl('https://example.com/hook', false).host).toBe('example.com');
    expect(checkTargetUrl('http://10.0.0.7/hook', true).host).toBe('10.0.0.7');
  });
});

describe('a guarded request', () => {
  it('refuses a loopback target without connecting, by IP literal and by a name that resolves to it', async () => {
    const r = await receiver();
    const port = new URL(r.url).port;
    await expect(outboundRequest(`http://127.0.0.1:${port}/x`, { ...post, allowPrivate: false })).rejects.toThrow(RefusedTargetError);
    await expect(outboundRequest(`http://localhost:${port}/x`, { ...post, allowPrivate: false })).rejects.toThrow(/localhost resolves to 127\.0\.0\.1/);
    expect(r.connections).toBe(0);
    expect(r.deliveries).toHaveLength(0);
  });

  it('reaches a loopback target when private targets are allowed', async () => {
    const r = await receiver();
    r.respond = () => 202;
    const res = await outboundRequest(r.url.replace('127.0.0.1', 'localhost'), { ...post, allowPrivate: true, headers: { 'x-test': '1' } });
    expect(res.status).toBe(202);
    expect(r.deliveries[0]?.headers['x-test']).toBe('1');
  });

  it('returns a redirect as it is, without following it', async () => {
    const target = await receiver();
    const server = createServer((_, res) => res.writeHead(302, { location: target.url }).end());
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const res = await outboundRequest(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { ...post, allowPrivate: true });
    expect(res.status).toBe(302);
    expect(target.connections).toBe(0);
  });

  it('gives up at its deadline, and on a response over the size limit', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/big') res.end('x'.repeat(4096));
      // Otherwise never answer.
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const slow = outboundRequest(`${base}/slow`, { ...post, allowPrivate: true, timeoutMs: 200 });
    await expect(slow).rejects.toThrow(OutboundRequestError);
    await expect(slow).rejects.toThrow(/no answer from 127\.0\.0\.1:\d+ within 200 ms/);
    await expect(outboundRequest(`${base}/big`, { ...post, method: 'GET', allowPrivate: true })).rejects.toMatchObject({ code: 'too_large' });
  });
});
