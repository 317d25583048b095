// What an alternative policy would have done with recorded traffic (`thaw why`'s avoidableBy): the
// recorded arrivals replayed through the simulator (the real PolicyEngine on virtual time) once as they
// were configured and once with the alternative, compared by the simulator's own accounting: whether the
// last arrival found an instance, and the idle memory each kept. Imports src/core and src/policies.
import { DEFAULT_TIER_COSTS, parsePolicy } from '../policies/index.ts';
import { simulate, type PathCosts } from './simulate.ts';
import type { Trace } from './trace.ts';

/** One recorded invocation: its function, when it arrived (epoch or any origin, ms) and how long it ran. */
export interface RecordedArrival { readonly fn: string; readonly at: number; readonly durationMs: number; readonly memoryMb: number }

export interface Setting { readonly policy: string; readonly budgetMb?: number }

export interface WhatIf {
  /** Whether the last arrival found an instance (warm, thawed or paged) under each setting. */
  readonly lastWarm: { readonly actual: boolean; readonly alternative: boolean };
  readonly coldStarts: { readonly actual: number; readonly alternative: number };
  /** Idle memory of the target function (or of every function, for a node-wide setting) held in the replay, GB·s. */
  readonly idleGBs: { readonly actual: number; readonly alternative: number };
  /** What the alternative costs more, GB·s (never below 0). */
  readonly extraGBs: number;
  readonly invocations: number;
  /** The replayed span, first arrival to the last, ms. */
  readonly spanMs: number;
}

/**
 * Replays `arrivals` (the last one is the invocation asked about, of function `target`) under `actual` and
 * `alternative`. With `nodeWide` every function's idle memory counts (a budget is the node's), else the
 * target's. Starts take no virtual time unless `costs` are given, so the replay's gaps are the recorded ones.
 */
export function whatIf(arrivals: readonly RecordedArrival[], target: string, actual: Setting, alternative: Setting, o: { nodeWide?: boolean; freezeAfterMs?: number; costs?: PathCosts } = {}): WhatIf {
  if (!arrivals.length) throw new Error('whatIf needs at least the arrival asked about');
  const t0 = Math.min(...arrivals.map((a) => a.at));
  const memory = new Map<string, number>();
  for (const a of arrivals) memory.set(a.fn, a.memoryMb);
  const scripted = arrivals.map((a) => ({ fn: a.fn, at: a.at - t0, durationMs: a.durationMs }));
  const spanMs = Math.max(...scripted.map((a) => a.at));
  // The replay ends at the last arrival: memory kept after it is not what this invocation's warmth cost.
  const trace: Trace = {
    name: 'recorded', minutes: (spanMs + 1e-3) / 60_000,
    functions: [...memory].map(([id, memoryMb]) => ({ id, app: id, memoryMb, perMinute: new Uint32Array(0), durationPercentiles: [0, 0, 0, 0, 0, 0, 0] })),
  };
  const run = (s: Setting, list: typeof scripted) => {
    const r = simulate(trace, {
      policy: parsePolicy(s.policy), budgetMb: s.budgetMb ?? Infinity, arrivals: list, perFunction: true,
      freezeAfterMs: o.freezeAfterMs, poolSize: 0, snapshots: false, paging: false, costs: o.costs ?? FREE_STARTS,
    });
    const mine = r.perFunction!.find((f) => f.id === target)!;
    const mbMs = o.nodeWide ? r.perFunction!.reduce((n, f) => n + f.wastedMemoryMbMs, 0) : mine.wastedMemoryMbMs;
    return { colds: mine.coldStarts, gbs: mbMs / 1024 / 1000 };
  };
  const before = scripted.slice(0, -1);
  const outcome = (s: Setting) => {
    const all = run(s, scripted);
    const prior = before.length ? run(s, before) : { colds: 0, gbs: 0 };
    return { warm: all.colds === prior.colds, colds: all.colds, gbs: all.gbs };
  };
  const a = outcome(actual);
  const b = outcome(alternative);
  return {
    lastWarm: { actual: a.warm, alternative: b.warm },
    coldStarts: { actual: a.colds, alternative: b.colds },
    idleGBs: { actual: round(a.gbs), alternative: round(b.gbs) },
    extraGBs: round(Math.max(0, b.gbs - a.gbs)),
    invocations: arrivals.length,
    spanMs,
  };
}

/** Starts that take no time: the recorded durations and gaps are replayed as they were. */
const FREE_STARTS: PathCosts = { ...DEFAULT_TIER_COSTS, warm: 0, thawed: 0, paged: 0, restored: 0, pooled: 0, cold: 0 };

const round = (x: number) => Math.round(x * 10_000) / 10_000;
