// The policy engine and its parts over explicit times: fixed keep-alive and freezing, the hybrid
// histogram's windows and pre-warm, the tiers (frozen or paged), Greedy-Dual eviction, call-chain
// prewarm, KPA-style scaling, specs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConcurrencyWindow, CallGraph, DEFAULT_TIER_COSTS, GreedyDual, IdleHistogram, KPA_DEFAULTS, PAPER_PARAMS, PolicyEngine, desiredInstances, formatPolicy,
  hybridWindows, parsePolicy, rolloutTargets, scaleIn, tierPlan, type PolicyInstance, type PolicySpec, type TierCosts,
} from './index.ts';
import { ThawError } from '../core/errors.ts';

const MIN = 60_000;

/** An engine over a hand-kept instance table, as the drivers keep theirs. */
function rig(policy: string, o: { freezeAfterMs?: number; budgetMb?: number; paging?: boolean; pageAfterMs?: number; tiers?: TierCosts; swapBudgetMb?: number } = {}) {
  const instances: PolicyInstance[] = [];
  const engine = new PolicyEngine({
    defaultPolicy: parsePolicy(policy), budgetMb: o.budgetMb ?? Infinity, freezeAfterMs: o.freezeAfterMs ?? -1,
    paging: () => o.paging ?? false, pageAfterMs: o.pageAfterMs, tiers: o.tiers, swapBudgetMb: o.swapBudgetMb === undefined ? undefined : () => o.swapBudgetMb!,
    instances: (fn) => instances.filter((i) => i.fn === fn), allInstances: () => instances,
  });
  const add = (id: string, fn: string, i: Partial<PolicyInstance> = {}) => { instances.push({ instanceId: id, fn, state: 'idle', idleSince: 0, memoryMb: 128, reserved: false, prewarmed: false, ...i }); };
  /** One invocation of fn from `at` for `ms`. */
  const run = (fn: string, at: number, ms = 0) => { engine.arrival(fn, at, { memoryMb: 128, coldCostMs: 100 }); engine.completion(fn, at + ms); };
  return { engine, instances, add, run };
}

test('fixed keep-alive stops an idle instance exactly its TTL after it went idle, and says when to look again', () => {
  const { engine, add } = rig('fixed:10m');
  add('a', 'f', { idleSince: 1000 });
  assert.deepEqual(engine.plan('f', 1000 + 10 * MIN - 1), { decisions: [], nextAt: 1000 + 10 * MIN });
  const { decisions } = engine.plan('f', 1000 + 10 * MIN);
  assert.deepEqual(decisions.map((d) => [d.action, 'instanceId' in d && d.instanceId]), [['stop', 'a']]);
  assert.match(decisions[0].reason, /keep-alive window of 10\.0 min \(fixed/);
});

test('freezing: an idle instance is frozen once after the delay, then stopped by keep-alive; reserved ones are left alone', () => {
  const { engine, instances, add } = rig('fixed:10s', { freezeAfterMs: 500 });
  add('a', 'f', { idleSince: 1000 });
  add('r', 'f', { idleSince: 0, reserved: true });
  assert.deepEqual(engine.plan('f', 1499), { decisions: [], nextAt: 1500 });
  assert.deepEqual(engine.plan('f', 1500).decisions.map((d) => d.action), ['freeze']);
  instances[0] = { ...instances[0], state: 'frozen' };
  assert.deepEqual(engine.plan('f', 5000), { decisions: [], nextAt: 11_000 }, 'already frozen');
  assert.deepEqual(engine.plan('f', 11_000).decisions.map((d) => d.action), ['stop']);
  assert.deepEqual(engine.plan('f', 1e9).decisions.map((d) => 'instanceId' in d && d.instanceId), ['a'], 'the reserved one is never stopped');
});

/** Round numbers: a paged resume costs 10 ms more than a thaw, a start 100 ms more; paged keeps half the RAM. */
const TIERS: TierCosts = { ...DEFAULT_TIER_COSTS, thawed: 4, paged: 14, cold: 104, pagedRamFraction: 0.5, pagedSwapFraction: 0.9 };

test('tierPlan() pages at the break-even of memory held frozen against the slower resume, and keeps a paged instance on the same memory', () => {
  const t = tierPlan(10 * MIN, TIERS, 4 * 60 * MIN);
  assert.equal(t.pageAtMs, 2 * MIN, '10 min × 10 ms / (100 ms × (1 − 0.5))');
  assert.equal(t.pagedStopMs, 18 * MIN, '2 min full, then 8 min of memory at half: 16 min more');
  assert.equal(2 * MIN * 1 + (t.pagedStopMs - 2 * MIN) * 0.5, 10 * MIN * 1, 'the memory the frozen keep-alive would have held');
  assert.match(t.reason, /50% of its RAM saved for \+10 ms on its next start, a start costing 100 ms more/);
  assert.equal(tierPlan(10 * MIN, TIERS, 15 * MIN).pagedStopMs, 15 * MIN, 'stretched at most to the cap');
  assert.equal(tierPlan(10 * MIN, { ...TIERS, paged: 34 }, Infinity).pageAtMs, 6 * MIN, 'a resume 3× slower pages 3× later');
  assert.equal(tierPlan(10 * MIN, { ...TIERS, pagedRamFraction: 0.9 }, Infinity).pageAtMs, Infinity, 'paging saves too little to pay within the window');
  assert.equal(tierPlan(10 * MIN, { ...TIERS, paged: 104 }, Infinity).pageAtMs, Infinity, 'a paged resume as slow as a start: never');
  assert.equal(tierPlan(Infinity, TIERS, Infinity).pageAtMs, Infinity, 'no window (gdsf): nothing to price memory by');
  assert.equal(tierPlan(0, TIERS, Infinity).pageAtMs, Infinity, 'unloaded at once');
});

/** A function run every 30 s: a trusted histogram with no pre-warm gap, so thaw keeps it 10 min (its floor). */
function busyEvery30s(r: ReturnType<typeof rig>) {
  for (let k = 0; k < 10; k++) r.run('f', k * 30_000);
  return 9 * 30_000;
}

test('thaw pages a frozen instance at the break-even age and stops it paged at the stretched keep-alive', () => {
  const r = rig('thaw', { freezeAfterMs: 10_000, paging: true, tiers: TIERS });
  const idle = busyEvery30s(r);
  assert.equal(r.engine.windows('f').keepAliveMs, 10 * MIN);
  r.add('a', 'f', { state: 'frozen', idleSince: idle });
  assert.deepEqual(r.engine.plan('f', idle + 2 * MIN - 1), { decisions: [], nextAt: idle + 2 * MIN });
  const page = r.engine.plan('f', idle + 2 * MIN).decisions;
  assert.deepEqual(page.map((d) => [d.action, 'instanceId' in d && d.instanceId]), [['page', 'a']]);
  assert.match(page[0].reason, /^idle 2\.0 min: paged out \(50% of its RAM saved .*\); stopped at 18\.0 min idle instead of 10\.0 min$/);
  r.instances[0] = { ...r.instances[0], state: 'paged' };
  assert.deepEqual(r.engine.plan('f', idle + 10 * MIN), { decisions: [], nextAt: idle + 18 * MIN }, 'past the frozen window, inside the paged one');
  const stop = r.engine.plan('f', idle + 18 * MIN).decisions;
  assert.deepEqual(stop.map((d) => d.action), ['stop']);
  assert.match(stop[0].reason, /^idle 18\.0 min, paged, past its keep-alive of 18\.0 min \(the window of 10\.0 min for its RAM/);
  assert.deepEqual(r.engine.state('f', idle).paging, { pageAfterIdleMs: 2 * MIN, pagedKeepAliveMs: 18 * MIN, reason: page[0].reason.slice(page[0].reason.indexOf('(') + 1, page[0].reason.indexOf(')')) });
});

test('the swap budget is apart from RAM: an instance is not paged when the paged ones\' pages would pass it, and no look is booked for it in the past', () => {
  // Each 128 MB instance puts 0.92 × 128 ≈ 118 MB in swap: 200 MB hold one, not two.
  const r = rig('fixed:10m', { freezeAfterMs: 10_000, paging: true, pageAfterMs: 60_000, tiers: { ...TIERS, pagedSwapFraction: 0.92 }, swapBudgetMb: 200 });
  r.add('a', 'f', { state: 'paged', idleSince: 0 });
  r.add('b', 'f', { state: 'frozen', idleSince: 0 });
  const full = r.engine.plan('f', 70_000);
  assert.deepEqual(full.decisions, [], 'b stays frozen: no room in swap');
  assert.ok(full.nextAt > 70_000, `the next look is not in the past: ${full.nextAt}`);
  r.instances.splice(0, 1);
  assert.deepEqual(r.engine.plan('f', 70_001).decisions.map((d) => [d.action, 'instanceId' in d && d.instanceId]), [['page', 'b']], 'room again once a is gone');
  // Where the driver measured what they hold (swapMb), that counts instead of their whole memory.
  const m = rig('fixed:10m', { freezeAfterMs: 10_000, paging: true, pageAfterMs: 60_000, tiers: { ...TIERS, pagedSwapFraction: 0.92 }, swapBudgetMb: 200 });
  m.add('a', 'f', { state: 'paged', idleSince: 0, swapMb: 30 });
  m.add('b', 'f', { state: 'frozen', idleSince: 0, swapMb: 40 });
  assert.deepEqual(m.engine.plan('f', 70_000).decisions.map((d) => d.action), ['page'], '30 + 40 MB measured fit in 200');
});

test('no paged tier (no swap), or --page-after -1: nothing is paged and a frozen instance keeps its window', () => {
  for (const o of [{ paging: false }, { paging: true, pageAfterMs: -1 }]) {
    const r = rig('thaw', { freezeAfterMs: 10_000, tiers: TIERS, ...o });
    const idle = busyEvery30s(r);
    r.add('a', 'f', { state: 'frozen', idleSince: idle });
    assert.deepEqual(r.engine.plan('f', idle + 5 * MIN), { decisions: [], nextAt: idle + 10 * MIN }, JSON.stringify(o));
    assert.deepEqual(r.engine.plan('f', idle + 10 * MIN).decisions.map((d) => d.action), ['stop']);
    assert.equal(r.engine.state('f', idle).paging.pageAfterIdleMs, null);
  }
});

test('the baselines never page unless --page-after forces it, and then keep their published windows', () => {
  for (const policy of ['fixed:10m', 'hybrid:4h', 'gdsf']) {
    const r = rig(policy, { freezeAfterMs: 10_000, paging: true, tiers: TIERS });
    r.run('f', 0);
    r.add('a', 'f', { state: 'frozen', idleSince: 0 });
    assert.ok(r.engine.plan('f', 9 * MIN).decisions.every((d) => d.action !== 'page'), `${policy} chooses no paging`);
  }
  const forced = rig('fixed:10m', { freezeAfterMs: 10_000, paging: true, pageAfterMs: 60_000, tiers: TIERS });
  forced.add('a', 'f', { state: 'frozen', idleSince: 0 });
  assert.deepEqual(forced.engine.plan('f', 69_999), { decisions: [], nextAt: 70_000 });
  const page = forced.engine.plan('f', 70_000).decisions;
  assert.deepEqual(page.map((d) => d.action), ['page']);
  assert.match(page[0].reason, /paged out \(page-out forced 1\.0 min after the freeze\); stopped at 10\.0 min idle, as frozen$/);
  forced.instances[0] = { ...forced.instances[0], state: 'paged' };
  assert.deepEqual(forced.engine.plan('f', 10 * MIN).decisions.map((d) => d.action), ['stop'], 'fixed:10m stays 10 min, paged or not');
  // Forced to page at the freeze: both in one plan, in that order.
  const atOnce = rig('fixed:10m', { freezeAfterMs: 1000, paging: true, pageAfterMs: 0, tiers: TIERS });
  atOnce.add('a', 'f', { idleSince: 0 });
  assert.deepEqual(atOnce.engine.plan('f', 1000).decisions.map((d) => d.action), ['freeze', 'page']);
});

test('the memory budget counts a paged instance at its paged RAM, and evicting one frees only that', () => {
  const tiers = { ...TIERS, pagedRamFraction: 0.25 };
  const paged = rig('thaw', { budgetMb: 512, paging: true, tiers });
  for (let k = 0; k < 4; k++) paged.add(`p${k}`, `f${k}`, { state: 'paged', memoryMb: 256 });
  assert.deepEqual(paged.engine.admit(0, 256), [], '4 × 64 MB paged + 256 MB fit in 512 MB');
  const evicted = paged.engine.admit(0, 400);
  assert.equal(evicted.length, 3, '656 MB: 144 MB over, three paged instances of 64 MB each');
  assert.match(evicted[0].reason, /256 MB loaded, 400 MB needed/);
  const frozen = rig('thaw', { budgetMb: 512, paging: true, tiers });
  for (let k = 0; k < 4; k++) frozen.add(`p${k}`, `f${k}`, { state: 'frozen', memoryMb: 256 });
  assert.equal(frozen.engine.admit(0, 256).length, 3, 'frozen, they hold all 1024 MB');
});

test('the idle-time histogram: percentiles by 1-minute bin, CV, out-of-bounds idle times', () => {
  const h = new IdleHistogram(4 * 60 * MIN, MIN);
  assert.equal(h.bins.length, 240);
  for (let k = 0; k < 19; k++) h.add(10 * MIN + 5000);
  h.add(30 * MIN);
  assert.equal(h.percentileBin(5), 10);
  assert.equal(h.percentileBin(99), 30);
  assert.ok(h.cv() > 2, `idle times in two bins are concentrated (CV ${h.cv()})`);
  h.add(5 * 60 * MIN);
  assert.equal(h.outOfBounds, 1);
  assert.deepEqual(h.nonEmpty(), [[10, 19], [30, 1]]);
});

test('hybrid windows: pre-warm from the head, keep-alive from the tail, with the 10 % margins', () => {
  const h = new IdleHistogram(4 * 60 * MIN, MIN);
  for (let k = 0; k < 20; k++) h.add(10 * MIN + 5000);
  const w = hybridWindows(h, PAPER_PARAMS);
  assert.equal(w.mode, 'histogram');
  assert.equal(w.prewarmMs, 9 * MIN, '10 min head less 10 %');
  assert.equal(w.keepAliveMs, Math.ceil(11 * MIN * 1.1) - 9 * MIN, 'tail bin end (11 min) plus 10 %, after the pre-warm');
});

test('hybrid fallbacks: too few or too spread idle times keep the whole range; mostly out-of-bounds ones are forecast', () => {
  const empty = new IdleHistogram(4 * 60 * MIN, MIN);
  assert.deepEqual([hybridWindows(empty, PAPER_PARAMS).mode, hybridWindows(empty, PAPER_PARAMS).keepAliveMs], ['fallback', 4 * 60 * MIN]);
  const spread = new IdleHistogram(4 * 60 * MIN, MIN);
  for (let b = 0; b < 240; b++) spread.add(b * MIN + 1);
  assert.match(hybridWindows(spread, PAPER_PARAMS).reason, /not representative \(CV 0\.00/);
  const far = new IdleHistogram(4 * 60 * MIN, MIN);
  for (let k = 0; k < 4; k++) far.add(6 * 60 * MIN);
  const w = hybridWindows(far, PAPER_PARAMS);
  assert.deepEqual([w.mode, w.prewarmMs, w.keepAliveMs], ['out-of-bounds', Math.floor(6 * 60 * MIN * 0.85), Math.ceil(6 * 60 * MIN * 0.3)]);
});

test('hybrid in the engine: a periodic function is unloaded after it runs and pre-warmed before its next call', () => {
  const { engine, instances, add, run } = rig('hybrid:4h');
  for (let k = 0; k < 10; k++) run('f', k * 10 * MIN);
  add('a', 'f', { idleSince: 90 * MIN });
  const last = 90 * MIN;
  const p = engine.plan('f', last);
  assert.deepEqual(p.decisions.map((d) => d.action), ['stop'], 'unloaded at once');
  assert.match(p.decisions[0].reason, /unloaded until the pre-warm window ends in 9\.0 min/);
  instances.length = 0;
  assert.equal(p.nextAt, last + 9 * MIN, 'looks again when the pre-warm window ends');
  const pw = engine.plan('f', last + 9 * MIN);
  assert.deepEqual(pw.decisions.map((d) => [d.action, 'count' in d && d.count]), [['prewarm', 1]]);
  assert.deepEqual(engine.plan('f', last + 9 * MIN).decisions, [], 'a pre-warm is issued once per idle period');
  add('p', 'f', { idleSince: last + 9 * MIN + 50, prewarmed: true });
  const kept = engine.plan('f', last + 10 * MIN);
  assert.deepEqual(kept.decisions, [], 'the pre-warmed instance waits inside its window');
  assert.equal(kept.nextAt, last + 9 * MIN + 50 + engine.windows('f').keepAliveMs);
});

test('Greedy-Dual: lowest frequency × cost / size goes first, and the clock ages what is left', () => {
  const g = new GreedyDual();
  for (let k = 0; k < 5; k++) g.touch('hot', 100, 128);
  g.touch('cold', 100, 128);
  g.touch('big', 100, 1024);
  const cands = [{ instanceId: 'h', fn: 'hot', memoryMb: 128 }, { instanceId: 'c', fn: 'cold', memoryMb: 128 }, { instanceId: 'b', fn: 'big', memoryMb: 1024 }];
  assert.deepEqual(g.evict(cands, 1000, 100, 2000), [], 'fits');
  assert.deepEqual(g.evict(cands, 2000, 100, 2000).map((c) => c.instanceId), ['b'], 'big and rarely used: lowest priority');
  assert.equal(g.clock, 100 / 1024);
  assert.deepEqual(g.evict(cands.slice(0, 2), 2000, 200, 2000).map((c) => c.instanceId), ['c', 'h']);
});

test('the engine evicts idle instances under its memory budget; busy and reserved ones never', () => {
  const { engine, add, run } = rig('thaw', { budgetMb: 512 });
  run('a', 0); run('b', 0); run('b', 1);
  add('a1', 'a'); add('b1', 'b'); add('x', 'c', { state: 'busy' }); add('r', 'c', { reserved: true });
  assert.deepEqual(engine.admit(10, 128).map((d) => [d.action, 'instanceId' in d && d.instanceId]), [['evict', 'a1']]);
  assert.deepEqual(engine.admit(10, 100_000).map((d) => 'instanceId' in d && d.instanceId).sort(), ['a1', 'b1'], 'over budget even so: the start goes ahead');
  assert.deepEqual(rig('thaw').engine.admit(0, 1e9), [], 'no budget, no eviction');
});

test('call chains: A calls B in most runs, so an arrival of A warms B when B has nothing spare', () => {
  const g = new CallGraph(0.5, 3);
  for (let k = 0; k < 4; k++) { g.run('A'); g.call('A', 'B'); if (k === 0) g.call('A', 'C'); }
  assert.deepEqual(g.predict('A').map((p) => [p.callee, p.probability]), [['B', 1]]);
  const { engine, add } = rig('thaw');
  for (let k = 0; k < 3; k++) { engine.arrival('A', k, { memoryMb: 128, coldCostMs: 10 }); engine.call('A', 'B'); engine.completion('A', k); }
  const d = engine.arrival('A', 10, { memoryMb: 128, coldCostMs: 10 });
  assert.deepEqual(d.map((x) => [x.fn, x.action]), [['B', 'prewarm']]);
  assert.match(d[0].reason, /A calls B in 75% of 4 invocations/);
  add('b1', 'B');
  assert.deepEqual(engine.arrival('A', 11, { memoryMb: 128, coldCostMs: 10 }), [], 'B has an idle instance');
  assert.deepEqual(rig('fixed:10m').engine.arrival('A', 0, { memoryMb: 128, coldCostMs: 1 }), [], 'only the thaw policy prewarms call chains');
});

test('rollouts warm each routed version in proportion to its weight', () => {
  assert.deepEqual(rolloutTargets([{ version: '1', weight: 0.9 }, { version: '2', weight: 0.1 }], 10), [{ version: '1', count: 9 }, { version: '2', count: 1 }]);
  assert.deepEqual(rolloutTargets([{ version: '2', weight: 1 }, { version: '1', weight: 0 }], 0), [{ version: '2', count: 1 }]);
});

test('autoscaling: time-weighted concurrency, panic on a burst, staged scale-in after the cooldown', () => {
  const w = new ConcurrencyWindow();
  w.change(0, +2, 60_000);
  w.change(30_000, -2, 60_000);
  assert.equal(w.average(60_000, 60_000), 1, '2 for half the window');
  const p = { ...KPA_DEFAULTS, targetUtilization: 1 };
  const burst = new ConcurrencyWindow();
  for (let k = 0; k < 8; k++) burst.change(100_000, +1, 60_000);
  const s = desiredInstances(burst, 106_000, 1, p);
  assert.equal(s.mode, 'panic');
  assert.ok(s.desired >= 8, `desired ${s.desired}`);
  const calm = new ConcurrencyWindow();
  calm.change(0, +1, 60_000); calm.change(1, -1, 60_000);
  assert.equal(scaleIn(calm, 100_000, 6, 1, p), 0, 'cooldown starts');
  assert.equal(scaleIn(calm, 100_000 + p.scaleInCooldownMs - 1, 6, 1, p), 0);
  assert.equal(scaleIn(calm, 100_000 + p.scaleInCooldownMs, 6, 1, p), 2, 'half the surplus of 5, rounded down');
  assert.equal(scaleIn(calm, 100_000 + p.scaleInCooldownMs + 1, 4, 1, p), 0, 'next stage waits another cooldown');
  assert.equal(scaleIn(calm, 100_000, 1, 1, p), 0);
  assert.equal(calm.belowSince, null, 'reset once desired is met');
});

test('thaw scales in surplus idle instances in stages, never the last one', () => {
  const { engine, add, run } = rig('thaw');
  for (let k = 0; k < 4; k++) run('f', 0, 10);
  for (let k = 0; k < 4; k++) add(`i${k}`, 'f', { idleSince: 10 + k });
  assert.deepEqual(engine.plan('f', 100_000).decisions, [], 'cooldown first');
  const d = engine.plan('f', 100_000 + 60_000).decisions;
  assert.deepEqual(d.map((x) => 'instanceId' in x && x.instanceId), ['i0'], 'the longest idle goes first; half the surplus of 3');
  assert.match(d[0].reason, /^scale-in: 4 instances/);
});

test('a buffer keeps spare instances beside the running ones while the function is active', () => {
  const { engine, instances, add } = rig('thaw,buffer=2');
  const arrive = (at: number) => engine.arrival('f', at, { memoryMb: 128, coldCostMs: 100 });
  // Nothing yet: this invocation starts its own instance, and two spares are started beside it.
  const first = arrive(0);
  assert.deepEqual(first.map((d) => [d.action, 'count' in d && d.count]), [['prewarm', 2]]);
  assert.match(first[0].reason, /^buffer: 0 spare of 2/);
  assert.equal('spare' in first[0] && first[0].spare, true, 'spares for the current activity, not a predicted arrival');
  add('run', 'f', { state: 'busy' });
  add('s1', 'f', { state: 'starting' });
  add('s2', 'f', { state: 'starting' });
  assert.deepEqual(arrive(10), [], 'starting spares count: the second arrival takes none of them yet');
  instances[1] = { ...instances[1], state: 'idle' };
  instances[2] = { ...instances[2], state: 'idle' };
  add('run2', 'f', { state: 'busy' });
  const third = arrive(20);
  assert.deepEqual(third.map((d) => 'count' in d && d.count), [1], 'takes one of two idle spares: one more is started');
  // Scale-in counts the buffer among the instances wanted while the function is active.
  const scaledIn = (spec: string) => {
    const r = rig(spec);
    for (let k = 0; k < 5; k++) r.add(`i${k}`, 'f', { idleSince: 1000 + k });
    r.run('f', 0, 1000);
    return r.engine.plan('f', 30_000).decisions.filter((d) => d.action === 'stop').length;
  };
  assert.equal(scaledIn('thaw,cooldown=0ms'), 2, '5 instances, 1 wanted: half the surplus of 4');
  assert.equal(scaledIn('thaw,cooldown=0ms,buffer=2'), 1, '5 instances, 1 + 2 spare wanted: half the surplus of 2');
  assert.deepEqual(rig('thaw').engine.arrival('f', 0, { memoryMb: 128, coldCostMs: 100 }), [], 'no buffer by default');
});

test('with a buffer, a plan that leaves more than one instance looks again once the stable window is quiet', () => {
  const { engine, add, run } = rig('thaw,buffer=1');
  const T = 10 * 60 * MIN;
  run('f', T, 1000);
  add('old', 'f', { idleSince: 0 });
  add('a', 'f', { idleSince: T + 1000 });
  add('b', 'f', { idleSince: T + 1000 });
  const p = engine.plan('f', T + 2000);
  assert.deepEqual(p.decisions.map((d) => [d.action, 'instanceId' in d && d.instanceId]), [['stop', 'old']], 'past the 4 h fallback window');
  assert.equal(p.nextAt, T + 1000 + engine.autoscale.stableWindowMs, 'two are left: the spare goes once the function is quiet');
});

test('a periodic function with a buffer: its spare is unloaded with it between calls, and the pre-warm still comes', () => {
  const { engine, instances, add, run } = rig('thaw,buffer=1');
  for (let k = 0; k < 10; k++) run('f', k * 10 * MIN);
  const last = 90 * MIN;
  add('a', 'f', { idleSince: last });
  add('spare', 'f', { idleSince: last - 30_000 });
  const p = engine.plan('f', last);
  assert.deepEqual(p.decisions.map((d) => [d.action, 'instanceId' in d && d.instanceId]), [['stop', 'a'], ['stop', 'spare']]);
  instances.length = 0;
  assert.deepEqual(engine.plan('f', last + 9 * MIN).decisions.map((d) => d.action), ['prewarm']);
});

test('policy specs parse, print back, and refuse nonsense with a stable code', () => {
  for (const t of ['fixed:10m', 'hybrid:4h', 'gdsf', 'gdsf:16g', 'thaw', 'thaw:2h', 'thaw:4h:8g', 'fixed:90s', 'thaw,buffer=1', 'thaw:2h,buffer=3,utilization=0.5,cooldown=2m']) assert.equal(formatPolicy(parsePolicy(t)), t);
  assert.deepEqual(parsePolicy('fixed:1.5h'), { kind: 'fixed', ttlMs: 5_400_000 } satisfies PolicySpec);
  assert.deepEqual(parsePolicy('thaw,cooldown=30s,buffer=1'), { kind: 'thaw', rangeMs: 4 * 3600_000, budgetMb: null, scaling: { scaleInCooldownMs: 30_000, buffer: 1 } } satisfies PolicySpec);
  for (const bad of ['', 'fixed', 'fixed:10', 'fixed:-1m', 'hybrid:1m', 'hybrid:2d', 'gdsf:1m', 'lru:10m', 'thaw:4h:8g:x', 'x'.repeat(101),
    'fixed:10m,buffer=1', 'thaw,buffer', 'thaw,buffer=-1', 'thaw,buffer=1.5', 'thaw,buffer=1,buffer=2', 'thaw,utilization=0', 'thaw,utilization=2',
    'thaw,cooldown=2d', 'thaw,spare=1', 'thaw,']) {
    assert.throws(() => parsePolicy(bad), (e: unknown) => e instanceof ThawError && e.code === 'THAW_E_INVALID_POLICY', bad);
  }
});
