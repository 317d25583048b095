// Policy specs: the short strings users give on the command line, in the API and in the simulator
// (`fixed:10m`, `hybrid:4h`, `gdsf:16g`, `thaw`, `thaw,buffer=1`), parsed into one typed description. Pure.
import { ThawError } from '../core/errors.ts';
import type { AutoscaleParams } from './autoscale.ts';

/** The autoscaler's knobs a `thaw` spec may set per function (`thaw,buffer=1,utilization=0.5,cooldown=2m`). */
export type ScalingOptions = Partial<Pick<AutoscaleParams, 'buffer' | 'targetUtilization' | 'scaleInCooldownMs'>>;

export type PolicySpec =
  /** Every idle instance lives a fixed time after its last invocation (AWS-like; 10 minutes). */
  | { readonly kind: 'fixed'; readonly ttlMs: number }
  /** Shahrad et al.'s hybrid histogram of idle times over `rangeMs` (ATC'20). */
  | { readonly kind: 'hybrid'; readonly rangeMs: number }
  /** FaasCache's Greedy-Dual-Size-Frequency: kept until memory runs short, then evicted by priority. */
  | { readonly kind: 'gdsf'; readonly budgetMb: number | null }
  /** Thaw's default: hybrid windows with a bounded fallback, staged scale-in, call-chain prewarm, GDSF under the budget. */
  | { readonly kind: 'thaw'; readonly rangeMs: number; readonly budgetMb: number | null; readonly scaling?: ScalingOptions };

const DEFAULT_RANGE_MS = 4 * 3600_000;
export const DEFAULT_POLICY: PolicySpec = { kind: 'thaw', rangeMs: DEFAULT_RANGE_MS, budgetMb: null };

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3600_000 };
const UNITS_MB: Record<string, number> = { m: 1, mb: 1, g: 1024, gb: 1024 };

/** `250ms`, `30s`, `10m`, `4h`, `1.5h` → milliseconds; null when malformed. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|min|h)$/.exec(text.trim());
  return m ? Math.round(Number(m[1]) * UNITS_MS[m[2]]) : null;
}

/** `512m`, `16g`, `1.5gb` → MB; null when malformed. */
export function parseSizeMb(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(m|mb|g|gb)$/i.exec(text.trim());
  return m ? Number(m[1]) * UNITS_MB[m[2].toLowerCase()] : null;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  if (ms % 3600_000 === 0 && ms > 0) return `${ms / 3600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${Math.round(ms)}ms`;
}

const formatSize = (mb: number) => (mb % 1024 === 0 ? `${mb / 1024}g` : `${mb}m`);

export function formatPolicy(p: PolicySpec): string {
  switch (p.kind) {
    case 'fixed': return `fixed:${formatDuration(p.ttlMs)}`;
    case 'hybrid': return `hybrid:${formatDuration(p.rangeMs)}`;
    case 'gdsf': return p.budgetMb === null ? 'gdsf' : `gdsf:${formatSize(p.budgetMb)}`;
    case 'thaw': return `thaw${p.rangeMs !== DEFAULT_RANGE_MS || p.budgetMb !== null ? `:${formatDuration(p.rangeMs)}` : ''}${p.budgetMb !== null ? `:${formatSize(p.budgetMb)}` : ''}${formatScaling(p.scaling)}`;
  }
}

function formatScaling(o: ScalingOptions | undefined): string {
  if (!o) return '';
  return (o.buffer !== undefined ? `,buffer=${o.buffer}` : '')
    + (o.targetUtilization !== undefined ? `,utilization=${o.targetUtilization}` : '')
    + (o.scaleInCooldownMs !== undefined ? `,cooldown=${formatDuration(o.scaleInCooldownMs)}` : '');
}

const HELP = 'use fixed:<ttl> (e.g. fixed:10m), hybrid:<range> (e.g. hybrid:4h), gdsf[:<memory budget>] (e.g. gdsf:16g) or thaw[:<range>[:<memory budget>]][,buffer=<spare instances>][,utilization=<0.1..1>][,cooldown=<scale-in cooldown>]';

function invalid(text: string, why: string): never {
  throw new ThawError('THAW_E_INVALID_POLICY', `policy '${text}' ${why}; ${HELP}`);
}

/** Parses a policy spec, or throws THAW_E_INVALID_POLICY saying what is accepted. */
export function parsePolicy(text: string): PolicySpec {
  if (typeof text !== 'string' || text.length === 0 || text.length > 100) invalid(String(text).slice(0, 100), 'is empty or too long');
  const [head, ...options] = text.trim().split(',');
  const [kind, ...args] = head.split(':');
  if (options.length && kind !== 'thaw') invalid(text, `takes no options (buffer, utilization and cooldown are the thaw policy's autoscaler's)`);
  const duration = (arg: string | undefined, what: string, min: number, max: number) => {
    const ms = arg === undefined ? null : parseDuration(arg);
    if (ms === null) invalid(text, `needs a ${what} such as 10m or 4h`);
    if (ms < min || ms > max) invalid(text, `has a ${what} outside ${formatDuration(min)}..${formatDuration(max)}`);
    return ms;
  };
  const budget = (arg: string | undefined) => {
    if (arg === undefined) return null;
    const mb = parseSizeMb(arg);
    if (mb === null || mb < 128) invalid(text, 'needs a memory budget of at least 128m, such as 16g');
    return mb;
  };
  switch (kind) {
    case 'fixed':
      if (args.length !== 1) invalid(text, 'takes exactly one time to live');
      return { kind, ttlMs: duration(args[0], 'time to live', 0, 7 * 24 * 3600_000) };
    case 'hybrid':
      if (args.length > 1) invalid(text, 'takes at most one histogram range');
      return { kind, rangeMs: args.length ? duration(args[0], 'histogram range', 10 * 60_000, 24 * 3600_000) : 4 * 3600_000 };
    case 'gdsf':
      if (args.length > 1) invalid(text, 'takes at most one memory budget');
      return { kind, budgetMb: budget(args[0]) };
    case 'thaw':
      if (args.length > 2) invalid(text, 'takes at most a range and a memory budget');
      return {
        kind, rangeMs: args.length ? duration(args[0], 'histogram range', 10 * 60_000, 24 * 3600_000) : DEFAULT_RANGE_MS, budgetMb: budget(args[1]),
        ...(options.length ? { scaling: scalingOptions(text, options) } : {}),
      };
    default:
      return invalid(text, `has an unknown kind '${kind}'`);
  }
}

/** `buffer=1`, `utilization=0.5`, `cooldown=2m`: each at most once, each in its range. */
function scalingOptions(text: string, options: readonly string[]): ScalingOptions {
  const out: { -readonly [K in keyof ScalingOptions]: ScalingOptions[K] } = {};
  for (const o of options) {
    const [key, value, extra] = o.split('=');
    if (value === undefined || extra !== undefined || value === '') invalid(text, `has an option '${o}' that is not key=value`);
    const once = (k: keyof ScalingOptions) => { if (out[k] !== undefined) invalid(text, `sets ${key} twice`); };
    switch (key) {
      case 'buffer': {
        once('buffer');
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0 || n > 100) invalid(text, `needs a buffer of 0..100 spare instances, not '${value}'`);
        out.buffer = n;
        break;
      }
      case 'utilization': {
        once('targetUtilization');
        const u = Number(value);
        if (!/^\d*\.?\d+$/.test(value) || !(u >= 0.1 && u <= 1)) invalid(text, `needs a target utilization between 0.1 and 1, not '${value}'`);
        out.targetUtilization = u;
        break;
      }
      case 'cooldown': {
        once('scaleInCooldownMs');
        const ms = parseDuration(value);
        if (ms === null || ms > 3600_000) invalid(text, `needs a scale-in cooldown such as 60s or 5m (at most 1h), not '${value}'`);
        out.scaleInCooldownMs = ms;
        break;
      }
      default:
        invalid(text, `has an unknown option '${key}' (thaw takes buffer, utilization and cooldown)`);
    }
  }
  return out;
}
