// Fault injection: the server killed with SIGKILL in the middle of a deploy (a large package on its way in),
// of publishes and alias updates, and of a snapshot build. After a restart the state is consistent: a
// function is wholly there or not at all, versions and aliases agree, no half-written file is left, and an
// interrupted snapshot build is started again and finishes. Real `thaw up` processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, fnSource, getJson, pkg, thawUp } from './helpers.ts';
import { zipEntries } from '../src/codestore/index.ts';


describe('the server killed mid-operation', () => {
  let dataDir = '';
  let cacheDir = '';
  let server: ChildProcess | null = null;
  const up = async () => {
    const s = await thawUp(dataDir, cacheDir, ['--pool-size', '0']);
    server = s.child;
    return s;
  };

  const kill = async (c: ChildProcess) => { c.kill('SIGKILL'); if (c.exitCode === null && c.signalCode === null) await new Promise((r) => c.once('exit', r)); };
  /** Files a write in progress leaves: temporaries of the code cache, the blob store and snapshots. */
  const temporaries = () => [join(cacheDir, 'code'), join(dataDir, 'blobs'), join(cacheDir, 'snapshots'), join(dataDir, 'snapshots')]
    .flatMap((d) => (existsSync(d) ? readdirSync(d, { recursive: true }).map(String) : []))
    .filter((f) => /\.tmp-|(^|\/)\.build-/.test(f));

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'thaw-faults-data-'));
    cacheDir = await mkdtemp('/dev/shm/thaw-faults-cache-');
  });
  after(async () => {
    // The last server was killed: one more start and a clean stop takes down what it left mounted.
    if (server && (server.exitCode !== null || server.signalCode !== null)) await up();
    if (server && server.exitCode === null && server.signalCode === null) { server.kill('SIGTERM'); await new Promise((r) => server!.once('exit', r)); }
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  });

  test('during deploys of a large package: each function is wholly there or absent, and no temporary is left', { timeout: 300_000 }, async (t) => {
    const outcomes: string[] = [];
    // Incompressible files, so the server spends a while hashing, checking and extracting.
    const big = zipEntries([{ path: 'index.mjs', data: Buffer.from('export const handler = async () => "big";') }, ...Array.from({ length: 40 }, (_, i) => ({ path: `blob/${i}.bin`, data: randomBytes(400_000) }))]);
    const body = JSON.stringify({ FunctionName: 'x', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: big.toString('base64') } });
    for (let round = 0; round < 4; round++) {
      const s = await up();
      const name = `big${round}`;
      const sent = fetch(`${s.url}/2015-03-31/functions`, { method: 'POST', body: body.replace('"x"', `"${name}"`) }).catch(() => null);
      // Kill at a different moment each round: while the package is being extracted (the first write
      // appears), at once, or well after.
      if (round < 2) await eventually(async () => temporaries().length > 0 || null, 'the extraction to start writing', 30_000, 1).catch(() => null);
      else await new Promise((r) => setTimeout(r, [0, 0, 20, 3000][round]));
      await kill(s.child);
      await sent;
      const again = await up();
      const fn = await fetch(`${again.url}/2015-03-31/functions/${name}`);
      outcomes.push(`${name}: ${fn.status === 200 ? 'deployed' : 'absent'}${/removed \d+ unfinished/.test(again.stderr()) ? ', temporaries of the killed run removed at start' : ''}`);
      if (fn.status === 200) {
        const r = await fetch(`${again.url}/2015-03-31/functions/${name}/invocations`, { method: 'POST', body: '{}' });
        assert.equal(await r.text(), '"big"', `${name} exists, so it runs`);
      } else {
        assert.equal(fn.status, 404, `${name}: ${fn.status}`);
      }
      assert.deepEqual(temporaries(), [], 'no half-written package is left');
      await kill(again.child);
    }
    t.diagnostic(outcomes.join('; '));
  });

  test('during publishes and alias updates: versions and aliases agree after a restart', { timeout: 300_000 }, async () => {
    let s = await up();
    await fetch(`${s.url}/2015-03-31/functions`, { method: 'POST', body: JSON.stringify({ FunctionName: 'pub', Runtime: 'nodejs24', Handler: 'index.handler', Publish: true, Code: { ZipFile: pkg({ 'index.mjs': fnSource('return 1;') }).toString('base64') } }) });
    await fetch(`${s.url}/2015-03-31/functions/pub/aliases`, { method: 'POST', body: JSON.stringify({ Name: 'live', FunctionVersion: '1' }) });
    for (let round = 0; round < 5; round++) {
      const ops = (async () => {
        for (let i = 0; i < 20; i++) {
          const u = await fetch(`${s.url}/2015-03-31/functions/pub/configuration`, { method: 'PUT', body: JSON.stringify({ Description: `r${round}-${i}` }) }).catch(() => null);
          if (!u) return;
          const p = await fetch(`${s.url}/2015-03-31/functions/pub/versions`, { method: 'POST', body: '{}' }).catch(() => null);
          if (!p || !p.ok) return;
          const v = ((await p.json()) as { Version: string }).Version;
          await fetch(`${s.url}/2015-03-31/functions/pub/aliases/live`, { method: 'PUT', body: JSON.stringify({ FunctionVersion: v }) }).catch(() => null);
        }
      })();
      await new Promise((r) => setTimeout(r, 100 + 80 * round));
      await kill(s.child);
      await ops;
      s = await up();
      const versions = (await getJson(`${s.url}/2015-03-31/functions/pub/versions`)).Versions.map((v: { Version: string }) => v.Version).filter((v: string) => v !== '$LATEST').map(Number);
      assert.deepEqual(versions, versions.map((_: number, i: number) => i + 1), 'published versions are 1..n with no gap or duplicate');
      const alias = await getJson(`${s.url}/2015-03-31/functions/pub/aliases/live`);
      assert.ok(versions.includes(Number(alias.FunctionVersion)), `the alias points at a version that exists (${alias.FunctionVersion})`);
      const r = await fetch(`${s.url}/2015-03-31/functions/pub/invocations?Qualifier=live`, { method: 'POST', body: '{}' });
      assert.equal(r.status, 200);
    }
    await kill(s.child);
  });

  test('during a snapshot build: the build starts again after the restart and finishes; its temporaries are gone', { timeout: 300_000 }, async () => {
    let s = await up();
    // An init of a busy second and a half, so the kill lands while the build runs.
    await fetch(`${s.url}/2015-03-31/functions`, { method: 'POST', body: JSON.stringify({ FunctionName: 'snap', Runtime: 'nodejs24', Handler: 'index.handler', Publish: true, Code: { ZipFile: pkg({ 'index.mjs': 'const until = Date.now() + 1500; while (Date.now() < until);\nexport const handler = async () => "restored?";' }).toString('base64') } }) });
    await eventually(async () => (await getJson(`${s.url}/thaw/v1/functions/snap/snapshots`)).snapshots.some((x: { status: string; progress?: { stage: string } }) => x.progress?.stage === 'initializing') || null, 'the build to run', 60_000);
    await kill(s.child);
    s = await up();
    const snap = await eventually(async () => (await getJson(`${s.url}/thaw/v1/functions/snap/snapshots`)).snapshots.find((x: { status: string }) => x.status !== 'pending'), 'the build to finish after the restart', 120_000);
    assert.equal(snap.status, 'ready', snap.reason);
    assert.deepEqual(temporaries(), []);
    await kill(s.child);
  });
});

describe('the data dir runs out of space during a deploy', { skip: process.getuid?.() === 0 ? false : 'needs root to mount a small tmpfs as the data dir (run the tests as root)' }, () => {
  let dataDir = '';
  let cacheDir = '';
  let stop: (() => Promise<void>) | null = null;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'thaw-full-data-'));
    cacheDir = await mkdtemp('/dev/shm/thaw-full-cache-');
    const { execFileSync } = await import('node:child_process');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'thaw-test-full', dataDir]);
  });
  after(async () => {
    await stop?.();
    const { execFileSync } = await import('node:child_process');
    try { execFileSync('umount', [dataDir]); } catch { /* not mounted */ }
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  });

  test('the deploy is refused with THAW_E_STORAGE_FULL, nothing of it is left, and the platform serves on', { timeout: 120_000 }, async () => {
    const { startThaw } = await import('../src/gateway/index.ts');
    const t = await startThaw({ port: 0, dataDir, cacheDir, poolSize: 0, snapshots: false });
    stop = () => t.close();
    const small = await fetch(`${t.url}/2015-03-31/functions`, { method: 'POST', body: JSON.stringify({ FunctionName: 'small', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return "small";') }).toString('base64') } }) });
    assert.equal(small.status, 201);
    const blobsBefore = readdirSync(join(dataDir, 'blobs'), { recursive: true }).map(String).sort();
    // Incompressible: a 14 MB package cannot fit in what is left of 12 MB.
    const big = zipEntries([{ path: 'index.mjs', data: Buffer.from('export const handler = async () => 1;') }, { path: 'data.bin', data: randomBytes(14 * 1024 * 1024) }]);
    const r = await fetch(`${t.url}/2015-03-31/functions`, { method: 'POST', body: JSON.stringify({ FunctionName: 'big', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: big.toString('base64') } }) });
    const body = await r.json() as { code: string; message: string };
    assert.equal(r.status, 507, JSON.stringify(body));
    assert.equal(body.code, 'THAW_E_STORAGE_FULL');
    assert.ok(!body.message.includes(dataDir), 'no server path in the message');
    assert.equal((await fetch(`${t.url}/2015-03-31/functions/big`)).status, 404, 'no function was created');
    assert.deepEqual(readdirSync(join(dataDir, 'blobs'), { recursive: true }).map(String).sort(), blobsBefore, 'no blob or temporary of it is left');
    assert.deepEqual(readdirSync(join(cacheDir, 'code')).filter((f) => f.includes('.tmp-')), [], 'no half-extracted tree is left');
    const again = await fetch(`${t.url}/2015-03-31/functions/small/invocations`, { method: 'POST', body: '{}' });
    assert.equal(await again.text(), '"small"', 'the platform serves on');
  });
});

describe('the store is locked by another writer during a deploy', () => {
  let dataDir = '';
  let cacheDir = '';
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'thaw-busy-data-'));
    cacheDir = await mkdtemp('/dev/shm/thaw-busy-cache-');
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  });

  test('the deploy waits out the busy timeout, then is refused with THAW_E_STORE_BUSY and leaves no package behind', { timeout: 120_000 }, async () => {
    const { startThaw } = await import('../src/gateway/index.ts');
    const { DatabaseSync } = await import('node:sqlite');
    const t = await startThaw({ port: 0, dataDir, cacheDir, poolSize: 0, snapshots: false });
    try {
      const blobs = () => (existsSync(join(dataDir, 'blobs')) ? readdirSync(join(dataDir, 'blobs'), { recursive: true }).map(String).sort() : []);
      const code = () => (existsSync(join(cacheDir, 'code')) ? readdirSync(join(cacheDir, 'code')).sort() : []);
      const before = { blobs: blobs(), code: code() };
      // Another writer (a backup tool, say) holds the write lock past the store's 5 s busy timeout.
      const other = new DatabaseSync(join(dataDir, 'thaw.db'));
      other.exec('BEGIN IMMEDIATE');
      let r: Response;
      try {
        r = await fetch(`${t.url}/2015-03-31/functions`, { method: 'POST', body: JSON.stringify({ FunctionName: 'locked', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return "here";'), 'lib.js': 'x'.repeat(1000) }).toString('base64') } }) });
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      const body = await r.json() as { code: string };
      assert.equal(r.status, 503, JSON.stringify(body));
      assert.equal(body.code, 'THAW_E_STORE_BUSY');
      assert.deepEqual({ blobs: blobs(), code: code() }, before, 'the package was rolled back: no blob, no unpacked tree');
      // The lock gone, the same deploy succeeds.
      const again = await fetch(`${t.url}/2015-03-31/functions`, { method: 'POST', body: JSON.stringify({ FunctionName: 'locked', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return "here";') }).toString('base64') } }) });
      assert.equal(again.status, 201);
    } finally {
      await t.close();
    }
  });
});
