// The host side of mounter.pl: one long-lived root helper that makes bind mounts without a fork and exec
// per mount. Requests are answered in order over its stdin/stdout. Imports node built-ins and src/core.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ThawError } from '../core/errors.ts';

const SCRIPT = fileURLToPath(new URL('./mounter.pl', import.meta.url));

export class Mounter {
  #child: ChildProcessWithoutNullStreams | null = null;
  #pending = new Map<number, PromiseWithResolvers<void>>();
  #seq = 0;
  #perl: string;
  #closed = false;

  constructor(perl = '/usr/bin/perl') { this.#perl = perl; }

  #start(): ChildProcessWithoutNullStreams {
    if (this.#child) return this.#child;
    const child = spawn(this.#perl, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin', LANG: 'C' } });
    this.#child = child;
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => { stderr = (stderr + t).slice(-2000); });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [id, status, errno, text] = line.split('\t');
      const p = this.#pending.get(Number(id));
      if (!p) return;
      this.#pending.delete(Number(id));
      if (status === 'ok') p.resolve();
      else p.reject(new ThawError('THAW_E_SANDBOX_START_FAILED', `mount failed: ${text ?? 'unknown error'} (errno ${errno})`));
    });
    const fail = (why: string) => {
      if (this.#child === child) this.#child = null;
      for (const p of this.#pending.values()) p.reject(new ThawError('THAW_E_SANDBOX_START_FAILED', `the mount helper ${why}${stderr ? `: ${stderr.trim()}` : ''}`));
      this.#pending.clear();
    };
    child.on('error', (err) => fail(`could not start (${err.message})`));
    child.on('exit', (code, signal) => fail(`exited (${signal ?? code})`));
    child.stdin.on('error', () => { /* reported through exit */ });
    return child;
  }

  #request(verb: string, ...args: string[]): Promise<void> {
    // Closed: a late request (an instance's cleanup finishing after shutdown) must not start a new helper
    // that nobody closes; what it would have unmounted the next start removes.
    if (this.#closed) return Promise.reject(new ThawError('THAW_E_SANDBOX_START_FAILED', 'the mount helper is closed'));
    for (const a of args) if (/[\t\n]/.test(a)) throw new ThawError('THAW_E_SANDBOX_START_FAILED', `a mount path holds a tab or newline: ${JSON.stringify(a)}`);
    const child = this.#start();
    const id = ++this.#seq;
    const p = Promise.withResolvers<void>();
    this.#pending.set(id, p);
    child.stdin.write([id, verb, ...args].join('\t') + '\n');
    return p.promise;
  }

  /**
   * Binds src onto dst, read-only unless rw, nosuid and nodev either way, as the mount that propagates into
   * sandboxes (the flags are set first on a private bind at `stage`, an empty directory).
   */
  bind(src: string, dst: string, mode: 'ro' | 'rw', stage: string): Promise<void> { return this.#request('bind', src, dst, mode, stage); }
  /** A tmpfs of at most `bytes` on dir, root-owned with group gid and the given mode. */
  tmpfs(dir: string, bytes: number, mode: number, gid: number): Promise<void> { return this.#request('tmpfs', dir, String(Math.floor(bytes)), mode.toString(8).padStart(4, '0'), String(gid)); }
  /** Makes dir a mount point with shared propagation: later mounts below it reach the sandboxes that bound it. */
  shared(dir: string): Promise<void> { return this.#request('shared', dir); }
  /** A new network namespace, loopback up, kept alive by a bind mount on `file` (created if absent). */
  netns(file: string): Promise<void> { return this.#request('netns', file); }
  /**
   * Mounts a package image (a file) read-only, nosuid and nodev on dir through a loop device of its own that
   * goes when the mount does. Once per image: every instance binds the one mount.
   */
  loop(image: string, dir: string, type: 'squashfs' | 'erofs'): Promise<void> { return this.#request('loop', image, dir, type); }
  /** Detaches what is mounted on dir. */
  umount(dir: string): Promise<void> { return this.#request('umount', dir); }

  /** Ends the helper; later requests are refused. `open()` allows them again (a driver started anew). */
  close(): void {
    this.#closed = true;
    this.#child?.stdin.end();
    this.#child = null;
  }

  open(): void { this.#closed = false; }
}
