// The agent: one per machine. Owns the instances, takes each invocation down the ladder (warm, thawed,
// paged, else a start), times every cold-start phase, enforces timeouts and concurrency, and carries out
// the policy engine's decisions. Its parts: starting an instance (starts.ts), running the handler on one
// and the invocation's record (handler.ts), pre-warms (prewarms.ts), the tiers below warm (tiers.ts), the
// decision driver (decisions.ts), reserved instances (reserved.ts), phase timing (timing.ts), the runtime
// pool (pool.ts) and snapshots (snapshots.ts). Imports src/core, src/policies, src/runtimes, src/sandbox,
// src/codestore.
import type { Clock, TimerHandle } from '../core/clock.ts';
import { ThawError, asThawError } from '../core/errors.ts';
import { publishInvocationStart, publishLog } from '../core/events.ts';
import { newInvocationId } from '../core/ids.ts';
import { DEFAULT_EPHEMERAL_STORAGE_MB, USER_TRIGGERS, START_KINDS, type ColdStartCause, type FunctionVersion, type InvocationRecord, type InvocationTrigger, type Runtime, type StartKind, type TraceContext } from '../core/types.ts';
import type { Origin, CodeCache, PackageLimits } from '../codestore/index.ts';
import { OptTrees } from '../codestore/index.ts';
import { decideLadder, DEFAULT_TIER_COSTS, formatPolicy, PolicyEngine, type LadderDecision, type PolicyDecision, type PolicyInstance, type PolicySpec, type TierCosts } from '../policies/index.ts';
import { runtimeKind, type SerializedError } from '../runtimes/index.ts';
import type { SandboxDriver } from '../sandbox/index.ts';
import { DecisionDriver, type TakenDecision } from './decisions.ts';
import { ColdStartLedger, classifyColdStart } from './causes.ts';
import type { Executor } from './executor.ts';
import { HandlerRuns } from './handler.ts';
import { functionKey, type Instance, type InstanceView } from './instance.ts';
import { functionEnv, runtimeEnv } from './lambda.ts';
import { RuntimePool } from './pool.ts';
import { Prewarms } from './prewarms.ts';
import { ReservedInstances } from './reserved.ts';
import type { InstanceNetwork } from '../network/index.ts';
import { SnapshotManager, type SnapshotOptions } from './snapshots.ts';
import { InstanceStarts, bootKey, shapeOf, type Started } from './starts.ts';
import type { ResponseStream } from './streaming.ts';
import { IdleTiers } from './tiers.ts';
import { InitSets } from './initsets.ts';
import { Phases, Samples } from './timing.ts';
import { capLine, platformLine } from './logging.ts';
import type { Store } from '../store/index.ts';

export type { TakenDecision } from './decisions.ts';

export interface CallRequest {
  callerInvocationId: string;
  functionName: string;
  payload: string;
}
export type CallResult = { ok: true; payload: string } | { ok: false; error: SerializedError };

export interface AgentOptions {
  driver: SandboxDriver;
  blobs: Origin;
  cache: CodeCache;
  packageLimits: PackageLimits;
  clock: Clock;
  /** The keep-alive/prewarm policy of functions without their own, and the node's memory budget (MB). */
  policy: PolicySpec;
  memoryBudgetMb: number;
  /** Idle instances are frozen (SIGSTOP) this long after they went idle; < 0: never. */
  freezeAfterMs: number;
  /**
   * Frozen instances have their memory pushed out to swap (the paged tier) this long after the freeze,
   * whatever the policy (`thaw up --page-after`); -1: never; null: the policy chooses when.
   */
  pageAfterMs: number | null;
  /** Whether instances can be paged out here now (swap, a memory cgroup); asked at start and at each sweep. Absent: never. */
  canPage?(): boolean;
  /**
   * What the tiers cost, for the policies' choice between frozen and paged. Given: fixed. Absent: learned
   * from this node's own starts and page-outs (starting from the constants in src/policies/tiers.ts).
   */
  tiers?: TierCosts;
  /** Swap the paged tier may fill, MB (absent: no limit). */
  swapBudgetMb?(): number;
  /** zram's compressed size over what it stores (null: swap is not compressed), for a paged instance's RAM. */
  swapCompression?(): number | null;
  /** Generic runtimes kept started per runtime kind and memory size (0: no pool). */
  poolSize: number;
  poolRefillDelayMs: number;
  /** Where V8 compile caches go, one directory per package and runtime; null disables them. */
  compileCacheDir: string | null;
  /** Where snapshots of published versions go, and whether they are built at all. */
  snapshots: SnapshotOptions;
  store: Store;
  /** Concurrent invocations per function when it has no reserved concurrency. */
  defaultConcurrencyLimit: number;
  /**
   * A safety sweep that re-plans every function at this interval; decisions are otherwise taken after each
   * event and at the time the policy asked to look again.
   */
  sweepIntervalMs: number;
  /** Limit for a runtime to start and for user init to finish. */
  startTimeoutMs: number;
  initTimeoutMs: number;
  region: string;
  /** Working directory of a runtime before it is bound to its code. */
  scratchDir: string;
  /** Egress grants and the proxy settings of confined instances; null where instances share the host's network. */
  network?: InstanceNetwork | null;
  /** context.invoke from inside a function; wired by the composition root. */
  onCall(call: CallRequest): Promise<CallResult>;
}

export interface InvokeRequest {
  invocationId: string;
  version: FunctionVersion;
  qualifier: string;
  payload: string;
  trigger: InvocationTrigger;
  callerInvocationId: string | null;
  clientContext: string | null;
  /** Per-function limit (reserved concurrency) or null for the agent's default. */
  concurrencyLimit: number | null;
  /** Monotonic and wall time at which the platform received the request; phases are offsets from it. */
  receivedMono: number;
  receivedAt: number;
  signal?: AbortSignal;
  /** The caller's X-Amzn-Trace-Id, passed to the handler (_X_AMZN_TRACE_ID) when well-formed. */
  traceId?: string | null;
  /** Its W3C trace (made by the platform): the handler sees it in TRACEPARENT, the record carries it. */
  trace?: TraceContext | null;
  /** A streamed invocation: what a streaming handler writes goes here as it comes (the result then has no payload). */
  stream?: ResponseStream;
  /** The agent and rung a cluster's placement chose (put on the record). */
  placement?: { agent: string; reason: string } | null;
  /** Called once the handler is given the request: before it, a cluster may place the invocation elsewhere. */
  onHandlerStart?: () => void;
}

export interface InvokeResult {
  record: InvocationRecord;
  /** The handler's result as JSON, or Lambda's error document when functionError is set. */
  payload: string;
  functionError: 'Unhandled' | null;
  /** This invocation's log lines, START to REPORT. */
  logs: string[];
}

const MAX_LOG_LINES_KEPT = 2000;

export class Agent implements AsyncDisposable, Executor {
  #o: AgentOptions;
  #pools = new Map<string, Instance[]>();
  #byId = new Map<string, Instance>();
  #inFlightByFunction = new Map<string, number>();
  #logs = new Map<string, string[]>();
  /** On-demand code loading: the files each package's init reads (initsets.ts). */
  readonly initSets: InitSets;
  #active = 0;
  #drained: PromiseWithResolvers<void> | null = null;
  #closing = false;
  #closed: Promise<void> | null = null;
  #sweep: TimerHandle | null = null;
  #runtimePool: RuntimePool;
  /** Functions' layers merged into the trees their instances see at /opt, built once per node and layer list. */
  #optTrees: OptTrees;
  /** Recent user init and snapshot restore durations per version, for the ladder's estimates. */
  #initMs = new Samples();
  #restoreMs = new Samples();
  /** What a runtime's boot costs before init (pool fills and cold starts), by runtime and memory size. */
  #bootMs = new Samples();
  /** What each ladder path cost an invocation before its handler started (tierCosts)… */
  #startCosts = new Samples();
  /** …and what page-outs kept: paged RAM and swap as fractions of the memory before. */
  #pageOuts = new Samples();
  readonly snapshots: SnapshotManager;
  #reserved: ReservedInstances;
  /** Keep-alive, freeze, page-out, prewarm, scale and eviction decisions: the same engine the simulator runs. */
  readonly policies: PolicyEngine;
  #driver: DecisionDriver;
  /** Freeze, page-out and thaw, and whether this node can page. */
  #tiers: IdleTiers;
  /** The version each function last ran (what a prewarm starts), by function name. */
  #latest = new Map<string, { version: FunctionVersion; qualifier: string }>();
  /** Function name of each running invocation, for call-chain learning. */
  #running = new Map<string, string>();
  /** Pre-warms under way, their back-off, and deleted functions' (prewarms.ts). */
  #prewarms: Prewarms;
  /** Starting instances (cold, pooled, restored)… */
  #starts: InstanceStarts;
  /** …and running handlers on them, with the invocation records. */
  #runs: HandlerRuns;
  /** Instances being started for the invocation that will run on them (not by a prewarm or reservation). */
  #claimed = new WeakSet<Instance>();
  /** Instances a rollout (version prewarm) is starting: a first request of their version waits for one. */
  #rolloutStarts = new WeakSet<Instance>();
  /** How instances ended, for naming each cold start's cause (`thaw why`)… */
  #ledger: ColdStartLedger;
  /** …and the cause of each running invocation that started an instance, until its record is published. */
  #causes = new Map<string, ColdStartCause>();

  constructor(options: AgentOptions) {
    this.#o = options;
    this.initSets = new InitSets(options.store, options.blobs);
    this.#optTrees = new OptTrees(options.cache, options.blobs, options.packageLimits, () => options.clock.monotonic());
    this.snapshots = new SnapshotManager(options.snapshots, {
      driver: options.driver, store: options.store, blobs: options.blobs, cache: options.cache, packageLimits: options.packageLimits, optTrees: this.#optTrees,
      clock: options.clock,
      // Without the proxy settings: node --build-snapshot cannot snapshot a process that set up its proxy agents.
      env: (v, codeDir) => ({ ...runtimeEnv(options.region, options.scratchDir, runtimeKind(v.config.runtime).name), ...functionEnv(v, codeDir) }),
      log: (v, line) => publishLog({ functionName: v.functionName, version: v.version, instanceId: 'snapshot', invocationId: null, stream: 'platform', at: options.clock.now(), line }),
    });
    this.#tiers = new IdleTiers({
      clock: options.clock, canPage: options.canPage,
      log: (instance, line) => this.#platformLog(instance, null, line),
      stop: (instance, reason) => this.#stopInstance(instance, reason),
      onPaged: (r) => {
        if (!(r.beforeBytes > 0)) return;
        const ratio = options.swapCompression?.() ?? null;
        // On swap that is not compressed, a paged instance's RAM is what stayed resident.
        this.#pageOuts.add('pagedRamFraction', Math.min(1, (r.residentBytes + r.swappedBytes * (ratio ?? 0)) / r.beforeBytes));
        this.#pageOuts.add('pagedSwapFraction', Math.min(1, r.swappedBytes / r.beforeBytes));
      },
    });
    this.policies = new PolicyEngine({
      defaultPolicy: options.policy, budgetMb: options.memoryBudgetMb, freezeAfterMs: options.freezeAfterMs,
      tiers: options.tiers, pageAfterMs: options.pageAfterMs, paging: () => this.#tiers.paging, swapBudgetMb: options.swapBudgetMb,
      instances: (fn) => this.#policyInstances(fn),
      allInstances: () => this.#policyInstances(null),
    });
    this.#ledger = new ColdStartLedger({ clock: options.clock, policyOf: (fn) => formatPolicy(this.policies.policyOf(fn)) });
    this.#driver = new DecisionDriver({
      clock: options.clock, engine: this.policies, closing: () => this.#closing,
      apply: (d) => this.#apply(d),
      versionOf: (fn) => this.#latest.get(fn)?.version.version,
    });
    this.#reserved = new ReservedInstances({
      clock: options.clock, closing: () => this.#closing,
      instancesOf: (v) => this.#pools.get(functionKey(v)) ?? [],
      start: (v, qualifier) => this.#startReserved(v, qualifier),
      plan: (fn) => this.#plan(fn),
    });
    this.#runtimePool = new RuntimePool({
      driver: options.driver, clock: options.clock, size: options.poolSize, refillDelayMs: options.poolRefillDelayMs, maxShapes: 4,
      scratchDir: options.scratchDir, runtimeEnv: (runtime) => this.#runtimeEnv(runtime), binds: (id) => options.network?.binds(id) ?? [], network: options.network,
      onError: (m) => process.stderr.write(`thaw: ${m}\n`),
      onBooted: (shape, ms) => this.#bootMs.add(bootKey(shape), ms),
    });
    this.#starts = new InstanceStarts({
      clock: options.clock, driver: options.driver, blobs: options.blobs, cache: options.cache, packageLimits: options.packageLimits,
      region: options.region, scratchDir: options.scratchDir, compileCacheDir: options.compileCacheDir,
      startTimeoutMs: options.startTimeoutMs, initTimeoutMs: options.initTimeoutMs, network: options.network,
      runtimePool: this.#runtimePool, optTrees: this.#optTrees, initSets: this.initSets, snapshotBlob: (v) => this.snapshots.blobFor(v),
      initMs: this.#initMs, restoreMs: this.#restoreMs, bootMs: this.#bootMs,
      runtimeEnv: (runtime) => this.#runtimeEnv(runtime),
      admit: (v) => this.#admit(v),
      claim: (instance) => this.#claimed.add(instance),
      adopt: (instance) => this.#adopt(instance),
      onLog: (instance, invocationId, stream, text) => this.#onLog(instance, invocationId, stream, text),
      onCall: (call) => options.onCall(call),
      stop: (instance, reason) => this.#stopInstance(instance, reason),
      finish: (...a) => this.#runs.finish(...a),
    });
    this.#runs = new HandlerRuns({
      clock: options.clock,
      log: (instance, invocationId, text) => this.#platformLog(instance, invocationId, text),
      logsOf: (invocationId) => this.#logs.get(invocationId),
      causeOf: (invocationId) => this.#causes.get(invocationId),
      startCost: (start, ms) => this.#startCosts.add(start, ms),
    });
    this.#prewarms = new Prewarms({
      clock: options.clock,
      startAhead: (v, qualifier, onInstance) => this.#startAhead(v, qualifier, 'prewarm', onInstance),
      rolloutStarted: (instance) => this.#rolloutStarts.add(instance),
      stop: (instance, reason) => this.#stopInstance(instance, reason),
      plan: (fn) => this.#plan(fn),
    });
    // The common shape is ready before the first request.
    this.#runtimePool.want({ runtime: 'nodejs24.x', memoryMb: 128, tmpMb: DEFAULT_EPHEMERAL_STORAGE_MB, vpc: null }, true);
    this.#scheduleSweep();
  }

  /** Pooled runtimes per shape. */
  pool() { return this.#runtimePool.view(); }

  /**
   * Keeps `count` initialized instances of a version for a qualifier (a version or an alias), used before
   * on-demand ones and never stopped for idleness. Count 0 releases them to age out as on-demand instances.
   */
  setReserved(functionName: string, qualifier: string, version: FunctionVersion | null, count: number): void {
    this.#reserved.set(functionName, qualifier, version, count);
  }

  /** What a reserved config has now: requested, initialized, and the last failure. */
  reservedStatus(functionName: string, qualifier: string) { return this.#reserved.status(functionName, qualifier); }

  /** Starts one reserved instance of v: null, or why its init failed. */
  async #startReserved(v: FunctionVersion, qualifier: string): Promise<string | null> {
    const { started, record } = await this.#startAhead(v, qualifier, 'provision');
    if ('failure' in started) return started.failure.record.errorMessage ?? 'init failed';
    started.instance.reserved = true;
    record();
    return null;
  }

  /**
   * Starts an instance of v ahead of demand (a prewarm, a reserved instance) by the path the ladder gives
   * now. `record` books its init as Lambda bills provisioned concurrency: a record with no handler.
   */
  async #startAhead(v: FunctionVersion, qualifier: string, trigger: 'prewarm' | 'provision', onInstance?: (i: Instance) => void): Promise<{ started: Started; record(): void }> {
    const req: InvokeRequest = {
      invocationId: newInvocationId(), version: v, qualifier, payload: 'null', trigger, callerInvocationId: null,
      clientContext: null, concurrencyLimit: null, receivedMono: this.#o.clock.monotonic(), receivedAt: this.#o.clock.now(),
    };
    const phases = new Phases(req.receivedMono);
    const d = this.#decide(v);
    const started = await this.#starts.start(req, phases, d.path === 'restored' || d.path === 'pooled' ? d.path : 'cold', onInstance);
    const record = () => {
      if ('failure' in started) return;
      this.#runs.publishRecord(req, { start: started.instance.origin, instanceId: started.instance.id, phases: phases.spans, initMs: started.initMs, handlerMs: 0, outcome: 'success', errorType: null, errorMessage: null });
    };
    return { started, record };
  }

  get closing() { return this.#closing; }

  instances(): InstanceView[] { return [...this.#byId.values()].map((i) => i.view()); }

  async invoke(req: InvokeRequest): Promise<InvokeResult> {
    if (this.#closing) throw new ThawError('THAW_E_SHUTTING_DOWN', 'Thaw is shutting down and takes no new invocations');
    const { clock } = this.#o;
    const fn = req.version.functionName;
    const limit = req.concurrencyLimit ?? this.#o.defaultConcurrencyLimit;
    const running = this.#inFlightByFunction.get(fn) ?? 0;
    if (running >= limit) {
      this.#runs.publishRecord(req, { start: null, instanceId: null, phases: [], initMs: 0, handlerMs: 0, outcome: 'throttled', errorType: 'TooManyRequestsException', errorMessage: `concurrency limit ${limit} reached` });
      throw new ThawError('THAW_E_THROTTLED', `function ${fn} is already running ${running} invocations, its concurrency limit`, { details: { limit } });
    }
    this.#inFlightByFunction.set(fn, running + 1);
    this.#active++;
    publishInvocationStart({ invocationId: req.invocationId, functionName: fn, qualifier: req.qualifier, trigger: req.trigger, at: req.receivedAt });
    this.#logs.set(req.invocationId, []);
    // Warm-ups keep instances warm; they are not traffic, so the policies do not learn from them.
    const counted = USER_TRIGGERS.includes(req.trigger);
    if (counted) {
      // A new version (a fix, perhaps) gets its pre-warms tried again at once.
      const previous = this.#latest.get(fn);
      if (previous && functionKey(previous.version) !== functionKey(req.version)) this.#prewarms.retryNow(fn);
      this.#latest.set(fn, { version: req.version, qualifier: req.qualifier });
      this.#running.set(req.invocationId, fn);
      const caller = req.callerInvocationId ? this.#running.get(req.callerInvocationId) : undefined;
      if (caller) this.policies.call(caller, fn);
      const info = { memoryMb: req.version.config.memoryMb, coldCostMs: this.#initMs.median(functionKey(req.version)) ?? 100 };
      for (const d of this.policies.arrival(fn, clock.monotonic(), info)) this.#driver.take(d);
    }
    try {
      return await this.#run(req);
    } finally {
      this.#logs.delete(req.invocationId);
      this.#causes.delete(req.invocationId);
      this.#running.delete(req.invocationId);
      const n = (this.#inFlightByFunction.get(fn) ?? 1) - 1;
      if (n === 0) this.#inFlightByFunction.delete(fn); else this.#inFlightByFunction.set(fn, n);
      if (counted) {
        this.policies.completion(fn, clock.monotonic());
        this.#plan(fn);
      }
      if (--this.#active === 0) this.#drained?.resolve();
    }
  }

  /** What the policy engine sees of one function's instances (or of all, with null). */
  #policyInstances(fn: string | null): PolicyInstance[] {
    const out: PolicyInstance[] = [];
    for (const i of this.#byId.values()) {
      if (fn !== null && i.version.functionName !== fn) continue;
      // An instance started for an invocation is that invocation's from its first moment, as in the
      // simulator: busy to the policies, never a spare (else an arrival meanwhile tops up no buffer).
      const starting = i.state === 'starting' || i.state === 'initializing';
      const state = starting ? (this.#claimed.has(i) ? 'busy' : 'starting') : i.state;
      if (state === 'stopping' || state === 'gone') continue;
      // For the swap budget: what a paged one put in swap, what a frozen one holds (it would put at most that).
      const swapBytes = state === 'paged' ? i.paged?.swappedBytes : state === 'frozen' ? i.frozenRssBytes : null;
      out.push({ instanceId: i.id, fn: i.version.functionName, state, idleSince: i.idleSince, memoryMb: i.version.config.memoryMb, reserved: i.reserved, prewarmed: i.prewarmed, ...(swapBytes != null ? { swapMb: swapBytes / 1048576 } : {}) });
    }
    return out;
  }

  /** Runs the policy for one function now and books the next look. */
  #plan(fn: string): void { this.#driver.plan(fn); }

  /** Carries out one decision of the engine's; what came of it. */
  #apply(d: PolicyDecision): TakenDecision['outcome'] {
    if (d.action === 'prewarm') {
      const target = this.#latest.get(d.fn);
      if (!target || this.#closing || this.#prewarms.backingOff(d.fn)) return 'skipped';
      for (let k = 0; k < d.count; k++) this.#prewarms.start(target.version, target.qualifier, d.reason, d.spare ?? false);
      return 'done';
    }
    const instance = this.#byId.get(d.instanceId);
    if (!instance) return 'skipped';
    if (d.action === 'freeze') this.#tiers.freeze(instance, d.reason);
    else if (d.action === 'page') return this.#tiers.pageOut(instance, d.reason) ? 'done' : 'skipped';
    else {
      if (d.action === 'stop') this.#ledger.ending(instance, d.scaleIn ? 'scaled-in' : 'stopped', d.reason);
      this.#stopInstance(instance, `${d.action === 'evict' ? 'evicted' : 'stopped'}: ${d.reason}`);
    }
    return 'done';
  }

  /** Whether frozen instances can be paged out here now (what the policy engine is told). */
  get paging(): boolean { return this.#tiers.paging; }

  /** Asks again whether this node can page (after swap was set up, and at each sweep). */
  checkPaging(): boolean { return this.#tiers.checkPaging(); }

  /**
   * An alias now routes traffic by weight: warms each routed version up to its share of the function's
   * current instances (rolloutTargets), before the traffic arrives.
   */
  rollout(functionName: string, qualifier: string, targets: readonly { version: FunctionVersion; count: number }[], reason: string): void {
    for (const t of targets) {
      const have = [...this.#byId.values()].filter((i) => i.key === functionKey(t.version) && i.state !== 'stopping' && i.state !== 'gone').length;
      const need = t.count - have;
      if (need <= 0 || this.#closing) continue;
      this.#driver.record({ at: this.#o.clock.monotonic(), fn: functionName, action: 'prewarm', count: need, reason: `${reason}: version ${t.version.version} wants ${t.count}, has ${have}` }, 'done');
      for (let k = 0; k < need; k++) this.#prewarms.start(t.version, qualifier, reason, false, true);
    }
  }

  /** Runs the policy for a function now, e.g. after its policy changed. */
  replan(fn: string): void { this.#plan(fn); }

  /** A function's own policy (null: the node default), applied to its instances at once. */
  setPolicy(fn: string, spec: PolicySpec | null): void {
    this.policies.setPolicy(fn, spec);
    this.#plan(fn);
  }

  /** A deleted function: nothing is pre-warmed for it any more and its next look is cancelled. */
  forget(fn: string): void {
    this.#prewarms.forget(fn);
    this.#latest.delete(fn);
    this.#driver.forget(fn);
    this.#ledger.forget(fn);
  }

  /** The newest decisions, oldest first; of one function when named. */
  decisions(fn?: string, limit = 100): TakenDecision[] { return this.#driver.decisions(fn, limit); }

  /** Settles when every prewarm under way has finished (tests, shutdown). */
  prewarmsSettled(): Promise<void> { return this.#prewarms.settled(); }

  async #run(req: InvokeRequest): Promise<InvokeResult> {
    const { clock } = this.#o;
    const phases = new Phases(req.receivedMono);
    const v = req.version;
    const scheduleStart = clock.monotonic();
    // A thaw can find its instance killed while frozen; then the ladder is walked again without it.
    for (let attempt = 0; ; attempt++) {
      const decision: LadderDecision = attempt < 4 ? this.#decide(v) : { path: 'cold', reason: 'thawing kept failing' };
      if (decision.path === 'warm' || decision.path === 'thawed' || decision.path === 'paged') {
        const instance = this.#byId.get(decision.instanceId)!;
        if (decision.path !== 'warm') {
          const alive = await this.#tiers.thaw(instance);
          // The slot thaw() claimed becomes this invocation's in the same synchronous step (acquire).
          instance.inFlight--;
          if (!alive) continue;
        }
        phases.add('schedule', scheduleStart, clock.monotonic());
        return this.#runs.run(instance, req, phases, decision.path, 0);
      }
      // A rollout's prewarm of this version under way, with no caller of its own: waiting for it costs less than a
      // start of this invocation's own (which would also share the CPU with it), unless that path is
      // known to be done sooner than the rest of the prewarm.
      const prewarming = this.#prewarmUnderWay(v, decision.path);
      if (!this.#causes.has(req.invocationId)) this.#causes.set(req.invocationId, this.#coldStartCause(v, prewarming !== null));
      if (prewarming) {
        this.#claimed.add(prewarming);
        // Its slot is held while it starts: idle with a free slot, another invocation would take it.
        prewarming.inFlight++;
        const ready = await prewarming.started;
        prewarming.inFlight--;
        if (ready && prewarming.state === 'idle' && prewarming.inFlight < prewarming.capacity) {
          phases.add('schedule', scheduleStart, clock.monotonic());
          return this.#runs.run(prewarming, req, phases, prewarming.origin, 0);
        }
        continue;
      }
      phases.add('schedule', scheduleStart, clock.monotonic());
      let started: Started;
      try {
        started = await this.#starts.start(req, phases, decision.path);
      } catch (err) {
        const e = asThawError(err);
        if (decision.path === 'restored') {
          // A snapshot that does not restore is never the reason an invocation fails: drop it, go down the ladder.
          this.snapshots.failed(v, `restore failed: ${e.message}`);
          continue;
        }
        this.#runs.publishRecord(req, { start: decision.path, instanceId: null, phases: phases.spans, initMs: 0, handlerMs: 0, outcome: 'platform_error', errorType: e.code, errorMessage: e.message });
        throw e;
      }
      if ('failure' in started) return started.failure;
      return this.#runs.run(started.instance, req, phases, started.instance.origin, started.initMs);
    }
  }

  /**
   * The instance of v a rollout is starting that this invocation should wait for rather than start one by
   * `path`: the earliest started one no invocation has claimed, unless the rest of its start is known to
   * take longer than `path` would (from the learned boot, init and restore costs). Only a rollout's: the
   * policies' prewarms and spares are planned with an arrival meanwhile starting its own, as in the
   * simulator, which has no versions to roll out.
   */
  #prewarmUnderWay(v: FunctionVersion, path: StartKind): Instance | null {
    const key = functionKey(v);
    const pending = (this.#pools.get(key) ?? [])
      .filter((i) => (i.state === 'starting' || i.state === 'initializing') && this.#rolloutStarts.has(i) && !this.#claimed.has(i))
      .sort((a, b) => a.createdAt - b.createdAt)[0];
    if (!pending) return null;
    const init = this.#initMs.median(key);
    const boot = this.#bootMs.median(bootKey(shapeOf(v)));
    const restore = this.#restoreMs.median(key);
    const cost = (p: StartKind) => p === 'pooled' ? init : p === 'restored' ? restore : p === 'cold' && init !== null && boot !== null ? boot + init : null;
    const rest = cost(pending.origin);
    const own = cost(path);
    if (rest !== null && own !== null && rest - (this.#o.clock.monotonic() - pending.createdAt) > own) return null;
    return pending;
  }

  /** Why this start of v is needed, from what this node has now and how its instances ended (`thaw why`). */
  #coldStartCause(v: FunctionVersion, waitedForVersionPrewarm: boolean): ColdStartCause {
    const key = functionKey(v);
    const live = (i: Instance) => i.state !== 'stopping' && i.state !== 'gone';
    const others = [...this.#byId.values()].filter((i) => i.version.functionName === v.functionName && i.key !== key && live(i)).length;
    const facts = this.#ledger.facts(v, key, {
      instances: (this.#pools.get(key) ?? []).filter(live), claimed: (i) => this.#claimed.has(i),
      otherVersionInstances: others, reservedConfigured: this.#reserved.configured(v), waitedForVersionPrewarm,
    });
    return classifyColdStart(facts, v.version);
  }

  /** The ladder decision for one version, from what this node has now. */
  #decide(v: FunctionVersion): LadderDecision {
    const pool = this.#pools.get(functionKey(v)) ?? [];
    return decideLadder({
      instances: pool.map((i) => ({ instanceId: i.id, state: i.state, inFlight: i.inFlight, capacity: i.capacity, lastUsedAt: i.lastUsedAt, reserved: i.reserved })),
      pooledRuntimes: this.#runtimePool.readyCount(shapeOf(v)),
      snapshotReady: this.snapshots.blobFor(v) !== null,
      expectedInitMs: this.#initMs.median(functionKey(v)),
      expectedRestoreMs: this.#restoreMs.median(functionKey(v)),
      expectedBootMs: this.#bootMs.median(bootKey(shapeOf(v))),
    });
  }

  /** Room under the node's memory budget for a start of v: idle instances of the lowest Greedy-Dual priority go first. */
  #admit(v: FunctionVersion): void {
    const evictions = this.policies.admit(this.#o.clock.monotonic(), v.config.memoryMb);
    if (evictions.length) this.#noteEvictions(evictions, v);
    for (const d of evictions) this.#driver.take(d);
  }

  /** Notes each eviction with the start it made room for and the instances that stayed (`thaw why`). */
  #noteEvictions(evictions: readonly PolicyDecision[], v: FunctionVersion): void {
    const loaded = this.#policyInstances(null);
    const gone = new Set(evictions.map((d) => 'instanceId' in d ? d.instanceId : ''));
    const kept = [...new Set(loaded.filter((i) => !gone.has(i.instanceId)).map((i) => i.fn))];
    const loadedMb = loaded.reduce((n, i) => n + i.memoryMb, 0);
    for (const d of evictions) {
      const instance = 'instanceId' in d ? this.#byId.get(d.instanceId) : undefined;
      if (instance) this.#ledger.ending(instance, 'evicted', d.reason, { evictedFor: `${v.functionName}:${v.version}`, budgetMb: this.policies.budgetMb(), loadedMb, neededMb: v.config.memoryMb, kept });
    }
  }

  /** A clean environment, as on Lambda (a confining driver points HOME at the sandbox's own /tmp). */
  #runtimeEnv(runtime: Runtime): Record<string, string> { return { ...runtimeEnv(this.#o.region, this.#o.scratchDir, runtime), ...this.#o.network?.runtimeEnv() }; }

  #adopt(instance: Instance) {
    const pool = this.#pools.get(instance.key) ?? [];
    pool.push(instance);
    this.#pools.set(instance.key, pool);
    this.#byId.set(instance.id, instance);
    this.#ledger.started(instance);
    void instance.conn.sandbox.exited.then((exit) => {
      this.#ledger.exited(instance, exit, instance.state);
      const reason = exit.killReason ?? (exit.signal ? `died by ${exit.signal}` : `exited with status ${exit.code}`);
      if (!exit.killReason) this.#platformLog(instance, null, `instance ${instance.id} ${reason}`);
      if (instance.state !== 'gone') instance.transition('gone', reason);
      if (instance.codePinned) this.#o.cache.unpin(instance.version.config.codeSha256);
      if (instance.optKey) this.#o.cache.unpin(instance.optKey);
      this.#o.network?.release(instance.id);
      this.#reserved.died(instance);
      const rest = (this.#pools.get(instance.key) ?? []).filter((i) => i !== instance);
      if (rest.length) this.#pools.set(instance.key, rest); else this.#pools.delete(instance.key);
      this.#byId.delete(instance.id);
    });
  }

  #stopInstance(instance: Instance, reason: string) {
    if (instance.state === 'gone' || instance.state === 'stopping') return;
    instance.transition('stopping', reason);
    // SIGKILL ends a stopped (frozen) process too.
    instance.conn.sandbox.kill(reason);
  }

  #onLog(instance: Instance, invocationId: string | null, stream: 'stdout' | 'stderr', text: string) {
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      const line = capLine(raw);
      publishLog({ functionName: instance.version.functionName, version: instance.version.version, instanceId: instance.id, invocationId, stream, at: this.#o.clock.now(), line });
      const kept = invocationId ? this.#logs.get(invocationId) : undefined;
      if (kept && kept.length < MAX_LOG_LINES_KEPT) kept.push(line);
    }
  }

  #platformLog(instance: Instance, invocationId: string | null, text: string) {
    const at = this.#o.clock.now();
    // As the function's LoggingConfig asks: JSON records, and none below its system log level.
    const line = platformLine(instance.version.config.logging, text, at);
    if (line === null) return;
    publishLog({ functionName: instance.version.functionName, version: instance.version.version, instanceId: instance.id, invocationId, stream: 'platform', at, line });
    if (invocationId) this.#logs.get(invocationId)?.push(line);
  }

  /**
   * The tier costs the policies decide with: given ones as they are; otherwise this node's own medians
   * (a path once it has 3 samples, the paged fractions once an instance was paged out), the constants
   * for the rest. `learned` names what was measured here.
   */
  tierCosts(): TierCosts & { learned: string[] } {
    if (this.#o.tiers) return { ...this.#o.tiers, learned: [] };
    const costs: TierCosts = { ...DEFAULT_TIER_COSTS };
    const learned: string[] = [];
    const take = (k: keyof TierCosts, samples: Samples, least: number) => {
      const m = samples.median(k);
      if (m === null || samples.count(k) < least) return;
      costs[k] = m;
      learned.push(k);
    };
    for (const k of START_KINDS) take(k, this.#startCosts, 3);
    take('pagedRamFraction', this.#pageOuts, 1);
    take('pagedSwapFraction', this.#pageOuts, 1);
    return { ...costs, learned };
  }

  #scheduleSweep() {
    this.#sweep = this.#o.clock.setTimer(() => {
      this.#tiers.checkPaging();
      this.sweepIdle();
      if (!this.#closing) this.#scheduleSweep();
    }, this.#o.sweepIntervalMs);
  }

  /** Runs the policy for every function with instances now (the safety sweep; tests call it too). */
  sweepIdle(): void {
    // The policies decide with what this node has measured since the last sweep.
    if (!this.#o.tiers) { const { learned: _, ...costs } = this.tierCosts(); this.policies.tiers = costs; }
    for (const fn of new Set([...this.#byId.values()].map((i) => i.version.functionName))) this.#plan(fn);
  }

  /**
   * Stops a function's idle instances that `keep` does not keep. They take no invocation from the moment
   * this returns; busy ones finish, then age out (no request picks an instance of another revision).
   * `delete` (the function or a version is gone) also stops instances still starting, and waits for the
   * processes to exit. `update` ($LATEST changed) leaves an instance starting for a request to serve it,
   * and does not wait for exits (100-600 ms with the namespaces driver: the development loop's save).
   */
  async retire(functionName: string, keep: ((v: FunctionVersion) => boolean) | undefined, mode: 'delete' | 'update' = 'delete'): Promise<void> {
    const startingForRequest = (i: Instance) => (i.state === 'starting' || i.state === 'initializing') && this.#claimed.has(i);
    const victims = [...this.#byId.values()].filter((i) => i.version.functionName === functionName && !keep?.(i.version)
      && i.inFlight === 0 && !(mode === 'update' && startingForRequest(i)));
    for (const i of victims) {
      this.#ledger.ending(i, 'retired', 'function changed or deleted');
      this.#stopInstance(i, 'function changed or deleted');
    }
    if (mode === 'delete') await Promise.all(victims.map((i) => i.conn.sandbox.exited));
  }

  /** Drains: refuses new invocations, waits for running ones, then stops every instance. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#sweep?.cancel();
      this.#driver.cancelAll();
      if (this.#active > 0) {
        this.#drained = Promise.withResolvers();
        await this.#drained.promise;
      }
      await this.#stopAll('shutdown');
    })();
    return this.#closed;
  }

  /** Aborts: kills every instance now; running invocations end as crashes. */
  async destroy(): Promise<void> {
    this.#closing = true;
    this.#sweep?.cancel();
    this.#driver.cancelAll();
    await this.#stopAll('destroyed');
    await this.close();
  }

  async #stopAll(reason: string) {
    await this.prewarmsSettled();
    await this.snapshots.close();
    await this.#runtimePool.close();
    const all = [...this.#byId.values()];
    for (const i of all) this.#stopInstance(i, reason);
    await Promise.all(all.map((i) => i.conn.sandbox.exited));
  }

  async [Symbol.asyncDispose]() { await this.close(); }
}
