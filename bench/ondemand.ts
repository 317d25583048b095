// On-demand code loading (issue 15): the first response of a cold start on an empty node cache, with the
// origin a real S3 server behind a throttled link (test/throttle.ts), on-demand (init's bundle first, the
// rest filled in behind) against the full fetch (the package's image fetched and mounted, or the package
// unpacked where images cannot be mounted). Same platform, origin, link and package (big-package, 30 MB of
// modules of which init loads 3 files); each run is a fresh platform on an empty cache, warmed by another
// function of the same shape (so a runtime waits in the pool), the two sides alternating. Target: on-demand at most 0.3x the full fetch (-70%). `bench/run.ts --ondemand-only`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateBigPackage } from '../examples/big-package/generate.mjs';
import { zipDirectory, zipEntries } from '../src/codestore/index.ts';
import { startThaw, type RunningThaw } from '../src/gateway/index.ts';
import { startS3 } from '../test/s3.ts';
import { startThrottle } from '../test/throttle.ts';
import type { InitSet } from '../src/core/types.ts';
import { median } from './stats.ts';

export interface OnDemandLink { link: string; onDemandMs: number; fullMs: number; ratio: number; runs: number; mounted: boolean }
export interface OnDemandResults { packageBytes: number; imageBytes: number | null; bundleBytes: number; initFiles: number; links: OnDemandLink[] }

const LINKS = [{ bytesPerSecond: 20 * 1024 * 1024, latencyMs: 20, label: '20 MB/s, 20 ms' }, { bytesPerSecond: 2 * 1024 * 1024, latencyMs: 20, label: '2 MB/s, 20 ms' }];
const FAST = 1024 * 1024 * 1024;

async function invoke(url: string, name: string): Promise<void> {
  const r = await fetch(`${url}/2015-03-31/functions/${name}/invocations`, { method: 'POST', body: '{}' });
  const text = await r.text();
  if (r.status !== 200 || r.headers.get('x-amz-function-error')) throw new Error(`invoke failed: ${r.status} ${text}`);
}

async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}

export async function onDemandBench(o: { runs: number; progress: (s: string) => void; done: (s: string) => void }): Promise<OnDemandResults> {
  const work = await mkdtemp(join(tmpdir(), 'thaw-bench-ondemand-'));
  const s3 = await startS3('thaw-bench-ondemand');
  const link = await startThrottle({ port: Number(new URL(s3.endpoint).port) }, { bytesPerSecond: FAST, latencyMs: 0 });
  const saved = { ...process.env };
  Object.assign(process.env, s3.env, { AWS_ENDPOINT_URL_S3: link.endpoint });
  const dataDir = join(work, 'data');
  const start = async (): Promise<{ thaw: RunningThaw; cacheDir: string }> => {
    const cacheDir = await mkdtemp('/dev/shm/thaw-bench-ondemand-cache-');
    return { thaw: await startThaw({ port: 0, dataDir, cacheDir, origin: `s3://${s3.bucket}/od` }), cacheDir };
  };
  const stop = async (s: { thaw: RunningThaw; cacheDir: string }) => {
    link.set({ bytesPerSecond: FAST, latencyMs: 0 });
    // The background fill ends before the platform does (it writes into the cache being removed).
    await waitUntil(() => s.thaw.platform.cache.stats().onDemand.filling === 0);
    await s.thaw.close();
    await rm(s.cacheDir, { recursive: true, force: true });
  };
  try {
    const big = join(work, 'big');
    generateBigPackage(big, 30);
    const zip = await zipDirectory(big);
    // Deploy, and the first start, which records what init reads.
    const first = await start();
    let imageBytes: number | null = null;
    let bundleBytes = 0;
    let set: InitSet | null = null;
    try {
      for (const [name, code] of [['big', zip], ['warm', zipEntries([{ path: 'index.mjs', data: Buffer.from('export const handler = async () => 1;\n') }])]] as const) {
        const r = await fetch(`${first.thaw.url}/2015-03-31/functions`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ FunctionName: name, Runtime: 'nodejs22.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/thaw', Timeout: 60, MemorySize: 512, Code: { ZipFile: code.toString('base64') } }),
        });
        if (r.status !== 201) throw new Error(`create failed: ${r.status} ${await r.text()}`);
      }
      await invoke(first.thaw.url, 'big');
      const { codeSha256, codeImage } = (await first.thaw.platform.store.getFunction('big'))!.latest.config;
      imageBytes = codeImage?.size ?? null;
      const store = first.thaw.platform.store;
      while (!(set = await store.getInitSet(codeSha256, 'index.handler'))) await new Promise((r) => setTimeout(r, 20));
      bundleBytes = (await first.thaw.platform.blobs.get(set.bundleSha256)).length;
    } finally {
      await stop(first);
    }
    if (!set) throw new Error('no init set was recorded');
    o.done(`ondemand: deployed big-package, init set of ${set.files.length} files recorded`);
    const links: OnDemandLink[] = [];
    for (const l of LINKS) {
      const times = { ondemand: [] as number[], full: [] as number[] };
      let mounted = false;
      for (let i = 0; i < o.runs; i++) {
        for (const side of (i % 2 ? ['full', 'ondemand'] : ['ondemand', 'full']) as ('full' | 'ondemand')[]) {
          o.progress(`ondemand: ${l.label} ${side} ${i + 1}/${o.runs}`);
          const s = await start();
          try {
            s.thaw.platform.agent.initSets.enabled = false;
            // A node that has been up: a function of the same shape ran, so a runtime waits in the pool
            // (the cold start measured is of code not in the cache, not of a node just started).
            await invoke(s.thaw.url, 'warm');
            await waitUntil(() => s.thaw.platform.agent.pool().some((p) => p.memoryMb === 512 && p.ready > 0));
            s.thaw.platform.agent.initSets.enabled = side === 'ondemand';
            link.set({ bytesPerSecond: l.bytesPerSecond, latencyMs: l.latencyMs });
            const t0 = performance.now();
            await invoke(s.thaw.url, 'big');
            times[side].push(performance.now() - t0);
            if (side === 'full') mounted = s.thaw.platform.cache.stats().images.mounted > 0;
            else if (!s.thaw.platform.cache.fills.some((f) => f.sha256 === set.codeSha256)) throw new Error('the on-demand side did not start from a partial tree');
          } finally {
            await stop(s);
          }
        }
      }
      const onDemandMs = median(times.ondemand);
      const fullMs = median(times.full);
      links.push({ link: l.label, onDemandMs, fullMs, ratio: onDemandMs / fullMs, runs: o.runs, mounted });
      o.done(`ondemand: ${l.label}: ${onDemandMs.toFixed(0)} vs ${fullMs.toFixed(0)} ms`);
    }
    return { packageBytes: zip.length, imageBytes, bundleBytes, initFiles: set.files.length, links };
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    await link.stop();
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
}

export function renderOnDemand(r: OnDemandResults): string[] {
  const mb = (n: number) => (n / 1048576).toFixed(2);
  const lines = ['## On-demand code loading', '',
    `big-package: zip ${mb(r.packageBytes)} MB, image ${r.imageBytes === null ? 'none' : `${mb(r.imageBytes)} MB`}, init bundle ${(r.bundleBytes / 1024).toFixed(1)} KB (${r.initFiles} files).`,
    'First response of a cold start on an empty cache (fresh platform each run, alternating; medians), S3 origin behind a throttled link:', '',
    '| link | on-demand ms | full fetch ms | full fetch is | ratio (target <= 0.3x) |', '|---|---|---|---|---|'];
  for (const l of r.links) lines.push(`| ${l.link} | ${l.onDemandMs.toFixed(0)} | ${l.fullMs.toFixed(0)} | ${l.mounted ? 'image mounted' : 'package unpacked'} | **${l.ratio.toFixed(3)}x** |`);
  return [...lines, ''];
}
