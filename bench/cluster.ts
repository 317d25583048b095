// The cluster (issue 15), `bench/run.ts --cluster-only`:
// 1. L2 peer cache: an agent's fetch of big-package (30 MB of dependencies) from a peer that holds it
//    (PeerOrigin over HTTP on loopback, checked by hash, kept locally) against the same fetch from the
//    S3-compatible origin (s3rver on loopback). Fresh local store each run, the two alternating; medians.
// 2. Placement: the share of invocations placed where an instance or the package already was, on a slice
//    of the Azure 2019 trace (synthetic when absent) across 3 agents, with the real place() against uniform
//    random placement. The agents' execution is modelled (fixed 10-minute keep-alive, memory budget with LRU
//    eviction of idle instances, packages kept once fetched): this is the placement decision replayed on a
//    trace, not three live agents running it (2 CPUs shared by the whole bench).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { generateBigPackage } from '../examples/big-package/generate.mjs';
import { BlobStore, S3Origin, s3ClientConfig, zipDirectory } from '../src/codestore/index.ts';
import { PeerOrigin, place, placeRandomly, type Candidate } from '../src/cluster/index.ts';
import { minuteArrivals, readAzureTrace, rng, syntheticTrace, type Trace } from '../src/sim/index.ts';
import { startS3 } from '../test/s3.ts';
import { median } from './stats.ts';

export interface PeerFetch { packageBytes: number; peerMs: number; originMs: number; ratio: number; runs: number }
export interface PlacementRow { strategy: 'thaw' | 'random'; invocations: number; landedWhereHeld: number; share: number; warm: number; coldStartRate: number }
export interface ClusterResults { peerFetch: PeerFetch; placement: { trace: string; minutes: [number, number]; agents: number; rows: PlacementRow[] } }

export async function clusterBench(o: { root: string; runs: number; done: (s: string) => void }): Promise<ClusterResults> {
  const peerFetch = await peerFetchBench(o.runs);
  o.done(`cluster: big-package from a peer ${peerFetch.peerMs.toFixed(1)} ms vs from the origin ${peerFetch.originMs.toFixed(1)} ms (${peerFetch.ratio.toFixed(2)}x)`);
  const placement = placementBench(o.root);
  for (const r of placement.rows) o.done(`cluster: placement ${r.strategy}: ${(r.share * 100).toFixed(1)}% landed where an instance or the package was; cold starts ${(r.coldStartRate * 100).toFixed(1)}%`);
  return { peerFetch, placement };
}

async function peerFetchBench(runs: number): Promise<PeerFetch> {
  const s3 = await startS3('thaw-bench-cluster');
  const client = new S3Client(s3ClientConfig(s3.env));
  const work = await mkdtemp(join(tmpdir(), 'thaw-bench-cluster-'));
  const token = 'bench-token-0123456789abcdef';
  // The peer: a data dir's blob store served as an agent serves it (GET /agent/v1/blobs/{sha}, bearer token).
  const held = new BlobStore(join(work, 'peer'));
  const server = createServer(async (req, res) => {
    const sha = /^\/agent\/v1\/blobs\/([0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
    if (req.headers.authorization !== `Bearer ${token}` || !sha || !(await held.has(sha))) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    (await held.stream(sha)).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const peerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const big = join(work, 'big');
    generateBigPackage(big, 30);
    const zip = await zipDirectory(big);
    const { sha256 } = await held.put(zip);
    const origin = new S3Origin({ bucket: s3.bucket, prefix: 'bench' }, client, s3.endpoint);
    await origin.put(zip, sha256);
    const times = { peer: [] as number[], origin: [] as number[] };
    for (let i = 0; i < runs; i++) {
      for (const side of ['peer', 'origin'] as const) {
        const local = new BlobStore(join(work, `local-${side}-${i}`));
        const agent = new PeerOrigin({
          local, token: () => token, origin: (h) => origin.get(h),
          peers: () => side === 'peer' ? [{ name: 'peer', url: peerUrl, packages: [sha256] }] : [],
        });
        const t0 = performance.now();
        await agent.get(sha256);
        times[side].push(performance.now() - t0);
        if (agent.fetches[side] !== 1) throw new Error(`the ${side} run did not fetch from the ${side}: ${JSON.stringify(agent.fetches)}`);
      }
    }
    const peerMs = median(times.peer), originMs = median(times.origin);
    return { packageBytes: zip.length, peerMs, originMs, ratio: peerMs / originMs, runs };
  } finally {
    server.close();
    client.destroy();
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
}

const KEEP_ALIVE_MS = 10 * 60_000;
const AGENTS = 3;
const CPUS = 2;
const BUDGET_MB = 4096;

interface SimInstance { fn: string; memoryMb: number; busyUntil: number; lastUsed: number }
interface SimAgent { name: string; instances: SimInstance[]; packages: Set<string> }

/** Replays arrivals of a trace slice on 3 modelled agents, placing each with `choose`. */
function replay(trace: Trace, from: number, to: number, choose: (cs: Candidate[], fn: string, memoryMb: number) => string): PlacementRow & { strategy: never } {
  const agents: SimAgent[] = Array.from({ length: AGENTS }, (_, i) => ({ name: `a${i + 1}`, instances: [], packages: new Set() }));
  const arrivals: { at: number; fn: string; memoryMb: number; durationMs: number }[] = [];
  for (let m = from; m < to; m++) {
    const r = rng(1000 + m);
    for (const f of trace.functions) if (f.perMinute[m]) minuteArrivals(f.perMinute[m], m, f.durationPercentiles, r, (at, durationMs) => arrivals.push({ at, fn: f.id, memoryMb: f.memoryMb, durationMs }));
  }
  arrivals.sort((a, b) => a.at - b.at);
  let landed = 0, warm = 0;
  for (const a of arrivals) {
    for (const ag of agents) ag.instances = ag.instances.filter((i) => i.busyUntil > a.at || a.at - i.lastUsed < KEEP_ALIVE_MS);
    const candidates: Candidate[] = agents.map((ag) => {
      const live = ag.instances;
      return {
        name: ag.name, cpus: CPUS, memoryBudgetMb: BUDGET_MB, packages: ag.packages,
        busy: live.filter((i) => i.busyUntil > a.at).length,
        memoryUsedMb: live.reduce((n, i) => n + i.memoryMb, 0),
        ready: new Map([[a.fn, { idle: live.filter((i) => i.fn === a.fn && i.busyUntil <= a.at).length, frozen: 0, paged: 0 }]]),
      };
    });
    const chosen = choose(candidates, a.fn, a.memoryMb);
    const ag = agents.find((x) => x.name === chosen)!;
    const idle = ag.instances.find((i) => i.fn === a.fn && i.busyUntil <= a.at);
    if (idle || ag.packages.has(a.fn)) landed++;
    if (idle) {
      warm++;
      idle.busyUntil = a.at + a.durationMs;
      idle.lastUsed = idle.busyUntil;
      continue;
    }
    // A new instance: idle ones are evicted, least recently used first, until it fits.
    let used = ag.instances.reduce((n, i) => n + i.memoryMb, 0);
    for (const victim of ag.instances.filter((i) => i.busyUntil <= a.at).sort((x, y) => x.lastUsed - y.lastUsed)) {
      if (used + a.memoryMb <= BUDGET_MB) break;
      ag.instances.splice(ag.instances.indexOf(victim), 1);
      used -= victim.memoryMb;
    }
    ag.instances.push({ fn: a.fn, memoryMb: a.memoryMb, busyUntil: a.at + a.durationMs, lastUsed: a.at + a.durationMs });
    ag.packages.add(a.fn);
  }
  const n = arrivals.length;
  return { strategy: undefined as never, invocations: n, landedWhereHeld: landed, share: n ? landed / n : 0, warm, coldStartRate: n ? (n - warm) / n : 0 };
}

function placementBench(root: string) {
  const dir = join(root, '..', 'shared', 'datasets', 'azure-functions-2019-invitro-sample');
  const trace = existsSync(join(dir, '200_inv.csv')) ? readAzureTrace(dir, '200') : syntheticTrace({ functions: 200, minutes: 1440, seed: 1 });
  // An hour mid-day: traffic of every shape (timers, steady, bursts, rare functions).
  const minutes: [number, number] = [600, Math.min(trace.minutes, 660)];
  const random = rng(7);
  const rows: PlacementRow[] = [
    { ...replay(trace, ...minutes, (cs, fn, memoryMb) => place(cs, { key: fn, codeSha256: fn, memoryMb })!.agent), strategy: 'thaw' },
    { ...replay(trace, ...minutes, (cs) => placeRandomly(cs, random)!), strategy: 'random' },
  ];
  return { trace: trace.name, minutes, agents: AGENTS, rows };
}

export function renderCluster(r: ClusterResults): string[] {
  const p = r.peerFetch;
  return [
    '', '### Cluster: L2 peer cache, big-package fetched by an agent (fresh local store)', '',
    '| package MB | from a peer (ms) | from the S3 origin (ms) | peer / origin | runs |',
    '|---|---|---|---|---|',
    `| ${(p.packageBytes / 1048576).toFixed(1)} | ${p.peerMs.toFixed(1)} | ${p.originMs.toFixed(1)} | ${p.ratio.toFixed(2)}x | ${p.runs} |`,
    '', `### Cluster: placement on ${r.placement.trace}, minutes ${r.placement.minutes.join('-')}, ${r.placement.agents} agents (modelled execution)`, '',
    '| placement | invocations | landed where an instance or the package was | warm (instance reused) | cold starts |',
    '|---|---|---|---|---|',
    ...r.placement.rows.map((x) => `| ${x.strategy} | ${x.invocations} | ${(x.share * 100).toFixed(1)}% | ${x.warm} | ${(x.coldStartRate * 100).toFixed(2)}% |`),
    '',
  ];
}
