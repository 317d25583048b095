// The memory driver: each unit is an in-process "program" the caller supplies, so the agent can be tested on
// a ManualClock without processes. Messages cross on microtasks (never synchronously, as over IPC), a frozen
// unit holds them in both directions until thawed, and the driver sets no timers of its own: what happens is
// decided by the program and the caller's clock alone. Isolates nothing. Imports node built-ins and src/core.
import { PassThrough, type Writable } from 'node:stream';
import { ThawError } from '../core/errors.ts';
import type { CodeView, PageOut, Sandbox, SandboxChannel, SandboxDriver, SandboxExit, SandboxReport, SandboxSpec } from './types.ts';

/** What a program sees of its unit: the spec it was started with, the channel's far end, its output, its end. */
export interface MemoryUnit {
  readonly spec: SandboxSpec;
  /** The fake pid the host sees. */
  readonly pid: number;
  /** To the host; dropped once the unit has ended, held while it is frozen. */
  send(message: unknown): void;
  /** From the host, in the order sent. */
  onMessage(listener: (message: unknown) => void): void;
  /** Ends the unit by itself (killReason null): with an exit code, or as if killed by a signal. */
  exit(code: number | null, signal?: NodeJS.Signals | null): void;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** The code attached so far (spec.code, or what attachCode was given), as the program sees it. */
  readonly code: CodeView | null;
  readonly frozen: boolean;
  readonly hasExited: boolean;
  readonly exited: Promise<SandboxExit>;
  /** Sets the memory the unit reports (rssBytes, and peakMemoryBytes as its maximum); null until set. */
  setMemory(rssBytes: number): void;
}

export type MemoryProgram = (unit: MemoryUnit) => void;

/**
 * Above Linux's largest pid_max (2^22): a fake pid is never a real process, so a stray process.kill() on
 * one fails with ESRCH instead of signalling something on the host.
 */
const FIRST_PID = 10_000_000;

type Side = 'host' | 'unit';

class MemorySandbox implements Sandbox, MemoryUnit {
  readonly id: string;
  readonly pid: number;
  readonly spec: SandboxSpec;
  readonly channel: SandboxChannel;
  readonly exited: Promise<SandboxExit>;
  readonly #out = new PassThrough();
  readonly #err = new PassThrough();
  readonly #resolveExit: (exit: SandboxExit) => void;
  readonly #listeners: Record<Side, ((message: unknown) => void)[]> = { host: [], unit: [] };
  /**
   * Messages that arrived before that side listened (a program's `ready` is sent while create() runs), and
   * any arriving after them until they are handed over: order is kept.
   */
  readonly #unheard: Record<Side, unknown[]> = { host: [], unit: [] };
  readonly #handingOver: Record<Side, boolean> = { host: false, unit: false };
  /** Messages that arrived while frozen, in the order sent, with the side they are for. */
  #held: { to: Side; message: unknown }[] = [];
  #frozen = false;
  #ended = false;
  #code: CodeView | null;
  #rss: number | null = null;
  #peak: number | null = null;
  #swapped = 0;

  constructor(spec: SandboxSpec, pid: number) {
    this.id = spec.id;
    this.spec = spec;
    this.pid = pid;
    this.#code = spec.code ?? null;
    const { promise, resolve } = Promise.withResolvers<SandboxExit>();
    this.exited = promise;
    this.#resolveExit = resolve;
    this.channel = {
      send: (m) => this.#post('unit', m),
      onMessage: (l) => { this.#listen('host', l); },
    };
  }

  // The host's side (Sandbox).
  get stdout() { return this.#out; }
  get stderr() { return this.#err; }
  get hasExited() { return this.#ended; }
  get frozen() { return this.#frozen; }
  get code() { return this.#code; }

  kill(reason: string): void {
    if (this.#ended) return;
    this.#end({ code: null, signal: 'SIGKILL', killReason: reason, oomKilled: false });
  }

  async freeze(): Promise<void> {
    if (!this.#ended) this.#frozen = true;
  }

  async thaw(): Promise<boolean> {
    if (this.#ended) return false;
    this.#frozen = false;
    const held = this.#held;
    this.#held = [];
    for (const h of held) queueMicrotask(() => this.#arrive(h.to, h.message));
    return true;
  }

  /** A frozen unit's memory "goes to swap": what stays resident drops to at most 1 MB. */
  async pageOut(): Promise<PageOut | null> {
    if (this.#ended || !this.#frozen || this.#rss === null) return null;
    const before = this.#rss;
    const resident = Math.min(before, 1 << 20);
    this.#swapped += before - resident;
    this.#rss = resident;
    return { beforeBytes: before, residentBytes: resident, swappedBytes: this.#swapped };
  }

  rssBytes(): number | null { return this.#ended ? null : this.#rss; }
  peakMemoryBytes(): number | null { return this.#peak; }

  /** The program runs in this process: the code is read where it lies on the host. */
  async attachCode(view: CodeView): Promise<CodeView> {
    if (this.#ended) throw new ThawError('THAW_E_SANDBOX_START_FAILED', `sandbox ${this.id} is gone`);
    this.#code = view;
    return view;
  }

  async [Symbol.asyncDispose]() {
    this.kill('disposed');
    await this.exited;
  }

  // The program's side (MemoryUnit).
  send(message: unknown): void { this.#post('host', message); }
  onMessage(listener: (message: unknown) => void): void { this.#listen('unit', listener); }

  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.#ended) return;
    this.#end({ code: signal ? null : code, signal, killReason: null, oomKilled: false });
  }

  setMemory(rssBytes: number): void {
    this.#rss = rssBytes;
    this.#peak = Math.max(this.#peak ?? 0, rssBytes);
  }

  /** A message arrives on a later microtask, as one over IPC would; never once the unit has ended. */
  #post(to: Side, message: unknown): boolean {
    if (this.#ended) return false;
    queueMicrotask(() => this.#arrive(to, message));
    return true;
  }

  #arrive(to: Side, message: unknown) {
    if (this.#ended) return;
    // Frozen between sending and arriving: the message waits with the rest.
    if (this.#frozen) this.#held.push({ to, message });
    else if (this.#listeners[to].length === 0 || this.#handingOver[to]) this.#unheard[to].push(message);
    else for (const l of this.#listeners[to]) l(message);
  }

  #listen(side: Side, listener: (message: unknown) => void) {
    this.#listeners[side].push(listener);
    if (this.#unheard[side].length === 0 || this.#handingOver[side]) return;
    this.#handingOver[side] = true;
    queueMicrotask(() => {
      this.#handingOver[side] = false;
      for (const m of this.#unheard[side].splice(0)) this.#arrive(side, m);
    });
  }

  #end(exit: SandboxExit) {
    this.#ended = true;
    this.#frozen = false;
    this.#held = [];
    this.#out.end();
    this.#err.end();
    this.#resolveExit(exit);
  }
}

/** A driver whose every unit runs `program` in this process. */
export function memoryDriver(program: MemoryProgram): SandboxDriver {
  let nextPid = FIRST_PID;
  return {
    name: 'memory',
    insideView: (view) => view,
    async start() {},
    async close() {},
    report: (): SandboxReport => ({
      driver: 'memory',
      isolated: false,
      enforced: ['explicit environment (the program is handed spec.env)'],
      notEnforced: ['nothing is isolated: each unit is a program running inside the platform\'s own process (a test double)'],
      leftoversRemoved: 0,
    }),
    async create(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
      if (signal?.aborted) throw new ThawError('THAW_E_ABORTED', 'the instance start was cancelled');
      const unit = new MemorySandbox(spec, nextPid++);
      try {
        program(unit);
      } catch (err) {
        unit.kill('program threw');
        throw new ThawError('THAW_E_SANDBOX_START_FAILED', `the program of ${spec.id} failed to start: ${(err as Error).message}`, { cause: err });
      }
      return unit;
    },
  };
}
