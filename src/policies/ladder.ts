// The ladder decision: given the instances of one function version, the node's pool of generic runtimes
// and the version's snapshot, which path an invocation takes. Pure; the agent applies the answer.
// Imports only types.
import type { InstanceState, StartKind } from '../core/types.ts';

export interface InstanceCandidate {
  readonly instanceId: string;
  readonly state: InstanceState;
  readonly inFlight: number;
  readonly capacity: number;
  /** Monotonic ms of its last use; the most recently used is preferred so the rest can age out. */
  readonly lastUsedAt: number;
  /** Reserved (provisioned) instances are used before on-demand ones. */
  readonly reserved?: boolean;
}

export interface LadderInputs {
  readonly instances: readonly InstanceCandidate[];
  /** Started, not yet specialized runtimes of the version's kind and memory size, ready now. */
  readonly pooledRuntimes: number;
  /** Whether a snapshot of this version (user init already run) is ready on this node. */
  readonly snapshotReady: boolean;
  /**
   * What the version's user init costs when run (learned, ms) and what a restore from its snapshot costs;
   * null when not known yet. A pooled runtime still runs init; a restore does not, but starts a process.
   */
  readonly expectedInitMs: number | null;
  readonly expectedRestoreMs: number | null;
  /**
   * What starting a runtime from nothing costs (learned, ms), before init. With it, a cold start is known
   * to cost about boot + init, and a restore measured slower than that is not taken: the ladder is never
   * slower than a plain cold start (a V8 snapshot restore is deserialization, which for data-heavy heaps
   * costs more than the init it replaces).
   */
  readonly expectedBootMs?: number | null;
}

export type LadderDecision =
  | { readonly path: 'warm'; readonly instanceId: string; readonly reason: string }
  | { readonly path: 'thawed' | 'paged'; readonly instanceId: string; readonly reason: string }
  | { readonly path: 'restored' | 'pooled' | 'cold'; readonly reason: string };

/** The same order as START_KINDS: each rung is taken only when every faster one is unavailable. */
export function decideLadder(inputs: LadderInputs): LadderDecision {
  const warm = mostRecent(inputs.instances.filter((c) => (c.state === 'idle' || c.state === 'busy') && c.inFlight < c.capacity));
  if (warm) return { path: 'warm', instanceId: warm.instanceId, reason: warm.reserved ? 'reserved instance with spare capacity' : 'instance with spare capacity' };
  const frozen = mostRecent(inputs.instances.filter((c) => c.state === 'frozen'));
  if (frozen) return { path: 'thawed', instanceId: frozen.instanceId, reason: 'frozen instance' };
  const paged = mostRecent(inputs.instances.filter((c) => c.state === 'paged'));
  if (paged) return { path: 'paged', instanceId: paged.instanceId, reason: 'paged-out instance' };
  if (inputs.snapshotReady && inputs.pooledRuntimes > 0) {
    // Both are available: a pooled runtime pays user init, a restore pays a process start from the
    // snapshot. Take the pool unless init is known to cost more than a restore.
    const { expectedInitMs: init, expectedRestoreMs: restore } = inputs;
    if (init !== null && (restore === null ? init > 50 : init > restore)) return { path: 'restored', reason: `init (${Math.round(init)} ms) costs more than a restore` };
    return { path: 'pooled', reason: init === null ? 'init cost unknown: pooled runtime' : `init (${Math.round(init)} ms) is cheaper than a restore` };
  }
  if (inputs.snapshotReady) {
    const { expectedInitMs: init, expectedRestoreMs: restore, expectedBootMs: boot = null } = inputs;
    if (init !== null && restore !== null && boot !== null && restore >= boot + init) {
      return { path: 'cold', reason: `a restore (${Math.round(restore)} ms) measured no faster than a cold start (${Math.round(boot)} ms boot + ${Math.round(init)} ms init)` };
    }
    return { path: 'restored', reason: 'snapshot ready, no pooled runtime' };
  }
  if (inputs.pooledRuntimes > 0) return { path: 'pooled', reason: 'pooled runtime available' };
  return { path: 'cold', reason: 'no instance, no pooled runtime, no snapshot' };
}

/** Reserved instances first, then the most recently used. */
function mostRecent(cs: readonly InstanceCandidate[]): InstanceCandidate | null {
  let best: InstanceCandidate | null = null;
  for (const c of cs) {
    if (!best || (c.reserved ?? false) > (best.reserved ?? false)
      || ((c.reserved ?? false) === (best.reserved ?? false) && c.lastUsedAt > best.lastUsedAt)) best = c;
  }
  return best;
}
