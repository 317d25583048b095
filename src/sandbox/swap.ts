// Swap for the paged tier: whether this host has any, and a zram swap device set up on request
// (`thaw up --zram SIZE`) and released on stop. Thaw never touches the host's swap otherwise.
// Imports node built-ins and src/core.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { ThawError } from '../core/errors.ts';

export interface SwapInfo {
  /** Active swap areas (from /proc/swaps). */
  devices: { name: string; sizeBytes: number; usedBytes: number }[];
  /** The zram device Thaw set up, with its compression figures, if any. */
  zram: { device: string; origBytes: number; comprBytes: number; memUsedBytes: number } | null;
}

export function swapDevices(): SwapInfo['devices'] {
  let text = '';
  try { text = readFileSync('/proc/swaps', 'utf8'); } catch { return []; }
  return text.split('\n').slice(1).filter(Boolean).map((l) => {
    const [name, , size, used] = l.split(/\s+/);
    return { name, sizeBytes: Number(size) * 1024, usedBytes: Number(used) * 1024 };
  });
}

/** zram's own accounting: data stored, its compressed size, and the memory the device uses. */
export function zramStats(device: string): SwapInfo['zram'] {
  const name = device.replace(/^\/dev\//, '');
  try {
    const [orig, compr, used] = readFileSync(`/sys/block/${name}/mm_stat`, 'utf8').trim().split(/\s+/).map(Number);
    return { device, origBytes: orig, comprBytes: compr, memUsedBytes: used };
  } catch { return null; }
}

const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`);
};

/**
 * Makes an unused zram device of `bytes` a swap area (lzo-rle, high priority) and returns how to undo it.
 * Refuses (THAW_E_ZRAM_UNAVAILABLE, with the reason) when not root, without a free zram device, or when
 * the tools are missing; changes nothing then.
 */
export function enableZramSwap(bytes: number, marker?: string): { device: string; release(): void } {
  const fail = (why: string) => new ThawError('THAW_E_ZRAM_UNAVAILABLE', `--zram: ${why}`);
  if (process.getuid?.() !== 0) throw fail('setting up a zram swap device needs root');
  let dev: string | null = null;
  for (let i = 0; i < 16 && !dev; i++) {
    const sys = `/sys/block/zram${i}`;
    if (!existsSync(sys)) break;
    const size = Number(readFileSync(`${sys}/disksize`, 'utf8'));
    if (size === 0 && !swapDevices().some((d) => d.name === `/dev/zram${i}`)) dev = `zram${i}`;
  }
  if (!dev) throw fail(existsSync('/sys/block/zram0') ? 'every zram device is in use (see zramctl)' : 'no zram device: load the module (modprobe zram) or give the host swap of its own');
  const sys = `/sys/block/${dev}`;
  try {
    try { writeFileSync(`${sys}/comp_algorithm`, 'lzo-rle'); } catch { /* keep the kernel's default */ }
    writeFileSync(`${sys}/disksize`, String(bytes));
    run('mkswap', [`/dev/${dev}`]);
    run('swapon', ['-p', '100', `/dev/${dev}`]);
  } catch (err) {
    try { writeFileSync(`${sys}/reset`, '1'); } catch { /* as it was */ }
    throw fail((err as Error).message);
  }
  // Written down, so that a run killed before it could release the device has it released by the next.
  if (marker) writeFileSync(marker, `/dev/${dev}\n`);
  let released = false;
  return {
    device: `/dev/${dev}`,
    release() {
      if (released) return;
      released = true;
      releaseZram(dev);
      if (marker) rmSync(marker, { force: true });
    },
  };
}

function releaseZram(dev: string) {
  try { run('swapoff', [`/dev/${dev}`]); } catch { /* in use: the kernel keeps it until its pages are gone */ }
  try { writeFileSync(`/sys/block/${dev}/reset`, '1'); } catch { /* busy */ }
}

/** Releases the zram device a killed earlier run set up (named in `marker`); returns it, or null. */
export function releaseLeftoverZram(marker: string): string | null {
  let device = '';
  try { device = readFileSync(marker, 'utf8').trim(); } catch { return null; }
  const dev = /^\/dev\/(zram\d+)$/.exec(device)?.[1];
  if (dev) releaseZram(dev);
  rmSync(marker, { force: true });
  return dev ? device : null;
}
