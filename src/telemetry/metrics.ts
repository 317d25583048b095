// Prometheus metrics: counters fed by Thaw's named diagnostics_channel events (as the Recorder is), gauges
// read at scrape time from node sources, in a registry of Thaw's own (never prom-client's global one).
// Imports src/core and prom-client.
import diagnostics_channel from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PolicyDecisionEvent } from '../core/events.ts';
import { LATEST, type InstanceState, type InvocationRecord, type StartKind } from '../core/types.ts';

/** What one node reports at scrape time; the local agent is one source, a cluster adds one per remote agent. */
export interface NodeMetrics {
  readonly instances: readonly { functionName: string; state: InstanceState }[];
  readonly pool: readonly { runtime: string; memoryMb: number; ready: number; starting: number; target: number }[];
  readonly codeCache: { entries: number; bytes: number; maxBytes: number; hits: number; misses: number; evictions: number };
  /** Platform.memoryByTier(): RAM (resident + zram's compressed copy), swap, per tier. */
  readonly memory: {
    ramBytes: number; swapBytes: number; swapBudgetBytes: number;
    tiers: Readonly<Record<string, { instances: number; residentBytes: number; compressedBytes: number; swappedBytes: number }>>;
  };
  readonly memoryBudgetBytes: number;
}

export interface MetricsSource {
  /** The `node` label of its gauges. */
  readonly node: string;
  collect(): Promise<NodeMetrics>;
}

/** A control plane's view of its fleet: agents in placement, where invocations went and why, what failed over. */
export interface ClusterMetrics {
  agents: number;
  placements: Readonly<Record<string, number>>;
  replaced: number;
  lost: number;
}

export interface MetricsOptions {
  /**
   * Function names are user-made, so each gets its own label value only up to this many distinct names;
   * later ones are counted under `function="_other"` (a function deleted keeps its slot until restart).
   */
  maxFunctions: number;
  /** Whether published versions get snapshots here (otherwise a new instance is no snapshot miss). */
  snapshots: boolean;
  /** The Event queue: how many wait and since when the oldest (epoch ms), read at scrape time. */
  queue(): Promise<{ depth: number; oldestEnqueuedAt: number | null }>;
  now(): number;
}

/** Starts that created an instance (the others resumed one): DESIGN.md's cold starts. */
const NEW_INSTANCE: ReadonlySet<StartKind | null> = new Set<StartKind | null>(['restored', 'pooled', 'cold']);
/** From 0.5 ms (a warm schedule) to 30 s (a slow init). */
const PHASE_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
export const OTHER_FUNCTIONS = '_other';

/** The tier an instance's memory counts in (as Platform.memoryByTier() groups it). */
export const tierOf = (s: InstanceState) => s === 'idle' || s === 'busy' ? 'warm' : s === 'frozen' || s === 'paged' ? s : 'other';

export class ThawMetrics implements Disposable {
  readonly registry = new Registry();
  readonly #o: MetricsOptions;
  /** Sources, or lists read at each scrape (a control plane's agents come and go). */
  readonly #sources: (MetricsSource | (() => readonly MetricsSource[]))[] = [];
  #cluster: (() => ClusterMetrics) | null = null;
  readonly #functions = new Set<string>();
  #scraping: Promise<unknown> = Promise.resolve();
  #closed = false;

  readonly #invocations: Counter<'function' | 'version' | 'trigger' | 'start'>;
  readonly #errors: Counter<'function' | 'version' | 'trigger' | 'start' | 'outcome'>;
  readonly #coldStarts: Counter<'function' | 'start'>;
  readonly #phases: Histogram<'phase' | 'start'>;
  readonly #snapshotHits: Counter<'function'>;
  readonly #snapshotMisses: Counter<'function'>;
  readonly #decisions: Counter<'action' | 'outcome'>;
  readonly #instances: Gauge<'node' | 'function' | 'state' | 'tier'>;
  readonly #pool: Gauge<'node' | 'runtime' | 'memory_mb' | 'status'>;
  readonly #cacheHits: Counter<'node'>;
  readonly #cacheMisses: Counter<'node'>;
  readonly #cacheEvictions: Counter<'node'>;
  readonly #cacheBytes: Gauge<'node'>;
  readonly #cacheLimit: Gauge<'node'>;
  readonly #cacheEntries: Gauge<'node'>;
  readonly #memory: Gauge<'node' | 'tier' | 'kind'>;
  readonly #memoryUsed: Gauge<'node' | 'resource'>;
  readonly #memoryBudget: Gauge<'node' | 'resource'>;
  readonly #queueDepth: Gauge;
  readonly #queueAge: Gauge;
  readonly #overflow: Gauge;
  readonly #agents: Gauge;
  readonly #placements: Counter<'reason'>;
  readonly #replaced: Counter;
  readonly #lost: Counter;

  #onRecord = (r: unknown) => this.#record(r as InvocationRecord);
  #onDecision = (d: unknown) => { const e = d as PolicyDecisionEvent; this.#decisions.inc({ action: e.action, outcome: e.outcome }); };

  constructor(options: MetricsOptions) {
    this.#o = options;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Gauges that prom-client names like counters (promtool refuses them); the resource counts stay.
    for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(n);
    this.#invocations = new Counter({ name: 'thaw_invocations_total', help: 'Invocations by function, version that ran, trigger and start path (warm, thawed, paged, restored, pooled, cold; none when refused before an instance).', labelNames: ['function', 'version', 'trigger', 'start'], registers });
    this.#errors = new Counter({ name: 'thaw_invocation_errors_total', help: 'Invocations that did not succeed, by outcome (error, timeout, crash, init_error, throttled, aborted, platform_error).', labelNames: ['function', 'version', 'trigger', 'start', 'outcome'], registers });
    this.#coldStarts = new Counter({ name: 'thaw_cold_starts_total', help: 'Invocations that started a new instance (restored, pooled or cold); thawed and paged ones resumed one.', labelNames: ['function', 'start'], registers });
    this.#phases = new Histogram({ name: 'thaw_invocation_phase_duration_seconds', help: 'Time spent per phase of an invocation (schedule, sandbox, code, unpack, env, network, runtime, init, handler), by start path.', labelNames: ['phase', 'start'], buckets: PHASE_BUCKETS_SECONDS, registers });
    this.#snapshotHits = new Counter({ name: 'thaw_snapshot_hits_total', help: 'New instances restored from their version\'s snapshot.', labelNames: ['function'], registers });
    this.#snapshotMisses = new Counter({ name: 'thaw_snapshot_misses_total', help: 'New instances of a published version that ran its init instead (no snapshot ready, or the ladder chose a faster path).', labelNames: ['function'], registers });
    this.#decisions = new Counter({ name: 'thaw_policy_decisions_total', help: 'Policy decisions by action (freeze, page, stop, evict, prewarm) and outcome (done, skipped).', labelNames: ['action', 'outcome'], registers });
    this.#instances = new Gauge({ name: 'thaw_instances', help: 'Function instances by function, state and memory tier (warm, frozen, paged, other).', labelNames: ['node', 'function', 'state', 'tier'], registers });
    this.#pool = new Gauge({ name: 'thaw_runtime_pool_runtimes', help: 'Generic pooled runtimes per shape: ready, starting, and the target size.', labelNames: ['node', 'runtime', 'memory_mb', 'status'], registers });
    this.#cacheHits = new Counter({ name: 'thaw_code_cache_hits_total', help: 'Unpacked-code cache lookups that found the package.', labelNames: ['node'], registers });
    this.#cacheMisses = new Counter({ name: 'thaw_code_cache_misses_total', help: 'Unpacked-code cache lookups that had to fetch and unpack the package.', labelNames: ['node'], registers });
    this.#cacheEvictions = new Counter({ name: 'thaw_code_cache_evictions_total', help: 'Packages evicted from the unpacked-code cache.', labelNames: ['node'], registers });
    this.#cacheBytes = new Gauge({ name: 'thaw_code_cache_bytes', help: 'Bytes of unpacked code in the node cache.', labelNames: ['node'], registers });
    this.#cacheLimit = new Gauge({ name: 'thaw_code_cache_limit_bytes', help: 'Bound of the node\'s unpacked-code cache.', labelNames: ['node'], registers });
    this.#cacheEntries = new Gauge({ name: 'thaw_code_cache_packages', help: 'Packages in the node\'s unpacked-code cache.', labelNames: ['node'], registers });
    this.#memory = new Gauge({ name: 'thaw_instance_memory_bytes', help: 'Instance memory by tier and kind: resident (RAM), compressed (zram copy of paged-out pages, RAM too), swapped (uncompressed, on swap).', labelNames: ['node', 'tier', 'kind'], registers });
    this.#memoryUsed = new Gauge({ name: 'thaw_memory_used_bytes', help: 'Memory instances use against the node budgets: ram (resident + compressed) and swap.', labelNames: ['node', 'resource'], registers });
    this.#memoryBudget = new Gauge({ name: 'thaw_memory_budget_bytes', help: 'The node\'s memory budgets: ram (instances beyond it are evicted) and swap (what the paged tier may fill).', labelNames: ['node', 'resource'], registers });
    this.#queueDepth = new Gauge({ name: 'thaw_event_queue_depth', help: 'Asynchronous (Event) invocations waiting or being delivered.', registers });
    this.#queueAge = new Gauge({ name: 'thaw_event_queue_oldest_age_seconds', help: 'Age of the oldest event in the queue (0 when empty).', registers });
    this.#overflow = new Gauge({ name: 'thaw_metrics_function_label_overflow', help: '1 when more functions exist than the function label keeps apart (their series are under function="_other").', registers });
    this.#agents = new Gauge({ name: 'thaw_cluster_agents', help: 'Agents in placement (a control plane; they report their gauges under node=<agent name>).', registers: [] });
    this.#placements = new Counter({ name: 'thaw_cluster_placements_total', help: 'Invocations a control plane placed on an agent, by reason (warm, package, least_loaded...).', labelNames: ['reason'], registers: [] });
    this.#replaced = new Counter({ name: 'thaw_cluster_replaced_total', help: 'Invocations placed again because their agent could not be reached before the handler started.', registers: [] });
    this.#lost = new Counter({ name: 'thaw_cluster_lost_total', help: 'Invocations whose agent went away after the handler started (THAW_E_AGENT_LOST).', registers: [] });
    diagnostics_channel.subscribe('thaw:invocation:end', this.#onRecord);
    diagnostics_channel.subscribe('thaw:policy:decision', this.#onDecision);
  }

  /** Adds a node whose gauges are read at each scrape, or a list of nodes read again at each scrape. */
  addSource(source: MetricsSource | (() => readonly MetricsSource[])): void { this.#sources.push(source); }

  /** A control plane: its fleet's counts, read at each scrape (its series exist only there). */
  setCluster(read: () => ClusterMetrics): void {
    this.#cluster = read;
    for (const m of [this.#agents, this.#placements, this.#replaced, this.#lost]) this.registry.registerMetric(m);
  }

  /** The function label of a name: its own while under the cap, else `_other`. */
  functionLabel(name: string): string {
    if (this.#functions.has(name)) return name;
    if (this.#functions.size >= this.#o.maxFunctions) { this.#overflow.set(1); return OTHER_FUNCTIONS; }
    this.#functions.add(name);
    return name;
  }

  #record(r: InvocationRecord) {
    const fn = this.functionLabel(r.functionName);
    const start = r.start ?? 'none';
    // Version numbers grow without end too; only their count per function is bounded by what is kept.
    const labels = { function: fn, version: fn === OTHER_FUNCTIONS ? '' : r.version, trigger: r.trigger, start };
    this.#invocations.inc(labels);
    if (r.outcome !== 'success') this.#errors.inc({ ...labels, outcome: r.outcome });
    if (NEW_INSTANCE.has(r.start)) {
      this.#coldStarts.inc({ function: fn, start });
      if (r.start === 'restored') this.#snapshotHits.inc({ function: fn });
      else if (this.#o.snapshots && r.version !== LATEST && r.version !== '') this.#snapshotMisses.inc({ function: fn });
    }
    for (const p of r.phases) this.#phases.observe({ phase: p.name, start }, p.durationMs / 1000);
  }

  /** Reads every source and renders the registry in the text exposition format; scrapes run one at a time. */
  scrape(): Promise<string> {
    const run = this.#scraping.then(async () => {
      await this.#collect();
      return this.registry.metrics();
    });
    this.#scraping = run.catch(() => {});
    return run;
  }

  get contentType(): string { return this.registry.contentType; }

  async #collect() {
    const sources = this.#sources.flatMap((s) => typeof s === 'function' ? s() : [s]);
    const [nodes, queue] = await Promise.all([Promise.all(sources.map(async (s) => ({ node: s.node, m: await s.collect() }))), this.#o.queue()]);
    for (const g of [this.#instances, this.#pool, this.#cacheBytes, this.#cacheLimit, this.#cacheEntries, this.#memory, this.#memoryUsed, this.#memoryBudget]) g.reset();
    for (const { node, m } of nodes) {
      const counts = new Map<string, { function: string; state: InstanceState; n: number }>();
      for (const i of m.instances) {
        const fn = this.functionLabel(i.functionName);
        const k = `${fn}\0${i.state}`;
        const c = counts.get(k) ?? counts.set(k, { function: fn, state: i.state, n: 0 }).get(k)!;
        c.n++;
      }
      for (const c of counts.values()) this.#instances.set({ node, function: c.function, state: c.state, tier: tierOf(c.state) }, c.n);
      for (const p of m.pool) {
        const l = { node, runtime: p.runtime, memory_mb: String(p.memoryMb) };
        this.#pool.inc({ ...l, status: 'ready' }, p.ready);
        this.#pool.inc({ ...l, status: 'starting' }, p.starting);
        this.#pool.set({ ...l, status: 'target' }, p.target);
      }
      setCounter(this.#cacheHits, { node }, m.codeCache.hits);
      setCounter(this.#cacheMisses, { node }, m.codeCache.misses);
      setCounter(this.#cacheEvictions, { node }, m.codeCache.evictions);
      this.#cacheBytes.set({ node }, m.codeCache.bytes);
      if (Number.isFinite(m.codeCache.maxBytes)) this.#cacheLimit.set({ node }, m.codeCache.maxBytes);
      this.#cacheEntries.set({ node }, m.codeCache.entries);
      for (const [tier, t] of Object.entries(m.memory.tiers)) {
        this.#memory.set({ node, tier, kind: 'resident' }, t.residentBytes);
        this.#memory.set({ node, tier, kind: 'compressed' }, t.compressedBytes);
        this.#memory.set({ node, tier, kind: 'swapped' }, t.swappedBytes);
      }
      this.#memoryUsed.set({ node, resource: 'ram' }, m.memory.ramBytes);
      this.#memoryUsed.set({ node, resource: 'swap' }, m.memory.swapBytes);
      this.#memoryBudget.set({ node, resource: 'ram' }, m.memoryBudgetBytes);
      this.#memoryBudget.set({ node, resource: 'swap' }, m.memory.swapBudgetBytes);
    }
    if (this.#cluster) {
      const c = this.#cluster();
      this.#agents.set(c.agents);
      for (const [reason, n] of Object.entries(c.placements)) setCounter(this.#placements, { reason }, n);
      this.#replaced.reset(); this.#replaced.inc(c.replaced);
      this.#lost.reset(); this.#lost.inc(c.lost);
    }
    this.#queueDepth.set(queue.depth);
    this.#queueAge.set(queue.oldestEnqueuedAt === null ? 0 : Math.max(0, this.#o.now() - queue.oldestEnqueuedAt) / 1000);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    diagnostics_channel.unsubscribe('thaw:invocation:end', this.#onRecord);
    diagnostics_channel.unsubscribe('thaw:policy:decision', this.#onDecision);
  }

  [Symbol.dispose]() { this.close(); }
}

/**
 * A counter kept by the component itself (the code cache counts its own lookups): exposed at its current
 * value. It only grows while the component lives, as a Prometheus counter must.
 */
function setCounter<L extends string>(c: Counter<L>, labels: Partial<Record<L, string>>, value: number) {
  c.remove(labels as never);
  c.inc(labels as never, value);
}
