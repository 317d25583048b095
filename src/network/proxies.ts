// The egress proxy pair: two proxy processes (egress-proxy.ts), each on its own Unix socket in one directory
// that sandboxes see. Both hold every grant, so either can serve any instance: the runtime's relay uses the
// one that answers and moves to the other when it does not. A proxy that dies is restarted (with back-off)
// and given the grants again. Imports node built-ins and src/core.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { EgressPolicy } from './egress.ts';
import type { ProxyCommand, ProxyReport } from './egress-proxy.ts';

const SCRIPT = fileURLToPath(new URL('./egress-proxy.ts', import.meta.url));
const NAMES = ['a', 'b'] as const;

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
  denied = 0;

  constructor(o: { dir: string; clock: Clock; onDenied(d: EgressDenial): void; onError(m: string): void }) {
    this.dir = o.dir;
    this.#clock = o.clock;
    this.#onDenied = o.onDenied;
    this.#onError = o.onError;
    this.#members = NAMES.map((name) => ({ name, socket: join(o.dir, `egress-${name}.sock`), child: null, ready: false, restarts: 0, failures: 0, timer: null }));
    // Passable by every sandbox uid (the sockets themselves are 0666); made now: sandboxes bind it, and the runtime pool may start one before the proxies are up.
    mkdirSync(this.dir, { recursive: true, mode: 0o711 });
    chmodSync(this.dir, 0o711);
  }

  /** The socket paths, active first: what the relay inside a sandbox connects to. */
  get sockets(): string[] { return this.#members.map((m) => m.socket); }

  /** Starts both proxies and waits until at least one listens. */
  async start(): Promise<void> {
    const first = Promise.withResolvers<void>();
    for (const m of this.#members) this.#spawn(m, first.resolve);
    const timeout = this.#clock.setTimer(() => first.resolve(), 10_000);
    await first.promise;
    timeout.cancel();
  }

  #spawn(m: Member, onReady?: () => void) {
    if (this.#closed) return;
    const child = fork(SCRIPT, [m.socket], {
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
        for (const g of this.#grants.values()) this.#send(m, { type: 'grant', ...g });
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
    this.revoke(instanceId);
    this.#grants.set(instanceId, { token, label, policy });
    this.#byToken.set(token, instanceId);
    for (const m of this.#members) this.#send(m, { type: 'grant', token, label, policy });
    return token;
  }

  /** The subnets of Thaw's private networks, which the proxies never connect into. */
  setNetworks(subnets: string[]): void {
    this.#subnets = subnets;
    for (const m of this.#members) this.#send(m, { type: 'networks', subnets });
  }

  revoke(instanceId: string): void {
    const g = this.#grants.get(instanceId);
    if (!g) return;
    this.#grants.delete(instanceId);
    this.#byToken.delete(g.token);
    for (const m of this.#members) this.#send(m, { type: 'revoke', token: g.token });
  }

  view() {
    return {
      proxies: this.#members.map((m) => ({ name: m.name, socket: m.socket, pid: m.child?.pid ?? null, ready: m.ready, restarts: m.restarts })),
      grants: this.#grants.size,
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
