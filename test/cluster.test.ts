// A real cluster on loopback: a control plane (`thaw up --no-agent`, on PostgreSQL where it is installed)
// and two agents (`thaw agent`), each a process of its own. Functions are deployed through the AWS SDK;
// invocations are placed on the agents; one agent is killed with -9 while invocations run, and the other
// serves everything after, takes its reserved instances, and runs again the Event it was running.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateFunctionCommand, InvokeCommand, LambdaClient, PublishVersionCommand, PutProvisionedConcurrencyConfigCommand } from '@aws-sdk/client-lambda';
import { eventually, fnSource, pkg, processesUnder, thawUp } from './helpers.ts';
import { startPostgres, type TestPostgres } from './postgres.ts';
import { ROLE, mountsUnder, signed, startAgent, type AgentProc, type Key } from './cluster-helpers.ts';

describe('a control plane with two agents', { timeout: 600_000 }, () => {
  let pg: TestPostgres | null = null;
  let storeNote = '';
  const dirs: string[] = [];
  let control: { child: ChildProcess; url: string; stderr: () => string };
  let admin: Key;
  let agentKey: Key;
  let lambda: LambdaClient;
  const agents: AgentProc[] = [];
  const mkdir = async (prefix: string, shm = false) => { const d = await mkdtemp(shm ? `/dev/shm/${prefix}` : join(tmpdir(), prefix)); dirs.push(d); return d; };

  /** Which agent ran an invocation, by the working directory its instance reported. */
  const agentOf = (cwd: string) => agents.find((a) => cwd.startsWith(a.cacheDir))?.name ?? `unknown (${cwd})`;
  const cluster = async () => (await signed(`${control.url}/thaw/v1/cluster`, admin)).json() as Promise<any>;
  const invoke = async (name: string, payload: unknown, type: 'RequestResponse' | 'Event' = 'RequestResponse', qualifier?: string) => {
    const r = await lambda.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from(JSON.stringify(payload)), InvocationType: type, Qualifier: qualifier }));
    return { status: r.StatusCode, error: r.FunctionError, body: r.Payload?.length ? JSON.parse(Buffer.from(r.Payload).toString()) : null };
  };

  before(async () => {
    const started = await startPostgres();
    const flags = ['--no-agent'];
    if ('skip' in started) storeNote = `on SQLite: ${started.skip}`;
    else { pg = started; flags.push('--store', pg.url); storeNote = 'on PostgreSQL'; }
    control = await thawUp(await mkdir('thaw-ctl-data-'), await mkdir('thaw-ctl-cache-', true), flags);
    // The first key needs no signature (none exists yet, and the test is on loopback); the next ones do.
    admin = await (await fetch(`${control.url}/thaw/v1/keys`, { method: 'POST', body: JSON.stringify({ Role: 'admin' }) })).json() as Key;
    assert.ok(admin.SecretAccessKey, JSON.stringify(admin));
    agentKey = await (await signed(`${control.url}/thaw/v1/keys`, admin, 'POST', { Role: 'agent' })).json() as Key;
    assert.ok(agentKey.SecretAccessKey, JSON.stringify(agentKey));
    lambda = new LambdaClient({ endpoint: control.url, region: 'us-east-1', credentials: { accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey }, maxAttempts: 1 });
    for (const name of ['a1', 'a2']) agents.push(await startAgent(name, control.url, agentKey, await mkdir(`thaw-${name}-data-`), await mkdir(`thaw-${name}-cache-`, true)));
    const hello = fnSource(`if (event.ms) await new Promise((r) => setTimeout(r, event.ms));\nreturn { cwd: process.cwd() };`);
    await lambda.send(new CreateFunctionCommand({ FunctionName: 'hello', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, Code: { ZipFile: pkg({ 'index.mjs': hello }) } }));
    const ev = fnSource(`appendFileSync(event.file, process.cwd() + '\\n');\nawait new Promise((r) => setTimeout(r, event.ms));\nreturn 'done';`, "import { appendFileSync } from 'node:fs';");
    await lambda.send(new CreateFunctionCommand({ FunctionName: 'ev', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, Code: { ZipFile: pkg({ 'index.mjs': ev }) } }));
  });

  after(async () => {
    lambda?.destroy();
    const procs = [...agents.map((a) => ({ child: a.child, exited: a.exited })), ...(control ? [{ child: control.child, exited: new Promise<void>((r) => control.child.exitCode !== null ? r() : control.child.once('exit', () => r())) }] : [])];
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    const left = (await Promise.all(agents.map((a) => processesUnder(a.cacheDir)))).flat();
    // Package images a killed agent left mounted (its restart clears them; a failed test may not get there).
    const mounted = agents.flatMap((a) => mountsUnder(a.cacheDir));
    for (const mp of mounted) spawnSync('fusermount3', ['-u', '-z', mp]);
    await pg?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    assert.deepEqual(left, [], 'instance processes outlived their agents');
    assert.deepEqual(mounted, [], 'package images stayed mounted after their agents stopped');
  });

  test('both agents join, and the fleet view lists them', async (t) => {
    t.diagnostic(`control plane ${storeNote}`);
    const view = await eventually(async () => { const v = await cluster(); return v.agents?.length === 2 && v; }, 'two agents in the fleet');
    assert.deepEqual(view.agents.map((a: any) => a.name).sort(), ['a1', 'a2']);
  });

  test('a join without a signature, or with a key of another role, is refused; an agent key may call only the cluster routes', async () => {
    const hb = { name: 'intruder', url: 'http://127.0.0.1:1', capacity: { memoryBudgetMb: 1024, cpus: 1 }, instances: [], packages: [], busy: 0 };
    const unsigned = await fetch(`${control.url}/thaw/v1/cluster/agents/intruder`, { method: 'POST', body: JSON.stringify(hb) });
    assert.equal(unsigned.status, 403);
    assert.equal((await unsigned.json() as any).code, 'THAW_E_AUTH_REQUIRED');
    const developer = await (await signed(`${control.url}/thaw/v1/keys`, admin, 'POST', { Role: 'developer' })).json() as Key;
    const asDeveloper = await signed(`${control.url}/thaw/v1/cluster/agents/intruder`, developer, 'POST', hb);
    assert.equal(asDeveloper.status, 403);
    assert.equal((await asDeveloper.json() as any).code, 'THAW_E_AUTH_DENIED');
    const listAsAgent = await signed(`${control.url}/2015-03-31/functions`, agentKey);
    assert.equal(listAsAgent.status, 403);
    assert.ok(!(await cluster()).agents.some((a: any) => a.name === 'intruder'));
    // A well-signed heartbeat that is malformed changes nothing either.
    const bad = await signed(`${control.url}/thaw/v1/cluster/agents/intruder`, agentKey, 'POST', { ...hb, url: 'not a url' });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json() as any).code, 'THAW_E_CLUSTER_MESSAGE_INVALID');
    assert.ok(!(await cluster()).agents.some((a: any) => a.name === 'intruder'));
  });

  test('invocations are served on the agents, and an agent gets a package a peer holds from that peer', async () => {
    const first = await invoke('hello', {});
    assert.equal(first.status, 200);
    assert.equal(first.error, undefined);
    const holder = agentOf(first.body.cwd);
    assert.ok(['a1', 'a2'].includes(holder), holder);
    // The agent forwarded its telemetry: the control plane records the invocation and its log lines.
    const recorded = await eventually(async () => (await (await signed(`${control.url}/thaw/v1/invocations?function=hello`, admin)).json() as any).invocations?.find((r: any) => r.outcome === 'success'), 'the invocation recorded on the control plane');
    // The record says where it ran and why there: the first invocation finds nothing anywhere.
    assert.deepEqual(recorded.placement, { agent: holder, reason: 'least-loaded' });
    await eventually(async () => (await (await signed(`${control.url}/thaw/v1/functions/hello/logs`, admin)).json() as any).lines?.some((l: any) => /START RequestId/.test(l.line)), 'its log lines recorded on the control plane');
    // Once the holder's heartbeat says it holds the package, a burst spills to the other agent, which
    // fetches the package from the holder rather than from the control plane.
    const other = agents.find((a) => a.name !== holder)!;
    const seen = await eventually(async () => { const v = await cluster(); return v.agents.find((a: any) => a.name === holder)?.packages >= 1 && v; }, 'the holder to report the package');
    // …and the other agent has heard of it in a heartbeat answer since.
    const beats = seen.agents.find((a: any) => a.name === other.name).heartbeats;
    await eventually(async () => (await cluster()).agents.find((a: any) => a.name === other.name)?.heartbeats > beats, `a heartbeat of ${other.name}`);
    const burst = await Promise.all(Array.from({ length: 8 }, () => invoke('hello', { ms: 1500 })));
    for (const r of burst) assert.equal(r.status, 200, JSON.stringify(r));
    const ran = new Set(burst.map((r) => agentOf(r.body.cwd)));
    assert.deepEqual([...ran].sort(), ['a1', 'a2'], 'the burst used both agents');
    const fetches = await eventually(async () => { const f = (await cluster()).agents.find((a: any) => a.name === other.name)?.fetches; return f?.peer >= 1 && f; }, `${other.name} to report a peer fetch`);
    assert.equal(fetches.origin, 0, `${other.name} fetched from the origin: ${JSON.stringify(fetches)}`);
    assert.match(other.stderr(), new RegExp(`fetched from peer ${holder}`));
  });

  test('a published version is pre-distributed: agents fetch its package before its first invocation', async () => {
    const code = pkg({ 'index.mjs': fnSource(`return 'pre';`) });
    const created = await lambda.send(new CreateFunctionCommand({ FunctionName: 'pre', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, Code: { ZipFile: code }, Publish: true }));
    const sha = Buffer.from(created.CodeSha256!, 'base64').toString('hex');
    // No agent ran it: the two least loaded (here both) are told to prefetch it, and report it held.
    await eventually(async () => {
      const v = await cluster();
      return v.agents.length === 2 && agents.every((a) => existsSync(join(a.dataDir, 'blobs', sha.slice(0, 2), sha)));
    }, 'both agents to hold the published package', 30_000);
    assert.match(agents.map((a) => a.stderr()).join(''), new RegExp(`prefetched package ${sha.slice(0, 12)}`));
  });

  test('kill -9 of an agent: later invocations are served by the other, its Event is delivered again, its reserved instances move', async (t) => {
    const { FunctionArn, Version } = await lambda.send(new PublishVersionCommand({ FunctionName: 'hello' }));
    assert.ok(FunctionArn && Version);
    await lambda.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'hello', Qualifier: Version, ProvisionedConcurrentExecutions: 2 }));
    const reservedOn = async () => {
      const v = await cluster();
      return Object.fromEntries(v.agents.map((a: any) => [a.name, a.reserved.filter((r: any) => r.functionName === 'hello').reduce((n: number, r: any) => n + r.ready, 0)]));
    };
    await eventually(async () => { const r = await reservedOn(); return r.a1 === 1 && r.a2 === 1; }, 'one reserved instance on each agent', 30_000);

    // An Event invocation that runs a while: the agent it lands on is the one killed.
    const marker = join(await mkdir('thaw-cluster-ev-'), 'runs');
    assert.equal((await invoke('ev', { file: marker, ms: 4000 }, 'Event')).status, 202);
    const firstRun = await eventually(async () => (await readFile(marker, 'utf8').catch(() => '')).split('\n').filter(Boolean)[0], 'the Event to start');
    const victim = agents.find((a) => a.name === agentOf(firstRun))!;
    const survivor = agents.find((a) => a !== victim)!;

    // Invocations keep coming while the agent dies; each either succeeds or says the agent was lost.
    let stop = false;
    const during: { status?: number; code?: string }[] = [];
    const load = (async () => {
      while (!stop) {
        try { during.push({ status: (await invoke('hello', { ms: 200 })).status }); }
        catch (err) { during.push({ code: (err as { name?: string }).name, status: (err as any).$metadata?.httpStatusCode }); }
      }
    })();
    await eventually(async () => during.length >= 2, 'invocations under way');
    victim.child.kill('SIGKILL');
    await victim.exited;
    const after = await Promise.all(Array.from({ length: 6 }, () => invoke('hello', {})));
    stop = true;
    await load;
    for (const r of after) {
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.equal(agentOf(r.body.cwd), survivor.name);
    }
    for (const r of during) assert.ok(r.status === 200 || r.status === 502, `an invocation during the kill failed otherwise: ${JSON.stringify(r)}`);
    const fleet = await cluster();
    t.diagnostic(`during the kill: ${during.filter((r) => r.status === 200).length} served, ${during.filter((r) => r.status === 502).length} lost after they started; placed elsewhere before starting: ${fleet.replaced}; placements ${JSON.stringify(fleet.placements)}`);

    // The Event runs again, on the survivor (at least once).
    const runs = await eventually(async () => { const l = (await readFile(marker, 'utf8').catch(() => '')).split('\n').filter(Boolean); return l.length >= 2 && l; }, 'the Event to be delivered again', 60_000);
    assert.equal(agentOf(runs[1]), survivor.name);
    // The dead agent leaves the fleet, and the survivor holds both reserved instances.
    await eventually(async () => { const v = await cluster(); return v.agents.length === 1 && v.agents[0].name === survivor.name; }, 'the dead agent to leave the fleet');
    await eventually(async () => (await reservedOn())[survivor.name] === 2, 'both reserved instances on the survivor', 30_000);
    // Its instances died with it: nothing runs under its cache dir.
    await eventually(async () => (await processesUnder(victim.cacheDir)).length === 0, `the killed agent's instances to be gone`, 10_000);

    // Started again on its dirs, it clears what the killed run left (package images still mounted) and rejoins;
    // stopped at the end, it leaves no mount (checked in after()).
    const back = await startAgent(victim.name, control.url, agentKey, victim.dataDir, victim.cacheDir);
    agents[agents.indexOf(victim)] = back;
    await eventually(async () => (await cluster()).agents.length === 2, 'the agent to rejoin');
    await eventually(async () => { const r = await reservedOn(); return r.a1 === 1 && r.a2 === 1; }, 'the reserved instances spread again', 30_000);
  });
});
