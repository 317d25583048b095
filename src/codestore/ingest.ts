// Taking in a package on deploy: validate everything (size, handler, format, paths, links, limits, handler
// file and export) before storing anything, then store the blob and cache the unpacked tree. A failure at
// any step leaves nothing behind. Imports node built-ins and the other codestore modules (hence src/core).
import { rm } from 'node:fs/promises';
import { relative } from 'node:path';
import { sha256 as hashOf, type BlobStore } from './blobs.ts';
import type { CodeCache } from './cache.ts';
import type { PackageLimits } from './entries.ts';
import { checkHandlerExport, parseHandler, resolveHandlerFile } from './handler.ts';
import { checkPackageSize, extractPackage, scanPackage, type PackageFormat } from './package.ts';

export interface Ingested {
  sha256: string;
  size: number;
  format: PackageFormat;
  /** The unpacked package in the node cache. */
  dir: string;
  /** The handler file, relative to the package root (e.g. `index.mjs`). */
  handlerFile: string;
}

export async function ingestPackage(o: { bytes: Buffer; handler: string; blobs: BlobStore; cache: CodeCache; limits: PackageLimits }): Promise<Ingested> {
  checkPackageSize(o.bytes, o.limits);
  parseHandler(o.handler);
  // Structure, paths, links and limits, before anything touches the disk; each file's data (CRC, true
  // size) is checked as it is extracted into the temporary directory below.
  const { format } = scanPackage(o.bytes, o.limits);
  const hash = hashOf(o.bytes);
  const tmp = await o.cache.tempPath(hash);
  let created = false;
  try {
    const { unpackedBytes } = await extractPackage(o.bytes, tmp, o.limits);
    const { file } = await resolveHandlerFile(tmp, o.handler);
    await checkHandlerExport(tmp, o.handler);
    const handlerFile = relative(tmp, file);
    const put = await o.blobs.put(o.bytes);
    created = put.created;
    const dir = await o.cache.adopt(hash, tmp, unpackedBytes);
    return { sha256: hash, size: o.bytes.length, format, dir, handlerFile };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // A blob that was already there belongs to other versions: only ever delete our own.
    if (created) await o.blobs.delete(hash);
    throw err;
  }
}
