// The node-local code cache: each package unpacked (and its TypeScript compiled) once into dir/<tree key>/,
// shared by every version and instance using it. The tree key is content-addressed like the package: the
// hash of the package's sha256 and the compiler's tag, so a tree compiled by another esbuild or other rules
// is never served (it ages out like any unused tree). Unpacking goes to a temporary directory renamed into place, so a
// directory under its hash is always complete; concurrent misses for one hash share one unpack. Bounded in
// size: least recently used packages no running instance holds are evicted, and refetched from the origin
// when needed again. Imports src/core.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import type { Origin } from './origin.ts';
import type { PackageLimits } from './entries.ts';
import { compilerTag } from './typescript.ts';
import { unpackOffLoop } from './unpacker.ts';

export interface CodeDir {
  dir: string;
  hit: boolean;
  /** Time to fetch the package from the origin store (0 on a hit). */
  fetchMs: number;
  /** Time to unpack it (0 on a hit). */
  unpackMs: number;
}

/** Keyed by tree key; `sha256` is the package's, unknown for trees found on disk at start. */
interface Entry { sha256: string | null; bytes: number; lastUsed: number; pins: number }

/** The directory name of a package's unpacked, compiled tree. */
export const treeKey = (sha256: string) => createHash('sha256').update(`${sha256}:${compilerTag()}`).digest('hex');

export class CodeCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly #monotonic: () => number;
  readonly #onDrop: (sha256: string) => void;
  readonly #inflight = new Map<string, Promise<CodeDir>>();
  readonly #entries = new Map<string, Entry>();
  #scanned: Promise<void> | null = null;
  hits = 0;
  misses = 0;
  evictions = 0;

  /** `onDrop` hears of every package that leaves the cache (evicted or removed), to drop what derives from it. */
  constructor(dir: string, options: { monotonic?: () => number; maxBytes?: number; onDrop?: (sha256: string) => void } = {}) {
    this.dir = dir;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.#monotonic = options.monotonic ?? systemClock.monotonic;
    this.#onDrop = options.onDrop ?? (() => {});
  }

  stats() {
    const bytes = [...this.#entries.values()].reduce((n, e) => n + e.bytes, 0);
    const lookups = this.hits + this.misses;
    return { entries: this.#entries.size, bytes, maxBytes: this.maxBytes, hits: this.hits, misses: this.misses, hitRate: lookups ? this.hits / lookups : null, evictions: this.evictions };
  }

  /** Marks a package as used by a running instance: it is not evicted until unpinned. */
  pin(sha256: string): void {
    const e = this.#entries.get(treeKey(sha256));
    if (e) e.pins++;
  }

  unpin(sha256: string): void {
    const e = this.#entries.get(treeKey(sha256));
    if (e && e.pins > 0) e.pins--;
    this.#evictSoon();
  }

  pathOf(sha256: string): string { return join(this.dir, treeKey(sha256)); }

  has(sha256: string): boolean { return existsSync(this.pathOf(sha256)); }

  /** The tree if the cache holds it, counted as a hit and marked just used; null (nothing counted) if not. */
  async lookup(sha256: string): Promise<CodeDir | null> {
    await (this.#scanned ??= this.#scan());
    const dir = this.pathOf(sha256);
    if (!existsSync(dir)) return null;
    this.hits++;
    this.#touch(sha256, null);
    return { dir, hit: true, fetchMs: 0, unpackMs: 0 };
  }

  async ensure(sha256: string, blobs: Origin, limits: PackageLimits): Promise<CodeDir> {
    const found = await this.lookup(sha256);
    if (found) return found;
    this.misses++;
    let p = this.#inflight.get(sha256);
    if (!p) {
      p = this.#fill(sha256, blobs, limits).finally(() => this.#inflight.delete(sha256));
      this.#inflight.set(sha256, p);
    }
    return p;
  }

  /** Moves an already unpacked directory into the cache under its hash (used by ingest); returns the path. */
  async adopt(sha256: string, unpacked: string, bytes?: number): Promise<string> {
    const dir = this.pathOf(sha256);
    this.#touch(sha256, bytes ?? null);
    if (existsSync(dir)) { await rm(unpacked, { recursive: true, force: true }); return dir; }
    try {
      await rename(unpacked, dir);
    } catch (err) {
      await rm(unpacked, { recursive: true, force: true });
      if (!existsSync(dir)) throw err; // another adopter won the race: fine
    }
    return dir;
  }

  /** A fresh temporary directory path inside the cache (same filesystem, so rename is atomic). */
  async tempPath(sha256 = ''): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    return join(this.dir, `${sha256}.tmp-${randomBytes(8).toString('hex')}`);
  }

  async remove(sha256: string): Promise<void> {
    this.#entries.delete(treeKey(sha256));
    await rm(this.pathOf(sha256), { recursive: true, force: true });
    this.#onDrop(sha256);
  }

  #touch(sha256: string, bytes: number | null) {
    const e = this.#entries.get(treeKey(sha256));
    if (e) { e.lastUsed = this.#monotonic(); e.sha256 = sha256; if (bytes !== null) e.bytes = bytes; }
    else this.#entries.set(treeKey(sha256), { sha256, bytes: bytes ?? 0, lastUsed: this.#monotonic(), pins: 0 });
  }

  /** Eviction runs in the background; a failure to delete only leaves a directory to retry next time. */
  #evictSoon() {
    this.#evict().catch(() => {});
  }

  /** Drops least recently used, unpinned packages until the cache fits its bound. */
  async #evict(): Promise<void> {
    let total = [...this.#entries.values()].reduce((n, e) => n + e.bytes, 0);
    if (total <= this.maxBytes) return;
    const victims = [...this.#entries.entries()].filter(([, e]) => e.pins === 0 && !(e.sha256 && this.#inflight.has(e.sha256))).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, e] of victims) {
      if (total <= this.maxBytes) break;
      this.#entries.delete(key);
      total -= e.bytes;
      this.evictions++;
      await rm(join(this.dir, key), { recursive: true, force: true });
      if (e.sha256) this.#onDrop(e.sha256);
    }
  }

  /** Learns what an earlier run left in the cache directory (sizes by walking it). */
  async #scan(): Promise<void> {
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name) || this.#entries.has(name)) continue;
      this.#entries.set(name, { sha256: null, bytes: await treeBytes(join(this.dir, name)), lastUsed: 0, pins: 0 });
    }
  }

  async #fill(sha256: string, blobs: Origin, limits: PackageLimits): Promise<CodeDir> {
    const t0 = this.#monotonic();
    const bytes = await blobs.get(sha256);
    const t1 = this.#monotonic();
    const tmp = await this.tempPath(sha256);
    const { unpackedBytes } = await unpackOffLoop(bytes, tmp, limits);
    const t2 = this.#monotonic();
    const dir = await this.adopt(sha256, tmp, unpackedBytes);
    this.#evictSoon();
    return { dir, hit: false, fetchMs: t1 - t0, unpackMs: t2 - t1 };
  }
}

async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) n += (await stat(join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return n;
}
