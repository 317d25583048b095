// The simulator: replays a trace through the real policy engine and the real ladder decision on virtual
// time, and measures cold starts and idle memory. No policy logic lives here: the same PolicyEngine,
// decideLadder and GreedyDual the agent uses make every decision; this file only moves virtual instances
// the way the agent moves real ones.
//
// Arrival model: the n invocations a function has in a trace minute arrive at independent uniform times
// inside that minute (seeded per function and minute). Each one runs for a duration drawn from the
// function's duration percentiles (linear between the published points). An instance serves one
// invocation at a time, as on Lambda. A start costs the ladder path's time from the bench (or given),
// during which the instance is busy; a pre-warmed instance is unusable until its start has finished.
// Idle instances move down the tiers as the engine decides (frozen, then paged, then stopped), as the
// agent moves them: a paged one holds its RAM fraction (resident and zram's compressed pages) and fills
// swap with its pages, and an arrival that finds it takes the paged path, like a thaw not a cold start.
import { decideLadder, DEFAULT_TIER_COSTS, formatPolicy, PolicyEngine, ramMb, resting, type PolicyDecision, type PolicyInstance, type PolicySpec, type TierCosts } from '../policies/index.ts';
import type { StartKind } from '../core/types.ts';
import { systemClock } from '../core/clock.ts';
import { DURATION_POINTS, rng, type Trace, type TraceFunction } from './trace.ts';

/** What each rung costs (the start latency an invocation feels, ms) and what a paged instance keeps. */
export type PathCosts = TierCosts;

/** The constants used when no bench results are given (src/policies/tiers.ts says where they come from). */
export const BENCH_COSTS: PathCosts = DEFAULT_TIER_COSTS;

export interface SimOptions {
  readonly policy: PolicySpec;
  /** Node memory budget for loaded instances, MB (Infinity: none). */
  readonly budgetMb?: number;
  /** Idle instances are frozen after this long (< 0: never). */
  readonly freezeAfterMs?: number;
  /** Start latency per path (virtual time) and the paged tier's memory; default the constants, BENCH_COSTS. */
  readonly costs?: PathCosts;
  /**
   * The tier facts the engine decides by and the memory is counted at, when not `costs` (a scripted
   * comparison with the live agent, whose starts take no virtual time, gives its starts no cost).
   */
  readonly tiers?: TierCosts;
  /** Whether instances can be paged out (the paged tier); default on. */
  readonly paging?: boolean;
  /** Forces the page-out this long after the freeze (as `thaw up --page-after`); -1 never; default: the policy chooses. */
  readonly pageAfterMs?: number | null;
  /** Generic runtimes kept started (0: none), refilled this long after each is taken. */
  readonly poolSize?: number;
  readonly poolRefillMs?: number;
  /** Snapshots exist for every function after its first start. */
  readonly snapshots?: boolean;
  readonly seed?: number;
  /** Only the first n minutes of the trace. */
  readonly minutes?: number;
  /**
   * Exact arrivals (function id, virtual ms, duration) instead of the per-minute counts: a scripted
   * sequence, e.g. to compare with the live agent.
   */
  readonly arrivals?: readonly { readonly fn: string; readonly at: number; readonly durationMs: number }[];
  /** Called with every decision the engine made (the same records the agent logs). */
  readonly onDecision?: (d: PolicyDecision) => void;
  readonly onProgress?: (minute: number, minutes: number) => void;
  /** Adds each function's invocations, cold starts and wasted memory to the result. */
  readonly perFunction?: boolean;
  /**
   * How a trace minute becomes arrivals. `invocation` (the default, Thaw's model): each of the n
   * invocations arrives at its own time in the minute, runs its sampled duration, one per instance.
   * `minute` (Shahrad et al.'s model): a function is loaded or not; a minute with invocations is one
   * arrival that takes no time, so `invocations` counts active function-minutes and concurrency and
   * execution time play no part.
   */
  readonly model?: SimModel;
}

export type SimModel = 'invocation' | 'minute';
export const SIM_MODELS: readonly SimModel[] = ['invocation', 'minute'];

export interface SimResult {
  readonly trace: string;
  readonly policy: string;
  readonly model: SimModel;
  readonly functions: number;
  readonly invocations: number;
  readonly coldStarts: number;
  readonly coldStartRate: number;
  readonly medianFunctionColdStartRate: number;
  readonly p75FunctionColdStartRate: number;
  readonly p99FunctionColdStartRate: number;
  /** GB·s of RAM held by instances loaded but idle, frozen or paged (a paged one at its RAM fraction). */
  readonly wastedMemoryGBs: number;
  /** GB·s of swap filled by paged instances (their pages, uncompressed). */
  readonly swapGBs: number;
  readonly instanceStarts: number;
  readonly prewarms: number;
  readonly evictions: number;
  readonly byPath: Record<StartKind, number>;
  /** Start latency felt by invocations in all, seconds. */
  readonly startPenaltySeconds: number;
  readonly decisions: Record<string, number>;
  readonly perFunction?: { id: string; invocations: number; coldStarts: number; wastedMemoryGBs: number; wastedMemoryMbMs: number }[];
  readonly simulatedMinutes: number;
  readonly wallMs: number;
}

interface SimInstance extends PolicyInstance {
  state: PolicyInstance['state'];
  /** Since when its current state's memory has been counted. */
  since: number;
  idleSince: number;
  prewarmed: boolean;
  inFlight: number;
  lastUsedAt: number;
  gone: boolean;
}

/** Events on virtual time, in a binary heap ordered by time then insertion. */
class EventQueue<T> {
  #t: number[] = [];
  #s: number[] = [];
  #v: T[] = [];
  #seq = 0;
  get size() { return this.#t.length; }
  peekTime() { return this.#t[0]; }
  push(time: number, value: T) {
    let i = this.#t.length;
    this.#t.push(time); this.#s.push(this.#seq++); this.#v.push(value);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }
  pop(): [number, T] {
    const top: [number, T] = [this.#t[0], this.#v[0]];
    const last = this.#t.length - 1;
    this.#swap(0, last);
    this.#t.pop(); this.#s.pop(); this.#v.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < this.#t.length && this.#less(l, m)) m = l;
      if (r < this.#t.length && this.#less(r, m)) m = r;
      if (m === i) break;
      this.#swap(i, m);
      i = m;
    }
    return top;
  }
  #less(a: number, b: number) { return this.#t[a] < this.#t[b] || (this.#t[a] === this.#t[b] && this.#s[a] < this.#s[b]); }
  #swap(a: number, b: number) {
    [this.#t[a], this.#t[b]] = [this.#t[b], this.#t[a]];
    [this.#s[a], this.#s[b]] = [this.#s[b], this.#s[a]];
    [this.#v[a], this.#v[b]] = [this.#v[b], this.#v[a]];
  }
}

type Ev =
  | { kind: 'arrival'; fn: number; duration: number }
  | { kind: 'done'; instance: SimInstance }
  | { kind: 'ready'; instance: SimInstance }
  | { kind: 'plan'; fn: number }
  | { kind: 'refill' }
  | { kind: 'minute'; minute: number };

/**
 * The arrival model inside one trace minute: n invocations at independent uniform times in the minute,
 * each running for a duration drawn from the function's percentiles; `r` is the minute's seeded source.
 */
export function minuteArrivals(n: number, minute: number, durationPercentiles: readonly number[], r: () => number, each: (at: number, durationMs: number) => void): void {
  for (let k = 0; k < n; k++) {
    const at = minute * 60_000 + r() * 60_000;
    each(at, sampleDuration(durationPercentiles, r()));
  }
}

/** A duration drawn from the percentile points by inverse transform, linear between them. */
export function sampleDuration(pcts: readonly number[], u: number): number {
  const q = u * 100;
  for (let k = 1; k < DURATION_POINTS.length; k++) {
    if (q <= DURATION_POINTS[k]) {
      const lo = DURATION_POINTS[k - 1], hi = DURATION_POINTS[k];
      return pcts[k - 1] + ((pcts[k] - pcts[k - 1]) * (q - lo)) / (hi - lo);
    }
  }
  return pcts[pcts.length - 1];
}

const percentile = (sorted: readonly number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] : 0);

/** Cold starts overall and their distribution over functions (those invoked at all): the headline metrics. */
export function coldStartSummary(perFunction: readonly { invocations: number; coldStarts: number }[]) {
  const rates: number[] = [];
  let invocations = 0, coldStarts = 0;
  for (const f of perFunction) {
    invocations += f.invocations;
    coldStarts += f.coldStarts;
    if (f.invocations > 0) rates.push(f.coldStarts / f.invocations);
  }
  rates.sort((a, b) => a - b);
  const r4 = (x: number) => Math.round(x * 10_000) / 10_000;
  return {
    functions: rates.length, invocations, coldStarts, coldStartRate: r4(invocations ? coldStarts / invocations : 0),
    medianFunctionColdStartRate: r4(percentile(rates, 50)), p75FunctionColdStartRate: r4(percentile(rates, 75)), p99FunctionColdStartRate: r4(percentile(rates, 99)),
  };
}

export function simulate(trace: Trace, o: SimOptions): SimResult {
  const wallStart = systemClock.monotonic();
  const costs = o.costs ?? BENCH_COSTS;
  const fns = trace.functions;
  const minutes = Math.min(trace.minutes, o.minutes ?? trace.minutes);
  const byFn: SimInstance[][] = fns.map(() => []);
  const index = new Map<string, number>(fns.map((f, i) => [f.id, i]));
  const all = new Set<SimInstance>();
  const tiers = o.tiers ?? costs;
  const paging = o.paging ?? true;
  const engine = new PolicyEngine({
    defaultPolicy: o.policy, budgetMb: o.budgetMb ?? Infinity, freezeAfterMs: o.freezeAfterMs ?? 10_000,
    tiers, paging: () => paging, pageAfterMs: o.pageAfterMs ?? null,
    instances: (fn) => byFn[index.get(fn)!] ?? [],
    allInstances: () => all,
  });
  const q = new EventQueue<Ev>();
  const planAt = new Float64Array(fns.length).fill(Infinity);
  const started = new Uint8Array(fns.length);
  const invocations = new Float64Array(fns.length);
  const colds = new Float64Array(fns.length);
  const byPath: Record<StartKind, number> = { warm: 0, thawed: 0, paged: 0, restored: 0, pooled: 0, cold: 0 };
  const decisions: Record<string, number> = {};
  let wastedMbMs = 0, swapMbMs = 0, instanceStarts = 0, prewarms = 0, evictions = 0, penaltyMs = 0, nextId = 0;
  const poolSize = o.poolSize ?? 2;
  let pooled = poolSize;
  const refillMs = o.poolRefillMs ?? 100 + costs.cold;

  const wastedByFn = new Float64Array(fns.length);
  /** Counts the memory i held resting (idle, frozen or paged) since it entered its state. */
  const account = (i: SimInstance, now: number) => {
    if (resting(i)) {
      const w = (now - i.since) * ramMb(i.state, i.memoryMb, tiers);
      wastedMbMs += w;
      wastedByFn[index.get(i.fn)!] += w;
      if (i.state === 'paged') swapMbMs += (now - i.since) * i.memoryMb * tiers.pagedSwapFraction;
    }
    i.since = now;
  };
  const move = (i: SimInstance, now: number, to: SimInstance['state']) => {
    account(i, now);
    i.state = to;
  };
  const remove = (i: SimInstance, now: number) => {
    if (i.gone) return;
    account(i, now);
    i.gone = true;
    all.delete(i);
    const list = byFn[index.get(i.fn)!];
    list.splice(list.indexOf(i), 1);
  };
  const launch = (f: number, now: number, path: StartKind, prewarmed: boolean): SimInstance => {
    const fn = fns[f];
    for (const d of engine.admit(now, fn.memoryMb)) apply(d, now);
    const i: SimInstance = { instanceId: `i${nextId++}`, fn: fn.id, state: 'starting', since: now, idleSince: now, memoryMb: fn.memoryMb, reserved: false, prewarmed, inFlight: 0, lastUsedAt: now, gone: false };
    byFn[f].push(i);
    all.add(i);
    instanceStarts++;
    if (path === 'pooled') { pooled--; q.push(now + refillMs, { kind: 'refill' }); }
    started[f] = 1;
    return i;
  };
  const pathFor = (f: number): StartKind => {
    const d = decideLadder({ instances: [], pooledRuntimes: pooled, snapshotReady: (o.snapshots ?? true) && started[f] === 1, expectedInitMs: Math.max(0, costs.cold - costs.pooled), expectedRestoreMs: costs.restored });
    return d.path;
  };
  const apply = (d: PolicyDecision, now: number) => {
    o.onDecision?.(d);
    decisions[d.action] = (decisions[d.action] ?? 0) + 1;
    const f = index.get(d.fn)!;
    if (d.action === 'prewarm') {
      for (let k = 0; k < d.count; k++) {
        const path = pathFor(f);
        const i = launch(f, now, path, !d.spare);
        prewarms++;
        q.push(now + costs[path], { kind: 'ready', instance: i });
      }
      return;
    }
    const i = byFn[f].find((x) => x.instanceId === d.instanceId);
    if (!i) return;
    if (d.action === 'freeze') { if (i.state === 'idle') move(i, now, 'frozen'); return; }
    if (d.action === 'page') { if (i.state === 'frozen') move(i, now, 'paged'); return; }
    if (d.action === 'evict') evictions++;
    remove(i, now);
  };
  const plan = (f: number, now: number) => {
    const p = engine.plan(fns[f].id, now);
    for (const d of p.decisions) apply(d, now);
    if (p.nextAt < planAt[f] || planAt[f] <= now) {
      planAt[f] = p.nextAt;
      if (Number.isFinite(p.nextAt)) q.push(p.nextAt, { kind: 'plan', fn: f });
    }
  };
  const arrive = (f: number, now: number, duration: number) => {
    const fn = fns[f];
    invocations[f]++;
    for (const d of engine.arrival(fn.id, now, { memoryMb: fn.memoryMb, coldCostMs: costs.cold })) apply(d, now);
    const list = byFn[f];
    const ladder = decideLadder({
      instances: list.map((i) => ({ instanceId: i.instanceId, state: i.state, inFlight: i.inFlight, capacity: 1, lastUsedAt: i.lastUsedAt })),
      pooledRuntimes: pooled, snapshotReady: (o.snapshots ?? true) && started[f] === 1,
      expectedInitMs: Math.max(0, costs.cold - costs.pooled), expectedRestoreMs: costs.restored,
    });
    let i: SimInstance;
    if (ladder.path === 'warm' || ladder.path === 'thawed' || ladder.path === 'paged') {
      i = list.find((x) => x.instanceId === ladder.instanceId)!;
    } else {
      i = launch(f, now, ladder.path, false);
      colds[f]++;
    }
    byPath[ladder.path]++;
    const cost = costs[ladder.path];
    penaltyMs += cost;
    move(i, now, 'busy');
    i.inFlight = 1;
    i.prewarmed = false;
    i.lastUsedAt = now;
    q.push(now + cost + duration, { kind: 'done', instance: i });
  };

  // Arrivals are generated a minute at a time, just before the minute starts.
  const byMinute = o.model === 'minute';
  const schedule = (m: number) => {
    for (let f = 0; f < fns.length; f++) {
      const n = fns[f].perMinute[m];
      if (!n) continue;
      const r = rng(((o.seed ?? 1) * 2654435761 + f * 40503 + m * 977) >>> 0);
      if (byMinute) { q.push(m * 60_000 + r() * 60_000, { kind: 'arrival', fn: f, duration: 0 }); continue; }
      minuteArrivals(n, m, fns[f].durationPercentiles, r, (at, duration) => q.push(at, { kind: 'arrival', fn: f, duration }));
    }
    if (m + 1 < minutes) q.push((m + 1) * 60_000 - 1e-6, { kind: 'minute', minute: m + 1 });
  };
  if (o.arrivals) for (const a of o.arrivals) q.push(a.at, { kind: 'arrival', fn: index.get(a.fn)!, duration: a.durationMs });
  else if (minutes > 0) schedule(0);
  const end = minutes * 60_000;
  while (q.size) {
    const now = q.peekTime();
    if (now > end) break;
    const [, ev] = q.pop();
    switch (ev.kind) {
      case 'minute': o.onProgress?.(ev.minute, minutes); schedule(ev.minute); break;
      case 'arrival': arrive(ev.fn, now, ev.duration); break;
      case 'refill': pooled = Math.min(poolSize, pooled + 1); break;
      case 'ready': {
        const i = ev.instance;
        if (i.gone || i.state !== 'starting') break;
        move(i, now, 'idle');
        i.idleSince = now;
        plan(index.get(i.fn)!, now);
        break;
      }
      case 'done': {
        const i = ev.instance;
        i.inFlight = 0;
        if (!i.gone) { move(i, now, 'idle'); i.idleSince = now; }
        engine.completion(i.fn, now);
        plan(index.get(i.fn)!, now);
        break;
      }
      case 'plan':
        if (planAt[ev.fn] !== now) break;
        planAt[ev.fn] = Infinity;
        plan(ev.fn, now);
        break;
    }
  }
  for (const i of [...all]) remove(i, end);

  return {
    trace: trace.name,
    policy: formatPolicy(o.policy),
    model: o.model ?? 'invocation',
    ...coldStartSummary(fns.map((_, f) => ({ invocations: invocations[f], coldStarts: colds[f] }))),
    wastedMemoryGBs: Math.round(wastedMbMs / 1024 / 1000),
    swapGBs: Math.round(swapMbMs / 1024 / 1000),
    instanceStarts, prewarms, evictions, byPath,
    startPenaltySeconds: Math.round(penaltyMs / 10) / 100,
    decisions,
    ...(o.perFunction ? { perFunction: fns.map((f, k) => ({ id: f.id, invocations: invocations[k], coldStarts: colds[k], wastedMemoryGBs: Math.round(wastedByFn[k] / 1024 / 1000), wastedMemoryMbMs: wastedByFn[k] })) } : {}),
    simulatedMinutes: minutes,
    wallMs: Math.round(systemClock.monotonic() - wallStart),
  };
}

export type { TraceFunction };
