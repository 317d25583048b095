// The rungs below warm that an idle instance rests on, as the agent carries them out: freeze (the process
// stopped, memory kept), page out (frozen, its memory pushed to swap) and thaw (back to idle for an
// invocation, pages coming back on demand). The policy engine decides when; this only does it, and keeps
// whether this node can page at all. Imports src/core, sandbox types and the instance.
import type { Clock } from '../core/clock.ts';
import type { PageOut } from '../sandbox/index.ts';
import type { Instance } from './instance.ts';
import { withTimeout } from './timing.ts';

export interface TierOptions {
  clock: Clock;
  /** Whether instances can be paged out here now (swap, a memory cgroup); absent: never. */
  canPage?(): boolean;
  /** A line in the instance's function log. */
  log(instance: Instance, line: string): void;
  /** Stops an instance found dead. */
  stop(instance: Instance, reason: string): void;
  /** A page-out done: what the instance held before, what stayed resident, what went to swap. */
  onPaged?(r: PageOut): void;
}

const mb = (bytes: number | null) => (bytes === null ? '? MB' : `${(bytes / 1048576).toFixed(1)} MB`);

export class IdleTiers {
  readonly #o: TierOptions;
  #paging: boolean;

  constructor(options: TierOptions) {
    this.#o = options;
    this.#paging = options.canPage?.() ?? false;
  }

  /** Whether the paged tier is on: what the policy engine is told. */
  get paging(): boolean { return this.#paging; }

  /** Asks again whether this node can page (swap may have been set up or removed since). */
  checkPaging(): boolean {
    this.#paging = this.#o.canPage?.() ?? false;
    return this.#paging;
  }

  /** Shrinks the heap, then stops the process: no CPU while idle, memory kept, resumed by thaw(). */
  freeze(instance: Instance, reason: string): void {
    if (instance.state !== 'idle') return;
    instance.transition('frozen', reason);
    instance.freezing = (async () => {
      try {
        await withTimeout(instance.conn.prepareFreeze(), 1000, () => {}, this.#o.clock, 'the runtime did not prepare for freezing in time');
      } catch { /* freeze anyway: a stopped process is what matters */ }
      // Thawed (or stopped) meanwhile: leave it running. Paged already (both decided at once): freeze it first.
      if (instance.state !== 'frozen' && instance.state !== 'paged') return;
      await instance.conn.sandbox.freeze();
      instance.frozenRssBytes = instance.conn.sandbox.rssBytes();
    })();
  }

  /**
   * The paged tier: a frozen instance's memory is pushed out to swap (compressed, with zram); it stays
   * frozen and comes back on demand, its pages faulted in as they are touched. False when there is nothing
   * to page (not frozen, or the tier is off). A page-out the sandbox cannot do leaves it frozen and turns
   * the tier off until it is checked again.
   */
  pageOut(instance: Instance, reason: string): boolean {
    if (instance.state !== 'frozen' || !this.#paging) return false;
    instance.transition('paged', reason);
    instance.paging = (async () => {
      await instance.freezing?.catch(() => {});
      if (instance.state !== 'paged') return;
      const r = await instance.conn.sandbox.pageOut().catch(() => null);
      if (instance.state !== 'paged') return;
      if (!r) {
        this.#paging = false;
        instance.transition('frozen', 'could not page out (no swap, or no memory cgroup): the paged tier is off until swap is found again');
        return;
      }
      instance.paged = r;
      this.#o.onPaged?.(r);
      this.#o.log(instance, `instance ${instance.id} paged out: ${mb(r.beforeBytes)} private resident before, ${mb(r.residentBytes)} after, ${mb(r.swappedBytes)} in swap`);
    })();
    return true;
  }

  /**
   * Resumes a frozen or paged instance, holding one slot of it for the caller (who gives it back); false
   * when it died while frozen (the caller walks the ladder again).
   */
  async thaw(instance: Instance): Promise<boolean> {
    // Claimed while it wakes: an idle instance with a free slot would otherwise be taken by another invocation.
    instance.inFlight++;
    if (instance.state !== 'frozen' && instance.state !== 'paged') return false;
    const { freezing, paging } = instance;
    instance.transition('idle', instance.state === 'paged' ? 'thawed from the paged tier for an invocation' : 'thawed for an invocation');
    instance.frozenRssBytes = null;
    instance.paged = null;
    await freezing?.catch(() => {});
    await paging?.catch(() => {});
    // Alive means it answers: a process killed while frozen can look runnable for a moment before it dies.
    if (await instance.conn.sandbox.thaw()) {
      const answered = await withTimeout(instance.conn.ping(), 2000, () => instance.conn.sandbox.kill('did not answer after a thaw'), this.#o.clock, 'no answer after a thaw').catch(() => false);
      if (answered) return true;
    }
    this.#o.log(instance, `instance ${instance.id} was found dead when thawed`);
    this.#o.stop(instance, 'died while frozen');
    return false;
  }
}
