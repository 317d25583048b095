// Package images end to end: a deploy stores the compiled tree's squashfs image in the origin beside the
// package; a node without the tree mounts the image (kernel loop device through the mount helper as root, or
// squashfuse) read-only, nosuid and nodev instead of unpacking, once for every instance; eviction, removal,
// stop and the next start after a crash unmount it; a mount that fails and a package without an image are
// unpacked as before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateFunctionCommand, DeleteFunctionCommand, GetFunctionConfigurationCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { BlobStore, CodeCache, S3Origin, canBuildImages, treeKey, defaultPackageLimits, fuseImageMounts, ingestPackage, parseS3Url, s3ClientConfig, type ImageMounts } from '../src/codestore/index.ts';
import { Mounter, probeNamespaces } from '../src/sandbox/index.ts';
import { getJson, invokeHttp, pkg, startTestThaw, thawUp, type TestThaw } from './helpers.ts';
import { startS3, type RunningS3 } from './s3.ts';
import { startThrottle, type Throttle } from './throttle.ts';

const ROLE = 'arn:aws:iam::000000000000:role/thaw';
const noBuild = canBuildImages() ? undefined : 'mksquashfs is missing (to enable: apt-get install squashfs-tools)';
const isRoot = process.getuid?.() === 0;
const kernelSkip = noBuild ?? (!isRoot ? 'kernel image mounts need root (run the tests as root)' : !existsSync('/dev/loop-control') ? 'no /dev/loop-control here (load the loop module: modprobe loop)' : undefined);
const fuse = fuseImageMounts();
const fuseSkip = noBuild ?? (fuse ? undefined : 'squashfuse or /dev/fuse is missing (to enable: apt-get install squashfuse fuse3)');

/** Mount points at or below dir, from the kernel's own table. */
const mountsUnder = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[4] === dir || f[4]?.startsWith(dir + '/'));

const files = {
  'index.mjs': "import { readFileSync } from 'node:fs';\nexport const handler = async () => readFileSync(new URL('./data/late.txt', import.meta.url), 'utf8');\n",
  'data/late.txt': 'read by the handler, not by init',
  'lib/big.js': `module.exports = ${JSON.stringify('x'.repeat(200_000))};`,
};

const kinds: [string, () => { mounts: ImageMounts; close(): void }, string | undefined][] = [
  ['kernel', () => { const m = new Mounter(); return { mounts: { kind: 'kernel', mount: (i, d) => m.loop(i, d, 'squashfs'), umount: (d) => m.umount(d) }, close: () => m.close() }; }, kernelSkip],
  ['fuse', () => ({ mounts: fuse!, close() {} }), fuseSkip],
];

for (const [kind, make, skip] of kinds) {
  describe(`CodeCache with ${kind} image mounts`, { skip }, () => {
    let root: string;
    let blobs: BlobStore;
    let helper: { mounts: ImageMounts; close(): void };
    let ingested: Awaited<ReturnType<typeof ingestPackage>>;
    const limits = defaultPackageLimits;

    before(async () => {
      root = mkdtempSync(`/dev/shm/thaw-images-${kind}-`);
      blobs = new BlobStore(join(root, 'blobs'));
      helper = make();
      // The deploying node: unpacks, builds the image, stores both.
      ingested = await ingestPackage({ bytes: pkg(files), handler: 'index.handler', blobs, cache: new CodeCache(join(root, 'deployer')), limits });
    });
    after(async () => {
      for (const f of mountsUnder(root)) await helper.mounts.umount(f[4]).catch(() => {});
      helper.close();
      rmSync(root, { recursive: true, force: true });
    });

    test('ingestPackage() stores the image of the tree in the origin beside the package', async () => {
      assert.ok(ingested.image, 'an image was built');
      assert.equal(ingested.image.format, 'squashfs');
      assert.ok(await blobs.has(ingested.image.sha256));
      assert.deepEqual((await blobs.list()).sort(), [ingested.sha256, ingested.image.sha256].sort());
    });

    test('a miss mounts the image read-only, nosuid, nodev at the tree path; every later lookup shares that mount', async () => {
      const dir = join(root, `node-${kind}`);
      const cache = new CodeCache(dir, { images: helper.mounts });
      try {
        const [a, b] = await Promise.all([cache.ensure(ingested.sha256, blobs, limits, ingested.image!), cache.ensure(ingested.sha256, blobs, limits, ingested.image!)]);
        assert.equal(a.mounted, true);
        assert.equal(a.dir, b.dir);
        assert.equal(readFileSync(join(a.dir, 'data/late.txt'), 'utf8'), files['data/late.txt']);
        const mounts = mountsUnder(dir);
        assert.equal(mounts.length, 1, 'one mount for the package, however many users');
        const opts = mounts[0][5].split(',');
        for (const o of ['ro', 'nosuid', 'nodev']) assert.ok(opts.includes(o), `mounted ${o} (options ${mounts[0][5]})`);
        assert.throws(() => writeFileSync(join(a.dir, 'data/late.txt'), 'changed'), /EROFS|EACCES|EPERM/);
        const hit = await cache.ensure(ingested.sha256, blobs, limits, ingested.image!);
        assert.deepEqual([hit.hit, hit.mounted], [true, true]);
        assert.equal(cache.stats().images.mounted, 1);
        await cache.remove(ingested.sha256);
        assert.equal(mountsUnder(dir).length, 0, 'removal unmounts');
        assert.equal(existsSync(a.dir), false);
        assert.equal(existsSync(`${a.dir}.sqsh`), false, 'and deletes the image file');
      } finally { await cache.close(); }
    });

    test('eviction unmounts; close() unmounts what is left', async () => {
      const dir = join(root, `evict-${kind}`);
      const other = await ingestPackage({ bytes: pkg({ 'index.mjs': 'export const handler = async () => 2;\n' }), handler: 'index.handler', blobs, cache: new CodeCache(join(root, 'deployer')), limits });
      // Room for one image: mounting the second evicts the first.
      const cache = new CodeCache(dir, { images: helper.mounts, maxBytes: Math.max(ingested.image!.size, other.image!.size) + 1 });
      try {
        const first = await cache.ensure(ingested.sha256, blobs, limits, ingested.image!);
        await cache.ensure(other.sha256, blobs, limits, other.image!);
        while (cache.stats().evictions === 0) await new Promise((r) => setImmediate(r));
        await waitFor(() => mountsUnder(dir).length === 1 && !existsSync(first.dir));
        assert.equal(cache.stats().images.mounted, 1);
      } finally { await cache.close(); }
      assert.equal(mountsUnder(dir).length, 0, 'close() unmounts');
    });

    test('the next start after a crash unmounts what the killed run left and mounts afresh', async () => {
      const dir = join(root, `crash-${kind}`);
      const killed = new CodeCache(dir, { images: helper.mounts });
      await killed.ensure(ingested.sha256, blobs, limits, ingested.image!);
      assert.equal(mountsUnder(dir).length, 1);
      // No close(): the run is gone. The next one on the same directory:
      const next = new CodeCache(dir, { images: helper.mounts });
      try {
        assert.equal(await next.lookup(ingested.sha256), null, 'a leftover mount is no hit');
        assert.equal(mountsUnder(dir).length, 0, 'the leftover mount is gone');
        const again = await next.ensure(ingested.sha256, blobs, limits, ingested.image!);
        assert.equal(again.mounted, true);
        assert.equal(readFileSync(join(again.dir, 'index.mjs'), 'utf8'), files['index.mjs']);
      } finally { await next.close(); }
    });

    test('a mount that fails, or a package without an image, is unpacked as before', async () => {
      const failing: ImageMounts = { kind: helper.mounts.kind, mount: async () => { throw new Error('no loop device left'); }, umount: helper.mounts.umount };
      const cache = new CodeCache(join(root, `fallback-${kind}`), { images: failing });
      const got = await cache.ensure(ingested.sha256, blobs, limits, ingested.image!);
      assert.equal(got.mounted, false);
      assert.equal(readFileSync(join(got.dir, 'data/late.txt'), 'utf8'), files['data/late.txt']);
      assert.deepEqual([cache.stats().images.failures, cache.stats().images.lastError], [1, 'no loop device left']);
      const plain = new CodeCache(join(root, `plain-${kind}`), { images: helper.mounts });
      const old = await plain.ensure(ingested.sha256, blobs, limits);
      assert.equal(old.mounted, false, 'no image named: unpacked');
      assert.equal(mountsUnder(join(root, `plain-${kind}`)).length, 0);
    });
  });
}

async function waitFor(check: () => boolean) {
  while (!check()) await new Promise((r) => setTimeout(r, 10));
}

// Confined (namespaces, root): kernel mounts through the mount helper; the process driver: squashfuse.
const platforms: ['namespaces' | 'process', string | undefined][] = [
  ['namespaces', noBuild ?? (probeNamespaces().ok ? kernelSkip : 'the namespaces driver is unavailable here (run as root with bubblewrap)')],
  ['process', fuseSkip],
];
for (const [sandbox, skip] of platforms) describe(`a platform (${sandbox} driver) mounts a version's image on a node without its tree`, { skip }, () => {
  let t: TestThaw;
  // Every package gets an image here, however small (the default leaves trees under 1 MB unpacked).
  before(async () => { t = await startTestThaw({ sandbox, imageMinKb: 0 }); });
  after(async () => {
    await t.stop();
    assert.deepEqual(mountsUnder(t.cacheDir), [], 'no mount outlives the server');
  });

  test('the version names its image; a cold start on an empty cache mounts it and the handler reads a file init did not', async () => {
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'imaged', Runtime: 'nodejs22.x', Handler: 'index.handler', Role: ROLE, Code: { ZipFile: pkg(files) } }));
    const cfg = await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'imaged' }));
    const latest = (await t.thaw.platform.store.getFunction('imaged'))!.latest;
    assert.ok(latest.config.codeImage, 'the version names its image');
    assert.equal(Buffer.from(cfg.CodeSha256!, 'base64').toString('hex'), latest.config.codeSha256);
    // Another node, as far as the code cache goes: the same origin, the deployed tree not in the cache.
    await rm(join(t.cacheDir, 'code', treeKey(latest.config.codeSha256)), { recursive: true, force: true });
    const r = await t.lambda.send(new InvokeCommand({ FunctionName: 'imaged' }));
    assert.equal(r.FunctionError, undefined, Buffer.from(r.Payload ?? []).toString());
    assert.equal(JSON.parse(Buffer.from(r.Payload!).toString()), files['data/late.txt']);
    const node = await getJson(`${t.url}/thaw/v1/node`);
    assert.equal(node.codeCache.images.mounts, sandbox === 'namespaces' ? 'kernel' : 'fuse');
    assert.equal(node.codeCache.images.mounted, 1, JSON.stringify(node.codeCache.images));
    assert.equal(mountsUnder(join(t.cacheDir, 'code')).length, 1);
  });

  test('deleting the function removes its image from the origin with its package, and unmounts it', async () => {
    const { codeImage, codeSha256 } = (await t.thaw.platform.store.getFunction('imaged'))!.latest.config;
    await t.lambda.send(new DeleteFunctionCommand({ FunctionName: 'imaged' }));
    assert.equal(await t.thaw.platform.blobs.has(codeSha256), false);
    assert.equal(await t.thaw.platform.blobs.has(codeImage!.sha256), false);
    assert.equal(mountsUnder(join(t.cacheDir, 'code')).length, 0);
  });
});

describe('an image from a remote origin behind a slow link (S3 server, throttled)', { skip: noBuild ?? (fuse || kernelSkip === undefined ? undefined : fuseSkip) }, () => {
  let s3: RunningS3;
  let link: Throttle;
  let origin: S3Origin;
  let root: string;
  const BPS = 2 * 1024 * 1024;
  before(async () => {
    s3 = await startS3();
    link = await startThrottle({ port: Number(new URL(s3.endpoint).port) }, { bytesPerSecond: BPS, latencyMs: 20 });
    const env = { ...s3.env, AWS_ENDPOINT_URL_S3: link.endpoint };
    origin = new S3Origin(parseS3Url(`s3://${s3.bucket}`), new S3Client(s3ClientConfig(env)), link.endpoint);
    root = mkdtempSync('/dev/shm/thaw-images-remote-');
  });
  after(async () => {
    await link?.stop();
    await s3?.stop();
    if (root) {
      for (const f of mountsUnder(root)) execUmount(f[4]);
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('the throttled link keeps every byte in order both ways (a 3 MB object stored and read back, checked by its hash)', async () => {
    const bytes = randomBytes(3 * 1024 * 1024);
    const put = await origin.put(bytes);
    assert.ok((await origin.get(put.sha256)).equals(bytes));
  });

  test('the image crosses the link byte for byte and is mounted; the link holds it to its bandwidth', async () => {
    // Incompressible content, so the image is about as big as the files.
    const noise = Array.from({ length: 8 }, (_, i) => [`lib/n${i}.bin`, randomBytes(64 * 1024).toString('base64')]);
    const ingested = await ingestPackage({ bytes: pkg({ ...files, ...Object.fromEntries(noise) }), handler: 'index.handler', blobs: origin, cache: new CodeCache(join(root, 'deployer')), limits: defaultPackageLimits });
    assert.ok(ingested.image);
    const helper = kernelSkip === undefined ? kinds[0][1]() : kinds[1][1]();
    const cache = new CodeCache(join(root, 'node'), { images: helper.mounts });
    try {
      const before = link.bytes.down;
      const t0 = performance.now();
      const got = await cache.ensure(ingested.sha256, origin, defaultPackageLimits, ingested.image);
      const took = performance.now() - t0;
      assert.equal(got.mounted, true, JSON.stringify(cache.stats().images));
      for (const [f, body] of noise) assert.equal(readFileSync(join(got.dir, f), 'utf8'), body);
      assert.ok(link.bytes.down - before >= ingested.image.size, 'the image came over the throttled link');
      // A lower bound only (a loaded machine is slower, never faster): the bytes cannot beat the link.
      assert.ok(took >= (ingested.image.size / BPS) * 1000, `took ${took} ms for ${ingested.image.size} bytes at ${BPS} B/s`);
    } finally {
      await cache.close();
      helper.close();
    }
  });
});

function execUmount(dir: string) {
  try { execFileSync('umount', ['-l', dir]); } catch { /* gone */ }
}

describe('thaw up killed with SIGKILL while an image is mounted', { skip: noBuild ?? (probeNamespaces().ok ? kernelSkip : 'the namespaces driver is unavailable here (run as root with bubblewrap)') }, () => {
  let dataDir = '';
  let cacheDir = '';
  const children: ChildProcess[] = [];
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'thaw-images-crash-data-'));
    cacheDir = mkdtempSync('/dev/shm/thaw-images-crash-cache-');
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) { c.kill('SIGTERM'); await new Promise((r) => c.once('exit', r)); }
    for (const f of mountsUnder(cacheDir)) execUmount(f[4]);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  });

  test('the next thaw up unmounts the image the killed run left, and mounts it again on demand', async () => {
    const first = await thawUp(dataDir, cacheDir, ['--pool-size', '0', '--image-min-kb', '0']);
    children.push(first.child);
    assert.match(first.stderr(), /package images: a package is mounted read-only from its image \(loop device\)/);
    const lambda = new LambdaClient({ endpoint: first.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
    const created = await lambda.send(new CreateFunctionCommand({ FunctionName: 'imaged', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, Code: { ZipFile: pkg(files) } }));
    lambda.destroy();
    rmSync(join(cacheDir, 'code', treeKey(Buffer.from(created.CodeSha256!, 'base64').toString('hex'))), { recursive: true, force: true });
    assert.equal((await invokeHttp(first.url, 'imaged')).status, 200);
    assert.equal(mountsUnder(join(cacheDir, 'code')).length, 1, 'the image is mounted');

    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    assert.equal(mountsUnder(join(cacheDir, 'code')).length, 1, 'a killed run leaves its mount');

    const next = await thawUp(dataDir, cacheDir, ['--pool-size', '0']);
    children.push(next.child);
    assert.equal(mountsUnder(join(cacheDir, 'code')).length, 0, 'the restart unmounted it before serving');
    const r = await invokeHttp(next.url, 'imaged');
    assert.equal(r.status, 200);
    assert.equal(r.json, files['data/late.txt']);
    assert.equal((await getJson(`${next.url}/thaw/v1/node`)).codeCache.images.mounted, 1);
    next.child.kill('SIGTERM');
    await new Promise((r) => next.child.once('exit', r));
    assert.equal(mountsUnder(cacheDir).length, 0, 'a stopped server leaves no mount');
  });
});
