import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../test/support/packages.ts';
import { queueDeliveries } from '../functions/jobs/worker.ts';

interface Resource {
  Type: string;
  Properties: Record<string, unknown> & { Policies?: { PolicyDocument: { Statement: Statement[] } }[] };
}
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}
interface Template {
  Resources: Record<string, Resource>;
  Outputs: Record<string, unknown>;
}

let template: Template;
beforeAll(async () => {
  const out = tempDir('sls-');
  // `serverless package` runs offline: nothing in serverless.yml needs an AWS call to resolve.
  await promisify(execFile)(process.execPath, ['node_modules/serverless/bin/serverless.js', 'package', '--stage', 'test', '--package', out], {
    env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off', AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '' },
  });
  template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
}, 120_000);
afterAll(removeTempDirs);

const resource = (id: string): Resource => {
  const r = template.Resources[id];
  if (!r) throw new Error(`the template has no ${id}`);
  return r;
};
const ofType = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type);

describe('serverless.yml, packaged offline', () => {
  it('serves the API from an image pinned by digest behind a streaming function URL', () => {
    const api = resource('ApiLambdaFunction').Properties;
    expect(api.PackageType).toBe('Image');
    expect((api.Code as { ImageUri: string }).ImageUri).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(api.ImageConfig).toEqual({ Command: ['functions/handlers/lambda-api.handler'] });
    expect(api.MemorySize).toBeGreaterThanOrEqual(3008);
    expect(api.Timeout).toBeGreaterThanOrEqual(300);
    expect(resource('ApiLambdaFunctionUrl').Properties).toMatchObject({ InvokeMode: 'RESPONSE_STREAM' });
    const env = (api.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env.MODEL_URI).toEqual({ 'Fn::Sub': 's3://${ModelBucket}/models/shapes-tiny/latest' });
    expect(env.API_KEYS).toMatch(/^\{\{resolve:secretsmanager:/);
  });

  it('names handler files that exist', () => {
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      const [handler] = (fn.Properties.ImageConfig as { Command: string[] }).Command;
      const file = (handler as string).replace(/\.handler$/, '.ts');
      expect(existsSync(file), file).toBe(true);
    }
  });

  it('triggers the worker from SQS with partial batch failures, and the queue has a dead-letter queue', () => {
    expect(resource('WorkerEventSourceMappingSQSBatchQueue').Properties).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': ['BatchQueue', 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const queue = resource('BatchQueue').Properties;
    expect(queue.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': ['BatchDeadLetterQueue', 'Arn'] }, maxReceiveCount: 6 });
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * (resource('WorkerLambdaFunction').Properties.Timeout as number));
  });

  it('queues batches on SQS and keeps them under jobs/ in the output bucket, for the API and the worker alike', () => {
    for (const fn of ['ApiLambdaFunction', 'WorkerLambdaFunction']) {
      const env = (resource(fn).Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env.BATCH_QUEUE_URL, fn).toEqual({ Ref: 'BatchQueue' });
      expect(env.JOB_STORE_URI, fn).toEqual({ 'Fn::Sub': 's3://${OutputBucket}/jobs/' });
      expect(env.INPUT_URI, fn).toEqual({ 'Fn::Sub': 's3://${OutputBucket}/inbox/' });
      expect(queueDeliveries(Number(env.JOB_MAX_ATTEMPTS)), fn).toBe((resource('BatchQueue').Properties.RedrivePolicy as { maxReceiveCount: number }).maxReceiveCount);
    }
    const api = (resource('ApiLambdaFunction').Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(api.HOOK_SOURCES).toMatch(/^\{\{resolve:secretsmanager:.*:hook_sources\}\}$/);
    const statements = (id: string) => (resource(id).Properties.Policies ?? []).flatMap((p) => p.PolicyDocument.Statement);
    for (const role of ['ApiRole', 'WorkerRole']) {
      expect(statements(role).find((s) => s.Sid === 'ReadWriteJobs')?.Resource, role).toEqual({ 'Fn::Sub': '${OutputBucket.Arn}/jobs/*' });
    }
    expect(statements('WorkerRole').find((s) => s.Sid === 'ReadInbox')?.Resource).toEqual({ 'Fn::Sub': '${OutputBucket.Arn}/inbox/*' });
    // The worker sends webhook events and their retries to the queue it consumes.
    expect(statements('WorkerRole').find((s) => s.Sid === 'ConsumeBatches')?.Action).toContain('sqs:SendMessage');
  });

  it('encrypts every bucket and blocks public access to the model and output buckets', () => {
    const buckets = ofType('AWS::S3::Bucket');
    expect(buckets.map(([id]) => id)).toEqual(expect.arrayContaining(['ModelBucket', 'OutputBucket']));
    for (const [id, bucket] of buckets) {
      expect(bucket.Properties.BucketEncryption, id).toMatchObject({
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: expect.stringMatching(/^(AES256|aws:kms)$/) } }],
      });
    }
    for (const id of ['ModelBucket', 'OutputBucket']) {
      expect(resource(id).Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        IgnorePublicAcls: true,
        BlockPublicPolicy: true,
        RestrictPublicBuckets: true,
      });
    }
    expect(resource('OutputBucket').Properties.LifecycleConfiguration).toMatchObject({
      Rules: expect.arrayContaining([expect.objectContaining({ Prefix: 'outputs/', ExpirationInDays: 30 })]),
    });
  });

  it('grants each function only its own log group, the two buckets and the queue, never "*"', () => {
    const roles = ofType('AWS::IAM::Role');
    expect(roles.map(([id]) => id).sort()).toEqual(['ApiRole', 'WorkerRole']);
    const allowed = /^(ModelBucket|OutputBucket|BatchQueue|ApiLogGroup|WorkerLogGroup)\b/;
    for (const [id, role] of roles) {
      for (const policy of role.Properties.Policies ?? []) {
        for (const statement of policy.PolicyDocument.Statement) {
          const resources = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
          for (const r of resources) {
            expect(r, `${id} ${statement.Sid}`).not.toBe('*');
            const target = JSON.stringify(r).match(/"Fn::GetAtt":\["([A-Za-z]+)"|\$\{([A-Za-z]+)[.}]/);
            expect(target?.[1] ?? target?.[2], `${id} ${statement.Sid}: ${JSON.stringify(r)}`).toMatch(allowed);
          }
          for (const action of [statement.Action].flat()) expect(action, `${id} ${statement.Sid}`).not.toMatch(/\*/);
        }
      }
    }
    const workerRole = JSON.stringify(resource('WorkerRole'));
    expect(workerRole).not.toContain('ApiLogGroup');
    expect(JSON.stringify(resource('ApiRole'))).not.toContain('sqs:ReceiveMessage');
  });

  it('outputs the bucket names an operator pushes models to', () => {
    expect(Object.keys(template.Outputs)).toEqual(expect.arrayContaining(['ModelBucketName', 'OutputBucketName', 'ApiLambdaFunctionUrl']));
  });
});
