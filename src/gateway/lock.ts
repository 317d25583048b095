// One data dir, one server: `DATA/thaw.lock` names the process that serves it (pid and the kernel's start
// time of that pid, so a reused pid is not mistaken for it). A second `thaw up` on the same data dir is
// refused before it opens the store, consumes events or starts instances. Imports src/core and node built-ins.
import { openSync, readFileSync, renameSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { ThawError } from '../core/errors.ts';

interface Owner { pid: number; startTime: string }

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot (null where unknown). */
function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const me = (): Owner => ({ pid: process.pid, startTime: startTimeOf(process.pid) ?? 'unknown' });

function alive(o: Owner): boolean {
  try { process.kill(o.pid, 0); } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
  const start = startTimeOf(o.pid);
  return start === null || start === o.startTime;
}

/** Takes the data dir for this process; throws THAW_E_DATA_DIR_IN_USE when a live server holds it. */
export function lockDataDir(dataDir: string): { release(): void } {
  const path = join(dataDir, 'thaw.lock');
  const mine = me();
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, JSON.stringify(mine));
      closeSync(fd);
      return {
        release() {
          try {
            const o = JSON.parse(readFileSync(path, 'utf8')) as Owner;
            if (o.pid === mine.pid && o.startTime === mine.startTime) unlinkSync(path);
          } catch { /* already gone */ }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: Owner | null = null;
    try { owner = JSON.parse(readFileSync(path, 'utf8')) as Owner; } catch { /* half-written or gone: treat as stale */ }
    if (owner && owner.pid !== mine.pid && alive(owner)) {
      throw new ThawError('THAW_E_DATA_DIR_IN_USE', `the data dir ${dataDir} is served by another Thaw (pid ${owner.pid}); stop it first, or give this one its own --data`);
    }
    // Stale: its process is gone. Replace it by rename, so two starters cannot both remove a fresh one.
    const stale = `${path}.stale-${process.pid}`;
    try { renameSync(path, stale); unlinkSync(stale); } catch { /* someone else cleared it */ }
  }
  throw new ThawError('THAW_E_DATA_DIR_IN_USE', `could not take the lock ${path}; another Thaw is starting on the same data dir`);
}
