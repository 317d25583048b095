// The paged tier in `npm run bench` (namespaces driver and a free zram device; the server sets up the
// device with `zramMb` and releases it): for hello and heavy-init, per fresh version, the first request
// after a freeze (thawed), after a page-out (paged) and the next one (warm), in the same run; and what an
// instance holds in RAM per tier: idle, frozen, and paged (resident plus its part of zram's compressed
// pages), with what its swap holds.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipDirectory } from '../src/codestore/index.ts';
import { median } from './stats.ts';

type Req = (url: string, method?: string, body?: string) => Promise<{ status: number; headers: Record<string, unknown>; body: string }>;
/**
 * Per function, medians over its versions. Memory is the instance's private (anonymous) resident memory
 * from its memory cgroup, all its processes: idle (after its first request), frozen (just before the
 * page-out) and paged (just after). pagedCompressedBytes is what zram's compressed store (compr_data_size)
 * grew by across the instance's page-out (nothing else pages out meanwhile), pagedRamBytes = paged resident
 * + compressed: what a paged instance costs in RAM. Paged RAM fraction = pagedRamBytes / frozenResidentBytes.
 */
export interface PagedFunction {
  thawed: number; paged: number; warm: number; frozenResidentMb: number; pagedResidentMb: number; swappedMb: number; n: number;
  warmIdleResidentBytes: number; frozenResidentBytes: number; pagedResidentBytes: number; pagedCompressedBytes: number; pagedSwappedBytes: number; pagedRamBytes: number;
}
export interface PagedResults {
  functions: Record<string, PagedFunction>;
  zram: { origMb: number; comprMb: number; memUsedMb: number } | null;
}

/** Private resident bytes of the memory cgroup a process is in (v1 total_rss, v2 anon), or null. */
function cgroupAnonBytes(pid: number): number | null {
  try {
    const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').map((l) => l.split(':'));
    const v1 = lines.find((l) => l[1].split(',').includes('memory'));
    const [file, field] = v1 ? [`/sys/fs/cgroup/memory${v1[2]}/memory.stat`, 'total_rss'] : [`/sys/fs/cgroup${lines.find((l) => l[0] === '0')?.[2]}/memory.stat`, 'anon'];
    const m = new RegExp(`^${field} (\\d+)$`, 'm').exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}


/** Why the paged figures cannot be measured here, or null. */
export function pagedSkip(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (zram)';
  const free = [0, 1, 2, 3].some((i) => existsSync(`/sys/block/zram${i}`) && readFileSync(`/sys/block/zram${i}/disksize`, 'utf8').trim() === '0');
  return free ? null : 'no free zram device (modprobe zram)';
}

export async function pagedBench(o: { root: string; runs: number; request: Req; progress(s: string): void; done(s: string): void }): Promise<PagedResults> {
  const dataDir = await mkdtemp(join(tmpdir(), 'thaw-bench-paged-'));
  const cacheDir = await mkdtemp('/dev/shm/thaw-bench-paged-');
  const child = spawn(process.execPath, [join(o.root, 'bench', 'server.ts'), dataDir, cacheDir, JSON.stringify({ sandbox: 'namespaces', zramMb: 2048, freezeAfterMs: 300, pageAfterMs: 500, snapshots: false, policy: 'fixed:10m' })], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      child.stdout!.on('data', (d) => { buf += d; const m = /THAW_URL (\S+)/.exec(buf); if (m) resolve(m[1]); });
      child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
    const api = async (path: string, method = 'GET', body?: unknown) => {
      const r = await o.request(`${url}${path}`, method, body === undefined ? '' : JSON.stringify(body));
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
      return r.body ? JSON.parse(r.body) : null;
    };
    const until = async <T>(what: string, check: () => Promise<T | null | undefined | false>) => {
      for (let i = 0; i < 600; i++) { const v = await check(); if (v) return v; await new Promise((r) => setTimeout(r, 50)); }
      throw new Error(`paged bench: timed out waiting for ${what}`);
    };
    const zram = async () => {
      const z = (await api('/thaw/v1/node')).pagedTier.zram as { comprBytes: number } | null;
      if (!z) throw new Error('paged bench: the server reports no zram device');
      return z;
    };
    const out: PagedResults['functions'] = {};
    for (const fn of ['hello', 'heavy-init']) {
      await api('/2015-03-31/functions', 'POST', { FunctionName: fn, Runtime: 'nodejs24', Handler: 'index.handler', MemorySize: 512, Timeout: 30, Code: { ZipFile: (await zipDirectory(join(o.root, 'examples', fn))).toString('base64') } });
      const got = { thawed: [] as number[], paged: [] as number[], warm: [] as number[], idle: [] as number[], frozen: [] as number[], pagedRes: [] as number[], swapped: [] as number[], compressed: [] as number[], ram: [] as number[] };
      for (let i = 0; i < o.runs; i++) {
        o.progress(`paged tier ${fn} ${i + 1}/${o.runs}`);
        await api(`/2015-03-31/functions/${fn}/configuration`, 'PUT', { Environment: { Variables: { RUN: `r${i}` } } });
        const invoke = async (want: string) => {
          const t0 = performance.now();
          const r = await o.request(`${url}/2015-03-31/functions/${fn}/invocations`, 'POST', '{}');
          const ms = performance.now() - t0;
          if (String(r.headers['x-thaw-start']) !== want) throw new Error(`paged bench: expected ${want}, got ${r.headers['x-thaw-start']}`);
          return ms;
        };
        type View = { functionName: string; state: string; pid: number; frozenRssBytes: number | null; swappedBytes: number | null; pagedFromBytes: number | null; pagedToBytes: number | null; ageMs: number };
        const mine = async (): Promise<View | undefined> => ((await api('/thaw/v1/instances')).instances as View[])
          .filter((x) => x.functionName === fn).sort((a, b) => a.ageMs - b.ageMs)[0];
        const first = await o.request(`${url}/2015-03-31/functions/${fn}/invocations`, 'POST', '{}');
        if (first.status !== 200) throw new Error(`paged bench: ${fn} failed: ${first.body}`);
        const idle = await mine();
        const idleBytes = idle?.state === 'idle' ? cgroupAnonBytes(idle.pid) : null;
        if (idleBytes === null) throw new Error(`paged bench: no idle ${fn} instance to measure (${idle?.state ?? 'none'})`);
        await until('frozen', async () => { const x = await mine(); return x?.state === 'frozen' ? x : null; });
        got.thawed.push(await invoke('thawed'));
        // Frozen again, not yet paged out (that comes pageAfterMs later): zram's store before its page-out.
        await until('frozen again', async () => { const x = await mine(); return x?.state === 'frozen' && x.frozenRssBytes ? x : null; });
        const before = await zram();
        const paged = await until('paged', async () => { const x = await mine(); return x?.state === 'paged' && x.swappedBytes ? x : null; });
        const after = await zram();
        // Like for like: the instance's private (anonymous) resident memory idle, just before and after the page-out.
        got.idle.push(idleBytes);
        got.frozen.push(paged.pagedFromBytes!);
        got.pagedRes.push(paged.pagedToBytes!);
        got.swapped.push(paged.swappedBytes!);
        got.compressed.push(after.comprBytes - before.comprBytes);
        got.ram.push(paged.pagedToBytes! + after.comprBytes - before.comprBytes);
        got.paged.push(await invoke('paged'));
        got.warm.push(await invoke('warm'));
      }
      const mb = 1048576;
      out[fn] = {
        thawed: median(got.thawed), paged: median(got.paged), warm: median(got.warm),
        frozenResidentMb: median(got.frozen) / mb, pagedResidentMb: median(got.pagedRes) / mb, swappedMb: median(got.swapped) / mb, n: o.runs,
        warmIdleResidentBytes: Math.round(median(got.idle)), frozenResidentBytes: Math.round(median(got.frozen)), pagedResidentBytes: Math.round(median(got.pagedRes)),
        pagedCompressedBytes: Math.round(median(got.compressed)), pagedSwappedBytes: Math.round(median(got.swapped)), pagedRamBytes: Math.round(median(got.ram)),
      };
      o.done(`paged tier ${fn}: paged ${out[fn].paged.toFixed(1)} ms vs thawed ${out[fn].thawed.toFixed(1)} vs warm ${out[fn].warm.toFixed(1)}; resident ${out[fn].pagedResidentMb.toFixed(1)} MB paged vs ${out[fn].frozenResidentMb.toFixed(1)} MB frozen`);
    }
    const z = (await api('/thaw/v1/node')).pagedTier.zram as { origBytes: number; comprBytes: number; memUsedBytes: number } | null;
    return { functions: out, zram: z ? { origMb: z.origBytes / 1048576, comprMb: z.comprBytes / 1048576, memUsedMb: z.memUsedBytes / 1048576 } : null };
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  }
}
