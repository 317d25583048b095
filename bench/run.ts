// `npm run bench`: Thaw against baselines measured in the same run on the same machine, as ratios.
//   warm invoke latency and throughput through the gateway  vs  a bare Node HTTP hello-world server
//   full cold start of a hello function                      vs  a bare `node hello.js` process start
//   the per-phase split of the cold start
//   each of those, and the instance ladder, with the confining sandbox driver against the process driver
//   the first request of a freshly published version, prewarm on   vs  a bare start / a bare init
//   memory per instance by tier (idle, frozen, paged)
// Thaw runs in its own process (bench/server.ts) so the load generator does not share its event loop.
// Medians over many runs; never a single absolute figure. Writes bench/out/results.json and docs/bench.md.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { zipEntries } from '../src/codestore/index.ts';
import { PHASES } from '../src/core/types.ts';
import { PATHS, PATH_LABELS, evictCodeCache, ladderBench, ladderSvg, type LadderResults } from './ladder.ts';
import { publishBench, type PublishResults } from './publish.ts';
import { compatBench, renderCompat, type CompatResults } from './compat.ts';
import { otelBench, renderOtel } from './otel.ts';
import { imagesBench, renderImages } from './images.ts';
import { onDemandBench, renderOnDemand } from './ondemand.ts';
import { originBench, renderOrigin } from './origin.ts';
import { clusterBench, renderCluster } from './cluster.ts';
import { devLoopBench, type DevLoopResults } from './dev-loop.ts';
import { networkBench, type NetworkResults } from './network.ts';
import { median, quantile } from './stats.ts';
import { pagedBench, pagedSkip, type PagedResults } from './paged.ts';
import { existsSync } from 'node:fs';
import { KPA_DEFAULTS, parsePolicy } from '../src/policies/index.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { probeNamespaces } from '../src/sandbox/index.ts';
import { benchCosts, readAzureTrace, simulate, syntheticTrace, type SimResult } from '../src/sim/index.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'cold-runs': { type: 'string' },
    'warm-requests': { type: 'string' },
    'load-seconds': { type: 'string' },
    'ladder-runs': { type: 'string' },
    'no-ladder': { type: 'boolean', default: false },
    soak: { type: 'boolean', default: false },
    'no-network': { type: 'boolean', default: false },
    'network-only': { type: 'boolean', default: false },
    'paged-only': { type: 'boolean', default: false },
    'ladder-only': { type: 'boolean', default: false },
    'publish-only': { type: 'boolean', default: false },
    'no-publish': { type: 'boolean', default: false },
    'compat-only': { type: 'boolean', default: false },
    'otel-only': { type: 'boolean', default: false },
    'images-only': { type: 'boolean', default: false },
    'ondemand-only': { type: 'boolean', default: false },
    'origin-only': { type: 'boolean', default: false },
    'cluster-only': { type: 'boolean', default: false },
    'no-compat': { type: 'boolean', default: false },
    /** Skips the measures of issue 15/16 (origin, images, on-demand loading, cluster, traces). */
    'no-beyond': { type: 'boolean', default: false },
    'publish-runs': { type: 'string' },
    'soak-seconds': { type: 'string' },
  },
});
const COLD_RUNS = Number(args['cold-runs'] ?? (args.quick ? 8 : 30));
const WARM_REQUESTS = Number(args['warm-requests'] ?? (args.quick ? 300 : 2000));
const LOAD_SECONDS = Number(args['load-seconds'] ?? (args.quick ? 2 : 5));
const LOAD_CONCURRENCY = 8;
const LADDER_RUNS = Number(args['ladder-runs'] ?? (args.quick ? 3 : 10));
const PUBLISH_RUNS = Number(args['publish-runs'] ?? (args.quick ? 3 : 10));

const root = join(import.meta.dirname, '..');
const out = join(root, 'bench', 'out');
// On a terminal, one line that updates; in a log, only the finished steps.
const progress = (s: string) => { if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s}`); };
const done = (s: string) => process.stderr.write(process.stderr.isTTY ? `\r\x1b[K${s}\n` : `${s}\n`);

const cleanEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };

const agent = new http.Agent({ keepAlive: true, maxSockets: LOAD_CONCURRENCY });
function request(url: string, method = 'POST', body = '{}'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Latency and request counts while LOAD_CONCURRENCY clients call back to back for `ms`. */
async function loadSlice(call: () => Promise<unknown>, ms: number, into: { loaded: number[]; count: number; ms: number }) {
  const until = performance.now() + ms;
  const worker = async () => { while (performance.now() < until) { into.loaded.push(await timed(call)); into.count++; } };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: LOAD_CONCURRENCY }, worker));
  into.ms += performance.now() - t0;
}

const loadFigures = (l: { loaded: number[]; count: number; ms: number }) => ({
  rps: l.count / (l.ms / 1000),
  /** Latency of each request while LOAD_CONCURRENCY clients run (the throughput phase). */
  loadedP50: median(l.loaded), loadedP99: quantile(l.loaded, 0.99), loadedMax: Math.max(...l.loaded),
  /** Requests that took more than 100 ms under load, per thousand. */
  stallsPerMille: (1000 * l.loaded.filter((x) => x > 100).length) / Math.max(1, l.loaded.length),
});

/**
 * Sequential latency over n requests (after a warm-up), then throughput with c concurrent clients. With a
 * baseline, the throughput phase alternates one-second slices of the two, so the host's load (which drifts
 * a lot on a shared VM) weighs on both alike, and returns the baseline's figures from the same slices.
 */
async function latencyAndThroughput(label: string, call: () => Promise<unknown>, baseline?: () => Promise<unknown>) {
  for (let i = 0; i < 50; i++) await call();
  const lat: number[] = [];
  for (let i = 0; i < WARM_REQUESTS; i++) {
    lat.push(await timed(call));
    if (i % 100 === 0) progress(`${label}: latency ${i}/${WARM_REQUESTS}`);
  }
  // Concurrency first, unmeasured: the autoscaler starts an instance per client (their cold starts are
  // measured below, not here).
  await loadSlice(call, 2000, { loaded: [], count: 0, ms: 0 });
  if (baseline) await loadSlice(baseline, 500, { loaded: [], count: 0, ms: 0 });
  const own = { loaded: [] as number[], count: 0, ms: 0 };
  const base = { loaded: [] as number[], count: 0, ms: 0 };
  progress(`${label}: throughput, ${LOAD_CONCURRENCY} clients for ${LOAD_SECONDS} s${baseline ? ', in 1 s slices alternating with the bare server' : ''}`);
  for (let k = 0; k < LOAD_SECONDS; k++) {
    await loadSlice(call, 1000, own);
    if (baseline) await loadSlice(baseline, 1000, base);
  }
  const figures = loadFigures(own);
  done(`${label}: ${figures.rps.toFixed(0)} req/s, p99 under load ${figures.loadedP99.toFixed(2)} ms${baseline ? `; bare in the same slices ${loadFigures(base).rps.toFixed(0)} req/s, p99 ${loadFigures(base).loadedP99.toFixed(2)} ms` : ''}`);
  return {
    p50: median(lat), p90: quantile(lat, 0.9), p99: quantile(lat, 0.99), ...figures,
    /** The baseline's figures from the slices alternating with these. */
    baseline: baseline ? loadFigures(base) : null,
  };
}

function startProcess(cmd: string, argv: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      const m = buf.match(ready);
      if (m) resolve({ child, match: m });
    });
    child.once('exit', (code) => reject(new Error(`${cmd} exited with ${code} before it was ready: ${buf}`)));
  });
}

const HELLO = 'export const handler = async (event) => ({ hello: event.name ?? "world" });\n';

/** Baseline: n bare `node hello.mjs` process starts (start to exit), same binary, clean environment. */
async function bareStarts(dir: string, n: number): Promise<number[]> {
  const helloJs = join(dir, 'hello.mjs');
  await writeFile(helloJs, `${HELLO}console.log(JSON.stringify(await handler({})));\n`);
  const bare: number[] = [];
  for (let i = 0; i < n; i++) {
    progress(`bare node process start ${i + 1}/${n}`);
    bare.push(await timed(() => new Promise<void>((res, rej) => {
      const c = spawn(process.execPath, [helloJs], { env: cleanEnv, stdio: 'ignore' });
      c.once('exit', (code) => (code === 0 ? res() : rej(new Error(`exit ${code}`))));
    })));
  }
  done(`bare node process start: median ${median(bare).toFixed(1)} ms`);
  return bare;
}

type Driver = 'process' | 'namespaces';
type CoreFigures = {
  warmApi: Awaited<ReturnType<typeof latencyAndThroughput>>; warmTrigger: Awaited<ReturnType<typeof latencyAndThroughput>>;
  coldStartMs: { p50: number; p90: number }; coldStartPhasesMs: Record<string, number>;
  cachedColdStartMs: { p50: number; p90: number }; cachedColdStartPhasesMs: Record<string, number>;
};

/** A Thaw server for the core figures with hello deployed: the full cold path (no pool, no freezing, no snapshots). */
async function coreServer(driver: Driver, dataRoot: string, cacheRoot: string) {
  const dataDir = await mkdtemp(join(dataRoot, `${driver}-`));
  const cacheDir = await mkdtemp(join(cacheRoot, `${driver}-`));
  const thaw = await startProcess(process.execPath, [join(root, 'bench', 'server.ts'), dataDir, cacheDir, JSON.stringify({ poolSize: 0, freezeAfterMs: -1, snapshots: false, sandbox: driver })], { ...process.env }, /THAW_URL (\S+)/);
  const url = thaw.match[1];
  const api = (path: string, method: string, body: unknown) => request(`${url}${path}`, method, JSON.stringify(body));
  const code = zipEntries([{ path: 'index.mjs', data: Buffer.from(HELLO) }]).toString('base64');
  const created = await api('/2015-03-31/functions', 'POST', { FunctionName: 'hello', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: code } });
  if (created.status !== 201) throw new Error(`could not deploy hello: ${created.body}`);
  const invokeUrl = `${url}/2015-03-31/functions/hello/invocations`;
  const first = await request(invokeUrl);
  if (first.status !== 200) throw new Error(`invoke failed: ${first.body}`);
  let run = 0;
  return {
    driver, url, invokeUrl, child: thaw.child,
    /** One cold start: $LATEST's configuration changes, so no instance is reused; `evict` also drops the package from the node's code cache. */
    async coldStart(evict: boolean): Promise<{ ms: number; phases: Record<string, number> }> {
      const up = await api('/2015-03-31/functions/hello/configuration', 'PUT', { Environment: { Variables: { RUN: `r${run++}` } } });
      if (up.status !== 200) throw new Error(`update failed: ${up.body}`);
      if (evict) await evictCodeCache(cacheDir);
      let reply!: Awaited<ReturnType<typeof request>>;
      const ms = await timed(async () => { reply = await request(invokeUrl); });
      if (reply.headers['x-thaw-start'] !== 'cold') throw new Error(`expected a cold start, got ${reply.headers['x-thaw-start']}`);
      const phases: Record<string, number> = {};
      for (const part of String(reply.headers['server-timing']).split(', ')) {
        const [name, dur] = part.split(';dur=');
        phases[name] = Number(dur);
      }
      return { ms, phases };
    },
  };
}

/**
 * Warm latency and throughput per driver, then cold starts alternating between the drivers' servers, run by
 * run, so that the machine's load (which varies a lot on a shared VM) weighs on both alike.
 */
async function coreFigures(drivers: Driver[], dataRoot: string, cacheRoot: string, bare: () => Promise<unknown>): Promise<Partial<Record<Driver, CoreFigures>>> {
  const servers: Awaited<ReturnType<typeof coreServer>>[] = [];
  for (const d of drivers) servers.push(await coreServer(d, dataRoot, cacheRoot));
  try {
    const warm = new Map<Driver, Pick<CoreFigures, 'warmApi' | 'warmTrigger'>>();
    for (const s of servers) {
      warm.set(s.driver, {
        warmApi: await latencyAndThroughput(`Thaw warm invoke (Lambda API, ${s.driver} driver)`, () => request(s.invokeUrl), bare),
        warmTrigger: await latencyAndThroughput(`Thaw warm invoke (HTTP trigger, ${s.driver} driver)`, () => request(`${s.url}/hello/`, 'GET', ''), bare),
      });
    }
    // The throughput runs leave a burst in the autoscaler's panic window: until it has passed, each
    // completion pre-warms instances for the burst, which would start (and be killed) beside the measured
    // cold starts. Let it pass first.
    progress('letting the autoscaler\'s panic window pass');
    await sleep(KPA_DEFAULTS.panicWindowMs + 1000);
    const runs = async (label: string, evict: boolean) => {
      const got = new Map(servers.map((s) => [s.driver, { ms: [] as number[], phases: Object.fromEntries([...PHASES, 'total'].map((p) => [p, [] as number[]])) as Record<string, number[]> }]));
      for (let i = 0; i < COLD_RUNS; i++) {
        progress(`${label} ${i + 1}/${COLD_RUNS}`);
        for (const s of servers) {
          const r = await s.coldStart(evict);
          const g = got.get(s.driver)!;
          g.ms.push(r.ms);
          for (const [k, v] of Object.entries(r.phases)) g.phases[k]?.push(v);
        }
      }
      for (const s of servers) done(`${label} (${s.driver} driver): median ${median(got.get(s.driver)!.ms).toFixed(1)} ms`);
      return got;
    };
    const cached = await runs('Thaw cold start, code cached on the node', false);
    const full = await runs('Thaw full cold start, code fetched and unpacked', true);
    const out: Partial<Record<Driver, CoreFigures>> = {};
    const sum = (g: { ms: number[]; phases: Record<string, number[]> }) => ({ p50: median(g.ms), p90: quantile(g.ms, 0.9), phases: Object.fromEntries(Object.entries(g.phases).map(([k, v]) => [k, median(v)])) });
    for (const s of servers) {
      const c = sum(cached.get(s.driver)!);
      const f = sum(full.get(s.driver)!);
      out[s.driver] = { ...warm.get(s.driver)!, coldStartMs: { p50: f.p50, p90: f.p90 }, coldStartPhasesMs: f.phases, cachedColdStartMs: { p50: c.p50, p90: c.p90 }, cachedColdStartPhasesMs: c.phases };
    }
    return out;
  } finally {
    // Stop them so the ladder's servers have the machine to themselves.
    for (const s of servers) s.child.kill('SIGTERM');
    await Promise.all(servers.map((s) => (s.child.exitCode !== null ? null : new Promise((r) => s.child.once('exit', r)))));
  }
}

async function main() {
  if (args.soak) {
    const { soak, writeSoakReport } = await import('./soak.ts');
    const r = await soak({ root, seconds: Number(args['soak-seconds'] ?? 180), progress, done });
    process.stdout.write(`${await writeSoakReport(root, r)}\n`);
    agent.destroy();
    return;
  }
  await mkdir(out, { recursive: true });
  const netSkip = networkSkip();
  const pageSkip = pagedSkip() ?? (probeNamespaces().ok ? null : 'needs the namespaces sandbox');
  // One part on its own, for development: its results go to bench/out/<part>.json, never to docs/.
  if (args['paged-only']) {
    if (pageSkip) throw new Error(`paged figures not measured: ${pageSkip}`);
    const paged = await pagedBench({ root, runs: LADDER_RUNS, request, progress, done });
    await writeFile(join(out, 'paged.json'), JSON.stringify(paged, null, 2));
    process.stdout.write([...renderPaged(paged), ...renderTierMemory(paged)].join('\n'));
    agent.destroy();
    return;
  }
  if (args['publish-only'] || args['ladder-only']) {
    const dir = await mkdtemp('/dev/shm/thaw-bench-');
    try {
      const drivers: Driver[] = probeNamespaces().ok ? ['process', 'namespaces'] : ['process'];
      const lines: string[] = [];
      if (args['ladder-only']) {
        const bare = median(await bareStarts(dir, COLD_RUNS));
        const ladders = await ladderBench({ root, iterations: LADDER_RUNS, request, progress, done, sandboxes: drivers });
        await writeFile(join(out, 'ladder.json'), JSON.stringify({ bareProcessStartMs: bare, ladders }, null, 2));
        lines.push(...renderLadder(ladders[drivers.at(-1)!]!, bare, drivers.at(-1)!));
      }
      if (args['publish-only']) {
        const publish = await publishBench({ root, runs: PUBLISH_RUNS, request, driver: drivers.at(-1)!, progress, done });
        await writeFile(join(out, 'publish.json'), JSON.stringify(publish, null, 2));
        lines.push(...renderPublish(publish));
      }
      process.stdout.write(lines.join('\n'));
    } finally {
      agent.destroy();
      await rm(dir, { recursive: true, force: true });
    }
    return;
  }
  if (args['cluster-only']) {
    const cluster = await clusterBench({ root, runs: LADDER_RUNS, done });
    await writeFile(join(out, 'cluster.json'), JSON.stringify(cluster, null, 2));
    process.stdout.write(renderCluster(cluster).join('\n'));
    agent.destroy();
    return;
  }
  if (args['origin-only']) {
    const origin = await originBench({ runs: LADDER_RUNS, done });
    await writeFile(join(out, 'origin.json'), JSON.stringify(origin, null, 2));
    process.stdout.write(renderOrigin(origin).join('\n'));
    agent.destroy();
    return;
  }
  if (args['images-only'] || args['ondemand-only']) {
    const images = args['images-only'] ? await imagesBench({ runs: LADDER_RUNS, progress, done }) : null;
    if (images) await writeFile(join(out, 'images.json'), JSON.stringify(images, null, 2));
    // On-demand loading (part 2 of package images) runs with --images-only, or alone.
    const ondemand = await onDemandBench({ runs: LADDER_RUNS, progress, done });
    await writeFile(join(out, 'ondemand.json'), JSON.stringify(ondemand, null, 2));
    process.stdout.write([...(images ? renderImages(images) : []), ...renderOnDemand(ondemand)].join('\n'));
    agent.destroy();
    return;
  }
  if (args['otel-only']) {
    const otel = await otelBench({ root, seconds: LOAD_SECONDS * 2, concurrency: LOAD_CONCURRENCY, request, progress, done });
    await writeFile(join(out, 'otel.json'), JSON.stringify(otel, null, 2));
    process.stdout.write(renderOtel(otel).join('\n'));
    agent.destroy();
    return;
  }
  if (args['compat-only']) {
    const compat = await compatBench({ root, runs: LADDER_RUNS, progress, done });
    const devLoop = await devLoopBench(LADDER_RUNS, progress);
    await writeFile(join(out, 'compat.json'), JSON.stringify({ compat, devLoop }, null, 2));
    process.stdout.write([...renderCompat(compat), ...renderDevLoop(devLoop)].join('\n'));
    agent.destroy();
    return;
  }
  if (args['network-only']) {
    if (netSkip) throw new Error(`network figures not measured: ${netSkip}`);
    const net = await networkBench({ root, runs: LADDER_RUNS, request, progress, done });
    await writeFile(join(out, 'network.json'), JSON.stringify(net, null, 2));
    process.stdout.write(renderNetwork(net).join('\n'));
    agent.destroy();
    return;
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'thaw-bench-'));
  const cacheDir = await mkdtemp('/dev/shm/thaw-bench-');
  const children: ChildProcess[] = [];
  try {
    // Baseline 1: bare `node hello.js` process start, same binary, clean environment.
    const bare = await bareStarts(cacheDir, COLD_RUNS);

    // Baseline 2: a bare Node HTTP server answering JSON.
    const bareServer = await startProcess(process.execPath, ['-e', `
      const http = require('node:http');
      const s = http.createServer((req, res) => { req.resume(); req.on('end', () => { const b = JSON.stringify({ hello: 'world' }); res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) }); res.end(b); }); });
      s.keepAliveTimeout = 30000;
      s.listen(0, '127.0.0.1', () => console.log('listening ' + s.address().port));`], cleanEnv, /listening (\d+)/);
    children.push(bareServer.child);
    const bareUrl = `http://127.0.0.1:${bareServer.match[1]}/`;
    const bareHttp = await latencyAndThroughput('bare HTTP server', () => request(bareUrl));

    // Thaw in its own process, once per sandbox driver: the process driver is the baseline the confining
    // driver is compared with, like for like (same cache state, same path).
    const probe = probeNamespaces();
    if (!probe.ok) done(`namespaces driver not measured: ${probe.reason} (to enable: ${probe.fix})`);
    const drivers: Driver[] = probe.ok ? ['process', 'namespaces'] : ['process'];
    // The bare server stays up through Thaw's warm figures: their throughput slices alternate with its.
    const core = await coreFigures(drivers, dataDir, cacheDir, () => request(bareUrl));
    for (const c of children.splice(0)) { c.kill('SIGTERM'); if (c.exitCode === null) await new Promise((r) => c.once('exit', r)); }
    const ladders: Partial<Record<Driver, LadderResults>> = args['no-ladder'] ? {} : await ladderBench({ root, iterations: LADDER_RUNS, request, progress, done, sandboxes: drivers });
    const ladder = ladders.namespaces ?? ladders.process ?? null;

    if (netSkip) done(`network figures not measured: ${netSkip}`);
    const network = netSkip || args['no-network'] ? null : await networkBench({ root, runs: LADDER_RUNS, request, progress, done });
    if (pageSkip) done(`paged tier not measured: ${pageSkip}`);
    const paged = pageSkip ? null : await pagedBench({ root, runs: LADDER_RUNS, request, progress, done });
    const publish = args['no-publish'] ? null : await publishBench({ root, runs: PUBLISH_RUNS, request, driver: drivers.at(-1)!, progress, done });
    const compat = args['no-compat'] ? null : await compatBench({ root, runs: LADDER_RUNS, progress, done });
    const devLoop = args['no-compat'] ? null : await devLoopBench(LADDER_RUNS, progress);
    // Beyond one machine: where code comes from and how it gets there, placement, and the cost of tracing.
    const beyond = args['no-beyond'] ? null : {
      origin: await originBench({ runs: LADDER_RUNS, done }),
      images: await imagesBench({ runs: LADDER_RUNS, progress, done }),
      ondemand: await onDemandBench({ runs: LADDER_RUNS, progress, done }),
      cluster: await clusterBench({ root, runs: LADDER_RUNS, done }),
      otel: await otelBench({ root, seconds: LOAD_SECONDS * 2, concurrency: LOAD_CONCURRENCY, request, progress, done }),
    };
    const policies = policyFigures(ladder, paged, progress, done);
    const results: Results = {
      compat,
      devLoop,
      beyond,
      ladders,
      network,
      paged,
      publish,
      policies,
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version, date: new Date().toISOString() },
      runs: { cold: COLD_RUNS, warmRequests: WARM_REQUESTS, loadSeconds: LOAD_SECONDS, loadConcurrency: LOAD_CONCURRENCY },
      bareProcessStartMs: { p50: median(bare), p90: quantile(bare, 0.9) },
      bareHttp,
      core,
    };
    await writeFile(join(out, 'results.json'), JSON.stringify(results, null, 2));
    if (ladder) await writeFile(join(root, 'docs', 'ladder.svg'), ladderSvg(ladder, median(bare)));
    const report = render(results);
    await writeFile(join(root, 'docs', 'bench.md'), report);
    process.stdout.write(report);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    agent.destroy();
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  }
}

/**
 * The policies on a trace (the Azure 200-function sample when present, else a synthetic day), simulated
 * with the start costs this run measured for hello: the same engine the agent runs, on virtual time.
 */
function policyFigures(ladder: LadderResults | null, paged: PagedResults | null, progress: (s: string) => void, done: (s: string) => void) {
  const dir = join(root, '..', 'shared', 'datasets', 'azure-functions-2019-invitro-sample');
  const trace = existsSync(join(dir, '200_inv.csv')) ? readAzureTrace(dir, '200') : syntheticTrace({ functions: 200, minutes: 1440, seed: 1 });
  // This run's start costs and paged RAM (hello), the constants for whatever it did not measure.
  const measured = benchCosts({ ladder, paged });
  const { costs } = measured;
  const runs: (SimResult & { label: string })[] = [];
  for (const [label, spec, paging] of [['fixed:10m', 'fixed:10m', true], ['hybrid:4h', 'hybrid:4h', true], ['thaw, no paged tier', 'thaw', false], ['thaw', 'thaw', true]] as const) {
    progress(`simulating ${label} on ${trace.name}`);
    runs.push({ label, ...simulate(trace, { policy: parsePolicy(spec), costs, paging }) });
    done(`${label}: p75 function cold-start rate ${(runs.at(-1)!.p75FunctionColdStartRate * 100).toFixed(1)}%`);
  }
  return { trace: trace.name, costs, constants: measured.constants, runs };
}

type Results = {
  compat: CompatResults | null;
  beyond: {
    origin: Awaited<ReturnType<typeof originBench>>; images: Awaited<ReturnType<typeof imagesBench>>; ondemand: Awaited<ReturnType<typeof onDemandBench>>;
    cluster: Awaited<ReturnType<typeof clusterBench>>; otel: Awaited<ReturnType<typeof otelBench>>;
  } | null;
  devLoop: DevLoopResults | null;
  policies: ReturnType<typeof policyFigures>;
  network: NetworkResults | null;
  paged: PagedResults | null;
  publish: PublishResults | null;
  ladders: Partial<Record<Driver, LadderResults>>;
  machine: { cpus: number; node: string; date: string };
  runs: { cold: number; warmRequests: number; loadSeconds: number; loadConcurrency: number };
  bareProcessStartMs: { p50: number; p90: number };
  bareHttp: Awaited<ReturnType<typeof latencyAndThroughput>>;
  core: Partial<Record<Driver, CoreFigures>>;
};

function render(r: Results): string {
  const f = (n: number) => n.toFixed(2);
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const drivers = (Object.keys(r.core) as Driver[]);
  const main = r.core.namespaces ?? r.core.process!;
  const mainDriver: Driver = r.core.namespaces ? 'namespaces' : 'process';
  const lines = [
    `# Benchmark`,
    '',
    `Measured by \`npm run bench\` on ${r.machine.cpus} cores, Node ${r.machine.node}, ${r.machine.date}. Medians of ${r.runs.cold} cold starts and ${r.runs.warmRequests} sequential warm requests; throughput with ${r.runs.loadConcurrency} concurrent keep-alive clients for ${r.runs.loadSeconds} s. Ratios are against baselines measured in the same run. Every Thaw figure is given for each sandbox driver measured: \`namespaces\` (confined: the default where the host allows it) and \`process\` (no isolation, the baseline).`,
    '',
    '## Warm invoke vs a bare Node HTTP server',
    '',
    `Sequential: one request at a time. Under load: each request's latency while ${r.runs.loadConcurrency} keep-alive clients send back to back, in ${r.runs.loadSeconds} one-second slices for each Thaw row alternating with as many of the bare server (its figures from those slices are in the row's \`bare, same slices\` columns, and the ratios are against them: the host's load drifts, so each ratio is taken in the same seconds).`,
    '',
    '| | sequential p50 / p99 ms | under load p50 / p99 / max ms | > 100 ms under load | req/s | bare, same slices: req/s, p99 ms | p50 vs bare | p99 under load vs bare | req/s vs bare |',
    '|---|---|---|---|---|---|---|---|---|',
    `| bare Node HTTP server (alone, before) | ${f(r.bareHttp.p50)} / ${f(r.bareHttp.p99)} | ${f(r.bareHttp.loadedP50)} / ${f(r.bareHttp.loadedP99)} / ${f(r.bareHttp.loadedMax)} | ${r.bareHttp.stallsPerMille.toFixed(1)}‰ | ${r.bareHttp.rps.toFixed(0)} | - | 1.00× | 1.00× | 1.00× |`,
    ...drivers.flatMap((d) => {
      const c = r.core[d]!;
      const row = (label: string, w: typeof c.warmApi) => {
        const b = w.baseline ?? r.bareHttp;
        return `| ${label} (${d}) | ${f(w.p50)} / ${f(w.p99)} | ${f(w.loadedP50)} / ${f(w.loadedP99)} / ${f(w.loadedMax)} | ${w.stallsPerMille.toFixed(1)}‰ | ${w.rps.toFixed(0)} | ${b.rps.toFixed(0)}, ${f(b.loadedP99)} | ${x(w.p50, r.bareHttp.p50)} | ${x(w.loadedP99, b.loadedP99)} | ${x(w.rps, b.rps)} |`;
      };
      return [row('Thaw Invoke API', c.warmApi), row('Thaw HTTP trigger', c.warmTrigger)];
    }),
    '',
    '| target (Invoke API, under load, against the bare server in the same slices) | measured | met |',
    '|---|---|---|',
    ...drivers.flatMap((d) => {
      const c = r.core[d]!.warmApi;
      const b = c.baseline ?? r.bareHttp;
      const p99 = c.loadedP99 / b.loadedP99;
      const rps = c.rps / b.rps;
      return [
        `| p99 ≤ 5× the bare server's (${d}) | ${p99.toFixed(2)}× (${f(c.loadedP99)} vs ${f(b.loadedP99)} ms) | ${p99 <= 5 ? 'yes' : 'no'} |`,
        `| throughput ≥ 0.5× the bare server's (${d}) | ${rps.toFixed(2)}× (${c.rps.toFixed(0)} vs ${b.rps.toFixed(0)} req/s) | ${rps >= 0.5 ? 'yes' : 'no'} |`,
      ];
    }),
    '',
    '## Full cold start vs a bare `node hello.js` process start',
    '',
    '| | p50 ms | p90 ms | vs bare process |',
    '|---|---|---|---|',
    `| bare \`node hello.js\` (start to exit) | ${f(r.bareProcessStartMs.p50)} | ${f(r.bareProcessStartMs.p90)} | 1.00× |`,
    ...drivers.flatMap((d) => {
      const c = r.core[d]!;
      return [
        `| Thaw full cold start, package fetched and unpacked (${d}) | ${f(c.coldStartMs.p50)} | ${f(c.coldStartMs.p90)} | ${x(c.coldStartMs.p50, r.bareProcessStartMs.p50)} |`,
        `| Thaw cold start, package already unpacked on the node (${d}) | ${f(c.cachedColdStartMs.p50)} | ${f(c.cachedColdStartMs.p90)} | ${x(c.cachedColdStartMs.p50, r.bareProcessStartMs.p50)} |`,
      ];
    }),
    '',
    `## Where the cold start goes (median per phase, server side, ${drivers.join(' vs ')})`,
    '',
    `| phase | ${drivers.map((d) => `full cold ${d} ms | share`).join(' | ')} | ${drivers.map((d) => `code cached ${d} ms`).join(' | ')} |`,
    `|---|${drivers.map(() => '---|---').join('|')}|${drivers.map(() => '---').join('|')}|`,
    ...Object.keys(main.coldStartPhasesMs).filter((k) => k !== 'total').map((k) =>
      `| ${k} | ${drivers.map((d) => { const c = r.core[d]!; return `${f(c.coldStartPhasesMs[k])} | ${((c.coldStartPhasesMs[k] / c.coldStartPhasesMs.total) * 100).toFixed(1)}%`; }).join(' | ')} | ${drivers.map((d) => f(r.core[d]!.cachedColdStartPhasesMs[k])).join(' | ')} |`),
    `| total | ${drivers.map((d) => `${f(r.core[d]!.coldStartPhasesMs.total)} | 100%`).join(' | ')} | ${drivers.map((d) => f(r.core[d]!.cachedColdStartPhasesMs.total)).join(' | ')} |`,
    '',
    'Phases overlap: the runtime boots (`runtime`) while the code is fetched and unpacked, so shares do not add up to 100%. `sandbox` is the sandbox\'s creation on its own (for `namespaces`: its cgroup, its slot and the spawn of bubblewrap); `env` includes binding the code into the sandbox.',
    '',
    ...renderSandboxCost(r),
    ...(r.ladders[mainDriver] ? renderLadder(r.ladders[mainDriver]!, r.bareProcessStartMs.p50, mainDriver) : []),
    ...(r.publish ? renderPublish(r.publish) : []),
    ...(r.paged ? renderPaged(r.paged, r.bareProcessStartMs.p50) : []),
    ...(r.paged ? renderTierMemory(r.paged) : []),
    ...(r.network ? renderNetwork(r.network) : []),
    ...(r.compat ? renderCompat(r.compat) : []),
    ...(r.devLoop ? renderDevLoop(r.devLoop) : []),
    ...(r.beyond ? [...renderOrigin(r.beyond.origin), ...renderImages(r.beyond.images), ...renderOnDemand(r.beyond.ondemand), ...renderCluster(r.beyond.cluster), ...renderOtel(r.beyond.otel)] : []),
    '## Policies (simulated with this run\'s tier costs)',
    '',
    `Trace ${r.policies.trace}; tier costs ${Object.entries(r.policies.costs).map(([k, v]) => (k.endsWith('Fraction') ? `${k} ${v.toFixed(3)}` : `${k} ${v.toFixed(1)} ms`)).join(', ')}${r.policies.constants.length ? ` (${r.policies.constants.join(', ')}: constants, not measured in this run)` : ''}. RAM counts a paged instance at its paged RAM fraction; swap is what paged instances put on the swap device. Ratios against fixed:10m in the same run; the sweep and chart are in [policies.md](policies.md).`,
    '',
    '| policy | cold-start rate | p75 function rate | RAM GB·s | swap GB·s | paged starts | p75 vs fixed:10m | RAM vs fixed:10m | sim wall |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.policies.runs.map((p) => `| ${p.label} | ${(p.coldStartRate * 100).toFixed(1)}% | ${(p.p75FunctionColdStartRate * 100).toFixed(1)}% | ${p.wastedMemoryGBs} | ${p.swapGBs} | ${p.byPath.paged} | ${x(p.p75FunctionColdStartRate, r.policies.runs[0].p75FunctionColdStartRate)} | ${x(p.wastedMemoryGBs, r.policies.runs[0].wastedMemoryGBs)} | ${(p.wallMs / 1000).toFixed(1)} s |`),
    '',
  ];
  return lines.join('\n');
}

/** What confinement costs on each path: the namespaces driver against the process driver, same run. */
function renderSandboxCost(r: Results): string[] {
  const ns = r.ladders.namespaces;
  const pr = r.ladders.process;
  const cn = r.core.namespaces;
  const cp = r.core.process;
  if (!ns || !pr || !cn || !cp) return [];
  const f = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '-' : Math.abs(n) < 10 ? n.toFixed(2) : n.toFixed(1));
  const d = (a?: number, b?: number) => (a === undefined || b === undefined ? '-' : `${a - b >= 0 ? '+' : ''}${f(a - b)}`);
  const fns = Object.keys(ns.functions);
  const lines = [
    '## What the sandbox costs: namespaces vs process driver',
    '',
    `First request of a fresh version by ladder path (restored: of one published version, restored anew each time; median ms over ${ns.functions[fns[0]].cold?.n ?? 0} runs each; both drivers measured in this run, same paths and cache states).`,
    '',
    '| function | path | process p50 | namespaces p50 | difference ms | ratio |',
    '|---|---|---|---|---|---|',
  ];
  for (const fn of fns) for (const p of PATHS) {
    const a = pr.functions[fn]?.[p]?.p50;
    const b = ns.functions[fn]?.[p]?.p50;
    lines.push(`| ${fn} | ${PATH_LABELS[p]} | ${f(a)} | ${f(b)} | ${d(b, a)} | ${a && b ? (b / a).toFixed(2) + '×' : '-'} |`);
  }
  const hello = (l: LadderResults, p: (typeof PATHS)[number]) => l.functions.hello?.[p]?.p50;
  const pooledDelta = (hello(ns, 'pooled') ?? NaN) - (hello(pr, 'pooled') ?? NaN);
  const coldDelta = cn.coldStartMs.p50 - cp.coldStartMs.p50;
  const thawRatio = (hello(ns, 'thawed') ?? NaN) / (hello(ns, 'warm') ?? NaN);
  const warmDelta = cn.warmApi.p50 - cp.warmApi.p50;
  lines.push(
    '',
    '| target | measured | met |',
    '|---|---|---|',
    `| pooled path within +2 ms of the process driver (hello) | ${d(hello(ns, 'pooled'), hello(pr, 'pooled'))} ms | ${pooledDelta <= 2 ? 'yes' : 'no'} |`,
    `| full cold start within +10 ms (hello, core run of ${r.runs.cold}) | ${d(cn.coldStartMs.p50, cp.coldStartMs.p50)} ms | ${coldDelta <= 10 ? 'yes' : 'no'} |`,
    `| thaw still within 3× of warm (hello, confined) | ${thawRatio.toFixed(2)}× | ${thawRatio <= 3 ? 'yes' : 'no'} |`,
    `| no change to warm latency (Invoke API p50) | ${d(cn.warmApi.p50, cp.warmApi.p50)} ms | ${Math.abs(warmDelta) <= 0.25 ? 'yes' : `no (${warmDelta > 0 ? 'slower' : 'faster'})`} |`,
    `| sandbox phase on its own (full cold, median) | ${f(cn.coldStartPhasesMs.sandbox)} ms confined vs ${f(cp.coldStartPhasesMs.sandbox)} ms process | - |`,
    '',
  );
  if (ns.frozenRssMb && pr.frozenRssMb) {
    lines.push(`A frozen hello instance: confined ${ns.frozenRssMb.frozen.toFixed(1)} MB resident (all processes of its sandbox; ${ns.frozenRssMb.idle.toFixed(1)} MB idle before freezing), unconfined ${pr.frozenRssMb.frozen.toFixed(1)} MB (${pr.frozenRssMb.idle.toFixed(1)} MB idle).`, '');
  }
  return lines;
}

/** Why the network figures cannot be measured here, or null. */
function networkSkip(): string | null {
  const probe = probeNamespaces();
  if (!probe.ok) return `${probe.reason} (${probe.fix})`;
  if (spawnSync('ip', ['-V']).status !== 0) return 'iproute2 is missing (apt-get install iproute2)';
  return null;
}

function renderPaged(p: PagedResults, bare?: number): string[] {
  const f = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
  const fns = Object.entries(p.functions);
  return [
    '## The paged tier (namespaces driver, zram)',
    '',
    `A frozen instance's memory pushed out to a zram swap device (lzo-rle) after it was frozen a while; the next request resumes it and its pages come back as they are touched. Per function, ${fns[0]?.[1].n ?? 0} fresh versions (MemorySize 512), each: the first request after a freeze (thawed), after a page-out (paged), and the next one (warm), in this run${bare ? `; a bare \`node\` process start took ${f(bare)} ms` : ''}. What the instances hold in memory per tier is in the next table.`,
    '',
    '| function | paged first request ms | thawed ms | warm ms | paged vs warm | target paged ≤ | met |',
    '|---|---|---|---|---|---|---|',
    ...fns.map(([fn, x]) => {
      const target = fn === 'hello' ? 5 : 10;
      return `| ${fn} | ${f(x.paged)} | ${f(x.thawed)} | ${f(x.warm)} | ${(x.paged / x.warm).toFixed(1)}× | ${target} ms | ${x.paged <= target ? 'yes' : 'no'} |`;
    }),
    '',
    ...(p.zram ? [`zram at the end: ${f(p.zram.origMb)} MB stored in ${f(p.zram.comprMb)} MB (${(p.zram.origMb / Math.max(p.zram.comprMb, 1e-9)).toFixed(1)}:1), the device using ${f(p.zram.memUsedMb)} MB of RAM with its allocator's overhead.`, ''] : []),
  ];
}

/** What one instance holds per tier, from the paged bench: the figures the simulator's tiers take. */
function renderTierMemory(p: PagedResults): string[] {
  const mb = (b: number) => { const v = b / 1048576; return v < 10 ? v.toFixed(2) : v.toFixed(1); };
  const fns = Object.entries(p.functions);
  return [
    '## Memory per instance by tier (namespaces driver)',
    '',
    `Medians over the paged tier's ${fns[0]?.[1].n ?? 0} versions per function (MemorySize 512). Resident: the instance's private (anonymous) memory from its memory cgroup, all its processes; idle after its first request, frozen just before its page-out, paged just after. Compressed: what zram's compressed store (\`compr_data_size\`) grew by across the instance's page-out, nothing else paging meanwhile (without the allocator's overhead). Paged RAM = paged resident + compressed, against the same instance frozen. File pages (the node binary, shared by all instances) are in none of these.`,
    '',
    '| function | warm idle MB | frozen MB | paged resident MB | paged compressed MB | paged in swap MB | compression | paged RAM MB | paged RAM vs frozen | target ≤ 0.2× |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...fns.map(([fn, x]) => {
      const frac = x.pagedRamBytes / x.frozenResidentBytes;
      return `| ${fn} | ${mb(x.warmIdleResidentBytes)} | ${mb(x.frozenResidentBytes)} | ${mb(x.pagedResidentBytes)} | ${mb(x.pagedCompressedBytes)} | ${mb(x.pagedSwappedBytes)} | ${(x.pagedSwappedBytes / Math.max(x.pagedCompressedBytes, 1)).toFixed(1)}:1 | ${mb(x.pagedRamBytes)} | ${frac.toFixed(3)}× | ${frac <= 0.2 ? 'met' : 'no'} |`;
    }),
    '',
  ];
}

/** The first request of a freshly published version, prewarm on, against the targets of issue 13. */
function renderPublish(p: PublishResults): string[] {
  const f = (v: number) => (Number.isNaN(v) ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(1));
  const starts = (s: Record<string, number>) => Object.entries(s).map(([k, n]) => `${k} ${n}`).join(', ') || '-';
  const fns = Object.entries(p.functions);
  const { bareStartMs: bare, heavyInitBareInitMs: init } = p.baselines;
  const live = [...new Set(fns.flatMap(([, x]) => Object.keys(x.liveAtPublish)))].sort();
  const lines = [
    `## First request after publish (${p.driver} driver, version prewarm on)`,
    '',
    `A function with traffic (a live instance of an earlier version, called just before) gets a new version (a configuration change, then PublishVersion); the new version's first request is sent right after PublishVersion answers, racing the prewarm the publish starts, or once the prewarm has settled (the prewarmed instance initialized and the runtime pool refilled, waited for on the instances and node APIs, not a sleep). Every publish finds nothing starting on the node and its runtime pool full. The platform as it ships (runtime pool, default policy) except snapshots, off here: neither request would use one (not built when the first arrives, the second is warm), and a build per publish (heavy-init's takes seconds of CPU) would make the rows too dear; so the racing request does not compete with a snapshot build here, as it would by default. ${fns[0]?.[1].racing.n ?? 0} publishes of each kind per function; path: the \`X-Thaw-Start\` of each request, counted. Live instances of the function when a version was published: ${live.join(', ')}. Baselines measured interleaved with the publishes: a bare \`node hello.mjs\` start (${f(bare.p50)} / ${f(bare.p90)} ms, p50 / p90) and heavy-init's module init (the import of its handler file, as Thaw's \`init\` phase times it) in a bare \`node\` process (${f(init.p50)} / ${f(init.p90)} ms).`,
    '',
    '| function | right after publish p50 / p90 ms | path | after it settled p50 / p90 ms | path | prewarmed instance ready after publish p50 / p90 ms | prewarm path |',
    '|---|---|---|---|---|---|---|',
    ...fns.map(([fn, x]) => `| ${fn} | ${f(x.racing.p50)} / ${f(x.racing.p90)} | ${starts(x.racing.starts)} | ${f(x.settled.p50)} / ${f(x.settled.p90)} | ${starts(x.settled.starts)} | ${f(x.prewarmReadyMs.p50)} / ${f(x.prewarmReadyMs.p90)} | ${starts(x.prewarmStarts)} |`),
    '',
    '| target (p50) | right after publish | met | after it settled | met |',
    '|---|---|---|---|---|',
  ];
  const row = (label: string, fn: string, base: number, limit: number) => {
    const x = p.functions[fn];
    if (!x) return [];
    const a = x.racing.p50 / base;
    const b = x.settled.p50 / base;
    return [`| ${label} | ${a.toFixed(3)}× | ${a <= limit ? 'yes' : 'no'} | ${b.toFixed(3)}× | ${b <= limit ? 'yes' : 'no'} |`];
  };
  lines.push(
    ...row(`hello ≤ 0.1× a bare \`node\` start (${f(bare.p50)} ms)`, 'hello', bare.p50, 0.1),
    ...row(`heavy-init ≤ 0.05× its bare-process init (${f(init.p50)} ms)`, 'heavy-init', init.p50, 0.05),
    '',
  );
  return lines;
}

function renderNetwork(n: NetworkResults): string[] {
  const f = (v: number) => (Number.isNaN(v) ? '-' : v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1));
  const attach = n.attachMs.pooled.p50 / n.attachMs.created.p50;
  const egress = n.egressMs.proxied.p50 / n.egressMs.direct.p50;
  const dp = n.coldStartMs.pooled.vpc - n.coldStartMs.pooled.none;
  const dc = n.coldStartMs.cold.vpc - n.coldStartMs.cold.none;
  return [
    '## Networks (namespaces driver)',
    '',
    `Each against a baseline of this run: a private network's namespace taken ready from its pool vs made for the instance (namespace, veth pair, bridge port, address; ${n.coldStartMs.runs} each); a request from inside a function through the relay and the egress proxy vs the same \`fetch\` loop in a process on the host straight to the server (keep-alive both); the first request of a fresh version of a function on a private network vs the same function on none, alternating run by run (${n.coldStartMs.runs} each).`,
    '',
    '| | measured (p50 / p90 ms) | baseline (p50 / p90 ms) | ratio or difference | target | met |',
    '|---|---|---|---|---|---|',
    `| network attach: ready namespace vs made now | ${f(n.attachMs.pooled.p50)} / ${f(n.attachMs.pooled.p90)} | ${f(n.attachMs.created.p50)} / ${f(n.attachMs.created.p90)} | ${attach.toFixed(4)}× | ≤ 0.05× | ${attach <= 0.05 ? 'yes' : 'no'} |`,
    `| egress request through the proxy vs direct from the host | ${f(n.egressMs.proxied.p50)} / ${f(n.egressMs.proxied.p90)} | ${f(n.egressMs.direct.p50)} / ${f(n.egressMs.direct.p90)} | ${egress.toFixed(2)}× | - | - |`,
    `| pooled start (hello): on a private network vs none | ${f(n.coldStartMs.pooled.vpc)} | ${f(n.coldStartMs.pooled.none)} | ${dp >= 0 ? '+' : ''}${f(dp)} ms | within +2 ms | ${dp <= 2 ? 'yes' : 'no'} |`,
    `| full cold start (hello, no pool): on a private network vs none | ${f(n.coldStartMs.cold.vpc)} | ${f(n.coldStartMs.cold.none)} | ${dc >= 0 ? '+' : ''}${f(dc)} ms | within +2 ms | ${dc <= 2 ? 'yes' : 'no'} |`,
    '',
  ];
}

function renderLadder(l: LadderResults, bare: number, driver: Driver): string[] {
  const f = (n: number | undefined) => (n === undefined ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(1));
  const fns = Object.keys(l.functions);
  const get = (fn: string, p: (typeof PATHS)[number]) => l.functions[fn][p];
  const lines = [
    `## The instance ladder: first-request latency by path (${driver} driver)`,
    '',
    `Client-observed latency of the first request of a fresh version (median and p90 over ${get(fns[0], 'cold')?.n ?? 0} runs each), against a bare \`node\` process start (${f(bare)} ms, measured above). \`cold\` is a full cold start: the package was evicted from the node's code cache, so it is fetched and unpacked again; \`cold, code cached\` is the same start with the package still unpacked on the node, as the pooled and restored paths find it (the two alternate, run by run). \`restored\` is a start of one published version from its snapshot, built once (a build per version costs seconds) and restored anew each time (its instance stopped after each request). Chart: [ladder.svg](ladder.svg).`,
    '',
    `| function | ${PATHS.map((p) => `${PATH_LABELS[p]} p50 / p90 ms`).join(' | ')} |`,
    `|---|${PATHS.map(() => '---').join('|')}|`,
    ...fns.map((fn) => `| ${fn} | ${PATHS.map((p) => `${f(get(fn, p)?.p50)} / ${f(get(fn, p)?.p90)}`).join(' | ')} |`),
    '',
    '| target | measured | met |',
    '|---|---|---|',
  ];
  const ratio = (a?: number, b?: number) => (a && b ? a / b : NaN);
  const hello = (p: (typeof PATHS)[number]) => get('hello', p)?.p50;
  const heavy = (p: (typeof PATHS)[number]) => get('heavy-init', p)?.p50;
  const poolGain = ratio(hello('cold'), hello('pooled'));
  const thawRatio = ratio(hello('thawed'), hello('warm'));
  const restoreGain = 1 - ratio(heavy('restored'), heavy('cold'));
  const poolGainCached = ratio(hello('coldCached'), hello('pooled'));
  const restoreGainCached = 1 - ratio(heavy('restored'), heavy('coldCached'));
  lines.push(
    `| hello via the pool ≥ 10× faster than its full cold start | ${poolGain.toFixed(1)}× | ${poolGain >= 10 ? 'yes' : 'no'} |`,
    `| thaw of a frozen instance within 3× of a warm invoke | ${thawRatio.toFixed(2)}× | ${thawRatio <= 3 ? 'yes' : 'no'} |`,
    `| heavy-init restored ≥ 80% faster than its full cold start | ${(restoreGain * 100).toFixed(0)}% faster | ${restoreGain >= 0.8 ? 'yes' : 'no'} |`,
    `| the same two against a cold start with the code cached (like for like) | pool ${poolGainCached.toFixed(1)}×, restore ${(restoreGainCached * 100).toFixed(0)}% faster | ${poolGainCached >= 10 ? 'yes' : 'no'}, ${restoreGainCached >= 0.8 ? 'yes' : 'no'} |`,
    '',
  );
  if (l.frozenRssMb) lines.push(`A frozen hello instance: RSS ${l.frozenRssMb.frozen.toFixed(1)} MB after its heap was shrunk (idle before freezing: ${l.frozenRssMb.idle.toFixed(1)} MB), and no CPU.`, '');
  const fullColds = fns.reduce((n, fn) => n + (get(fn, 'cold')?.n ?? 0), 0);
  if (l.codeCache) lines.push(`The node's code cache (unpacked packages) over the ladder run: ${l.codeCache.hits} hits, ${l.codeCache.misses} misses (hit rate ${l.codeCache.hitRate === null ? '-' : `${(l.codeCache.hitRate * 100).toFixed(0)}%`}; the ${fullColds} full cold starts evict on purpose${l.codeCache.misses === fullColds ? ', and nothing else missed' : ''}).`, '');
  if (l.compileCacheFiles !== null) lines.push(`V8's compile cache (module.enableCompileCache, one directory per package): ${l.compileCacheFiles} files written over the run${l.compileCacheFiles === 0 ? ': Node writes it when a process exits, and instances are stopped with SIGKILL, so every path here compiled its code from source' : ''}.`, '');
  return lines;
}

await main();

/** The development loop (bench/dev-loop.ts): a save to the next invoke's response, and `thaw deploy` itself. */
function renderDevLoop(d: DevLoopResults): string[] {
  const row = (label: string, xs: number[], target: string) => { const m = median(xs); return `| ${label} | ${m.toFixed(0)} | ${quantile(xs, 0.9).toFixed(0)} | ${(m / median(d.bareNode)).toFixed(2)}× | ${target} |`; };
  const met = (xs: number[], limit: number) => (median(xs) <= limit ? `≤ ${limit} ms: met` : `≤ ${limit} ms: **missed**`);
  return [
    '## The development loop', '',
    `${d.rounds} saves, \`thaw dev\` and \`thaw deploy\` interleaved on one \`thaw up\`; each round waits for the new code's own answer. The floor is a bare \`node -e 0\` (${median(d.bareNode).toFixed(0)} ms here).`, '',
    '| step | median (ms) | p90 (ms) | vs bare node start | target |', '|---|---|---|---|---|',
    row('`thaw dev`: save → response of the next invoke', d.devSaveToResponse, met(d.devSaveToResponse, 100)),
    row('`thaw dev`: save → `$LATEST` published', d.devSaveToPublished, '-'),
    row('`thaw deploy` (the command, a small function)', d.deployCommand, met(d.deployCommand, 200)),
    row('`thaw deploy` + invoke', d.deployThenInvoke, '-'),
    '',
  ];
}
