// A cluster on loopback (a control plane, `thaw up --no-agent`, and two agents, `thaw agent`, each a
// process of its own) seen from the caller's side: response streaming through the control plane to the
// agent running the function (InvokeWithResponseStream through the AWS SDK), a client that goes away, an
// agent killed mid-stream; and the control plane's view of its agents: /metrics with each agent's gauges
// under its name (checked by promtool) and /thaw/v1/decisions with the agents' policy decisions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AddPermissionCommand, CreateFunctionCommand, CreateFunctionUrlConfigCommand, InvokeCommand, InvokeWithResponseStreamCommand, LambdaClient,
  type InvokeWithResponseStreamResponseEvent,
} from '@aws-sdk/client-lambda';
import { ROLE, mountsUnder, signed, startAgent, type AgentProc, type Key } from './cluster-helpers.ts';
import { eventually, fnSource, pkg, processesUnder, thawUp } from './helpers.ts';

const PROMTOOL = '/usr/bin/promtool';

/** `signalled(n)` settles once the instance has had n SIGUSR2s: the test decides when the function goes on. */
const GATE = "let signals = 0; const waiting = new Set(); process.on('SIGUSR2', () => { signals++; for (const w of waiting) w(); });\n" +
  'const signalled = (n) => new Promise((r) => { const w = () => { if (signals >= n) { waiting.delete(w); r(); } }; waiting.add(w); w(); });';

/** Writes `first;`, waits for a signal sent after that, writes `second`. */
const GATED = `${GATE}
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const next = signals + 1;
  responseStream.setContentType('text/plain');
  responseStream.write('first;');
  await signalled(next);
  responseStream.write('second');
  responseStream.end();
});`;

/** Writes ticks until its client goes away. */
const TICKS = `import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  async function* ticks() { for (let i = 0; ; i++) { yield 'tick ' + i + '\\n'; await new Promise((r) => setTimeout(r, 5)); } }
  await pipeline(Readable.from(ticks()), responseStream);
});`;

const text = (b?: Uint8Array) => Buffer.from(b ?? []).toString('utf8');

/** The rest of an event stream: the payload bytes and the InvokeComplete event. */
async function drain(it: AsyncIterator<InvokeWithResponseStreamResponseEvent>, bytes: Buffer[] = []) {
  for (;;) {
    const { value, done } = await it.next();
    assert.ok(!done, 'the stream ended without an InvokeComplete event');
    if (value.PayloadChunk) bytes.push(Buffer.from(value.PayloadChunk.Payload ?? []));
    else if (value.InvokeComplete) return { body: Buffer.concat(bytes), complete: value.InvokeComplete };
  }
}

describe('a cluster seen from its control plane: streaming, metrics, decisions', { timeout: 600_000 }, () => {
  const dirs: string[] = [];
  let control: { child: ChildProcess; url: string; stderr: () => string };
  let admin: Key;
  let lambda: LambdaClient;
  const agents: AgentProc[] = [];
  const mkdir = async (prefix: string, shm = false) => { const d = await mkdtemp(shm ? `/dev/shm/${prefix}` : join(tmpdir(), prefix)); dirs.push(d); return d; };
  const get = async (path: string) => (await signed(`${control.url}${path}`, admin)).json() as Promise<any>;
  const create = (name: string, source: string) => lambda.send(new CreateFunctionCommand({
    FunctionName: name, Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, Timeout: 120, Code: { ZipFile: pkg({ 'index.mjs': source }) },
  }));
  const stream = (name: string, abortSignal?: AbortSignal) =>
    lambda.send(new InvokeWithResponseStreamCommand({ FunctionName: name, Payload: Buffer.from('{}') }), { abortSignal });
  /** The one busy instance of a function, as the control plane's fleet view shows it (with its agent). */
  const running = async (name: string) => {
    let seen: unknown[] = [];
    return eventually(async () => {
      const all = (await get('/thaw/v1/instances')).instances.filter((i: any) => i.functionName === name);
      seen = all.map((i: any) => ({ agent: i.agent, state: i.state, id: i.id }));
      const busy = all.filter((i: any) => i.state === 'busy');
      return busy.length === 1 && busy[0];
    }, `the busy instance of ${name} in a heartbeat`).catch((e) => { throw new Error(`${e.message}; instances: ${JSON.stringify(seen)}`); });
  };
  const record = (id: string | undefined) => eventually(async () => {
    const r = await get(`/thaw/v1/invocations/${id}`);
    return r.outcome ? r : null;
  }, `the record of invocation ${id}`, 30_000);

  before(async () => {
    control = await thawUp(await mkdir('thaw-cs-ctl-data-'), await mkdir('thaw-cs-ctl-cache-', true), ['--no-agent']);
    admin = await (await fetch(`${control.url}/thaw/v1/keys`, { method: 'POST', body: JSON.stringify({ Role: 'admin' }) })).json() as Key;
    assert.ok(admin.SecretAccessKey, JSON.stringify(admin));
    const agentKey = await (await signed(`${control.url}/thaw/v1/keys`, admin, 'POST', { Role: 'agent' })).json() as Key;
    lambda = new LambdaClient({ endpoint: control.url, region: 'us-east-1', credentials: { accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey }, maxAttempts: 1 });
    for (const name of ['s1', 's2']) agents.push(await startAgent(name, control.url, agentKey, await mkdir(`thaw-cs-${name}-data-`), await mkdir(`thaw-cs-${name}-cache-`, true)));
    await eventually(async () => (await get('/thaw/v1/cluster')).agents?.length === 2, 'two agents in the fleet');
  });

  after(async () => {
    lambda?.destroy();
    const procs = [...agents.map((a) => ({ child: a.child, exited: a.exited })), ...(control ? [{ child: control.child, exited: new Promise<void>((r) => control.child.exitCode !== null ? r() : control.child.once('exit', () => r())) }] : [])];
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    // A killed agent's stopped (frozen) instances cannot notice it went: they stay until it restarts and
    // clears its cache dir. Those are ended here and named; every other instance must have ended by itself.
    const killed = agents.filter((a) => a.child.signalCode === 'SIGKILL');
    const orphans = (await Promise.all(killed.map((a) => processesUnder(a.cacheDir)))).flat();
    for (const pid of orphans) {
      const state = /^State:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      process.stderr.write(`instance process ${pid} of a killed agent left (state ${state}); killed here\n`);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    }
    const leftOver = async () => (await Promise.all(agents.filter((a) => !killed.includes(a)).map((a) => processesUnder(a.cacheDir)))).flat();
    const left = await eventually(async () => (await leftOver()).length === 0 && [], 'instances of the stopped agents to end', 15_000).catch(leftOver);
    for (const pid of left) try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    const mounted = agents.flatMap((a) => mountsUnder(a.cacheDir));
    for (const mp of mounted) spawnSync('fusermount3', ['-u', '-z', mp]);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    assert.deepEqual(left, [], 'instance processes outlived their agents');
  });

  test('InvokeWithResponseStream through the control plane: a chunk reaches the SDK while the function still runs on its agent', async () => {
    await create('gated', GATED);
    const r = await stream('gated');
    assert.equal(r.StatusCode, 200);
    assert.equal(r.ResponseStreamContentType, 'text/plain');
    assert.equal(r.ExecutedVersion, '$LATEST');
    const it = r.EventStream![Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(text(first.value.PayloadChunk?.Payload), 'first;');
    // The function cannot have finished: it waits for the signal sent only now.
    const inst = await running('gated');
    assert.ok(['s1', 's2'].includes(inst.agent), `run on an agent: ${inst.agent}`);
    process.kill(inst.pid, 'SIGUSR2');
    const { body, complete } = await drain(it);
    assert.equal(body.toString(), 'second');
    assert.equal(complete.ErrorCode, undefined, complete.ErrorDetails);
    const rec = await record(r.$metadata.requestId);
    assert.equal(rec.outcome, 'success');
  });

  test('a RESPONSE_STREAM function URL on the control plane: the body comes as the function on its agent writes it', async () => {
    const u = await lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'gated', AuthType: 'NONE', InvokeMode: 'RESPONSE_STREAM' }));
    await lambda.send(new AddPermissionCommand({ FunctionName: 'gated', StatementId: 'public', Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' }));
    const res = await fetch(u.FunctionUrl!);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain');
    const reader = res.body!.getReader();
    let got = '';
    while (!got.includes('first;')) got += text((await reader.read()).value);
    assert.equal(got, 'first;');
    process.kill((await running('gated')).pid, 'SIGUSR2');
    for (let r = await reader.read(); !r.done; r = await reader.read()) got += text(r.value);
    assert.equal(got, 'first;second');
  });

  test('a client that goes away aborts the request to the agent, which ends the invocation (aborted)', async () => {
    await create('ticks', TICKS);
    const ac = new AbortController();
    const r = await stream('ticks', ac.signal);
    let chunks = 0;
    await assert.rejects(async () => {
      for await (const e of r.EventStream!) if (e.PayloadChunk && ++chunks === 3) ac.abort();
    });
    const rec = await record(r.$metadata.requestId);
    assert.equal(rec.outcome, 'aborted');
    await eventually(async () => !(await get('/thaw/v1/instances')).instances.some((i: any) => i.functionName === 'ticks' && i.state === 'busy'), 'no busy instance of ticks left');
  });

  test('/metrics on the control plane: each agent\'s instances and memory under its name, the fleet\'s placements; promtool passes', async () => {
    const res = await signed(`${control.url}/metrics`, admin);
    assert.equal(res.status, 200);
    const body = await res.text();
    const lines = body.split('\n');
    const gated = (await get('/thaw/v1/instances')).instances.find((i: any) => i.functionName === 'gated');
    assert.ok(gated, 'an instance of gated is held');
    assert.ok(lines.some((l) => l.startsWith('thaw_instances{') && l.includes(`node="${gated.agent}"`) && l.includes('function="gated"')), `thaw_instances of gated under node="${gated.agent}"`);
    for (const a of ['s1', 's2']) {
      assert.ok(lines.some((l) => l.startsWith(`thaw_memory_budget_bytes{node="${a}",resource="ram"}`)), `the memory budget of ${a}`);
      assert.ok(lines.some((l) => l.startsWith('thaw_instance_memory_bytes{') && l.includes(`node="${a}"`)), `memory by tier of ${a}`);
    }
    assert.ok(!lines.some((l) => l.startsWith('thaw_instances{') && l.includes('node="local"')), 'the control plane runs no instance of its own');
    assert.ok(lines.includes('thaw_cluster_agents 2'), 'two agents in placement');
    const placed = lines.filter((l) => l.startsWith('thaw_cluster_placements_total{')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    // The streamed invocation that ran to the end (a placement is counted once it answered; the aborted one is not).
    assert.ok(placed >= 1, `placements counted: ${placed}`);
    assert.ok(lines.some((l) => /^thaw_invocations_total\{.*function="gated"/.test(l)), 'the agents\' invocations are counted here');
    if (!existsSync(PROMTOOL)) return;
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: body, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
    assert.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint warnings either');
  });

  test('/thaw/v1/decisions on the control plane shows an agent\'s freeze decision, with the agent', async () => {
    await create('idle', fnSource('return 1;'));
    await lambda.send(new InvokeCommand({ FunctionName: 'idle', Payload: Buffer.from('{}') }));
    // The agents' default policy freezes an idle instance after 10 s.
    const d = await eventually(async () => (await get('/thaw/v1/decisions?function=idle')).decisions.find((x: any) => x.action === 'freeze'), 'a freeze decision of idle', 60_000, 250);
    assert.ok(['s1', 's2'].includes(d.agent), `the agent that took it: ${d.agent}`);
    assert.equal(d.outcome, 'done');
    const policy = await get('/thaw/v1/functions/idle/policy');
    assert.ok(policy.decisions.some((x: any) => x.action === 'freeze' && x.agent === d.agent), 'the function\'s policy view lists it too');
  });

  test('an agent killed after the stream started: the stream ends with InvokeComplete naming the loss', async () => {
    const r = await stream('gated');
    const it = r.EventStream![Symbol.asyncIterator]();
    assert.equal(text((await it.next()).value.PayloadChunk?.Payload), 'first;');
    const inst = await running('gated');
    const victim = agents.find((a) => a.name === inst.agent)!;
    victim.child.kill('SIGKILL');
    await victim.exited;
    const { body, complete } = await drain(it);
    assert.equal(body.length, 0, 'nothing after the first chunk');
    assert.equal(complete.ErrorCode, 'ServiceException');
    assert.match(complete.ErrorDetails ?? '', /THAW_E_AGENT_LOST/);
    // Its instance, a process of its own, ends once its handler returns and finds its agent gone (after() checks).
    process.kill(inst.pid, 'SIGUSR2');
  });
});
