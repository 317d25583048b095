// On-demand code loading from a remote origin (a real S3 server behind test/throttle.ts): a version's first
// start records the files its init read and stores their bundle; a cold start on a node whose cache lacks
// the package then runs on that bundle (a partial tree) while the rest of the package is filled in behind.
// Shown by the order of events, never by time: the first answer comes while the fill is still running and
// before the package's bytes could have crossed the link; a file init did not read is still read whole; a
// file the package does not have is ENOENT, and only once the fill is over.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateFunctionCommand, DeleteFunctionCommand, InvokeCommand } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { CodeCache, FILLING_MARKER, S3Origin, buildInitBundle, defaultPackageLimits, ingestPackage, parseS3Url, s3ClientConfig, treeKey, type FillState } from '../src/codestore/index.ts';
import { checkRuntimeMessage, MAX_INIT_FILES } from '../src/runtimes/node/protocol.ts';
import { probeNamespaces } from '../src/sandbox/index.ts';
import { pkg, startTestThaw, type TestThaw } from './helpers.ts';
import { startS3, type RunningS3 } from './s3.ts';
import { startThrottle, type Throttle } from './throttle.ts';

const ROLE = 'arn:aws:iam::000000000000:role/thaw';
const FAST = 200 * 1024 * 1024;
/** Slow enough that the package (about 4 MB) takes seconds to cross, where init's bundle takes one round trip. */
const SLOW = 256 * 1024;

const files = {
  'package.json': JSON.stringify({ name: 'od', type: 'module' }),
  'index.js': [
    "import { readFileSync, existsSync } from 'node:fs';",
    "import { greeting } from './lib/init.js';",
    "const config = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8'));",
    'export const handler = async (event) => {',
    "  if (event.read === 'late') return readFileSync(new URL('./data/late.txt', import.meta.url), 'utf8');",
    "  if (event.read === 'missing') { try { readFileSync(new URL('./data/nope.txt', import.meta.url)); return 'found'; } catch (e) { return { code: e.code, exists: existsSync(new URL('./data/nope.txt', import.meta.url)) }; } }",
    "  if (event.read === 'require') { const { createRequire } = await import('node:module'); return createRequire(import.meta.url)('./lib/later.cjs').later; }",
    "  if (event.read === 'import') return (await import('./lib/dyn.js')).dyn;",
    '  return `${greeting} ${config.name}`;',
    '};',
  ].join('\n'),
  'lib/init.js': "export const greeting = 'hello';",
  'lib/later.cjs': "module.exports = { later: 'required after init' };",
  'lib/dyn.js': "export const dyn = 'imported after init';",
  'config.json': JSON.stringify({ name: 'on demand' }),
  'data/late.txt': 'read by the handler, not by init',
  // The bulk of the package: what the full fetch waits for.
  'blob/noise.txt': randomBytes(3 * 1024 * 1024).toString('base64'),
};

async function waitFor(what: string, check: () => boolean | Promise<boolean>) {
  for (let i = 0; !(await check()); i++) {
    if (i > 12_000) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const drivers: ['namespaces' | 'process', string | undefined][] = [
  ['namespaces', probeNamespaces().ok ? undefined : 'the namespaces driver is unavailable here (run as root with bubblewrap)'],
  ['process', undefined],
];
for (const [sandbox, skip] of drivers) describe(`on-demand code loading from a throttled S3 origin (${sandbox} driver)`, { skip }, () => {
  let s3: RunningS3;
  let link: Throttle;
  let t: TestThaw;
  const saved = { ...process.env };
  before(async () => {
    s3 = await startS3();
    link = await startThrottle({ port: Number(new URL(s3.endpoint).port) }, { bytesPerSecond: FAST, latencyMs: 0 });
    // The platform's origin client reads these (as `thaw up --origin` does from its environment).
    Object.assign(process.env, s3.env, { AWS_ENDPOINT_URL_S3: link.endpoint });
    t = await startTestThaw({ sandbox, origin: `s3://${s3.bucket}/od-${sandbox}` });
  });
  after(async () => {
    await t?.stop();
    await link?.stop();
    await s3?.stop();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  const invoke = async (event: unknown) => {
    const r = await t.lambda.send(new InvokeCommand({ FunctionName: 'od', Payload: JSON.stringify(event) }));
    const text = Buffer.from(r.Payload ?? []).toString();
    assert.equal(r.FunctionError, undefined, text);
    return JSON.parse(text);
  };

  test("the first start records init's files (modules and files read), not the handler's, and stores their bundle", async () => {
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'od', Runtime: 'nodejs22.x', Handler: 'index.handler', Role: ROLE, Timeout: 120, Code: { ZipFile: pkg(files) } }));
    assert.equal(await invoke({}), 'hello on demand');
    const { codeSha256 } = (await t.thaw.platform.store.getFunction('od'))!.latest.config;
    await waitFor('the init set', async () => (await t.thaw.platform.store.getInitSet(codeSha256, 'index.handler')) !== null);
    const set = (await t.thaw.platform.store.getInitSet(codeSha256, 'index.handler'))!;
    assert.deepEqual([...set.files].sort(), ['config.json', 'index.js', 'lib/init.js', 'package.json']);
    assert.equal(await t.thaw.platform.blobs.has(set.bundleSha256), true, 'the bundle is in the origin');
    assert.ok(set.bytes < 2000, `${set.bytes} bytes`);
  });

  test('a cold start on an empty cache answers from the bundle while the package is still crossing the link', async () => {
    const { codeSha256 } = (await t.thaw.platform.store.getFunction('od'))!.latest.config;
    const zipBytes = (await t.thaw.platform.blobs.get(codeSha256)).length;
    // Another node, as far as code goes: no instance, no tree.
    await t.restart();
    await rm(join(t.cacheDir, 'code', treeKey(codeSha256)), { recursive: true, force: true });
    const cache = t.thaw.platform.cache;
    const seen: FillState['state'][] = [];
    cache.onFill = (f) => { if (f.sha256 === codeSha256) seen.push(f.state); };
    link.set({ bytesPerSecond: SLOW, latencyMs: 20 });
    const down0 = link.bytes.down;

    assert.equal(await invoke({}), 'hello on demand');
    // The order of events: the answer came while the fill was running, before the package had crossed.
    assert.deepEqual(seen, ['filling'], 'the fill had started and not finished when the answer came');
    assert.ok(link.bytes.down - down0 < zipBytes, `only ${link.bytes.down - down0} of the package's ${zipBytes} bytes had crossed`);
    assert.equal(cache.stats().onDemand.filling, 1);
    assert.ok(existsSync(join(cache.pathOf(codeSha256), FILLING_MARKER)));

    // A file init did not read, asked for while the tree fills: the runtime waits for it and reads it whole.
    assert.equal(await invoke({ read: 'late' }), files['data/late.txt']);
    // A module required after init, likewise (through the resolver, not fs).
    assert.equal(await invoke({ read: 'require' }), 'required after init');
    assert.equal(await invoke({ read: 'import' }), 'imported after init');
    // A file the package does not have: ENOENT, and only once the fill is over (not before it could know).
    assert.deepEqual(await invoke({ read: 'missing' }), { code: 'ENOENT', exists: false });
    assert.equal(seen.at(-1), 'done', `the fill was over when ENOENT came (${seen.join(', ')})`);

    const tree = cache.pathOf(codeSha256);
    await waitFor('the fill to be recorded', () => cache.stats().onDemand.filling === 0);
    assert.equal(existsSync(join(tree, FILLING_MARKER)), false, 'the marker is gone');
    assert.equal(readFileSync(join(tree, 'blob/noise.txt'), 'utf8'), files['blob/noise.txt'], 'the tree is the whole package');
    link.set({ bytesPerSecond: FAST, latencyMs: 0 });
  });

  test('deleting the function removes its init set and the bundle from the origin with its package', async () => {
    const { codeSha256 } = (await t.thaw.platform.store.getFunction('od'))!.latest.config;
    const set = (await t.thaw.platform.store.getInitSet(codeSha256, 'index.handler'))!;
    await t.lambda.send(new DeleteFunctionCommand({ FunctionName: 'od' }));
    assert.equal(await t.thaw.platform.store.getInitSet(codeSha256, 'index.handler'), null);
    assert.equal(await t.thaw.platform.blobs.has(set.bundleSha256), false);
    assert.equal(await t.thaw.platform.blobs.has(codeSha256), false);
  });
});

test('the runtime may report the files init read; the host refuses a malformed report', () => {
  assert.deepEqual(checkRuntimeMessage({ type: 'initDone', durationMs: 3, files: ['index.js'] }), { type: 'initDone', durationMs: 3, files: ['index.js'] });
  assert.throws(() => checkRuntimeMessage({ type: 'initDone', durationMs: 3, files: [1] }), /malformed "initDone"/);
  assert.throws(() => checkRuntimeMessage({ type: 'initDone', durationMs: 3, files: [''] }), /malformed/);
  assert.throws(() => checkRuntimeMessage({ type: 'initDone', durationMs: 3, files: Array(MAX_INIT_FILES + 1).fill('a') }), /malformed/);
  assert.throws(() => checkRuntimeMessage({ type: 'initDone', durationMs: 3, files: 'index.js' }), /malformed/);
});

describe('CodeCache on-demand: a partial tree and its fill', () => {
  let s3: RunningS3;
  let origin: S3Origin;
  let root: string;
  before(async () => {
    s3 = await startS3();
    origin = new S3Origin(parseS3Url(`s3://${s3.bucket}`), new S3Client(s3ClientConfig(s3.env)), s3.endpoint);
    root = mkdtempSync('/dev/shm/thaw-ondemand-');
  });
  after(async () => {
    await s3?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('callers that do not accept a partial tree wait for the whole; a missing bundle falls back to the whole package', async () => {
    const limits = defaultPackageLimits;
    const ingested = await ingestPackage({ bytes: pkg(files), handler: 'index.handler', blobs: origin, cache: new CodeCache(join(root, 'deployer')), limits, images: false });
    const bundle = (await buildInitBundle(ingested.dir, ['index.js', '../etc/passwd', '/etc/passwd', 'lib/init.js', 'nope.js']))!;
    assert.deepEqual(bundle.files, ['index.js', 'lib/init.js', 'package.json'], 'paths out of the tree and missing files are dropped; package.json on the way is added');
    const put = await origin.put(bundle.zip);
    const set = { codeSha256: ingested.sha256, handler: 'index.handler', bundleSha256: put.sha256, files: bundle.files, bytes: bundle.bytes };

    const cache = new CodeCache(join(root, 'node'));
    const partial = cache.ensure(ingested.sha256, origin, limits, undefined, set);
    const whole = cache.ensure(ingested.sha256, origin, limits);
    const p = await partial;
    assert.equal(p.partial, true);
    const w = await whole;
    assert.equal(w.partial, undefined, 'a caller without the set gets the whole tree');
    assert.equal(existsSync(join(w.dir, FILLING_MARKER)), false);
    assert.equal(readFileSync(join(w.dir, 'data/late.txt'), 'utf8'), files['data/late.txt']);
    assert.equal((await cache.ensure(ingested.sha256, origin, limits, undefined, set)).hit, true, 'then a hit');

    const other = new CodeCache(join(root, 'other'));
    const fallback = await other.ensure(ingested.sha256, origin, limits, undefined, { ...set, bundleSha256: 'f'.repeat(64) });
    assert.equal(fallback.partial, undefined, 'no bundle: the whole package');
    assert.equal(readFileSync(join(fallback.dir, 'data/late.txt'), 'utf8'), files['data/late.txt']);
  });
});
