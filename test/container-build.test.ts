/**
 * What the container images run, checked without Docker: the build step of infra/Dockerfile*
 * (`npm run build`) compiles the entry points to JavaScript that starts, the commands they
 * and serverless.yml name exist in that output, and the Lambda handlers answer their events.
 * The Lambda runtime's `awslambda` global is stood in for by a minimal fake that records the
 * response metadata and collects the streamed body.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_AWS_CREDENTIALS, startFakeSqs } from './support/fake-sqs.ts';
import { startServer, stopServers } from './support/server.ts';

let out: string;
beforeAll(async () => {
  // Inside the repository, so the compiled files find node_modules and package.json's "type": "module".
  mkdirSync('.cache', { recursive: true });
  out = mkdtempSync(join('.cache', 'build-'));
  await promisify(execFile)(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', out]);
  // The rest of `npm run build`: the playground's files, which the app reads at start-up.
  cpSync('functions/api/playground', join(out, 'functions/api/playground'), { recursive: true });
}, 120_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));
afterEach(stopServers);

interface StreamMetadata {
  statusCode: number;
  headers: Record<string, string>;
}
type StreamingHandler = (event: unknown, stream: PassThrough, context: unknown) => Promise<void>;

function installLambdaGlobals(): { metadata: StreamMetadata[] } {
  const metadata: StreamMetadata[] = [];
  Object.assign(globalThis, {
    awslambda: {
      streamifyResponse: (handler: StreamingHandler) => handler,
      HttpResponseStream: {
        from: (stream: PassThrough, meta: StreamMetadata) => {
          metadata.push(meta);
          return stream;
        },
      },
    },
  });
  return { metadata };
}

/** A function URL event (payload format 2.0) for a GET. */
function functionUrlEvent(path: string) {
  return {
    version: '2.0',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abc.lambda-url.us-east-1.on.aws' },
    requestContext: { domainName: 'abc.lambda-url.us-east-1.on.aws', http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' } },
    isBase64Encoded: false,
  };
}

const compiled = (file: string) => pathToFileURL(resolve(out, file)).href;

describe('the compiled entry points (what the images run)', () => {
  it('includes every command that the Dockerfiles and serverless.yml name', () => {
    const named = [
      ...readFileSync('infra/Dockerfile', 'utf8').matchAll(/functions\/handlers\/[a-z-]+\.(?:handler|js)/g),
      ...readFileSync('infra/Dockerfile.cuda', 'utf8').matchAll(/functions\/handlers\/[a-z-]+\.(?:handler|js)/g),
      ...readFileSync('serverless.yml', 'utf8').matchAll(/functions\/handlers\/[a-z-]+\.handler/g),
    ].map((m) => m[0].replace(/\.handler$/, '.js'));
    expect(new Set(named)).toEqual(new Set(['functions/handlers/lambda-api.js', 'functions/handlers/server.js', 'functions/handlers/lambda-worker.js']));
    for (const file of named) expect(existsSync(join(out, file)), file).toBe(true);
  });

  it('runs the node server from JavaScript alone', async () => {
    const server = startServer({ PORT: '0' }, ['node', join(out, 'functions/handlers/server.js')]);
    const [, url] = await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    expect(await (await fetch(`${url}/healthz`)).json()).toMatchObject({ status: 'ok', model: { name: 'shapes-tiny' } });
    expect(await (await fetch(`${url}/`)).text()).toContain('sparse-lavida playground');
    expect((await fetch(`${url}/playground.js`)).status).toBe(200);
  });

  it('copies the playground into the build, as the app needs it beside its code', () => {
    expect(JSON.parse(readFileSync('package.json', 'utf8')).scripts.build).toContain('cp -R functions/api/playground dist/functions/api/');
  });

  it('answers a function URL event from the Lambda API handler, streaming the response', async () => {
    const { metadata } = installLambdaGlobals();
    process.env.API_KEYS = 'test-key';
    const { handler } = (await import(compiled('functions/handlers/lambda-api.js'))) as { handler: StreamingHandler };
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    await handler(functionUrlEvent('/healthz'), stream, {});
    expect(metadata[0]).toMatchObject({ statusCode: 200, headers: { 'content-type': expect.stringContaining('application/json') } });
    expect(JSON.parse(Buffer.concat(chunks).toString('utf8'))).toMatchObject({ status: 'ok', model: { name: 'shapes-tiny' } });
  });

  it('refuses to start the Lambda API without API keys, since a function URL is public', async () => {
    installLambdaGlobals();
    delete process.env.API_KEYS;
    // A query string gives a fresh instance of the module, so its start-up runs again.
    await expect(import(`${compiled('functions/handlers/lambda-api.js')}?without-keys`)).rejects.toThrow(
      'refusing to serve a public endpoint without API_KEYS',
    );
  });

  it('answers an SQS event from the compiled Lambda worker, reporting the records to retry', async () => {
    const sqs = await startFakeSqs();
    const jobs = mkdtempSync(join(tmpdir(), 'worker-jobs-'));
    try {
      Object.assign(process.env, {
        BATCH_QUEUE_URL: sqs.queueUrl,
        JOB_STORE_URI: `file://${jobs}`,
        AWS_ACCESS_KEY_ID: FAKE_AWS_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: FAKE_AWS_CREDENTIALS.secretAccessKey,
      });
      const { handler } = (await import(compiled('functions/handlers/lambda-worker.js'))) as {
        handler: (event: unknown) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;
      };
      const record = (messageId: string, body: string) => ({ messageId, receiptHandle: `r-${messageId}`, body, attributes: { ApproximateReceiveCount: '1' } });
      const response = await handler({
        Records: [record('m1', JSON.stringify({ kind: 'item', batch: 'batch_unknown', index: 0 })), record('m2', 'not a job')],
      });
      // An item of an unknown batch is dropped (deleted); a message that is not a job is kept for the dead-letter queue.
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm2' }] });
    } finally {
      for (const name of ['BATCH_QUEUE_URL', 'JOB_STORE_URI', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) delete process.env[name];
      await sqs.close();
      rmSync(jobs, { recursive: true, force: true });
    }
  });
});
