// `thaw why` (GET /thaw/v1/invocations/{id}/why): an invocation's start explained. A warm one names its
// tier; a cold one gives the cause the agent recorded when the start began (src/agent/causes.ts) and what
// would have avoided it with its cost, found by replaying the recorded invocations through the policy engine
// with the alternative (src/sim/whatif.ts). Imports src/core, src/policies, src/sim.
import { USER_TRIGGERS, type ColdStartCause, type InvocationRecord } from '../core/types.ts';
import { formatDuration, parsePolicy } from '../policies/index.ts';
import { whatIf, type RecordedArrival, type Setting, type WhatIf } from '../sim/index.ts';

export interface AvoidableBy {
  /** What would have been different: a longer keep-alive, a larger budget, spare or reserved instances… */
  readonly kind: 'keep-alive' | 'scale-in-cooldown' | 'memory-budget' | 'buffer' | 'reserved' | 'version-prewarm' | 'provisioned' | 'none';
  readonly text: string;
  /** Its cost, GB·s of memory held (null where no policy would have helped). */
  readonly costGBs: number | null;
  /** The alternative setting, where it is one (a policy spec, a budget in MB, an instance count). */
  readonly alternative: string | number | null;
  /** The replay it was measured by, where it was replayed. */
  readonly replay?: WhatIf;
}

export interface WhyReport {
  readonly invocationId: string;
  readonly functionName: string;
  readonly version: string;
  readonly start: InvocationRecord['start'];
  readonly warm: boolean;
  /** A cold start's cause; `warm`, `not-started` (throttled, refused) or `unknown` (recorded without one) otherwise. */
  readonly cause: ColdStartCause['cause'] | 'warm' | 'not-started' | 'unknown';
  readonly detail: string;
  readonly facts: ColdStartCause['facts'] | null;
  readonly avoidableBy: AvoidableBy | null;
  /** One or two sentences saying all of it. */
  readonly summary: string;
}

/** The recorded invocations the replay takes, the one asked about last. */
export interface History {
  /** The function's user invocations (newest first or any order). */
  readonly fn: readonly InvocationRecord[];
  /** Every function's, for a node-wide setting (the memory budget). */
  node(): Promise<readonly InvocationRecord[]>;
  /** When the function was created (epoch ms), for what a provisioned instance since then would have cost. */
  readonly createdAt: number | null;
}

const WARM_TIERS: Record<string, string> = {
  warm: 'an instance that was already running and idle',
  thawed: 'a frozen instance, thawed for it (no start)',
  paged: 'a paged-out instance, thawed and paged back in for it (no start)',
};

export async function explain(rec: InvocationRecord, history: History): Promise<WhyReport> {
  const base = { invocationId: rec.id, functionName: rec.functionName, version: rec.version, start: rec.start };
  if (rec.start === null) {
    const detail = `it never started: ${rec.outcome}${rec.errorMessage ? ` (${rec.errorMessage})` : ''}`;
    return { ...base, warm: false, cause: 'not-started', detail, facts: null, avoidableBy: null, summary: `Invocation ${rec.id} of ${rec.functionName} ${detail}.` };
  }
  if (rec.start in WARM_TIERS) {
    const detail = `it ran on ${WARM_TIERS[rec.start]}`;
    return { ...base, warm: true, cause: 'warm', detail, facts: null, avoidableBy: null, summary: `Invocation ${rec.id} of ${rec.functionName}:${rec.version} was warm (${rec.start}): ${detail}.` };
  }
  if (!rec.cause) {
    const detail = 'its record names no cause (recorded by a Thaw without `thaw why`, or by a start ahead of demand)';
    return { ...base, warm: false, cause: 'unknown', detail, facts: null, avoidableBy: null, summary: `Invocation ${rec.id} of ${rec.functionName} was a ${rec.start} start; ${detail}.` };
  }
  const avoidableBy = await avoidance(rec, rec.cause, history);
  return {
    ...base, warm: false, cause: rec.cause.cause, detail: rec.cause.detail, facts: rec.cause.facts, avoidableBy,
    summary: `Invocation ${rec.id} of ${rec.functionName}:${rec.version} was a ${rec.start} start (${rec.cause.cause}): ${rec.cause.detail}. ${capital(avoidableBy.text)}.`,
  };
}

/** The recorded user invocations up to and including rec, rec last, as the simulator's arrivals. */
export function arrivalsUpTo(rec: InvocationRecord, records: readonly InvocationRecord[]): RecordedArrival[] {
  const prior = records
    .filter((r) => r.id !== rec.id && r.receivedAt <= rec.receivedAt && r.start !== null && USER_TRIGGERS.includes(r.trigger))
    .sort((a, b) => a.receivedAt - b.receivedAt);
  // The whole time from receipt to the end (its start included): the replay's starts take no time, so
  // each instance goes idle when the real one did.
  return [...prior, rec].map((r) => ({ fn: r.functionName, at: r.receivedAt, durationMs: r.durationMs, memoryMb: r.memoryMb }));
}

const gbs = (memoryMb: number, ms: number) => Math.round((memoryMb / 1024) * (ms / 1000) * 10_000) / 10_000;

/** The cheapest alternative that would have made it warm, with its cost. */
export async function avoidance(rec: InvocationRecord, c: ColdStartCause, history: History): Promise<AvoidableBy> {
  const f = c.facts;
  const policy = f.lastEnd?.policy ?? f.policy;
  const fnArrivals = () => arrivalsUpTo(rec, history.fn);
  switch (c.cause) {
    case 'expired-keep-alive':
      return longerWindow(fnArrivals(), rec.functionName, policy, f.idleGapMs ?? 0, (ms) => `fixed:${Math.round(ms)}ms`, 'keep-alive',
        (ms, r) => `a keep-alive of ${human(ms)} would have kept it warm, costing ${r.extraGBs} GB·s of idle memory more over the ${r.invocations} recorded invocation(s) (replayed through the policy engine)`);
    case 'scaled-in': {
      const p = parsePolicy(policy);
      if (p.kind !== 'thaw') return longerWindow(fnArrivals(), rec.functionName, policy, f.idleGapMs ?? 0, (ms) => `fixed:${Math.round(ms)}ms`, 'keep-alive', (ms, r) => `a keep-alive of ${human(ms)} would have kept it warm, costing ${r.extraGBs} GB·s more`);
      const withCooldown = (ms: number) => `${policy.replace(/,cooldown=[^,]*/, '')},cooldown=${formatDuration(Math.round(ms))}`;
      return longerWindow(fnArrivals(), rec.functionName, policy, f.idleGapMs ?? 0, withCooldown, 'scale-in-cooldown',
        (ms, r) => `a scale-in cooldown of ${human(ms)} (${withCooldown(ms)}) would have kept the instance, costing ${r.extraGBs} GB·s more over the ${r.invocations} recorded invocation(s)`);
    }
    case 'evicted-memory': {
      const e = f.lastEnd!;
      const budget = e.budgetMb ?? Infinity;
      // What was loaded plus what was needed, and in any case more than the budget it had (older records may lack the sizes).
      const wanted = Math.max(Math.ceil(((e.loadedMb ?? 0) + (e.neededMb ?? rec.memoryMb)) / 64) * 64, Number.isFinite(budget) ? Math.floor(budget / 64) * 64 + 64 : 0);
      const r = whatIf(arrivalsUpTo(rec, await history.node()), rec.functionName, { policy, budgetMb: budget }, { policy, budgetMb: wanted }, { nodeWide: true });
      const warm = r.lastWarm.alternative ? 'would have kept it loaded' : 'would not have kept it loaded in the replay either';
      return { kind: 'memory-budget', alternative: wanted, costGBs: r.extraGBs, replay: r, text: `a memory budget of ${wanted} MB (not ${budget} MB) ${warm}, costing ${r.extraGBs} GB·s of idle memory more on the node over the ${r.invocations} recorded invocation(s)` };
    }
    case 'burst': {
      const n = Math.max(1, f.busy);
      const p = parsePolicy(policy);
      if (p.kind === 'thaw') {
        const alt = `${policy.replace(/,buffer=[^,]*/, '')},buffer=${n}`;
        const r = whatIf(fnArrivals(), rec.functionName, { policy }, { policy: alt });
        if (r.lastWarm.alternative) return { kind: 'buffer', alternative: alt, costGBs: r.extraGBs, replay: r, text: `a buffer of ${n} spare instance(s) (${alt}) would have taken it, costing ${r.extraGBs} GB·s of idle memory more over the ${r.invocations} recorded invocation(s)` };
      }
      const perHour = gbs(rec.memoryMb * n, 3600_000);
      return { kind: 'reserved', alternative: n, costGBs: perHour, text: `${n} reserved instance(s) beside the busy one(s) would have taken it, costing ${perHour} GB·s per hour they are held` };
    }
    case 'reserved-exhausted': {
      const n = (f.reserved?.configured ?? 0) + 1;
      const perHour = gbs(rec.memoryMb, 3600_000);
      return { kind: 'reserved', alternative: n, costGBs: perHour, text: `${n} reserved instances instead of ${n - 1} would have taken it, costing ${perHour} GB·s more per hour` };
    }
    case 'new-version': {
      const cost = gbs(rec.memoryMb, rec.initMs);
      if (f.versionPrewarm === 'waited') return { kind: 'version-prewarm', alternative: null, costGBs: null, text: 'the version prewarm had started it already; deploying a little ahead of the traffic would have let it finish' };
      return { kind: 'version-prewarm', alternative: null, costGBs: cost, text: `a warm-up invocation right after the deploy would have started it ahead, costing ${cost} GB·s (its init) plus its idle time until this call` };
    }
    case 'first-invocation': {
      const since = history.createdAt === null ? null : Math.max(0, rec.receivedAt - history.createdAt);
      const cost = since === null ? null : gbs(rec.memoryMb, since);
      return { kind: 'provisioned', alternative: 1, costGBs: cost, text: since === null ? 'a reserved instance (thaw reserve) would have been ready for it' : `a reserved instance started when the function was created (${human(since)} before) would have been ready for it, costing ${cost} GB·s` };
    }
    case 'crashed':
      return { kind: 'none', alternative: null, costGBs: null, text: 'no policy would have: the instance it would have used had died; fix the crash (thaw logs) or keep a spare (buffer) to hide the start' };
    case 'retired':
      return { kind: 'none', alternative: null, costGBs: null, text: 'no policy would have: its instances were stopped because the function changed' };
  }
}

/**
 * The shortest window (from the idle gap plus a margin, doubled until it works, at most 4 tries) whose
 * replay keeps the last arrival warm, and its cost.
 */
function longerWindow(arrivals: RecordedArrival[], fn: string, policy: string, gapMs: number, spec: (ms: number) => string, kind: AvoidableBy['kind'], say: (ms: number, r: WhatIf) => string): AvoidableBy {
  const actual: Setting = { policy };
  let ms = niceCeil(gapMs * 1.2 + 100);
  let r = whatIf(arrivals, fn, actual, { policy: spec(ms) });
  for (let k = 0; k < 3 && !r.lastWarm.alternative; k++) {
    ms = niceCeil(ms * 2);
    r = whatIf(arrivals, fn, actual, { policy: spec(ms) });
  }
  if (!r.lastWarm.alternative) return { kind, alternative: spec(ms), costGBs: null, replay: r, text: `not even ${human(ms)} kept it warm when the recorded invocations were replayed` };
  return { kind, alternative: spec(ms), costGBs: r.extraGBs, replay: r, text: say(ms, r) };
}

/** Rounded up to two significant figures of its unit (ms, s, min, h). */
function niceCeil(ms: number): number {
  const unit = ms >= 3600_000 ? 3600_000 : ms >= 60_000 ? 60_000 : ms >= 1000 ? 1000 : 1;
  const v = ms / unit;
  const step = v >= 10 ? 1 : 0.1;
  return Math.ceil(v / step) * step * unit;
}

function human(ms: number): string {
  const r = (x: number) => String(Math.round(x * 10) / 10);
  if (ms >= 3600_000) return `${r(ms / 3600_000)} h`;
  if (ms >= 60_000) return `${r(ms / 60_000)} min`;
  if (ms >= 1000) return `${r(ms / 1000)} s`;
  return `${Math.round(ms)} ms`;
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
