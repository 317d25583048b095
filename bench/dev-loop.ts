// The local development loop (issue 14): from a file save to the response of the next invoke, with `thaw
// dev` watching the directory, against `thaw deploy` then invoke, measured interleaved in the same run on a
// real `thaw up`. Each round edits the handler to return a new value and waits for exactly that value, so
// a figure is never an old code's answer. THAW_BASELINE_BIN=/path/to/other/bin/thaw.js also times that
// CLI's `thaw deploy` in the same rounds (before/after of the CLI's start-up work).
// `npm run bench` runs it as a part (devLoopBench); alone: node bench/dev-loop.ts [rounds]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dist } from './stats.ts';

const BIN = join(resolve(import.meta.dirname, '..'), 'bin', 'thaw.js');
const BASELINE = process.env.THAW_BASELINE_BIN;
const now = () => performance.now();
const source = (v: string) => `export const handler = async () => { console.log(${JSON.stringify(v)}); return ${JSON.stringify(v)}; };\n`;

/** A child whose output is kept, with a wait for a pattern appearing after a given point. */
function watched(child: ChildProcess) {
  let out = '';
  const waiters: { from: number; re: RegExp; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) if (w.re.test(out.slice(w.from))) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  };
  child.stdout?.on('data', (c) => { out += c; check(); });
  child.stderr?.on('data', (c) => { out += c; check(); });
  return {
    get length() { return out.length; },
    text: () => out,
    until: (from: number, re: RegExp) => new Promise<void>((r) => { waiters.push({ from, re, resolve: r }); check(); }),
  };
}

const run = (bin: string, args: string[], env: Record<string, string>) => new Promise<number>((r, reject) => {
  const c = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  c.stderr!.on('data', (d) => { err += d; });
  c.on('exit', (code) => (code === 0 ? r(0) : reject(new Error(`${args.join(' ')} exited ${code}: ${err}`))));
});

async function invoke(url: string, name: string): Promise<string> {
  const r = await fetch(`${url}/2015-03-31/functions/${name}/invocations`, { method: 'POST', body: '{}' });
  return r.json() as Promise<string>;
}

export interface DevLoopResults {
  rounds: number;
  devSaveToResponse: number[]; devSaveToPublished: number[]; deployCommand: number[]; deployThenInvoke: number[];
  baselineDeployCommand: number[];
  /** A bare `node -e 0`: the floor of any command's start on this machine. */
  bareNode: number[];
}

export async function devLoopBench(rounds: number, progress: (s: string) => void = () => {}): Promise<DevLoopResults> {
  const work = await mkdtemp(join(tmpdir(), 'thaw-devloop-'));
  const cache = await mkdtemp('/dev/shm/thaw-devloop-cache-');
  const up = spawn(process.execPath, [BIN, 'up', '--port', '0', '--data', join(work, 'data'), '--cache', cache, '--no-snapshots'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const upOut = watched(up);
  let dev: ChildProcess | null = null;
  try {
    await upOut.until(0, /Thaw is up at http:\/\/\S+/);
    const url = /Thaw is up at (http:\/\/\S+)/.exec(upOut.text())![1];
    const env = { THAW_ENDPOINT: url };
    const devDir = join(work, 'dev');
    const deployDir = join(work, 'deploy');
    await Promise.all([devDir, deployDir].map(async (d) => { await (await import('node:fs/promises')).mkdir(d); await writeFile(join(d, 'index.mjs'), source('v0')); }));
    await run(process.execPath, [BIN, 'deploy', deployDir, '--name', 'deployloop'], env);
    dev = spawn(process.execPath, [BIN, 'dev', devDir, '--name', 'devloop'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const devOut = watched(dev);
    await devOut.until(0, /thaw dev: watching/);
    await invoke(url, 'devloop');

    const rows = { devSaveToResponse: [] as number[], devSaveToPublished: [] as number[], deployCommand: [] as number[], deployThenInvoke: [] as number[], baselineDeployCommand: [] as number[] };
    for (let i = 1; i <= rounds; i++) {
      progress(`dev loop ${i}/${rounds}`);
      // thaw dev: save, wait for the publish to be announced, invoke.
      const v = `dev-${i}`;
      const mark = devOut.length;
      const t0 = now();
      await writeFile(join(devDir, 'index.mjs'), source(v));
      await devOut.until(mark, /published devloop:\$LATEST updated/);
      const t1 = now();
      const got = await invoke(url, 'devloop');
      const t2 = now();
      if (got !== v) throw new Error(`thaw dev round ${i}: the invoke answered ${JSON.stringify(got)}, not ${v}`);
      rows.devSaveToPublished.push(t1 - t0);
      rows.devSaveToResponse.push(t2 - t0);

      // thaw deploy then invoke, as the issue measured it.
      const w = `deploy-${i}`;
      await writeFile(join(deployDir, 'index.mjs'), source(w));
      const d0 = now();
      await run(process.execPath, [BIN, 'deploy', deployDir, '--name', 'deployloop'], env);
      const d1 = now();
      const got2 = await invoke(url, 'deployloop');
      const d2 = now();
      if (got2 !== w) throw new Error(`thaw deploy round ${i}: the invoke answered ${JSON.stringify(got2)}, not ${w}`);
      rows.deployCommand.push(d1 - d0);
      rows.deployThenInvoke.push(d2 - d0);

      if (BASELINE) {
        const b0 = now();
        await run(process.execPath, [BASELINE, 'deploy', deployDir, '--name', 'deployloop'], env);
        rows.baselineDeployCommand.push(now() - b0);
      }
    }
    const bare: number[] = [];
    for (let i = 0; i < rounds; i++) { const b0 = now(); await run(process.execPath, ['-e', '0'], {}); bare.push(now() - b0); }
    return { rounds: rounds, ...rows, bareNode: bare };
  } finally {
    dev?.kill('SIGINT');
    up.kill('SIGTERM');
    await new Promise((r) => up.once('exit', r));
    await rm(work, { recursive: true, force: true });
    await rm(cache, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const r = await devLoopBench(Number(process.argv[2] ?? 10));
  const fmt = (xs: number[]) => { const d = dist(xs); return `median ${d.p50.toFixed(0)} ms, p90 ${d.p90.toFixed(0)} ms`; };
  console.log(`dev loop, ${r.rounds} saves each (interleaved), node ${process.version}:`);
  console.log(`  thaw dev: save -> response of the next invoke   ${fmt(r.devSaveToResponse)}`);
  console.log(`  thaw dev: save -> $LATEST published            ${fmt(r.devSaveToPublished)}`);
  console.log(`  thaw deploy (command alone)                    ${fmt(r.deployCommand)}`);
  console.log(`  thaw deploy + invoke                           ${fmt(r.deployThenInvoke)}`);
  if (BASELINE) console.log(`  baseline thaw deploy (${BASELINE})  ${fmt(r.baselineDeployCommand)}`);
  console.log(`  floor: a bare \`node -e 0\`                      ${fmt(r.bareNode)}`);
}
