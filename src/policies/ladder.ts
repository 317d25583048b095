// The ladder decision: given the instances of one function version, which path an invocation takes.
// Pure; the agent applies the answer. Imports only types.

export interface InstanceCandidate {
  readonly instanceId: string;
  readonly state: 'starting' | 'initializing' | 'idle' | 'busy' | 'stopping' | 'gone';
  readonly inFlight: number;
  readonly capacity: number;
  /** Monotonic ms of its last use; the most recently used is preferred so the rest can age out. */
  readonly lastUsedAt: number;
}

export type LadderDecision =
  | { readonly path: 'warm'; readonly instanceId: string }
  | { readonly path: 'cold' };

/**
 * Prefers an instance that has spare capacity, most recently used first (so keep-alive can retire the
 * others); with none, a cold start.
 */
export function pickInstance(instances: readonly InstanceCandidate[]): LadderDecision {
  let best: InstanceCandidate | null = null;
  for (const c of instances) {
    const usable = (c.state === 'idle' || c.state === 'busy') && c.inFlight < c.capacity;
    if (usable && (!best || c.lastUsedAt > best.lastUsedAt)) best = c;
  }
  return best ? { path: 'warm', instanceId: best.instanceId } : { path: 'cold' };
}
