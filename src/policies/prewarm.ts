// Prewarm predictions: which functions to start before anyone asks. Pure.
//   call chains   A calls B through context.invoke in most of its invocations → when A starts, warm B;
//   rollouts      an alias shifts weight to a new version → warm that version in proportion.
// (Inter-arrival prediction lives in histogram.ts: the pre-warm window.)

export interface CallPrediction {
  readonly callee: string;
  readonly probability: number;
  readonly samples: number;
}

/** Learns P(B is called | A runs) from the calls the platform sees. */
export class CallGraph {
  readonly minProbability: number;
  readonly minSamples: number;
  readonly #runs = new Map<string, number>();
  readonly #edges = new Map<string, Map<string, number>>();

  constructor(minProbability = 0.5, minSamples = 3) {
    this.minProbability = minProbability;
    this.minSamples = minSamples;
  }

  /** One invocation of fn started. Counts halve past 1,000 so the graph follows changes in behaviour. */
  run(fn: string): void {
    const n = (this.#runs.get(fn) ?? 0) + 1;
    this.#runs.set(fn, n);
    if (n >= 1000) {
      this.#runs.set(fn, n / 2);
      for (const [callee, c] of this.#edges.get(fn) ?? []) this.#edges.get(fn)!.set(callee, c / 2);
    }
  }

  /** During one invocation of caller, it called callee (count each callee once per invocation). */
  call(caller: string, callee: string): void {
    const out = this.#edges.get(caller) ?? new Map<string, number>();
    out.set(callee, (out.get(callee) ?? 0) + 1);
    this.#edges.set(caller, out);
  }

  /** Everything caller calls, with its probability. */
  callees(caller: string): CallPrediction[] {
    const runs = this.#runs.get(caller) ?? 0;
    return [...(this.#edges.get(caller) ?? [])].map(([callee, c]) => ({ callee, probability: runs ? Math.min(1, c / runs) : 0, samples: runs }));
  }

  /** The callees worth warming when caller starts. */
  predict(caller: string): CallPrediction[] {
    return this.callees(caller).filter((p) => p.samples >= this.minSamples && p.probability >= this.minProbability);
  }
}

export interface RoutedVersion { readonly version: string; readonly weight: number }

/**
 * Instances to have warm per version when an alias routes `demand` instances' worth of traffic by weight:
 * each version with a positive weight gets at least one, the rest in proportion (rounded up).
 */
export function rolloutTargets(routing: readonly RoutedVersion[], demand: number): { version: string; count: number }[] {
  const d = Math.max(1, Math.ceil(demand));
  return routing.filter((r) => r.weight > 0).map((r) => ({ version: r.version, count: Math.max(1, Math.ceil(r.weight * d)) }));
}
