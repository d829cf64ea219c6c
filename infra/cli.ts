/**
 * The infra CLI: `npm run infra -- provision …` and `npm run models -- push|pull|ls …`.
 * S3 settings come from the flags, else from AWS_REGION and S3_ENDPOINT; credentials from the
 * AWS SDK's usual chain (environment, profile, role).
 */
import { access, readdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadS3Settings } from '../functions/core/config.ts';
import { parseStorageUri, type StorageUri } from '../functions/core/storage-uri.ts';
import { createS3Client } from '../functions/storage/s3-client.ts';
import { downloadPackage, readManifest, resolvePackage } from '../functions/storage/s3-packages.ts';
import { listPackages, packageRoot, pushPackage } from './models.ts';
import { formatBytes, progressDisplay } from './progress.ts';
import { OUTPUTS_PREFIX, provisionBucket } from './provision.ts';

const USAGE = `usage:
  npm run infra -- provision --bucket BUCKET [--outputs-days N] [--region R] [--endpoint URL]
  npm run models -- push DIR s3://BUCKET/PREFIX/ [--part-size-mib N] [--region R] [--endpoint URL]
  npm run models -- pull s3://BUCKET/PREFIX/NAME/VERSION/ DIR      (or …/NAME/latest)
  npm run models -- ls s3://BUCKET/PREFIX/`;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

const OPTIONS = {
  bucket: { type: 'string' },
  region: { type: 'string' },
  endpoint: { type: 'string' },
  'outputs-days': { type: 'string', default: '30' },
  'part-size-mib': { type: 'string', default: '16' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function positiveInteger(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${flag} must be a positive whole number, not "${text}"`);
  return n;
}

function s3Location(text: string | undefined, what: string): { bucket: string; key: string } {
  if (text === undefined) throw new UsageError(`missing ${what}`);
  let uri: StorageUri;
  try {
    uri = parseStorageUri(text);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (uri.scheme !== 's3') throw new UsageError(`${what} must be an s3:// URI, not "${text}"`);
  return uri;
}

function client(flags: Flags) {
  const settings = loadS3Settings({
    ...process.env,
    ...(flags.region === undefined ? {} : { AWS_REGION: flags.region }),
    ...(flags.endpoint === undefined ? {} : { S3_ENDPOINT: flags.endpoint }),
  });
  return { settings, s3: createS3Client(settings) };
}

async function provision(flags: Flags): Promise<void> {
  if (flags.bucket === undefined) throw new UsageError('provision needs --bucket');
  const { settings, s3 } = client(flags);
  const steps = await provisionBucket(s3, {
    bucket: flags.bucket,
    region: settings.region,
    outputsPrefix: OUTPUTS_PREFIX,
    outputsDays: positiveInteger(flags['outputs-days'], 'outputs-days'),
  });
  for (const step of steps) console.log(`${step.setting}: ${step.state} (${step.changed ? 'changed' : 'unchanged'})`);
  const changed = steps.filter((s) => s.changed).length;
  console.log(changed === 0 ? `nothing changed: s3://${flags.bucket} was already provisioned` : `s3://${flags.bucket}: ${changed} of ${steps.length} settings changed`);
}

async function push(flags: Flags, [dir, target]: string[]): Promise<void> {
  if (dir === undefined) throw new UsageError('push needs the package folder');
  const root = packageRoot(s3Location(target, 'the destination (s3://BUCKET/PREFIX/)'));
  const partSize = positiveInteger(flags['part-size-mib'], 'part-size-mib') * 1024 * 1024;
  const progress = progressDisplay(process.stdout, 'pushing');
  const result = await pushPackage(client(flags).s3, dir, root, { onProgress: progress.update, partSize }).finally(progress.finish);
  console.log(result.uploaded ? `pushed ${result.name}@${result.version} to ${result.uri}` : `${result.uri} already holds this exact package: nothing uploaded`);
  console.log(
    result.previousLatest === result.version
      ? `latest already pointed to ${result.version}`
      : `latest now points to ${result.version}${result.previousLatest === undefined ? '' : ` (was ${result.previousLatest})`}`,
  );
}

async function pull(flags: Flags, [source, dir]: string[]): Promise<void> {
  const location = s3Location(source, 'the package (s3://BUCKET/PREFIX/NAME/VERSION/ or …/NAME/latest)');
  if (dir === undefined) throw new UsageError('pull needs the destination folder');
  const exists = await access(dir).then(() => true, () => false);
  if (exists && (await readdir(dir)).length > 0) throw new UsageError(`${dir} already exists and is not empty`);
  const { s3 } = client(flags);
  const resolved = await resolvePackage(s3, location);
  const remote = await readManifest(s3, resolved);
  const progress = progressDisplay(process.stdout, 'pulling');
  const placed = await downloadPackage(s3, resolved, remote, dir, progress.update).finally(progress.finish);
  if (!placed) throw new UsageError(`${dir} was created by something else during the pull; nothing was written`);
  console.log(`pulled ${remote.manifest.name}@${remote.manifest.version} from s3://${resolved.bucket}/${resolved.prefix} into ${dir}, every file verified`);
}

async function list(flags: Flags, [target]: string[]): Promise<void> {
  const root = packageRoot(s3Location(target, 'the folder to list (s3://BUCKET/PREFIX/)'));
  const versions = await listPackages(client(flags).s3, root);
  if (versions.length === 0) console.log(`no packages under s3://${root.bucket}/${root.prefix}`);
  for (const v of versions) {
    const notes = [v.latest ? 'latest' : '', v.complete ? '' : 'incomplete: no manifest (an interrupted push)'].filter((n) => n !== '');
    console.log(`${v.name}\t${v.version}\t${formatBytes(v.bytes)}${notes.length ? `\t${notes.join(', ')}` : ''}`);
  }
}

async function main(argv: string[]): Promise<void> {
  const { values: flags, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  const [command, ...rest] = positionals;
  if (flags.help || command === undefined) {
    console.log(USAGE);
    return;
  }
  if (command === 'provision') return provision(flags);
  if (command === 'models') {
    const [sub, ...args] = rest;
    if (sub === 'push') return push(flags, args);
    if (sub === 'pull') return pull(flags, args);
    if (sub === 'ls') return list(flags, args);
    throw new UsageError(`unknown models command "${sub ?? ''}"`);
  }
  throw new UsageError(`unknown command "${command}"`);
}

try {
  await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof UsageError || (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))) {
    console.error(`infra: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  console.error(`infra: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
