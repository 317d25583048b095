// Garbage collection of code content: a package or layer zip no function version and no layer version holds
// any more leaves the origin store and the node cache. Shared by functions and layers, which both drop
// content. Imports src/store and src/codestore.
import type { Origin, CodeCache } from '../codestore/index.ts';
import type { Store } from '../store/index.ts';

/** A package image (src/codestore/images.ts) and the package it was built from. */
export interface PackageImage { package: string; image: string }

/**
 * Removes each of these contents that nothing holds any more (one still in use is kept), and each image
 * whose package nothing holds: versions name an image only beside its package.
 */
export async function collectUnused(o: { store: Store; blobs: Origin; cache: CodeCache }, shas: Iterable<string>, images: Iterable<PackageImage> = []): Promise<void> {
  const removed: string[] = [];
  for (const sha of new Set(shas)) {
    if (await o.store.isCodeInUse(sha)) continue;
    await o.blobs.delete(sha);
    await o.cache.remove(sha);
    removed.push(sha);
  }
  for (const i of images) if (!(await o.store.isCodeInUse(i.package))) await o.blobs.delete(i.image);
  // Last, being the one write to the store: what the packages' inits read (on-demand loading), the records
  // and the bundles nothing else names. The content is gone whatever happens here (a rolled-back deploy
  // runs this while the store may be the very thing that failed; it never recorded an init set).
  for (const sha of removed) for (const bundle of await o.store.deleteInitSets(sha)) await o.blobs.delete(bundle);
}
