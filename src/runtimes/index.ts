// Runtimes: how to start a language runtime in a sandbox and speak the instance protocol with it.
// Public entry of src/runtimes; imports src/core, src/sandbox types and node built-ins.
import { fileURLToPath } from 'node:url';
import type { Runtime } from '../core/types.ts';
import { ThawError } from '../core/errors.ts';
import type { Sandbox, SandboxExit, SandboxSpec } from '../sandbox/index.ts';
import { checkRuntimeMessage, type HostMessage, type InitSpec, type InvokeSpec, type RuntimeMessage, type SerializedError } from './node/protocol.ts';

export type { InitSpec, InvokeSpec, SerializedError } from './node/protocol.ts';

export const nodeBootstrapPath = fileURLToPath(new URL('./node/bootstrap.cjs', import.meta.url));

export interface RuntimeStartOptions {
  id: string;
  memoryMb: number;
  /** The private /tmp's size (EphemeralStorage). */
  tmpMb: number;
  cwd: string;
  /** The runtime's own variables (no function's yet); the function's arrive with init. */
  env: Record<string, string>;
  readPaths: string[];
  /** Platform directories bound at other paths inside (see SandboxSpec.binds). */
  binds?: { host: string; inside: string }[];
  /** A private network's namespace to join (see SandboxSpec.netns). */
  netns?: string;
  /** Start from this V8 startup snapshot (user code already initialized) instead of the bootstrap. */
  snapshotBlob?: string;
}

export interface RuntimeKind {
  readonly name: Runtime;
  sandboxSpec(o: RuntimeStartOptions): SandboxSpec;
}

/** Heap limit from the memory setting, leaving room for code, stacks and buffers outside the V8 heap. */
export const heapLimitMb = (memoryMb: number) => Math.max(32, Math.floor(memoryMb * 0.85));

export const nodeRuntime: RuntimeKind = {
  name: 'nodejs24',
  sandboxSpec(o) {
    return {
      id: o.id,
      command: process.execPath,
      args: [
        `--max-old-space-size=${heapLimitMb(o.memoryMb)}`, '--disable-warning=ExperimentalWarning',
        ...(o.snapshotBlob ? ['--snapshot-blob', o.snapshotBlob] : [nodeBootstrapPath]),
      ],
      env: o.env,
      cwd: o.cwd,
      memoryBytes: o.memoryMb * 1024 * 1024,
      tmpBytes: o.tmpMb * 1024 * 1024,
      readPaths: [...o.readPaths, process.execPath, o.snapshotBlob ?? nodeBootstrapPath],
      binds: o.binds ?? [],
      ...(o.netns ? { netns: o.netns } : {}),
    };
  },
};

export const runtimes: ReadonlyMap<Runtime, RuntimeKind> = new Map([[nodeRuntime.name, nodeRuntime]]);

export type InvokeOutcome =
  | { kind: 'ok'; payload: string }
  | { kind: 'error'; error: SerializedError }
  /** The runtime died during the invocation; `error` is what it reported before dying, if anything. */
  | { kind: 'crash'; exit: SandboxExit; error: SerializedError | null; stderrTail: string };

export class InitFailure extends Error {
  readonly error: SerializedError;
  readonly durationMs: number;
  constructor(error: SerializedError, durationMs: number) {
    super(error.errorMessage);
    this.error = error;
    this.durationMs = durationMs;
  }
}

export interface ConnectionHooks {
  onLog(invocationId: string | null, stream: 'stdout' | 'stderr', text: string): void;
  /** context.invoke from inside the function. */
  onCall(invocationId: string, functionName: string, payload: string): Promise<{ ok: true; payload: string } | { ok: false; error: SerializedError }>;
}

const TAIL_BYTES = 4096;

/**
 * The host side of the instance protocol over one sandbox. Every promise it hands out settles: with the
 * runtime's answer, or with the sandbox's exit.
 */
export class RuntimeConnection {
  readonly sandbox: Sandbox;
  #hooks: ConnectionHooks;
  #ready: PromiseWithResolvers<void> = Promise.withResolvers();
  #init: PromiseWithResolvers<number> | null = null;
  #pending = new Map<string, PromiseWithResolvers<InvokeOutcome>>();
  #fatal = new Map<string, SerializedError>();
  #freeze: PromiseWithResolvers<number> | null = null;
  #exit: SandboxExit | null = null;
  #pings = new Map<number, (alive: boolean) => void>();
  #pingSeq = 0;
  #stderrTail = '';
  /** True once the runtime said it is ready; `restored` when it came from a snapshot with the handler loaded. */
  isReady = false;
  restored = false;

  constructor(sandbox: Sandbox, hooks: ConnectionHooks) {
    this.sandbox = sandbox;
    this.#hooks = hooks;
    this.#ready.promise.catch(() => {});
    // A malformed message throws here; the channel then ends the unit as a protocol violation.
    sandbox.channel.onMessage((m) => this.#onMessage(checkRuntimeMessage(m)));
    // Output that bypassed the bootstrap (native writes, V8's fatal errors) still reaches the logs.
    for (const stream of ['stdout', 'stderr'] as const) {
      sandbox[stream].setEncoding('utf8');
      sandbox[stream].on('data', (text: string) => {
        if (stream === 'stderr') this.#stderrTail = (this.#stderrTail + text).slice(-TAIL_BYTES);
        this.#hooks.onLog(this.#pending.size === 1 ? [...this.#pending.keys()][0] : null, stream, text);
      });
    }
    void sandbox.exited.then((exit) => this.#onExit(exit));
  }

  /** Resolves when the runtime has started and is waiting for init. */
  ready(): Promise<void> { return this.#ready.promise; }

  /** Rebinds logs and calls to a new owner: a pooled runtime becomes an instance of a function. */
  bind(hooks: ConnectionHooks): void { this.#hooks = hooks; }

  /** A round trip to the runtime: true when it answers, false when it is (or turns out to be) gone. */
  ping(): Promise<boolean> {
    if (this.#exit) return Promise.resolve(false);
    const id = ++this.#pingSeq;
    const p = new Promise<boolean>((resolve) => this.#pings.set(id, resolve));
    this.#send({ type: 'ping', id });
    return p;
  }

  /** Asks the runtime to shrink its heap before being frozen; resolves with the heap still used (bytes). */
  prepareFreeze(): Promise<number> {
    this.#freeze = Promise.withResolvers();
    this.#send({ type: 'prepareFreeze' });
    return this.#freeze.promise;
  }

  /** Binds the runtime to one function version; resolves with the user init duration (ms). */
  init(spec: InitSpec): Promise<number> {
    this.#init = Promise.withResolvers();
    this.#send({ type: 'init', spec });
    return this.#init.promise;
  }

  invoke(spec: InvokeSpec): Promise<InvokeOutcome> {
    const p = Promise.withResolvers<InvokeOutcome>();
    if (this.#exit) {
      // The runtime is already gone: answer now rather than wait for an exit that has happened.
      p.resolve({ kind: 'crash', exit: this.#exit, error: null, stderrTail: this.#stderrTail });
      return p.promise;
    }
    this.#pending.set(spec.id, p);
    this.#send({ type: 'invoke', spec });
    return p.promise;
  }

  get inFlight(): number { return this.#pending.size; }

  #send(m: HostMessage) { this.sandbox.channel.send(m); }

  #onMessage(m: RuntimeMessage) {
    switch (m.type) {
      case 'ready': this.isReady = true; this.restored = m.restored; this.#ready.resolve(); break;
      case 'freezeReady': this.#freeze?.resolve(m.heapUsedBytes); break;
      case 'pong': this.#pings.get(m.id)?.(true); this.#pings.delete(m.id); break;
      case 'initDone': this.#init?.resolve(m.durationMs); break;
      case 'initError': this.#init?.reject(new InitFailure(m.error, m.durationMs)); break;
      case 'log': this.#hooks.onLog(m.invocationId, m.stream, m.text); break;
      case 'result': {
        const p = this.#pending.get(m.id);
        if (!p) break;
        this.#pending.delete(m.id);
        p.resolve(m.ok ? { kind: 'ok', payload: m.payload } : { kind: 'error', error: m.error });
        break;
      }
      case 'call':
        void this.#hooks.onCall(m.invocationId, m.functionName, m.payload).then(
          (r) => this.#send({ type: 'callResult', callId: m.callId, ...r }),
          (e: unknown) => this.#send({ type: 'callResult', callId: m.callId, ok: false, error: { errorType: 'ThawError', errorMessage: String((e as Error)?.message ?? e), trace: [] } }),
        );
        break;
      case 'fatal':
        for (const id of m.invocationIds) this.#fatal.set(id, m.error);
        break;
    }
  }

  #onExit(exit: SandboxExit) {
    this.#exit = exit;
    for (const resolve of this.#pings.values()) resolve(false);
    this.#pings.clear();
    const how = exit.signal ? `signal ${exit.signal}` : `exit status ${exit.code}`;
    this.#ready.reject(new ThawError('THAW_E_SANDBOX_START_FAILED', `the runtime exited before it was ready (${how}): ${this.#stderrTail.trim().slice(-500) || 'no output'}`));
    this.#init?.reject(new InitFailure({ errorType: 'Runtime.ExitError', errorMessage: `Runtime exited during init with ${how}`, trace: [] }, 0));
    this.#freeze?.reject(new ThawError('THAW_E_SANDBOX_START_FAILED', `the runtime exited before it could be frozen (${how})`));
    for (const [id, p] of this.#pending) p.resolve({ kind: 'crash', exit, error: this.#fatal.get(id) ?? null, stderrTail: this.#stderrTail });
    this.#pending.clear();
  }
}

export { buildNodeSnapshot, SnapshotUnsupported, type SnapshotBuildSpec } from './node/snapshot.ts';
