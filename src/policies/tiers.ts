// The tiers an idle instance rests in — idle, frozen, paged, or stopped — what each costs (the start its
// next arrival takes, the memory it holds meanwhile), and the rule that chooses between frozen and paged.
// Used by the PolicyEngine, so the live agent and the simulator choose alike. Pure; imports only types.
import type { StartKind } from '../core/types.ts';

/**
 * What the tiers cost, as `npm run bench` measures them: the start latency an arrival feels on each ladder
 * path (ms), and what a paged instance still holds, relative to the same instance frozen.
 */
export type TierCosts = Record<StartKind, number> & {
  /** RAM a paged instance keeps: its resident pages plus zram's compressed copy of the rest, over frozen (0..1). */
  pagedRamFraction: number;
  /** What it fills on the swap device (its pages, uncompressed), over frozen (0..1). */
  pagedSwapFraction: number;
};

/**
 * The constants for when no bench results are at hand: start costs are medians of an earlier `npm run bench`
 * for hello on this machine; the paged tier is issue 13's measurement (a 55 MB instance kept ~1 MB resident
 * and 19 MB compressed, 0.36 of its frozen RAM; hello put 0.92 of its frozen pages in swap).
 */
export const DEFAULT_TIER_COSTS: TierCosts = {
  warm: 2.9, thawed: 4.2, paged: 8.0, restored: 85.8, pooled: 14.3, cold: 69.0,
  pagedRamFraction: 0.36, pagedSwapFraction: 0.92,
};

/** The RAM an instance in this state holds, MB: a paged one its fraction, any other its full size. */
export function ramMb(state: string, memoryMb: number, costs: TierCosts): number {
  return state === 'paged' ? memoryMb * costs.pagedRamFraction : memoryMb;
}

export interface TierPlan {
  /** Idle age at which a frozen instance is paged out; Infinity: it is not. */
  readonly pageAtMs: number;
  /** Idle age at which a paged instance is stopped. */
  readonly pagedStopMs: number;
  readonly reason: string;
}

/** Not paged: stopped where the policy stops a frozen instance. */
export const noPaging = (keepAliveMs: number, reason: string): TierPlan => ({ pageAtMs: Infinity, pagedStopMs: keepAliveMs, reason });

/**
 * When to page a frozen instance out and how long to keep it paged, given the idle age `keepAliveMs` at
 * which the policy stops it frozen.
 *
 * The keep-alive window is the policy's own price of memory: holding the instance's M MB for the window is
 * what it pays to spare the next arrival a start (cold − thawed ms). At that price, frozen or paged is a
 * rent-or-buy choice one rung down the ladder: staying frozen costs (1 − f)·M more per ms than paged (f, the
 * paged RAM fraction), paging costs (paged − thawed) ms once, on the next arrival. The break-even rule
 * (ski rental: whatever the next arrival, never more than twice the cost of the choice made knowing it)
 * pages once the extra memory held frozen has cost as much as the page-out will:
 *
 *   pageAt = keepAlive · (paged − thawed) / ((cold − thawed) · (1 − f))
 *
 * A paged instance costs f·M, so the same memory buys it a longer stay: it is stopped once it has held what
 * the frozen keep-alive would have (M until pageAt, f·M after), at most `maxKeepAliveMs`.
 */
export function tierPlan(keepAliveMs: number, costs: TierCosts, maxKeepAliveMs: number): TierPlan {
  const f = costs.pagedRamFraction;
  const extra = Math.max(0, costs.paged - costs.thawed);
  const spared = costs.cold - costs.thawed;
  if (!(keepAliveMs > 0) || !Number.isFinite(keepAliveMs)) return noPaging(keepAliveMs, 'no keep-alive window to page within');
  if (!(spared > extra) || !(f < 1)) return noPaging(keepAliveMs, 'a paged resume saves nothing against a start');
  const pageAtMs = Math.ceil((keepAliveMs * extra) / (spared * (1 - f)));
  if (pageAtMs >= keepAliveMs) return noPaging(keepAliveMs, 'the window ends before paging pays');
  return {
    pageAtMs,
    pagedStopMs: pagedKeepAlive(pageAtMs, keepAliveMs, f, maxKeepAliveMs),
    reason: `${Math.round((1 - f) * 100)}% of its RAM saved for +${ms(extra)} on its next start, a start costing ${ms(spared)} more`,
  };
}

/** The idle age at which an instance paged at `pageAtMs` has held what it would have frozen for `keepAliveMs`. */
export function pagedKeepAlive(pageAtMs: number, keepAliveMs: number, pagedRamFraction: number, maxKeepAliveMs: number): number {
  if (pageAtMs >= keepAliveMs) return keepAliveMs;
  const stretched = pagedRamFraction > 0 ? pageAtMs + (keepAliveMs - pageAtMs) / pagedRamFraction : Infinity;
  return Math.max(keepAliveMs, Math.min(maxKeepAliveMs, Math.floor(stretched)));
}

const ms = (x: number) => `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;
