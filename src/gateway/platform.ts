// The composition root: builds store, code store, control, agent and recorder from resolved options and
// owns the one invocation path every trigger uses (API, HTTP, queued events, context.invoke).
// Imports every component below the gateway.
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { KeyRing } from './keys.ts';
import { lockDataDir } from './lock.ts';
import { join } from 'node:path';
import { parseFunctionRef } from '../core/arn.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { ThawError, asThawError } from '../core/errors.ts';
import { newInvocationId } from '../core/ids.ts';
import { handlerSpan, invocationTrace, parseTraceparent } from '../core/trace.ts';
import type { Alias, FunctionVersion, InvocationTrigger, TraceContext } from '../core/types.ts';
import { Agent, type CallRequest, type CallResult, type Executor, type InvokeResult, type ResponseStream, type SnapshotBook } from '../agent/index.ts';
import { Fleet } from '../cluster/index.ts';
import { BlobStore, CodeCache, S3Origin, defaultPackageLimits, originOwner, fuseImageMounts, type ImageMounts, type Origin, type PackageLimits } from '../codestore/index.ts';
import { Control } from '../control/index.ts';
import { NetworkPlane } from '../network/index.ts';
import { publishLog } from '../core/events.ts';
import { NamespacesDriver, enableZramSwap, processDriver, releaseLeftoverZram, swapDevices, zramStats, scopeTagFor, type SandboxDriver } from '../sandbox/index.ts';
import { isSharedStore, openStore, type Store } from '../store/index.ts';
import { Recorder, ThawMetrics } from '../telemetry/index.ts';
import { fleetMetrics } from './cluster-metrics.ts';
import { otlpTracesConfigured, startTracing, type Tracing } from '../telemetry/index.ts';
import { EventQueue } from './events.ts';
import { Scheduler } from './schedules.ts';
import { formatPolicy, parsePolicy, rolloutTargets } from '../policies/index.ts';
import type { ResolvedOptions } from './options.ts';

/** How a cluster agent's node differs from a standalone one (src/gateway/agent-node.ts). */
export interface NodeHooks {
  /** Wraps the data dir's blob store: an agent's origin is its peers, then the control plane. */
  origin?(local: BlobStore): Origin;
  /** context.invoke from an instance: an agent's go to the control plane. */
  onCall?(call: CallRequest): Promise<CallResult>;
  /** Snapshots: an agent's go to the cluster's origin, and what it knows of versions and records comes from the control plane. */
  snapshots?: { origin: Origin; book: SnapshotBook };
}

export interface InvokeOptions {
  trigger: InvocationTrigger;
  invocationId?: string;
  receivedMono?: number;
  receivedAt?: number;
  signal?: AbortSignal;
  callerInvocationId?: string | null;
  clientContext?: string | null;
  /** The caller's X-Amzn-Trace-Id header. */
  traceId?: string | null;
  /** The caller's W3C traceparent header: the invocation's spans join that trace (a malformed one is ignored). */
  traceparent?: string | null;
  /**
   * A streamed invocation (InvokeWithResponseStream, a RESPONSE_STREAM function URL): a streaming handler's
   * bytes go here as it writes them; a handler that does not stream answers with the result's payload.
   */
  stream?: ResponseStream;
}

/** Synchronous payloads larger than Lambda's 6 MB are refused. */
export const MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024;
export const MAX_ASYNC_PAYLOAD_BYTES = 256 * 1024;
/** Instances at most that a new version is warmed to ahead of its first request. */
const MAX_VERSION_PREWARM = 8;

export class Platform implements AsyncDisposable {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  readonly store: Store;
  readonly blobs: Origin;
  readonly cache: CodeCache;
  readonly limits: PackageLimits;
  readonly control: Control;
  readonly agent: Agent;
  /** What runs invocations: this node's agent, or with --no-agent the fleet of remote agents. */
  readonly executor: Executor;
  /** The remote agents of a control plane (thaw up --no-agent); null when this node runs its own instances. */
  readonly fleet: Fleet | null;
  /** How instances are confined on this node. */
  readonly driver: SandboxDriver;
  /** Egress proxies (and private networks) of confined instances; null where instances share the host's network. */
  readonly network: NetworkPlane | null;
  /** Access keys for signed API calls. */
  readonly keys: KeyRing;
  readonly recorder: Recorder;
  /** Prometheus metrics, served at /metrics (gateway/metrics-api.ts). */
  readonly metrics: ThawMetrics;
  readonly events: EventQueue;
  readonly schedules: Scheduler;
  /** Invocations in flight: who runs, for learning call chains and bounding their depth. */
  #running = new Map<string, { functionName: string; depth: number; trace: TraceContext }>();
  #closed: Promise<void> | null = null;
  #lock: { release(): void } | null = null;
  #zram: { device: string; release(): void } | null = null;
  /** OTLP trace export, when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set. */
  #tracing: Tracing | null = null;

  /** Whether frozen instances are paged out to swap here, and why (not). */
  pagedTier(): { on: boolean; how: string; swap: ReturnType<typeof swapDevices>; zram: ReturnType<typeof zramStats> } {
    const swap = swapDevices();
    const zram = this.#zram ? zramStats(this.#zram.device) : null;
    if (this.options.sandbox !== 'namespaces') return { on: false, how: 'needs the namespaces sandbox (a memory cgroup to reclaim)', swap, zram };
    if (this.options.pageAfterMs !== null && this.options.pageAfterMs < 0) return { on: false, how: '--page-after -1', swap, zram };
    if (!swap.length) return { on: false, how: 'no swap on this host (thaw up --zram SIZE sets up a zram device, as root)', swap, zram };
    return { on: true, how: this.#zram ? `zram swap ${this.#zram.device}, set up by thaw` : `the host's swap: ${swap.map((d) => d.name).join(', ')}`, swap, zram };
  }

  /** Swap the paged tier may fill, MB: --swap-budget, else 90 % of the swap areas' size now. */
  swapBudgetMb(): number {
    return this.options.swapBudgetMb ?? Math.floor(swapDevices().reduce((a, d) => a + d.sizeBytes, 0) / 1048576 * 0.9);
  }

  /** zram's compressed size over what it stores, over every zram swap area; null when swap is not compressed. */
  #zramRatio(): number | null {
    let orig = 0, compr = 0;
    for (const d of swapDevices()) {
      if (!/^\/dev\/zram\d+$/.test(d.name)) continue;
      const z = zramStats(d.name);
      if (z) { orig += z.origBytes; compr += z.comprBytes; }
    }
    return orig > 0 ? compr / orig : null;
  }

  /**
   * The instances as /thaw/v1/instances shows them: a paged one with the RAM its pages take compressed in
   * zram (its swapped bytes at the device's compression ratio; null on swap that is not compressed).
   */
  instanceViews(ratio = this.#zramRatio()) {
    // A control plane shows its fleet's instances (each with its agent); they report no zram of their own here.
    return this.executor.instances().map((i) => ({
      ...i,
      compressedBytes: i.state === 'paged' && i.swappedBytes !== null && ratio !== null ? Math.round(i.swappedBytes * ratio) : null,
    }));
  }

  /**
   * Memory by tier for /thaw/v1/node: RAM is what instances hold resident plus zram's compressed copy of
   * their paged-out pages (RAM too); swap is their pages on the swap device, uncompressed, a separate budget.
   * Warm and frozen instances count their resident set (all processes of the sandbox); a paged one its
   * private resident memory after the page-out.
   */
  memoryByTier(views = this.instanceViews()) {
    const ratio = this.#zramRatio();
    const tier = (i: (typeof views)[number]) => i.state === 'idle' || i.state === 'busy' ? 'warm' : i.state === 'frozen' || i.state === 'paged' ? i.state : 'other';
    const empty = () => ({ instances: 0, residentBytes: 0, compressedBytes: 0, swappedBytes: 0 });
    const tiers = { warm: empty(), frozen: empty(), paged: empty(), other: empty() };
    for (const i of views) {
      const t = tiers[tier(i)];
      t.instances++;
      t.residentBytes += (i.state === 'paged' ? i.pagedToBytes : i.rssBytes) ?? 0;
      t.compressedBytes += i.compressedBytes ?? 0;
      t.swappedBytes += i.state === 'paged' ? i.swappedBytes ?? 0 : 0;
    }
    const all = Object.values(tiers);
    return {
      ramBytes: all.reduce((a, t) => a + t.residentBytes + t.compressedBytes, 0),
      swapBytes: all.reduce((a, t) => a + t.swappedBytes, 0),
      swapBudgetBytes: this.swapBudgetMb() * 1048576,
      zramCompression: ratio,
      tiers,
    };
  }

  private constructor(options: ResolvedOptions, store: Store, clock: Clock, hooks: NodeHooks) {
    this.options = options;
    this.clock = clock;
    this.store = store;
    this.limits = { ...defaultPackageLimits, maxPackageBytes: options.maxPackageBytes, maxUnpackedBytes: options.maxUnpackedBytes };
    const blobs = new BlobStore(join(options.dataDir, 'blobs'));
    // A cluster agent reads packages from its peers before the origin (src/cluster/peer-origin.ts); with
    // --origin s3://… the bucket is the origin and the data dir holds none of it.
    const remote = options.origin ? new S3Origin(options.origin, undefined, undefined, originOwner(options.dataDir)) : null;
    this.blobs = hooks.origin ? hooks.origin(blobs) : remote ?? blobs;
    const confining = options.sandbox === 'namespaces'
      ? new NamespacesDriver({ runDir: join(options.cacheDir, 'sandboxes'), compileRoot: join(options.cacheDir, 'compile'), scopeTag: scopeTagFor(options.cacheDir) })
      : null;
    const compileDir = join(options.cacheDir, 'compile');
    this.cache = new CodeCache(join(options.cacheDir, 'code'), {
      monotonic: () => clock.monotonic(), maxBytes: options.codeCacheBytes,
      images: imageMountsFor(confining),
      // A package's V8 compile caches go with it (what its instances wrote there is theirs to lose).
      onDrop: (sha) => {
        for (const d of readdirSafe(compileDir)) if (d.startsWith(`${sha.slice(0, 16)}-`)) rmSync(join(compileDir, d), { recursive: true, force: true });
      },
    });
    this.control = new Control({ store, blobs: this.blobs, cache: this.cache, limits: this.limits, clock, region: options.region, minImageBytes: options.imageMinBytes, onPublished: (v) => this.#onPublished(v) });
    this.recorder = new Recorder({
      store, clock, flushIntervalMs: 200, keepInvocations: options.keepInvocations, keepLogLinesPerFunction: options.keepLogLinesPerFunction,
      onError: (err) => process.stderr.write(`thaw: could not record telemetry: ${(err as Error).message}\n`),
      onRecovered: (held, dropped) => process.stderr.write(`thaw: the store takes telemetry again: wrote ${held.records} record(s) and ${held.logLines} log line(s) held meanwhile`
        + `${dropped.records + dropped.logLines ? `; dropped ${dropped.records} record(s) and ${dropped.logLines} log line(s) past the hold limit` : ''}\n`),
    });
    this.metrics = new ThawMetrics({
      maxFunctions: options.metricsMaxFunctions, snapshots: options.snapshots, now: () => clock.now(),
      queue: async () => ({ depth: await store.countEvents(), oldestEnqueuedAt: await store.oldestEventAt() }),
    });
    this.keys = new KeyRing(store, options.dataDir);
    this.driver = confining ?? processDriver;
    this.network = confining
      ? new NetworkPlane({
        dir: join(options.cacheDir, 'egress'), netnsDir: join(options.cacheDir, 'netns'), scopeTag: scopeTagFor(options.cacheDir), mounter: confining.mounter, clock,
        securityGroups: async (names) => Promise.all(names.map(async (n) => {
          const g = await store.getSecurityGroup(n);
          if (!g) throw new ThawError('THAW_E_SECURITY_GROUP_NOT_FOUND', `security group ${n} does not exist`);
          return g;
        })),
        // A denied connection is written into the function's log with its code.
        onDenied: (d) => {
          const i = d.label.indexOf(':');
          publishLog({ functionName: d.label.slice(0, i), version: d.label.slice(i + 1), instanceId: d.instanceId, invocationId: null, stream: 'platform', at: clock.now(), line: `THAW_E_EGRESS_DENIED connection to ${d.target} refused: ${d.reason}` });
        },
        onError: (m) => process.stderr.write(`thaw: ${m}\n`),
      })
      : null;
    this.agent = new Agent({
      driver: this.driver,
      network: this.network,
      blobs: this.blobs,
      cache: this.cache,
      packageLimits: this.limits,
      clock,
      policy: options.policy,
      memoryBudgetMb: options.memoryBudgetMb,
      freezeAfterMs: options.freezeAfterMs,
      // The paged tier needs a memory cgroup to reclaim (the namespaces driver) and swap; the agent asks at
      // start, after a zram device is set up and at each sweep, and the engine pages only while it is there.
      pageAfterMs: options.pageAfterMs,
      canPage: () => this.pagedTier().on,
      swapCompression: () => this.#zramRatio(),
      swapBudgetMb: () => this.swapBudgetMb(),
      poolSize: options.poolSize,
      poolRefillDelayMs: options.poolRefillDelayMs,
      compileCacheDir: options.compileCache ? join(options.cacheDir, 'compile') : null,
      store,
      snapshots: {
        enabled: options.snapshots, origin: hooks.snapshots?.origin ?? remote?.under('snapshots') ?? new BlobStore(join(options.dataDir, 'snapshots'), '.snap'), localDir: join(options.cacheDir, 'snapshots'),
        keyFile: join(options.dataDir, 'keys', 'snapshot.key'), timeoutMs: options.snapshotTimeoutMs, book: hooks.snapshots?.book,
      },
      defaultConcurrencyLimit: options.concurrencyLimit,
      sweepIntervalMs: options.policySweepMs,
      startTimeoutMs: options.startTimeoutMs,
      initTimeoutMs: options.initTimeoutMs,
      region: options.region,
      scratchDir: join(options.cacheDir, 'scratch'),
      onCall: (call) => hooks.onCall ? hooks.onCall(call) : this.#onCall(call),
    });
    this.fleet = options.localAgent ? null : new Fleet({ clock, log: (line) => process.stderr.write(`thaw: ${line}\n`) });
    this.executor = this.fleet ?? this.agent;
    if (this.fleet) fleetMetrics(this.metrics, this.fleet);
    this.metrics.addSource({
      node: 'local',
      // One reading of the instances (each reads its memory use from the kernel) for both. A control
      // plane runs none itself: its agents report under their own names (cluster-metrics.ts).
      collect: async () => {
        const views = this.fleet ? [] : this.instanceViews();
        return { instances: views, pool: this.agent.pool(), codeCache: this.cache.stats(), memory: this.memoryByTier(views), memoryBudgetBytes: options.memoryBudgetMb * 1048576 };
      },
    });
    this.events = new EventQueue({
      store, clock, pollIntervalMs: options.eventPollIntervalMs, retryDelaysMs: options.eventRetryDelaysMs, region: options.region, leaseOwner: leaseOwner(options),
      invoke: (name, qualifier, payload, id) => this.invoke(name, qualifier, payload, { trigger: 'event', invocationId: id }),
    });
    this.schedules = new Scheduler({
      store, clock, region: options.region, reloadMs: isSharedStore(options.store) ? SCHEDULE_RELOAD_MS : undefined,
      invoke: (name, qualifier, payload, trigger) => this.invoke(name, qualifier, payload, { trigger }),
      onError: (m) => process.stderr.write(`thaw: ${m}\n`),
    });
  }

  static async start(options: ResolvedOptions, clock: Clock = systemClock, hooks: NodeHooks = {}): Promise<Platform> {
    // Keys, packages, unpacked code and decrypted snapshots: readable by the platform only.
    for (const dir of [options.dataDir, options.cacheDir]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
    }
    mkdirSync(join(options.cacheDir, 'scratch'), { recursive: true });
    // Before anything reads the store: a second server on this data dir must not touch its queue. A
    // PostgreSQL store is shared by design: several processes use it at once, each with its own leases.
    const shared = isSharedStore(options.store);
    const lock = shared ? null : lockDataDir(options.dataDir);
    let store: Store;
    try {
      store = await openStore(options.store);
    } catch (err) {
      lock?.release();
      throw err;
    }
    // Leases held by a process that died are void, so those events run again: on a store this node owns,
    // every lease; on a shared one, this node's own (an earlier run's), the others' being live or expiring.
    await store.releaseLeases(shared ? leaseOwner(options) : undefined);
    // A run killed mid-write (a deploy, a cache fill, a snapshot build) left temporaries: never valid, removed.
    const swept = sweepTemporaries([[join(options.cacheDir, 'code'), 0], [join(options.dataDir, 'blobs'), 1], [join(options.cacheDir, 'snapshots'), 0], [join(options.dataDir, 'snapshots'), 1]]);
    if (swept) process.stderr.write(`thaw: removed ${swept} unfinished file(s) left by an earlier run\n`);
    const platform = new Platform(options, store, clock, hooks);
    platform.#lock = lock;
    try {
      if (otlpTracesConfigured(process.env)) {
        platform.#tracing = await startTracing({ region: options.region, onError: (err) => process.stderr.write(`thaw: could not export a trace: ${(err as Error).message}\n`) });
      }
      const marker = join(options.cacheDir, 'zram.device');
      const leftover = releaseLeftoverZram(marker);
      if (leftover) process.stderr.write(`thaw: released ${leftover}, the zram swap an earlier run set up and did not release (it was killed)\n`);
      if (options.zramBytes !== null) platform.#zram = enableZramSwap(options.zramBytes, marker);
      platform.agent.checkPaging();
      await platform.driver.start();
      // After the driver: its mount helper unmounts the images a killed run left mounted.
      await platform.cache.start();
      const stale = await platform.network?.start(await store.listNetworks());
      if (stale) process.stderr.write(`thaw: removed ${stale} network namespace(s) left by an earlier run\n`);
      // A bucket that is missing, unreachable or read-only is said now, not at the first cold start.
      await platform.blobs.check?.();
      await platform.agent.snapshots.start();
      await platform.applyProvisioned();
      await platform.applyPolicies();
      await platform.schedules.start();
    } catch (err) {
      // Nothing of a failed start stays behind: proxies, pooled runtimes, the lock.
      await platform.destroy().catch(() => {});
      throw err;
    }
    platform.events.start();
    return platform;
  }

  /** Resolves the qualifier (alias weights included) and runs the invocation on this node's agent. */
  async invoke(name: string, qualifier: string | null, payload: string, o: InvokeOptions): Promise<InvokeResult> {
    const receivedMono = o.receivedMono ?? this.clock.monotonic();
    const receivedAt = o.receivedAt ?? this.clock.now();
    const target = await this.control.resolve(name, qualifier);
    const invocationId = o.invocationId ?? newInvocationId();
    const caller = o.callerInvocationId ? this.#running.get(o.callerInvocationId) : undefined;
    // A context.invoke callee is a child of its caller's handler span; anything else of the traceparent it came with.
    const trace = invocationTrace(caller ? handlerSpan(caller.trace) : parseTraceparent(o.traceparent), receivedAt);
    this.#running.set(invocationId, { functionName: target.fn.name, depth: (caller?.depth ?? 0) + 1, trace });
    try {
      return await this.executor.invoke({
        invocationId,
        version: target.version,
        qualifier: target.qualifier,
        payload,
        trigger: o.trigger,
        callerInvocationId: o.callerInvocationId ?? null,
        clientContext: o.clientContext ?? null,
        traceId: o.traceId ?? null,
        trace,
        concurrencyLimit: target.fn.reservedConcurrency,
        receivedMono,
        receivedAt,
        signal: o.signal,
        stream: o.stream,
      });
    } finally {
      this.#running.delete(invocationId);
    }
  }

  /** context.invoke from an instance on a cluster agent (forwarded to the control plane). */
  call(call: CallRequest): Promise<CallResult> { return this.#onCall(call); }

  /** context.invoke from inside a function: a synchronous invocation that also teaches the call graph. */
  async #onCall(call: CallRequest): Promise<CallResult> {
    try {
      const caller = this.#running.get(call.callerInvocationId);
      if (caller && caller.depth >= this.options.maxCallDepth) {
        throw new ThawError('THAW_E_INVOKE_DEPTH', `the call chain is ${caller.depth} functions deep, the limit is ${this.options.maxCallDepth}`);
      }
      const { name, qualifier } = parseFunctionRef(call.functionName);
      validatePayload(call.payload, MAX_SYNC_PAYLOAD_BYTES);
      if (caller) await this.store.recordCall(caller.functionName, name, this.clock.now());
      const r = await this.invoke(name, qualifier, call.payload, { trigger: 'invoke', callerInvocationId: call.callerInvocationId });
      if (r.functionError) return { ok: false, error: JSON.parse(r.payload) };
      return { ok: true, payload: r.payload };
    } catch (err) {
      const e = asThawError(err);
      return { ok: false, error: { errorType: e.lambdaType, errorMessage: `${e.code}: ${e.message}`, trace: [] } };
    }
  }

  /** Deletes a function (or one version) and stops the instances that can no longer be invoked. */
  async deleteFunction(name: string, qualifier: string | null): Promise<void> {
    // The store drops snapshot records with their function: note them first so their files go too.
    const snapshots = await this.agent.snapshots.list(name);
    await this.control.deleteFunction(name, qualifier);
    const version = qualifier && /^\d+$/.test(qualifier) ? qualifier : undefined;
    await this.agent.snapshots.remove(name, version, snapshots);
    this.fleet?.dropSnapshots(name, version ?? null);
    const remaining = qualifier ? new Set((await this.store.listVersions(name)).map((v) => v.version)) : new Set<string>();
    if (qualifier) remaining.add('$LATEST');
    await this.executor.retire(name, (v) => remaining.has(v.version));
    if (!qualifier) {
      this.schedules.forget(name);
      this.executor.setPolicy(name, null);
      this.executor.forget(name);
    }
  }

  /**
   * An alias was created or changed: its versions are warmed in proportion to their weights, sized by the
   * function's instances now (no instances, no traffic to shift: nothing is started).
   */
  async rollout(a: Alias): Promise<void> {
    const demand = this.executor.instances().filter((i) => i.functionName === a.functionName && i.state !== 'stopping' && i.state !== 'gone').length;
    if (demand === 0) return;
    const routing = [{ version: a.functionVersion, weight: 1 - (a.routing?.weight ?? 0) }, ...(a.routing ? [a.routing] : [])];
    const targets = await Promise.all(rolloutTargets(routing, demand).map(async (t) => ({ version: (await this.control.getVersion(a.functionName, t.version)).version, count: t.count })));
    const split = routing.filter((r) => r.weight > 0).map((r) => `${Math.round(r.weight * 100)}% to ${r.version}`).join(', ');
    this.executor.rollout(a.functionName, a.name, targets, `alias ${a.name} routes ${split}`);
  }

  /** Sets a function's own policy (a spec such as hybrid:4h), durably; null returns it to the node default. */
  async putPolicy(name: string, spec: string | null): Promise<void> {
    await this.control.getFunction(name);
    if (spec === null) {
      await this.store.deletePolicy(name);
      this.executor.setPolicy(name, null);
      return;
    }
    const parsed = parsePolicy(spec);
    await this.store.putPolicy({ functionName: name, spec: formatPolicy(parsed), updatedAt: this.clock.now() });
    this.executor.setPolicy(name, parsed);
  }

  /** Loads every function's own policy into the agent (at start-up). A spec that no longer parses is reported and skipped. */
  async applyPolicies(): Promise<void> {
    for (const p of await this.store.listPolicies()) {
      try { this.executor.setPolicy(p.functionName, parsePolicy(p.spec)); } catch (err) { process.stderr.write(`thaw: policy of ${p.functionName}: ${(err as Error).message}\n`); }
    }
  }

  /** Sets (count > 0) or removes the reserved instances of a version or alias, durably, and applies it. */
  async putProvisioned(name: string, qualifier: string | null, count: number | null) {
    if (!qualifier || qualifier === '$LATEST') throw new ThawError('THAW_E_QUALIFIER_INVALID', 'reserved instances need a published version or an alias as Qualifier ($LATEST changes)');
    if (count !== null && !(Number.isInteger(count) && count >= 1 && count <= 100)) {
      throw new ThawError('THAW_E_CONFIG_INVALID', `ProvisionedConcurrentExecutions must be an integer from 1 to 100, got ${count}`);
    }
    const { version } = await this.control.getVersion(name, qualifier);
    if (count === null) {
      if (!(await this.store.deleteProvisioned(name, qualifier))) throw new ThawError('THAW_E_PROVISIONED_NOT_FOUND', `${name}:${qualifier} has no reserved instances`);
      this.executor.setReserved(name, qualifier, null, 0);
      return;
    }
    await this.store.putProvisioned({ functionName: name, qualifier, count, updatedAt: this.clock.now() });
    this.executor.setReserved(name, qualifier, version, count);
  }

  /** Re-applies every reserved config of a function (or all), e.g. after an alias moved or at start-up. */
  async applyProvisioned(name?: string): Promise<void> {
    for (const cfg of await this.store.listProvisioned(name)) {
      const resolved = await this.control.getVersion(cfg.functionName, cfg.qualifier).catch(() => null);
      this.executor.setReserved(cfg.functionName, cfg.qualifier, resolved?.version ?? null, cfg.count);
    }
  }

  /**
   * After $LATEST changed, instances of its previous revision are never picked again: stop them now, and
   * warm the new revision to as many instances as the old one had (the traffic to $LATEST goes on).
   */
  async retireStaleLatest(name: string, currentRevisionId: string): Promise<void> {
    const demand = this.executor.instances().filter((i) => i.functionName === name && i.version === '$LATEST' && i.state !== 'stopping' && i.state !== 'gone').length;
    const latest = (await this.control.getFunction(name)).latest;
    if (latest.revisionId === currentRevisionId) this.#warmNewVersion(latest, '$LATEST', `$LATEST changed while it ran ${demand} instance(s)`, demand);
    await this.executor.retire(name, (v) => v.version !== '$LATEST' || v.revisionId === currentRevisionId, 'update');
  }

  /**
   * Seed 001's version prewarm: a new version of a function that has instances now (traffic within its
   * policy's window) gets as many instances as the function runs, at most MAX_VERSION_PREWARM, started
   * ahead of its first request as recorded prewarm decisions. None when the function is idle.
   */
  #warmNewVersion(v: FunctionVersion, qualifier: string, reason: string, demand: number) {
    if (demand <= 0 || !this.options.versionPrewarm) return;
    this.executor.rollout(v.functionName, qualifier, [{ version: v, count: Math.min(demand, MAX_VERSION_PREWARM) }], reason);
  }

  /** A version was published: its snapshot is built, and it is warmed if the function has traffic. */
  #onPublished(v: FunctionVersion) {
    this.agent.snapshots.request(v);
    this.fleet?.predistribute(v);
    const demand = this.executor.instances().filter((i) => i.functionName === v.functionName && i.state !== 'stopping' && i.state !== 'gone').length;
    this.#warmNewVersion(v, v.version, `version ${v.version} published while the function ran ${demand} instance(s)`, demand);
  }

  /** Drains: stops taking events, lets running invocations finish, stops instances, flushes records. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.schedules.close();
      await this.events.close();
      await this.fleet?.close();
      await this.agent.close();
      // Before the driver closes the mount helper the images were mounted through.
      await this.cache.close();
      await this.network?.close();
      await this.driver.close();
      // After every instance is gone, so nothing of theirs is still in it.
      this.#zram?.release();
      await this.recorder.close();
      await this.#tracing?.shutdown();
      this.metrics.close();
      this.blobs.close?.();
      await this.store.close();
      this.#lock?.release();
    })();
    return this.#closed;
  }

  /** Aborts: kills every instance at once, then closes. */
  async destroy(): Promise<void> {
    await this.schedules.close();
    await this.events.close();
    await this.agent.destroy();
    await this.close();
  }

  async [Symbol.asyncDispose]() { await this.close(); }
}

/**
 * How this node mounts package images: through the namespaces driver's mount helper with a loop device (root),
 * else squashfuse, else not at all (packages are unpacked).
 */
function imageMountsFor(confining: NamespacesDriver | null): ImageMounts | null {
  if (confining && existsSync('/dev/loop-control')) {
    const m = confining.mounter;
    return { kind: 'kernel', mount: (image, dir) => m.loop(image, dir, 'squashfs'), umount: (dir) => m.umount(dir) };
  }
  return fuseImageMounts();
}

/** The payload must be a JSON document; an empty one is the empty object, as on Lambda. */
export function validatePayload(payload: string, maxBytes: number): string {
  if (Buffer.byteLength(payload) > maxBytes) throw new ThawError('THAW_E_PAYLOAD_TOO_LARGE', `the payload is ${Buffer.byteLength(payload)} bytes; the limit is ${maxBytes}`);
  if (payload.trim() === '') return '{}';
  try {
    JSON.parse(payload);
  } catch (err) {
    throw new ThawError('THAW_E_PAYLOAD_INVALID', `the payload is not valid JSON: ${(err as Error).message}`);
  }
  return payload;
}

const readdirSafe = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };

/**
 * Removes what a write in progress names `*.tmp-*` or `.build-*` (files and directories), in each dir and
 * as many levels below as given (never inside an unpacked package, whose files are the user's).
 */
function sweepTemporaries(dirs: [string, number][]): number {
  let n = 0;
  const visit = (dir: string, depth: number) => {
    for (const e of readdirSafeDirents(dir)) {
      const p = join(dir, e.name);
      if (/\.tmp-[0-9a-f]+$|^\.build-[0-9a-f]+(\.blob)?$/.test(e.name)) { rmSync(p, { recursive: true, force: true }); n++; }
      else if (e.isDirectory() && depth > 0) visit(p, depth - 1);
    }
  };
  for (const [d, depth] of dirs) visit(d, depth);
  return n;
}

const readdirSafeDirents = (dir: string) => { try { return readdirSync(dir, { withFileTypes: true }); } catch { return []; } };

/** Who holds this node's event leases: the same across its restarts (host and data dir), apart from other nodes'. */
/** How soon a control plane on a shared store sees a schedule another one added (or takes it over when that one is gone). */
const SCHEDULE_RELOAD_MS = 30_000;

function leaseOwner(options: ResolvedOptions): string {
  return `${hostname()}:${options.dataDir}`;
}
