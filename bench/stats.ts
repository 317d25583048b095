// Order statistics for the bench: linear-interpolated quantiles (NaN for no samples), one definition for
// every figure the bench prints.
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
}

export const median = (xs: readonly number[]) => quantile(xs, 0.5);

/** Median and 90th percentile. */
export const dist = (xs: readonly number[]) => ({ p50: median(xs), p90: quantile(xs, 0.9) });
