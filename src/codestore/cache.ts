// The node-local code cache: each package unpacked once, by content hash, into dir/<sha256>/ and shared by
// every version and instance using it. Unpacking goes to a temporary directory renamed into place, so a
// directory under its hash is always complete; concurrent misses for one hash share one unpack.
// Imports src/core.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import type { BlobStore } from './blobs.ts';
import type { PackageLimits } from './entries.ts';
import { extractPackage } from './package.ts';

export interface CodeDir {
  dir: string;
  hit: boolean;
  /** Time to fetch the package from the origin store (0 on a hit). */
  fetchMs: number;
  /** Time to unpack it (0 on a hit). */
  unpackMs: number;
}

export class CodeCache {
  readonly dir: string;
  readonly #monotonic: () => number;
  readonly #inflight = new Map<string, Promise<CodeDir>>();

  constructor(dir: string, options: { monotonic?: () => number } = {}) {
    this.dir = dir;
    this.#monotonic = options.monotonic ?? systemClock.monotonic;
  }

  pathOf(sha256: string): string { return join(this.dir, sha256); }

  has(sha256: string): boolean { return existsSync(this.pathOf(sha256)); }

  async ensure(sha256: string, blobs: BlobStore, limits: PackageLimits): Promise<CodeDir> {
    const dir = this.pathOf(sha256);
    if (existsSync(dir)) return { dir, hit: true, fetchMs: 0, unpackMs: 0 };
    let p = this.#inflight.get(sha256);
    if (!p) {
      p = this.#fill(sha256, blobs, limits).finally(() => this.#inflight.delete(sha256));
      this.#inflight.set(sha256, p);
    }
    return p;
  }

  /** Moves an already unpacked directory into the cache under its hash (used by ingest); returns the path. */
  async adopt(sha256: string, unpacked: string): Promise<string> {
    const dir = this.pathOf(sha256);
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
  async tempPath(): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    return join(this.dir, `.tmp-${randomBytes(8).toString('hex')}`);
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { recursive: true, force: true });
  }

  async #fill(sha256: string, blobs: BlobStore, limits: PackageLimits): Promise<CodeDir> {
    const t0 = this.#monotonic();
    const bytes = await blobs.get(sha256);
    const t1 = this.#monotonic();
    const tmp = await this.tempPath();
    await extractPackage(bytes, tmp, limits);
    const dir = await this.adopt(sha256, tmp);
    return { dir, hit: false, fetchMs: t1 - t0, unpackMs: this.#monotonic() - t1 };
  }
}
