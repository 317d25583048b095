// The policy engine: every keep-alive, freeze, page-out, prewarm, scale and eviction decision, for the live
// agent and the simulator alike. It holds what the policies learn (idle-time histograms, concurrency, call
// graph, Greedy-Dual priorities) and is driven by the same calls from both: arrival, completion and call as
// they happen, plan(fn) after each of them and again at the time plan last asked for, admit before an
// instance is started. Which tier an idle instance rests in (frozen or paged) is tiers.ts's rule. Times are
// monotonic milliseconds passed in; it never reads a clock and does no I/O.
import { desiredInstances, scaleIn, ConcurrencyWindow, KPA_DEFAULTS, type AutoscaleParams, type ScaleView } from './autoscale.ts';
import { GreedyDual } from './gdsf.ts';
import { hybridWindows, IdleHistogram, PAPER_PARAMS, type HybridParams, type Windows } from './histogram.ts';
import { CallGraph } from './prewarm.ts';
import { DEFAULT_POLICY, formatPolicy, type PolicySpec } from './spec.ts';
import { DEFAULT_TIER_COSTS, noPaging, pagedKeepAlive, ramMb, tierPlan, type TierCosts, type TierPlan } from './tiers.ts';

/** What the engine sees of one instance. */
export interface PolicyInstance {
  readonly instanceId: string;
  readonly fn: string;
  readonly state: 'starting' | 'idle' | 'busy' | 'frozen' | 'paged';
  /** When it last became idle (or was started, while it has never run). */
  readonly idleSince: number;
  readonly memoryMb: number;
  /** Reserved (provisioned) instances are the floor: never stopped, frozen, paged or evicted by policy. */
  readonly reserved: boolean;
  /** Started by a prewarm decision and not used since. */
  readonly prewarmed: boolean;
  /**
   * What it holds in swap (paged) or would (frozen), MB, where the driver measured it; else the engine
   * takes memoryMb × pagedSwapFraction, as the simulator does.
   */
  readonly swapMb?: number;
}

export type PolicyDecision =
  | {
    readonly at: number; readonly fn: string; readonly action: 'freeze' | 'page' | 'stop' | 'evict'; readonly instanceId: string; readonly reason: string;
    /** A stop by staged scale-in (surplus instances), not by the keep-alive window: `thaw why` tells them apart. */
    readonly scaleIn?: true;
  }
  | {
    readonly at: number; readonly fn: string; readonly action: 'prewarm'; readonly count: number; readonly reason: string;
    /**
     * Spares for the function's current activity (the buffer), not for an arrival predicted later: they
     * are treated as instances that have run, so they go when the windows unload the function's others.
     */
    readonly spare?: true;
  };

export interface PolicyPlan {
  readonly decisions: PolicyDecision[];
  /** When plan(fn) should run again if nothing happens before; Infinity: not needed. */
  readonly nextAt: number;
}

export interface EngineOptions {
  readonly defaultPolicy: PolicySpec;
  /** Memory for loaded instances on this node, MB; Infinity for no limit. A gdsf/thaw spec may lower it. */
  readonly budgetMb: number;
  /** Idle instances are frozen this long after they went idle (< 0: never); a ladder rung, not a policy. */
  readonly freezeAfterMs: number;
  readonly autoscale?: Partial<AutoscaleParams>;
  /** What the tiers cost: start latency per ladder path, what a paged instance keeps (default DEFAULT_TIER_COSTS). */
  readonly tiers?: TierCosts;
  /**
   * Swap the paged tier may fill, MB (Infinity: no limit): a budget of its own, apart from RAM. An instance
   * is not paged when the paged instances' pages (pagedSwapFraction of their memory) would pass it.
   */
  swapBudgetMb?(): number;
  /** Whether instances can be paged out here now (swap, a memory cgroup); without it nothing is paged. */
  paging?(): boolean;
  /**
   * Forces the page-out this long after an instance was frozen, whatever its policy (`thaw up --page-after`);
   * -1: never; null or absent: the policy chooses (`thaw` pages by tierPlan, the baselines never do).
   */
  readonly pageAfterMs?: number | null;
  /** Instances of one function as they are now (starting, idle, busy, frozen, paged). */
  instances(fn: string): readonly PolicyInstance[];
  /** Every loaded instance, for the memory budget. */
  allInstances(): Iterable<PolicyInstance>;
}

/**
 * Thaw's tuning of the histogram (measured with `thaw sim` on the Azure samples, docs/policies.md): the
 * histogram is trusted only after 3 idle times, and a function that is busy often (no pre-warm gap) keeps
 * its last instance at least 10 minutes, as a short tail would otherwise drop it between bursts; surplus
 * instances go by staged scale-in instead. The fallback keeps the paper's whole range.
 */
export const THAW_PARAMS: HybridParams = { ...PAPER_PARAMS, minSamples: 3 };
const THAW_KEEPALIVE_FLOOR_MS = 10 * 60_000;

/** Per-function cold-start facts the drivers know: memory and what a start costs. */
export interface ArrivalInfo { readonly memoryMb: number; readonly coldCostMs: number }

class FunctionState {
  policy: PolicySpec | null = null;
  hist: IdleHistogram;
  histRangeMs: number;
  inFlight = 0;
  lastEnd: number | null = null;
  /** The lastEnd for which the pre-warm was already issued. */
  prewarmedFor: number | null = null;
  invocations = 0;
  conc = new ConcurrencyWindow();

  constructor(rangeMs: number) {
    this.histRangeMs = rangeMs;
    this.hist = new IdleHistogram(rangeMs, 60_000);
  }
}

export class PolicyEngine {
  readonly #o: EngineOptions;
  readonly #fns = new Map<string, FunctionState>();
  readonly #gdsf = new GreedyDual();
  readonly calls = new CallGraph();
  readonly autoscale: AutoscaleParams;
  /** What the tiers cost; a live agent replaces them with what it measures (Agent.tierCosts, at each sweep). */
  tiers: TierCosts;

  constructor(options: EngineOptions) {
    this.#o = options;
    this.autoscale = { ...KPA_DEFAULTS, ...options.autoscale };
    this.tiers = options.tiers ?? DEFAULT_TIER_COSTS;
  }

  /** Sets (or with null clears) a function's own policy; others follow the default. */
  setPolicy(fn: string, spec: PolicySpec | null): void { this.#fn(fn).policy = spec; }

  policyOf(fn: string): PolicySpec { return this.#fns.get(fn)?.policy ?? this.#o.defaultPolicy; }

  /** The node's memory budget under the policies in force, MB. */
  budgetMb(): number {
    const d = this.#o.defaultPolicy;
    const fromSpec = (d.kind === 'gdsf' || d.kind === 'thaw') && d.budgetMb !== null ? d.budgetMb : Infinity;
    return Math.min(this.#o.budgetMb, fromSpec);
  }

  #fn(fn: string): FunctionState {
    let s = this.#fns.get(fn);
    if (!s) { s = new FunctionState(this.#range(this.#o.defaultPolicy)); this.#fns.set(fn, s); }
    return s;
  }

  /** The autoscaler's parameters for a policy: the node's, with a thaw spec's own buffer, utilization and cooldown. */
  #scaling(p: PolicySpec): AutoscaleParams { return p.kind === 'thaw' && p.scaling ? { ...this.autoscale, ...p.scaling } : this.autoscale; }

  #range(p: PolicySpec) { return p.kind === 'hybrid' || p.kind === 'thaw' ? p.rangeMs : PAPER_PARAMS.rangeMs; }

  /** An invocation of fn arrived (before the ladder): learns its idle time, concurrency and frequency. */
  arrival(fn: string, now: number, info: ArrivalInfo): PolicyDecision[] {
    const s = this.#fn(fn);
    if (s.inFlight === 0 && s.lastEnd !== null) this.#histogram(s).add(now - s.lastEnd);
    s.inFlight++;
    s.invocations++;
    s.conc.change(now, +1, this.autoscale.stableWindowMs);
    this.#gdsf.touch(fn, info.coldCostMs, info.memoryMb);
    this.calls.run(fn);
    const policy = this.policyOf(fn);
    if (policy.kind !== 'thaw') return [];
    const out: PolicyDecision[] = [];
    // The buffer: spare instances beside those running, topped up as an arrival takes one.
    const { buffer } = this.#scaling(policy);
    if (buffer > 0) {
      const own = this.#o.instances(fn).filter((i) => i.state !== 'busy');
      const spare = own.length - (own.some(resting) ? 1 : 0);
      if (spare < buffer) out.push({ at: now, fn, action: 'prewarm', count: buffer - spare, spare: true, reason: `buffer: ${spare} spare of ${buffer} once this invocation runs` });
    }
    // Call chains: warm what this function usually calls, unless it has an instance to spare.
    for (const p of this.calls.predict(fn)) {
      if (p.callee === fn) continue;
      const spare = this.#o.instances(p.callee).filter((i) => i.state !== 'busy').length;
      if (spare === 0) out.push({ at: now, fn: p.callee, action: 'prewarm', count: 1, reason: `${fn} calls ${p.callee} in ${Math.round(p.probability * 100)}% of ${Math.round(p.samples)} invocations` });
    }
    return out;
  }

  /** An invocation of fn finished (or failed). */
  completion(fn: string, now: number): void {
    const s = this.#fn(fn);
    s.inFlight = Math.max(0, s.inFlight - 1);
    s.conc.change(now, -1, this.autoscale.stableWindowMs);
    if (s.inFlight === 0) s.lastEnd = now;
  }

  /** caller invoked callee through context.invoke. */
  call(caller: string, callee: string): void { this.calls.call(caller, callee); }

  #histogram(s: FunctionState): IdleHistogram {
    const range = this.#range(s.policy ?? this.#o.defaultPolicy);
    if (range !== s.histRangeMs) { s.hist = new IdleHistogram(range, 60_000); s.histRangeMs = range; }
    return s.hist;
  }

  /** The pre-warm and keep-alive windows fn's policy gives now. */
  windows(fn: string): Windows {
    const p = this.policyOf(fn);
    const s = this.#fn(fn);
    switch (p.kind) {
      case 'fixed': return { prewarmMs: 0, keepAliveMs: p.ttlMs, mode: 'fixed', reason: `fixed keep-alive ${formatPolicy(p)}` };
      case 'gdsf': return { prewarmMs: 0, keepAliveMs: Infinity, mode: 'unbounded', reason: 'kept until memory runs short (Greedy-Dual)' };
      case 'hybrid': return hybridWindows(this.#histogram(s), { ...PAPER_PARAMS, rangeMs: p.rangeMs, fallbackKeepAliveMs: p.rangeMs });
      case 'thaw': {
        // With no pre-warm gap the function is busy often: a short histogram tail would drop its last
        // instance between bursts, so it is kept at least the floor (surplus instances are scaled in).
        const w = hybridWindows(this.#histogram(s), { ...THAW_PARAMS, rangeMs: p.rangeMs, fallbackKeepAliveMs: p.rangeMs });
        return w.prewarmMs === 0 && w.keepAliveMs < THAW_KEEPALIVE_FLOOR_MS ? { ...w, keepAliveMs: THAW_KEEPALIVE_FLOOR_MS, reason: `${w.reason}; at least ${fmt(THAW_KEEPALIVE_FLOOR_MS)}` } : w;
      }
    }
  }

  /**
   * Frozen or paged, for an instance the policy stops at idle age `keepMs`: a forced page-out time
   * (--page-after) applies to every policy, and only `thaw` stretches a paged instance's stay; otherwise
   * `thaw` chooses by tierPlan and the baselines (fixed, hybrid, gdsf) never page, as published.
   */
  #tierPlan(policy: PolicySpec, keepMs: number, canPage: boolean): TierPlan {
    const forced = this.#o.pageAfterMs ?? null;
    if (!canPage || this.#o.freezeAfterMs < 0 || (forced !== null && forced < 0)) return noPaging(keepMs, 'no paged tier');
    const maxMs = policy.kind === 'thaw' ? Math.max(keepMs, policy.rangeMs) : keepMs;
    if (forced !== null) {
      const pageAtMs = this.#o.freezeAfterMs + forced;
      return { pageAtMs, pagedStopMs: pagedKeepAlive(pageAtMs, keepMs, this.tiers.pagedRamFraction, maxMs), reason: `page-out forced ${fmt(forced)} after the freeze` };
    }
    return policy.kind === 'thaw' ? tierPlan(keepMs, this.tiers, maxMs) : noPaging(keepMs, `${policy.kind} does not page`);
  }

  /** What to do with fn's instances now, and when to look again. */
  plan(fn: string, now: number): PolicyPlan {
    const s = this.#fn(fn);
    const policy = this.policyOf(fn);
    const w = this.windows(fn);
    const decisions: PolicyDecision[] = [];
    let nextAt = Infinity;
    const instances = this.#o.instances(fn);
    const stopped = new Set<string>();
    const canPage = this.#o.paging?.() ?? false;
    for (const i of instances) {
      if (i.reserved || !resting(i)) continue;
      // Unloaded as soon as the function has nothing running when the histogram says the next call is far
      // (the pre-warm brings one back); a pre-warmed instance that has not run yet is inside its window.
      const windowed = i.prewarmed || w.prewarmMs === 0;
      const keepMs = windowed ? w.keepAliveMs : s.inFlight === 0 ? 0 : w.prewarmMs + w.keepAliveMs;
      const tier = this.#tierPlan(policy, keepMs, canPage);
      const paged = i.state === 'paged';
      const stopAt = i.idleSince + (paged ? tier.pagedStopMs : keepMs);
      if (stopAt <= now) {
        const why = paged ? `idle ${fmt(now - i.idleSince)}, paged, past its keep-alive of ${fmt(tier.pagedStopMs)} (the window of ${fmt(keepMs)} for its RAM; ${w.mode}: ${w.reason})`
          : windowed || s.inFlight > 0 ? `idle ${fmt(now - i.idleSince)}, past the keep-alive window of ${fmt(w.keepAliveMs)} (${w.mode}: ${w.reason})` : `unloaded until the pre-warm window ends in ${fmt(w.prewarmMs)} (${w.reason})`;
        decisions.push({ at: now, fn, action: 'stop', instanceId: i.instanceId, reason: why });
        stopped.add(i.instanceId);
        continue;
      }
      nextAt = Math.min(nextAt, stopAt);
      let frozen = i.state === 'frozen';
      if (i.state === 'idle' && this.#o.freezeAfterMs >= 0) {
        const freezeAt = i.idleSince + this.#o.freezeAfterMs;
        if (freezeAt <= now) {
          decisions.push({ at: now, fn, action: 'freeze', instanceId: i.instanceId, reason: `idle ${fmt(now - i.idleSince)}: frozen (no CPU) until used or stopped` });
          frozen = true;
        } else nextAt = Math.min(nextAt, freezeAt);
      }
      if (frozen && Number.isFinite(tier.pageAtMs)) {
        const pageAt = i.idleSince + Math.max(tier.pageAtMs, this.#o.freezeAfterMs);
        if (pageAt > now) nextAt = Math.min(nextAt, pageAt);
        // With the swap budget spent it stays frozen; the next sweep looks again as paged instances go.
        else if (!this.#swapFull(i)) decisions.push({ at: now, fn, action: 'page', instanceId: i.instanceId, reason: `idle ${fmt(now - i.idleSince)}: paged out (${tier.reason}); ${tier.pagedStopMs === keepMs ? `stopped at ${fmt(keepMs)} idle, as frozen` : `stopped at ${fmt(tier.pagedStopMs)} idle instead of ${fmt(keepMs)}`}` });
      }
    }
    const live = instances.filter((i) => !i.reserved && !stopped.has(i.instanceId));
    if (policy.kind === 'thaw') {
      // Staged scale-in of instances the concurrency (and the buffer) no longer needs; the last one is keep-alive's to stop.
      const params = this.#scaling(policy);
      const scale = desiredInstances(s.conc, now, live.length, params);
      const n = scaleIn(s.conc, now, live.length, Math.max(1, scale.desired), params);
      const idle = live.filter(resting).sort((a, b) => a.idleSince - b.idleSince || cmp(a.instanceId, b.instanceId));
      for (const i of idle.slice(0, Math.min(n, Math.max(0, live.length - 1)))) {
        decisions.push({ at: now, fn, action: 'stop', instanceId: i.instanceId, reason: `scale-in: ${live.length} instances, ${scale.reason}`, scaleIn: true });
        stopped.add(i.instanceId);
      }
      if (s.conc.belowSince !== null) nextAt = Math.min(nextAt, Math.max(s.conc.belowSince, s.conc.lastScaleInAt) + params.scaleInCooldownMs);
      const kept = live.filter((i) => !stopped.has(i.instanceId));
      // The buffer is wanted only while the function is active: look again when the stable window has gone quiet.
      const quietAt = s.lastEnd === null ? Infinity : s.lastEnd + params.stableWindowMs;
      if (params.buffer > 0 && s.inFlight === 0 && kept.length > 1 && quietAt > now) nextAt = Math.min(nextAt, quietAt);
      const spare = kept.filter((i) => i.state !== 'busy').length;
      if (scale.mode === 'panic' && scale.desired > live.length) {
        decisions.push({ at: now, fn, action: 'prewarm', count: scale.desired - live.length, reason: `scale-out: ${scale.reason}` });
      } else if (params.buffer > 0 && s.inFlight > 0 && spare < params.buffer) {
        decisions.push({ at: now, fn, action: 'prewarm', count: params.buffer - spare, spare: true, reason: `buffer: ${spare} spare of ${params.buffer} while ${s.inFlight} run` });
      }
    }
    // The histogram's pre-warm: one instance back when the pre-warm window after the last run ends.
    if (w.prewarmMs > 0 && s.lastEnd !== null && s.inFlight === 0 && s.prewarmedFor !== s.lastEnd) {
      const at = s.lastEnd + w.prewarmMs;
      if (now >= at + w.keepAliveMs) s.prewarmedFor = s.lastEnd;
      else if (now >= at) {
        s.prewarmedFor = s.lastEnd;
        if (live.every((i) => stopped.has(i.instanceId))) decisions.push({ at: now, fn, action: 'prewarm', count: 1, reason: `next invocation expected in ${fmt(w.keepAliveMs)} at most (${w.reason})` });
      } else nextAt = Math.min(nextAt, at);
    }
    return { decisions, nextAt };
  }

  /** Whether paging `candidate` out would pass the swap budget (the sweep looks again as paged ones go). */
  #swapFull(candidate: PolicyInstance): boolean {
    const budget = this.#o.swapBudgetMb?.() ?? Infinity;
    if (!Number.isFinite(budget)) return false;
    const swapOf = (i: PolicyInstance) => i.swapMb ?? i.memoryMb * this.tiers.pagedSwapFraction;
    let used = 0;
    for (const i of this.#o.allInstances()) if (i.state === 'paged') used += swapOf(i);
    return used + swapOf(candidate) > budget;
  }

  /**
   * Before an instance of `memoryMb` is started: the idle instances to evict (lowest Greedy-Dual priority
   * first) so loaded memory stays within the budget. When even that is not enough, the start goes ahead
   * over budget: an invocation is never refused for a policy.
   */
  admit(now: number, memoryMb: number): PolicyDecision[] {
    const budget = this.budgetMb();
    if (!Number.isFinite(budget)) return [];
    let used = 0;
    const idle: PolicyInstance[] = [];
    for (const i of this.#o.allInstances()) {
      // A paged instance holds its resident pages and zram's compressed copy of the rest, not its full size.
      const ram = ramMb(i.state, i.memoryMb, this.tiers);
      used += ram;
      if (!i.reserved && resting(i)) idle.push(ram === i.memoryMb ? i : { ...i, memoryMb: ram });
    }
    return this.#gdsf.evict(idle, used, memoryMb, budget).map((c) => ({
      at: now, fn: c.fn, action: 'evict' as const, instanceId: c.instanceId,
      reason: `memory budget ${budget} MB: ${Math.round(used)} MB loaded, ${memoryMb} MB needed; lowest Greedy-Dual priority ${this.#gdsf.priority(c.fn).toFixed(2)}`,
    }));
  }

  /** When an idle instance of the function would be paged out and stopped paged, for the API and CLI. */
  #pagingView(policy: PolicySpec, w: Windows) {
    const t = this.#tierPlan(policy, w.keepAliveMs, this.#o.paging?.() ?? false);
    const finite = (x: number) => (Number.isFinite(x) ? x : null);
    return { pageAfterIdleMs: finite(t.pageAtMs), pagedKeepAliveMs: finite(t.pagedStopMs), reason: t.reason };
  }

  /** Everything the engine knows about fn, for the API and CLI. */
  state(fn: string, now: number) {
    const s = this.#fns.get(fn);
    const policy = this.policyOf(fn);
    if (!s) return { policy: formatPolicy(policy), explicit: false, invocations: 0, windows: this.windows(fn), histogram: null, predictedNextArrivalInMs: null, paging: this.#pagingView(policy, this.windows(fn)), concurrency: null, callees: [], gdsfPriority: null };
    const w = this.windows(fn);
    const h = this.#histogram(s);
    const scale: ScaleView = desiredInstances(s.conc, now, this.#o.instances(fn).length, this.#scaling(policy));
    const head = h.percentileBin(5);
    const predicted = s.inFlight > 0 || s.lastEnd === null || head === null ? null : Math.max(0, s.lastEnd + head * 60_000 - now);
    return {
      policy: formatPolicy(policy),
      explicit: s.policy !== null,
      invocations: s.invocations,
      inFlight: s.inFlight,
      windows: { ...w, keepAliveMs: Number.isFinite(w.keepAliveMs) ? w.keepAliveMs : null },
      histogram: { binMinutes: 1, rangeMinutes: h.bins.length, idleTimes: h.count, outOfBounds: h.outOfBounds, cv: Math.round(h.cv() * 100) / 100, bins: h.nonEmpty() },
      predictedNextArrivalInMs: predicted,
      paging: this.#pagingView(policy, w),
      lastEndedMsAgo: s.lastEnd === null ? null : Math.round(now - s.lastEnd),
      concurrency: scale,
      callees: this.calls.callees(fn),
      gdsfPriority: Math.round(this.#gdsf.priority(fn) * 1000) / 1000,
    };
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Loaded and not running: idle, frozen or paged (the states whose memory is idle memory). */
export const resting = (i: Pick<PolicyInstance, 'state'>) => i.state === 'idle' || i.state === 'frozen' || i.state === 'paged';

function fmt(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  if (ms >= 3600_000) return `${(ms / 3600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms)} ms`;
}
