// Garbage collection of code content: a package or layer zip no function version and no layer version holds
// any more leaves the origin store and the node cache. Shared by functions and layers, which both drop
// content. Imports src/store and src/codestore.
import type { Origin, CodeCache } from '../codestore/index.ts';
import type { Store } from '../store/index.ts';

/** Removes each of these contents that nothing holds any more (one still in use is kept). */
export async function collectUnused(o: { store: Store; blobs: Origin; cache: CodeCache }, shas: Iterable<string>): Promise<void> {
  for (const sha of new Set(shas)) {
    if (await o.store.isCodeInUse(sha)) continue;
    await o.blobs.delete(sha);
    await o.cache.remove(sha);
  }
}
