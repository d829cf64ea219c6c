import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadS3Settings } from './config.ts';

describe('configuration from the environment', () => {
  it('defaults to loopback port 8787, the shipped model on the CPU, and local outputs', () => {
    expect(loadConfig({})).toEqual({
      port: 8787,
      host: '127.0.0.1',
      apiKeys: [],
      modelUri: { scheme: 'file', path: 'models/shapes-tiny' },
      modelCacheDir: '.cache/models',
      outputUri: { scheme: 'file', path: '.cache/outputs' },
      executionProvider: 'cpu',
      engineWorkers: 1,
      api: { concurrentRuns: 4, queuedRuns: 16, deadlineMs: 120_000, bodyLimitBytes: 4 * 1024 * 1024, pingMs: 15_000, shutdownGraceMs: 10_000 },
      s3: { region: 'us-east-1' },
      jobs: {
        queue: { kind: 'sqlite', dbPath: '.cache/jobs.db' },
        inputUri: { scheme: 'file', path: '.cache/inputs' },
        concurrency: 1,
        visibilityTimeoutMs: 60_000,
        maxAttempts: 5,
        pollMs: 250,
        maxItems: 1_000,
        imageUrlAllowPrivate: false,
      },
      webhooks: { allowPrivate: false, retryScheduleMs: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000], timeoutMs: 15_000 },
      hookSources: {},
    });
  });

  it('reads the batch settings: SQS with an object store, webhook schedule and flags, inbound sources', () => {
    const config = loadConfig({
      BATCH_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/batches',
      JOB_STORE_URI: 's3://outputs-bucket/jobs/',
      WEBHOOK_RETRY_SCHEDULE: '250ms, 2s,1m,1.5h',
      WEBHOOK_ALLOW_PRIVATE: '1',
      HOOK_SOURCES: JSON.stringify({ cms: { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } }),
    });
    expect(config.jobs.queue).toEqual({ kind: 'sqs', queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/batches', storeUri: { scheme: 's3', bucket: 'outputs-bucket', key: 'jobs/' } });
    expect(config.webhooks).toMatchObject({ allowPrivate: true, retryScheduleMs: [250, 2_000, 60_000, 5_400_000] });
    expect(config.hookSources.cms?.secret).toMatch(/^whsec_/);
    expect(() => loadConfig({ BATCH_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/1/q' })).toThrow(/JOB_STORE_URI/);
    expect(() => loadConfig({ WEBHOOK_RETRY_SCHEDULE: '5 minutes' })).toThrow(/WEBHOOK_RETRY_SCHEDULE/);
    expect(() => loadConfig({ HOOK_SOURCES: '{"cms":{"secret":"hunter2"}}' })).toThrow(/HOOK_SOURCES/);
    expect(() => loadConfig({ HOOK_SOURCES: 'not json' })).toThrow(/must be JSON.*at HOOK_SOURCES/);
    expect(() => loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'sometimes' })).toThrow(/WEBHOOK_ALLOW_PRIVATE/);
  });

  it('reads the service limits', () => {
    const config = loadConfig({ MAX_CONCURRENT_RUNS: '2', MAX_QUEUED_RUNS: '0', REQUEST_DEADLINE_MS: '500', MAX_BODY_BYTES: '1024', SSE_PING_MS: '50', ENGINE_WORKERS: '2' });
    expect(config.api).toMatchObject({ concurrentRuns: 2, queuedRuns: 0, deadlineMs: 500, bodyLimitBytes: 1024, pingMs: 50 });
    expect(config.engineWorkers).toBe(2);
    expect(() => loadConfig({ MAX_CONCURRENT_RUNS: '0' })).toThrow(/MAX_CONCURRENT_RUNS/);
    expect(() => loadConfig({ MAX_BODY_BYTES: 'lots' })).toThrow(/MAX_BODY_BYTES/);
  });

  it('refuses to bind beyond loopback without API keys', () => {
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(ConfigError);
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(/without API_KEYS/);
    expect(loadConfig({ HOST: '0.0.0.0', API_KEYS: 'k1, k2' }).apiKeys).toEqual(['k1', 'k2']);
  });

  it('names a bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ ORT_EXECUTION_PROVIDER: 'tpu' })).toThrow(/ORT_EXECUTION_PROVIDER/);
    expect(() => loadConfig({ MODEL_URI: 'http://x/y' })).toThrow(/not a file:\/\/ or s3:\/\/ URI.*at MODEL_URI/);
    expect(() => loadConfig({ S3_ENDPOINT: 'not a url' })).toThrow(/S3_ENDPOINT/);
  });

  it('takes the model from MODEL_URI or MODEL_DIR, not both', () => {
    expect(loadConfig({ MODEL_URI: 's3://my-models/models/shapes-tiny/latest' }).modelUri).toEqual({
      scheme: 's3',
      bucket: 'my-models',
      key: 'models/shapes-tiny/latest',
    });
    expect(loadConfig({ MODEL_DIR: '/srv/model' }).modelUri).toEqual({ scheme: 'file', path: '/srv/model' });
    expect(() => loadConfig({ MODEL_URI: 'file://a', MODEL_DIR: 'b' })).toThrow(/set MODEL_URI or MODEL_DIR, not both/);
  });

  it('reads the execution provider and the S3 settings', () => {
    const config = loadConfig({ ORT_EXECUTION_PROVIDER: 'cuda', AWS_REGION: 'eu-west-1', S3_ENDPOINT: 'http://127.0.0.1:4569' });
    expect(config.executionProvider).toBe('cuda');
    expect(config.s3).toEqual({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:4569' });
    expect(loadS3Settings({ AWS_REGION: 'ap-south-1' })).toEqual({ region: 'ap-south-1' });
  });
});
