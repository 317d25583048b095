// The agent's side of on-demand code loading (codestore/ondemand.ts): which files a version's init reads,
// by package and handler. The first start with a remote origin asks the runtime to record them; the agent
// packs them into the init bundle, puts it in the origin and records the set in the store, where every
// node finds it. A cold start on a node whose cache lacks the package then passes the set to the code
// cache, which serves a partial tree at once. Imports src/core, src/store, src/codestore.
import type { FunctionVersion, InitSet } from '../core/types.ts';
import { buildInitBundle, type Origin } from '../codestore/index.ts';
import type { Store } from '../store/index.ts';

export class InitSets {
  readonly #store: Store;
  readonly #origin: Origin;
  /** What the store said (null: no set yet), asked once per package and handler in this process. */
  readonly #known = new Map<string, Promise<InitSet | null>>();
  /** Keys being recorded now (one recording per key at a time). */
  readonly #recording = new Set<string>();
  /** The last recording's failure, for /thaw/v1/node. */
  lastError: string | null = null;
  recorded = 0;

  constructor(store: Store, origin: Origin) {
    this.#store = store;
    this.#origin = origin;
    this.enabled = origin.kind !== 'local';
  }

  /**
   * On-demand loading is for a remote origin: from the data dir, the whole package is as quick as the bundle.
   * Settable (the bench measures the same platform with it off).
   */
  enabled: boolean;

  /** For a start of `v`: its init set (pass to the cache), and whether to ask the runtime to record one. */
  async forStart(v: FunctionVersion): Promise<{ set: InitSet | null; record: boolean }> {
    if (!this.enabled) return { set: null, record: false };
    const key = keyOf(v);
    let known = this.#known.get(key);
    if (!known) {
      known = this.#store.getInitSet(v.config.codeSha256, v.config.handler).catch(() => null);
      this.#known.set(key, known);
    }
    const set = await known;
    return { set, record: set === null && !this.#recording.has(key) };
  }

  /**
   * Packs the files init read from the tree it ran on into the bundle, puts it in the origin and records the
   * set (the first record of a package and handler stands: a bundle another node recorded first is ours to
   * delete). In the background of the start: a failure only means the next start records again.
   */
  async record(v: FunctionVersion, tree: string, files: readonly string[]): Promise<void> {
    const key = keyOf(v);
    if (this.#recording.has(key)) return;
    this.#recording.add(key);
    try {
      const bundle = await buildInitBundle(tree, files);
      if (!bundle) return;
      const put = await this.#origin.put(bundle.zip);
      const set: InitSet = { codeSha256: v.config.codeSha256, handler: v.config.handler, bundleSha256: put.sha256, files: bundle.files, bytes: bundle.bytes };
      const stored = await this.#store.putInitSet(set);
      if (!stored && put.created) await this.#origin.delete(put.sha256);
      this.#known.set(key, stored ? Promise.resolve(set) : this.#store.getInitSet(set.codeSha256, set.handler).catch(() => null));
      if (stored) this.recorded++;
    } catch (err) {
      this.lastError = (err as Error).message;
    } finally {
      this.#recording.delete(key);
    }
  }
}

const keyOf = (v: FunctionVersion) => `${v.config.codeSha256}\0${v.config.handler}`;
