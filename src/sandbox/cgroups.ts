// cgroups for confined instances: finds where each controller lives (cgroup v2, v1, or a hybrid of both as
// on this machine), makes one group per instance with its limits (memory = MemorySize for the whole
// instance, pids, CPU weight proportional to memory), freezes, kills and measures it, and removes the
// leftovers of an earlier run. Imports node built-ins and the sandbox's types.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PageOut } from './types.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export type Controller = 'memory' | 'pids' | 'cpu' | 'freezer';

/** Where the machine's cgroup hierarchies are mounted. */
export interface CgroupLayout {
  /** The cgroup2 mount, if any: its core files give freeze and kill even with no controllers enabled. */
  readonly v2: string | null;
  readonly v2Controllers: ReadonlySet<string>;
  /** v1 hierarchies by controller. */
  readonly v1: Readonly<Partial<Record<Controller, string>>>;
}

/** How each limit is enforced on this host: 'v2', 'v1', or null when it is not. */
export type Enforcement = Readonly<Record<Controller, 'v2' | 'v1' | null>>;

/** Lambda allows 1,024 processes and threads per execution environment; Node itself uses about a dozen. */
export const PIDS_MAX = 1024;
/** Lambda gives one vCPU at 1,769 MB; the weight is proportional to memory. */
const MB_PER_VCPU = 1769;

export function detectCgroups(mountinfo?: string): CgroupLayout {
  let text = mountinfo;
  if (text === undefined) {
    try { text = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { text = ''; }
  }
  let v2: string | null = null;
  const v1: Partial<Record<Controller, string>> = {};
  for (const line of text.split('\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const mountPoint = pre.split(' ')[4]?.replace(/\\040/g, ' ');
    const [fstype, , superOptions = ''] = post.split(' ');
    if (fstype === 'cgroup2' && v2 === null) v2 = mountPoint;
    if (fstype === 'cgroup') {
      for (const opt of superOptions.split(',')) {
        if ((opt === 'memory' || opt === 'pids' || opt === 'cpu' || opt === 'freezer') && !v1[opt]) v1[opt] = mountPoint;
      }
    }
  }
  let v2Controllers = new Set<string>();
  if (v2) {
    try { v2Controllers = new Set(readFileSync(join(v2, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean)); } catch { /* unreadable: none */ }
  }
  return { v2, v2Controllers, v1 };
}

/** A controller is used from v2 where v2 offers it; the freezer is a core v2 feature (cgroup.freeze). */
export function enforcement(layout: CgroupLayout): Enforcement {
  const pick = (c: Controller) => (layout.v2 && (c === 'freezer' || layout.v2Controllers.has(c)) ? 'v2' : layout.v1[c] ? 'v1' : null);
  return { memory: pick('memory'), pids: pick('pids'), cpu: pick('cpu'), freezer: pick('freezer') };
}

export interface CgroupLimits {
  memoryBytes: number;
  pidsMax: number;
}

const write = (file: string, value: string) => writeFileSync(file, value);
const readOr = (file: string, fallback = '') => { try { return readFileSync(file, 'utf8'); } catch { return fallback; } };
const statField = (text: string, key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);

/** The groups of one scope (one Thaw server): `thaw-<tag>` under each hierarchy in use. */
export class CgroupScope {
  readonly layout: CgroupLayout;
  readonly enforced: Enforcement;
  readonly name: string;
  /** The directories that hold this scope's instance groups, one per hierarchy in use. */
  readonly roots: readonly string[];

  constructor(layout: CgroupLayout, name: string) {
    this.layout = layout;
    this.enforced = enforcement(layout);
    this.name = name;
    const roots = new Set<string>();
    if (layout.v2) roots.add(join(layout.v2, name));
    for (const c of ['memory', 'pids', 'cpu', 'freezer'] as const) if (this.enforced[c] === 'v1') roots.add(join(layout.v1[c]!, name));
    this.roots = [...roots];
  }

  /** Creates the scope's groups and lets v2 controllers reach the instance groups. */
  prepare(): void {
    for (const root of this.roots) mkdirSync(root, { recursive: true });
    const { v2 } = this.layout;
    if (!v2) return;
    const wanted = (['memory', 'pids', 'cpu'] as const).filter((c) => this.enforced[c] === 'v2').map((c) => `+${c}`).join(' ');
    if (!wanted) return;
    // A v2 controller reaches a group only when every ancestor lists it in cgroup.subtree_control.
    write(join(v2, 'cgroup.subtree_control'), wanted);
    write(join(v2, this.name, 'cgroup.subtree_control'), wanted);
  }

  /** Removes the scope's own groups once its instances' are gone (best effort: a busy one stays). */
  removeRoots(): void {
    for (const root of this.roots) { try { rmdirSync(root); } catch { /* not empty, or gone */ } }
  }

  /** One group per instance, with its limits already set, before any process joins it. */
  create(id: string, limits: CgroupLimits): InstanceCgroup {
    const g = new InstanceCgroup(this, id);
    try {
      g.create(limits);
    } catch (err) {
      g.removeSync();
      throw err;
    }
    return g;
  }

  /** Kills and removes every group of this scope: what a previous run that was killed left behind. */
  async sweep(): Promise<number> {
    const ids = new Set<string>();
    for (const root of this.roots) {
      if (!existsSync(root)) continue;
      for (const e of readdirSync(root, { withFileTypes: true })) if (e.isDirectory()) ids.add(e.name);
    }
    for (const id of ids) {
      const g = new InstanceCgroup(this, id);
      g.killAll();
      await g.remove();
    }
    return ids.size;
  }
}

export class InstanceCgroup {
  readonly #scope: CgroupScope;
  readonly id: string;
  /** cgroup.procs of every hierarchy: a process written to each is wholly inside the group. */
  readonly procsFiles: string[];
  readonly #dirs: string[];
  #frozen = false;

  constructor(scope: CgroupScope, id: string) {
    this.#scope = scope;
    this.id = id;
    this.#dirs = scope.roots.map((r) => join(r, id));
    this.procsFiles = this.#dirs.map((d) => join(d, 'cgroup.procs'));
  }

  #dir(c: Controller): string | null {
    const how = this.#scope.enforced[c];
    const { layout } = this.#scope;
    if (how === 'v2') return join(layout.v2!, this.#scope.name, this.id);
    if (how === 'v1') return join(layout.v1[c]!, this.#scope.name, this.id);
    return null;
  }

  create(limits: CgroupLimits): void {
    for (const d of this.#dirs) mkdirSync(d);
    const { enforced } = this.#scope;
    const mem = this.#dir('memory');
    if (mem && enforced.memory === 'v2') {
      write(join(mem, 'memory.max'), String(limits.memoryBytes));
      // The whole instance is one unit: an OOM kill ends all of it, not one process at random.
      write(join(mem, 'memory.oom.group'), '1');
      if (existsSync(join(mem, 'memory.swap.max'))) write(join(mem, 'memory.swap.max'), '0');
    } else if (mem) {
      write(join(mem, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // memory+swap as well, where the kernel accounts swap: MemorySize is all the instance gets.
      if (existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) write(join(mem, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
    }
    const pids = this.#dir('pids');
    if (pids) write(join(pids, 'pids.max'), String(limits.pidsMax));
    const cpu = this.#dir('cpu');
    const share = limits.memoryBytes / (MB_PER_VCPU * 1024 * 1024);
    if (cpu && enforced.cpu === 'v2') write(join(cpu, 'cpu.weight'), String(Math.min(10_000, Math.max(1, Math.round(100 * share)))));
    else if (cpu) write(join(cpu, 'cpu.shares'), String(Math.max(2, Math.round(1024 * share))));
  }

  /** Pids of every process in the group now. */
  pids(): number[] {
    const seen = new Set<number>();
    for (const f of this.procsFiles) for (const p of readOr(f).split('\n')) if (p) seen.add(Number(p));
    return [...seen];
  }

  /** Stops every process of the group, including ones the function forked (SIGSTOP cannot reach those reliably). */
  freeze(): Promise<void> { return this.#setFrozen(true); }

  thaw(): Promise<void> { return this.#setFrozen(false); }

  /** Asks the freezer for the state and waits until the kernel has reached it (v2 cgroup.freeze or v1 freezer.state). */
  async #setFrozen(on: boolean): Promise<void> {
    const dir = this.#dir('freezer');
    this.#frozen = on;
    // No freezer on this host: signal every process the group's other hierarchies list.
    if (!dir) { this.#signalAll(on ? 'SIGSTOP' : 'SIGCONT'); return; }
    if (this.#scope.enforced.freezer === 'v2') {
      write(join(dir, 'cgroup.freeze'), on ? '1' : '0');
      // A group that is gone reads as thawed.
      await this.#until(() => new RegExp(`^frozen ${on ? 1 : 0}$`, 'm').test(readOr(join(dir, 'cgroup.events'), 'frozen 0')));
    } else {
      const state = on ? 'FROZEN' : 'THAWED';
      write(join(dir, 'freezer.state'), state);
      await this.#until(() => readOr(join(dir, 'freezer.state'), 'THAWED').trim() === state);
    }
  }

  get frozen() { return this.#frozen; }

  #signalAll(signal: NodeJS.Signals) {
    for (const pid of this.pids()) { try { process.kill(pid, signal); } catch { /* gone */ } }
  }

  /** Polls a cgroup state file until the kernel has finished the transition (bounded; it takes µs to ms). */
  async #until(done: () => boolean): Promise<void> {
    for (let i = 0; i < 2000 && !done(); i++) await sleep(i < 20 ? 0 : 1);
  }

  /** SIGKILL to every process of the group, frozen ones included. */
  killAll(): void {
    const { layout, enforced } = this.#scope;
    if (layout.v2) {
      try { write(join(layout.v2, this.#scope.name, this.id, 'cgroup.kill'), '1'); } catch { /* older kernel: signals below */ }
    }
    for (const pid of this.pids()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    // A v1-frozen process cannot act on SIGKILL until it is thawed.
    const dir = this.#dir('freezer');
    if (dir && enforced.freezer === 'v1') {
      try { write(join(dir, 'freezer.state'), 'THAWED'); } catch { /* group gone */ }
    }
  }

  /** The peak of everything charged, in bytes: one small file (memory() reads memory.stat as well). */
  peakMemoryBytes(): number | null {
    const dir = this.#dir('memory');
    if (!dir) return null;
    const peak = Number(readOr(join(dir, this.#scope.enforced.memory === 'v2' ? 'memory.peak' : 'memory.max_usage_in_bytes'), 'NaN'));
    return Number.isFinite(peak) ? peak : null;
  }

  /**
   * Reclaims the group's memory into swap (the paged tier): on cgroup v2 through memory.reclaim (swap
   * allowed for the moment it takes), on v1 by lowering the group's limit step by step and restoring it.
   * The pages come back on demand when the processes touch them. Runs off the event loop (the kernel
   * compresses in the writing thread). Null when the group has no memory controller.
   */
  async pageOut(): Promise<PageOut | null> {
    const dir = this.#dir('memory');
    if (!dir) return null;
    const beforeBytes = this.swap()?.residentBytes ?? 0;
    if (this.#scope.enforced.memory === 'v2') {
      const current = Number(readOr(join(dir, 'memory.current'), '0'));
      const swapMax = join(dir, 'memory.swap.max');
      const hadSwapMax = existsSync(swapMax);
      if (hadSwapMax) await writeFile(swapMax, 'max');
      try { await writeFile(join(dir, 'memory.reclaim'), String(current)); } catch { /* EAGAIN: reclaimed what it could */ } finally {
        if (hadSwapMax) await writeFile(swapMax, '0').catch(() => {});
      }
    } else {
      const limitFile = join(dir, 'memory.limit_in_bytes');
      const limit = readOr(limitFile).trim();
      const usage = Number(readOr(join(dir, 'memory.usage_in_bytes'), '0'));
      try {
        // The lowest limit the kernel can reach by reclaiming (EBUSY when it cannot): a few MB stay.
        for (const target of [2 << 20, 8 << 20, usage / 4, usage / 2]) {
          try { await writeFile(limitFile, String(Math.floor(target))); break; } catch { /* try a higher one */ }
        }
      } finally {
        await writeFile(limitFile, limit);
      }
    }
    const after = this.swap();
    return after && { beforeBytes, ...after };
  }

  /** Resident (anonymous, without page cache) and swapped-out bytes of the group now. */
  swap(): { residentBytes: number; swappedBytes: number } | null {
    const dir = this.#dir('memory');
    if (!dir) return null;
    const stat = readOr(join(dir, 'memory.stat'));
    if (this.#scope.enforced.memory === 'v2') return { residentBytes: statField(stat, 'anon'), swappedBytes: Number(readOr(join(dir, 'memory.swap.current'), '0')) };
    return { residentBytes: statField(stat, 'total_rss'), swappedBytes: statField(stat, 'total_swap') };
  }

  /** How many times the kernel's OOM killer acted in this group (its memory limit was hit). */
  oomKills(): number {
    const dir = this.#dir('memory');
    if (!dir) return 0;
    const file = this.#scope.enforced.memory === 'v2' ? 'memory.events' : 'memory.oom_control';
    return statField(readOr(join(dir, file)), 'oom_kill') || 0;
  }

  /** Removes the group once it is empty; waits briefly for the kernel to let go of exiting processes. */
  async remove(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (this.removeSync()) return;
      if (i % 20 === 19) this.killAll();
      await sleep(5);
    }
  }

  /** Tries once; true when every directory of the group is gone. */
  removeSync(): boolean {
    let all = true;
    for (const d of [...this.#dirs].reverse()) {
      try { rmdirSync(d); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') all = false; }
    }
    return all;
  }
}
