// What exporting traces costs (issue 16): warm invocation throughput of a Thaw that exports every
// invocation's spans over OTLP/HTTP against the same Thaw without an endpoint, in one run, alternating
// one-second slices of load so the host's drift weighs on both alike. The OTLP receiver is a node:http sink
// in this process that counts the spans it is sent (proof the exporter ran). Each Thaw in its own process.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { zipEntries } from '../src/codestore/index.ts';
import { dist } from './stats.ts';

export interface OtelResults {
  off: { rps: number; p50: number; p90: number };
  on: { rps: number; p50: number; p90: number };
  /** Exporting's throughput over not exporting's: the geometric mean of the two rounds; 1 means it costs nothing. */
  throughputRatio: number;
  /** The ratio in the round where the server without an exporter started first, and in the other. */
  ratiosByStartOrder: number[];
  /** Invocations run on the exporting server and spans its exporter delivered (a warm one has three). */
  invocationsExported: number;
  spansReceived: number;
  concurrency: number;
  seconds: number;
}

type Request = (url: string, method?: string, body?: string) => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;
const HELLO = 'export const handler = async (event) => ({ hello: event.name ?? "world" });\n';

function startThaw(root: string, dataDir: string, cacheDir: string, env: NodeJS.ProcessEnv): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(root, 'bench', 'server.ts'), dataDir, cacheDir, JSON.stringify({ poolSize: 0, freezeAfterMs: -1, snapshots: false, sandbox: 'process' })], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => { buf += d; const m = /THAW_URL (\S+)/.exec(buf); if (m) resolve({ url: m[1], child }); });
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
}

/** An OTLP/HTTP sink: answers every export and counts the spans in it. */
async function otlpSink(): Promise<{ url: string; spans: () => number; close(): Promise<void> }> {
  let spans = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, spans: () => spans, close: () => new Promise((ok) => server.close(() => ok())) };
}

type Side = 'on' | 'off';
interface Tally { lat: number[]; count: number; ms: number }

export async function otelBench(o: { root: string; seconds: number; concurrency: number; request: Request; progress(s: string): void; done(s: string): void }): Promise<OtelResults> {
  const work = await mkdtemp('/dev/shm/thaw-bench-otel-');
  const sink = await otlpSink();
  const children: ChildProcess[] = [];
  const base = { ...process.env };
  delete base.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete base.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const zip = zipEntries([{ path: 'index.mjs', data: Buffer.from(HELLO) }]).toString('base64');

  /**
   * One round: a server per side, started in `order`, warmed, then `seconds` pairs of one-second slices.
   * Two servers with the same options differ here by the order they were started in (an A/A run of this
   * bench measured ×0.68 and ×1.20 for the second against the first), so the result is the geometric mean of
   * one round in each order, in which that effect cancels.
   */
  const round = async (order: readonly Side[], tally: Record<Side, Tally>): Promise<number> => {
    const servers = {} as Record<Side, { url: string; child: ChildProcess }>;
    for (const side of order) {
      const env = side === 'on' ? { ...base, OTEL_EXPORTER_OTLP_ENDPOINT: sink.url } : base;
      servers[side] = await startThaw(o.root, join(work, `${order[0]}-first-${side}-data`), join(work, `${order[0]}-first-${side}-cache`), env);
      children.push(servers[side].child);
      const r = await o.request(`${servers[side].url}/2015-03-31/functions`, 'POST', JSON.stringify({ FunctionName: 'hello', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/bench', Code: { ZipFile: zip } }));
      if (r.status !== 201) throw new Error(`CreateFunction failed: ${r.status} ${r.body}`);
    }
    const invoke = (side: Side) => async () => {
      const r = await o.request(`${servers[side].url}/2015-03-31/functions/hello/invocations`, 'POST', '{"name":"bench"}');
      if (r.status !== 200) throw new Error(`invoke failed: ${r.status} ${r.body}`);
      return r.headers['x-thaw-start'];
    };
    // Until a burst of concurrent calls finds every one warm: an instance per client before anything is
    // measured (a cold start inside a slice would weigh on one side only).
    for (const side of order) {
      let ready = false;
      for (let k = 0; k < 200 && !ready; k++) ready = (await Promise.all(Array.from({ length: o.concurrency * 4 }, invoke(side)))).every((s) => s === 'warm');
      if (!ready) throw new Error(`the ${side} server did not reach ${o.concurrency} warm instances`);
    }
    const mine = { on: { lat: [], count: 0, ms: 0 }, off: { lat: [], count: 0, ms: 0 } } as Record<Side, Tally>;
    const slice = async (side: Side) => {
      const call = invoke(side);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: o.concurrency }, async () => {
        while (performance.now() < t0 + 1000) {
          const s = performance.now();
          await call();
          mine[side].lat.push(performance.now() - s);
          mine[side].count++;
        }
      }));
      mine[side].ms += performance.now() - t0;
    };
    // Slices off, on, on, off, …: whatever the second of a pair gains or loses, both sides get alike.
    for (let k = 0; k < o.seconds; k++) {
      o.progress(`otel (${order[0]} started first): slice ${k + 1}/${o.seconds}`);
      for (const side of k % 2 ? ['on', 'off'] as const : ['off', 'on'] as const) await slice(side);
    }
    // SIGTERM closes the server, which exports the exporter's last batch.
    for (const c of children.splice(0)) { c.kill('SIGTERM'); if (c.exitCode === null) await new Promise((r) => c.once('exit', r)); }
    for (const side of ['on', 'off'] as const) {
      tally[side].lat.push(...mine[side].lat);
      tally[side].count += mine[side].count;
      tally[side].ms += mine[side].ms;
    }
    return (mine.on.count / mine.on.ms) / (mine.off.count / mine.off.ms);
  };

  try {
    const tally = { on: { lat: [], count: 0, ms: 0 }, off: { lat: [], count: 0, ms: 0 } } as Record<Side, Tally>;
    const ratios = [await round(['off', 'on'], tally), await round(['on', 'off'], tally)];
    const sum = (f: Tally) => ({ rps: f.count / (f.ms / 1000), ...dist(f.lat) });
    const results: OtelResults = {
      off: sum(tally.off), on: sum(tally.on), throughputRatio: Math.sqrt(ratios[0] * ratios[1]), ratiosByStartOrder: ratios,
      invocationsExported: tally.on.count, spansReceived: sink.spans(), concurrency: o.concurrency, seconds: o.seconds,
    };
    o.done(`otel: throughput exporting ×${results.throughputRatio.toFixed(3)} of without (rounds: ×${ratios.map((r) => r.toFixed(3)).join(', ×')}); ` +
      `${results.on.rps.toFixed(0)} vs ${results.off.rps.toFixed(0)} req/s, p50 ${results.on.p50.toFixed(2)} vs ${results.off.p50.toFixed(2)} ms; ${results.spansReceived} spans received`);
    return results;
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await sink.close();
    await rm(work, { recursive: true, force: true });
  }
}

export function renderOtel(r: OtelResults): string[] {
  return [
    '## OpenTelemetry export overhead (warm invocations, process driver)',
    '',
    `${r.concurrency} clients; two rounds (each server started first once) of ${r.seconds} one-second slices alternating between a Thaw exporting every invocation's spans over OTLP/HTTP and the same Thaw without an endpoint.`,
    '',
    '| | req/s | p50 (ms) | p90 (ms) |',
    '|---|---|---|---|',
    `| no exporter | ${r.off.rps.toFixed(0)} | ${r.off.p50.toFixed(2)} | ${r.off.p90.toFixed(2)} |`,
    `| OTLP exporter | ${r.on.rps.toFixed(0)} | ${r.on.p50.toFixed(2)} | ${r.on.p90.toFixed(2)} |`,
    `| ratio (geometric mean of the rounds: ×${r.ratiosByStartOrder.map((x) => x.toFixed(3)).join(', ×')}) | ×${r.throughputRatio.toFixed(3)} | | |`,
    '',
    `Spans received by the OTLP sink: ${r.spansReceived} (at least three per warm invocation: root, schedule, handler; ${r.invocationsExported} measured invocations plus the warm-up).`,
    '',
  ];
}
