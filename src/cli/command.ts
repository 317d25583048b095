// What a CLI command is: a name, its flags (node:util parseArgs options) and a run function, plus the small
// helpers commands share for positionals, flag parsing and terminal output. Imports src/core.
import type { ParseArgsConfig } from 'node:util';
import { ThawError } from '../core/errors.ts';
import type { ThawClient } from './client.ts';

/** Where a command writes and what it reads from its surroundings; tests pass their own. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
  /** Whether stderr is a terminal (progress bars, colour). */
  tty: boolean;
  env: NodeJS.ProcessEnv;
  /** Aborts long-running commands (`logs --follow`, `up`). */
  signal: AbortSignal | undefined;
}

export interface CommandArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  client: ThawClient;
  io: Io;
}

export interface Command {
  readonly name: string;
  readonly usage: string;
  readonly summary: string;
  readonly help?: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  run(args: CommandArgs): Promise<number | void>;
}

/** Exactly the positionals a command takes, or a usage error naming what is missing or extra. */
export function positionals(args: CommandArgs, names: string[], usage: string): string[] {
  if (args.positionals.length < names.length) {
    throw new ThawError('THAW_E_CLI_USAGE', `missing ${names.slice(args.positionals.length).join(' and ')}\nusage: thaw ${usage}`);
  }
  if (args.positionals.length > names.length) {
    throw new ThawError('THAW_E_CLI_USAGE', `unexpected argument ${JSON.stringify(args.positionals[names.length])}\nusage: thaw ${usage}`);
  }
  return args.positionals;
}

export function str(args: CommandArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function list(args: CommandArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

/** A positive number flag (e.g. --memory 256), or undefined when absent. */
export function num(args: CommandArgs, name: string, unit = ''): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || v.trim() === '') throw new ThawError('THAW_E_CLI_USAGE', `--${name} must be a number${unit ? ` of ${unit}` : ''}, got ${JSON.stringify(v)}`);
  return n;
}

/** A terminal progress line on a TTY; on a pipe, one line at the start and one at the end. */
export function progress(io: Io, label: string) {
  let last = -1;
  return (done: number, total: number) => {
    const pct = total ? Math.floor((done / total) * 100) : 100;
    if (pct === last) return;
    if (io.tty) {
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      io.err(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct.toString().padStart(3)}% ${mb(done)}/${mb(total)}`);
      if (done >= total) io.err('\n');
    } else if (last === -1 || done >= total) {
      io.err(`${label} ${pct}% ${mb(done)}/${mb(total)}\n`);
    }
    last = pct;
  };
}

export const mb = (bytes: number) => (bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`);

/** Left-aligned columns with a header row. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
