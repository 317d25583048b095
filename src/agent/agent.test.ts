// The agent at its seam with the sandbox: instances run on the memory driver as a fake Node-protocol runtime
// (ready → init → initDone → invoke → result), time is a ManualClock, and the code store and the store are
// real (a temp dir, SQLite in memory). So freezing, timeouts and crashes are tested without processes and
// without waiting: time moves only when a test advances it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../core/clock.ts';
import { newInvocationId } from '../core/ids.ts';
import { LATEST, type FunctionConfig, type FunctionVersion } from '../core/types.ts';
import { BlobStore, CodeCache, defaultPackageLimits, ingestPackage, zipEntries } from '../codestore/index.ts';
import { DEFAULT_TIER_COSTS, parsePolicy, tierPlan } from '../policies/index.ts';
import type { InitSpec, InvokeSpec } from '../runtimes/index.ts';
import { memoryDriver, type MemoryUnit } from '../sandbox/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { Agent, type InvokeRequest } from './index.ts';

/** What the host sends a runtime, as far as the fake answers it (src/runtimes/node/protocol.ts). */
type HostMessage =
  | { type: 'init'; spec: InitSpec }
  | { type: 'invoke'; spec: InvokeSpec }
  | { type: 'prepareFreeze' }
  | { type: 'ping'; id: number };

/** What an invocation asks of the fake runtime: answer, never answer, or die mid-invocation. */
type Act = 'echo' | 'hang' | 'crash';

/**
 * A runtime speaking the Node protocol: ready at once, initDone on init, and per invocation what its
 * event's `act` says. `hung` hears of every invocation left unanswered, so a test knows its timer is set.
 */
function fakeNodeRuntime(units: MemoryUnit[], hung: (invocationId: string) => void) {
  return (unit: MemoryUnit) => {
    units.push(unit);
    unit.setMemory(40 * 1024 * 1024);
    unit.onMessage((raw) => {
      const m = raw as HostMessage;
      switch (m.type) {
        // A function named broken* throws at init, as a module with a bug would.
        case 'init': unit.send(m.spec.functionName.startsWith('broken') ? { type: 'initError', error: { errorType: 'Error', errorMessage: 'init boom', trace: [] }, durationMs: 0 } : { type: 'initDone', durationMs: 0 }); break;
        case 'ping': unit.send({ type: 'pong', id: m.id }); break;
        case 'prepareFreeze': unit.send({ type: 'freezeReady', heapUsedBytes: 1024 }); break;
        case 'invoke': {
          const act = (JSON.parse(m.spec.payload) as { act: Act }).act;
          if (act === 'hang') hung(m.spec.id);
          else if (act === 'crash') { unit.stderr.write('boom\n'); unit.exit(1); }
          else unit.send({ type: 'result', id: m.spec.id, ok: true, payload: JSON.stringify({ unit: unit.pid }) });
          break;
        }
      }
    });
    unit.send({ type: 'ready', pid: unit.pid, restored: false });
  };
}

/** A turn of the event loop: every message already sent has arrived and been acted on. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Agent on a manual clock, with instances on the memory driver', () => {
  const FREEZE_AFTER_MS = 1000;
  let dir: string;
  let store: Store;
  let blobs: BlobStore;
  let cache: CodeCache;
  let code: { sha256: string; size: number };
  const agents = new Set<Agent>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'thaw-agent-test-'));
    store = await openStore(':memory:');
    blobs = new BlobStore(join(dir, 'blobs'));
    cache = new CodeCache(join(dir, 'code'));
    const bytes = zipEntries([{ path: 'index.mjs', data: Buffer.from('export const handler = async () => "never run: the runtime is a fake";\n') }]);
    code = await ingestPackage({ bytes, handler: 'index.handler', blobs, cache, limits: defaultPackageLimits });
  });

  after(async () => {
    for (const a of agents) await a.destroy();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** An agent of its own per test, with the units its driver made and a way to end it that checks for leaks. */
  function rig(policy = 'fixed:10m', o: { poolSize?: number; program?: (unit: MemoryUnit) => void; canPage?: () => boolean; pageAfterMs?: number | null } = {}) {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const units: MemoryUnit[] = [];
    const waiting: ((id: string) => void)[] = [];
    const hung: string[] = [];
    const agent = new Agent({
      driver: memoryDriver(o.program ? (u) => { units.push(u); o.program!(u); } : fakeNodeRuntime(units, (id) => { const w = waiting.shift(); if (w) w(id); else hung.push(id); })),
      blobs, cache, packageLimits: defaultPackageLimits, clock, store,
      policy: parsePolicy(policy), memoryBudgetMb: 1 << 20, pageAfterMs: o.pageAfterMs ?? null, canPage: o.canPage, freezeAfterMs: FREEZE_AFTER_MS,
      poolSize: o.poolSize ?? 0, poolRefillDelayMs: 0, compileCacheDir: null,
      snapshots: { enabled: false, origin: blobs, localDir: join(dir, 'snapshots-local'), keyFile: join(dir, 'snapshot.key'), timeoutMs: 1000 },
      defaultConcurrencyLimit: 10, sweepIntervalMs: 1e9, startTimeoutMs: 5000, initTimeoutMs: 5000,
      region: 'us-east-1', scratchDir: dir,
      onCall: async () => ({ ok: false, error: { errorType: 'Unsupported', errorMessage: 'no calls in these tests', trace: [] } }),
    });
    agents.add(agent);
    const version = (functionName: string, config: Partial<FunctionConfig> = {}): FunctionVersion => ({
      functionName, version: LATEST, revisionId: `${functionName}-r1`, createdAt: clock.now(),
      config: { runtime: 'nodejs24', handler: 'index.handler', memoryMb: 128, timeoutMs: 3000, env: {}, description: '', instanceConcurrency: 1, codeSha256: code.sha256, codeSize: code.size, ...config },
    });
    const invoke = (v: FunctionVersion, act: Act) => {
      const req: InvokeRequest = {
        invocationId: newInvocationId(), version: v, qualifier: LATEST, payload: JSON.stringify({ act }), trigger: 'api',
        callerInvocationId: null, clientContext: null, concurrencyLimit: null, receivedMono: clock.monotonic(), receivedAt: clock.now(),
      };
      return agent.invoke(req);
    };
    /** Resolves with the id of the next invocation the runtime leaves unanswered, once it has it. */
    const nextHung = () => new Promise<string>((resolve) => { const id = hung.shift(); if (id) resolve(id); else waiting.push(resolve); });
    const stateOf = (instanceId: string | null) => agent.instances().find((i) => i.id === instanceId)?.state ?? 'absent';
    /** Destroys the agent and checks that it ended every unit its driver made. */
    const end = async () => {
      await agent.destroy();
      agents.delete(agent);
      assert.deepEqual(units.filter((u) => !u.hasExited).map((u) => u.pid), [], 'units left running by the agent');
    };
    return { clock, agent, units, version, invoke, nextHung, stateOf, end };
  }

  test('an idle instance is frozen after freezeAfterMs of manual time, and the next invocation thaws it', async () => {
    const { clock, agent, units, version, invoke, stateOf, end } = rig();
    const v = version('freezes');
    const first = await invoke(v, 'echo');
    assert.equal(first.record.start, 'cold');
    assert.equal(first.record.outcome, 'success');
    const id = first.record.instanceId;

    clock.advance(FREEZE_AFTER_MS - 1);
    await settle();
    assert.equal(stateOf(id), 'idle', 'not yet frozen 1 ms before the delay');
    assert.equal(units[0].frozen, false);

    clock.advance(1);
    await settle();
    assert.equal(stateOf(id), 'frozen');
    assert.equal(units[0].frozen, true, 'the unit itself is frozen, not only the instance\'s state');
    assert.deepEqual(agent.decisions('freezes').map((d) => [d.action, d.outcome]), [['freeze', 'done']]);

    const second = await invoke(v, 'echo');
    assert.equal(second.record.start, 'thawed');
    assert.equal(second.record.outcome, 'success');
    assert.equal(second.record.instanceId, id, 'the same instance served it');
    assert.equal(units.length, 1, 'no new unit was started');
    assert.equal(units[0].frozen, false);
    const report = second.logs.find((l) => l.startsWith('REPORT'));
    assert.ok(report && !report.includes('Init Duration'), `a thawed start has no init in its REPORT: ${report}`);
    assert.match(report, /Max Memory Used: 40 MB/);
    await end();
  });

  test('a frozen instance is stopped by keep-alive when its window ends, and its unit is killed', async () => {
    const { clock, units, version, invoke, stateOf, end } = rig();
    const first = await invoke(version('expires'), 'echo');
    clock.advance(FREEZE_AFTER_MS);
    await settle();
    assert.equal(stateOf(first.record.instanceId), 'frozen');
    clock.advance(10 * 60_000 - FREEZE_AFTER_MS);
    const exit = await units[0].exited;
    assert.match(exit.killReason ?? '', /^stopped: .*keep-alive window of 10\.0 min/);
    await settle();
    assert.equal(stateOf(first.record.instanceId), 'absent');
    await end();
  });

  test('the policy pages a frozen instance out when its rule says; the next invocation resumes it on the paged path', async () => {
    const { clock, agent, units, version, invoke, stateOf, end } = rig('thaw', { canPage: () => true });
    const v = version('pages');
    const first = await invoke(v, 'echo');
    const id = first.record.instanceId;
    // One invocation: no trusted histogram yet, so thaw's window is its whole 4 h range.
    const { pageAtMs, pagedStopMs } = tierPlan(4 * 3600_000, DEFAULT_TIER_COSTS, 4 * 3600_000);
    assert.ok(pageAtMs > FREEZE_AFTER_MS && Number.isFinite(pageAtMs), `${pageAtMs}`);
    clock.advance(pageAtMs - 1);
    await settle();
    assert.equal(stateOf(id), 'frozen', 'frozen, not yet paged 1 ms before');
    clock.advance(1);
    await settle();
    assert.equal(stateOf(id), 'paged');
    assert.deepEqual(agent.decisions('pages').map((d) => [d.action, d.outcome]), [['freeze', 'done'], ['page', 'done']]);
    const view = agent.instances().find((i) => i.id === id)!;
    assert.deepEqual([view.pagedFromBytes, view.pagedToBytes], [40 * 1024 * 1024, 1024 * 1024], 'the unit kept 1 MB of its 40 MB resident');
    assert.equal(agent.policies.state('pages', clock.monotonic()).paging.pagedKeepAliveMs, pagedStopMs);
    const second = await invoke(v, 'echo');
    assert.deepEqual([second.record.start, second.record.instanceId, units.length], ['paged', id, 1], 'the same instance, resumed');
    assert.equal(units[0].frozen, false);
    await end();
  });

  test('--page-after forces the page-out for any policy; without swap nothing is paged', async () => {
    const forced = rig('fixed:10m', { canPage: () => true, pageAfterMs: 5000 });
    const a = await forced.invoke(forced.version('forced'), 'echo');
    forced.clock.advance(FREEZE_AFTER_MS + 4999);
    await settle();
    assert.equal(forced.stateOf(a.record.instanceId), 'frozen');
    forced.clock.advance(1);
    await settle();
    assert.equal(forced.stateOf(a.record.instanceId), 'paged', '5 s after the freeze');
    await forced.end();
    const noSwap = rig('thaw', { canPage: () => false });
    const b = await noSwap.invoke(noSwap.version('no-swap'), 'echo');
    noSwap.clock.advance(3600_000);
    await settle();
    assert.equal(noSwap.stateOf(b.record.instanceId), 'frozen');
    assert.equal(noSwap.agent.paging, false);
    assert.deepEqual(noSwap.agent.decisions('no-swap').map((d) => d.action), ['freeze'], 'no page decision at all');
    await noSwap.end();
  });

  test('a page-out the sandbox cannot do leaves the instance frozen and turns the tier off until swap is found again', async () => {
    // A unit that never reports its memory: the memory driver cannot page it out.
    let swap = true;
    const { clock, agent, version, invoke, stateOf, end } = rig('fixed:10m', {
      canPage: () => swap, pageAfterMs: 0,
      program: (unit) => {
        unit.onMessage((raw) => {
          const m = raw as HostMessage;
          if (m.type === 'init') unit.send({ type: 'initDone', durationMs: 0 });
          else if (m.type === 'prepareFreeze') unit.send({ type: 'freezeReady', heapUsedBytes: 0 });
          else if (m.type === 'invoke') unit.send({ type: 'result', id: m.spec.id, ok: true, payload: '1' });
        });
        unit.send({ type: 'ready', pid: unit.pid, restored: false });
      },
    });
    const r = await invoke(version('unpageable'), 'echo');
    clock.advance(FREEZE_AFTER_MS);
    await settle();
    await settle();
    assert.equal(stateOf(r.record.instanceId), 'frozen', 'back to frozen');
    assert.equal(agent.paging, false, 'the tier is off');
    swap = false;
    assert.equal(agent.checkPaging(), false);
    swap = true;
    assert.equal(agent.checkPaging(), true, 'and on again once asked and found');
    await end();
  });

  test('a handler that outlives its timeout on the manual clock ends as Sandbox.Timedout, and the instance is replaced', async () => {
    const { clock, units, version, invoke, nextHung, stateOf, end } = rig();
    const v = version('slow', { timeoutMs: 1000 });
    let settled = false;
    const pending = invoke(v, 'hang').finally(() => { settled = true; });
    await nextHung();
    clock.advance(999);
    await settle();
    assert.equal(settled, false, 'still running 1 ms before the timeout');
    clock.advance(1);
    const r = await pending;
    assert.equal(r.record.outcome, 'timeout');
    assert.equal(r.record.errorType, 'Sandbox.Timedout');
    assert.equal(r.functionError, 'Unhandled');
    assert.match(JSON.parse(r.payload).errorMessage, /Task timed out after 1\.00 seconds/);
    assert.equal((await units[0].exited).killReason, 'timeout');
    await settle();
    assert.equal(stateOf(r.record.instanceId), 'absent', 'the timed-out instance is gone');

    const next = await invoke(v, 'echo');
    assert.equal(next.record.start, 'cold');
    assert.notEqual(next.record.instanceId, r.record.instanceId);
    assert.equal(units.length, 2);
    await end();
  });

  test('an instance whose unit dies mid-invocation yields a Runtime.ExitError crash; the next invocation starts a new one', async () => {
    const { units, version, invoke, stateOf, end } = rig();
    const v = version('crashes');
    const r = await invoke(v, 'crash');
    assert.equal(r.record.outcome, 'crash');
    assert.equal(r.record.errorType, 'Runtime.ExitError');
    assert.match(r.record.errorMessage ?? '', /Runtime exited with error: exit status 1/);
    assert.equal(r.functionError, 'Unhandled');
    assert.deepEqual(await units[0].exited, { code: 1, signal: null, killReason: null, oomKilled: false });
    await settle();
    assert.equal(stateOf(r.record.instanceId), 'absent');

    const next = await invoke(v, 'echo');
    assert.equal(next.record.start, 'cold');
    assert.equal(next.record.outcome, 'success');
    assert.equal(units.length, 2);
    await end();
  });

  test('an instance that dies while frozen is forgotten; the next invocation starts cold, not thawed', async () => {
    const { clock, units, version, invoke, stateOf, end } = rig();
    const v = version('dies-frozen');
    const first = await invoke(v, 'echo');
    clock.advance(FREEZE_AFTER_MS);
    await settle();
    assert.equal(stateOf(first.record.instanceId), 'frozen');
    units[0].exit(null, 'SIGKILL');
    await settle();
    assert.equal(stateOf(first.record.instanceId), 'absent');
    const next = await invoke(v, 'echo');
    assert.equal(next.record.start, 'cold');
    assert.equal(next.record.outcome, 'success');
    await end();
  });

  test('pre-warms whose init keeps failing back off (1 s, doubling) instead of restarting on every arrival', async () => {
    const { clock, agent, version, invoke, end } = rig('thaw,buffer=1');
    const v = version('broken-init');
    const prewarms = () => agent.decisions('broken-init').filter((d) => d.action === 'prewarm').map((d) => d.outcome);
    assert.equal((await invoke(v, 'echo')).record.outcome, 'init_error');
    await agent.prewarmsSettled();
    assert.deepEqual(prewarms(), ['done'], 'the buffer asked for a spare, which was started (and failed at init)');
    assert.equal((await invoke(v, 'echo')).record.outcome, 'init_error');
    await agent.prewarmsSettled();
    assert.equal(prewarms().at(-1), 'skipped', 'within the back-off the next spare is not started');
    clock.advance(1001);
    await invoke(v, 'echo');
    await agent.prewarmsSettled();
    assert.equal(prewarms().at(-1), 'done', 'after it, one is tried again');
    await invoke(v, 'echo');
    assert.equal(prewarms().at(-1), 'skipped', 'and failing again doubles the wait');
    clock.advance(1500);
    await invoke(v, 'echo');
    assert.equal(prewarms().at(-1), 'skipped', '1.5 s is inside the doubled 2 s');
    await end();
  });

  test('a runtime that fails to start every time is not restarted in a storm: the pool gives up after 3 failures', async () => {
    // Every unit dies before it is ready, as a runtime that cannot start would.
    const { clock, agent, units, version, invoke, end } = rig('fixed:10m', { poolSize: 2, program: (u) => { queueMicrotask(() => u.exit(1)); } });
    for (let i = 0; i < 120; i++) { clock.advance(1000); await settle(); }
    const afterTwoMinutes = units.length;
    assert.ok(afterTwoMinutes <= 4, `${afterTwoMinutes} starts in two minutes of a pool of 2 that never starts`);
    // An invocation still gets its answer (a start failure), and asks for at most its own start.
    await assert.rejects(invoke(version('never-starts'), 'echo'), (e: Error & { code?: string }) => e.code === 'THAW_E_SANDBOX_START_FAILED');
    for (let i = 0; i < 60; i++) { clock.advance(1000); await settle(); }
    assert.ok(units.length <= afterTwoMinutes + 1 + 2, `${units.length - afterTwoMinutes} starts after one failed invocation (its own, and one round of the pool)`);
    assert.equal(agent.instances().length, 0);
    await end();
  });
});
