// One instance: a sandboxed runtime bound to one function version for its whole life, as a named state
// machine whose transition table the tests check. Imports src/core, src/runtimes and sandbox types.
import type { Clock } from '../core/clock.ts';
import { publishInstanceState } from '../core/events.ts';
import type { FunctionVersion, InstanceState, StartKind } from '../core/types.ts';
import type { RuntimeConnection } from '../runtimes/index.ts';
import type { PageOut } from '../sandbox/index.ts';

/** Every allowed move; anything else is a bug and throws. */
export const instanceTransitions: Readonly<Record<InstanceState, readonly InstanceState[]>> = {
  starting: ['initializing', 'stopping', 'gone'],
  initializing: ['idle', 'stopping', 'gone'],
  idle: ['busy', 'frozen', 'stopping', 'gone'],
  busy: ['idle', 'stopping', 'gone'],
  // Thawing goes back to idle; the invocation that thawed it then takes it (idle -> busy).
  frozen: ['idle', 'paged', 'stopping', 'gone'],
  // Paged: frozen with its memory in swap. Back to frozen when the page-out could not be done.
  paged: ['idle', 'frozen', 'stopping', 'gone'],
  stopping: ['gone'],
  gone: [],
};

export const canTransition = (from: InstanceState, to: InstanceState) => instanceTransitions[from].includes(to);

export const functionKey = (v: FunctionVersion) => `${v.functionName}@${v.version}#${v.revisionId}`;

export class Instance {
  readonly id: string;
  readonly version: FunctionVersion;
  readonly key: string;
  readonly createdAt: number;
  readonly conn: RuntimeConnection;
  #clock: Clock;
  #state: InstanceState = 'starting';
  /** The rung it was created on: cold, pooled or restored. */
  readonly origin: StartKind;
  /** Reserved (provisioned): kept initialized by the agent, used first, never stopped for idleness. */
  reserved = false;
  inFlight = 0;
  invocations = 0;
  lastUsedAt: number;
  idleSince: number;
  /** Settles when a freeze under way has finished (the process is stopped), so a thaw can wait for it. */
  freezing: Promise<void> | null = null;
  /** Whether it holds its package in the node code cache (released when it is gone). */
  codePinned = false;
  /** The merged tree of its layers it holds in the code cache (released when it is gone); null: no layers. */
  optKey: string | null = null;
  /** Started by a prewarm decision and not used since. */
  prewarmed = false;
  /** Resident memory measured once frozen, after the heap was shrunk. */
  frozenRssBytes: number | null = null;
  /** Settles when a page-out under way has finished, so a thaw can wait for it. */
  paging: Promise<void> | null = null;
  /** Private resident memory before and after the page-out, and what went to swap. */
  paged: PageOut | null = null;

  readonly #started = Promise.withResolvers<boolean>();

  constructor(id: string, version: FunctionVersion, conn: RuntimeConnection, clock: Clock, origin: StartKind = 'cold') {
    this.id = id;
    this.origin = origin;
    this.version = version;
    this.key = functionKey(version);
    this.conn = conn;
    this.#clock = clock;
    this.createdAt = this.lastUsedAt = this.idleSince = clock.monotonic();
    publishInstanceState({ instanceId: id, functionName: version.functionName, version: version.version, from: null, to: 'starting', reason: `${origin} start`, at: clock.now() });
  }

  get state(): InstanceState { return this.#state; }

  /** Settles when its start is over: true once initialized (idle), false when it stopped or died first. */
  get started(): Promise<boolean> { return this.#started.promise; }
  get capacity(): number { return this.version.config.instanceConcurrency; }

  transition(to: InstanceState, reason: string): void {
    const from = this.#state;
    if (from === to) return;
    if (!canTransition(from, to)) throw new Error(`instance ${this.id}: illegal transition ${from} -> ${to} (${reason})`);
    this.#state = to;
    if (to === 'idle') this.idleSince = this.#clock.monotonic();
    if ((from === 'starting' || from === 'initializing') && to !== 'initializing') this.#started.resolve(to === 'idle');
    publishInstanceState({ instanceId: this.id, functionName: this.version.functionName, version: this.version.version, from, to, reason, at: this.#clock.now() });
  }

  /** Takes one invocation slot (idle → busy). */
  acquire(): void {
    this.inFlight++;
    this.invocations++;
    this.prewarmed = false;
    this.lastUsedAt = this.#clock.monotonic();
    this.transition('busy', 'invocation');
  }

  /** Gives the slot back; the last one out makes it idle again. */
  release(): void {
    this.inFlight--;
    this.lastUsedAt = this.#clock.monotonic();
    if (this.inFlight === 0 && this.#state === 'busy') this.transition('idle', 'invocation done');
  }

  view() {
    return {
      id: this.id,
      functionName: this.version.functionName,
      version: this.version.version,
      /** Which $LATEST (or version) it runs: a cluster's control plane places and retires by it. */
      revisionId: this.version.revisionId,
      state: this.#state,
      pid: this.conn.sandbox.pid,
      inFlight: this.inFlight,
      invocations: this.invocations,
      ageMs: Math.round(this.#clock.monotonic() - this.createdAt),
      idleMs: this.#state === 'idle' ? Math.round(this.#clock.monotonic() - this.idleSince) : 0,
      memoryMb: this.version.config.memoryMb,
      origin: this.origin,
      reserved: this.reserved,
      prewarmed: this.prewarmed,
      rssBytes: this.conn.sandbox.rssBytes(),
      frozenRssBytes: this.frozenRssBytes,
      swappedBytes: this.paged?.swappedBytes ?? null,
      /** Private (anonymous) resident memory before the page-out and after it, like for like. */
      pagedFromBytes: this.paged?.beforeBytes ?? null,
      pagedToBytes: this.paged?.residentBytes ?? null,
    };
  }
}

export type InstanceView = ReturnType<Instance['view']>;
