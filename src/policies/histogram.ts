// The hybrid histogram keep-alive of Shahrad et al. (Serverless in the Wild, USENIX ATC'20): per function,
// a histogram of idle times (1-minute bins over a range of 4 h) gives a pre-warm window (from its head
// percentile) and a keep-alive window (from its tail percentile). Pure; times are passed in.
//
// After an invocation ends, an instance is unloaded at once if the pre-warm window is positive, loaded
// again when it ends, and kept for the keep-alive window; with a zero pre-warm window it simply stays
// loaded for the keep-alive window. The parameters, and why:
//   binMs 60 000, range 4 h  the paper's: per-minute resolution matches the trace, and 4 h covers most idle
//                            times of functions that are not daily jobs.
//   head 5th, tail 99th      the paper's percentiles: pre-warm late enough to save memory, keep alive long
//                            enough to catch nearly every arrival the histogram has seen.
//   margin 10 %              the paper's: pre-warm 10 % earlier and keep alive 10 % longer than the bins say.
//   CV threshold 2           a histogram whose bin counts vary little (CV < 2) has no pattern to exploit;
//                            then the fallback keeps instances for the whole range, as the paper does.
//   out of bounds 50 %       when most idle times exceed the range, the histogram cannot place them; the
//                            paper forecasts them with ARIMA, Thaw with the mean of the last five such idle
//                            times, pre-warming 15 % before it and keeping 30 % of it (documented deviation).

export interface HybridParams {
  readonly rangeMs: number;
  readonly binMs: number;
  readonly headPercentile: number;
  readonly tailPercentile: number;
  readonly margin: number;
  readonly cvThreshold: number;
  /** Idle times needed before the histogram is trusted at all. */
  readonly minSamples: number;
  readonly oobThreshold: number;
  /** Keep-alive when the histogram is not representative (the paper: the whole range). */
  readonly fallbackKeepAliveMs: number;
}

export const PAPER_PARAMS: HybridParams = {
  rangeMs: 4 * 3600_000, binMs: 60_000, headPercentile: 5, tailPercentile: 99, margin: 0.1, cvThreshold: 2,
  minSamples: 1, oobThreshold: 0.5, fallbackKeepAliveMs: 4 * 3600_000,
};

export interface Windows {
  /** How long after the last invocation ended to wait, unloaded, before loading an instance again. */
  readonly prewarmMs: number;
  /** How long to keep it loaded after that. */
  readonly keepAliveMs: number;
  readonly mode: 'histogram' | 'fallback' | 'out-of-bounds' | 'fixed' | 'unbounded';
  readonly reason: string;
}

/** Idle times of one function, binned. */
export class IdleHistogram {
  readonly binMs: number;
  readonly bins: Uint32Array;
  count = 0;
  outOfBounds = 0;
  /** The last few idle times beyond the range, for the out-of-bounds forecast. */
  readonly recentOutOfBounds: number[] = [];

  constructor(rangeMs: number, binMs: number) {
    this.binMs = binMs;
    this.bins = new Uint32Array(Math.max(1, Math.ceil(rangeMs / binMs)));
  }

  add(idleMs: number): void {
    this.count++;
    const bin = Math.floor(Math.max(0, idleMs) / this.binMs);
    if (bin < this.bins.length) { this.bins[bin]++; return; }
    this.outOfBounds++;
    this.recentOutOfBounds.push(idleMs);
    if (this.recentOutOfBounds.length > 5) this.recentOutOfBounds.shift();
  }

  /** The bin holding the p-th percentile of in-range idle times (0-based index), or null when empty. */
  percentileBin(p: number): number | null {
    const inRange = this.count - this.outOfBounds;
    if (inRange <= 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * inRange));
    let seen = 0;
    for (let b = 0; b < this.bins.length; b++) {
      seen += this.bins[b];
      if (seen >= rank) return b;
    }
    return this.bins.length - 1;
  }

  /** Coefficient of variation of the bin counts: high when idle times cluster in a few bins. */
  cv(): number {
    const n = this.bins.length;
    let sum = 0;
    for (const c of this.bins) sum += c;
    const mean = sum / n;
    if (mean === 0) return 0;
    let sq = 0;
    for (const c of this.bins) sq += (c - mean) ** 2;
    return Math.sqrt(sq / n) / mean;
  }

  /** The non-empty bins as [minute, count] pairs, for the API. */
  nonEmpty(): [number, number][] {
    const out: [number, number][] = [];
    this.bins.forEach((c, b) => { if (c > 0) out.push([b, c]); });
    return out;
  }
}

/** The pre-warm and keep-alive windows the histogram gives now. */
export function hybridWindows(h: IdleHistogram, p: HybridParams): Windows {
  if (h.count >= Math.max(1, p.minSamples) && h.outOfBounds / h.count > p.oobThreshold && h.recentOutOfBounds.length > 0) {
    const predicted = h.recentOutOfBounds.reduce((a, b) => a + b, 0) / h.recentOutOfBounds.length;
    const prewarmMs = Math.floor(predicted * 0.85);
    return { prewarmMs, keepAliveMs: Math.ceil(predicted * 0.3), mode: 'out-of-bounds', reason: `${h.outOfBounds}/${h.count} idle times beyond the range; next predicted in ${Math.round(predicted / 60_000)} min` };
  }
  const cv = h.cv();
  if (h.count < p.minSamples || cv < p.cvThreshold) {
    return { prewarmMs: 0, keepAliveMs: p.fallbackKeepAliveMs, mode: 'fallback', reason: h.count < p.minSamples ? `${h.count} idle times seen, fewer than ${p.minSamples}` : `histogram not representative (CV ${cv.toFixed(2)} < ${p.cvThreshold})` };
  }
  const head = h.percentileBin(p.headPercentile)!;
  const tail = h.percentileBin(p.tailPercentile)!;
  const prewarmMs = Math.floor(head * p.binMs * (1 - p.margin));
  const keepAliveMs = Math.max(p.binMs, Math.ceil((tail + 1) * p.binMs * (1 + p.margin)) - prewarmMs);
  return { prewarmMs, keepAliveMs, mode: 'histogram', reason: `p${p.headPercentile} idle ${head} min, p${p.tailPercentile} ${tail + 1} min over ${h.count - h.outOfBounds} idle times (CV ${cv.toFixed(1)})` };
}
