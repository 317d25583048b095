// Layers in the code store: a layer's zip is taken in like a package (validated, content-addressed blob,
// unpacked once per node) but has no handler; and a function's layer list becomes one tree, what /opt holds
// on Lambda: the layers extracted in order, later ones over earlier ones. That tree is built once per node
// and layer list (hard links into the layers' own unpacked trees, so it costs no copy) and kept in the code
// cache under a hash of the list, where instances pin it like code. Imports node built-ins and the other
// codestore modules (hence src/core).
import { createHash } from 'node:crypto';
import { copyFile, link, lstat, mkdir, readdir, readlink, realpath, rm, symlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ThawError } from '../core/errors.ts';
import { systemClock } from '../core/clock.ts';
import type { Origin } from './origin.ts';
import type { CodeCache, CodeDir } from './cache.ts';
import type { PackageLimits } from './entries.ts';
import { checkPackageSize, type PackageFormat } from './package.ts';
import { unpackOffLoop } from './unpacker.ts';

/** Validates a layer's archive, stores its blob and unpacks it into the node cache; a failure leaves nothing. */
export async function ingestLayer(o: { bytes: Buffer; blobs: Origin; cache: CodeCache; limits: PackageLimits }): Promise<{ sha256: string; size: number; format: PackageFormat; dir: string; unpackedBytes: number }> {
  checkPackageSize(o.bytes, o.limits);
  const tmp = await o.cache.tempPath();
  let created: string | null = null;
  try {
    const { sha256, format, unpackedBytes } = await unpackOffLoop(o.bytes, tmp, o.limits);
    if ((await o.blobs.put(o.bytes, sha256)).created) created = sha256;
    const dir = await o.cache.adopt(sha256, tmp, unpackedBytes);
    return { sha256, size: o.bytes.length, format, dir, unpackedBytes };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (created) await o.blobs.delete(created);
    throw err;
  }
}

/** The cache key of a layer list's merged tree: the one layer's own hash, or a hash of the ordered list. */
function optTreeKey(layerShas: readonly string[]): string {
  if (layerShas.length === 1) return layerShas[0];
  return createHash('sha256').update(`thaw-opt\n${layerShas.join('\n')}`).digest('hex');
}

/** Builds (once per node, concurrent callers sharing one build) and finds the merged /opt of layer lists. */
export class OptTrees {
  readonly #cache: CodeCache;
  readonly #blobs: Origin;
  readonly #limits: PackageLimits;
  readonly #monotonic: () => number;
  readonly #inflight = new Map<string, Promise<CodeDir & { key: string }>>();

  constructor(cache: CodeCache, blobs: Origin, limits: PackageLimits, monotonic: () => number = systemClock.monotonic) {
    this.#cache = cache;
    this.#blobs = blobs;
    this.#limits = limits;
    this.#monotonic = monotonic;
  }

  /**
   * The tree of these layers (in order) in the code cache, and its key (pin it while an instance uses it).
   * fetchMs and unpackMs are the layers' own cache fills; the merge counts as unpacking.
   */
  async ensure(layerShas: readonly string[]): Promise<CodeDir & { key: string }> {
    const key = optTreeKey(layerShas);
    if (layerShas.length === 1) return { ...(await this.#cache.ensure(key, this.#blobs, this.#limits)), key };
    const found = await this.#cache.lookup(key);
    if (found) return { ...found, key };
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#build(key, layerShas).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #build(key: string, layerShas: readonly string[]): Promise<CodeDir & { key: string }> {
    let fetchMs = 0;
    let unpackMs = 0;
    const dirs: string[] = [];
    for (const sha of layerShas) {
      const d = await this.#cache.ensure(sha, this.#blobs, this.#limits);
      fetchMs += d.fetchMs;
      unpackMs += d.unpackMs;
      dirs.push(d.dir);
      // Held until the merge is done: eviction must not take a layer from under it.
      this.#cache.pin(sha);
    }
    const t0 = this.#monotonic();
    const tmp = await this.#cache.tempPath(key);
    try {
      await mkdir(tmp, { mode: 0o755 });
      let bytes = 0;
      for (const d of dirs) bytes += await overlay(d, tmp);
      await checkLinksInside(tmp);
      const dir = await this.#cache.adopt(key, tmp, bytes);
      this.#cache.misses++;
      return { dir, hit: false, fetchMs, unpackMs: unpackMs + this.#monotonic() - t0, mounted: false, key };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    } finally {
      for (const sha of layerShas) this.#cache.unpin(sha);
    }
  }
}

/**
 * Each layer's links were checked against that layer alone; laid over each other they can combine (one
 * layer's `x -> ..` under another's `l -> x/../..`) into a link that leaves the tree, which the snapshot
 * builder would follow on the host. Every link of the merged tree must resolve inside it (or to nothing).
 */
async function checkLinksInside(root: string): Promise<void> {
  const top = await realpath(root);
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isSymbolicLink()) continue;
    const path = join(e.parentPath, e.name);
    const real = await realpath(path).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : err));
    if (real === null) continue;
    if (real instanceof Error || (real !== top && !real.startsWith(top + sep))) {
      throw new ThawError('THAW_E_LAYER_INVALID', `these layers together make ${relative(root, path)} a link that leaves /opt${real instanceof Error ? ` (${real.code})` : ''}: one layer's link runs through another's; change the order of Layers or remove the links`);
    }
  }
}

/**
 * Lays src's tree over dst as extracting another layer into /opt would: directories merge, anything else
 * replaces what was at its path (a file over a directory too). Files are hard links (a copy where the
 * filesystem has none); returns the bytes of the files laid.
 */
async function overlay(src: string, dst: string): Promise<number> {
  let bytes = 0;
  for (const e of await readdir(src, { withFileTypes: true })) {
    const from = join(src, e.name);
    const to = join(dst, e.name);
    const there = await lstat(to).catch(() => null);
    if (e.isDirectory()) {
      if (there && !there.isDirectory()) await rm(to, { force: true });
      if (!there?.isDirectory()) await mkdir(to, { mode: 0o755 });
      bytes += await overlay(from, to);
      continue;
    }
    if (there) await rm(to, { recursive: true, force: true });
    if (e.isSymbolicLink()) { await symlink(await readlink(from), to); continue; }
    if (!e.isFile()) continue;
    await link(from, to).catch((err: NodeJS.ErrnoException) => {
      if (!['EXDEV', 'EPERM', 'ENOTSUP', 'EMLINK'].includes(err.code ?? '')) throw err;
      return copyFile(from, to);
    });
    bytes += (await lstat(from)).size;
  }
  return bytes;
}
