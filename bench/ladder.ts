// The ladder benchmark: first-request latency of each path (full cold, cold with the code cached, pooled,
// restored, thawed, warm) for three functions (hello, heavy-init, big-package), each over fresh versions
// (restored: over starts of one published version from its snapshot), against a bare `node` process start
// measured in the same run. Two Thaw servers: one without a runtime pool (cold, restored, thawed, warm),
// one with it (pooled), for each sandbox driver. Writes a table and an SVG bar chart.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mountsUnder } from '../src/core/mounts.ts';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipDirectory } from '../src/codestore/index.ts';
import { generateBigPackage } from '../examples/big-package/generate.mjs';
import { dist } from './stats.ts';

/**
 * `cold` is a full cold start: the package is evicted from the node's code cache first, so it is fetched and
 * unpacked again. `coldCached` is the same start with the package still unpacked on the node, the state
 * the pooled and restored paths find it in.
 */

/**
 * Drops every package from a running server's code cache behind its back, as a full cold start needs: a
 * package's tree may be its image mounted there (unmounted first), and the image file beside it goes too, so
 * the next start fetches from the origin again.
 */
export async function evictCodeCache(cache: string): Promise<void> {
  const dir = join(cache, 'code');
  // Lazily: an instance still running from the tree (its cwd) keeps the old mount alive, detached.
  for (const mp of mountsUnder(dir)) if (spawnSync('umount', ['-l', mp]).status !== 0) spawnSync('fusermount', ['-uz', mp]);
  for (const d of await readdir(dir).catch(() => [] as string[])) if (/^[0-9a-f]{64}(\.sqsh)?$/.test(d)) await rm(join(dir, d), { recursive: true, force: true });
}

export const PATHS = ['cold', 'coldCached', 'pooled', 'restored', 'thawed', 'warm'] as const;
export type Path = (typeof PATHS)[number];
export const PATH_LABELS: Record<Path, string> = { cold: 'cold', coldCached: 'cold, code cached', pooled: 'pooled', restored: 'restored', thawed: 'thawed', warm: 'warm' };
export interface PathStats { p50: number; p90: number; n: number }
export interface LadderResults {
  functions: Record<string, Partial<Record<Path, PathStats>>>;
  frozenRssMb: { idle: number; frozen: number } | null;
  codeCache: { hitRate: number | null; hits: number; misses: number } | null;
  /** Files in the node's V8 compile cache (module.enableCompileCache) of server A at the end of the run. */
  compileCacheFiles: number | null;
}

type Request = (url: string, method?: string, body?: string) => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;

const stats = (xs: number[]): PathStats => ({ ...dist(xs), n: xs.length });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startServer(root: string, dataDir: string, cacheDir: string, options: Record<string, unknown>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(root, 'bench', 'server.ts'), dataDir, cacheDir, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => { buf += d; const m = /THAW_URL (\S+)/.exec(buf); if (m) resolve(m[1]); });
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  return { url, child };
}

export type Sandbox = 'process' | 'namespaces';

/**
 * Runs the ladder once per sandbox driver, interleaved: every step of every iteration is measured on each
 * driver's servers back to back, so a change in the machine's load affects both alike.
 */
export async function ladderBench(o: { root: string; iterations: number; request: Request; progress(s: string): void; done(s: string): void; sandboxes: readonly Sandbox[] }): Promise<Partial<Record<Sandbox, LadderResults>>> {
  const { root, iterations, request } = o;
  const work = await mkdtemp('/dev/shm/thaw-bench-ladder-');
  const children: ChildProcess[] = [];
  const dataDirs: string[] = [];
  try {
    const bigDir = join(work, 'big');
    generateBigPackage(bigDir, 30);
    const packages: Record<string, Buffer> = {
      hello: await zipDirectory(join(root, 'examples', 'hello')),
      'heavy-init': await zipDirectory(join(root, 'examples', 'heavy-init')),
      'big-package': await zipDirectory(bigDir),
    };
    // Per driver, two servers: A without a runtime pool (cold, warm, thawed, restored), B with one (pooled).
    const servers = [];
    for (const sandbox of o.sandboxes) {
      const dirA = await mkdtemp(join(tmpdir(), `thaw-bench-${sandbox}-a-`));
      const dirB = await mkdtemp(join(tmpdir(), `thaw-bench-${sandbox}-b-`));
      dataDirs.push(dirA, dirB);
      const cacheA = join(work, `${sandbox}-cache-a`);
      const a = await startServer(root, dirA, cacheA, { poolSize: 0, freezeAfterMs: 300, snapshots: true, sandbox });
      children.push(a.child);
      const b = await startServer(root, dirB, join(work, `${sandbox}-cache-b`), { poolSize: 1, poolRefillDelayMs: 0, freezeAfterMs: -1, snapshots: false, sandbox });
      children.push(b.child);
      servers.push({ sandbox, a, b, cacheA, results: { functions: {}, frozenRssMb: null, codeCache: null, compileCacheFiles: null } as LadderResults });
    }

    const api = async (url: string, path: string, method: string, body: unknown) => {
      const r = await request(`${url}${path}`, method, JSON.stringify(body));
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
      return JSON.parse(r.body || 'null');
    };
    const invoke = async (url: string, fn: string, qualifier?: string) => {
      const t0 = performance.now();
      const r = await request(`${url}/2015-03-31/functions/${fn}/invocations${qualifier ? `?Qualifier=${qualifier}` : ''}`, 'POST', '{}');
      const ms = performance.now() - t0;
      if (r.status !== 200 || r.headers['x-amz-function-error']) throw new Error(`invoke ${fn}: ${r.status} ${r.body}`);
      return { ms, start: String(r.headers['x-thaw-start']) };
    };
    const expectPath = (got: string, want: Path, fn: string) => { if (got !== want) throw new Error(`${fn}: expected a ${want} start, got ${got}`); };
    const evictCode = evictCodeCache;
    const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 120_000) => {
      const end = performance.now() + timeoutMs;
      while (!(await check())) { if (performance.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(20); }
    };

    for (const [fn, zip] of Object.entries(packages)) {
      const memory = fn === 'heavy-init' ? 512 : 256;
      const create = (url: string, name: string) => api(url, '/2015-03-31/functions', 'POST', { FunctionName: name, Runtime: 'nodejs24', Handler: 'index.handler', MemorySize: memory, Timeout: 30, Code: { ZipFile: zip.toString('base64') } });
      for (const srv of servers) for (const s of [srv.a, srv.b]) await create(s.url, fn);
      // Restored: a copy of the function on server A with one published version, its snapshot built once
      // (a build per version costs seconds, heavy-init's ~10 s here), and a policy that stops an instance
      // as soon as it is idle, so each request restores anew.
      const restoreFn = `${fn}-restore`;
      const restoreVersion = new Map<Sandbox, string>();
      for (const { a, sandbox } of servers) {
        await create(a.url, restoreFn);
        await api(a.url, `/thaw/v1/functions/${restoreFn}/policy`, 'PUT', { policy: 'fixed:1ms' });
        const v = String((await api(a.url, `/2015-03-31/functions/${restoreFn}/versions`, 'POST', {})).Version);
        restoreVersion.set(sandbox, v);
        await until(`a snapshot of ${restoreFn}`, async () => {
          const snap = (await api(a.url, `/thaw/v1/functions/${restoreFn}/snapshots`, 'GET', undefined)).snapshots.find((x: { version: string }) => x.version === v);
          if (snap?.status === 'failed') throw new Error(`snapshot of ${restoreFn}:${v} failed: ${snap.reason}`);
          return snap?.status === 'ready';
        });
      }
      const restoredGone = (url: string) => until('the restored instance to go', async () => !(await api(url, '/thaw/v1/instances', 'GET', undefined)).instances.some((x: { functionName: string }) => x.functionName === restoreFn));
      const samples = new Map(servers.map((srv) => [srv, Object.fromEntries(PATHS.map((p) => [p, []])) as unknown as Record<Path, number[]>]));
      for (let i = 0; i < iterations; i++) {
        for (const srv of servers) {
          const { a, b, cacheA: cache, results, sandbox } = srv;
          const sample = samples.get(srv)!;
          o.progress(`ladder (${sandbox}) ${fn}: ${i + 1}/${iterations}`);
          // Cold twice, each a new revision on server A (no pool): a full cold start with the package evicted
          // from the node's code cache, and one with the package still unpacked there (as the pooled and
          // restored paths find it). Their order alternates, so neither always comes first.
          for (const evict of i % 2 === 0 ? [true, false] : [false, true]) {
            await api(a.url, `/2015-03-31/functions/${fn}/configuration`, 'PUT', { Environment: { Variables: { RUN: `${evict ? 'c' : 'k'}${i}` } } });
            if (evict) await evictCode(cache);
            const r = await invoke(a.url, fn);
            expectPath(r.start, 'cold', fn);
            sample[evict ? 'cold' : 'coldCached'].push(r.ms);
          }
          // Warm: the newest instance again.
          let r = await invoke(a.url, fn);
          expectPath(r.start, 'warm', fn);
          sample.warm.push(r.ms);
          const idleRss = fn === 'hello' && i === 0
            ? (await api(a.url, '/thaw/v1/instances', 'GET', undefined)).instances.find((x: { functionName: string; version: string; state: string }) => x.functionName === fn && x.version === '$LATEST' && x.state === 'idle')?.rssBytes ?? 0
            : 0;
          // Thawed: wait until that instance is frozen, then call it.
          await until('a frozen instance', async () => (await api(a.url, '/thaw/v1/instances', 'GET', undefined)).instances.some((x: { functionName: string; version: string; state: string; frozenRssBytes: number | null }) => x.functionName === fn && x.version === '$LATEST' && x.state === 'frozen' && x.frozenRssBytes));
          if (fn === 'hello' && !results.frozenRssMb) {
            const inst = (await api(a.url, '/thaw/v1/instances', 'GET', undefined)).instances.find((x: { functionName: string; version: string; state: string }) => x.functionName === fn && x.version === '$LATEST' && x.state === 'frozen');
            results.frozenRssMb = { idle: idleRss / 1024 / 1024, frozen: inst.frozenRssBytes / 1024 / 1024 };
          }
          r = await invoke(a.url, fn);
          expectPath(r.start, 'thawed', fn);
          sample.thawed.push(r.ms);
          // Restored: with no instance of the published version left, its snapshot restored for a request;
          // the policy stops the instance at once, and it is gone before the next step.
          await restoredGone(a.url);
          r = await invoke(a.url, restoreFn, restoreVersion.get(sandbox)!);
          expectPath(r.start, 'restored', restoreFn);
          sample.restored.push(r.ms);
          await restoredGone(a.url);
          // Pooled: a new revision on server B once its pool has a runtime of this size.
          await api(b.url, `/2015-03-31/functions/${fn}/configuration`, 'PUT', { Environment: { Variables: { RUN: `p${i}` } } });
          if (i === 0) await invoke(b.url, fn); // teaches the pool this memory size
          if (i === 0) await api(b.url, `/2015-03-31/functions/${fn}/configuration`, 'PUT', { Environment: { Variables: { RUN: `p${i}b` } } });
          await until('a pooled runtime', async () => (await api(b.url, '/thaw/v1/node', 'GET', undefined)).pool.some((p: { memoryMb: number; ready: number }) => p.memoryMb === memory && p.ready > 0));
          await sleep(50);
          r = await invoke(b.url, fn);
          expectPath(r.start, 'pooled', fn);
          sample.pooled.push(r.ms);
          // The pool refills at once: let it finish before the next cold start, so that is not measured beside it.
          await until('the pool to refill', async () => (await api(b.url, '/thaw/v1/node', 'GET', undefined)).pool.some((p: { memoryMb: number; ready: number }) => p.memoryMb === memory && p.ready > 0));
        }
      }
      for (const srv of servers) {
        const f = srv.results.functions[fn] = Object.fromEntries(PATHS.map((p) => [p, stats(samples.get(srv)![p])]));
        o.done(`ladder (${srv.sandbox}) ${fn}: cold ${f.cold!.p50.toFixed(1)} ms, cold code cached ${f.coldCached!.p50.toFixed(1)}, pooled ${f.pooled!.p50.toFixed(1)}, restored ${f.restored!.p50.toFixed(1)}, thawed ${f.thawed!.p50.toFixed(1)}, warm ${f.warm!.p50.toFixed(1)}`);
      }
    }
    const out: Partial<Record<Sandbox, LadderResults>> = {};
    for (const srv of servers) {
      const node = await api(srv.a.url, '/thaw/v1/node', 'GET', undefined);
      srv.results.codeCache = { hitRate: node.codeCache.hitRate, hits: node.codeCache.hits, misses: node.codeCache.misses };
      srv.results.compileCacheFiles = await countFiles(join(srv.cacheA, 'compile'));
      out[srv.sandbox] = srv.results;
    }
    return out;
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    await rm(work, { recursive: true, force: true });
    for (const d of dataDirs) await rm(d, { recursive: true, force: true });
  }
}

/** Regular files under dir (0 when it does not exist). */
async function countFiles(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).length;
}

const COLORS: Record<Path, string> = { cold: '#c0392b', coldCached: '#d35400', pooled: '#e67e22', restored: '#8e44ad', thawed: '#2980b9', warm: '#27ae60' };

/** A grouped bar chart (log scale) of the median first-request latency per function and path. */
export function ladderSvg(r: LadderResults, bareMs: number): string {
  const fns = Object.keys(r.functions);
  const W = 820; const rowH = 18; const groupGap = 26; const left = 120; const right = 150; const top = 40;
  const H = top + fns.length * (PATHS.length * rowH + groupGap) + 40;
  const max = Math.max(bareMs, ...fns.flatMap((f) => PATHS.map((p) => r.functions[f][p]?.p50 ?? 0)));
  const min = 0.5;
  const x = (ms: number) => left + ((Math.log10(Math.max(ms, min)) - Math.log10(min)) / (Math.log10(max * 1.2) - Math.log10(min))) * (W - left - right);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">First-request latency by ladder path (median ms, log scale)</text>`];
  for (const tick of [1, 10, 100, 1000]) {
    if (tick > max * 1.2) continue;
    out.push(`<line x1="${x(tick)}" y1="${top - 6}" x2="${x(tick)}" y2="${H - 30}" stroke="#ddd"/>`, `<text x="${x(tick)}" y="${H - 16}" text-anchor="middle" fill="#555">${tick} ms</text>`);
  }
  out.push(`<line x1="${x(bareMs)}" y1="${top - 6}" x2="${x(bareMs)}" y2="${H - 30}" stroke="#333" stroke-dasharray="4 3"/>`,
    `<text x="${x(bareMs) + 4}" y="${top - 8}" fill="#333">bare node start ${bareMs.toFixed(0)} ms</text>`);
  let y = top;
  for (const f of fns) {
    out.push(`<text x="8" y="${y + (PATHS.length * rowH) / 2 + 4}" font-weight="bold">${f}</text>`);
    for (const p of PATHS) {
      const s = r.functions[f][p];
      if (s) {
        out.push(`<rect x="${left}" y="${y + 2}" width="${Math.max(1, x(s.p50) - left)}" height="${rowH - 5}" fill="${COLORS[p]}"/>`,
          `<text x="${x(s.p50) + 4}" y="${y + rowH - 6}" fill="#222">${PATH_LABELS[p]} ${s.p50 < 10 ? s.p50.toFixed(1) : s.p50.toFixed(0)} ms</text>`);
      }
      y += rowH;
    }
    y += groupGap;
  }
  out.push('</svg>');
  return out.join('\n');
}
