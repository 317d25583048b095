// Lambda compatibility figures (issue 14): the first request of a function on each runtime (nodejs20.x,
// 22.x, 24.x: a cold start with the code cached, as a new configuration of $LATEST finds it) against a bare
// `node hello.mjs` start of that same Node binary, measured interleaved runtime by runtime in one run; and
// response streaming: time to the first byte of a streamed response against the whole buffered response
// of the same handler.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipEntries } from '../src/codestore/index.ts';
import { runtimes } from '../src/runtimes/index.ts';
import { startServer } from './ladder.ts';
import { dist } from './stats.ts';

export const COMPAT_RUNTIMES = ['nodejs20.x', 'nodejs22.x', 'nodejs24.x'] as const;
export interface Dist { p50: number; p90: number; n: number }
export interface CompatResults {
  runtimes: Record<string, { nodeVersion: string; coldCached: Dist; bare: Dist } | { skipped: string }>;
  streaming: { firstByte: Dist; buffered: Dist; holdMs: number } | null;
}

const HELLO = 'export const handler = async (event) => ({ hello: event.name ?? "world" });\n';
const cleanEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
const stats = (xs: number[]): Dist => ({ ...dist(xs), n: xs.length });
const now = () => performance.now();

/** A bare start of this binary running hello to exit, clean environment. */
function bareStart(binary: string, file: string): Promise<number> {
  const t0 = now();
  return new Promise((res, rej) => {
    const c = spawn(binary, [file], { env: cleanEnv, stdio: 'ignore' });
    c.once('exit', (code) => (code === 0 ? res(now() - t0) : rej(new Error(`${binary} exited ${code}`))));
  });
}

/** A streaming handler: a first chunk at once, the rest after HOLD_MS (work the client need not wait for to start reading). */
const HOLD_MS = 200;
const STREAMER = `export const handler = awslambda.streamifyResponse(async (event, stream) => {
  stream.write('first;');
  await new Promise((r) => setTimeout(r, ${HOLD_MS}));
  stream.end('rest');
});
`;

/**
 * Warm, same handler: the time until the first bytes of a streamed response (InvokeWithResponseStream's
 * first PayloadChunk) against the time until the whole response of a plain Invoke, alternating.
 */
async function streamingFigures(url: string, api: (path: string, method: string, body: unknown) => Promise<unknown>, runs: number, progress: (s: string) => void): Promise<CompatResults['streaming']> {
  await api('/2015-03-31/functions', 'POST', { FunctionName: 'streamer', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/bench', Code: { ZipFile: zipEntries([{ path: 'index.mjs', data: Buffer.from(STREAMER) }]).toString('base64') } });
  await api('/2015-03-31/functions/streamer/invocations', 'POST', {});
  const firstByte: number[] = [];
  const buffered: number[] = [];
  for (let i = 0; i < runs * 3; i++) {
    progress(`streaming ${i + 1}/${runs * 3}`);
    const t0 = now();
    const res = await fetch(`${url}/2021-11-15/functions/streamer/response-streaming-invocations`, { method: 'POST', body: '{}' });
    const reader = res.body!.getReader();
    const first = await reader.read();
    if (first.done) throw new Error('the streamed response had no body');
    firstByte.push(now() - t0);
    while (!(await reader.read()).done) { /* the rest of the stream */ }
    const t1 = now();
    const whole = await fetch(`${url}/2015-03-31/functions/streamer/invocations`, { method: 'POST', body: '{}' });
    const text = await whole.text();
    buffered.push(now() - t1);
    if (!text.includes('first;rest')) throw new Error(`the buffered invoke answered ${text}`);
  }
  return { firstByte: stats(firstByte), buffered: stats(buffered), holdMs: HOLD_MS };
}

export async function compatBench(o: { root: string; runs: number; progress(s: string): void; done(s: string): void }): Promise<CompatResults> {
  const work = await mkdtemp(join(tmpdir(), 'thaw-bench-compat-'));
  const cache = await mkdtemp('/dev/shm/thaw-bench-compat-');
  let child: ChildProcess | null = null;
  try {
    const server = await startServer(o.root, join(work, 'data'), cache, { poolSize: 0, freezeAfterMs: -1, snapshots: false });
    child = server.child;
    const { url } = server;
    const api = async (path: string, method: string, body: unknown) => {
      const r = await fetch(`${url}${path}`, { method, body: JSON.stringify(body) });
      const text = await r.text();
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
      return { headers: r.headers, text };
    };
    const helloFile = join(work, 'hello.mjs');
    await writeFile(helloFile, `${HELLO}console.log(JSON.stringify(await handler({})));\n`);
    const code = zipEntries([{ path: 'index.mjs', data: Buffer.from(HELLO) }]).toString('base64');

    const results: CompatResults['runtimes'] = {};
    const live: (typeof COMPAT_RUNTIMES)[number][] = [];
    for (const r of COMPAT_RUNTIMES) {
      const kind = runtimes.get(r);
      if (!kind?.binary) { results[r] = { skipped: `Node ${kind?.nodeMajor ?? '?'} is not installed (npm ci installs it)` }; continue; }
      await api('/2015-03-31/functions', 'POST', { FunctionName: `hello-${r.replace('.', '-')}`, Runtime: r, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/bench', Code: { ZipFile: code } });
      // The first start puts the package in the node's cache: every measured start finds it there.
      await api(`/2015-03-31/functions/hello-${r.replace('.', '-')}/invocations`, 'POST', {});
      live.push(r);
    }
    const cold: Record<string, number[]> = Object.fromEntries(live.map((r) => [r, []]));
    const bare: Record<string, number[]> = Object.fromEntries(live.map((r) => [r, []]));
    for (let i = 0; i < o.runs; i++) {
      for (const r of live) {
        o.progress(`runtimes: ${r} cold start ${i + 1}/${o.runs}`);
        const name = `hello-${r.replace('.', '-')}`;
        // A new configuration of $LATEST: no instance is reused, the package is still unpacked on the node.
        await api(`/2015-03-31/functions/${name}/configuration`, 'PUT', { Environment: { Variables: { RUN: `r${i}` } } });
        const t0 = now();
        const reply = await api(`/2015-03-31/functions/${name}/invocations`, 'POST', {});
        const ms = now() - t0;
        if (reply.headers.get('x-thaw-start') !== 'cold') throw new Error(`${r}: expected a cold start, got ${reply.headers.get('x-thaw-start')}`);
        cold[r].push(ms);
        bare[r].push(await bareStart(runtimes.get(r)!.binary, helloFile));
      }
    }
    for (const r of live) {
      results[r] = { nodeVersion: runtimes.get(r)!.nodeVersion, coldCached: stats(cold[r]), bare: stats(bare[r]) };
      o.done(`${r}: cold start (code cached) ${stats(cold[r]).p50.toFixed(1)} ms, bare node ${stats(bare[r]).p50.toFixed(1)} ms`);
    }
    const streaming = await streamingFigures(url, api, o.runs, o.progress);
    if (streaming && 'firstByte' in streaming) o.done(`streaming: first byte ${streaming.firstByte.p50.toFixed(1)} ms, whole buffered response ${streaming.buffered.p50.toFixed(1)} ms`);
    return { runtimes: results, streaming };
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await rm(work, { recursive: true, force: true });
    await rm(cache, { recursive: true, force: true });
  }
}

export function renderCompat(c: CompatResults): string[] {
  const lines = ['## Runtimes: the first request on each Node, against that Node started bare', '',
    'A cold start with the package cached on the node (a new configuration of `$LATEST`, no pool, no snapshot) of a hello function, against a bare `node hello.mjs` start (start to exit) of the same binary; interleaved runtime by runtime.', '',
    '| runtime | Node | Thaw cold start p50 / p90 (ms) | bare node p50 (ms) | ratio |', '|---|---|---|---|---|'];
  for (const [r, x] of Object.entries(c.runtimes)) {
    if ('skipped' in x) { lines.push(`| ${r} | - | skipped: ${x.skipped} | | |`); continue; }
    lines.push(`| ${r} | ${x.nodeVersion} | ${x.coldCached.p50.toFixed(1)} / ${x.coldCached.p90.toFixed(1)} | ${x.bare.p50.toFixed(1)} | ${(x.coldCached.p50 / x.bare.p50).toFixed(2)}× |`);
  }
  lines.push('');
  const st = c.streaming;
  if (st && 'firstByte' in st) {
    lines.push('## Response streaming', '',
      `A warm streaming handler that writes a first chunk, works ${st.holdMs} ms, then writes the rest: the time until the client holds the first bytes (InvokeWithResponseStream, the AWS event-stream framing) against the time until it holds the buffered response of a plain Invoke of the same handler, alternating.`, '',
      '| measure | p50 (ms) | p90 (ms) | ratio |', '|---|---|---|---|',
      `| first byte, streamed | ${st.firstByte.p50.toFixed(1)} | ${st.firstByte.p90.toFixed(1)} | ${(st.firstByte.p50 / st.buffered.p50).toFixed(3)}× |`,
      `| whole response, buffered (baseline) | ${st.buffered.p50.toFixed(1)} | ${st.buffered.p90.toFixed(1)} | 1× |`, '');
  }
  return lines;
}
