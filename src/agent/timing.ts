// Time in the agent: the phase spans of an invocation, deadlines raced on the injected clock, and the last
// few samples of a duration per version (what the ladder estimates from). Imports src/core.
import type { Clock } from '../core/clock.ts';
import { ThawError } from '../core/errors.ts';
import type { PhaseName, PhaseSpan } from '../core/types.ts';

export const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** Collects phase spans as offsets from the moment the invocation arrived. */
export class Phases {
  readonly spans: PhaseSpan[] = [];
  #t0: number;
  constructor(t0: number) { this.#t0 = t0; }
  add(name: PhaseName, start: number, end: number) {
    this.spans.push({ name, offsetMs: round(start - this.#t0), durationMs: round(end - start) });
  }
  duration(name: PhaseName) { return this.spans.find((s) => s.name === name)?.durationMs ?? 0; }
}

/** Races a promise against a deadline on the injected clock; on timeout runs onTimeout and rejects. */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void, clock: Clock, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimer(() => { onTimeout(); reject(new ThawError('THAW_E_FUNCTION_TIMEOUT', message)); }, ms);
    p.then((v) => { timer.cancel(); resolve(v); }, (e) => { timer.cancel(); reject(e); });
  });
}

/** The last few samples of a duration per version, for the ladder's estimates. */
export class Samples {
  readonly #by = new Map<string, number[]>();

  add(key: string, ms: number): void {
    const xs = this.#by.get(key) ?? [];
    xs.push(ms);
    if (xs.length > 9) xs.shift();
    this.#by.set(key, xs);
  }

  /** How many samples are kept for key (at most 9). */
  count(key: string): number { return this.#by.get(key)?.length ?? 0; }

  median(key: string): number | null {
    const xs = this.#by.get(key);
    if (!xs?.length) return null;
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  }
}
