// Greedy-Dual-Size-Frequency keep-alive (Fuerst & Sharma, FaasCache, ASPLOS'21): instances stay loaded
// until memory runs short; then the idle instance of lowest priority goes first, where
//   priority = clock + frequency × cost / size
// frequency: invocations of the function seen (FaasCache counts only while it has instances loaded and
// starts again after; here the count is never reset); cost: its cold-start (init) time; size: its memory. The clock rises to the priority of each evicted instance, so functions that have not
// been used for a while age out. Pure.

export interface GdsfCandidate {
  readonly instanceId: string;
  readonly fn: string;
  readonly memoryMb: number;
}

export class GreedyDual {
  clock = 0;
  readonly #freq = new Map<string, number>();
  readonly #priority = new Map<string, number>();

  /** An invocation of fn: frequency up, priority refreshed against the current clock. */
  touch(fn: string, costMs: number, memoryMb: number): number {
    const f = (this.#freq.get(fn) ?? 0) + 1;
    this.#freq.set(fn, f);
    const p = this.clock + (f * Math.max(1, costMs)) / Math.max(1, memoryMb);
    this.#priority.set(fn, p);
    return p;
  }

  priority(fn: string): number { return this.#priority.get(fn) ?? this.clock; }

  /**
   * Which idle instances to evict so that `neededMb` more fits in `budgetMb` when `usedMb` is in use:
   * lowest priority first (ties: the given order); advances the clock. Empty when it already fits.
   */
  evict(candidates: readonly GdsfCandidate[], usedMb: number, neededMb: number, budgetMb: number): GdsfCandidate[] {
    let over = usedMb + neededMb - budgetMb;
    if (over <= 0) return [];
    const order = candidates.map((c, i) => ({ c, i, p: this.priority(c.fn) })).sort((a, b) => a.p - b.p || a.i - b.i);
    const out: GdsfCandidate[] = [];
    for (const { c, p } of order) {
      if (over <= 0) break;
      out.push(c);
      over -= c.memoryMb;
      this.clock = Math.max(this.clock, p);
    }
    return out;
  }
}
