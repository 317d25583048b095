// The namespaces driver: every instance in a bubblewrap sandbox (own mount, PID, IPC and UTS namespaces)
// with a read-only minimal root, its code at /var/task, a private size-limited /tmp, an unprivileged uid of
// its own with no capabilities and no_new_privs, and a cgroup with memory, pids and CPU limits that is
// also how it is frozen and killed. Code is bound into a started sandbox through a shared mount point, so
// pooled sandboxes are specialized without a restart. Needs root. Imports node built-ins and src/core.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, chmodSync, chownSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { constants as osConstants } from 'node:os';
import { ThawError } from '../core/errors.ts';
import { mountsUnder } from '../core/mounts.ts';
import { CgroupScope, PIDS_MAX, detectCgroups, type CgroupLayout, type InstanceCgroup } from './cgroups.ts';
import { childChannel } from './channel.ts';
import { Mounter } from './mounter.ts';
import { seccompFilter } from './seccomp.ts';
import { swapDevices } from './swap.ts';
import type { CodeView, PageOut, Sandbox, SandboxChannel, SandboxDriver, SandboxExit, SandboxReport, SandboxSpec } from './types.ts';

export interface NamespacesOptions {
  /** Per-instance slot directories (tmpfs); made a shared mount point so code bound later reaches sandboxes. */
  runDir: string;
  /**
   * Where the versions' V8 compile caches live (one subdirectory each): a tmpfs of compileCacheBytes is
   * mounted there, so what instances write into their (writable) compile cache is bounded as a whole.
   */
  compileRoot: string;
  compileCacheBytes?: number;
  /** Names this server's cgroups (`thaw-<tag>`): servers on one host never touch each other's instances. */
  scopeTag: string;
  /** Instance n runs as uid uidBase + n; all share gid `gid` (which owns the writable compile caches). */
  uidBase?: number;
  gid?: number;
  bwrap?: string;
  perl?: string;
  layout?: CgroupLayout;
}

const BWRAP = '/usr/bin/bwrap';
/** All compile caches of a node together; a function that fills its own only costs others their cache. */
const COMPILE_CACHE_BYTES = 256 * 1024 * 1024;
/** The fd bwrap reads the seccomp filter from (0-2 stdio, 3 the IPC channel). */
const SECCOMP_FD = 4;
const SETPRIV = '/usr/bin/setpriv';
const NSENTER = '/usr/bin/nsenter';
const PERL = '/usr/bin/perl';
/** Where the code and the compile cache appear inside, as on Lambda. */
const TASK = '/var/task';
/** Where the function's layers appear, as on Lambda. */
const OPT = '/opt';
const COMPILE_CACHE = '/var/thaw/compile-cache';
/** Host files a runtime needs from /etc; nothing else of the host's /etc is visible. */
const ETC = ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/ssl', '/etc/ca-certificates', '/etc/localtime'];
/** Joins the cgroups as root (each cgroup.procs given before `--`), then becomes bwrap. */
const JOIN_AND_EXEC = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';

/** Whether this host can run the namespaces driver, and if not, why and what to do. */
export function probeNamespaces(bwrap = BWRAP): { ok: true } | { ok: false; reason: string; fix: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'namespaces are a Linux feature', fix: 'run Thaw on Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the namespaces driver needs root (it binds code into sandboxes, sets cgroup limits and switches to per-instance uids); rootless namespaces are not supported yet', fix: 'run `thaw up` as root' };
  for (const [tool, pkg] of [[bwrap, 'bubblewrap'], [SETPRIV, 'util-linux'], [PERL, 'perl-base']] as const) {
    try { accessSync(tool, constants.X_OK); } catch { return { ok: false, reason: `${tool} is missing`, fix: `apt-get install ${pkg}` }; }
  }
  const r = spawnSync(bwrap, ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--symlink', 'usr/bin', '/bin', '--proc', '/proc', '--dev', '/dev', '/usr/bin/true'], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) return { ok: false, reason: `bubblewrap cannot create namespaces here: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`, fix: 'allow namespaces for root (in a container: run it privileged or with CAP_SYS_ADMIN)' };
  return { ok: true };
}

/** The cgroup scope tag of a cache dir: one per server. */
export const scopeTagFor = (dir: string) => createHash('sha256').update(dir).digest('hex').slice(0, 10);

class NamespaceSandbox implements Sandbox {
  readonly id: string;
  readonly channel: SandboxChannel;
  readonly exited: Promise<SandboxExit>;
  /** bwrap's outer process, our child: its process group is what we spawned. */
  readonly #rootPid: number;
  #runtimePid: number | null = null;
  readonly #child: ChildProcess;
  readonly #cgroup: InstanceCgroup;
  readonly #slot: string;
  readonly #driver: NamespacesDriver;
  #killReason: string | null = null;
  #exited = false;
  #attached: CodeView | null = null;
  #mounted: string[] = [];

  constructor(id: string, child: ChildProcess, cgroup: InstanceCgroup, slot: string, driver: NamespacesDriver, release: () => void) {
    this.id = id;
    this.#child = child;
    this.#cgroup = cgroup;
    this.#slot = slot;
    this.#driver = driver;
    this.#rootPid = child.pid!;
    this.channel = childChannel(child, (why) => this.kill(`protocol violation: ${why}`));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exited = true;
        // bwrap reports a command killed by signal N as status 128 + N.
        const bySignal = code !== null && code > 128 && code < 128 + 65 ? signalName(code - 128) : null;
        void (async () => {
          // Everything the function started goes with it, whichever process died first.
          cgroup.killAll();
          const oomKilled = cgroup.oomKills() > 0;
          await cgroup.remove();
          await this.#unmount();
          removeSlot(slot);
          release();
          resolve({ code: bySignal ? null : code, signal: bySignal ?? signal, killReason: this.#killReason, oomKilled });
        })();
      });
    });
  }

  get stdout() { return this.#child.stdout!; }
  get stderr() { return this.#child.stderr!; }
  get hasExited() { return this.#exited; }

  kill(reason: string): void {
    if (this.#exited) return;
    this.#killReason ??= reason;
    this.#cgroup.killAll();
    try { process.kill(-this.#rootPid, 'SIGKILL'); } catch { /* gone */ }
  }

  /** The runtime's host pid: the process that is pid 2 in the sandbox (bwrap's init is 1); bwrap's until then. */
  get pid(): number {
    if (this.#runtimePid === null && !this.#exited) {
      for (const p of this.#cgroup.pids()) {
        try {
          const ns = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1].trim().split(/\s+/);
          if (ns && ns.length > 1 && ns.at(-1) === '2') { this.#runtimePid = p; break; }
        } catch { /* gone */ }
      }
    }
    return this.#runtimePid ?? this.#rootPid;
  }

  async freeze(): Promise<void> {
    if (this.#exited) return;
    await this.#cgroup.freeze();
  }

  async thaw(): Promise<boolean> {
    // Killed while frozen: dead, even before its exit has been seen.
    if (this.#exited || this.#killReason !== null) return false;
    await this.#cgroup.thaw();
    return !this.#exited && this.#killReason === null;
  }

  async pageOut(): Promise<PageOut | null> {
    if (this.#exited || !swapDevices().length) return null;
    return this.#cgroup.pageOut();
  }

  /** Resident memory of every process in the sandbox (as the process driver counts its one process). */
  rssBytes(): number | null {
    if (this.#exited) return null;
    let total = 0;
    for (const p of this.#cgroup.pids()) {
      try { total += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) * 1024; } catch { /* gone */ }
    }
    return total || (this.#cgroup.swap()?.residentBytes ?? null);
  }
  peakMemoryBytes(): number | null { return this.#exited ? null : this.#cgroup.peakMemoryBytes(); }

  async attachCode(view: CodeView): Promise<CodeView> {
    if (this.#attached) throw new ThawError('THAW_E_SANDBOX_START_FAILED', `sandbox ${this.id} already has code attached`);
    if (this.#exited) throw new ThawError('THAW_E_SANDBOX_START_FAILED', `sandbox ${this.id} is gone`);
    this.#attached = this.#driver.insideView(view);
    await bindCode(this.#driver, this.#slot, view, this.#mounted);
    return this.#attached;
  }

  /** Code bound before the process started (spec.code). */
  attached(view: CodeView) { this.#attached = this.#driver.insideView(view); }
  get mounted() { return this.#mounted; }

  async #unmount() {
    await Promise.all(this.#mounted.map((p) => this.#driver.mounter.umount(p).catch(() => {})));
    this.#mounted.length = 0;
  }

  async [Symbol.asyncDispose]() {
    this.kill('disposed');
    await this.exited;
  }
}

/** Binds a version's code and layers (read-only) and compile cache (writable) onto a slot's mount points. */
async function bindCode(driver: NamespacesDriver, slot: string, view: CodeView, mounted: string[]): Promise<void> {
  const m = driver.mounter;
  const jobs = [m.bind(view.codeDir, join(slot, 'task'), 'ro', join(slot, 'stage-task')).then(() => { mounted.push(join(slot, 'task')); })];
  if (view.optDir) jobs.push(m.bind(view.optDir, join(slot, 'opt'), 'ro', join(slot, 'stage-opt')).then(() => { mounted.push(join(slot, 'opt')); }));
  if (view.compileCacheDir) {
    const dir = view.compileCacheDir;
    const rel = relative(driver.compileRoot, dir);
    if (rel.startsWith('..') || rel === '' || rel.includes('/')) throw new ThawError('THAW_E_SANDBOX_START_FAILED', `compile cache ${dir} is not a directory of ${driver.compileRoot}`);
    mkdirSync(dir, { recursive: true });
    // Shared by the version's instances (each its own uid, all one gid); seen by no other function.
    chownSync(dir, 0, driver.gid);
    chmodSync(dir, 0o2770);
    jobs.push(m.bind(dir, join(slot, 'cc'), 'rw', join(slot, 'stage-cc')).then(() => { mounted.push(join(slot, 'cc')); }));
  }
  await Promise.all(jobs);
}

const signalName = (n: number) => (Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0] ?? null) as NodeJS.Signals | null;

/** Removes a slot's own files and directories; never recursive, so a mount still on it is left alone. */
function removeSlot(slot: string) {
  for (const f of ['etc/passwd', 'etc/group']) { try { unlinkSync(join(slot, f)); } catch { /* absent */ } }
  for (const d of ['etc', 'task', 'cc', 'opt', 'stage-task', 'stage-cc', 'stage-opt', '']) { try { rmdirSync(join(slot, d)); } catch { /* absent, or still mounted */ } }
}

export class NamespacesDriver implements SandboxDriver {
  readonly name = 'namespaces';
  readonly mounter: Mounter;
  readonly gid: number;
  readonly compileRoot: string;
  #seccompFile: string | null = null;
  readonly #o: NamespacesOptions;
  readonly #scope: CgroupScope;
  readonly #uidBase: number;
  #free: number[] = [];
  #next = 0;
  #started: Promise<void> | null = null;
  #leftovers = 0;

  constructor(options: NamespacesOptions) {
    this.#o = options;
    this.#uidBase = options.uidBase ?? 1_000_000;
    this.gid = options.gid ?? this.#uidBase - 1;
    this.#scope = new CgroupScope(options.layout ?? detectCgroups(), `thaw-${options.scopeTag}`);
    this.mounter = new Mounter(options.perl ?? PERL);
    this.compileRoot = options.compileRoot;
  }

  /** Removes what a previous run on this cache dir left (killed instances, cgroups, mounts), then prepares. */
  start(): Promise<void> {
    this.mounter.open();
    this.#started ??= (async () => {
      const { runDir } = this.#o;
      mkdirSync(runDir, { recursive: true, mode: 0o700 });
      this.#leftovers = await this.#scope.sweep();
      for (const mp of [...mountsUnder(runDir), ...mountsUnder(this.compileRoot)]) await this.mounter.umount(mp).catch(() => {});
      for (const e of readdirSync(runDir)) if (!e.endsWith('.bpf')) removeSlot(join(runDir, e));
      await this.mounter.shared(runDir);
      mkdirSync(this.compileRoot, { recursive: true, mode: 0o711 });
      await this.mounter.tmpfs(this.compileRoot, this.#o.compileCacheBytes ?? COMPILE_CACHE_BYTES, 0o711, 0);
      const filter = seccompFilter();
      if (filter) {
        this.#seccompFile = join(runDir, 'seccomp.bpf');
        writeFileSync(this.#seccompFile, filter, { mode: 0o600 });
      }
      this.#scope.prepare();
    })();
    return this.#started;
  }

  report(): SandboxReport {
    const e = this.#scope.enforced;
    const enforced = ['own mount, PID, IPC, UTS and network namespaces (loopback only: no network of the host; HTTP(S) out through the egress proxy under the function\'s egress policy)', 'read-only minimal root (code at /var/task)', 'private size-limited /tmp', 'per-instance unprivileged uid, no capabilities, no_new_privs'];
    const notEnforced: string[] = [];
    if (this.#seccompFile || seccompFilter()) enforced.push('seccomp: no user namespaces, ptrace, keyrings, eBPF, perf events, userfaultfd, io_uring');
    else notEnforced.push(`seccomp: no filter for the ${process.arch} architecture`);
    const say = (what: string, c: keyof typeof e) => (e[c] ? enforced.push(`${what} (cgroup ${e[c]})`) : notEnforced.push(`${what}: no ${c} cgroup controller on this host`));
    say('memory limit = MemorySize for the whole instance', 'memory');
    say(`process limit ${PIDS_MAX}`, 'pids');
    say('CPU weight proportional to memory', 'cpu');
    say('freezing through the cgroup freezer', 'freezer');
    return { driver: this.name, isolated: true, enforced, notEnforced, leftoversRemoved: this.#leftovers };
  }

  insideView(view: CodeView): CodeView {
    return { codeDir: TASK, compileCacheDir: view.compileCacheDir ? COMPILE_CACHE : null, optDir: OPT };
  }

  #allocUid(): number {
    return this.#free.length ? this.#free.pop()! : this.#next++;
  }

  async create(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
    if (signal?.aborted) throw new ThawError('THAW_E_ABORTED', 'the instance start was cancelled');
    await this.start();
    const n = this.#allocUid();
    const uid = this.#uidBase + n;
    const slot = join(this.#o.runDir, spec.id);
    let cgroup: InstanceCgroup | null = null;
    const premounted: string[] = [];
    try {
      mkdirSync(join(slot, 'etc'), { recursive: true });
      for (const d of ['task', 'cc', 'opt', 'stage-task', 'stage-cc', 'stage-opt']) mkdirSync(join(slot, d));
      writeFileSync(join(slot, 'etc/passwd'), `root:x:0:0:root:/root:/usr/sbin/nologin\nsbx_user:x:${uid}:${this.gid}:Thaw sandbox user:/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
      writeFileSync(join(slot, 'etc/group'), `root:x:0:\nsbx:x:${this.gid}:\nnogroup:x:65534:\n`);
      for (const w of spec.writePaths ?? []) chownSync(w, uid, this.gid);
      cgroup = this.#scope.create(spec.id, { memoryBytes: spec.memoryBytes, pidsMax: PIDS_MAX });
      if (spec.code) await bindCode(this, slot, spec.code, premounted);
    } catch (err) {
      cgroup?.removeSync();
      for (const mp of premounted) await this.mounter.umount(mp).catch(() => {});
      removeSlot(slot);
      this.#free.push(n);
      throw new ThawError('THAW_E_SANDBOX_START_FAILED', `could not prepare the sandbox of ${spec.id}: ${(err as Error).message}`, { cause: err });
    }
    const args = [
      ...cgroup.procsFiles, '--',
      // A private network's instance joins its ready namespace (one setns) instead of getting a new one.
      ...(spec.netns ? [NSENTER, `--net=${spec.netns}`] : []),
      this.#o.bwrap ?? BWRAP, ...this.#bwrapArgs(spec, slot),
      SETPRIV, `--reuid=${uid}`, `--regid=${this.gid}`, '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all',
      spec.command, ...spec.args,
    ];
    const release = () => { this.#free.push(n); };
    const filterFd = this.#seccompFile ? openSync(this.#seccompFile, 'r') : null;
    return new Promise((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn('/bin/sh', ['-c', JOIN_AND_EXEC, 'thaw-sandbox', ...args], {
          cwd: spec.cwd,
          // Inside, the host's paths do not exist: home is the private /tmp (bubblewrap also sets PWD to it).
          env: { ...spec.env, HOME: '/tmp' },
          stdio: ['ignore', 'pipe', 'pipe', spec.channel === false ? 'ignore' : 'pipe', filterFd ?? 'ignore'],
          detached: true,
        });
      } finally {
        // The child has its copy (bwrap reads it before the sandbox starts).
        if (filterFd !== null) closeSync(filterFd);
      }
      const onError = async (err: Error) => {
        cgroup.removeSync();
        for (const mp of premounted) await this.mounter.umount(mp).catch(() => {});
        removeSlot(slot);
        release();
        reject(new ThawError('THAW_E_SANDBOX_START_FAILED', `could not start the sandbox: ${err.message}`, { cause: err }));
      };
      child.once('error', onError);
      child.once('spawn', () => {
        child.off('error', onError);
        child.on('error', () => { /* reported through exit */ });
        const sandbox = new NamespaceSandbox(spec.id, child, cgroup, slot, this, release);
        sandbox.mounted.push(...premounted);
        if (spec.code) sandbox.attached(spec.code);
        resolve(sandbox);
      });
    });
  }

  #bwrapArgs(spec: SandboxSpec, slot: string): string[] {
    const a = [
      '--unshare-pid', '--unshare-ipc', '--unshare-uts', ...(spec.netns ? [] : ['--unshare-net']), '--unshare-cgroup-try', '--hostname', 'thaw',
      '--die-with-parent', '--new-session',
      '--ro-bind', '/usr', '/usr',
      '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/sbin', '/sbin', '--symlink', 'usr/lib', '/lib',
    ];
    if (existsSync('/usr/lib64')) a.push('--symlink', 'usr/lib64', '/lib64');
    a.push('--proc', '/proc', '--dev', '/dev');
    a.push('--perms', '0755', '--dir', '/etc');
    for (const p of ETC) a.push('--ro-bind-try', p, p);
    a.push('--ro-bind', join(slot, 'etc/passwd'), '/etc/passwd', '--ro-bind', join(slot, 'etc/group'), '/etc/group');
    a.push('--size', String(spec.tmpBytes), '--perms', '1777', '--tmpfs', '/tmp');
    // Directories bwrap creates are root-only unless told otherwise; the runtime's uid must pass through them.
    const dirs = new Set<string>(['/var', '/var/thaw', '/opt']);
    for (const p of spec.readPaths) for (let d = dirname(p); d !== '/' && !d.startsWith('/usr'); d = dirname(d)) dirs.add(d);
    for (const p of spec.writePaths ?? []) for (let d = dirname(p); d !== '/' && !d.startsWith('/usr'); d = dirname(d)) dirs.add(d);
    for (const b of spec.binds ?? []) for (let d = dirname(b.inside); d !== '/' && !d.startsWith('/usr'); d = dirname(d)) dirs.add(d);
    for (const d of [...dirs].sort((x, y) => x.length - y.length)) a.push('--perms', '0755', '--dir', d);
    // /opt is the slot's mount point, empty until attachCode binds the function's layers there (a pooled sandbox gets them late, like its code).
    a.push('--ro-bind', join(slot, 'task'), TASK, '--bind', join(slot, 'cc'), COMPILE_CACHE, '--ro-bind', join(slot, 'opt'), OPT);
    for (const p of spec.readPaths) a.push('--ro-bind', p, p);
    for (const p of spec.writePaths ?? []) a.push('--bind', p, p);
    for (const b of spec.binds ?? []) a.push('--ro-bind', b.host, b.inside);
    a.push('--remount-ro', '/', '--chdir', '/tmp');
    // Only to let setpriv switch to the instance's uid; it then drops every capability before the runtime starts.
    a.push('--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID');
    if (this.#seccompFile) a.push('--seccomp', String(SECCOMP_FD));
    return a;
  }

  async close(): Promise<void> {
    if (this.#started) {
      await this.#started.catch(() => {});
      await this.mounter.umount(this.#o.runDir).catch(() => {});
      await this.mounter.umount(this.compileRoot).catch(() => {});
      this.#scope.removeRoots();
    }
    this.mounter.close();
    this.#started = null;
  }
}

export const namespacesDriver = (options: NamespacesOptions) => new NamespacesDriver(options);
