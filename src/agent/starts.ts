// Starting an instance: the sandbox (a runtime process started cold, from the version's snapshot, or taken
// from the runtime pool), the code and layers fetched and unpacked beside the runtime's boot, the Lambda
// environment, the network (a private network attached, an egress grant) and user init, each phase timed.
// The agent decides which path and what an instance is to it (claimed, adopted, stopped); this only starts
// one. Imports src/core, src/codestore, src/runtimes, src/sandbox and src/network types, and the agent's
// instance, pool, init sets and timing.
import { join, relative } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { ThawError } from '../core/errors.ts';
import { newInstanceId } from '../core/ids.ts';
import { ephemeralStorageMb, type FunctionVersion, type Runtime, type StartKind } from '../core/types.ts';
import { functionArn } from '../core/arn.ts';
import type { CodeCache, OptTrees, Origin, PackageLimits } from '../codestore/index.ts';
import { parseHandler, resolveHandlerFile } from '../codestore/index.ts';
import { InitFailure, RuntimeConnection, runtimeKind, type InitSpec, type SerializedError } from '../runtimes/index.ts';
import type { SandboxDriver } from '../sandbox/index.ts';
import { DEFAULT_EGRESS, type InstanceNetwork } from '../network/index.ts';
import type { CallRequest, CallResult, InvokeRequest, InvokeResult } from './agent.ts';
import type { InitSets } from './initsets.ts';
import { Instance } from './instance.ts';
import { functionEnv, logStreamName, nodePath } from './lambda.ts';
import type { RuntimePool } from './pool.ts';
import { withTimeout, type Phases, type Samples } from './timing.ts';

/** A started instance, or the finished (failed) invocation when user init failed. */
export type Started = { instance: Instance; initMs: number } | { failure: InvokeResult };

export interface StartOptions {
  clock: Clock;
  driver: SandboxDriver;
  blobs: Origin;
  cache: CodeCache;
  packageLimits: PackageLimits;
  region: string;
  scratchDir: string;
  compileCacheDir: string | null;
  startTimeoutMs: number;
  initTimeoutMs: number;
  network?: InstanceNetwork | null;
  runtimePool: RuntimePool;
  optTrees: OptTrees;
  initSets: InitSets;
  /** The version's snapshot when one is ready to restore from. */
  snapshotBlob(v: FunctionVersion): string | null;
  /** Where each start's durations go, for the ladder's estimates: user init, snapshot restore, runtime boot. */
  initMs: Samples;
  restoreMs: Samples;
  bootMs: Samples;
  /** The environment of a runtime before it knows its function. */
  runtimeEnv(runtime: Runtime): Record<string, string>;
  /** Makes room under the node's memory budget for an instance of v. */
  admit(v: FunctionVersion): void;
  /** The new instance belongs to the invocation starting it (not a prewarm's or a reservation's). */
  claim(instance: Instance): void;
  /** The new instance joins the agent's instances (before its code is in place). */
  adopt(instance: Instance): void;
  onLog(instance: Instance, invocationId: string | null, stream: 'stdout' | 'stderr', text: string): void;
  onCall(call: CallRequest): Promise<CallResult>;
  stop(instance: Instance, reason: string): void;
  /** Finishes the invocation whose init failed (its record, END and REPORT). */
  finish(req: InvokeRequest, instance: Instance, phases: Phases, start: StartKind, initMs: number, handlerMs: number,
    outcome: 'init_error', error: SerializedError): InvokeResult;
}

const nullHooks = {
  onLog: () => {},
  onCall: async () => ({ ok: false as const, error: { errorType: 'Runtime.NotInitialized', errorMessage: 'not bound to a function yet', trace: [] } }),
};

/** Boot costs are a runtime's and a memory size's, whatever function it then runs. */
export const bootKey = (s: { runtime: string; memoryMb: number }) => `${runtimeKind(s.runtime).name}:${s.memoryMb}`;
/** The pool shape a version's instances need. */
export const shapeOf = (v: FunctionVersion) => ({ runtime: v.config.runtime, memoryMb: v.config.memoryMb, tmpMb: ephemeralStorageMb(v.config), vpc: v.config.vpc?.networks.length ? v.config.vpc : null });

export class InstanceStarts {
  readonly #o: StartOptions;
  /** Each package's handler file and export, resolved once. */
  readonly #handlerFiles = new Map<string, { file: string; exportName: string }>();

  constructor(options: StartOptions) { this.#o = options; }

  /**
   * A new instance by the path the ladder chose: `cold` starts a runtime process, `restored` starts one
   * from the version's snapshot, `pooled` takes a started one. All three then fetch and unpack the code
   * (in parallel with the runtime boot), set the environment and run init (a restore runs only its hooks).
   */
  async start(req: InvokeRequest, phases: Phases, path: 'restored' | 'pooled' | 'cold', onInstance?: (i: Instance) => void): Promise<Started> {
    const { clock } = this.#o;
    const v = req.version;
    const runtime = runtimeKind(v.config.runtime);
    const vpc = v.config.vpc?.networks.length ? v.config.vpc : null;
    this.#o.runtimePool.want(shapeOf(v));
    this.#o.admit(v);

    const sandboxStart = clock.monotonic();
    let id: string;
    let conn: RuntimeConnection;
    let origin: StartKind = path;
    // A pooled runtime of a private network's shape was attached to it before it started.
    const pooled = path === 'pooled' ? this.#o.runtimePool.take(shapeOf(v)) : null;
    const snapshotBlob = path === 'restored' ? this.#o.snapshotBlob(v) : null;
    /** The private network attach: when it started and how long it took (a ready namespace: microseconds). */
    let attach: { start: number; ms: number } | null = null;
    if (pooled) {
      id = pooled.id;
      conn = pooled.conn;
    } else {
      if (path === 'restored' && !snapshotBlob) origin = 'cold';
      if (path === 'pooled') origin = 'cold';
      id = newInstanceId();
      let netns: string | undefined;
      if (vpc) {
        if (!this.#o.network) throw new ThawError('THAW_E_NETWORK_UNAVAILABLE', `${v.functionName} is on a private network, which needs the namespaces sandbox; this node runs ${this.#o.driver.name}`);
        const start = clock.monotonic();
        netns = (await this.#o.network.attach(id, vpc)).netns;
        attach = { start, ms: clock.monotonic() - start };
      }
      const spec = runtime.sandboxSpec({ id, memoryMb: v.config.memoryMb, tmpMb: ephemeralStorageMb(v.config), cwd: this.#o.scratchDir, env: this.#o.runtimeEnv(runtime.name), readPaths: [], binds: this.#o.network?.binds(id), netns, snapshotBlob: snapshotBlob ?? undefined });
      try {
        conn = new RuntimeConnection(await this.#o.driver.create(spec), nullHooks);
      } catch (err) {
        this.#o.network?.release(id);
        throw err;
      }
    }
    const sandbox = conn.sandbox;
    const sandboxEnd = clock.monotonic();
    phases.add('sandbox', sandboxStart, sandboxEnd);

    const instance = new Instance(id, v, conn, clock, origin);
    onInstance?.(instance);
    if (req.trigger !== 'prewarm' && req.trigger !== 'provision') this.#o.claim(instance);
    conn.bind({
      onLog: (invocationId, stream, text) => this.#o.onLog(instance, invocationId, stream, text),
      onCall: (invocationId, functionName, payload) => this.#o.onCall({ callerInvocationId: invocationId, functionName, payload }),
    });
    this.#o.adopt(instance);

    const booted = conn.ready().then(() => clock.monotonic());
    booted.catch(() => {});
    try {
      const codeStart = clock.monotonic();
      // With a remote origin and a known init set, a miss serves init's files at once and fills the rest behind.
      const onDemand = await this.#o.initSets.forStart(v);
      const code = await this.#o.cache.ensure(v.config.codeSha256, this.#o.blobs, this.#o.packageLimits, v.config.codeImage, onDemand.set);
      // Held while the instance lives: the cache never evicts code a running instance may still read.
      this.#o.cache.pin(v.config.codeSha256);
      instance.codePinned = true;
      // Its layers, as one tree: fetched, unpacked and merged like code (once per node), pinned likewise.
      const opt = v.config.layers?.length ? await this.#o.optTrees.ensure(v.config.layers.map((l) => l.codeSha256)) : null;
      if (opt) { this.#o.cache.pin(opt.key); instance.optKey = opt.key; }
      const fetchMs = code.fetchMs + (opt?.fetchMs ?? 0);
      phases.add('code', codeStart, codeStart + fetchMs);
      phases.add('unpack', codeStart + fetchMs, codeStart + fetchMs + code.unpackMs + (opt?.unpackMs ?? 0));

      const envStart = clock.monotonic();
      const entry = await this.#handlerEntry(v, code.dir);
      // The code appears inside the sandbox (at /var/task where it is confined), with the version's compile cache.
      const inside = await sandbox.attachCode({
        codeDir: code.dir,
        optDir: opt?.dir ?? null,
        // Per package and Node version (a V8 code cache is one binary's); none where Node has no compile cache (20).
        compileCacheDir: this.#o.compileCacheDir && runtime.compileCache ? join(this.#o.compileCacheDir, `${v.config.codeSha256.slice(0, 16)}-node${runtime.nodeVersion}`) : null,
      });
      const initSpec: InitSpec = {
        functionName: v.functionName,
        version: v.version,
        functionArn: functionArn(this.#o.region, v.functionName, req.qualifier),
        memoryMb: v.config.memoryMb,
        file: join(inside.codeDir, relative(code.dir, entry.file)),
        exportName: entry.exportName,
        codeDir: inside.codeDir,
        env: { NODE_PATH: nodePath(inside, runtime.nodeMajor), ...functionEnv(v, inside.codeDir, {
          logStream: logStreamName(v.version, id, clock.now()),
          // Started ahead of demand (reserved, or a policy's pre-warm): Lambda's word for that is provisioned.
          initializationType: req.trigger === 'provision' || req.trigger === 'prewarm' ? 'provisioned-concurrency' : origin === 'restored' ? 'snap-start' : 'on-demand',
        }) },
        compileCacheDir: inside.compileCacheDir,
        ...(code.partial ? { partial: true } : {}),
        ...(onDemand.record ? { recordFiles: true } : {}),
      };
      const envEnd = clock.monotonic();
      phases.add('env', envStart, envEnd);
      // The instance's way out: an egress grant under its function's policy, presented by its relay.
      if (this.#o.network) initSpec.egressToken = this.#o.network.grant(id, `${v.functionName}:${v.version}`, v.config.egress ?? DEFAULT_EGRESS);
      const grantMs = clock.monotonic() - envEnd;
      // The network phase: the private network attach (before the sandbox started) and the egress grant.
      if (attach) phases.add('network', attach.start, attach.start + attach.ms + grantMs);
      else phases.add('network', envEnd, envEnd + grantMs);

      const readyAt = pooled ? sandboxEnd : await withTimeout(booted, this.#o.startTimeoutMs, () => sandbox.kill('runtime start timed out'), clock, 'the runtime did not start in time');
      phases.add('runtime', sandboxEnd, readyAt);
      if (origin === 'restored') this.#o.restoreMs.add(instance.key, readyAt - sandboxStart);
      if (origin === 'cold') this.#o.bootMs.add(bootKey(shapeOf(v)), readyAt - sandboxStart);

      instance.transition('initializing', 'runtime ready');
      const initStart = Math.max(readyAt, envEnd);
      try {
        await withTimeout(conn.init(initSpec), this.#o.initTimeoutMs, () => sandbox.kill('init timed out'), clock, `init did not finish within ${this.#o.initTimeoutMs} ms`);
      } catch (err) {
        const end = clock.monotonic();
        phases.add('init', initStart, end);
        if (!(err instanceof InitFailure) && !(err instanceof ThawError && err.code === 'THAW_E_FUNCTION_TIMEOUT')) throw err;
        const error: SerializedError = err instanceof InitFailure ? err.error : { errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${req.invocationId} Error: ${err.message}`, trace: [] };
        this.#o.stop(instance, 'init failed');
        if (pooled) this.#o.runtimePool.specialized();
        return { failure: this.#o.finish(req, instance, phases, origin, end - initStart, 0, 'init_error', error) };
      }
      const initEnd = clock.monotonic();
      phases.add('init', initStart, initEnd);
      if (onDemand.record && conn.initFiles) void this.#o.initSets.record(v, code.dir, conn.initFiles);
      if (origin !== 'restored') this.#o.initMs.add(instance.key, initEnd - initStart);
      instance.transition('idle', 'initialized');
      if (pooled) this.#o.runtimePool.specialized();
      return { instance, initMs: initEnd - initStart };
    } catch (err) {
      if (pooled) this.#o.runtimePool.specialized();
      this.#o.stop(instance, `${origin} start failed`);
      if (err instanceof ThawError) throw err;
      throw new ThawError('THAW_E_SANDBOX_START_FAILED', `${origin} start of ${v.functionName} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async #handlerEntry(v: FunctionVersion, dir: string) {
    const key = `${v.config.codeSha256}:${v.config.handler}`;
    let entry = this.#handlerFiles.get(key);
    if (!entry) {
      const { file } = await resolveHandlerFile(dir, v.config.handler);
      entry = { file, exportName: parseHandler(v.config.handler).exportName };
      this.#handlerFiles.set(key, entry);
    }
    return entry;
  }
}
