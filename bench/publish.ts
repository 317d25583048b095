// The first request after a publish (issue 13), with version prewarm on: per function that has had traffic
// (one live instance of an earlier version), the first request of a freshly published version, sent (a)
// right after PublishVersion returns, racing the prewarm, and (b) once the prewarm has settled (the
// prewarmed instance initialized; waited for on the instances API). Against baselines measured interleaved
// with them: a bare `node hello.mjs` start, and heavy-init's module init run in a bare `node` process.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { zipDirectory } from '../src/codestore/index.ts';
import { generateBigPackage } from '../examples/big-package/generate.mjs';
import { startServer, type Sandbox } from './ladder.ts';
import { dist } from './stats.ts';

type Req = (url: string, method?: string, body?: string) => Promise<{ status: number; headers: Record<string, unknown>; body: string }>;
interface Dist { p50: number; p90: number; n: number }
/** Client-observed ms of the first request, and which path (X-Thaw-Start) each took, counted. */
export interface PublishRow extends Dist { starts: Record<string, number> }
export interface PublishResults {
  driver: Sandbox;
  functions: Record<string, {
    racing: PublishRow;
    settled: PublishRow;
    /** From PublishVersion's answer until the new version had an initialized instance. */
    prewarmReadyMs: Dist;
    /** The path the prewarm took (the prewarmed instance's origin), counted. */
    prewarmStarts: Record<string, number>;
    /** Live instances of the function when each version was published (what the prewarm sizes itself by). */
    liveAtPublish: Record<string, number>;
  }>;
  /** Measured interleaved with hello's and heavy-init's publishes respectively. */
  baselines: { bareStartMs: Dist; heavyInitBareInitMs: Dist };
}

type View = { functionName: string; version: string; state: string; origin: string; prewarmed: boolean };
const SETTLED = new Set(['idle', 'frozen', 'paged']);
const BUSY = new Set(['starting', 'initializing']);
const cleanEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
const count = (xs: string[]) => Object.fromEntries([...new Set(xs)].sort().map((k) => [k, xs.filter((x) => x === k).length]));
const d = (xs: number[]): Dist => ({ ...dist(xs), n: xs.length });

/** A child process to its end; what it printed. */
function run(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, argv, { env: cleanEnv, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    c.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`node ${argv.join(' ')} exited with ${code}`))));
  });
}

export async function publishBench(o: { root: string; runs: number; request: Req; driver: Sandbox; progress(s: string): void; done(s: string): void }): Promise<PublishResults> {
  const work = await mkdtemp('/dev/shm/thaw-bench-publish-');
  const dataDir = await mkdtemp(join(tmpdir(), 'thaw-bench-publish-'));
  // The platform as it ships (runtime pool, default policy), version prewarm on; snapshots off: neither
  // request uses one (not built yet when (a) arrives, (b) is warm), and a build per publish (heavy-init:
  // ~8 s of CPU here) would make the rows too dear. Without it (a) does not compete with that build.
  const server = await startServer(o.root, dataDir, join(work, 'cache'), { sandbox: o.driver, versionPrewarm: true, snapshots: false });
  try {
    const url = server.url;
    const api = async (path: string, method = 'GET', body?: unknown) => {
      const r = await o.request(`${url}${path}`, method, body === undefined ? '' : JSON.stringify(body));
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
      return r.body ? JSON.parse(r.body) : null;
    };
    const until = async <T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 120_000): Promise<T> => {
      const end = performance.now() + timeoutMs;
      for (;;) {
        const v = await check();
        if (v) return v;
        if (performance.now() > end) throw new Error(`publish bench: timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    type Pool = { ready: number; starting: number; target: number };
    /**
     * Nothing starting on the node and its runtime pool full: every publish finds the node in this state, and
     * a prewarm then takes a pooled runtime at once (its instance is listed from PublishVersion's answer on).
     */
    const quiet = async () => {
      const node = await api('/thaw/v1/node');
      if (!(node.pool as Pool[]).every((p) => p.ready >= p.target && p.starting === 0)) return false;
      return !((await api('/thaw/v1/instances')).instances as View[]).some((x) => BUSY.has(x.state));
    };

    const helloJs = join(work, 'hello.mjs');
    await writeFile(helloJs, 'export const handler = async (event) => ({ hello: event.name ?? "world" });\nconsole.log(JSON.stringify(await handler({})));\n');
    const heavyUrl = pathToFileURL(join(o.root, 'examples', 'heavy-init', 'index.mjs')).href;
    const bareStart: number[] = [];
    const heavyInit: number[] = [];
    const baseline: Record<string, () => Promise<void>> = {
      hello: async () => { const t0 = performance.now(); await run([helloJs]); bareStart.push(performance.now() - t0); },
      // The module's init as Thaw's `init` phase times it: the import of the handler file, in a fresh process.
      'heavy-init': async () => { heavyInit.push(Number(await run(['--input-type=module', '-e', `const t0 = performance.now(); await import(${JSON.stringify(heavyUrl)}); process.stdout.write(String(performance.now() - t0));`]))); },
    };

    const bigDir = join(work, 'big');
    generateBigPackage(bigDir, 30);
    const packages: Record<string, Buffer> = {
      hello: await zipDirectory(join(o.root, 'examples', 'hello')),
      'heavy-init': await zipDirectory(join(o.root, 'examples', 'heavy-init')),
      'big-package': await zipDirectory(bigDir),
    };
    const out: PublishResults['functions'] = {};
    for (const [fn, zip] of Object.entries(packages)) {
      await api('/2015-03-31/functions', 'POST', { FunctionName: fn, Runtime: 'nodejs24', Handler: 'index.handler', MemorySize: fn === 'heavy-init' ? 512 : 256, Timeout: 30, Code: { ZipFile: zip.toString('base64') } });
      const instances = async () => ((await api('/thaw/v1/instances')).instances as View[]).filter((x) => x.functionName === fn);
      const live = async () => (await instances()).filter((x) => x.state !== 'stopping' && x.state !== 'gone').length;
      /** A new version: a configuration change (so it differs), then PublishVersion; `at` is when it answered. */
      const publish = async (tag: string) => {
        await api(`/2015-03-31/functions/${fn}/configuration`, 'PUT', { Environment: { Variables: { RUN: tag } } });
        const v = String((await api(`/2015-03-31/functions/${fn}/versions`, 'POST', {})).Version);
        return { v, at: performance.now() };
      };
      const invoke = async (v: string) => {
        const t0 = performance.now();
        const r = await o.request(`${url}/2015-03-31/functions/${fn}/invocations?Qualifier=${v}`, 'POST', '{}');
        const ms = performance.now() - t0;
        if (r.status !== 200 || r.headers['x-amz-function-error']) throw new Error(`publish bench: invoke ${fn}:${v}: ${r.status} ${r.body}`);
        return { ms, start: String(r.headers['x-thaw-start']) };
      };
      const remove = (v: string) => api(`/2015-03-31/functions/${fn}?Qualifier=${v}`, 'DELETE');
      /** The prewarm is over: an initialized instance of the version, and nothing starting on the node. */
      const settled = (v: string) => until(`${fn}:${v} to settle`, async () => {
        const xs = await instances();
        return xs.some((x) => x.version === v && SETTLED.has(x.state)) && await quiet();
      });

      const got = { racing: [] as number[], racingStarts: [] as string[], settled: [] as number[], settledStarts: [] as string[], ready: [] as number[], prewarm: [] as string[], live: [] as string[] };
      // The traffic: a version that stays, called before every publish (its one instance kept, or a new one
      // if the policy stopped it); each measured version is deleted (its instances with it) after its
      // request, so every publish finds that one live instance and prewarms one.
      const { v: traffic } = await publish('traffic');
      const beforePublish = async () => {
        await invoke(traffic);
        await until('a quiet node', quiet);
        got.live.push(String(await live()));
      };
      for (let i = 0; i < o.runs; i++) {
        o.progress(`first request after publish ${fn}: ${i + 1}/${o.runs}`);
        await baseline[fn]?.();
        // (b) Once the prewarm has settled: the request finds the prewarmed instance ready.
        await beforePublish();
        const s = await publish(`s${i}`);
        const ready = await until(`a prewarmed instance of ${fn}:${s.v}`, async () => (await instances()).find((x) => x.version === s.v && SETTLED.has(x.state)));
        got.ready.push(performance.now() - s.at);
        got.prewarm.push(ready.origin);
        await settled(s.v);
        let r = await invoke(s.v);
        got.settled.push(r.ms);
        got.settledStarts.push(r.start);
        await remove(s.v);
        // (a) Right after PublishVersion answers: the request races the prewarm it started.
        await beforePublish();
        const a = await publish(`a${i}`);
        r = await invoke(a.v);
        got.racing.push(r.ms);
        got.racingStarts.push(r.start);
        await settled(a.v);
        await remove(a.v);
      }
      await remove(traffic);
      out[fn] = {
        racing: { ...d(got.racing), starts: count(got.racingStarts) },
        settled: { ...d(got.settled), starts: count(got.settledStarts) },
        prewarmReadyMs: d(got.ready),
        prewarmStarts: count(got.prewarm),
        liveAtPublish: count(got.live),
      };
      const f = out[fn];
      o.done(`first request after publish ${fn}: right after ${f.racing.p50.toFixed(1)} ms (${Object.entries(f.racing.starts).map(([k, n]) => `${k} ${n}`).join(', ')}), settled ${f.settled.p50.toFixed(1)} ms (${Object.entries(f.settled.starts).map(([k, n]) => `${k} ${n}`).join(', ')}); prewarmed instance ready ${f.prewarmReadyMs.p50.toFixed(0)} ms after publish`);
    }
    return { driver: o.driver, functions: out, baselines: { bareStartMs: d(bareStart), heavyInitBareInitMs: d(heavyInit) } };
  } finally {
    server.child.kill('SIGTERM');
    if (server.child.exitCode === null) await new Promise((r) => server.child.once('exit', r));
    await rm(work, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  }
}
