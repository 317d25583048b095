// The origin store of packages as uploaded, content-addressed by SHA-256: dir/ab/abcdef… Writes go to a
// temporary file and are renamed into place, so a reader never sees half a blob. Imports src/core.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { join } from 'node:path';
import { ThawError } from '../core/errors.ts';
import type { Origin } from './origin.ts';

const SHA = /^[0-9a-f]{64}$/;

export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * A pass-through that hashes what flows through it and fails at the end when the bytes are not those `hash`
 * names: whoever serves an object on (a code download) sends a damaged one as a broken transfer, never as
 * a complete-looking package. For a pipeline(), which destroys every stage when one fails.
 */
export function hashCheck(hash: string, what = `object ${hash}`): Transform {
  const h = createHash('sha256');
  return new Transform({
    transform(chunk, _enc, done) { h.update(chunk); done(null, chunk); },
    flush(done) { done(h.digest('hex') === hash ? null : new ThawError('THAW_E_INTERNAL', `${what} is damaged (its hash differs)`)); },
  });
}

/** The local origin: a directory of the data dir (dir/ab/abcdef…, each name ending in `suffix`). */
export class BlobStore implements Origin {
  readonly kind = 'local';
  readonly dir: string;
  /** Snapshots keep the `.snap` their files have always had, so data dirs of earlier releases still restore. */
  readonly suffix: string;

  constructor(dir: string, suffix = '') { this.dir = dir; this.suffix = suffix; }

  get location() { return this.dir; }

  path(hash: string): string {
    if (!SHA.test(hash)) throw new ThawError('THAW_E_INTERNAL', `${JSON.stringify(hash)} is not a SHA-256`);
    return join(this.dir, hash.slice(0, 2), hash + this.suffix);
  }

  /** Stores bytes under their hash (given when the caller computed it already, off the event loop). */
  async put(bytes: Buffer, known?: string): Promise<{ sha256: string; size: number; created: boolean }> {
    const hash = known ?? sha256(bytes);
    const target = this.path(hash);
    if (await this.has(hash)) return { sha256: hash, size: bytes.length, created: false };
    await mkdir(join(this.dir, hash.slice(0, 2)), { recursive: true });
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, bytes, { flag: 'wx' });
      // link() fails if the name exists, so of two concurrent puts exactly one reports created: true.
      await link(tmp, target).catch(async (err: NodeJS.ErrnoException) => {
        // Filesystems without hard links: rename, which is atomic but last-writer-wins.
        if (err.code === 'EEXIST' || !['EPERM', 'ENOTSUP', 'ENOSYS', 'EOPNOTSUPP'].includes(err.code ?? '')) throw err;
        if (await this.has(hash)) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
        await rename(tmp, target);
      });
      return { sha256: hash, size: bytes.length, created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { sha256: hash, size: bytes.length, created: false };
      // A write that failed (a full disk) leaves nothing: not even the directory it made for its prefix.
      await rm(tmp, { force: true });
      await rmdir(join(this.dir, hash.slice(0, 2))).catch(() => {});
      throw err;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async has(hash: string): Promise<boolean> {
    if (!SHA.test(hash)) return false;
    return stat(this.path(hash)).then((s) => s.isFile(), () => false);
  }

  /** The blob's bytes, checked against its name (a damaged blob is an error, not wrong code). */
  async get(hash: string): Promise<Buffer> {
    let bytes: Buffer;
    try { bytes = await readFile(this.path(hash)); } catch (err) {
      throw new ThawError('THAW_E_INTERNAL', `package ${hash} is missing from the code store at ${this.dir}`, { cause: err });
    }
    if (sha256(bytes) !== hash) throw new ThawError('THAW_E_INTERNAL', `package ${hash} in the code store is damaged (its hash differs)`);
    return bytes;
  }

  async stream(hash: string): Promise<Readable> {
    if (!(await this.has(hash))) throw new ThawError('THAW_E_PACKAGE_NOT_FOUND', `no object ${hash} in the code store at ${this.dir}`);
    return createReadStream(this.path(hash));
  }

  async getRange(hash: string, start: number, end: number): Promise<Buffer> {
    const fh = await open(this.path(hash), 'r');
    try {
      const buf = Buffer.alloc(Math.max(0, end - start));
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      return buf.subarray(0, bytesRead);
    } finally { await fh.close(); }
  }

  async delete(hash: string): Promise<void> {
    await rm(this.path(hash), { force: true });
    // Its prefix directory goes too once empty (rmdir refuses a directory that still holds other blobs).
    await rmdir(join(this.dir, hash.slice(0, 2))).catch(() => {});
  }

  async list(): Promise<string[]> {
    const out: string[] = [];
    for (const shard of await readdir(this.dir).catch(() => [] as string[])) {
      for (const name of await readdir(join(this.dir, shard)).catch(() => [] as string[])) {
        const hash = name.endsWith(this.suffix) ? name.slice(0, name.length - this.suffix.length) : '';
        if (SHA.test(hash)) out.push(hash);
      }
    }
    return out.sort();
  }
}
