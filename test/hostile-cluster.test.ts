// The cluster attacked by an unlucky operator and a hostile party, with real processes on loopback: a
// control plane (`thaw up --no-agent`) and two agents (`thaw agent`). Malformed and absurd messages on every
// cluster route, an agent key used to hijack another agent's name, to forge telemetry, to claim packages
// it does not hold (serving wrong bytes); an agent stopped (SIGSTOP) with an invocation in flight and a
// reserved instance; the control plane restarted on its store; 200 invocations and a kill -9 of both agents.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  CreateFunctionCommand, DeleteProvisionedConcurrencyConfigCommand, GetProvisionedConcurrencyConfigCommand, InvokeCommand, LambdaClient,
  PublishVersionCommand, PutProvisionedConcurrencyConfigCommand,
} from '@aws-sdk/client-lambda';
import { eventually, fnSource, pkg, processesUnder, thawUp } from './helpers.ts';
import { ROLE, mountsUnder, signed, startAgent, type AgentProc, type Key } from './cluster-helpers.ts';

/** A port free now, for a control plane that must come back at the same address. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const heartbeatOf = (name: string, url: string, extra: Record<string, unknown> = {}) => ({
  name, url, capacity: { memoryBudgetMb: 1024, cpus: 1 }, instances: [], packages: [], busy: 0, ...extra,
});

describe('a cluster under attack', { timeout: 900_000 }, () => {
  const dirs: string[] = [];
  let port = 0;
  let ctlData = '';
  let ctlCache = '';
  let control: { child: ChildProcess; url: string; stderr: () => string };
  let admin: Key;
  let agentKey: Key;
  let lambda: LambdaClient;
  const agents: AgentProc[] = [];
  const servers: Server[] = [];
  const mkdir = async (prefix: string, shm = false) => { const d = await mkdtemp(shm ? `/dev/shm/${prefix}` : join(tmpdir(), prefix)); dirs.push(d); return d; };
  const exitedOf = (c: ChildProcess) => new Promise<void>((r) => c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()));

  const agentOf = (cwd: string) => agents.find((a) => cwd.startsWith(a.cacheDir))?.name ?? `unknown (${cwd})`;
  const cluster = async () => (await signed(`${control.url}/thaw/v1/cluster`, admin)).json() as Promise<any>;
  const invoke = async (name: string, payload: unknown, qualifier?: string) => {
    const r = await lambda.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from(JSON.stringify(payload)), Qualifier: qualifier }));
    return { status: r.StatusCode, error: r.FunctionError, body: r.Payload?.length ? JSON.parse(Buffer.from(r.Payload).toString()) : null };
  };
  const startControl = async () => {
    control = await thawUp(ctlData, ctlCache, ['--no-agent', '--port', String(port)]);
    lambda?.destroy();
    if (admin) lambda = new LambdaClient({ endpoint: control.url, region: 'us-east-1', credentials: { accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey }, maxAttempts: 1 });
  };

  before(async () => {
    port = await freePort();
    ctlData = await mkdir('thaw-hc-ctl-data-');
    ctlCache = await mkdir('thaw-hc-ctl-cache-', true);
    await startControl();
    admin = await (await fetch(`${control.url}/thaw/v1/keys`, { method: 'POST', body: JSON.stringify({ Role: 'admin' }) })).json() as Key;
    agentKey = await (await signed(`${control.url}/thaw/v1/keys`, admin, 'POST', { Role: 'agent' })).json() as Key;
    assert.ok(agentKey.SecretAccessKey, JSON.stringify(agentKey));
    lambda = new LambdaClient({ endpoint: control.url, region: 'us-east-1', credentials: { accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey }, maxAttempts: 1 });
    for (const name of ['h1', 'h2']) agents.push(await startAgent(name, control.url, agentKey, await mkdir(`thaw-${name}-data-`), await mkdir(`thaw-${name}-cache-`, true)));
    const hello = fnSource(`if (event.file) appendFileSync(event.file, process.cwd() + '\\n');\nif (event.ms) await new Promise((r) => setTimeout(r, event.ms));\nreturn { cwd: process.cwd(), pid: process.pid };`, "import { appendFileSync } from 'node:fs';");
    await lambda.send(new CreateFunctionCommand({ FunctionName: 'hello', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, Code: { ZipFile: pkg({ 'index.mjs': hello }) } }));
    await eventually(async () => (await cluster()).agents?.length === 2, 'both agents to join');
  });

  after(async () => {
    lambda?.destroy();
    for (const s of servers) s.close();
    for (const a of agents) { try { a.child.kill('SIGCONT'); } catch { /* gone */ } }
    const procs = [...agents.map((a) => ({ child: a.child, exited: a.exited })), ...(control ? [{ child: control.child, exited: exitedOf(control.child) }] : [])];
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    const left = (await Promise.all(agents.map((a) => processesUnder(a.cacheDir)))).flat();
    const mounted = agents.flatMap((a) => mountsUnder(a.cacheDir));
    for (const mp of mounted) spawnSync('fusermount3', ['-u', '-z', mp]);
    for (const pid of left) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    assert.deepEqual(left, [], 'instance processes outlived their agents');
    assert.deepEqual(mounted, [], 'package images stayed mounted after their agents stopped');
  });

  /** The fleet as it is, for "nothing changed" checks. */
  const fleetState = async () => { const v = await cluster(); return v.agents.map((a: any) => `${a.name} ${a.url}`).sort(); };

  test('malformed input on every cluster route: 4xx with a THAW_E_* code, and the fleet unchanged', async () => {
    const before = await fleetState();
    const cases: [string, string, unknown][] = [
      ['POST', '/thaw/v1/cluster/agents/evil', '{"name": '],
      ['POST', '/thaw/v1/cluster/agents/evil', '[1,2,3]'],
      ['POST', '/thaw/v1/cluster/agents/evil', { name: 'evil', url: 7, capacity: 'lots', instances: {}, packages: 'x', busy: '1' }],
      ['POST', '/thaw/v1/cluster/agents/evil', heartbeatOf('other', 'http://127.0.0.1:1')],
      ['POST', '/thaw/v1/cluster/agents/evil', 'x'.repeat(33 * 1024 * 1024)],
      ['POST', '/thaw/v1/cluster/telemetry', 'not json'],
      ['POST', '/thaw/v1/cluster/telemetry', { agent: 'h1', events: [{ channel: 'nope', event: {} }] }],
      ['POST', '/thaw/v1/cluster/telemetry', { agent: 'h1', events: 'many' }],
      ['POST', '/thaw/v1/cluster/calls', '{{'],
      ['POST', '/thaw/v1/cluster/calls', { callerInvocationId: 1, functionName: ['hello'], payload: null }],
      ['GET', '/thaw/v1/cluster/code/not-a-hash', undefined],
      ['GET', `/thaw/v1/cluster/code/${'0'.repeat(64)}`, undefined],
      ['PUT', `/thaw/v1/cluster/snapshots/blobs/${'0'.repeat(64)}`, 'bytes whose hash is another'],
      ['PUT', '/thaw/v1/cluster/snapshots/blobs/../../keys', 'x'],
      ['POST', '/thaw/v1/cluster/snapshots/records', '"just a string"'],
      ['POST', '/thaw/v1/cluster/snapshots/records', { agent: 'h1', record: { functionName: 'hello', version: '../1', status: 'ready' } }],
    ];
    for (const [method, path, body] of cases) {
      const res = await signed(`${control.url}${path}`, agentKey, method, body);
      const text = await res.text();
      const what = `${method} ${path} ${typeof body === 'string' ? body.slice(0, 40) : JSON.stringify(body)?.slice(0, 80)}`;
      assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status} ${text.slice(0, 200)}`);
      assert.match(JSON.parse(text).code, /^THAW_E_[A-Z_]+$/, `${what}: ${text.slice(0, 200)}`);
    }
    assert.deepEqual(await fleetState(), before);
  });

  test('a heartbeat with absurd numbers is refused, and nothing joins', async () => {
    const absurd: Record<string, unknown>[] = [
      { capacity: { memoryBudgetMb: -1024, cpus: 1 } },
      { capacity: { memoryBudgetMb: 1e15, cpus: 1 } },
      { capacity: { memoryBudgetMb: 1024, cpus: 1e9 } },
      { busy: 1e9 },
      { instances: [{ id: 'i', functionName: 'hello', version: '$LATEST', revisionId: 'r', state: 'idle', memoryMb: -512, reserved: false }] },
      { reserved: [{ functionName: 'hello', qualifier: '1', requested: 1, ready: 1e9, lastError: null }] },
      { reserved: [{ functionName: 'hello', qualifier: '1', requested: -5, ready: -5, lastError: null }] },
      { fetches: { peer: -1, origin: 0, local: 0 } },
    ];
    for (const extra of absurd) {
      const res = await signed(`${control.url}/thaw/v1/cluster/agents/evil`, agentKey, 'POST', heartbeatOf('evil', 'http://127.0.0.1:1', extra));
      const body = await res.json() as any;
      assert.equal(res.status, 400, `${JSON.stringify(extra)} was taken: ${JSON.stringify(body)}`);
      assert.equal(body.code, 'THAW_E_CLUSTER_MESSAGE_INVALID');
    }
    assert.ok(!(await cluster()).agents.some((a: any) => a.name === 'evil'));
  });

  test('a key cannot take over the name of a live agent (its placements would go to the thief)', async () => {
    const h1 = (await cluster()).agents.find((a: any) => a.name === 'h1');
    const res = await signed(`${control.url}/thaw/v1/cluster/agents/h1`, agentKey, 'POST', heartbeatOf('h1', 'http://127.0.0.1:9'));
    const body = await res.json() as any;
    assert.equal(res.status, 409, JSON.stringify(body));
    assert.equal(body.code, 'THAW_E_CLUSTER_NAME_TAKEN');
    assert.equal((await cluster()).agents.find((a: any) => a.name === 'h1').url, h1.url);
    // Invocations still go to the real agents.
    for (let i = 0; i < 3; i++) assert.equal((await invoke('hello', {})).status, 200);
  });

  test('forged telemetry: records for invocations never placed there, or from an agent not in the fleet, are refused', async () => {
    // A record in every way like a real one (it is one), but for an invocation never placed: a forgery.
    assert.equal((await invoke('hello', {})).status, 200);
    const list = async () => (await (await signed(`${control.url}/thaw/v1/invocations?function=hello&limit=1000`, admin)).json() as any).invocations as any[];
    const real = await eventually(async () => (await list())[0], 'a record of hello');
    const forged = { ...real, id: 'forged-0001' };
    const ghost = await signed(`${control.url}/thaw/v1/cluster/telemetry`, agentKey, 'POST', { agent: 'ghost', events: [{ channel: 'invocationEnd', event: forged }] });
    const ghostBody = await ghost.json() as any;
    assert.equal(ghost.status, 400, JSON.stringify(ghostBody));
    assert.equal(ghostBody.code, 'THAW_E_CLUSTER_MESSAGE_INVALID');
    // A member's name, but an invocation the control plane never placed on it: dropped, and said so.
    const res = await signed(`${control.url}/thaw/v1/cluster/telemetry`, agentKey, 'POST', { agent: 'h1', events: [{ channel: 'invocationEnd', event: forged }] });
    const body = await res.json() as any;
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.refused, 1, JSON.stringify(body));
    assert.match(body.firstRefusal, /forged-0001 was not placed on h1/);
    // A broken event (what a subscriber would throw on) is refused the same way, and the control plane carries on.
    const broken = await signed(`${control.url}/thaw/v1/cluster/telemetry`, agentKey, 'POST', { agent: 'h1', events: [{ channel: 'invocationEnd', event: { id: 'x' } }, { channel: 'log', event: { line: 7 } }] });
    assert.equal(((await broken.json()) as any).refused, 2);
    // A real invocation is recorded (its telemetry passes), the forged one never is.
    assert.equal((await invoke('hello', {})).status, 200);
    await eventually(async () => (await list()).length >= 4, 'the real invocations recorded');
    assert.ok(!(await list()).some((r) => r.id === 'forged-0001'), 'a forged invocation record was stored');
    // The agents' own telemetry was all taken.
    const refusals = control.stderr().split('\n').filter((l) => /refused \d+ telemetry/.test(l));
    assert.equal(refusals.length, 2, refusals.join('\n'));
  });

  test('an agent that claims a package it does not hold, and serves wrong bytes: the peer fetch falls back to the origin', async () => {
    // Created (not published, so not pre-distributed): no agent holds it yet. The liar claims every object
    // the control plane stored for it (the package, and what a cold start fetches of it).
    const blobs = async () => new Set((await readdir(join(ctlData, 'blobs'), { recursive: true })).map((p) => basename(p)).filter((n) => /^[0-9a-f]{64}$/.test(n)));
    const had = await blobs();
    const created = await lambda.send(new CreateFunctionCommand({ FunctionName: 'lure', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, Code: { ZipFile: pkg({ 'index.mjs': fnSource(`return 'lured';`) }) } }));
    const sha = Buffer.from(created.CodeSha256!, 'base64').toString('hex');
    const claimed = [...await blobs()].filter((h) => !had.has(h));
    assert.ok(claimed.includes(sha), `the package ${sha} is not among the new blobs ${claimed}`);
    let asked = 0;
    const liar = createServer((req, res) => {
      if (req.url?.startsWith('/agent/v1/blobs/')) { asked++; res.writeHead(200); res.end('not the package'); return; }
      res.writeHead(500); res.end('{}');
    });
    servers.push(liar);
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', () => r()));
    const liarUrl = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
    // Too small to be placed on, but it says it holds the package: peers are told so.
    const claim = () => signed(`${control.url}/thaw/v1/cluster/agents/liar`, agentKey, 'POST', heartbeatOf('liar', liarUrl, { capacity: { memoryBudgetMb: 1, cpus: 1 }, packages: claimed }));
    assert.equal((await claim()).status, 200);
    let claiming = true;
    const keep = (async () => { while (claiming) { await claim(); await new Promise((r) => setTimeout(r, 300)); } })();
    try {
      const beats = Object.fromEntries((await cluster()).agents.map((a: any) => [a.name, a.heartbeats]));
      await eventually(async () => (await cluster()).agents.filter((a: any) => a.name !== 'liar').every((a: any) => a.heartbeats > beats[a.name] + 1), 'both agents to hear of the liar');
      const r = await invoke('lure', {});
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.equal(r.body, 'lured');
      assert.ok(asked >= 1, `the agent never asked the liar about ${sha}: ${agents.map((a) => a.stderr().split('\n').filter((l) => /package|peer|lure/.test(l)).join('\n')).join('\n---\n')}`);
      assert.match(agents.map((a) => a.stderr()).join(''), /peer liar sent package \w+ with the wrong hash/);
    } finally {
      claiming = false;
      await keep;
    }
    await eventually(async () => !(await cluster()).agents.some((a: any) => a.name === 'liar'), 'the liar to leave once silent');
  });

  test('an agent stopped (SIGSTOP) with an invocation in flight: the call ends, the agent leaves, rejoins, and reserved counts converge', async () => {
    const { Version } = await lambda.send(new PublishVersionCommand({ FunctionName: 'hello' }));
    await lambda.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'hello', Qualifier: Version, ProvisionedConcurrentExecutions: 2 }));
    const reservedOn = async () => {
      const v = await cluster();
      return Object.fromEntries(v.agents.map((a: any) => [a.name, a.reserved.filter((r: any) => r.functionName === 'hello').reduce((n: number, r: any) => n + r.ready, 0)]));
    };
    const reservedInstances = async () => ((await (await signed(`${control.url}/thaw/v1/instances`, admin)).json() as any).instances as any[])
      .filter((i) => i.functionName === 'hello' && i.reserved && i.state !== 'stopping' && i.state !== 'gone').length;
    await eventually(async () => { const r = await reservedOn(); return r.h1 === 1 && r.h2 === 1; }, 'one reserved instance on each agent', 60_000);

    const marker = join(await mkdir('thaw-hc-stop-'), 'runs');
    const inflight = invoke('hello', { file: marker, ms: 60_000 }).then((r) => ({ ok: r }), (err) => ({ err }));
    const ran = await eventually(async () => (await readFile(marker, 'utf8').catch(() => '')).split('\n').filter(Boolean)[0], 'the invocation to start');
    const victim = agents.find((a) => a.name === agentOf(ran))!;
    const survivor = agents.find((a) => a !== victim)!;
    victim.child.kill('SIGSTOP');
    let settled: any;
    try {
      // The invocation must end while its agent is still stopped: a stopped agent may never come back.
      settled = await eventually(async () => Promise.race([inflight, new Promise((r) => setTimeout(() => r(null), 500))]), 'the in-flight invocation to end while its agent is stopped', 60_000);
      await eventually(async () => (await cluster()).agents.length === 1, 'the stopped agent to leave the fleet');
      const r = await invoke('hello', {});
      assert.equal(agentOf(r.body.cwd), survivor.name);
      await eventually(async () => (await reservedOn())[survivor.name] === 2, 'both reserved instances on the survivor', 60_000);
    } finally {
      victim.child.kill('SIGCONT');
    }
    assert.ok('err' in settled, `the invocation to the stopped agent succeeded: ${JSON.stringify(settled)}`);
    assert.equal(settled.err.$metadata?.httpStatusCode, 502, String(settled.err));
    await eventually(async () => (await cluster()).agents.length === 2, 'the agent to rejoin', 30_000);
    // Its reserved instance and the survivor's second one: one must go, so the count comes back to 2.
    await eventually(async () => { const r = await reservedOn(); return r.h1 === 1 && r.h2 === 1 && await reservedInstances() === 2; }, 'reserved instances back to one per agent, two in all', 60_000);
    const pc = await lambda.send(new GetProvisionedConcurrencyConfigCommand({ FunctionName: 'hello', Qualifier: Version }));
    assert.equal(pc.AvailableProvisionedConcurrentExecutions, 2);
    await lambda.send(new DeleteProvisionedConcurrencyConfigCommand({ FunctionName: 'hello', Qualifier: Version }));
    await eventually(async () => await reservedInstances() === 0, 'the reserved instances to go', 60_000);
  });

  test('a control plane restart (SIGTERM, same store): the agents rejoin by themselves and their warm instances are used again', async () => {
    const warm = await invoke('hello', {});
    assert.equal(warm.status, 200);
    control.child.kill('SIGTERM');
    await exitedOf(control.child);
    await startControl();
    await eventually(async () => (await cluster()).agents?.length === 2, 'both agents to rejoin the restarted control plane', 30_000);
    const again = await invoke('hello', {});
    assert.equal(again.status, 200, JSON.stringify(again));
    const pids = new Set((await Promise.all(Array.from({ length: 3 }, () => invoke('hello', {})))).map((r) => r.body.pid));
    pids.add(again.body.pid);
    assert.ok(pids.has(warm.body.pid), `the warm instance ${warm.body.pid} was not used again (${[...pids]})`);
  });

  test('200 invocations, then kill -9 of both agents: nothing left once they restart, and the control plane forgets them', async () => {
    for (let i = 0; i < 25; i++) {
      const rs = await Promise.all(Array.from({ length: 8 }, (_, j) => invoke('hello', { ms: (i + j) % 3 ? 0 : 100 })));
      for (const r of rs) assert.equal(r.status, 200, JSON.stringify(r));
    }
    for (const a of agents) a.child.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    await eventually(async () => (await cluster()).agents.length === 0, 'the dead agents to leave the fleet', 30_000);
    for (let i = 0; i < agents.length; i++) {
      const a = agents[i];
      agents[i] = await startAgent(a.name, control.url, agentKey, a.dataDir, a.cacheDir);
    }
    await eventually(async () => (await cluster()).agents.length === 2, 'the agents to rejoin');
    // Nothing of the killed runs: no instance process, no package image still mounted from them.
    await eventually(async () => (await Promise.all(agents.map((a) => processesUnder(a.cacheDir)))).flat().length === 0, 'no instance process of the killed agents', 30_000);
    const serving = await invoke('hello', {});
    assert.equal(serving.status, 200);
  });
});
