// The egress proxy pair: two proxy processes (egress-proxy.ts), each on its own Unix socket in one directory
// that sandboxes see. Both hold every grant, so either can serve any instance: the runtime's relay uses the
// one that answers and moves to the other when it does not. A proxy that dies is restarted (with back-off)
// and given the grants again. Imports node built-ins and src/core.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { EgressPolicy } from './egress.ts';
import type { ProxyCommand, ProxyReport } from './egress-proxy.ts';

const SCRIPT = fileURLToPath(new URL('./egress-proxy.ts', import.meta.url));
const NAMES = ['a', 'b'] as const;
const socketName = (name: string) => `egress-${name}.sock`;

export interface EgressDenial { instanceId: string; label: string; target: string; reason: string }

interface Member {
  name: string;
  socket: string;
  child: ChildProcess | null;
  ready: boolean;
  restarts: number;
  failures: number;
  timer: TimerHandle | null;
}

export class EgressProxies {
  readonly dir: string;
  #clock: Clock;
  #members: Member[];
  #grants = new Map<string, { token: string; label: string; policy: EgressPolicy }>();
  #closed = false;
  #onDenied: (d: EgressDenial) => void;
  #onError: (m: string) => void;
  #byToken = new Map<string, string>();
  #subnets: string[] = [];
  /** Instances whose sockets the proxies listen on (from their sandbox's creation until they are gone). */
  #prepared = new Set<string>();
  denied = 0;

  constructor(o: { dir: string; clock: Clock; onDenied(d: EgressDenial): void; onError(m: string): void }) {
    this.dir = o.dir;
    this.#clock = o.clock;
    this.#onDenied = o.onDenied;
    this.#onError = o.onError;
    this.#members = NAMES.map((name) => ({ name, socket: socketName(name), child: null, ready: false, restarts: 0, failures: 0, timer: null }));
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** The sockets' names in an instance's directory, active first: what the relay inside connects to. */
  get sockets(): string[] { return this.#members.map((m) => m.socket); }

  /**
   * An instance's own directory, with a socket of each proxy in it, bound into its sandbox alone: a
   * connection on it is that instance's, whatever the function does with its token. Made now (the sandbox
   * binds it when it starts); the proxies listen in it as soon as they hear of it.
   */
  prepare(instanceId: string): string {
    const dir = join(this.dir, instanceId);
    // Passable by the sandbox's uid (the sockets are 0666); nobody else's sandbox sees it.
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    chmodSync(dir, 0o711);
    this.#prepared.add(instanceId);
    for (const m of this.#members) this.#send(m, { type: 'listen', instanceId, path: join(dir, m.socket) });
    return dir;
  }

  /** Starts both proxies and waits until at least one listens. Directories of a killed run go first. */
  async start(): Promise<void> {
    for (const d of readdirSync(this.dir)) if (!this.#prepared.has(d)) rmSync(join(this.dir, d), { recursive: true, force: true });
    const first = Promise.withResolvers<void>();
    for (const m of this.#members) this.#spawn(m, first.resolve);
    const timeout = this.#clock.setTimer(() => first.resolve(), 10_000);
    await first.promise;
    timeout.cancel();
  }

  #spawn(m: Member, onReady?: () => void) {
    if (this.#closed) return;
    const child = fork(SCRIPT, [m.name], {
      // A clean environment: the proxy needs no secrets and no proxy of its own.
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
      execArgv: ['--disable-warning=ExperimentalWarning'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    m.child = child;
    m.ready = false;
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (t: string) => { stderr = (stderr + t).slice(-1000); });
    child.on('message', (r: ProxyReport) => {
      if (r.type === 'ready') {
        m.ready = true;
        m.failures = 0;
        this.#send(m, { type: 'networks', subnets: this.#subnets });
        // Grants before sockets: a restarted proxy must know every grant before it takes a connection (the
        // relay's retry after the old one died may reach it at once), or it would deny a granted instance.
        for (const [instanceId, g] of this.#grants) this.#send(m, { type: 'grant', instanceId, ...g });
        for (const id of this.#prepared) this.#send(m, { type: 'listen', instanceId: id, path: join(this.dir, id, m.socket) });
        onReady?.();
      } else if (r.type === 'denied') {
        this.denied++;
        const instanceId = this.#byToken.get(r.token);
        const g = instanceId ? this.#grants.get(instanceId) : undefined;
        if (instanceId && g) this.#onDenied({ instanceId, label: g.label, target: r.target, reason: r.reason });
      }
    });
    child.on('error', () => { /* reported through exit */ });
    child.once('exit', (code, signal) => {
      m.child = null;
      m.ready = false;
      if (this.#closed) return;
      m.failures++;
      m.restarts++;
      this.#onError(`egress proxy ${m.name} exited (${signal ?? code})${stderr ? `: ${stderr.trim().split('\n').at(-1)}` : ''}; restarting it`);
      // Back-off: at once the first time, then doubling to 5 s for a proxy that keeps dying.
      const delay = m.failures <= 1 ? 0 : Math.min(5000, 100 * 2 ** (m.failures - 2));
      m.timer = this.#clock.setTimer(() => { m.timer = null; this.#spawn(m); }, delay);
    });
  }

  #send(m: Member, c: ProxyCommand) {
    if (m.child?.connected) m.child.send(c, (err) => { if (err) { /* it died; the restart re-sends */ } });
  }

  /** Lets an instance's connections out under a policy; returns the token its relay presents. */
  grant(instanceId: string, label: string, policy: EgressPolicy): string {
    const token = randomBytes(18).toString('base64url');
    const old = this.#grants.get(instanceId);
    if (old) this.#byToken.delete(old.token);
    this.#grants.set(instanceId, { token, label, policy });
    this.#byToken.set(token, instanceId);
    for (const m of this.#members) this.#send(m, { type: 'grant', instanceId, token, label, policy });
    return token;
  }

  /** The subnets of Thaw's private networks, which the proxies never connect into. */
  setNetworks(subnets: string[]): void {
    this.#subnets = subnets;
    for (const m of this.#members) this.#send(m, { type: 'networks', subnets });
  }

  /** The instance is gone: its grant, its sockets and its directory go. */
  revoke(instanceId: string): void {
    const g = this.#grants.get(instanceId);
    if (!g && !this.#prepared.has(instanceId)) return;
    this.#grants.delete(instanceId);
    if (g) this.#byToken.delete(g.token);
    this.#prepared.delete(instanceId);
    for (const m of this.#members) this.#send(m, { type: 'revoke', instanceId });
    rmSync(join(this.dir, instanceId), { recursive: true, force: true });
  }

  view() {
    return {
      proxies: this.#members.map((m) => ({ name: m.name, pid: m.child?.pid ?? null, ready: m.ready, restarts: m.restarts })),
      grants: this.#grants.size,
      sockets: this.#prepared.size,
      denied: this.denied,
    };
  }

  /** The pids of the proxies (for tests that kill one). */
  pids(): (number | null)[] { return this.#members.map((m) => (m.ready ? m.child?.pid ?? null : null)); }

  async close(): Promise<void> {
    this.#closed = true;
    const exits: Promise<unknown>[] = [];
    for (const m of this.#members) {
      m.timer?.cancel();
      const c = m.child;
      if (c && c.exitCode === null && c.signalCode === null) {
        exits.push(new Promise((r) => c.once('exit', r)));
        c.kill('SIGKILL');
      }
    }
    await Promise.all(exits);
  }
}
