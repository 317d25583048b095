// The network figures of `npm run bench` (namespaces driver only), each against a baseline of the same run:
//   network attach: joining a ready namespace of a private network  vs  creating one (namespace, veth pair,
//     bridge port, address) as an instance start would without the pool
//   egress: a request from inside a function through the relay and the egress proxy  vs  the same request
//     from a process on the host, straight to the server (same fetch, keep-alive both)
//   cold start: a function on a private network  vs  the same function on none (pooled runtimes both, and
//     the full cold path both), run by run alternating
// The test host is an HTTP server in a network namespace this bench creates (a veth pair; a bridge port).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock.ts';
import { zipEntries } from '../src/codestore/index.ts';
import { PrivateNetworks } from '../src/network/index.ts';
import { Mounter } from '../src/sandbox/index.ts';
import { dist, median } from './stats.ts';

type Req = (url: string, method?: string, body?: string) => Promise<{ status: number; headers: Record<string, unknown>; body: string }>;
export interface NetworkResults {
  attachMs: { pooled: { p50: number; p90: number }; created: { p50: number; p90: number } };
  egressMs: { proxied: { p50: number; p90: number }; direct: { p50: number; p90: number } };
  coldStartMs: { pooled: { vpc: number; none: number }; cold: { vpc: number; none: number }; runs: number };
}

const ip = (...a: string[]) => { const r = spawnSync('ip', a, { encoding: 'utf8' }); if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`); };

/** Same code inside the function and on the host: n sequential fetches, each timed. */
const LOOP = `async (url, n) => { const t = []; for (let i = 0; i < n; i++) { const t0 = performance.now(); const r = await fetch(url); await r.text(); t.push(performance.now() - t0); } return t; }`;

export async function networkBench(o: { root: string; runs: number; request: Req; progress(s: string): void; done(s: string): void }): Promise<NetworkResults> {
  const dataDir = await mkdtemp(join(tmpdir(), 'thaw-bench-net-'));
  const cacheDir = await mkdtemp('/dev/shm/thaw-bench-net-');
  const ns = `thawb-${process.pid}`;
  const children: ChildProcess[] = [];
  const third = 50 + (process.pid % 100);
  try {
    // The test host: an HTTP server in a namespace on a point-to-point link.
    ip('netns', 'add', ns);
    ip('link', 'add', `${ns}h`.slice(0, 15), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', `10.253.${third}.1/30`, 'dev', `${ns}h`.slice(0, 15));
    ip('link', 'set', `${ns}h`.slice(0, 15), 'up');
    ip('-n', ns, 'addr', 'add', `10.253.${third}.2/30`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    const web = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', `require('node:http').createServer((q, s) => s.end('ok')).listen(8080, () => console.log('READY'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(web);
    await new Promise<void>((resolve) => web.stdout!.on('data', (d) => { if (String(d).includes('READY')) resolve(); }));
    const webUrl = `http://10.253.${third}.2:8080/`;

    // 1. Attach: a ready namespace (the pool's) vs one made for the instance (a pool of size 0), each on a
    // network of its own, with the classes the agent uses.
    const mounter = new Mounter();
    const made = new PrivateNetworks({ mounter, dir: join(cacheDir, 'netns-made'), scopeTag: `m${process.pid}`, clock: systemClock, onError: () => {}, poolSize: 0 });
    const pool = new PrivateNetworks({ mounter, dir: join(cacheDir, 'netns-pool'), scopeTag: `p${process.pid}`, clock: systemClock, onError: () => {} });
    await made.start([]);
    await pool.start([]);
    await made.ensure({ name: 'made', subnet: `10.254.${third}.0/25`, hostAccess: false, createdAt: 0 });
    await pool.ensure({ name: 'pool', subnet: `10.254.${third}.128/25`, hostAccess: false, createdAt: 0 });
    const pooled: number[] = []; const created: number[] = [];
    try {
      await pool.detach((await pool.attach(['pool'])).netns);
      for (let i = 0; i < o.runs; i++) {
        o.progress(`network attach ${i + 1}/${o.runs}`);
        let t0 = performance.now();
        const fresh = await made.attach(['made']);
        created.push(performance.now() - t0);
        for (let k = 0; k < 400 && pool.view()[0].ready === 0; k++) await new Promise((r) => setTimeout(r, 10));
        t0 = performance.now();
        const ready = await pool.attach(['pool']);
        pooled.push(performance.now() - t0);
        if (!ready.pooled || fresh.pooled) throw new Error('attach bench: expected one made and one ready');
        await made.detach(fresh.netns);
        await pool.detach(ready.netns);
      }
    } finally {
      await made.close();
      await pool.close();
      mounter.close();
    }
    o.done(`network attach: ready ${median(pooled).toFixed(3)} ms vs made ${median(created).toFixed(1)} ms`);

    // 2 and 3 through a real server.
    const startServer = async (extra: Record<string, unknown>) => {
      const child = spawn(process.execPath, [join(o.root, 'bench', 'server.ts'), await mkdtemp(join(dataDir, 's-')), await mkdtemp(join(cacheDir, 's-')), JSON.stringify({ freezeAfterMs: -1, snapshots: false, sandbox: 'namespaces', ...extra })], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      const url = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout!.on('data', (d) => { buf += d; const m = /THAW_URL (\S+)/.exec(buf); if (m) resolve(m[1]); });
        child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
      });
      const api = async (path: string, method: string, body?: unknown) => {
        const r = await o.request(`${url}${path}`, method, body === undefined ? '' : JSON.stringify(body));
        if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
        return r.body ? JSON.parse(r.body) : null;
      };
      const stop = async () => { child.kill('SIGTERM'); if (child.exitCode === null) await new Promise((r) => child.once('exit', r)); };
      return { url, api, stop };
    };
    const zip = (text: string) => zipEntries([{ path: 'index.mjs', data: Buffer.from(text) }]).toString('base64');
    const HELLO = 'export const handler = async () => "hi";';

    /** Cold starts of `none` and `vpc` alternating, each after a configuration change; `want` the path. */
    const coldStarts = async (want: 'pooled' | 'cold') => {
      const srv = await startServer(want === 'cold' ? { poolSize: 0 } : {});
      try {
        await srv.api('/thaw/v1/networks', 'POST', { Name: 'bench', Subnet: `10.255.${third}.0/24` });
        for (const [name, extra] of [['none', {}], ['vpc', { VpcConfig: { SubnetIds: ['bench'] } }]] as const) {
          await srv.api('/2015-03-31/functions', 'POST', { FunctionName: name, Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: zip(HELLO) }, ...extra });
          await o.request(`${srv.url}/2015-03-31/functions/${name}/invocations`);
        }
        const got = { vpc: [] as number[], none: [] as number[] };
        let run = 0;
        for (let i = 0; i < o.runs; i++) {
          o.progress(`${want} start with and without a private network ${i + 1}/${o.runs}`);
          for (const name of ['none', 'vpc'] as const) {
            await srv.api(`/2015-03-31/functions/${name}/configuration`, 'PUT', { Environment: { Variables: { RUN: `r${run++}` } } });
            // Like for like: the pool (runtimes; for vpc also its namespaces) settled before each start.
            for (let k = 0; k < 400; k++) {
              const node = await srv.api('/thaw/v1/node', 'GET');
              const shape = (node.pool as { networks: string[]; ready: number; starting: number }[]).find((s) => (name === 'vpc') === (s.networks.length > 0));
              const net = (node.network.networks as { ready: number; making: number }[])[0];
              if ((want === 'cold' || (shape && shape.starting === 0 && shape.ready > 0)) && net.making === 0) break;
              await new Promise((r) => setTimeout(r, 25));
            }
            const t0 = performance.now();
            const r = await o.request(`${srv.url}/2015-03-31/functions/${name}/invocations`, 'POST', '{}');
            const ms = performance.now() - t0;
            if (String(r.headers['x-thaw-start']) === want) got[name].push(ms);
          }
        }
        o.done(`${want} start: on a private network ${median(got.vpc).toFixed(1)} ms vs none ${median(got.none).toFixed(1)} ms (${got.vpc.length}/${got.none.length} of ${o.runs} runs took the ${want} path)`);
        return { vpc: median(got.vpc), none: median(got.none) };
      } finally {
        await srv.stop();
      }
    };

    const srv = await startServer({});
    let proxied: number[]; let direct: number[];
    try {
      // 1769 MB: one full CPU's weight, as the host process of the baseline has.
      await srv.api('/2015-03-31/functions', 'POST', { FunctionName: 'egress', Runtime: 'nodejs24', Handler: 'index.handler', Timeout: 60, MemorySize: 1769, ThawEgress: { Mode: 'allow', Allow: [`10.253.${third}.2:8080`] }, Code: { ZipFile: zip(`const loop = ${LOOP};\nexport const handler = async (e) => loop(e.url, e.n);`) } });
      const N = Math.max(50, o.runs * 10);
      o.progress('egress through the proxy');
      await o.request(`${srv.url}/2015-03-31/functions/egress/invocations`, 'POST', JSON.stringify({ url: webUrl, n: 20 }));
      proxied = JSON.parse((await o.request(`${srv.url}/2015-03-31/functions/egress/invocations`, 'POST', JSON.stringify({ url: webUrl, n: N }))).body) as number[];
      o.progress('egress directly from the host');
      direct = await new Promise<number[]>((resolve, reject) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', `const loop = ${LOOP}; await loop(${JSON.stringify(webUrl)}, 20); console.log(JSON.stringify(await loop(${JSON.stringify(webUrl)}, ${N})));`], { env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout!.on('data', (d) => { out += d; });
        c.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`direct loop exited ${code}`))));
      });
    } finally {
      await srv.stop();
    }
    o.done(`egress: through the proxy ${median(proxied).toFixed(2)} ms vs direct ${median(direct).toFixed(2)} ms per request`);
    const pooledStarts = await coldStarts('pooled');
    const coldPath = await coldStarts('cold');
    return {
      attachMs: { pooled: dist(pooled), created: dist(created) },
      egressMs: { proxied: dist(proxied), direct: dist(direct) },
      coldStartMs: { pooled: pooledStarts, cold: coldPath, runs: o.runs },
    };
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) { c.kill('SIGTERM'); await new Promise((r) => c.once('exit', r)); }
    try { ip('netns', 'del', ns); } catch { /* gone */ }
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  }
}
