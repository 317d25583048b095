// Keep-alive policies: how long an idle instance stays before the agent stops it. Pure decisions over
// times passed in; no I/O, no clock reads. Imports only types.

/** What a keep-alive policy may look at for one idle instance. */
export interface IdleInstanceView {
  readonly instanceId: string;
  /** Identifies the function version (and revision) the instance belongs to. */
  readonly functionKey: string;
  /** Monotonic ms when it last became idle. */
  readonly idleSince: number;
  readonly memoryMb: number;
  readonly invocations: number;
}

export interface KeepAlivePolicy {
  readonly name: string;
  /** Monotonic ms at which this idle instance should be stopped. */
  stopAt(instance: IdleInstanceView): number;
}

/** The AWS-like baseline: every idle instance lives a fixed time after its last invocation. */
export function fixedKeepAlive(idleTimeoutMs: number): KeepAlivePolicy {
  if (!(idleTimeoutMs >= 0)) throw new RangeError(`idleTimeoutMs must be >= 0, got ${idleTimeoutMs}`);
  return { name: `fixed:${idleTimeoutMs}ms`, stopAt: (i) => i.idleSince + idleTimeoutMs };
}

export interface StopPlan {
  readonly instanceId: string;
  readonly reason: string;
}

/** Which idle instances to stop at `now`, and why. */
export function planIdleStops(idle: readonly IdleInstanceView[], now: number, policy: KeepAlivePolicy): StopPlan[] {
  return idle
    .filter((i) => policy.stopAt(i) <= now)
    .map((i) => ({ instanceId: i.instanceId, reason: `idle for ${Math.round(now - i.idleSince)} ms (keep-alive ${policy.name})` }));
}
