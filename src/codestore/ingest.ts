// Taking in a package on deploy: validate everything (size, handler, format, paths, links, limits, handler
// file and export) before storing anything, then store the blob and cache the unpacked tree. A failure at
// any step leaves nothing behind. Imports node built-ins and the other codestore modules (hence src/core).
import { rm } from 'node:fs/promises';
import type { Origin } from './origin.ts';
import type { CodeCache } from './cache.ts';
import type { PackageLimits } from './entries.ts';
import { parseHandler } from './handler.ts';
import { checkPackageSize, type PackageFormat } from './package.ts';
import { unpackOffLoop } from './unpacker.ts';

export interface Ingested {
  sha256: string;
  size: number;
  format: PackageFormat;
  /** The unpacked package in the node cache. */
  dir: string;
  /** The handler file, relative to the package root (e.g. `index.mjs`). */
  handlerFile: string;
}

export async function ingestPackage(o: { bytes: Buffer; handler: string; blobs: Origin; cache: CodeCache; limits: PackageLimits }): Promise<Ingested> {
  checkPackageSize(o.bytes, o.limits);
  parseHandler(o.handler);
  const tmp = await o.cache.tempPath();
  let created: string | null = null;
  try {
    // Structure, paths, links and limits before anything is written, then each file's data (CRC, true
    // size) as it is extracted into the temporary directory, then the handler: off the event loop.
    const { sha256: hash, format, unpackedBytes, handlerFile: rel } = await unpackOffLoop(o.bytes, tmp, o.limits, o.handler);
    const handlerFile = rel!;
    const put = await o.blobs.put(o.bytes, hash);
    if (put.created) created = hash;
    const dir = await o.cache.adopt(hash, tmp, unpackedBytes);
    return { sha256: hash, size: o.bytes.length, format, dir, handlerFile };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // A blob that was already there belongs to other versions: only ever delete our own.
    if (created) await o.blobs.delete(created);
    throw err;
  }
}
