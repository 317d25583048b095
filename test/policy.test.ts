// One scripted arrival sequence, fed to the live agent (virtual time on a ManualClock) and to the
// simulator: both run the same PolicyEngine, so they must take the same decisions at the same times for
// the same reasons. Once through the platform with real processes (the paged tier as this host has it),
// once through the agent on the memory driver, which pages, so that page decisions are compared too.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/core/clock.ts';
import { newInvocationId } from '../src/core/ids.ts';
import { LATEST, type FunctionVersion } from '../src/core/types.ts';
import { Agent } from '../src/agent/index.ts';
import { BlobStore, CodeCache, defaultPackageLimits, ingestPackage, zipEntries } from '../src/codestore/index.ts';
import { Platform, resolveOptions } from '../src/gateway/index.ts';
import { memoryDriver, type MemoryUnit } from '../src/sandbox/index.ts';
import { openStore } from '../src/store/index.ts';
import { simulate, type Trace } from '../src/sim/index.ts';
import { DEFAULT_TIER_COSTS, parsePolicy, type PolicyDecision, type TierCosts } from '../src/policies/index.ts';
import { scratchDirs, fnSource, getJson, pkg, processesUnder, startTestThaw, type TestThaw } from './helpers.ts';

const MIN = 60_000;

/** Every 3 minutes (and a little) for `tick`; a burst of 4 at once for `burst`, twice. */
function script() {
  const arrivals: { fn: string; at: number; durationMs: number }[] = [];
  for (let k = 0; k < 9; k++) arrivals.push({ fn: 'tick', at: 1234 + k * 3 * MIN + (k % 3) * 700, durationMs: 0 });
  for (const at of [2 * MIN + 4321, 14 * MIN + 999]) for (let k = 0; k < 4; k++) arrivals.push({ fn: 'burst', at, durationMs: 0 });
  return arrivals.sort((a, b) => a.at - b.at);
}

const view = (d: PolicyDecision) => `${(d.at / 1000).toFixed(3)}s ${d.fn} ${d.action}${'count' in d ? ` ${d.count}` : ''}: ${d.reason}`;

const END = 40 * MIN;
const POLICY = 'thaw';
const FREEZE_AFTER_MS = 20_000;

/**
 * The simulator's decisions on the script: the same functions, starts that cost nothing (virtual time
 * stands still in the agent too), the engine told the tier costs and paged tier the live agent has.
 */
function simulated(tiers: TierCosts, paging: boolean): PolicyDecision[] {
  const trace: Trace = {
    name: 'scripted', minutes: END / MIN,
    functions: ['tick', 'burst'].map((id) => ({ id, app: id, perMinute: new Uint32Array(END / MIN), durationPercentiles: [0, 0, 0, 0, 0, 0, 0], memoryMb: 128 })),
  };
  const out: PolicyDecision[] = [];
  simulate(trace, {
    policy: parsePolicy(POLICY), arrivals: script(), freezeAfterMs: FREEZE_AFTER_MS, poolSize: 0, snapshots: false, tiers, paging,
    costs: { warm: 0, thawed: 0, paged: 0, restored: 0, pooled: 0, cold: 0, pagedRamFraction: tiers.pagedRamFraction, pagedSwapFraction: tiers.pagedSwapFraction },
    onDecision: (d) => out.push(d),
  });
  return out.filter((d) => d.at <= END);
}

/** Moves the manual clock from arrival to timer to arrival until END, sending each arrival as it comes. */
async function drive(clock: ManualClock, invoke: (fn: string) => Promise<{ record: { outcome: string } }>, settled: () => Promise<void>) {
  const arrivals = script();
  let next = 0;
  for (;;) {
    const timer = clock.nextTimerAt();
    const arrival = next < arrivals.length ? arrivals[next].at : Infinity;
    const at = Math.min(timer ?? Infinity, arrival, END);
    clock.advance(at - clock.monotonic());
    if (at === arrival) {
      const now = arrivals.filter((a, i) => i >= next && a.at === at);
      next += now.length;
      // A burst is concurrent in virtual time; its invocations overlap in real time too, as the simulator assumes.
      const results = await Promise.all(now.map((a) => invoke(a.fn)));
      for (const r of results) assert.equal(r.record.outcome, 'success');
    }
    await settled();
    if (at >= END) break;
  }
}

describe('the live agent and the simulator take the same decisions', () => {
  const dirs = scratchDirs('policy');

  test('on one scripted sequence: keep-alive, freeze, unload, pre-warm and scale-in, decision for decision', async () => {
    // The live platform on a manual clock: real processes, real freezes; time moves only when told.
    const clock = new ManualClock(Date.UTC(2026, 10, 23));
    const platform = await Platform.start(resolveOptions({
      ...dirs, poolSize: 0, snapshots: false, compileCache: false, policy: POLICY, freezeAfterMs: FREEZE_AFTER_MS, policySweepMs: 1e9, eventPollIntervalMs: 1e9,
    }), clock);
    try {
      // A burst is concurrent in virtual time; its invocations overlap in real time too, as the simulator assumes.
      await platform.control.createFunction({ name: 'tick', code: pkg({ 'index.mjs': fnSource('return "ok";') }), handler: 'index.handler' });
      await platform.control.createFunction({ name: 'burst', code: pkg({ 'index.mjs': fnSource('await new Promise((r) => setTimeout(r, 300)); return "ok";') }), handler: 'index.handler' });
      await drive(clock, (fn) => platform.invoke(fn, null, '{}', { trigger: 'api' }), () => platform.agent.prewarmsSettled());
      const live = platform.agent.decisions(undefined, 1000);
      // Paged where this host has swap (the namespaces driver and swap), as the agent told its engine.
      const sim = simulated(platform.agent.policies.tiers, platform.agent.paging);
      assert.ok(sim.length >= 10, `a scenario with decisions to compare (${sim.length})`);
      for (const action of ['freeze', 'stop', 'prewarm']) assert.ok(sim.some((d) => d.action === action), `the scenario exercises ${action}`);
      assert.ok(sim.some((d) => d.reason.startsWith('scale-in')), 'and staged scale-in');
      assert.deepEqual(live.map(view), sim.map(view));
      assert.ok(live.every((d) => d.outcome === 'done'), 'the agent carried out every decision');
    } finally {
      await platform.destroy();
    }
    assert.deepEqual(await processesUnder(dirs.cacheDir), []);
  });

  test('with the paged tier on (the agent on the memory driver, which pages): page decisions too, and paged resumes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'thaw-policy-paged-'));
    const store = await openStore(':memory:');
    const blobs = new BlobStore(join(dir, 'blobs'));
    const cache = new CodeCache(join(dir, 'code'));
    const code = await ingestPackage({ bytes: zipEntries([{ path: 'index.mjs', data: Buffer.from(fnSource('return "ok";')) }]), handler: 'index.handler', blobs, cache, limits: defaultPackageLimits });
    const clock = new ManualClock(Date.UTC(2026, 10, 23));
    const units: MemoryUnit[] = [];
    const agent = new Agent({
      driver: memoryDriver((unit) => { units.push(unit); nodeProtocolEcho(unit); }),
      blobs, cache, packageLimits: defaultPackageLimits, clock, store, policy: parsePolicy(POLICY), memoryBudgetMb: 1 << 20,
      freezeAfterMs: FREEZE_AFTER_MS, pageAfterMs: null, canPage: () => true, tiers: DEFAULT_TIER_COSTS,
      poolSize: 0, poolRefillDelayMs: 0, compileCacheDir: null,
      snapshots: { enabled: false, origin: blobs, localDir: join(dir, 'snapshots-local'), keyFile: join(dir, 'snapshot.key'), timeoutMs: 1000 },
      defaultConcurrencyLimit: 10, sweepIntervalMs: 1e9, startTimeoutMs: 5000, initTimeoutMs: 5000, region: 'us-east-1', scratchDir: dir,
      onCall: async () => ({ ok: false, error: { errorType: 'Unsupported', errorMessage: 'no calls here', trace: [] } }),
    });
    const version = (functionName: string): FunctionVersion => ({
      functionName, version: LATEST, revisionId: `${functionName}-r1`, createdAt: clock.now(),
      config: { runtime: 'nodejs24', handler: 'index.handler', memoryMb: 128, timeoutMs: 3000, env: {}, description: '', instanceConcurrency: 1, codeSha256: code.sha256, codeSize: code.size },
    });
    const starts: string[] = [];
    try {
      await drive(clock, async (fn) => {
        const r = await agent.invoke({
          invocationId: newInvocationId(), version: version(fn), qualifier: LATEST, payload: '{}', trigger: 'api',
          callerInvocationId: null, clientContext: null, concurrencyLimit: null, receivedMono: clock.monotonic(), receivedAt: clock.now(),
        });
        starts.push(r.record.start ?? 'none');
        return r;
      }, async () => { await agent.prewarmsSettled(); await new Promise((r) => setImmediate(r)); });
      const live = agent.decisions(undefined, 1000);
      const sim = simulated(DEFAULT_TIER_COSTS, true);
      assert.ok(sim.some((d) => d.action === 'page'), 'the scenario pages');
      assert.deepEqual(live.map(view), sim.map(view));
      assert.ok(live.every((d) => d.outcome === 'done'), 'the agent carried out every decision');
      assert.ok(starts.includes('paged'), `an arrival found a paged instance: ${starts.join(' ')}`);
    } finally {
      await agent.destroy();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(units.filter((u) => !u.hasExited).map((u) => u.pid), [], 'no unit left running');
  });
});

/** A runtime speaking the Node protocol on the memory driver: ready, init, and "ok" to every invocation; 40 MB resident. */
function nodeProtocolEcho(unit: MemoryUnit) {
  unit.setMemory(40 * 1024 * 1024);
  unit.onMessage((raw) => {
    const m = raw as { type: string; id?: number; spec?: { id: string } };
    if (m.type === 'init') unit.send({ type: 'initDone', durationMs: 0 });
    else if (m.type === 'ping') unit.send({ type: 'pong', id: m.id });
    else if (m.type === 'prepareFreeze') unit.send({ type: 'freezeReady', heapUsedBytes: 1024 });
    else if (m.type === 'invoke') unit.send({ type: 'result', id: m.spec!.id, ok: true, payload: '"ok"' });
  });
  unit.send({ type: 'ready', pid: unit.pid, restored: false });
}
