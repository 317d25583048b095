// The paged tier in `npm run bench` (namespaces driver and a free zram device; the server sets up the
// device with `zramMb` and releases it): for hello and heavy-init, per fresh version, the first request
// after a freeze (thawed), after a page-out (paged) and the next one (warm), in the same run; and what an
// instance keeps resident frozen against paged, with what its swap holds and zram's compressed size.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipDirectory } from '../src/codestore/index.ts';
import { median } from './stats.ts';

type Req = (url: string, method?: string, body?: string) => Promise<{ status: number; headers: Record<string, unknown>; body: string }>;
export interface PagedResults {
  functions: Record<string, { thawed: number; paged: number; warm: number; frozenResidentMb: number; pagedResidentMb: number; swappedMb: number; n: number }>;
  zram: { origMb: number; comprMb: number } | null;
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
    const out: PagedResults['functions'] = {};
    for (const fn of ['hello', 'heavy-init']) {
      await api('/2015-03-31/functions', 'POST', { FunctionName: fn, Runtime: 'nodejs24', Handler: 'index.handler', MemorySize: 512, Timeout: 30, Code: { ZipFile: (await zipDirectory(join(o.root, 'examples', fn))).toString('base64') } });
      const got = { thawed: [] as number[], paged: [] as number[], warm: [] as number[], frozen: [] as number[], pagedRes: [] as number[], swapped: [] as number[] };
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
        type View = { functionName: string; state: string; frozenRssBytes: number | null; swappedBytes: number | null; pagedFromBytes: number | null; pagedToBytes: number | null; ageMs: number };
        const mine = async (): Promise<View | undefined> => ((await api('/thaw/v1/instances')).instances as View[])
          .filter((x) => x.functionName === fn).sort((a, b) => a.ageMs - b.ageMs)[0];
        const first = await o.request(`${url}/2015-03-31/functions/${fn}/invocations`, 'POST', '{}');
        if (first.status !== 200) throw new Error(`paged bench: ${fn} failed: ${first.body}`);
        await until('frozen', async () => { const x = await mine(); return x?.state === 'frozen' ? x : null; });
        got.thawed.push(await invoke('thawed'));
        const paged = await until('paged', async () => { const x = await mine(); return x?.state === 'paged' && x.swappedBytes ? x : null; });
        // Like for like: the instance's private (anonymous) resident memory just before and after the page-out.
        got.frozen.push(paged.pagedFromBytes! / 1048576);
        got.pagedRes.push(paged.pagedToBytes! / 1048576);
        got.swapped.push(paged.swappedBytes! / 1048576);
        got.paged.push(await invoke('paged'));
        got.warm.push(await invoke('warm'));
      }
      out[fn] = { thawed: median(got.thawed), paged: median(got.paged), warm: median(got.warm), frozenResidentMb: median(got.frozen), pagedResidentMb: median(got.pagedRes), swappedMb: median(got.swapped), n: o.runs };
      o.done(`paged tier ${fn}: paged ${out[fn].paged.toFixed(1)} ms vs thawed ${out[fn].thawed.toFixed(1)} vs warm ${out[fn].warm.toFixed(1)}; resident ${out[fn].pagedResidentMb.toFixed(1)} MB paged vs ${out[fn].frozenResidentMb.toFixed(1)} MB frozen`);
    }
    const zram = (await api('/thaw/v1/node')).pagedTier.zram as { origBytes: number; comprBytes: number } | null;
    return { functions: out, zram: zram ? { origMb: zram.origBytes / 1048576, comprMb: zram.comprBytes / 1048576 } : null };
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  }
}
