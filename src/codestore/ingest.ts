// Taking in a package on deploy: validate everything (size, handler, format, paths, links, limits, handler
// file and export) before storing anything, then store the blob and the tree's image (images.ts: what other
// nodes mount instead of unpacking) and cache the unpacked tree. A failure at any step leaves nothing behind. Imports node built-ins and the other codestore modules (hence src/core).
import { rm } from 'node:fs/promises';
import type { CodeImage } from '../core/types.ts';
import type { Origin } from './origin.ts';
import type { CodeCache } from './cache.ts';
import type { PackageLimits } from './entries.ts';
import { parseHandler } from './handler.ts';
import { checkPackageSize, type PackageFormat } from './package.ts';
import { unpackOffLoop } from './unpacker.ts';
import { buildImage, canBuildImages, imageRecord } from './images.ts';

export interface Ingested {
  sha256: string;
  size: number;
  format: PackageFormat;
  /** The unpacked package in the node cache. */
  dir: string;
  /** The handler file, relative to the package root (e.g. `index.mjs`). */
  handlerFile: string;
  /** The compiled tree's image in the origin; null where this node cannot build one (no mksquashfs). */
  image: CodeImage | null;
}

/**
 * `images: false` stores no image (a node without squashfs-tools is detected on its own); nor does a tree
 * smaller than `minImageBytes` (default 0): unpacking a few files costs less than building an image at
 * every deploy, which `thaw dev` pays on each save.
 */
export async function ingestPackage(o: { bytes: Buffer; handler: string; blobs: Origin; cache: CodeCache; limits: PackageLimits; images?: boolean; minImageBytes?: number }): Promise<Ingested> {
  checkPackageSize(o.bytes, o.limits);
  parseHandler(o.handler);
  const tmp = await o.cache.tempPath();
  const imageFile = `${tmp}.sqsh`;
  let created: string | null = null;
  let imageCreated: string | null = null;
  try {
    // Structure, paths, links and limits before anything is written, then each file's data (CRC, true
    // size) as it is extracted into the temporary directory, then the handler: off the event loop.
    const { sha256: hash, format, unpackedBytes, handlerFile: rel } = await unpackOffLoop(o.bytes, tmp, o.limits, o.handler);
    const handlerFile = rel!;
    const put = await o.blobs.put(o.bytes, hash);
    if (put.created) created = hash;
    let image: CodeImage | null = null;
    if (o.images !== false && unpackedBytes >= (o.minImageBytes ?? 0) && canBuildImages()) {
      const bytes = await buildImage(tmp, imageFile);
      const stored = await o.blobs.put(bytes);
      if (stored.created) imageCreated = stored.sha256;
      image = imageRecord(stored.sha256, bytes.length);
    }
    const dir = await o.cache.adopt(hash, tmp, unpackedBytes);
    return { sha256: hash, size: o.bytes.length, format, dir, handlerFile, image };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // A blob that was already there belongs to other versions: only ever delete our own.
    if (created) await o.blobs.delete(created);
    if (imageCreated) await o.blobs.delete(imageCreated);
    throw err;
  } finally {
    await rm(imageFile, { force: true });
  }
}
