// Renders an invocation's phases: a Server-Timing header for browsers and clients, and a terminal
// waterfall for `thaw trace`. Pure; imports only types.
import type { InvocationRecord } from '../core/types.ts';

/** RFC-style Server-Timing: one metric per phase that took place, plus the total. */
export function serverTiming(r: Pick<InvocationRecord, 'phases' | 'durationMs'>): string {
  const parts = r.phases.map((p) => `${p.name};dur=${p.durationMs.toFixed(3)}`);
  parts.push(`total;dur=${r.durationMs.toFixed(3)}`);
  return parts.join(', ');
}

const BAR_WIDTH = 50;

/** A phase waterfall: each phase a row, its bar placed at its offset on a shared time axis. */
export function renderWaterfall(r: InvocationRecord, color = false): string {
  const total = Math.max(r.durationMs, ...r.phases.map((p) => p.offsetMs + p.durationMs), 0.001);
  const scale = BAR_WIDTH / total;
  const paint = (s: string, code: number) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const lines = [
    `invocation ${r.id}`,
    `function   ${r.functionName}:${r.version || '-'} (asked for ${r.qualifier})  trigger ${r.trigger}`,
    `start      ${r.start ?? '-'}  outcome ${r.outcome}${r.errorType ? ` (${r.errorType})` : ''}`,
    `total ${r.durationMs.toFixed(2)} ms   init ${r.initMs.toFixed(2)} ms   handler ${r.handlerMs.toFixed(2)} ms   billed ${r.billedMs} ms`,
    '',
  ];
  for (const p of r.phases) {
    const startCol = Math.min(BAR_WIDTH - 1, Math.floor(p.offsetMs * scale));
    const width = Math.max(1, Math.round(p.durationMs * scale));
    const bar = ' '.repeat(startCol) + paint('█'.repeat(Math.min(width, BAR_WIDTH - startCol)), p.name === 'handler' ? 32 : p.name === 'init' ? 33 : 36);
    lines.push(`${p.name.padEnd(9)} ${p.durationMs.toFixed(2).padStart(9)} ms |${bar}${' '.repeat(Math.max(0, BAR_WIDTH - startCol - width))}|`);
  }
  return lines.join('\n');
}
