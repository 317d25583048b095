// Pre-warms as the agent carries them out: each one an instance started ahead of demand, then marked and
// handed to the policy; a back-off for a function whose pre-warms keep failing; a deleted function's
// pre-warms dropped as they finish; and the set under way, for shutdown and tests to wait on. The policy
// engine decides when and how many; the agent decides how an instance starts. Imports src/core.
import type { Clock } from '../core/clock.ts';
import { asThawError } from '../core/errors.ts';
import type { FunctionVersion } from '../core/types.ts';
import type { Instance } from './instance.ts';
import type { Started } from './starts.ts';

/** Back-off after a failed pre-warm: 1 s, doubling per consecutive failure, at most a minute. */
const PREWARM_BACKOFF_MS = 1000;
const PREWARM_BACKOFF_MAX_MS = 60_000;

export interface PrewarmOptions {
  clock: Clock;
  /** Starts an instance of v ahead of demand; `record` books its init. */
  startAhead(v: FunctionVersion, qualifier: string, onInstance?: (i: Instance) => void): Promise<{ started: Started; record(): void }>;
  /** The instance is a rollout's (a new version's, for the traffic about to move to it). */
  rolloutStarted(instance: Instance): void;
  stop(instance: Instance, reason: string): void;
  /** Runs the policy for a function that has a new idle instance. */
  plan(fn: string): void;
}

export class Prewarms {
  readonly #o: PrewarmOptions;
  readonly #underWay = new Set<Promise<void>>();
  /** Per function: consecutive failed pre-warms, and until when no new one starts. */
  readonly #backoff = new Map<string, { failures: number; until: number }>();
  /** Per function, how many times it was deleted (forget): a prewarm that started before a deletion is dropped. */
  readonly #forgotten = new Map<string, number>();

  constructor(options: PrewarmOptions) { this.#o = options; }

  /**
   * Starts an instance ahead of demand; it waits idle, marked pre-warmed, for the policy to keep or stop.
   * A spare (the buffer's) is not marked: it counts as having run, for the windows. A rollout's (a new
   * version's, for the traffic about to move to it) is one a first request waits for while it starts.
   */
  start(v: FunctionVersion, qualifier: string, reason: string, spare = false, rollout = false): void {
    const epoch = this.#forgotten.get(v.functionName) ?? 0;
    const p = (async () => {
      const failed = () => {
        const n = (this.#backoff.get(v.functionName)?.failures ?? 0) + 1;
        this.#backoff.set(v.functionName, { failures: n, until: this.#o.clock.monotonic() + Math.min(PREWARM_BACKOFF_MAX_MS, PREWARM_BACKOFF_MS * 2 ** (n - 1)) });
      };
      try {
        const { started, record } = await this.#o.startAhead(v, qualifier, rollout ? (i) => this.#o.rolloutStarted(i) : undefined);
        if ('failure' in started) { failed(); return; }
        // The function was deleted while its instance started: it goes too.
        if ((this.#forgotten.get(v.functionName) ?? 0) !== epoch) { this.#o.stop(started.instance, 'function deleted during its prewarm'); return; }
        this.#backoff.delete(v.functionName);
        started.instance.prewarmed = !spare;
        record();
        this.#o.plan(v.functionName);
      } catch (err) {
        failed();
        process.stderr.write(`thaw: prewarm of ${v.functionName} (${reason}) failed: ${asThawError(err).message}\n`);
      }
    })();
    this.#underWay.add(p);
    void p.finally(() => this.#underWay.delete(p));
  }

  /**
   * Whether a function's pre-warms wait out their back-off: ones that keep failing (an init that throws)
   * wait, instead of starting a failing batch on every completion.
   */
  backingOff(fn: string): boolean {
    const backoff = this.#backoff.get(fn);
    return backoff !== undefined && this.#o.clock.monotonic() < backoff.until;
  }

  /** A new version of the function (a fix, perhaps) gets its pre-warms tried again at once. */
  retryNow(fn: string): void { this.#backoff.delete(fn); }

  /** A deleted function: pre-warms of it under way are dropped as they finish. */
  forget(fn: string): void {
    this.#forgotten.set(fn, (this.#forgotten.get(fn) ?? 0) + 1);
    this.#backoff.delete(fn);
  }

  /** Settles when every prewarm under way has finished. */
  async settled(): Promise<void> {
    while (this.#underWay.size) await Promise.allSettled([...this.#underWay]);
  }
}
