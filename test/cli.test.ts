// The `thaw` CLI end to end: `thaw up --demo` as a real child process, every command run as its own
// process against it, and a SIGTERM that must drain and leave no instance process behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { eventually, processesUnder } from './helpers.ts';

const root = resolve(import.meta.dirname, '..');
const bin = join(root, 'bin', 'thaw.js');

interface Run { code: number; stdout: string; stderr: string }

function thaw(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, THAW_ENDPOINT: url, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolvePromise({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

let url = '';
let up: ChildProcess;
let upErr = '';
let dataDir = '';
let cacheDir = '';
let work = '';

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'thaw-cli-data-'));
  cacheDir = await mkdtemp('/dev/shm/thaw-cli-cache-');
  work = await mkdtemp(join(tmpdir(), 'thaw-cli-work-'));
  up = spawn(process.execPath, [bin, 'up', '--demo', '--port', '0', '--data', dataDir, '--cache', cacheDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  up.stdout!.on('data', (c) => { out += c; });
  up.stderr!.on('data', (c) => { upErr += c; });
  url = await eventually(async () => /Thaw is up at (http:\/\/\S+)/.exec(out)?.[1], `thaw up to start (stderr: ${upErr})`, 60_000);
  assert.match(out, /npx thaw invoke hello/, 'the demo prints how to invoke its functions');
});

after(async () => {
  if (up.exitCode === null) up.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
  await rm(cacheDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

test('the demo deploys the examples and list shows them', async () => {
  const r = await thaw(['list']);
  assert.equal(r.code, 0, r.stderr);
  for (const name of ['hello', 'greeter', 'http-api', 'chain', 'ts-hello']) assert.match(r.stdout, new RegExp(`^${name}\\s`, 'm'));
  assert.match(r.stdout, /nodejs24/);
});

test('invoke prints the response, cold first and warm after; trace draws the waterfall', async () => {
  const first = await thaw(['invoke', 'hello', '--payload', '{"name":"cli"}']);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(JSON.parse(first.stdout).message, 'Hello, cli!');
  assert.match(first.stderr, /^(pooled|cold) start · version \$LATEST/m);
  const id = /invocation (\S+)/.exec(first.stderr)![1];

  const second = await thaw(['invoke', 'hello:1', '--tail']);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /start · version 1/);
  assert.match(second.stderr, /START RequestId: /, '--tail prints the log tail');
  const third = await thaw(['invoke', 'hello:1']);
  assert.match(third.stderr, /^warm start · version 1/m);

  const trace = await thaw(['trace', id]);
  assert.equal(trace.code, 0, trace.stderr);
  for (const phase of ['sandbox', 'code', 'unpack', 'env', 'network', 'runtime', 'init', 'handler']) assert.match(trace.stdout, new RegExp(`^${phase}\\s+[\\d.]+ ms \\|`, 'm'));
  assert.match(trace.stdout, /start\s+(pooled|cold)/);
  const last = await thaw(['trace', '--last', 'hello', '--json']);
  assert.equal(JSON.parse(last.stdout).start, 'warm');
  const lastCold = await thaw(['trace', '--last', 'hello', '--cold', '--json']);
  const cold = JSON.parse(lastCold.stdout);
  assert.deepEqual([cold.start, cold.version], [cold.start === 'pooled' ? 'pooled' : 'cold', '1'], 'the first call of version 1 was the newest start of a new instance');
});

test('deploy takes a directory, a .zip and a .tgz, and publishes a version each time', async () => {
  const dir = join(work, 'fn');
  await cp(join(root, 'examples', 'hello'), dir, { recursive: true });
  const a = await thaw(['deploy', dir, '--name', 'mine', '--env', 'GREETING=hi', '--memory', '256', '--timeout', '5']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout.trim(), 'mine:1');
  assert.match(a.stderr, /packaging .* 100%/);
  assert.match(a.stderr, /uploading .* 100%/);

  await writeFile(join(dir, 'main.mjs'), 'export const run = async () => ({ from: "zip", greeting: process.env.GREETING });\n');
  const zip = join(work, 'fn.zip');
  await new Promise((r, j) => execFile('zip', ['-qr', zip, '.'], { cwd: dir }, (e) => (e ? j(e) : r(null))));
  const b = await thaw(['deploy', zip, '--name', 'mine', '--handler', 'main.run']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout.trim(), 'mine:2');
  const r2 = await thaw(['invoke', 'mine:2']);
  assert.deepEqual(JSON.parse(r2.stdout), { from: 'zip', greeting: 'hi' }, 'env and the new handler both apply');

  const tgz = join(work, 'fn.tgz');
  await new Promise((r, j) => execFile('tar', ['czf', tgz, '-C', dir, '.'], (e) => (e ? j(e) : r(null))));
  const c = await thaw(['deploy', tgz, '--name', 'mine', '--env', 'GREETING=tgz']);
  assert.equal(c.stdout.trim(), 'mine:3', c.stderr);
  assert.equal(JSON.parse((await thaw(['invoke', 'mine'])).stdout).greeting, 'tgz');
});

test('alias set with a weight splits traffic; ls and rm manage it', async () => {
  const set = await thaw(['alias', 'set', 'mine', 'live', '2', '--weight', '3=0.25']);
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.stdout.trim(), 'mine:live -> 2, 25% to version 3');
  const ls = await thaw(['alias', 'ls', 'mine']);
  assert.match(ls.stdout, /^live\s+2\s+25% to version 3$/m);
  const move = await thaw(['alias', 'set', 'mine', 'live', '3', '--weight', 'none']);
  assert.equal(move.stdout.trim(), 'mine:live -> 3');
  const inv = await thaw(['invoke', 'mine:live']);
  assert.match(inv.stderr, /version 3/);
  assert.equal((await thaw(['alias', 'rm', 'mine', 'live'])).code, 0);
  assert.doesNotMatch((await thaw(['alias', 'ls', 'mine'])).stdout, /live/);
});

test('logs prints START/END/REPORT and the function\'s own output', async () => {
  const r = await thaw(['logs', 'hello']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /START RequestId: \S+ Version: /);
  assert.match(r.stdout, /hello invoked/);
  assert.match(r.stdout, /REPORT RequestId: .*Billed Duration: \d+ ms/);
});

test('an HTTP trigger answers plain curl-style requests', async () => {
  const res = await fetch(`${url}/http-api/hi?name=curl`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /Hello, curl!/);
  assert.ok(res.headers.get('x-thaw-invocation-id'));
});

test('errors print a stable code and a fix, and exit non-zero', async () => {
  const bad = await thaw(['invoke', 'hello', '--payload', '{nope']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /THAW_E_PAYLOAD_INVALID/);
  assert.match(bad.stderr, /fix: /);
  const missing = await thaw(['invoke', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /THAW_E_FUNCTION_NOT_FOUND: .*nosuch/);
  const usage = await thaw(['deploy', 'examples/hello']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /THAW_E_CLI_USAGE: --name is required/);
  const unknown = await thaw(['frobnicate']);
  assert.equal(unknown.code, 2);
  const down = await thaw(['list'], { THAW_ENDPOINT: 'http://127.0.0.1:1' });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /THAW_E_CLI_UNREACHABLE/);
  const badPkg = join(work, 'bad.zip');
  await writeFile(badPkg, 'this is not a zip');
  const rejected = await thaw(['deploy', badPkg, '--name', 'broken']);
  assert.equal(rejected.code, 1);
  assert.match(rejected.stderr, /THAW_E_PACKAGE_FORMAT/);
  assert.match((await thaw(['list'])).stdout, /^(?!broken)/m);
  assert.doesNotMatch((await thaw(['list'])).stdout, /^broken\s/m);
});

test('rm deletes a function', async () => {
  assert.equal((await thaw(['rm', 'mine'])).code, 0);
  assert.doesNotMatch((await thaw(['list'])).stdout, /^mine\s/m);
  assert.match((await thaw(['invoke', 'mine'])).stderr, /THAW_E_FUNCTION_NOT_FOUND/);
});

test('SIGTERM drains and stops every instance; no process is left', async () => {
  assert.ok((await processesUnder(cacheDir)).length > 0, 'instances are running before the signal');
  up.kill('SIGTERM');
  const [code] = await once(up, 'exit');
  assert.equal(code, 0, upErr);
  assert.match(upErr, /thaw: stopped/);
  assert.deepEqual(await processesUnder(cacheDir), []);
});

test('thaw sim --json prints one object per policy with the headline metrics; a bad policy or trace exits 1 with a fix, a bad option 2', async () => {
  const r = await thaw(['sim', '--synthetic', '30', '--minutes', '180', '--policy', 'fixed:10m', '--policy', 'hybrid:4h', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((x) => x.policy), ['fixed:10m', 'hybrid:4h']);
  for (const x of lines) for (const k of ['invocations', 'coldStarts', 'coldStartRate', 'p75FunctionColdStartRate', 'wastedMemoryGBs']) assert.equal(typeof x[k], 'number', k);
  assert.equal(lines[0].invocations, lines[1].invocations, 'the same arrivals for every policy');
  const table = await thaw(['sim', '--synthetic', '10', '--minutes', '60']);
  assert.match(table.stdout, /^POLICY\s+INVOCATIONS\s+COLD\s+RATE/m);
  const bad = await thaw(['sim', '--synthetic', '10', '--policy', 'fixed:soon']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /THAW_E_INVALID_POLICY: policy 'fixed:soon' needs a time to live/);
  const noTrace = await thaw(['sim', '--trace', '/nonexistent']);
  assert.match(noTrace.stderr, /THAW_E_TRACE_INVALID/);
  const minute = await thaw(['sim', '--synthetic', '10', '--minutes', '60', '--model', 'minute', '--json']);
  assert.equal(JSON.parse(minute.stdout).model, 'minute');
  const badModel = await thaw(['sim', '--synthetic', '10', '--model', 'hourly']);
  assert.equal(badModel.code, 2, "a usage error");
  assert.match(badModel.stderr, /THAW_E_CLI_USAGE: --model takes invocation or minute, got "hourly"/);
  // A budget that is not a size is refused before anything starts.
  const badSwap = await thaw(['up', '--port', '0', '--swap-budget', 'lots']);
  assert.equal(badSwap.code, 2, badSwap.stderr);
  assert.match(badSwap.stderr, /THAW_E_CLI_USAGE: --swap-budget takes a size of at least 128m, such as 8g, got "lots"/);
});
