import {
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  CreateBucketCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInfraCli } from '../test/support/cli.ts';
import { startS3, type TestS3 } from '../test/support/s3.ts';
import { provisionBucket } from './provision.ts';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(() => s3.close());

describe('npm run infra -- provision', () => {
  it('creates and configures the bucket, and a second run changes nothing and says so', async () => {
    const first = await runInfraCli(['provision', '--bucket', 'sparse-lavida-models', '--outputs-days', '14'], s3.env);
    expect(first.stderr).not.toMatch(/infra:/);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('bucket: created in us-east-1 (changed)');
    expect(first.stdout).toContain('versioning: enabled (changed)');
    expect(first.stdout).toContain('default encryption: AES256 (changed)');
    expect(first.stdout).toContain('public access: blocked (changed)');
    expect(first.stdout).toContain('lifecycle: outputs/ expires after 14 days; incomplete uploads are aborted after 7 days (changed)');
    expect(first.stdout).toContain('s3://sparse-lavida-models: 5 of 5 settings changed');

    const second = await runInfraCli(['provision', '--bucket', 'sparse-lavida-models', '--outputs-days', '14'], s3.env);
    expect(second.code).toBe(0);
    expect(second.stdout).not.toContain('(changed)');
    expect(second.stdout).toContain('nothing changed: s3://sparse-lavida-models was already provisioned');

    const bucket = { Bucket: 'sparse-lavida-models' };
    expect((await s3.client.send(new GetBucketVersioningCommand(bucket))).Status).toBe('Enabled');
    const encryption = await s3.client.send(new GetBucketEncryptionCommand(bucket));
    expect(encryption.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm).toBe('AES256');
    expect((await s3.client.send(new GetPublicAccessBlockCommand(bucket))).PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      IgnorePublicAcls: true,
      BlockPublicPolicy: true,
      RestrictPublicBuckets: true,
    });
    const rules = (await s3.client.send(new GetBucketLifecycleConfigurationCommand(bucket))).Rules ?? [];
    expect(rules.find((r) => r.Filter?.Prefix === 'outputs/')?.Expiration?.Days).toBe(14);
  });

  it('keeps stronger settings an operator made: KMS encryption and other lifecycle rules', async () => {
    const Bucket = 'operator-bucket';
    await s3.client.send(new CreateBucketCommand({ Bucket }));
    await s3.client.send(
      new PutBucketEncryptionCommand({ Bucket, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' } }] } }),
    );
    const theirs = { ID: 'logs', Status: 'Enabled' as const, Filter: { Prefix: 'logs/' }, Expiration: { Days: 3 } };
    await s3.client.send(new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules: [theirs] } }));

    const steps = await provisionBucket(s3.client, { bucket: Bucket, region: 'us-east-1', outputsPrefix: 'outputs/', outputsDays: 30 });
    expect(steps.find((s) => s.setting === 'default encryption')).toEqual({ setting: 'default encryption', state: 'aws:kms', changed: false });
    const rules = (await s3.client.send(new GetBucketLifecycleConfigurationCommand({ Bucket }))).Rules ?? [];
    expect(rules.map((r) => r.ID)).toEqual(['logs', 'sparse-lavida-expire-outputs', 'sparse-lavida-abort-incomplete-uploads']);

    const again = await provisionBucket(s3.client, { bucket: Bucket, region: 'us-east-1', outputsPrefix: 'outputs/', outputsDays: 30 });
    expect(again.filter((s) => s.changed)).toEqual([]);
    const changedDays = await provisionBucket(s3.client, { bucket: Bucket, region: 'us-east-1', outputsPrefix: 'outputs/', outputsDays: 7 });
    expect(changedDays.filter((s) => s.changed).map((s) => s.setting)).toEqual(['lifecycle']);
  });

  it('explains what it needs', async () => {
    const result = await runInfraCli(['provision'], s3.env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('infra: provision needs --bucket');
  });
});
