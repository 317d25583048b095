// The platform's own log lines of a function (START, END, REPORT, instance and snapshot notes) as its
// LoggingConfig asks: Text as they are; JSON as Lambda's system log records, with the system log level
// dropping those below it; and the longest line kept. Pure; imports types of src/core.
import type { LoggingSettings } from '../core/types.ts';

const SYSTEM_LEVELS = ['DEBUG', 'INFO', 'WARN'] as const;

/** CloudWatch Logs' largest event, so Lambda's longest log line. */
export const MAX_LINE_BYTES = 256 * 1024;

/**
 * A function's output line cut to MAX_LINE_BYTES (marked with …): a sandbox may write lines of any length,
 * and the agent keeps an invocation's lines and hands them to every follower.
 */
export function capLine(line: string): string {
  if (line.length * 3 <= MAX_LINE_BYTES || Buffer.byteLength(line) <= MAX_LINE_BYTES) return line;
  // A multi-byte character cut in two decodes as one U+FFFD (3 bytes): room is left for it and the mark.
  return `${Buffer.from(line).subarray(0, MAX_LINE_BYTES - 8).toString()}…`;
}

/**
 * A platform line's level: a refusal or a failure (a THAW_E_ code, "failed", "killed", "crashed") is WARN,
 * which every system log level keeps; the rest (START, END, REPORT, instance notes) INFO.
 */
export const systemLevelOf = (line: string): (typeof SYSTEM_LEVELS)[number] =>
  /THAW_E_|\bfail(ed|ure)\b|\bkilled\b|\bcrash(ed)?\b|\bOutOfMemory\b/i.test(line) ? 'WARN' : 'INFO';

/** The line to keep, or null when the function's system log level drops it. `at` is epoch ms. */
export function platformLine(logging: LoggingSettings | undefined, line: string, at: number): string | null {
  if (logging?.format !== 'JSON') return line;
  const level = systemLevelOf(line);
  if (SYSTEM_LEVELS.indexOf(level) < SYSTEM_LEVELS.indexOf(logging.systemLogLevel)) return null;
  return JSON.stringify({ time: new Date(at).toISOString(), ...systemRecord(line, level) });
}

/** Lambda's record types for START, END and REPORT; Thaw's other notes as `platform.thaw` with their level. */
function systemRecord(line: string, level: string): { type: string; record: Record<string, unknown> } {
  const start = /^START RequestId: (\S+) Version: (\S+)$/.exec(line);
  if (start) return { type: 'platform.start', record: { requestId: start[1], version: start[2] } };
  const end = /^END RequestId: (\S+)$/.exec(line);
  if (end) return { type: 'platform.runtimeDone', record: { requestId: end[1] } };
  const report = /^REPORT RequestId: (\S+)\t(.*)$/.exec(line);
  if (report) {
    const fields = Object.fromEntries(report[2].split('\t').map((f) => /^(.+?): ([\d.]+)/.exec(f)).filter((m) => m !== null).map((m) => [m[1], Number(m[2])]));
    const metrics: Record<string, number> = {
      durationMs: fields['Duration'], billedDurationMs: fields['Billed Duration'], memorySizeMB: fields['Memory Size'],
      ...(fields['Max Memory Used'] !== undefined ? { maxMemoryUsedMB: fields['Max Memory Used'] } : {}),
      ...(fields['Init Duration'] !== undefined ? { initDurationMs: fields['Init Duration'] } : {}),
    };
    return { type: 'platform.report', record: { requestId: report[1], metrics } };
  }
  return { type: 'platform.thaw', record: { level, message: line } };
}
