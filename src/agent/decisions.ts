// The agent's side of the policy engine: when the engine is asked (after each event, and again at the time
// its last plan asked for, one timer per function), carrying out what it returns through the agent, and the
// log of what was decided and what came of it (platform log lines, thaw:policy:decision, the last
// thousand). Imports src/core and src/policies.
import type { Clock, TimerHandle } from '../core/clock.ts';
import { publishLog, publishPolicyDecision } from '../core/events.ts';
import type { PolicyDecision, PolicyEngine } from '../policies/index.ts';

/** A policy decision as the agent took it: what the engine decided, and what came of it. */
export type TakenDecision = PolicyDecision & { readonly wallAt: number; readonly outcome: 'done' | 'skipped' };

const DECISIONS_KEPT = 1000;

/** The newest decisions (a thousand), oldest first: a node's own, or a control plane's of all its agents. */
export class DecisionLog<D extends TakenDecision = TakenDecision> {
  readonly #kept: D[] = [];

  add(d: D): void {
    this.#kept.push(d);
    if (this.#kept.length > DECISIONS_KEPT) this.#kept.splice(0, this.#kept.length - DECISIONS_KEPT);
  }

  /** The newest, oldest first; of one function when named. */
  list(fn?: string, limit = 100): D[] {
    const all = fn ? this.#kept.filter((d) => d.fn === fn) : this.#kept;
    return all.slice(-limit);
  }
}

export interface DecisionOptions {
  clock: Clock;
  engine: PolicyEngine;
  /** No plans once the agent is closing. */
  closing(): boolean;
  /** Carries out one decision; 'skipped' when there was nothing to act on. */
  apply(d: PolicyDecision): TakenDecision['outcome'];
  /** The version a function last ran, named in its log lines; none: the decision is not logged. */
  versionOf(fn: string): string | undefined;
}

export class DecisionDriver {
  readonly #o: DecisionOptions;
  /** When each function's plan should run again, and the timer for it. */
  readonly #planTimers = new Map<string, { at: number; handle: TimerHandle }>();
  readonly #decisions = new DecisionLog();

  constructor(options: DecisionOptions) { this.#o = options; }

  /** Runs the policy for one function now, carries out its decisions and books the next look. */
  plan(fn: string): void {
    if (this.#o.closing()) return;
    const now = this.#o.clock.monotonic();
    const planned = this.#planTimers.get(fn);
    if (planned && planned.at <= now) this.#planTimers.delete(fn);
    const { decisions, nextAt } = this.#o.engine.plan(fn, now);
    for (const d of decisions) this.take(d);
    const current = this.#planTimers.get(fn);
    if (Number.isFinite(nextAt) && (!current || nextAt < current.at)) {
      current?.handle.cancel();
      const handle = this.#o.clock.setTimer(() => {
        if (this.#planTimers.get(fn)?.handle === handle) this.#planTimers.delete(fn);
        this.plan(fn);
      }, nextAt - now);
      this.#planTimers.set(fn, { at: nextAt, handle });
    }
  }

  /** Carries out one decision, logs it with its reason and publishes it. */
  take(d: PolicyDecision): void { this.record(d, this.#o.apply(d)); }

  /** Keeps, publishes and logs a decision with its reason. */
  record(d: PolicyDecision, outcome: TakenDecision['outcome']): void {
    const taken: TakenDecision = { ...d, wallAt: this.#o.clock.now(), outcome };
    this.#decisions.add(taken);
    publishPolicyDecision(taken);
    const version = this.#o.versionOf(d.fn);
    if (version) publishLog({ functionName: d.fn, version, instanceId: 'instanceId' in d ? d.instanceId : 'policy', invocationId: null, stream: 'platform', at: taken.wallAt, line: `POLICY ${d.action}${'count' in d ? ` ${d.count}` : ''}: ${d.reason}${outcome === 'skipped' ? ' (skipped: nothing to act on)' : ''}` });
  }

  /** The newest decisions, oldest first; of one function when named. */
  decisions(fn?: string, limit = 100): TakenDecision[] { return this.#decisions.list(fn, limit); }

  /** A deleted function's next look is cancelled. */
  forget(fn: string): void {
    this.#planTimers.get(fn)?.handle.cancel();
    this.#planTimers.delete(fn);
  }

  /** Every next look is cancelled (shutdown). */
  cancelAll(): void {
    for (const t of this.#planTimers.values()) t.handle.cancel();
  }
}
