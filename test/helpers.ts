// Fixtures for end-to-end tests: a real Thaw server on a free port with its own data and cache dirs,
// packages built in memory, and a leak check that no instance process outlives its server.
import { before, after } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { startThaw, type RunningThaw, type UserOptions } from '../src/gateway/index.ts';
import { zipEntries } from '../src/codestore/index.ts';
import { scopeTagFor } from '../src/sandbox/index.ts';

export interface TestThaw {
  thaw: RunningThaw;
  url: string;
  dataDir: string;
  cacheDir: string;
  lambda: LambdaClient;
  /** Stops the server (drain), proves no instance process is left, removes the dirs. */
  stop(): Promise<void>;
  /** Restarts on the same data dir, as after a crash or an upgrade. */
  restart(extra?: Partial<UserOptions>): Promise<void>;
}

export async function startTestThaw(options: Partial<UserOptions> = {}): Promise<TestThaw> {
  const dataDir = await mkdtemp(join(tmpdir(), 'thaw-test-data-'));
  const cacheDir = await mkdtemp('/dev/shm/thaw-test-cache-');
  const base = { port: 0, dataDir, cacheDir, eventPollIntervalMs: 50, ...options };
  const t: TestThaw = {
    thaw: await startThaw(base),
    url: '',
    dataDir,
    cacheDir,
    lambda: null as unknown as LambdaClient,
    async stop() {
      await t.thaw.close();
      t.lambda.destroy();
      const left = await processesUnder(cacheDir);
      await rm(dataDir, { recursive: true, force: true });
      await rm(cacheDir, { recursive: true, force: true });
      if (left.length) throw new Error(`instance processes outlived the server: ${left.join(', ')}`);
    },
    async restart(extra = {}) {
      await t.thaw.destroy();
      t.lambda.destroy();
      t.thaw = await startThaw({ ...base, ...extra });
      wire();
    },
  };
  const wire = () => {
    t.url = t.thaw.url;
    t.lambda = new LambdaClient({ endpoint: t.url, region: 'us-east-1', credentials: { accessKeyId: 'thaw', secretAccessKey: 'thaw' }, maxAttempts: 1 });
  };
  wire();
  return t;
}

/** A data dir on disk and a cache dir in tmpfs for a suite that starts its own Platform; made before, removed after. */
export function scratchDirs(name: string): { dataDir: string; cacheDir: string } {
  const dirs = { dataDir: '', cacheDir: '' };
  before(async () => {
    dirs.dataDir = await mkdtemp(join(tmpdir(), `thaw-${name}-data-`));
    dirs.cacheDir = await mkdtemp(`/dev/shm/thaw-${name}-cache-`);
  });
  after(async () => {
    await rm(dirs.dataDir, { recursive: true, force: true });
    await rm(dirs.cacheDir, { recursive: true, force: true });
  });
  return dirs;
}

/**
 * Pids of live processes that belong to the server of this cache dir: whose working directory is inside it
 * (every unconfined instance starts in its scratch dir) or that sit in one of its sandboxes' cgroups.
 */
export async function processesUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  const scope = `/thaw-${scopeTagFor(dir)}/`;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if ((await readlink(`/proc/${name}/cwd`)).startsWith(dir)) { pids.push(Number(name)); continue; }
      if ((await readFile(`/proc/${name}/cgroup`, 'utf8')).includes(scope)) pids.push(Number(name));
    } catch { /* gone meanwhile, or not ours to read */ }
  }
  return pids;
}

/** A package with the given files (source text), zipped in memory. */
export const pkg = (files: Record<string, string>): Buffer =>
  zipEntries(Object.entries(files).map(([path, text]) => ({ path, data: Buffer.from(text) })));

/** A one-file ESM function whose handler body is `body` (has `event` and `context`). */
export const fnSource = (body: string, prelude = '') => `${prelude}\nexport const handler = async (event, context) => {\n${body}\n};\n`;

export interface InvokeReply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export async function invokeHttp(url: string, name: string, payload: unknown = {}, init: { qualifier?: string; headers?: Record<string, string> } = {}): Promise<InvokeReply> {
  const q = init.qualifier ? `?Qualifier=${encodeURIComponent(init.qualifier)}` : '';
  const res = await fetch(`${url}/2015-03-31/functions/${name}/invocations${q}`, {
    method: 'POST', body: typeof payload === 'string' ? payload : JSON.stringify(payload), headers: init.headers,
  });
  const text = await res.text();
  let json: unknown = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

/** Polls until check() returns a truthy value (bounded, so a broken feature fails instead of hanging). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** GET a Thaw URL and parse its JSON body (tests read fields freely). */
export async function getJson(url: string): Promise<any> {
  return (await fetch(url)).json();
}

const THAW_BIN = join(resolve(import.meta.dirname, '..'), 'bin', 'thaw.js');

/** `thaw up` as a real child process on a free port with these dirs and extra flags; resolves once it serves. */
export async function thawUp(dataDir: string, cacheDir: string, flags: string[] = []): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [THAW_BIN, 'up', '--port', '0', '--data', dataDir, '--cache', cacheDir, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { err += c; });
  const url = await eventually(async () => /Thaw is up at (http:\/\/\S+)/.exec(out)?.[1], `thaw up to start (stderr: ${err})`, 60_000);
  return { child, url, stderr: () => err };
}
