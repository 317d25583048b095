// Traces for the simulator: the Azure Functions Trace 2019 format (per-minute invocation counts per
// function, duration percentiles per function, memory percentiles per app), and a seeded synthetic
// generator for tests. Imports src/core.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ThawError } from '../core/errors.ts';

export interface TraceFunction {
  readonly id: string;
  readonly app: string;
  /** Invocations in each minute of the trace. */
  readonly perMinute: Uint32Array;
  /** Execution time percentiles, ms: [p0, p1, p25, p50, p75, p99, p100]. */
  readonly durationPercentiles: readonly number[];
  /** Memory of one instance, MB (the app's average allocated memory). */
  readonly memoryMb: number;
}

export interface Trace {
  readonly name: string;
  readonly minutes: number;
  readonly functions: readonly TraceFunction[];
}

export const DURATION_POINTS = [0, 1, 25, 50, 75, 99, 100] as const;

/** Minimal CSV for these files: no quoted commas occur in them. */
function* rows(text: string): Generator<string[]> {
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t) yield t.split(',');
  }
}

function bad(message: string): never { throw new ThawError('THAW_E_TRACE_INVALID', message); }

/**
 * Reads a trace: a directory with one `<n>_inv.csv` (plus `<n>_run.csv` and `<n>_mem.csv` when present;
 * `prefix` picks among several), or an invocations CSV itself. Missing durations default to 1 s and
 * missing memory to 128 MB.
 */
export function readAzureTrace(path: string, prefix?: string): Trace {
  if (!existsSync(path)) bad(`trace ${path} does not exist`);
  let inv: string;
  let dir: string;
  let base: string;
  if (statSync(path).isDirectory()) {
    const invs = readdirSync(path).filter((f) => f.endsWith('_inv.csv') && (!prefix || f === `${prefix}_inv.csv`)).sort((a, b) => parseInt(b) - parseInt(a) || a.localeCompare(b));
    if (!invs.length) bad(`no ${prefix ?? '<n>'}_inv.csv in ${path}`);
    dir = path;
    base = invs[0].slice(0, -'_inv.csv'.length);
    inv = join(path, invs[0]);
  } else {
    inv = path;
    dir = join(path, '..');
    base = path.replace(/^.*\//, '').replace(/_inv\.csv$|\.csv$/, '');
  }
  const runFile = join(dir, `${base}_run.csv`);
  const memFile = join(dir, `${base}_mem.csv`);
  return parseAzureTrace({
    name: base,
    invocations: { label: inv, text: readFileSync(inv, 'utf8') },
    durations: existsSync(runFile) ? { label: runFile, text: readFileSync(runFile, 'utf8') } : undefined,
    memory: existsSync(memFile) ? { label: memFile, text: readFileSync(memFile, 'utf8') } : undefined,
  });
}

/** One CSV file of a trace: its text, and the name error messages give it. */
export interface TraceFile { readonly label: string; readonly text: string }

/**
 * Parses a trace from the text of its files (an upload to `POST /thaw/v1/sim`, or the files readAzureTrace
 * found): the invocations CSV, and optionally the durations (`_run`) and memory (`_mem`) CSVs.
 */
export function parseAzureTrace(files: { name: string; invocations: TraceFile; durations?: TraceFile; memory?: TraceFile }): Trace {
  const inv = files.invocations.label;
  const base = files.name;
  const invRows = rows(files.invocations.text);
  const header = invRows.next().value as string[] | undefined;
  if (!header) bad(`${inv} is empty`);
  const fnCol = header.indexOf('HashFunction');
  const appCol = header.indexOf('HashApp');
  const minuteCols = header.map((h, i) => (/^\d+$/.test(h) || /^minute_\d+$/.test(h) ? i : -1)).filter((i) => i >= 0);
  if (fnCol < 0 || appCol < 0 || minuteCols.length === 0) bad(`${inv} lacks HashFunction, HashApp or per-minute columns (1..1440 or minute_1..minute_1440)`);

  const durations = new Map<string, number[]>();
  if (files.durations) {
    const runFile = files.durations.label;
    const r = rows(files.durations.text);
    const h = r.next().value as string[] | undefined;
    if (!h) bad(`${runFile} is empty`);
    const f = h.indexOf('HashFunction');
    const cols = DURATION_POINTS.map((p) => h.indexOf(`percentile_Average_${p}`));
    if (f < 0 || cols.some((c) => c < 0)) bad(`${runFile} lacks HashFunction or percentile_Average_{0,1,25,50,75,99,100}`);
    for (const row of r) durations.set(row[f], cols.map((c) => Math.max(1, Number(row[c]) || 1)));
  }
  const memory = new Map<string, number>();
  if (files.memory) {
    const memFile = files.memory.label;
    const r = rows(files.memory.text);
    const h = r.next().value as string[] | undefined;
    if (!h) bad(`${memFile} is empty`);
    const a = h.indexOf('HashApp');
    const m = h.indexOf('AverageAllocatedMb');
    if (a < 0 || m < 0) bad(`${memFile} lacks HashApp or AverageAllocatedMb`);
    for (const row of r) memory.set(row[a], Math.max(1, Number(row[m]) || 128));
  }

  const functions: TraceFunction[] = [];
  const seen = new Map<string, number>();
  for (const row of invRows) {
    if (row.length < header.length) bad(`${inv}: a row has ${row.length} columns, the header ${header.length}`);
    const perMinute = new Uint32Array(minuteCols.length);
    minuteCols.forEach((c, i) => {
      const n = Number(row[c]);
      if (!Number.isInteger(n) || n < 0) bad(`${inv}: ${row[fnCol].slice(0, 12)}… has '${row[c]}' in column ${header[c]}, not a count`);
      perMinute[i] = n;
    });
    // The same function may appear under several triggers; ids stay unique.
    const n = seen.get(row[fnCol]) ?? 0;
    seen.set(row[fnCol], n + 1);
    functions.push({
      id: n ? `${row[fnCol]}#${n}` : row[fnCol], app: row[appCol], perMinute,
      durationPercentiles: durations.get(row[fnCol]) ?? [1000, 1000, 1000, 1000, 1000, 1000, 1000],
      memoryMb: memory.get(row[appCol]) ?? 128,
    });
  }
  if (!functions.length) bad(`${inv} has no functions`);
  return { name: base, minutes: minuteCols.length, functions };
}

/** A small seeded PRNG (mulberry32): the same seed gives the same trace and the same arrivals. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A synthetic trace with the shapes the Azure study found: timers (fixed period), steady Poisson-like
 * traffic, bursts, and rare functions invoked a few times a day.
 */
export function syntheticTrace(options: { functions: number; minutes: number; seed: number }): Trace {
  const r = rng(options.seed);
  const functions: TraceFunction[] = [];
  for (let f = 0; f < options.functions; f++) {
    const perMinute = new Uint32Array(options.minutes);
    const shape = f % 4;
    if (shape === 0) {
      const period = [1, 5, 10, 15, 30, 60][Math.floor(r() * 6)];
      const offset = Math.floor(r() * period);
      for (let m = offset; m < options.minutes; m += period) perMinute[m] = 1;
    } else if (shape === 1) {
      const rate = 0.2 + r() * 5;
      for (let m = 0; m < options.minutes; m++) perMinute[m] = Math.floor(rate + (r() - 0.5) * rate);
    } else if (shape === 2) {
      for (let m = 0; m < options.minutes; m++) if (r() < 0.02) for (let k = m; k < Math.min(options.minutes, m + 3); k++) perMinute[k] = 20 + Math.floor(r() * 40);
    } else {
      for (let k = 0; k < 3; k++) perMinute[Math.floor(r() * options.minutes)]++;
    }
    const median = 50 + r() * 2000;
    functions.push({
      id: `fn-${f}`, app: `app-${Math.floor(f / 3)}`, perMinute,
      durationPercentiles: [median * 0.2, median * 0.3, median * 0.7, median, median * 1.3, median * 3, median * 4],
      memoryMb: [128, 256, 512][Math.floor(r() * 3)],
    });
  }
  return { name: `synthetic-${options.functions}x${options.minutes}-${options.seed}`, minutes: options.minutes, functions };
}
