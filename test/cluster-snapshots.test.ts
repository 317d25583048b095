// Snapshots in a real cluster on loopback: a control plane (`thaw up --no-agent`, on PostgreSQL where it is
// installed) and two agents (`thaw agent`), each a process of its own. A published version's snapshot is
// built once, by one agent, into the control plane's origin, its record kept by the control plane's store,
// and pushed to the other agent, whose cold starts then restore from it; deleting the function removes it
// everywhere (the origin's object, the records, each agent's decrypted copy).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateFunctionCommand, DeleteFunctionCommand, LambdaClient, PublishVersionCommand } from '@aws-sdk/client-lambda';
import { signRequest } from '../src/gateway/index.ts';
import { eventually, fnSource, pkg, processesUnder, thawUp } from './helpers.ts';
import { ROLE, mountsUnder, signed, startAgent, type AgentProc, type Key } from './cluster-helpers.ts';
import { startPostgres, type TestPostgres } from './postgres.ts';

/** Files under a directory, recursively (the snapshot origin's ab/<sha>.snap, an agent's decrypted copies). */
const filesUnder = (dir: string): string[] => existsSync(dir)
  ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
  : [];

describe('snapshots in a cluster of two agents', { timeout: 600_000 }, () => {
  let pg: TestPostgres | null = null;
  let storeNote = '';
  const dirs: string[] = [];
  let controlData = '';
  let control: { child: ChildProcess; url: string; stderr: () => string };
  let admin: Key;
  let agentKey: Key;
  let lambda: LambdaClient;
  const agents: AgentProc[] = [];
  const mkdir = async (prefix: string, shm = false) => { const d = await mkdtemp(shm ? `/dev/shm/${prefix}` : join(tmpdir(), prefix)); dirs.push(d); return d; };
  const cluster = async () => (await signed(`${control.url}/thaw/v1/cluster`, admin)).json() as Promise<any>;
  const records = async (fn: string) => ((await (await signed(`${control.url}/thaw/v1/functions/${fn}/snapshots`, admin)).json()) as any).snapshots as any[];
  const agentOf = (cwd: string) => agents.find((a) => cwd.startsWith(a.cacheDir))?.name ?? `unknown (${cwd})`;
  /** An invocation through the Lambda API, with how its instance started (x-thaw-start). */
  const invoke = async (fn: string, qualifier: string, payload: unknown) => {
    const r = await signed(`${control.url}/2015-03-31/functions/${fn}/invocations?Qualifier=${qualifier}`, admin, 'POST', payload);
    return { status: r.status, start: r.headers.get('x-thaw-start'), body: await r.json() as any };
  };

  before(async () => {
    const started = await startPostgres();
    const flags = ['--no-agent'];
    if ('skip' in started) storeNote = `on SQLite: ${started.skip}`;
    else { pg = started; flags.push('--store', pg.url); storeNote = 'on PostgreSQL'; }
    controlData = await mkdir('thaw-ctl-data-');
    control = await thawUp(controlData, await mkdir('thaw-ctl-cache-', true), flags);
    admin = await (await fetch(`${control.url}/thaw/v1/keys`, { method: 'POST', body: JSON.stringify({ Role: 'admin' }) })).json() as Key;
    agentKey = await (await signed(`${control.url}/thaw/v1/keys`, admin, 'POST', { Role: 'agent' })).json() as Key;
    assert.ok(agentKey.SecretAccessKey, JSON.stringify(agentKey));
    lambda = new LambdaClient({ endpoint: control.url, region: 'us-east-1', credentials: { accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey }, maxAttempts: 1 });
    for (const name of ['a1', 'a2']) agents.push(await startAgent(name, control.url, agentKey, await mkdir(`thaw-${name}-data-`), await mkdir(`thaw-${name}-cache-`, true)));
    await eventually(async () => (await cluster()).agents?.length === 2, 'two agents in the fleet');
  });

  after(async () => {
    lambda?.destroy();
    const procs = [...agents.map((a) => ({ child: a.child, exited: a.exited })), ...(control ? [{ child: control.child, exited: new Promise<void>((r) => control.child.exitCode !== null ? r() : control.child.once('exit', () => r())) }] : [])];
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    const left = (await Promise.all(agents.map((a) => processesUnder(a.cacheDir)))).flat();
    const mounted = agents.flatMap((a) => mountsUnder(a.cacheDir));
    for (const mp of mounted) spawnSync('fusermount3', ['-u', '-z', mp]);
    await pg?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    assert.deepEqual(left, [], 'instance processes outlived their agents');
    assert.deepEqual(mounted, [], 'package images stayed mounted after their agents stopped');
  });

  test('a published version is snapshotted once, pushed to both agents, and a cold start on the other agent restores', async (t) => {
    t.diagnostic(`control plane ${storeNote}`);
    // The agents got the control plane's snapshot key at join: one key decrypts what any agent built.
    const controlKey = readFileSync(join(controlData, 'keys', 'snapshot.key'), 'utf8').trim();
    for (const a of agents) assert.equal(readFileSync(join(a.dataDir, 'keys', 'snapshot.key'), 'utf8').trim(), controlKey, `agent ${a.name} holds the cluster's key`);

    const code = fnSource(`const table = globalThis.table ??= Array.from({ length: 20000 }, (_, i) => i * 2);\nif (event.ms) await new Promise((r) => setTimeout(r, event.ms));\nreturn { cwd: process.cwd(), size: table.length };`);
    await lambda.send(new CreateFunctionCommand({ FunctionName: 'snap', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, Timeout: 30, Code: { ZipFile: pkg({ 'index.mjs': code }) } }));
    await lambda.send(new PublishVersionCommand({ FunctionName: 'snap' }));

    // Built once, by one agent; its record is the control plane's; its encrypted file is in the control plane's origin.
    const rec = await eventually(async () => { const r = (await records('snap')).find((x) => x.version === '1'); return r && r.status !== 'pending' && r; }, 'the snapshot of snap:1', 120_000);
    assert.equal(rec.status, 'ready', rec.reason);
    const stored = filesUnder(join(controlData, 'snapshots'));
    assert.deepEqual(stored.map((f) => f.split('/').pop()), [`${rec.sha256}.snap`], 'the encrypted snapshot is in the control plane\'s origin');
    // Pushed: both agents hold it decrypted and say so in their heartbeats.
    const view = await eventually(async () => { const v = await cluster(); return v.agents.every((a: any) => a.snapshots.includes('snap@1')) && v; }, 'both agents to hold snap@1', 60_000);
    assert.equal(view.agents.length, 2);
    const fetched = agents.filter((a) => /snapshot of snap:1 fetched and decrypted/.test(a.stderr()));
    assert.equal(fetched.length, 1, `exactly one agent fetched the snapshot another built (stderr: ${agents.map((a) => a.stderr()).join('\n---\n')})`);
    for (const a of agents) assert.equal(filesUnder(join(a.cacheDir, 'snapshots')).filter((f) => f.endsWith(`${rec.sha256}.blob`)).length, 1, `agent ${a.name} holds the decrypted copy`);
    // No agent built a second one: one record, one encrypted object.
    assert.equal((await records('snap')).length, 1);

    // Two concurrent invocations: placement prefers the agents holding the snapshot, one each (the first is busy).
    const [x, y] = await Promise.all([invoke('snap', '1', { ms: 2000 }), new Promise((r) => setTimeout(r, 300)).then(() => invoke('snap', '1', { ms: 2000 }))]);
    for (const r of [x, y]) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.size, 20000, JSON.stringify(r));
      assert.equal(r.start, 'restored', `a cold start on ${agentOf(r.body.cwd)} restored from the cluster's snapshot`);
    }
    assert.deepEqual([agentOf(x.body.cwd), agentOf(y.body.cwd)].sort(), ['a1', 'a2'], 'each agent ran one');
    assert.ok((await cluster()).placements.restorable >= 2, 'placed as restorable');
  });

  test('deleting the function removes its snapshot everywhere: the origin\'s object, the records, the agents\' copies', async () => {
    const rec = (await records('snap')).find((x) => x.version === '1');
    assert.ok(rec?.sha256);
    await lambda.send(new DeleteFunctionCommand({ FunctionName: 'snap' }));
    await eventually(async () => filesUnder(join(controlData, 'snapshots')).length === 0, 'the origin\'s object to go');
    await eventually(async () => agents.every((a) => !filesUnder(join(a.cacheDir, 'snapshots')).some((f) => f.endsWith('.blob'))), 'the agents\' decrypted copies to go');
    await eventually(async () => (await cluster()).agents.every((a: any) => !a.snapshots.includes('snap@1')), 'the heartbeats to stop advertising it');
    const after = await signed(`${control.url}/thaw/v1/functions/snap/snapshots`, admin);
    const body = await after.json() as any;
    assert.ok(after.status === 404 || body.snapshots?.length === 0, JSON.stringify(body));
  });

  test('a snapshot an agent sends under the wrong hash, a malformed report, or a report for a deleted version are refused and change nothing', async () => {
    const bytes = Buffer.from('THAWSNP1 not really a snapshot');
    const wrong = 'f'.repeat(64);
    const u = new URL(`${control.url}/thaw/v1/cluster/snapshots/blobs/${wrong}`);
    const headers = await signRequest({ method: 'PUT', url: u, headers: {}, body: bytes, accessKeyId: agentKey.AccessKeyId, secretAccessKey: agentKey.SecretAccessKey, region: 'us-east-1' });
    const put = await fetch(u, { method: 'PUT', headers, body: bytes });
    assert.equal(put.status, 400);
    assert.equal((await put.json() as any).code, 'THAW_E_CLUSTER_MESSAGE_INVALID');
    assert.deepEqual(filesUnder(join(controlData, 'snapshots')), [], 'nothing stored');
    // A developer key may not use the cluster's snapshot routes at all.
    const developer = await (await signed(`${control.url}/thaw/v1/keys`, admin, 'POST', { Role: 'developer' })).json() as Key;
    const asDeveloper = await signed(`${control.url}/thaw/v1/cluster/snapshots/records`, developer, 'POST', {});
    assert.equal(asDeveloper.status, 403);

    const record = { functionName: 'snap', version: '1', status: 'ready', reason: null, sha256: wrong, sizeBytes: 10, buildMs: 1, updatedAt: Date.now() };
    const malformed = await signed(`${control.url}/thaw/v1/cluster/snapshots/records`, agentKey, 'POST', { agent: 'a1', record: { ...record, sha256: 'nope' } });
    assert.equal(malformed.status, 400);
    assert.equal((await malformed.json() as any).code, 'THAW_E_CLUSTER_MESSAGE_INVALID');
    // The function was deleted (above): its report is refused, and no record appears.
    const gone = await signed(`${control.url}/thaw/v1/cluster/snapshots/records`, agentKey, 'POST', { agent: 'a1', record });
    assert.equal(gone.status, 404, await gone.clone().text());
    assert.match((await gone.json() as any).code, /^THAW_E_/);
    assert.ok((await cluster()).agents.every((a: any) => a.snapshots.length === 0));
  });
});
