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

/** When an idle instance is frozen (no CPU, memory kept) before keep-alive stops it; null: never. */
export interface FreezePolicy {
  readonly name: string;
  freezeAt(instance: IdleInstanceView): number | null;
}

/** Freezes every instance a fixed delay after it went idle; a negative delay disables freezing. */
export function fixedFreezeDelay(delayMs: number): FreezePolicy {
  if (!Number.isFinite(delayMs)) throw new RangeError(`delayMs must be a number, got ${delayMs}`);
  return { name: delayMs < 0 ? 'never' : `freeze-after:${delayMs}ms`, freezeAt: (i) => (delayMs < 0 ? null : i.idleSince + delayMs) };
}

export interface IdlePlan {
  readonly instanceId: string;
  readonly action: 'freeze' | 'stop';
  readonly reason: string;
}

/**
 * What to do at `now` with each idle or frozen instance: stop it when keep-alive says so, else freeze it
 * when the freeze policy says so and it is not frozen yet.
 */
export function planIdle(idle: readonly (IdleInstanceView & { readonly frozen: boolean })[], now: number, keepAlive: KeepAlivePolicy, freeze: FreezePolicy): IdlePlan[] {
  const plan: IdlePlan[] = [];
  for (const i of idle) {
    if (keepAlive.stopAt(i) <= now) {
      plan.push({ instanceId: i.instanceId, action: 'stop', reason: `idle for ${Math.round(now - i.idleSince)} ms (keep-alive ${keepAlive.name})` });
      continue;
    }
    const at = i.frozen ? null : freeze.freezeAt(i);
    if (at !== null && at <= now) plan.push({ instanceId: i.instanceId, action: 'freeze', reason: `idle for ${Math.round(now - i.idleSince)} ms (${freeze.name})` });
  }
  return plan;
}
