// The simulator's tier costs from the latest `npm run bench` (bench/out/results.json): each path's start
// cost from the ladder (hello, the namespaces driver where measured), the paged start and the paged tier's
// memory from the paged bench. A figure the results lack falls back to its constant, and the answer says
// which, so nobody reads a simulation on stale constants without being told. Imports src/policies.
import { existsSync, readFileSync } from 'node:fs';
import { DEFAULT_TIER_COSTS, type TierCosts } from '../policies/index.ts';

export interface BenchCosts {
  readonly costs: TierCosts;
  /** The figures taken from the bench results, and those left at their constants. */
  readonly measured: readonly (keyof TierCosts)[];
  readonly constants: readonly (keyof TierCosts)[];
  /** When the bench ran (its machine.date), if it says. */
  readonly date: string | null;
}

const LADDER_PATHS = ['warm', 'thawed', 'restored', 'pooled', 'cold'] as const;

type Obj = Record<string, unknown>;
const obj = (x: unknown): Obj | null => (x !== null && typeof x === 'object' ? (x as Obj) : null);
const pos = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : null);
const fraction = (x: number | null) => (x !== null && x > 0 && x <= 1 ? x : null);

/**
 * Costs from a bench's parts: `ladder` (bench/ladder.ts's LadderResults of one driver) and `paged`
 * (bench/paged.ts's PagedResults). The paged RAM fraction is the instance's paged RAM (resident plus what
 * zram's compressed store grew by across its page-out) over its frozen resident memory; results from before
 * that was recorded give it from the instance's swapped bytes at the device's compression ratio.
 */
export function benchCosts(parts: { ladder?: unknown; paged?: unknown }, date: string | null = null): BenchCosts {
  const costs: TierCosts = { ...DEFAULT_TIER_COSTS };
  const measured: (keyof TierCosts)[] = [];
  const take = (k: keyof TierCosts, v: number | null) => { if (v !== null) { costs[k] = v; measured.push(k); } };
  const hello = obj(obj(obj(parts.ladder)?.functions)?.hello);
  for (const p of LADDER_PATHS) take(p, pos(obj(hello?.[p])?.p50));
  const paged = obj(parts.paged);
  const h = obj(obj(paged?.functions)?.hello);
  if (h) {
    take('paged', pos(h.paged));
    const frozen = pos(h.frozenResidentBytes);
    if (frozen !== null && pos(h.pagedRamBytes) !== null) {
      take('pagedRamFraction', fraction(pos(h.pagedRamBytes)! / frozen));
      take('pagedSwapFraction', fraction((pos(h.pagedSwappedBytes) ?? 0) / frozen));
    } else {
      const frozenMb = pos(h.frozenResidentMb), swappedMb = pos(h.swappedMb), residentMb = typeof h.pagedResidentMb === 'number' ? h.pagedResidentMb : null;
      const zram = obj(paged?.zram);
      const ratio = zram && pos(zram.origMb) !== null && pos(zram.comprMb) !== null ? pos(zram.comprMb)! / pos(zram.origMb)! : null;
      if (frozenMb !== null && swappedMb !== null && residentMb !== null && ratio !== null) {
        take('pagedRamFraction', fraction((residentMb + swappedMb * ratio) / frozenMb));
        take('pagedSwapFraction', fraction(swappedMb / frozenMb));
      }
    }
  }
  const constants = (Object.keys(DEFAULT_TIER_COSTS) as (keyof TierCosts)[]).filter((k) => !measured.includes(k));
  return { costs, measured, constants, date };
}

/** Costs from a bench results file (bench/run.ts's results.json); null when there is no such file. */
export function readBenchCosts(file: string): BenchCosts | null {
  if (!existsSync(file)) return null;
  const r = obj(JSON.parse(readFileSync(file, 'utf8')));
  const ladders = obj(r?.ladders);
  return benchCosts({ ladder: ladders?.namespaces ?? ladders?.process, paged: r?.paged }, typeof obj(r?.machine)?.date === 'string' ? obj(r?.machine)!.date as string : null);
}

/** One line saying where the costs came from. */
export function describeCosts(b: BenchCosts | null, source: string): string {
  const label: Partial<Record<keyof TierCosts, string>> = { pagedRamFraction: 'paged RAM', pagedSwapFraction: 'paged swap' };
  const f = (k: keyof TierCosts) => { const v = (b?.costs ?? DEFAULT_TIER_COSTS)[k]; return label[k] ? `${label[k]} ${v.toFixed(2)}× frozen` : `${k} ${v.toFixed(1)} ms`; };
  const all = Object.keys(DEFAULT_TIER_COSTS) as (keyof TierCosts)[];
  if (!b) return `tier costs: no bench results at ${source} (run npm run bench): the constants ${all.map(f).join(', ')}`;
  const when = b.date ? ` of ${b.date}` : '';
  if (!b.measured.length) return `tier costs: ${source}${when} has no ladder or paged figures: the constants ${all.map(f).join(', ')}`;
  return `tier costs from ${source}${when}: ${b.measured.map(f).join(', ')}${b.constants.length ? `; constants (not in the results) ${b.constants.map(f).join(', ')}` : ''}`;
}
