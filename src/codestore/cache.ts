// The node-local code cache: each package unpacked (and its TypeScript compiled) once into dir/<tree key>/,
// shared by every version and instance using it. The tree key is content-addressed like the package: the
// hash of the package's sha256 and the compiler's tag, so a tree compiled by another esbuild or other rules
// is never served (it ages out like any unused tree). Unpacking goes to a temporary directory renamed into place, so a
// directory under its hash is always complete; concurrent misses for one hash share one unpack. Bounded in
// size: least recently used packages no running instance holds are evicted, and refetched from the origin
// when needed again. A package with an image (images.ts) is not unpacked: its image file is fetched into
// dir/<tree key>.sqsh and mounted read-only at dir/<tree key>/, the same path an unpacked tree has, so what
// reads the tree (the sandbox's bind at /var/task, the process driver) cannot tell the difference; where the
// mount fails the package is unpacked as before. With on-demand loading (ondemand.ts), a miss of a package
// whose init bundle is known makes a partial tree first (the bundle, and FILLING_MARKER), served at once to
// the callers that accept one, then moves the rest of the package into that same tree in the background
// (never another tree under a running instance); the filled tree is an unpacked tree like any other. Imports src/core.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import type { CodeImage, InitSet } from '../core/types.ts';
import { mountsUnder } from '../core/mounts.ts';
import { imageUsable, type ImageMounts } from './images.ts';
import { FILLING_MARKER, fillFrom } from './ondemand.ts';
import { extractPackage } from './package.ts';
import type { Origin } from './origin.ts';
import type { PackageLimits } from './entries.ts';
import { compilerTag } from './typescript.ts';
import { unpackOffLoop } from './unpacker.ts';

export interface CodeDir {
  dir: string;
  hit: boolean;
  /** Time to fetch the package from the origin store (0 on a hit). */
  fetchMs: number;
  /** Time to unpack it, or to mount its image (0 on a hit). */
  unpackMs: number;
  /** The tree is the package's image, mounted (not files written). */
  mounted: boolean;
  /** Only init's files are in the tree yet; the rest are being moved in (FILLING_MARKER is there until they are). */
  partial?: boolean;
}

/** A partial tree's background fill, for /thaw/v1/node and tests. */
export interface FillState { sha256: string; state: 'filling' | 'done' | 'failed'; files: number; error: string | null }

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
  readonly #images: ImageMounts | null;
  /** Tree keys this cache mounted an image at (and must unmount). */
  readonly #mounted = new Set<string>();
  /** Packages whose partial tree is there and being filled: the partial tree (their #inflight is the full one). */
  readonly #partial = new Map<string, Promise<CodeDir>>();
  /** The last fills, newest last (a few), for stats and tests. */
  readonly fills: FillState[] = [];
  /** Called at each change of a fill's state (tests wait on it rather than on time). */
  onFill: (fill: FillState) => void = () => {};
  /** The last reason an image could not be mounted (the package was unpacked instead), for /thaw/v1/node. */
  #imageError: string | null = null;
  imageFailures = 0;
  #scanned: Promise<void> | null = null;
  hits = 0;
  misses = 0;
  evictions = 0;

  /**
   * `onDrop` hears of every package that leaves the cache (evicted or removed), to drop what derives from it.
   * `images`: how to mount package images; absent, every package is unpacked.
   */
  constructor(dir: string, options: { monotonic?: () => number; maxBytes?: number; onDrop?: (sha256: string) => void; images?: ImageMounts | null } = {}) {
    this.dir = dir;
    this.#images = options.images ?? null;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.#monotonic = options.monotonic ?? systemClock.monotonic;
    this.#onDrop = options.onDrop ?? (() => {});
  }

  stats() {
    const bytes = [...this.#entries.values()].reduce((n, e) => n + e.bytes, 0);
    const lookups = this.hits + this.misses;
    return {
      entries: this.#entries.size, bytes, maxBytes: this.maxBytes, hits: this.hits, misses: this.misses, hitRate: lookups ? this.hits / lookups : null, evictions: this.evictions,
      images: { mounts: this.#images?.kind ?? null, mounted: this.#mounted.size, failures: this.imageFailures, lastError: this.#imageError },
      onDemand: { filling: this.#partial.size, fills: this.fills.length, failed: this.fills.filter((f) => f.state === 'failed').length },
    };
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

  /** A directory under its key is complete, except an image's mount point while its mount is under way. */
  has(sha256: string): boolean { return !this.#inflight.has(sha256) && existsSync(this.pathOf(sha256)); }

  /** The tree if the cache holds it, counted as a hit and marked just used; null (nothing counted) if not. */
  async lookup(sha256: string): Promise<CodeDir | null> {
    await (this.#scanned ??= this.#scan());
    if (!this.has(sha256)) return null;
    this.hits++;
    this.#touch(sha256, null);
    return { dir: this.pathOf(sha256), hit: true, fetchMs: 0, unpackMs: 0, mounted: this.#mounted.has(treeKey(sha256)) };
  }

  /**
   * The package's tree: a hit, or its image mounted (when it has one this node can mount), or it unpacked.
   * `onDemand`: the caller's init set (it accepts a partial tree, whose runtime waits for missing files):
   * a miss then serves init's bundle at once and fills the rest in the background.
   */
  async ensure(sha256: string, blobs: Origin, limits: PackageLimits, image?: CodeImage, onDemand?: InitSet | null): Promise<CodeDir> {
    const found = await this.lookup(sha256);
    if (found) return found;
    const partial = onDemand ? this.#partial.get(sha256) : undefined;
    if (partial) { this.hits++; return partial; }
    this.misses++;
    let p = this.#inflight.get(sha256);
    if (!p && onDemand) return this.#startOnDemand(sha256, blobs, limits, image, onDemand);
    if (!p) {
      p = this.#fill(sha256, blobs, limits, image).finally(() => this.#inflight.delete(sha256));
      this.#inflight.set(sha256, p);
    }
    return p;
  }

  /**
   * Fetches init's bundle and unpacks it (with FILLING_MARKER) as the package's tree; answers with that
   * partial tree, then fetches the package and moves what the tree lacks into it, then drops the marker.
   * Until then the package is in flight: a caller that does not accept a partial tree waits for the whole.
   * A bundle that cannot be had falls back to the whole package; a fill that fails removes the marker (so
   * the runtimes stop waiting) and the tree (the next start fetches the package again).
   */
  #startOnDemand(sha256: string, blobs: Origin, limits: PackageLimits, image: CodeImage | undefined, set: InitSet): Promise<CodeDir> {
    const partial = Promise.withResolvers<CodeDir>();
    const whole = (async (): Promise<CodeDir> => {
      const t0 = this.#monotonic();
      const dir = this.pathOf(sha256);
      let tmp = await this.tempPath(sha256);
      try {
        const bundle = await blobs.get(set.bundleSha256);
        const t1 = this.#monotonic();
        await extractPackage(bundle, tmp, limits);
        await writeFile(join(tmp, FILLING_MARKER), '');
        await rename(tmp, dir);
        this.#touch(sha256, set.bytes);
        partial.resolve({ dir, hit: false, fetchMs: t1 - t0, unpackMs: this.#monotonic() - t1, mounted: false, partial: true });
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        // No bundle to be had (deleted, damaged): the whole package, as without one.
        const full = this.#fill(sha256, blobs, limits, image);
        partial.resolve(full);
        return full;
      }
      const fill: FillState = { sha256, state: 'filling', files: set.files.length, error: null };
      this.#noteFill(fill);
      try {
        const t2 = this.#monotonic();
        const bytes = await blobs.get(sha256);
        const t3 = this.#monotonic();
        tmp = await this.tempPath(sha256);
        const { unpackedBytes } = await unpackOffLoop(bytes, tmp, limits);
        fill.files += await fillFrom(tmp, dir);
        this.#touch(sha256, unpackedBytes);
        fill.state = 'done';
        this.#noteFill(fill);
        await rm(join(dir, FILLING_MARKER), { force: true });
        this.#evictSoon();
        return { dir, hit: false, fetchMs: t3 - t2, unpackMs: this.#monotonic() - t3, mounted: false };
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        await rm(join(dir, FILLING_MARKER), { force: true });
        fill.state = 'failed';
        fill.error = (err as Error).message;
        this.#noteFill(fill);
        this.#entries.delete(treeKey(sha256));
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    })();
    const inflight = whole.finally(() => { this.#inflight.delete(sha256); this.#partial.delete(sha256); });
    inflight.catch(() => {});
    this.#inflight.set(sha256, inflight);
    this.#partial.set(sha256, partial.promise);
    return partial.promise;
  }

  #noteFill(fill: FillState) {
    if (!this.fills.includes(fill)) { this.fills.push(fill); if (this.fills.length > 16) this.fills.shift(); }
    this.onFill({ ...fill });
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
    await this.#drop(treeKey(sha256));
    this.#onDrop(sha256);
  }

  /** Learns what the cache directory holds, unmounting what a killed run left mounted (else done at the first lookup). */
  start(): Promise<void> { return (this.#scanned ??= this.#scan()); }

  /** Unmounts every image this cache mounted (at stop: a mount must not outlive the server that owns it). */
  async close(): Promise<void> {
    for (const key of [...this.#mounted]) await this.#drop(key).catch(() => {});
  }

  /** Deletes a tree: an image's mount is detached first, then its mount point and image file go. */
  async #drop(key: string): Promise<void> {
    const path = join(this.dir, key);
    if (!this.#mounted.has(key)) { await rm(path, { recursive: true, force: true }); return; }
    // A failed unmount (someone unmounted it already) must not fail the delete that asked for it.
    await this.#images!.umount(path).catch((err: Error) => { this.#imageError = `could not unmount ${path}: ${err.message}`; });
    this.#mounted.delete(key);
    await rmdir(path).catch(() => {});
    await rm(`${path}.sqsh`, { force: true });
  }

  #touch(sha256: string, bytes: number | null) {
    const e = this.#entries.get(treeKey(sha256));
    if (e) { e.lastUsed = this.#monotonic(); e.sha256 = sha256; if (bytes !== null) e.bytes = bytes; }
    else this.#entries.set(treeKey(sha256), { sha256, bytes: bytes ?? 0, lastUsed: this.#monotonic(), pins: 0 });
  }

  #evicting: Promise<void> = Promise.resolve();

  /**
   * Eviction runs in the background, one pass after another (two at once would both pick the same victims);
   * a failure to delete only leaves a directory to retry next time.
   */
  #evictSoon() {
    this.#evicting = this.#evicting.then(() => this.#evict()).catch(() => {});
  }

  /** Resolves once the evictions asked for so far have run. */
  evictionsSettled(): Promise<void> { return this.#evicting; }

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
      await this.#drop(key);
      if (e.sha256) this.#onDrop(e.sha256);
    }
  }

  /**
   * Learns what an earlier run left in the cache directory (sizes by walking it). Images a killed run left
   * mounted are unmounted and their files removed first (they are fetched again when needed).
   */
  async #scan(): Promise<void> {
    if (this.#images) for (const mp of mountsUnder(this.dir)) await this.#images.umount(mp).catch(() => {});
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const image = /^([0-9a-f]{64})\.sqsh$/.exec(name);
      if (!image) continue;
      await rmdir(join(this.dir, image[1])).catch(() => {});
      await rm(join(this.dir, name), { force: true });
    }
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name) || this.#entries.has(name)) continue;
      // A partial tree whose fill a killed run left unfinished is fetched again when needed.
      if (existsSync(join(this.dir, name, FILLING_MARKER))) { await rm(join(this.dir, name), { recursive: true, force: true }); continue; }
      this.#entries.set(name, { sha256: null, bytes: await treeBytes(join(this.dir, name)), lastUsed: 0, pins: 0 });
    }
  }

  async #fill(sha256: string, blobs: Origin, limits: PackageLimits, image?: CodeImage): Promise<CodeDir> {
    if (this.#images && imageUsable(image)) {
      try {
        return await this.#mountImage(sha256, blobs, image, this.#images);
      } catch (err) {
        // Out of loop devices, no FUSE in this container, a damaged image: the package still runs, unpacked.
        this.imageFailures++;
        this.#imageError = (err as Error).message;
      }
    }
    const t0 = this.#monotonic();
    const bytes = await blobs.get(sha256);
    const t1 = this.#monotonic();
    const tmp = await this.tempPath(sha256);
    const { unpackedBytes } = await unpackOffLoop(bytes, tmp, limits);
    const t2 = this.#monotonic();
    const dir = await this.adopt(sha256, tmp, unpackedBytes);
    this.#evictSoon();
    return { dir, hit: false, fetchMs: t1 - t0, unpackMs: t2 - t1, mounted: false };
  }

  /** Fetches the image into dir/<key>.sqsh (written whole, then renamed) and mounts it at dir/<key>. */
  async #mountImage(sha256: string, blobs: Origin, image: CodeImage, mounts: ImageMounts): Promise<CodeDir> {
    const t0 = this.#monotonic();
    const bytes = await blobs.get(image.sha256);
    const t1 = this.#monotonic();
    const dir = this.pathOf(sha256);
    const file = `${dir}.sqsh`;
    const tmp = await this.tempPath(`${treeKey(sha256)}.sqsh`);
    await writeFile(tmp, bytes, { mode: 0o444 });
    await rename(tmp, file);
    await mkdir(dir);
    try {
      await mounts.mount(file, dir);
    } catch (err) {
      await rmdir(dir).catch(() => {});
      await rm(file, { force: true });
      throw err;
    }
    this.#mounted.add(treeKey(sha256));
    const t2 = this.#monotonic();
    this.#touch(sha256, bytes.length);
    this.#evictSoon();
    return { dir, hit: false, fetchMs: t1 - t0, unpackMs: t2 - t1, mounted: true };
  }
}

async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) n += (await stat(join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return n;
}
