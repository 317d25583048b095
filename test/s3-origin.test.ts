// The S3-compatible origin end to end, against a real S3-protocol server (s3rver) the tests start: the
// Origin conformance suite, `thaw up --origin s3://…` keeping packages and snapshots in the bucket, cold
// starts from it on a fresh cache, Code.S3Bucket/S3Key deploys through the SDK and the AWS CLI, and an
// origin that goes away mid-run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateFunctionCommand, DeleteFunctionCommand, LambdaClient, ListFunctionsCommand, PublishLayerVersionCommand, UpdateFunctionCodeCommand } from '@aws-sdk/client-lambda';
import { S3Origin, s3ClientConfig } from '../src/codestore/index.ts';
import { originConformance } from '../src/codestore/origin.case.ts';
import { eventually, fnSource, getJson, invokeHttp, pkg, thawUp } from './helpers.ts';
import { startS3, type RunningS3 } from './s3.ts';

const ROLE = 'arn:aws:iam::000000000000:role/x';
const AWS = ['/usr/bin/aws', '/usr/local/bin/aws'].find((p) => existsSync(p));
const THAW_BIN = join(resolve(import.meta.dirname, '..'), 'bin', 'thaw.js');

/** An S3 client for the test itself, pointed at the server by the same variables Thaw reads. */
const clientFor = (s3: RunningS3) => new S3Client(s3ClientConfig(s3.env));

originConformance('S3Origin (s3rver)', async () => {
  const s3 = await startS3();
  const client = clientFor(s3);
  const origin = new S3Origin({ bucket: s3.bucket, prefix: 'conformance' }, client, s3.endpoint);
  return {
    origin,
    damage: async (hash) => { await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: origin.key(hash), Body: 'not the bytes this name promises' })); },
    close: async () => { client.destroy(); await s3.stop(); },
  };
});

// `thaw up` as real child processes pointed at the server through the usual AWS variables (inherited).
describe('thaw up --origin s3://BUCKET/PREFIX', () => {
  let s3: RunningS3;
  let client: S3Client;
  let dataDir = '';
  const caches: string[] = [];
  const children: ChildProcess[] = [];
  let url = '';
  let lambda: LambdaClient;
  const origin = () => `s3://${s3.bucket}/pkgs`;
  const keys = async (prefix: string) => ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);
  const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');
  const packageKey = (sha: string) => `pkgs/${sha.slice(0, 2)}/${sha}`;

  /** Starts `thaw up` on the shared data dir and a fresh cache dir (code cache empty). */
  const up = async (extra: string[] = []) => {
    const cache = await mkdtemp('/dev/shm/thaw-s3-cache-');
    caches.push(cache);
    const r = await thawUp(dataDir, cache, ['--origin', origin(), '--pool-size', '0', '--max-package-mb', '1', ...extra]);
    children.push(r.child);
    url = r.url;
    lambda?.destroy();
    lambda = new LambdaClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'thaw', secretAccessKey: 'thaw' }, maxAttempts: 1 });
    return r;
  };
  const stopAll = async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const gone = once(c, 'exit');
      c.kill('SIGTERM');
      await gone;
    }
  };

  before(async () => {
    s3 = await startS3();
    Object.assign(process.env, s3.env);
    client = clientFor(s3);
    dataDir = await mkdtemp(join(tmpdir(), 'thaw-s3-data-'));
    await up();
  });
  after(async () => {
    await stopAll();
    lambda?.destroy();
    client?.destroy();
    await s3?.stop();
    for (const d of [dataDir, ...caches]) if (d) await rm(d, { recursive: true, force: true });
  });

  test('a deploy stores the package in the bucket, not in the data dir; /thaw/v1/node names the origin', async () => {
    const fn = await lambda.send(new CreateFunctionCommand({ FunctionName: 'hello', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Publish: true, Code: { ZipFile: pkg({ 'index.mjs': fnSource('return { hi: event.who };') }) } }));
    const sha = hex(fn.CodeSha256!);
    assert.ok((await keys('pkgs/')).includes(packageKey(sha)), `the package is at ${packageKey(sha)} in the bucket`);
    assert.deepEqual(await readdir(join(dataDir, 'blobs')).catch(() => []), [], 'the data dir holds no package');
    const r = await invokeHttp(url, 'hello', { who: 's3' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { hi: 's3' });
    assert.deepEqual((await getJson(`${url}/thaw/v1/node`)).origin, { kind: 's3', location: origin() });
  });

  test('a published version\'s snapshot is stored encrypted in the bucket under snapshots/, not in the data dir', async () => {
    const snap = await eventually(async () => {
      const s = (await getJson(`${url}/thaw/v1/functions/hello/snapshots`)).snapshots.find((x: { version: string }) => x.version === '1');
      return s && s.status !== 'pending' ? s : null;
    }, 'the snapshot of hello:1 to be built', 90_000);
    if (snap.status !== 'ready') return assert.fail(`the snapshot could not be built here: ${snap.reason}`);
    assert.ok((await keys('pkgs/snapshots/')).includes(`pkgs/snapshots/${snap.sha256.slice(0, 2)}/${snap.sha256}`));
    assert.equal((await readdir(join(dataDir, 'snapshots'), { recursive: true }).catch(() => [])).filter((f) => String(f).endsWith('.snap')).length, 0);
  });

  test('Code.S3Bucket/S3Key through the AWS SDK: CreateFunction and UpdateFunctionCode read the object; PublishLayerVersion too', async () => {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'uploads/v1.zip', Body: pkg({ 'index.mjs': fnSource('return "v1";') }) }));
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'uploads/v2.zip', Body: pkg({ 'index.mjs': fnSource('return "v2";') }) }));
    const created = await lambda.send(new CreateFunctionCommand({ FunctionName: 'from-s3', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { S3Bucket: s3.bucket, S3Key: 'uploads/v1.zip' } }));
    assert.equal((await invokeHttp(url, 'from-s3')).json, 'v1');
    const updated = await lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'from-s3', S3Bucket: s3.bucket, S3Key: 'uploads/v2.zip' }));
    assert.notEqual(updated.CodeSha256, created.CodeSha256);
    assert.equal((await invokeHttp(url, 'from-s3')).json, 'v2');
    assert.ok((await keys('pkgs/')).includes(packageKey(hex(updated.CodeSha256!))), 'Thaw keeps its own copy in its origin');

    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'uploads/layer.zip', Body: pkg({ 'nodejs/node_modules/greet/index.js': 'module.exports = () => "from a layer";' }) }));
    const layer = await lambda.send(new PublishLayerVersionCommand({ LayerName: 'greet', Content: { S3Bucket: s3.bucket, S3Key: 'uploads/layer.zip' } }));
    await lambda.send(new CreateFunctionCommand({ FunctionName: 'layered', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Layers: [layer.LayerVersionArn!], Code: { ZipFile: pkg({ 'index.cjs': 'exports.handler = async () => require("greet")();' }) } }));
    assert.equal((await invokeHttp(url, 'layered')).json, 'from a layer');
  });

  test('a missing bucket or key, or an object over the package limit, is refused as Lambda does, and creates nothing', async () => {
    const create = (name: string, Code: Record<string, string>) => lambda.send(new CreateFunctionCommand({ FunctionName: name, Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Code }));
    const refused = async (p: Promise<unknown>, name: string, message: RegExp) => {
      const err = await p.then(() => assert.fail('accepted'), (e: Error & { name: string }) => e);
      assert.equal(err.name, name, err.message);
      assert.match(err.message, message);
    };
    await refused(create('nokey', { S3Bucket: s3.bucket, S3Key: 'uploads/absent.zip' }), 'InvalidParameterValueException', /NoSuchKey.*Code\.S3Bucket\/Code\.S3Key s3:\/\/thaw-test\/uploads\/absent\.zip/);
    await refused(create('nobucket', { S3Bucket: 'no-such-bucket', S3Key: 'x.zip' }), 'InvalidParameterValueException', /no-such-bucket/);
    await refused(create('half', { S3Bucket: s3.bucket }), 'InvalidParameterValueException', /S3Key/);
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'uploads/big.zip', Body: Buffer.alloc(1536 * 1024, 1) }));
    await refused(create('big', { S3Bucket: s3.bucket, S3Key: 'uploads/big.zip' }), 'RequestEntityTooLargeException', /1\.5 MB; the limit is 1 MB/);
    const names = (await lambda.send(new ListFunctionsCommand({}))).Functions!.map((f) => f.FunctionName);
    for (const n of ['nokey', 'nobucket', 'half', 'big']) assert.equal(names.includes(n), false, n);
  });

  test('the AWS CLI deploys with --code S3Bucket=…,S3Key=…', { skip: AWS ? false : 'the AWS CLI is not installed (to enable: apt-get install awscli)' }, async () => {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'uploads/cli.zip', Body: pkg({ 'index.mjs': fnSource('return "via the cli";') }) }));
    const home = await mkdtemp(join(tmpdir(), 'thaw-awscli-home-'));
    try {
      const r = await run(AWS!, ['lambda', 'create-function', '--function-name', 'cli-s3', '--runtime', 'nodejs24.x', '--handler', 'index.handler', '--role', ROLE,
        '--code', `S3Bucket=${s3.bucket},S3Key=uploads/cli.zip`, '--endpoint-url', url, '--region', 'us-east-1', '--output', 'json'],
      { PATH: '/usr/bin:/bin', HOME: home, AWS_ACCESS_KEY_ID: 'thaw', AWS_SECRET_ACCESS_KEY: 'thaw', AWS_EC2_METADATA_DISABLED: 'true', AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).FunctionName, 'cli-s3');
      assert.equal((await invokeHttp(url, 'cli-s3')).json, 'via the cli');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  test('deleting a function removes its package (and snapshots) from the bucket', async () => {
    const fn = await lambda.send(new CreateFunctionCommand({ FunctionName: 'doomed', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Publish: true, Code: { ZipFile: pkg({ 'index.mjs': fnSource('return "doomed";') }) } }));
    const key = packageKey(hex(fn.CodeSha256!));
    const snap = await eventually(async () => (await getJson(`${url}/thaw/v1/functions/doomed/snapshots`)).snapshots.find((x: { status: string }) => x.status === 'ready'), 'the snapshot of doomed:1', 90_000);
    const snapKey = `pkgs/snapshots/${snap.sha256.slice(0, 2)}/${snap.sha256}`;
    assert.ok((await keys('pkgs/')).includes(key));
    assert.ok((await keys('pkgs/snapshots/')).includes(snapKey));
    await lambda.send(new DeleteFunctionCommand({ FunctionName: 'doomed' }));
    assert.equal((await keys('pkgs/')).includes(key), false, 'the package is gone');
    assert.equal((await keys('pkgs/snapshots/')).includes(snapKey), false, 'the snapshot is gone');
  });

  test('restarted on a fresh cache dir, Thaw cold-starts from the bucket', async () => {
    await stopAll();
    await up();
    const r = await invokeHttp(url, 'hello', { who: 'again' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { hi: 'again' });
    assert.equal(r.headers.get('x-thaw-start'), 'cold');
    assert.deepEqual(await readdir(join(dataDir, 'blobs')).catch(() => []), [], 'nothing was fetched into the data dir');
  });

  test('the origin going away: a cold start that needs it fails clearly, the platform stays up and warm code still runs', async () => {
    // Never invoked, so nothing prewarms it: after the restart its code is only in the bucket.
    await lambda.send(new CreateFunctionCommand({ FunctionName: 'unrun', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return "unrun";') }) } }));
    await stopAll();
    await up();
    assert.equal((await invokeHttp(url, 'hello', { who: 'warm' })).status, 200);
    await s3.stop();
    const r = await invokeHttp(url, 'unrun');
    assert.notEqual(r.status, 200, 'a cold start without its package cannot succeed');
    assert.match(r.text, /THAW_E_ORIGIN_UNAVAILABLE/);
    assert.match(r.text, /thaw-test/);
    assert.match(r.text, new RegExp(s3.endpoint.replace(/[.]/g, '\\.')));
    assert.equal((await invokeHttp(url, 'hello', { who: 'still' })).status, 200, 'the warm instance still serves');
    assert.equal((await fetch(`${url}/thaw/v1/node`)).status, 200);
  });
});

describe('thaw up with an origin it cannot use', () => {
  test('a bucket that does not exist stops the start with THAW_E_ORIGIN_UNAVAILABLE naming the bucket and the endpoint', async () => {
    const s3 = await startS3();
    const dataDir = await mkdtemp(join(tmpdir(), 'thaw-s3-bad-'));
    try {
      const r = await run(process.execPath, [THAW_BIN, 'up', '--port', '0', '--data', dataDir, '--cache', join(dataDir, 'cache'), '--origin', 's3://missing-bucket/x'], { ...process.env, ...s3.env } as Record<string, string>);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /THAW_E_ORIGIN_UNAVAILABLE/);
      assert.match(r.stderr, /missing-bucket/);
      assert.ok(r.stderr.includes(s3.endpoint), r.stderr);
      assert.match(r.stderr, /fix: .*bucket exists/);
    } finally {
      await s3.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('an origin that is not s3://BUCKET is THAW_E_CONFIG_INVALID', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'thaw-s3-bad-'));
    try {
      const r = await run(process.execPath, [THAW_BIN, 'up', '--port', '0', '--data', dataDir, '--origin', 'https://bucket.example.com'], process.env as Record<string, string>);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /THAW_E_CONFIG_INVALID.*s3:\/\/BUCKET/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { env, timeout: 120_000 }, (err, stdout, stderr) => res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}
