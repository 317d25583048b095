// Autoscaling in the manner of Knative's KPA: desired instances from the average concurrency over a stable
// window (60 s), or over a short panic window (6 s) when that is at least twice what the instances can
// carry; a short-term forecast from the trend inside the stable window; a buffer of spare instances;
// scale-in only after a cooldown and one stage at a time. Pure: concurrency changes are passed in.

export interface AutoscaleParams {
  /** Invocations one instance should carry at once (Lambda-style instances: 1). */
  readonly targetConcurrency: number;
  /** Fraction of the target to aim at, leaving headroom for bursts (Knative's default: 70 %). */
  readonly targetUtilization: number;
  readonly stableWindowMs: number;
  readonly panicWindowMs: number;
  /** Panic when the panic-window average reaches this multiple of current capacity. */
  readonly panicThreshold: number;
  /** Spare instances kept above the forecast while the function is active. */
  readonly buffer: number;
  /** Time desired must stay below current before any scale-in. */
  readonly scaleInCooldownMs: number;
  /** Fraction of the surplus removed per stage (at least one instance). */
  readonly scaleInStep: number;
  /** How far ahead the forecast looks. */
  readonly forecastMs: number;
}

export const KPA_DEFAULTS: AutoscaleParams = {
  targetConcurrency: 1, targetUtilization: 0.7, stableWindowMs: 60_000, panicWindowMs: 6_000, panicThreshold: 2, buffer: 0,
  scaleInCooldownMs: 60_000, scaleInStep: 0.5, forecastMs: 10_000,
};

export interface ScaleView {
  readonly desired: number;
  readonly mode: 'stable' | 'panic';
  readonly stableConcurrency: number;
  readonly panicConcurrency: number;
  readonly forecastConcurrency: number;
  readonly reason: string;
}

/** Concurrency of one function as a step function of time, trimmed to the stable window. */
export class ConcurrencyWindow {
  // Steps as parallel arrays: from time t[k] on, concurrency c[k]; a[k] is the area (concurrency × ms)
  // accumulated up to t[k], so a window's average is two binary searches.
  #t: number[] = [];
  #c: number[] = [];
  #a: number[] = [];
  #current = 0;
  /** When desired first dropped below the instances there were (for the cooldown); null while not below. */
  belowSince: number | null = null;
  lastScaleInAt = -Infinity;

  get current() { return this.#current; }

  change(now: number, delta: number, horizonMs: number): void {
    this.#current = Math.max(0, this.#current + delta);
    const n = this.#t.length;
    if (n && this.#t[n - 1] === now) { this.#c[n - 1] = this.#current; return; }
    const area = n ? this.#a[n - 1] + this.#c[n - 1] * (now - this.#t[n - 1]) : 0;
    this.#t.push(now); this.#c.push(this.#current); this.#a.push(area);
    // Trim what is older than twice the horizon, in batches so the cost stays amortized O(1).
    if (this.#t.length > 64 && this.#t[32] < now - 2 * horizonMs) {
      let k = 32;
      while (k + 32 < this.#t.length && this.#t[k + 32] < now - 2 * horizonMs) k += 32;
      this.#t.splice(0, k); this.#c.splice(0, k); this.#a.splice(0, k);
    }
  }

  /** Area under the step function up to time x. */
  #area(x: number): number {
    const t = this.#t;
    if (!t.length || x <= t[0]) return 0;
    let lo = 0, hi = t.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (t[mid] <= x) lo = mid; else hi = mid - 1;
    }
    return this.#a[lo] + this.#c[lo] * (x - t[lo]);
  }

  /** Time-weighted mean concurrency over [now - windowMs, now]. */
  average(now: number, windowMs: number): number {
    return windowMs > 0 ? (this.#area(now) - this.#area(now - windowMs)) / windowMs : this.#current;
  }
}

/** The desired instance count for one function now, given the instances it has. */
export function desiredInstances(w: ConcurrencyWindow, now: number, current: number, p: AutoscaleParams): ScaleView {
  const stable = w.average(now, p.stableWindowMs);
  const panic = w.average(now, p.panicWindowMs);
  const firstHalf = w.average(now - p.stableWindowMs / 2, p.stableWindowMs / 2);
  const secondHalf = w.average(now, p.stableWindowMs / 2);
  const slopePerMs = (secondHalf - firstHalf) / (p.stableWindowMs / 2);
  const forecast = Math.max(0, stable + slopePerMs * (p.stableWindowMs / 2 + p.forecastMs));
  const capacity = Math.max(1, current) * p.targetConcurrency;
  const mode = panic >= p.panicThreshold * capacity ? 'panic' : 'stable';
  const basis = mode === 'panic' ? Math.max(panic, forecast) : Math.max(stable, forecast);
  const active = w.current > 0 || stable > 0;
  const desired = Math.max(Math.ceil(basis / (p.targetConcurrency * p.targetUtilization)), w.current) + (active ? p.buffer : 0);
  return {
    desired, mode, stableConcurrency: round2(stable), panicConcurrency: round2(panic), forecastConcurrency: round2(forecast),
    reason: `${mode}: concurrency ${round2(mode === 'panic' ? panic : stable)} (forecast ${round2(forecast)}) / target ${p.targetConcurrency} × ${p.targetUtilization}${active && p.buffer ? ` + buffer ${p.buffer}` : ''}`,
  };
}

/**
 * How many idle instances to stop now (staged scale-in): none until desired has stayed below current for
 * the cooldown, then a step of the surplus, then again only after another cooldown.
 */
export function scaleIn(w: ConcurrencyWindow, now: number, current: number, desired: number, p: AutoscaleParams): number {
  if (desired >= current) { w.belowSince = null; return 0; }
  w.belowSince ??= now;
  // Compared as sums, exactly as the engine computes the time to look again (no float drift between the two).
  if (now < w.belowSince + p.scaleInCooldownMs || now < w.lastScaleInAt + p.scaleInCooldownMs) return 0;
  w.lastScaleInAt = now;
  return Math.max(1, Math.floor((current - desired) * p.scaleInStep));
}

const round2 = (x: number) => Math.round(x * 100) / 100;
