// Snapshots of published versions end to end: built in the background, restored on cold starts with the
// hooks run, unique per instance after restore, encrypted at rest, removed with their version, and every
// way they can fail falling back to a working invoke with the reason shown.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateFunctionCommand, DeleteFunctionCommand } from '@aws-sdk/client-lambda';
import { eventually, getJson, invokeHttp, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const SECRET = 'thaw-secret-7f3a9c';

const HOOKED = `
import crypto from 'node:crypto';
const secret = process.env.SECRET;
const table = new Map();
for (let i = 0; i < 50000; i++) table.set('k' + i, { i, s: 'v' + i });
const initUuid = crypto.randomUUID();
const initAt = Date.now();
let restores = 0;
let beforeSnapshot = 0;
globalThis.thaw.onBeforeSnapshot(() => { beforeSnapshot++; });
globalThis.thaw.onAfterRestore(async () => { restores++; });
export const handler = async (event) => {
  if (event.hold) await new Promise((r) => setTimeout(r, event.hold));
  return {
    size: table.size, secretLength: secret.length, restores, beforeSnapshot, initUuid, initAt,
    uuid: crypto.randomUUID(), random: Math.random(), bytes: crypto.getRandomValues(new Uint8Array(8)).join(','), now: Date.now(),
    pid: process.pid, initType: process.env.AWS_LAMBDA_INITIALIZATION_TYPE,
  };
};
`;

async function snapshotOf(t: TestThaw, fn: string, version = '1') {
  return eventually(async () => {
    const s = (await getJson(`${t.url}/thaw/v1/functions/${fn}/snapshots`)).snapshots.find((x: { version: string }) => x.version === version);
    return s && s.status !== 'pending' && s;
  }, `the snapshot of ${fn}:${version}`, 60_000);
}

const create = (t: TestThaw, name: string, files: Record<string, string>, extra: Record<string, unknown> = {}) =>
  t.lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: pkg(files) }, Publish: true, ...extra }));

describe('snapshots', () => {
  let t: TestThaw;
  // The build timeout is long enough for a loaded machine (a build that legitimately takes 4 s failed under
  // load once); only the function that never settles ("busy") waits for it.
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1, snapshotTimeoutMs: 15_000 }); });
  after(async () => { await t.stop(); });

  test('a published version is snapshotted; its cold starts restore with init done and the hooks run', async () => {
    await create(t, 'snap', { 'index.mjs': HOOKED }, { Environment: { Variables: { SECRET } } });
    const snap = await snapshotOf(t, 'snap');
    assert.equal(snap.status, 'ready', snap.reason);
    assert.ok(snap.sizeBytes > 1024 * 1024 && snap.buildMs > 0);
    const r = await invokeHttp(t.url, 'snap', {}, { qualifier: '1' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-thaw-start'), 'restored');
    assert.equal(r.json.size, 50000, 'the init-built table came from the snapshot');
    assert.equal(r.json.secretLength, SECRET.length);
    assert.equal(r.json.beforeSnapshot, 1, 'before-snapshot hooks ran once, at build');
    assert.equal(r.json.restores, 1, 'after-restore hooks ran in this instance');
    assert.equal(r.json.initType, 'snap-start', 'AWS_LAMBDA_INITIALIZATION_TYPE says it was restored, as SnapStart does');
    const rec = await getJson(`${t.url}/thaw/v1/invocations/${r.headers.get('x-thaw-invocation-id')}`);
    assert.equal(rec.start, 'restored');
    const latest = await invokeHttp(t.url, 'snap');
    assert.equal(latest.headers.get('x-thaw-start'), 'cold', '$LATEST is never snapshotted');
  });

  test('two instances restored from one snapshot differ in every random source, and their clocks are current', async () => {
    const [a, b] = await Promise.all([
      invokeHttp(t.url, 'snap', { hold: 300 }, { qualifier: '1' }),
      invokeHttp(t.url, 'snap', { hold: 300 }, { qualifier: '1' }),
    ]);
    const instanceOf = async (r: typeof a) => (await getJson(`${t.url}/thaw/v1/invocations/${r.headers.get('x-thaw-invocation-id')}`)).instanceId;
    assert.notEqual(await instanceOf(a), await instanceOf(b), 'two instances');
    assert.equal(a.json.initUuid, b.json.initUuid, 'values computed at init are shared (refresh them in onAfterRestore)');
    assert.notEqual(a.json.uuid, b.json.uuid, 'crypto.randomUUID');
    assert.notEqual(a.json.random, b.json.random, 'Math.random');
    assert.notEqual(a.json.bytes, b.json.bytes, 'crypto.getRandomValues');
    assert.ok(Math.abs(a.json.now - Date.now()) < 30_000, 'Date.now is current after a restore');
    assert.ok(a.json.now > a.json.initAt);
  });

  test('snapshots are encrypted at rest; the node-local copy for restores lives on tmpfs', async () => {
    const dir = join(t.dataDir, 'snapshots');
    const files = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.snap'));
    assert.equal(files.length, 1);
    const enc = readFileSync(join(dir, files[0]));
    assert.equal(enc.includes(Buffer.from(SECRET)), false, 'the secret is not readable in the stored snapshot');
    const local = readdirSync(join(t.cacheDir, 'snapshots')).filter((f) => f.endsWith('.blob'));
    assert.equal(local.length, 1);
    assert.ok(readFileSync(join(t.cacheDir, 'snapshots', local[0])).includes(Buffer.from(SECRET)), 'the decrypted copy does hold it (so encryption matters)');
    const key = join(t.dataDir, 'keys', 'snapshot.key');
    assert.equal((await import('node:fs')).statSync(key).mode & 0o777, 0o600);
  });

  test('code that cannot be snapshotted falls back with the reason shown, never with a failed invoke', async () => {
    await create(t, 'tla', { 'index.mjs': 'const data = await Promise.resolve(42);\nexport const handler = async () => data;' });
    const tla = await snapshotOf(t, 'tla');
    assert.equal(tla.status, 'failed');
    assert.match(tla.reason, /Top-level await/i);
    const r = await invokeHttp(t.url, 'tla', {}, { qualifier: '1' });
    assert.equal(r.status, 200);
    assert.equal(r.json, 42);
    assert.equal(r.headers.get('x-thaw-start'), 'cold');

    await create(t, 'busy', { 'index.mjs': 'setInterval(() => {}, 1000);\nexport const handler = async () => "ok";' });
    const busy = await snapshotOf(t, 'busy');
    assert.equal(busy.status, 'failed');
    assert.match(busy.reason, /did not finish within 15 s/);
    assert.equal((await invokeHttp(t.url, 'busy', {}, { qualifier: '1' })).json, 'ok');

    await create(t, 'boom', { 'index.mjs': 'if (!process.env.AWS_LAMBDA_FUNCTION_NAME) throw new Error("no env");\nexport const handler = async () => "fine";\nglobalThis.thaw.onBeforeSnapshot(() => { throw new Error("refusing to be snapshotted"); });' });
    const boom = await snapshotOf(t, 'boom');
    assert.equal(boom.status, 'failed');
    assert.match(boom.reason, /refusing to be snapshotted/);
    assert.equal((await invokeHttp(t.url, 'boom', {}, { qualifier: '1' })).json, 'fine');
  });

  test('a snapshot that fails to restore is dropped and the invocation succeeds without it', async () => {
    await create(t, 'broken', { 'index.mjs': 'export const handler = async () => process.pid;' });
    assert.equal((await snapshotOf(t, 'broken')).status, 'ready');
    // Damage the node-local copy: the restore crashes; the platform must fall back.
    for (const f of readdirSync(join(t.cacheDir, 'snapshots'))) {
      const p = join(t.cacheDir, 'snapshots', f);
      const b = readFileSync(p);
      if (b.length > 0 && !readFileSync(p).includes(Buffer.from(SECRET))) writeFileSync(p, b.subarray(0, 4096));
    }
    const r = await invokeHttp(t.url, 'broken', {}, { qualifier: '1' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-amz-function-error'), null);
    assert.equal(r.headers.get('x-thaw-start'), 'cold');
    const s = await snapshotOf(t, 'broken');
    assert.equal(s.status, 'failed');
    assert.match(s.reason, /restore failed/);
  });

  test('deleting the function removes its snapshots, records and files', async () => {
    await t.lambda.send(new DeleteFunctionCommand({ FunctionName: 'snap' }));
    const dir = join(t.dataDir, 'snapshots');
    const left = existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.snap')) : [];
    // Only the snapshots of the other (still existing) functions remain.
    const others = (await Promise.all(['broken'].map(async (f) => (await getJson(`${t.url}/thaw/v1/functions/${f}/snapshots`)).snapshots))).flat();
    assert.equal(left.length, others.filter((s: { sha256: string | null }) => s.sha256).length);
    assert.equal(readdirSync(join(t.cacheDir, 'snapshots')).some((f) => readFileSync(join(t.cacheDir, 'snapshots', f)).includes(Buffer.from(SECRET))), false);
  });

  test('a function deleted while its snapshot builds leaves no snapshot file or record behind', async () => {
    const snaps = () => (existsSync(join(t.dataDir, 'snapshots')) ? readdirSync(join(t.dataDir, 'snapshots'), { recursive: true }).map(String).filter((f) => f.endsWith('.snap')) : []);
    const before = new Set(snaps());
    for (let i = 0; i < 3; i++) {
      const name = `gone${i}`;
      // An init slow enough (a busy second) that the delete lands while the build runs.
      await create(t, name, { 'index.mjs': 'const until = Date.now() + 1000; while (Date.now() < until);\nexport const handler = async () => 1;' });
      await eventually(async () => (await getJson(`${t.url}/thaw/v1/functions/${name}/snapshots`)).snapshots.some((x: { status: string; progress?: { stage: string } }) => x.status === 'pending' && x.progress?.stage === 'initializing') || null, `the build of ${name} to run`, 30_000);
      await t.lambda.send(new DeleteFunctionCommand({ FunctionName: name }));
    }
    // Once the builds under way have ended, only the snapshots that existed before remain.
    await t.thaw.platform.agent.snapshots.settled();
    const left = snaps().filter((f) => !before.has(f));
    assert.deepEqual(left, [], 'encrypted snapshots of deleted functions');
    assert.deepEqual((await t.thaw.platform.store.listSnapshots()).filter((r) => r.functionName.startsWith('gone')), [], 'snapshot records of deleted functions');
  });
});
