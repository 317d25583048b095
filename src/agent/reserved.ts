// Reserved (provisioned) instances: per function and qualifier, a count of initialized instances of one
// version, kept started (replaced when they die), used before on-demand ones and never stopped for
// idleness; instances beyond the count are released to age out as on-demand ones. Imports src/core.
import type { Clock } from '../core/clock.ts';
import { asThawError } from '../core/errors.ts';
import type { FunctionVersion } from '../core/types.ts';
import { functionKey, type Instance } from './instance.ts';

export interface ReservedOptions {
  clock: Clock;
  closing(): boolean;
  /** The instances of a version on this node. */
  instancesOf(v: FunctionVersion): readonly Instance[];
  /** Starts one instance of v and marks it reserved; null, or why it failed (init). Throws when it could not start. */
  start(v: FunctionVersion, qualifier: string): Promise<string | null>;
  /** Runs the policy for a function whose instances were released to it. */
  plan(fn: string): void;
}

interface Config { version: FunctionVersion; qualifier: string; count: number; failure: string | null }

export class ReservedInstances {
  readonly #o: ReservedOptions;
  readonly #configs = new Map<string, Config>();
  readonly #reconciling = new Set<string>();

  constructor(options: ReservedOptions) { this.#o = options; }

  /**
   * Keeps `count` initialized instances of a version for a qualifier (a version or an alias), used before
   * on-demand ones and never stopped for idleness. Count 0 releases them to age out as on-demand instances.
   */
  set(functionName: string, qualifier: string, version: FunctionVersion | null, count: number): void {
    const k = `${functionName}:${qualifier}`;
    const before = this.#configs.get(k);
    if (!version || count <= 0) this.#configs.delete(k);
    else this.#configs.set(k, { version, qualifier, count, failure: null });
    if (before && (!version || functionKey(before.version) !== functionKey(version) || count < before.count)) this.#release(before.version);
    if (version && count > 0) void this.#reconcile(k);
  }

  /** What a reserved config has now: requested, initialized, and the last failure. */
  status(functionName: string, qualifier: string) {
    const r = this.#configs.get(`${functionName}:${qualifier}`);
    if (!r) return null;
    const live = this.#live(r.version);
    return { version: r.version.version, requested: r.count, available: live.filter((i) => i.state !== 'starting' && i.state !== 'initializing').length, allocated: live.length, failure: r.failure };
  }

  /** How many reserved instances are configured for a version, over all its qualifiers. */
  configured(v: FunctionVersion): number { return this.#wanted(v); }

  /** A reserved instance that died is replaced. */
  died(instance: Instance): void {
    if (!instance.reserved) return;
    for (const [k, r] of this.#configs) if (functionKey(r.version) === instance.key) void this.#reconcile(k);
  }

  #live(v: FunctionVersion) {
    return this.#o.instancesOf(v).filter((i) => i.reserved && i.state !== 'stopping' && i.state !== 'gone');
  }

  #wanted(v: FunctionVersion) {
    return [...this.#configs.values()].filter((r) => functionKey(r.version) === functionKey(v)).reduce((n, r) => n + r.count, 0);
  }

  /** Reserved instances beyond what is wanted become on-demand ones (keep-alive then applies). */
  #release(v: FunctionVersion) {
    const released = this.#live(v).slice(this.#wanted(v));
    for (const i of released) { i.reserved = false; i.idleSince = this.#o.clock.monotonic(); }
    if (released.length) this.#o.plan(v.functionName);
  }

  /** Starts reserved instances until the config is met; one reconcile per config at a time. */
  async #reconcile(k: string): Promise<void> {
    if (this.#reconciling.has(k) || this.#o.closing()) return;
    this.#reconciling.add(k);
    try {
      for (let failures = 0; failures < 3;) {
        const r = this.#configs.get(k);
        if (!r || this.#o.closing()) return;
        if (this.#live(r.version).length >= this.#wanted(r.version)) { this.#release(r.version); return; }
        try {
          r.failure = await this.#o.start(r.version, r.qualifier);
          if (r.failure !== null) failures++;
        } catch (err) {
          r.failure = asThawError(err).message;
          failures++;
        }
      }
    } finally {
      this.#reconciling.delete(k);
    }
  }
}
