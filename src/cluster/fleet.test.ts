// The Fleet's dispatch against agents on real loopback sockets: one that refuses connections, one that
// answers the agent protocol, one whose connection breaks after the handler started.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../core/clock.ts';
import type { FunctionVersion } from '../core/types.ts';
import { Fleet } from './fleet.ts';
import type { Heartbeat } from './protocol.ts';

const version = { functionName: 'f', version: '$LATEST', revisionId: 'r1', config: { codeSha256: 'a'.repeat(64), memoryMb: 128, runtime: 'nodejs24.x' }, createdAt: 0 } as unknown as FunctionVersion;
const request = (id: string) => ({ invocationId: id, version, qualifier: '$LATEST', payload: '{}', trigger: 'invoke' as const, callerInvocationId: null, clientContext: null, concurrencyLimit: null, receivedMono: 0, receivedAt: 0 });
const heartbeat = (name: string, url: string, idle = false): Heartbeat => ({
  name, url, capacity: { memoryBudgetMb: 1024, cpus: 2 }, busy: 0, reserved: [], fetches: { peer: 0, origin: 0, local: 0 }, packages: [], snapshots: [], snapshotKey: null,
  instances: idle ? [{ id: `${name}-i`, functionName: 'f', version: '$LATEST', revisionId: 'r1', state: 'idle', memoryMb: 128, reserved: false }] : [],
});

const servers: Server[] = [];
const listen = async (handler: Parameters<typeof createServer>[1]) => {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
};
let good = '', breaking = '', refused = '';
const fleet = new Fleet({ clock: systemClock, log: () => {} });

before(async () => {
  good = await listen((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('{"started":true}\n');
    res.end(JSON.stringify({ result: { record: { id: 'x' }, payload: '"ok"', functionError: null, logs: [] } }) + '\n');
  });
  breaking = await listen((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('{"started":true}\n', () => setTimeout(() => res.socket?.destroy(), 20));
  });
  // A port nothing listens on any more: connections to it are refused.
  refused = await listen(() => {});
  await new Promise<void>((r) => servers.pop()!.close(() => r()));
});
after(async () => {
  await fleet.close();
  for (const s of servers) { s.closeAllConnections(); s.close(); }
});

test('Fleet.invoke() places an invocation elsewhere when its agent refuses the connection, and drops that agent', async () => {
  fleet.heartbeat(heartbeat('dead', refused, true));
  fleet.heartbeat(heartbeat('alive', good));
  const r = await fleet.invoke(request('i1'));
  assert.equal(r.payload, '"ok"');
  assert.equal(fleet.replaced, 1);
  assert.deepEqual(fleet.members(), ['alive']);
});

test('Fleet.invoke() says THAW_E_AGENT_LOST when the agent goes away after the handler started', async () => {
  fleet.heartbeat(heartbeat('breaks', breaking, true));
  await assert.rejects(fleet.invoke(request('i2')), (e: any) => e.code === 'THAW_E_AGENT_LOST');
  assert.equal(fleet.lost, 1);
  assert.deepEqual(fleet.members(), ['alive']);
});

test('Fleet.invoke() without agents is THAW_E_CLUSTER_NO_AGENTS, streamed or not', async () => {
  const empty = new Fleet({ clock: systemClock, log: () => {} });
  await assert.rejects(empty.invoke(request('i3')), (e: any) => e.code === 'THAW_E_CLUSTER_NO_AGENTS');
  await assert.rejects(empty.invoke({ ...request('i4'), stream: { start() {}, write(_c, consumed) { consumed(); } } }), (e: any) => e.code === 'THAW_E_CLUSTER_NO_AGENTS');
  await empty.close();
});

test('reserved instances are spread over the agents by name, the remainder to the first', () => {
  const f = new Fleet({ clock: systemClock, log: () => {} });
  f.setReserved('f', '1', version, 3);
  f.heartbeat(heartbeat('b', good));
  assert.equal(f.heartbeat(heartbeat('a', good)).reserved[0].count, 2);
  assert.equal(f.heartbeat(heartbeat('b', good)).reserved[0].count, 1);
  void f.close();
});

test('a published version\'s snapshot is built by one agent and, once reported ready, pushed to the others it went to', async () => {
  const got: { agent: string; op: string }[] = [];
  const recorder = (agent: string) => listen((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { got.push({ agent, op: JSON.parse(body).op }); res.writeHead(204).end(); });
  });
  const f = new Fleet({ clock: systemClock, log: () => {} });
  for (const name of ['a', 'b', 'c']) f.heartbeat(heartbeat(name, await recorder(name)));
  const published = { ...version, version: '1' } as FunctionVersion;
  f.predistribute(published);
  const builds = () => got.filter((g) => g.op === 'snapshot-build');
  while (builds().length < 1 || got.filter((g) => g.op === 'prefetch').length < 2) await new Promise((r) => setTimeout(r, 10));
  // Two agents chosen (the least loaded two, by name on a tie); the first builds; nobody else does.
  assert.deepEqual(builds().map((g) => g.agent), ['a']);
  const record = { functionName: 'f', version: '1', status: 'ready' as const, reason: null, sha256: 'b'.repeat(64), sizeBytes: 1, buildMs: 1, updatedAt: 0 };
  assert.deepEqual(f.snapshotReported({ agent: 'a', record }, published), ['b'], 'pushed to the other chosen agent, not back to the builder nor to c');
  while (!got.some((g) => g.op === 'snapshot-adopt')) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got.filter((g) => g.op === 'snapshot-adopt').map((g) => g.agent), ['b']);
  // $LATEST is never snapshotted, nor a version whose SnapStart is None.
  f.predistribute({ ...version, version: '$LATEST' } as FunctionVersion);
  f.predistribute({ ...version, version: '2', config: { ...version.config, snapStart: 'None' } } as FunctionVersion);
  // Their packages still go out (two agents each); a build would have been sent right after them.
  while (got.filter((g) => g.op === 'prefetch').length < 6) await new Promise((r) => setTimeout(r, 10));
  assert.equal(builds().length, 1);
  await f.close();
});
