// Runtimes: how to start a language runtime in a sandbox and speak the instance protocol with it.
// Public entry of src/runtimes; imports src/core, src/sandbox types and node built-ins.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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
  /** Lambda's name for it (AWS_EXECUTION_ENV is AWS_Lambda_<name>); the pools, caches and boot costs are kept by it. */
  readonly name: Runtime;
  /** The Node major it runs on, and the exact version (compile caches and snapshots are that binary's). */
  readonly nodeMajor: number;
  readonly nodeVersion: string;
  /** The node executable: the platform's own for Node 24, the npm aliases node20/node22 for the others. */
  readonly binary: string;
  /** Whether `module.enableCompileCache` exists (Node 22.1+); without it instances compile every start. */
  readonly compileCache: boolean;
  sandboxSpec(o: RuntimeStartOptions): SandboxSpec;
}

/** Heap limit from the memory setting, leaving room for code, stacks and buffers outside the V8 heap. */
export const heapLimitMb = (memoryMb: number) => Math.max(32, Math.floor(memoryMb * 0.85));

const requireHere = createRequire(import.meta.url);

/**
 * A Node binary installed as an npm package (`node20`: npm's `node@20` under an alias), found through
 * this package's node_modules as any dependency is, never through PATH; the platform's own Node when it
 * is of that major. Null when the package is not installed: the runtime then refuses to start, saying so.
 */
function nodeBinary(major: number, pkg: string): { binary: string; version: string } | null {
  if (Number(process.versions.node.split('.')[0]) === major) return { binary: process.execPath, version: process.versions.node };
  try {
    const manifest = requireHere.resolve(`${pkg}/package.json`);
    const version = (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
    const binary = join(dirname(manifest), 'bin', 'node');
    return existsSync(binary) && version.startsWith(`${major}.`) ? { binary, version } : null;
  } catch {
    return null;
  }
}

function nodeKind(name: Runtime, major: number, pkg: string): RuntimeKind {
  const found = nodeBinary(major, pkg);
  const binary = found?.binary ?? '';
  return {
    name,
    nodeMajor: major,
    nodeVersion: found?.version ?? `${major}.x (not installed)`,
    binary,
    compileCache: major >= 22,
    sandboxSpec(o) {
      if (!found) throw new ThawError('THAW_E_RUNTIME_UNKNOWN', `${name} needs Node ${major}, which is not installed on this node (npm's ${pkg} package: node_modules/${pkg}/bin/node)`);
      const proxy = startupProxy(major, o.env);
      return {
        id: o.id,
        command: binary,
        args: [
          `--max-old-space-size=${heapLimitMb(o.memoryMb)}`, '--disable-warning=ExperimentalWarning',
          ...(proxy ? ['--disable-warning=UNDICI-EHPA'] : []),
          ...(o.snapshotBlob ? ['--snapshot-blob', o.snapshotBlob] : [nodeBootstrapPath]),
        ],
        env: proxy ? { ...o.env, NODE_USE_ENV_PROXY: '1' } : o.env,
        cwd: o.cwd,
        memoryBytes: o.memoryMb * 1024 * 1024,
        tmpBytes: o.tmpMb * 1024 * 1024,
        readPaths: [...o.readPaths, binary, o.snapshotBlob ?? nodeBootstrapPath],
        binds: o.binds ?? [],
        ...(o.netns ? { netns: o.netns } : {}),
      };
    },
  };
}

/**
 * Node 22 has no http.setGlobalProxyFromEnv, which the bootstrap calls at the first use of the network on
 * Node 24: its fetch and http follow HTTP_PROXY only when NODE_USE_ENV_PROXY is set at process start, so it
 * is, for runtimes that have a proxy to follow (each start then loads undici and the HTTP agents). Node 20
 * has neither: see the README's Runtimes section for what that leaves.
 */
const startupProxy = (major: number, env: Record<string, string>) => major === 22 && env.HTTP_PROXY !== undefined;

const node20 = nodeKind('nodejs20.x', 20, 'node20');
const node22 = nodeKind('nodejs22.x', 22, 'node22');
const node24 = nodeKind('nodejs24.x', 24, 'node');

/** The platform's own Node (tests start sandboxes with it directly). */
export const nodeRuntime = node24;

/** The runtime each accepted name runs on; `nodejs24` is Thaw's first spelling of nodejs24.x, kept for versions that say it. */
export const runtimes: ReadonlyMap<Runtime, RuntimeKind> = new Map<Runtime, RuntimeKind>([
  ['nodejs20.x', node20], ['nodejs22.x', node22], ['nodejs24.x', node24], ['nodejs24', node24],
]);

/** The kind a version's runtime name runs on; throws the registry's error for a name this node cannot run. */
export function runtimeKind(name: string): RuntimeKind {
  const kind = runtimes.get(name as Runtime);
  if (!kind) throw new ThawError('THAW_E_RUNTIME_UNKNOWN', `runtime ${name} is not available on this node`);
  return kind;
}

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

/** Where a streaming handler's response goes as the handler writes it (protocol.ts: streamStart, chunk). */
export interface ResponseSink {
  /** Before the first chunk (or at the end of a stream with none): the stream's content type. */
  start(contentType: string): void;
  /** One chunk; `consumed` once it has left the host, which lets the runtime send as many bytes more. */
  write(chunk: Buffer, consumed: () => void): void;
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
  /** The code files the last init read, when it was asked to record them. */
  initFiles: string[] | null = null;
  #pending = new Map<string, PromiseWithResolvers<InvokeOutcome>>();
  /** The sinks of invocations in flight that may stream, and whether their stream has started. */
  #streams = new Map<string, { sink: ResponseSink; started: boolean }>();
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

  /** Runs one invocation; what a streaming handler writes goes to `sink` as it comes. */
  invoke(spec: InvokeSpec, sink?: ResponseSink): Promise<InvokeOutcome> {
    const p = Promise.withResolvers<InvokeOutcome>();
    if (this.#exit) {
      // The runtime is already gone: answer now rather than wait for an exit that has happened.
      p.resolve({ kind: 'crash', exit: this.#exit, error: null, stderrTail: this.#stderrTail });
      return p.promise;
    }
    this.#pending.set(spec.id, p);
    if (sink) this.#streams.set(spec.id, { sink, started: false });
    this.#send({ type: 'invoke', spec });
    return p.promise;
  }

  get inFlight(): number { return this.#pending.size; }

  /** Ends an invocation's response stream from the host's side: the handler's further writes fail with `error`. */
  abortStream(id: string, error: SerializedError): void {
    if (this.#streams.has(id)) this.#send({ type: 'streamAbort', id, error });
  }

  #send(m: HostMessage) { this.sandbox.channel.send(m); }

  /** The stream of an invocation in flight; anything else is a protocol violation (the caller throws it). */
  #stream(id: string) {
    const s = this.#streams.get(id);
    if (!s) throw new Error(`stream data for ${this.#pending.has(id) ? 'an invocation that cannot stream' : 'no invocation in flight'}`);
    return s;
  }

  #onMessage(m: RuntimeMessage) {
    switch (m.type) {
      case 'ready': this.isReady = true; this.restored = m.restored; this.#ready.resolve(); break;
      case 'freezeReady': this.#freeze?.resolve(m.heapUsedBytes); break;
      case 'pong': this.#pings.get(m.id)?.(true); this.#pings.delete(m.id); break;
      case 'initDone': this.initFiles = m.files ?? null; this.#init?.resolve(m.durationMs); break;
      case 'initError': this.#init?.reject(new InitFailure(m.error, m.durationMs)); break;
      case 'log': this.#hooks.onLog(m.invocationId, m.stream, m.text); break;
      case 'streamStart': {
        const s = this.#stream(m.id);
        if (s.started) throw new Error(`invocation ${m.id.slice(0, 40)}'s stream started twice`);
        s.started = true;
        s.sink.start(m.contentType);
        break;
      }
      case 'chunk': {
        const s = this.#stream(m.id);
        if (!s.started) throw new Error(`a chunk of invocation ${m.id.slice(0, 40)} before its stream started`);
        const chunk = Buffer.from(m.data, 'base64');
        let acked = false;
        s.sink.write(chunk, () => {
          if (acked) return;
          acked = true;
          if (this.#streams.get(m.id) === s) this.#send({ type: 'streamAck', id: m.id, bytes: chunk.length });
        });
        break;
      }
      case 'result': {
        const p = this.#pending.get(m.id);
        if (!p) break;
        this.#pending.delete(m.id);
        this.#streams.delete(m.id);
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
    this.#streams.clear();
  }
}

export { buildNodeSnapshot, SnapshotUnsupported, type SnapshotBuildSpec } from './node/snapshot.ts';
