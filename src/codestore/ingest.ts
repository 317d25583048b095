// Taking in a package on deploy: validate everything (format, paths, links, limits, handler file and
// export) before storing anything, then store the blob and cache the unpacked tree. A failure at any step
// leaves nothing behind. Imports src/core.
import { rm } from 'node:fs/promises';
import { sha256 as hashOf, type BlobStore } from './blobs.ts';
import type { CodeCache } from './cache.ts';
import type { PackageLimits } from './entries.ts';
import { checkHandlerExport, parseHandler, resolveHandlerFile } from './handler.ts';
import { extractPackage, readPackage, type PackageFormat } from './package.ts';
import { relative } from 'node:path';

export interface Ingested {
  sha256: string;
  size: number;
  format: PackageFormat;
  /** The unpacked package in the node cache. */
  dir: string;
  /** The handler file, relative to the package root. */
  handlerFile: string;
}

export async function ingestPackage(o: { bytes: Buffer; handler: string; blobs: BlobStore; cache: CodeCache; limits: PackageLimits }): Promise<Ingested> {
  parseHandler(o.handler);
  const { format } = readPackage(o.bytes, o.limits);
  const tmp = await o.cache.tempPath();
  let created = false;
  const hash = hashOf(o.bytes);
  try {
    const { unpackedBytes } = await extractPackage(o.bytes, tmp, o.limits);
    await checkHandlerExport(tmp, o.handler);
    const { file } = await resolveHandlerFile(tmp, o.handler);
    const handlerFile = relative(tmp, file);
    const put = await o.blobs.put(o.bytes);
    created = put.created;
    const dir = await o.cache.adopt(hash, tmp, unpackedBytes);
    return { sha256: hash, size: o.bytes.length, format, dir, handlerFile };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (created) await o.blobs.delete(hash);
    throw err;
  }
}
