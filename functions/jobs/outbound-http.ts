/**
 * Requests the service makes to addresses its users give it (webhook endpoints, image URLs),
 * guarded against server-side request forgery: a target in a private, loopback, link-local
 * or otherwise non-public range is refused unless allowed (WEBHOOK_ALLOW_PRIVATE,
 * IMAGE_URL_ALLOW_PRIVATE), and a refusal makes no request at all. An IP literal is checked
 * before anything happens; a host name is checked on every address it resolves to, inside the
 * connection's own DNS lookup, so the address checked is the address connected to (a name that
 * resolves differently a moment later gains nothing). Redirects are never followed, a request
 * has one deadline for connecting, sending and reading, and a response body is read only up to
 * a limit.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';

/** The target's address is not allowed; no request was made. */
export class RefusedTargetError extends Error {
  override readonly name = 'RefusedTargetError';
}

/** The request failed before a full response: `code` says how. */
export class OutboundRequestError extends Error {
  override readonly name = 'OutboundRequestError';
  constructor(
    readonly code: 'unreachable' | 'timeout' | 'too_large',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const blocked = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64 (the IPv4 address inside is not checked: refuse)
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(network, prefix, 'ipv6');
}

/**
 * Whether an IP address is outside the public internet (IPv4-mapped IPv6 included).
 *
 * @example
 * isPrivateAddress('10.1.2.3'); // true
 * isPrivateAddress('::ffff:127.0.0.1'); // true
 * isPrivateAddress('93.184.216.34'); // false
 */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return blocked.check(mapped, 'ipv4');
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Parses a user's URL and refuses what is refused before any DNS lookup: a scheme other than
 * http(s), credentials in the URL, and (unless allowed) a private IP literal. A host name is
 * checked when it is resolved, by the request itself.
 *
 * @example
 * checkTargetUrl('https://hooks.example.com/in', false); // URL
 * checkTargetUrl('http://169.254.169.254/latest', false); // throws RefusedTargetError
 */
export function checkTargetUrl(text: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RefusedTargetError(`"${text}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RefusedTargetError(`${url.protocol} URLs are not allowed; use http or https`);
  if (url.username !== '' || url.password !== '') throw new RefusedTargetError('URLs with credentials are not allowed');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!allowPrivate && isIP(host) !== 0 && isPrivateAddress(host)) throw new RefusedTargetError(`${url.host} is a private or loopback address, which is refused`);
  return url;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A DNS lookup for the connection that fails, instead of answering, when a resolved address is refused. */
function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const refused = addresses.find((a) => isPrivateAddress(a.address));
    if (refused) return callback(new RefusedTargetError(`${hostname} resolves to ${refused.address}, a private or loopback address, which is refused`), []);
    const first = addresses[0];
    if (options.all) return callback(null, addresses);
    if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

export interface OutboundRequest {
  readonly method: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly allowPrivate: boolean;
  /** One deadline for the whole exchange. */
  readonly timeoutMs: number;
  /** A longer response body fails the request. */
  readonly maxResponseBytes: number;
}

export interface OutboundResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * Sends one request under the guard: RefusedTargetError (nothing sent) or
 * OutboundRequestError (no full response), else the response, whatever its status;
 * a 3xx is returned as it is, never followed.
 *
 * @example
 * const res = await outboundRequest('https://hooks.example.com/in', { method: 'POST', body, headers, allowPrivate: false, timeoutMs: 15_000, maxResponseBytes: 65_536 });
 */
export async function outboundRequest(target: string, request: OutboundRequest): Promise<OutboundResponse> {
  const url = checkTargetUrl(target, request.allowPrivate);
  const signal = AbortSignal.timeout(request.timeoutMs);
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<OutboundResponse>((resolve, reject) => {
    const fail = (e: unknown) => {
      if (e instanceof RefusedTargetError || e instanceof OutboundRequestError) return reject(e);
      if (signal.aborted) return reject(new OutboundRequestError('timeout', `no answer from ${url.host} within ${request.timeoutMs} ms`));
      reject(new OutboundRequestError('unreachable', `cannot reach ${url.host}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
    };
    const req = transport.request(
      url,
      {
        method: request.method,
        headers: { 'user-agent': 'sparse-lavida', ...request.headers, ...(request.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(request.body)) }) },
        signal,
        agent: false,
        ...(request.allowPrivate ? {} : { lookup: guardedLookup as unknown as typeof dnsLookup }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > request.maxResponseBytes) {
            res.destroy();
            fail(new OutboundRequestError('too_large', `the response from ${url.host} is over ${request.maxResponseBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(request.body);
  });
}
