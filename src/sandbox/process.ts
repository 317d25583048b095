// The process driver: one child process per instance in its own process group, no root needed.
// Isolation is what a process gives (no namespaces); the environment is explicit and complete.
// Imports node built-ins and src/core only.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ThawError } from '../core/errors.ts';
import { childChannel } from './channel.ts';
import type { CodeView, Sandbox, SandboxChannel, SandboxDriver, SandboxExit, SandboxSpec } from './types.ts';

/** util-linux's setpriv (Essential on Debian), when this host has it. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? null;

class ProcessSandbox implements Sandbox {
  readonly id: string;
  readonly pid: number;
  readonly channel: SandboxChannel;
  readonly exited: Promise<SandboxExit>;
  #child: ChildProcess;
  #killReason: string | null = null;
  #exited = false;

  constructor(id: string, child: ChildProcess) {
    this.id = id;
    this.#child = child;
    this.pid = child.pid!;
    this.channel = childChannel(child, (why) => this.kill(`protocol violation: ${why}`));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exited = true;
        // Take down anything the function started in its group too.
        this.#signalGroup('SIGKILL');
        resolve({ code, signal, killReason: this.#killReason, oomKilled: false });
      });
    });
  }

  get stdout() { return this.#child.stdout!; }
  get stderr() { return this.#child.stderr!; }
  get hasExited() { return this.#exited; }

  kill(reason: string): void {
    if (this.#exited) return;
    this.#killReason ??= reason;
    this.#signalGroup('SIGKILL');
  }

  // SIGSTOP cannot be caught or ignored, and stops every process in the group; SIGCONT resumes them.
  // Resolves once the kernel has acted on it: until then the process may still run.
  async freeze(): Promise<void> {
    if (this.#exited) return;
    this.#signalGroup('SIGSTOP');
    for (let i = 0; i < 200; i++) {
      const state = this.#procState();
      if (state === null || state === 'T' || state === 't' || state === 'Z' || state === 'X') return;
      await sleep(i < 20 ? 0 : 1);
    }
  }
  async thaw(): Promise<boolean> {
    // Killed while frozen: dead, even while /proc still shows it on its way out.
    if (this.#exited || this.#killReason !== null) return false;
    this.#signalGroup('SIGCONT');
    // Until the kernel has acted on SIGCONT (or on a SIGKILL sent while stopped) the process may still show
    // as stopped; wait for it to run, or to be a zombie: a process killed while frozen is dead too.
    for (let i = 0; i < 200; i++) {
      const state = this.#procState();
      if (state === null || state === 'Z' || state === 'X' || state === 'x') return false;
      if (state !== 'T' && state !== 't') return this.#killReason === null;
      await sleep(1);
    }
    return !this.#exited && this.#killReason === null;
  }

  #procState(): string | null {
    try {
      return /^\d+ \(.*\) (\S) /s.exec(readFileSync(`/proc/${this.pid}/stat`, 'utf8'))?.[1] ?? null;
    } catch {
      return null;
    }
  }

  /** No memory cgroup of its own to reclaim: the paged tier needs a confining driver. */
  async pageOut(): Promise<null> { return null; }

  rssBytes(): number | null { return this.#status('VmRSS'); }
  peakMemoryBytes(): number | null { return this.#status('VmHWM'); }

  #status(field: string): number | null {
    try {
      const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : null;
    } catch {
      return null;
    }
  }

  /** Nothing to attach: the runtime reads the code where it lies on the host. */
  async attachCode(view: CodeView): Promise<CodeView> { return view; }

  #signalGroup(signal: NodeJS.Signals) {
    try { process.kill(-this.pid, signal); } catch { /* group already gone */ }
  }

  async [Symbol.asyncDispose]() {
    this.kill('disposed');
    await this.exited;
  }
}

export const processDriver: SandboxDriver = {
  name: 'process',
  insideView: (view) => view,
  async start() {},
  async close() {},
  report: () => ({
    driver: 'process',
    isolated: false,
    enforced: ['explicit environment', 'own process group (killed as one)', 'V8 heap limit from MemorySize'],
    leftoversRemoved: 0,
    notEnforced: ['instances run as the platform\'s user and see the host\'s files and processes', 'no memory limit outside the V8 heap', 'no process-count limit', 'no private /tmp'],
  }),
  create(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new ThawError('THAW_E_ABORTED', 'the instance start was cancelled'));
      // Through setpriv --pdeathsig: an instance dies with the server that started it even when it cannot
      // notice (a frozen one is SIGSTOPped and never reads its closed channel); setpriv execs, so the pid
      // and its group are the instance's own.
      const [command, args] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', spec.command, ...spec.args]] : [spec.command, spec.args];
      const child = spawn(command, args, {
        cwd: spec.cwd,
        env: { ...spec.env },
        stdio: spec.channel === false ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', 'pipe'],
        detached: true,
      });
      const onError = (err: Error) => reject(new ThawError('THAW_E_SANDBOX_START_FAILED', `could not start ${spec.command}: ${err.message}`, { cause: err }));
      child.once('error', onError);
      child.once('spawn', () => {
        child.off('error', onError);
        child.on('error', () => { /* reported through exit */ });
        resolve(new ProcessSandbox(spec.id, child));
      });
    });
  },
};
