// Which mount points lie at or below a directory, from /proc/self/mountinfo: what the sandbox driver and the
// code cache each unmount after a run that was killed with its mounts in place. Imports node built-ins.
import { readFileSync } from 'node:fs';

/** Mount points at or below dir, deepest first (so each can be unmounted before the one it sits on). */
export function mountsUnder(dir: string): string[] {
  let text = '';
  try { text = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return []; }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4]?.replace(/\\040/g, ' ');
    if (mp && (mp === dir || mp.startsWith(dir + '/'))) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}
