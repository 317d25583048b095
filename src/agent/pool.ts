// The pool of generic runtimes (AWS's warm pool, Fission's pool): started, not yet bound to any function,
// one set per shape: runtime kind (one per Node major: a nodejs20.x function only ever takes a runtime
// started on Node 20; nodejs24 and nodejs24.x share one), memory size and /tmp size (the heap limit, the sandbox's cgroup and its
// /tmp are fixed when it starts). A cold start takes
// one and specializes it; it never comes back. Refills run in the background, off the critical path.
// Imports src/core, src/runtimes, src/sandbox.
import type { Clock, TimerHandle } from '../core/clock.ts';
import { newInstanceId } from '../core/ids.ts';
import type { Runtime, VpcConfig } from '../core/types.ts';
import type { InstanceNetwork } from '../network/index.ts';
import { RuntimeConnection, runtimeKind } from '../runtimes/index.ts';
import type { SandboxDriver } from '../sandbox/index.ts';

export interface PooledRuntime {
  readonly id: string;
  readonly runtime: Runtime;
  readonly memoryMb: number;
  readonly tmpMb: number;
  readonly vpc: VpcConfig | null;
  readonly conn: RuntimeConnection;
  readonly startedAt: number;
}

export interface RuntimePoolOptions {
  driver: SandboxDriver;
  clock: Clock;
  /** Ready runtimes to keep per runtime kind and memory size; 0 disables the pool. */
  size: number;
  /** Delay before a refill starts, so a burst of cold starts is not slowed by new runtimes booting. */
  refillDelayMs: number;
  /** Memory sizes kept at most (each learned from a cold start); the oldest is dropped beyond it. */
  maxShapes: number;
  scratchDir: string;
  /** The environment a runtime of this kind starts with (Lambda's name of the kind: nodejs22.x). */
  runtimeEnv(runtime: Runtime): Record<string, string>;
  /** What a new sandbox binds (its own directory of the egress proxies' sockets). */
  binds(instanceId: string): { host: string; inside: string }[];
  /** Attaches runtimes of a private network's shape to it (a ready namespace each) before they start. */
  network?: InstanceNetwork | null;
  onError(message: string): void;
  /** A runtime of this shape booted (sandbox created to runtime ready) in `ms`: the ladder's boot cost. */
  onBooted?(shape: Shape, ms: number): void;
}

/** What a pooled runtime is fixed to when it starts. */
export interface Shape {
  readonly runtime: Runtime;
  readonly memoryMb: number;
  readonly tmpMb: number;
  /** The private networks it is attached to (its network namespace is fixed when it starts); null: none. */
  readonly vpc: VpcConfig | null;
}

const key = (s: Shape) => `${runtimeKind(s.runtime).name}:${s.memoryMb}:${s.tmpMb}:${s.vpc?.networks.join(',') ?? ''}:${s.vpc?.securityGroups?.join(',') ?? ''}`;
/** Consecutive failed starts after which a shape stops refilling until it is wanted again. */
const MAX_FAILURES = 3;

interface ShapeState extends Shape {
  ready: PooledRuntime[];
  starting: number;
  failures: number;
}

export class RuntimePool {
  #o: RuntimePoolOptions;
  #shapes = new Map<string, ShapeState>();
  #refill: TimerHandle | null = null;
  #closed = false;
  /** Every runtime the pool owns, ready or starting, so close() can stop them. */
  #all = new Set<RuntimeConnection>();
  taken = 0;

  constructor(options: RuntimePoolOptions) { this.#o = options; }

  get size() { return this.#o.size; }

  /**
   * Keeps runtimes of this shape ready from now on. A new shape (or one that had stopped after failures)
   * fills after the refill delay, or at once with `now`; a known one refills as its runtimes are taken.
   * Never at once for a start under way: starting a runtime blocks the event loop for its fork and exec.
   */
  want(want: Shape, now = false): void {
    if (this.#o.size <= 0 || this.#closed) return;
    const k = key(want);
    const shape = this.#shapes.get(k);
    if (shape) {
      const stalled = shape.failures >= MAX_FAILURES;
      // A shape that had stopped after failures gets one more round, not a fresh budget: a runtime that
      // cannot start is not restarted in a storm by the traffic that keeps asking for it.
      shape.failures = stalled ? MAX_FAILURES - 1 : 0;
      // Most recently wanted last, so the oldest shape is the first dropped.
      this.#shapes.delete(k);
      this.#shapes.set(k, shape);
      if (!stalled) return;
    } else {
      this.#shapes.set(k, { runtime: runtimeKind(want.runtime).name, memoryMb: want.memoryMb, tmpMb: want.tmpMb, vpc: want.vpc, ready: [], starting: 0, failures: 0 });
      while (this.#shapes.size > this.#o.maxShapes) this.#drop(this.#shapes.keys().next().value!);
    }
    this.#scheduleRefill(now ? 0 : this.#o.refillDelayMs);
  }

  readyCount(shape: Shape): number {
    return this.#shapes.get(key(shape))?.ready.length ?? 0;
  }

  /**
   * A ready runtime of this shape, now, or null. The caller says when it has finished specializing it
   * (`specialized()`): only then does the refill start, because starting a runtime blocks the server's
   * event loop for the fork and exec (10-20 ms here), which would land on the specialization itself.
   */
  take(want: Shape): PooledRuntime | null {
    const shape = this.#shapes.get(key(want));
    const pooled = shape?.ready.shift() ?? null;
    if (pooled) {
      this.#all.delete(pooled.conn);
      this.taken++;
    }
    return pooled;
  }

  /** A runtime taken from the pool is specialized (or failed to be): refill behind it. */
  specialized(): void { this.#scheduleRefill(this.#o.refillDelayMs); }

  view() {
    return [...this.#shapes.values()].map((s) => ({ runtime: s.runtime, memoryMb: s.memoryMb, tmpMb: s.tmpMb, networks: s.vpc?.networks ?? [], securityGroups: s.vpc?.securityGroups ?? [], ready: s.ready.length, starting: s.starting, target: this.#o.size }));
  }

  #scheduleRefill(ms: number) {
    if (this.#closed || this.#refill) return;
    this.#refill = this.#o.clock.setTimer(() => { this.#refill = null; this.#fill(); }, ms);
  }

  #fill() {
    for (const shape of this.#shapes.values()) {
      while (!this.#closed && shape.failures < MAX_FAILURES && shape.ready.length + shape.starting < this.#o.size) {
        shape.starting++;
        void this.#start(shape).finally(() => { shape.starting--; });
      }
    }
  }

  async #start(shape: ShapeState): Promise<void> {
    const kind = runtimeKind(shape.runtime);
    const id = newInstanceId();
    const bootStart = this.#o.clock.monotonic();
    try {
      let netns: string | undefined;
      if (shape.vpc) {
        if (!this.#o.network) throw new Error('private networks need the namespaces sandbox');
        netns = (await this.#o.network.attach(id, shape.vpc)).netns;
      }
      const sandbox = await this.#o.driver.create(kind.sandboxSpec({ id, memoryMb: shape.memoryMb, tmpMb: shape.tmpMb, cwd: this.#o.scratchDir, env: this.#o.runtimeEnv(kind.name), readPaths: [], binds: this.#o.binds(id), netns }))
        .catch((err: unknown) => { this.#o.network?.release(id); throw err; });
      const conn = new RuntimeConnection(sandbox, { onLog: () => {}, onCall: async () => ({ ok: false, error: { errorType: 'Runtime.NotInitialized', errorMessage: 'not bound to a function', trace: [] } }) });
      this.#all.add(conn);
      void sandbox.exited.then(() => {
        // Died while waiting in the pool: forget it and start another. (Taken, the agent releases it.)
        if (this.#all.has(conn)) this.#o.network?.release(id);
        this.#all.delete(conn);
        const i = shape.ready.findIndex((p) => p.conn === conn);
        if (i >= 0) { shape.ready.splice(i, 1); this.#scheduleRefill(this.#o.refillDelayMs); }
      });
      if (this.#closed) { sandbox.kill('pool closed'); return; }
      await conn.ready();
      if (this.#closed || sandbox.hasExited) { sandbox.kill('pool closed'); return; }
      shape.failures = 0;
      this.#o.onBooted?.(shape, this.#o.clock.monotonic() - bootStart);
      if (this.#shapes.get(key(shape)) !== shape) { sandbox.kill('pool shape dropped'); return; }
      shape.ready.push({ id, runtime: shape.runtime, memoryMb: shape.memoryMb, tmpMb: shape.tmpMb, vpc: shape.vpc, conn, startedAt: this.#o.clock.monotonic() });
    } catch (err) {
      if (this.#closed) return;
      shape.failures++;
      this.#o.onError(`pooled ${shape.runtime} runtime (${shape.memoryMb} MB, /tmp ${shape.tmpMb} MB) failed to start: ${(err as Error).message}`);
      if (shape.failures < MAX_FAILURES) this.#scheduleRefill(this.#o.refillDelayMs * 4 + 100);
    }
  }

  #drop(k: string) {
    const shape = this.#shapes.get(k);
    this.#shapes.delete(k);
    for (const p of shape?.ready ?? []) p.conn.sandbox.kill('pool shape dropped');
  }

  /** Stops every runtime the pool holds; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#refill?.cancel();
    this.#refill = null;
    const all = [...this.#all];
    for (const c of all) c.sandbox.kill('shutdown');
    await Promise.all(all.map((c) => c.sandbox.exited));
    // Starts that were under way finish by killing themselves; wait for them too.
    while ([...this.#shapes.values()].some((s) => s.starting > 0)) await new Promise((r) => setTimeout(r, 10));
    const late = [...this.#all];
    for (const c of late) c.sandbox.kill('shutdown');
    await Promise.all(late.map((c) => c.sandbox.exited));
  }
}
