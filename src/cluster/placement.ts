// Where an invocation runs: seed 001's light scheduler as a pure function. An agent with a ready instance
// of that version (idle, else frozen, else paged: the cheapest rung of the ladder), else one that holds
// the version's snapshot decrypted (a restore, not an init) and a CPU free, else one that holds the
// package (L1: no fetch) and a CPU free, else the least loaded agent whose free memory fits the instance. Resources
// are what the agents reported (computed off the request path), with few instance sizes nothing finer
// than "fits" is needed. Imports nothing.

export type PlacementReason = 'warm' | 'frozen' | 'paged' | 'restorable' | 'cached' | 'least-loaded';
export const PLACEMENT_REASONS: readonly PlacementReason[] = ['warm', 'frozen', 'paged', 'restorable', 'cached', 'least-loaded'];

export interface Candidate {
  readonly name: string;
  /** Instances of each version key (functionKey) by the state they wait in. */
  readonly ready: ReadonlyMap<string, { readonly idle: number; readonly frozen: number; readonly paged: number }>;
  /** Packages held, by hash. */
  readonly packages: ReadonlySet<string>;
  /** Snapshots held decrypted, ready to restore, as `function@version` (absent: none). */
  readonly snapshots?: ReadonlySet<string>;
  /** Invocations running there now. */
  readonly busy: number;
  readonly cpus: number;
  readonly memoryUsedMb: number;
  readonly memoryBudgetMb: number;
}

export interface Wanted {
  /** functionKey of the version to run. */
  readonly key: string;
  readonly codeSha256: string;
  readonly memoryMb: number;
  /** `function@version`, the name of the version's snapshot (absent: it has none). */
  readonly snapshot?: string;
}

export interface Placement { agent: string; reason: PlacementReason }

const load = (c: Candidate) => c.busy / c.cpus;

/** The least loaded of some candidates (ties: most free memory, then name, so the choice is stable). */
function leastLoaded(cs: readonly Candidate[]): Candidate | null {
  let best: Candidate | null = null;
  for (const c of cs) {
    if (!best) { best = c; continue; }
    const d = load(c) - load(best) || (best.memoryUsedMb - best.memoryBudgetMb) - (c.memoryUsedMb - c.memoryBudgetMb) || c.name.localeCompare(best.name);
    if (d < 0) best = c;
  }
  return best;
}

/** Chooses an agent for an invocation; null when there is none (every agent is excluded). */
export function place(candidates: readonly Candidate[], want: Wanted, exclude: ReadonlySet<string> = new Set()): Placement | null {
  const live = candidates.filter((c) => !exclude.has(c.name));
  if (!live.length) return null;
  for (const rung of ['idle', 'frozen', 'paged'] as const) {
    const c = leastLoaded(live.filter((a) => (a.ready.get(want.key)?.[rung] ?? 0) > 0));
    if (c) return { agent: c.name, reason: rung === 'idle' ? 'warm' : rung };
  }
  const fits = live.filter((c) => c.memoryUsedMb + want.memoryMb <= c.memoryBudgetMb);
  // Locality is worth a cold start there only while the agent has a CPU free; else the load spreads.
  const free = fits.filter((c) => c.busy < c.cpus);
  const restorable = want.snapshot ? leastLoaded(free.filter((c) => c.snapshots?.has(want.snapshot!))) : null;
  if (restorable) return { agent: restorable.name, reason: 'restorable' };
  const cached = leastLoaded(free.filter((c) => c.packages.has(want.codeSha256)));
  if (cached) return { agent: cached.name, reason: 'cached' };
  // Nothing fits: the least loaded of all still takes it (its policy engine evicts to make room).
  return { agent: leastLoaded(fits.length ? fits : live)!.name, reason: 'least-loaded' };
}

/** The baseline the bench compares with: any agent, uniformly (rand in [0, 1)). */
export function placeRandomly(candidates: readonly Candidate[], rand: () => number): string | null {
  return candidates.length ? candidates[Math.floor(rand() * candidates.length)].name : null;
}
