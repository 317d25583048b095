// Hostile functions against the namespaces driver, deployed through the real API: each probe must be blocked,
// the platform must keep serving, and the host must be left as it was. Needs root and bubblewrap; skipped
// (with the reason) elsewhere. Every attack is bounded in count, size and time.
//
// How we know each probe can fail: the probes were run once, by hand, against `sandbox: 'process'` (the
// unconfined driver), where they get through (read and write host files, see and can signal host processes,
// allocate past MemorySize, fill /tmp past its size, ...); the killer ran there with signal 0 instead of
// SIGKILL and no kill(-1). The fork bomb was not run unconfined: its assertions read the kernel's own pids
// counters of the instance's group, which do not exist without the limit. Several probes failed against the
// committed driver itself (mount flags, user namespaces, the API on loopback, the snapshot symlink, the
// compile cache, the runtime channel). The contrast block at the end keeps the cheap unconfined cases as
// documentation that the process driver is NOT a security boundary.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateFunctionCommand, DeleteFunctionCommand } from '@aws-sdk/client-lambda';
import { PIDS_MAX, detectCgroups, enforcement, probeNamespaces, scopeTagFor } from '../src/sandbox/index.ts';
import { startThaw } from '../src/gateway/index.ts';
import { eventually, getJson, invokeHttp, pkg, processesUnder, startTestThaw, type TestThaw } from './helpers.ts';

const probe = probeNamespaces();
const skip = probe.ok ? false : `namespaces sandbox unavailable: ${probe.reason} (to enable: apt-get install bubblewrap; run as root; ${probe.fix})`;

const tag = randomBytes(4).toString('hex');
const VICTIM_SECRET = `victim-secret-${randomBytes(12).toString('hex')}`;
const HOST_SECRET = `host-tmp-secret-${randomBytes(12).toString('hex')}`;
/** Instances run as uid 1,000,000 + n (src/sandbox/namespaces.ts): host processes of those uids are the nearest targets. */
const UID_BASE = 1_000_000;
const SANDBOX_GID = UID_BASE - 1;

/** What every hostile function starts with: fs, child_process, a bounded sleep and a try-it helper. */
const PRELUDE = `
import fs from 'node:fs';
import cp from 'node:child_process';
import zlib from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
const attempt = (f) => { try { const v = f(); return v === undefined ? 'OK' : v; } catch (e) { return e.code || String(e.message); } };
const pidsInProc = () => fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n)).map(Number);
`;
const hostile = (body: string, top = '') => `${PRELUDE}\n${top}\nexport const handler = async (event, context) => {\n${body}\n};\n`;

const VICTIM_CODE = `
import fs from 'node:fs';
import { createHash } from 'node:crypto';
const SECRET = '${VICTIM_SECRET}';
export const handler = async () => ({
  codeSha: createHash('sha256').update(fs.readFileSync(new URL(import.meta.url))).digest('hex'),
  secretLength: SECRET.length,
});
`;
/** Command-line fragments of host processes: this test runner and the canary sleeps. */
const HOST_PATTERNS = ['hostile.test', 'sleep 900', '--test'];
const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

interface Call { status: number; json: any; text: string; error: string | null; logs: string; id: string; start: string | null; ms: number }

/** Invokes through the Lambda HTTP API with the log tail, as `aws lambda invoke --log-type Tail` does. */
async function call(t: TestThaw, name: string, payload: unknown = {}): Promise<Call> {
  const t0 = performance.now();
  const r = await invokeHttp(t.url, name, payload, { headers: { 'x-amz-log-type': 'Tail' } });
  return {
    status: r.status, json: r.json, text: r.text, error: r.headers.get('x-amz-function-error'),
    logs: Buffer.from(r.headers.get('x-amz-log-result') ?? '', 'base64').toString('utf8'),
    id: r.headers.get('x-thaw-invocation-id') ?? '', start: r.headers.get('x-thaw-start'), ms: performance.now() - t0,
  };
}

const create = (t: TestThaw, name: string, code: string, extra: Record<string, unknown> = {}) =>
  t.lambda.send(new CreateFunctionCommand({
    FunctionName: name, Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/x',
    Code: { ZipFile: pkg({ 'index.mjs': code }) }, ...extra,
  }));

const instanceOf = async (t: TestThaw, c: Call): Promise<string> => (await getJson(`${t.url}/thaw/v1/invocations/${c.id}`)).instanceId;

/** The platform answers: health is ok and the victim still runs its own, unchanged code. */
async function assertServing(t: TestThaw, victimSha?: string) {
  const health = await getJson(`${t.url}/thaw/v1/health`);
  assert.equal(health.status, 'ok');
  if (victimSha) {
    const v = await call(t, 'victim');
    assert.equal(v.status, 200, v.text);
    assert.equal(v.error, null, v.text);
    assert.equal(v.json.codeSha, victimSha, 'the victim runs its own code');
  }
}

const maxMemoryUsed = (logs: string) => [...logs.matchAll(/Max Memory Used: (\d+) MB/g)].map((m) => Number(m[1]));

/** Files a path holds, recursively, with size and content hash (bounded; for "nothing changed" checks). */
function tree(dir: string, limit = 2000): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (out.size >= limit) return;
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else out.set(p, `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? sha(readFileSync(p)) : 'link'}`);
    }
  };
  walk(dir);
  return out;
}
const bytesUnder = (dir: string): number => {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const st = lstatSync(join(dir, name));
    n += st.isDirectory() ? bytesUnder(join(dir, name)) : st.size;
  }
  return n;
};
const fileState = (p: string) => { const st = statSync(p); return { mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid, sha: sha(readFileSync(p)) }; };

/** Processes in one instance's cgroups (the driver names the group after the instance id). */
async function processesOfInstance(cacheDir: string, instanceId: string): Promise<number[]> {
  const needle = `/thaw-${scopeTagFor(cacheDir)}/${instanceId}`;
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try { if (readFileSync(`/proc/${name}/cgroup`, 'utf8').includes(needle)) pids.push(Number(name)); } catch { /* gone */ }
  }
  return pids;
}

// ---------------------------------------------------------------------------------------------------------
// The attackers. Each returns what it managed; the tests decide what is allowed.

/** Reads named paths, then searches the whole visible tree (and every process it can see in /proc) for needles. */
const SNOOP = hostile(`
  const needles = event.needles.map((n) => [n, Buffer.from(n)]);
  const found = new Set();
  const reads = {};
  for (const p of event.paths) reads[p] = attempt(() => { const s = fs.statSync(p); return s.isDirectory() ? 'LISTED ' + fs.readdirSync(p).join(',') : 'READ ' + fs.readFileSync(p).length + ' bytes'; });
  // A process of its own with a marker in its command line: proves the /proc scan reads other processes' files.
  const child = cp.spawn('/bin/sh', ['-c', 'sleep 30 # ' + event.procMarker], { stdio: 'ignore', detached: true });
  child.on('error', () => {});
  await sleep(100);
  let files = 0, bytes = 0;
  const seenDirs = new Set();
  const scan = (file) => {
    if (files >= 20000 || bytes > 300e6) return;
    let st; try { st = fs.statSync(file); } catch { return; }
    if (!st.isFile() || st.size > 16e6) return;
    let b; try { b = fs.readFileSync(file); } catch { return; }
    files++; bytes += b.length;
    for (const [n, nb] of needles) if (b.includes(nb)) found.add(n + ' @ ' + file);
  };
  const walk = (dir, depth) => {
    if (depth > 14) return;
    let st; try { st = fs.statSync(dir); } catch { return; }
    const key = st.dev + ':' + st.ino;
    if (seenDirs.has(key)) return;
    seenDirs.add(key);
    let names; try { names = fs.readdirSync(dir); } catch { return; }
    for (const n of names) {
      const p = (dir === '/' ? '' : dir) + '/' + n;
      if (event.skip.includes(p)) continue;
      let l; try { l = fs.lstatSync(p); } catch { continue; }
      if (l.isDirectory()) walk(p, depth + 1); else if (l.isFile()) scan(p);
    }
  };
  const pids = pidsInProc();
  if (event.search !== false) walk('/', 0);
  if (event.search !== false) for (const pid of pids) {
    const base = '/proc/' + pid;
    for (const f of ['cmdline', 'environ', 'status', 'maps', 'mountinfo']) scan(base + '/' + f);
    for (const sub of ['cwd', 'root']) walk(base + '/' + sub, 6);
    let fds = []; try { fds = fs.readdirSync(base + '/fd'); } catch {}
    for (const fd of fds) { const p = base + '/fd/' + fd; try { if (fs.statSync(p).isDirectory()) walk(p, 8); else scan(p); } catch {} }
  }
  // Only each executable's name, and whether the whole command line matches a host pattern: a host process's
  // arguments are none of the report's business.
  const cmdOf = (p) => attempt(() => fs.readFileSync('/proc/' + p + '/cmdline', 'utf8').split(String.fromCharCode(0)));
  const cmdlines = pids.map((p) => { const c = cmdOf(p); return p + ': ' + (Array.isArray(c) ? c[0].slice(0, 60) + ((event.hostPatterns ?? []).some((h) => c.join(' ').includes(h)) ? ' [HOST]' : '') : c); });
  attempt(() => process.kill(-child.pid, 'SIGKILL'));
  return { reads, found: [...found], files, bytes, pids, cmdlines };
`, `const OWN_CODE_MARKER = 'own-code-marker-${tag}';`);

/** Tries to create or open for writing every path it is given (non-destructive for files that exist). */
const SCRIBBLE = hostile(`
  const res = {};
  for (const p of event.create) res['create ' + p] = attempt(() => fs.writeFileSync(p, 'hostile', { flag: 'wx' }));
  for (const p of event.open) res['open ' + p] = attempt(() => fs.closeSync(fs.openSync(p, 'r+')));
  for (const p of event.append) res['append ' + p] = attempt(() => fs.appendFileSync(p, '\\n// tampered\\n'));
  for (const d of event.mkdir) res['mkdir ' + d] = attempt(() => { fs.mkdirSync(d, { recursive: true }); });
  // Every process it can see: through its root, into the code it runs.
  for (const pid of pidsInProc()) res['append /proc/' + pid + '/root/var/task/index.mjs'] = attempt(() => fs.appendFileSync('/proc/' + pid + '/root/var/task/index.mjs', '//x'));
  res.tmp = attempt(() => { fs.writeFileSync('/tmp/allowed', 'ok'); return fs.readFileSync('/tmp/allowed', 'utf8'); });
  return res;
`);

/** The mounts it runs on, as the kernel lists them for it (the last line for a path is the one in effect). */
const MOUNTS = hostile(`
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').filter(Boolean).map((l) => { const f = l.split(' '); return { at: f[4], options: f[5] }; });
`);

/** Lists /proc, signals every pid it sees and every pid up to 4096 it guesses, then kill(-1). */
const REAPER = hostile(`
  const sig = event.signal ?? 'SIGKILL';
  // Its own threads: kill() of a thread id signals the whole process, itself.
  const own = new Set(fs.readdirSync('/proc/self/task').map(Number));
  const seen = pidsInProc();
  // Only each executable's name, and whether the whole command line matches a host pattern.
  const cmdOf = (p) => attempt(() => fs.readFileSync('/proc/' + p + '/cmdline', 'utf8').split(String.fromCharCode(0)));
  const cmdlines = seen.map((p) => { const c = cmdOf(p); return p + ': ' + (Array.isArray(c) ? c[0].slice(0, 60) + ((event.hostPatterns ?? []).some((h) => c.join(' ').includes(h)) ? ' [HOST]' : '') : c); });
  const signalled = [];
  for (const p of new Set([...seen, ...event.guesses])) if (!own.has(p)) { try { process.kill(p, sig); signalled.push(p); } catch {} }
  for (let p = 1; p <= 4096; p++) if (!own.has(p)) { try { process.kill(p, 0); if (!signalled.includes(p)) { process.kill(p, sig); signalled.push(p); } } catch {} }
  const all = sig === 0 ? 'not sent' : attempt(() => process.kill(-1, sig));
  return { self: process.pid, seen, cmdlines, signalled, all };
`);

/**
 * The classic shell fork bomb (`b(){ b|b& };b`: dash rejects `:` as a name; exponential, so it reaches any limit fast even on a loaded host), watched from
 * node: the most processes it sees, the shells' fork errors, and whether node itself can still spawn. It then
 * runs on until the invocation's timeout. Bounded by `event.watchMs` and the function's timeout.
 */
const FORKBOMB = hostile(`
  if (event.benign) return 'fine';
  const bomb = cp.spawn('/bin/sh', ['-c', 'b(){ b|b& };b'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  bomb.stderr.on('data', (d) => { if (errors.length < 2000) errors += d; });
  bomb.on('error', () => {});
  let maxVisible = 0, spawnError = null, spawned = 0;
  const until = Date.now() + (event.watchMs ?? 6000);
  while (Date.now() < until) {
    maxVisible = Math.max(maxVisible, pidsInProc().length);
    if (!spawnError) { const c = cp.spawn('/bin/true', [], { stdio: 'ignore' }); if (c.pid) spawned++; c.on('error', (e) => { spawnError ??= e.code; }); }
    await sleep(50);
  }
  // maxVisible is only indicative: a readdir of a churning /proc can count one slot twice.
  const stats = { maxVisible, spawnError, spawned, errors: errors.slice(0, 200) };
  console.log('FORKBOMB ' + JSON.stringify(stats));
  if (event.wait === false) return stats;
  await sleep(120_000);
  return 'not stopped';
`);

/** Memory outside the V8 heap: Buffer.alloc chunks, one big buffer touched page by page, or a child process. */
const MEMBOMB = hostile(`
  const mb = event.mb ?? 512;
  const keep = [];
  if (event.mode === 'chunks') for (let i = 0; i < mb; i++) keep.push(Buffer.alloc(1 << 20, 1));
  if (event.mode === 'pages') { const b = Buffer.allocUnsafeSlow(mb << 20); for (let i = 0; i < b.length; i += 4096) b[i] = 1; keep.push(b); }
  if (event.mode === 'child') {
    const r = cp.spawnSync(process.execPath, ['-e', 'const k = []; for (let i = 0; i < ' + mb + '; i++) k.push(Buffer.alloc(1 << 20, 1)); console.log("CHILD DONE")'], { encoding: 'utf8', timeout: 20_000 });
    return { child: { status: r.status, signal: r.signal, out: (r.stdout || '').trim() } };
  }
  return { allocatedMb: keep.reduce((n, b) => n + b.length, 0) >> 20, rssMb: process.memoryUsage().rss >> 20 };
`);

/** Writes 1 MB chunks into a directory until an error or the count. */
const FILLER = hostile(`
  const chunk = Buffer.alloc(1 << 20, 7);
  let mb = 0, code = null;
  try { for (; mb < event.mb; mb++) fs.writeFileSync(event.dir + '/fill-' + mb, chunk); } catch (e) { code = e.code; }
  if (event.cleanup) for (let i = 0; i <= mb; i++) attempt(() => fs.unlinkSync(event.dir + '/fill-' + i));
  return { mb, code };
`);

const SPINNER = hostile(`
  if (event.benign) return 'fine';
  if (event.orphan) {
    // A busy child in a session of its own, left behind when the handler returns.
    const c = cp.spawn('/bin/sh', ['-c', 'while :; do :; done'], { stdio: 'ignore', detached: true });
    c.unref();
    return { orphan: c.pid };
  }
  for (;;) {}
`);

/** setuid(0), the capability and no_new_privs state, a setuid-root mount, and the euid of waiting setuid binaries. */
const CLIMBER = hostile(`
  const o = {};
  o.setuid = attempt(() => process.setuid(0));
  o.setgid = attempt(() => process.setgid(0));
  o.seteuid = attempt(() => process.seteuid(0));
  o.setgroups = attempt(() => process.setgroups([0]));
  const st = fs.readFileSync('/proc/self/status', 'utf8');
  for (const k of ['Uid', 'Gid', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs']) o[k] = (new RegExp('^' + k + ':\\\\s*(.*)$', 'm').exec(st) || [])[1];
  fs.mkdirSync('/tmp/x', { recursive: true });
  const m = cp.spawnSync('/usr/bin/mount', ['-t', 'tmpfs', 'x', '/tmp/x'], { encoding: 'utf8', timeout: 5000 });
  o.mount = { status: m.status, error: m.error?.code ?? null, out: ((m.stdout || '') + (m.stderr || '')).trim().slice(0, 200) };
  o.mounted = fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(' /tmp/x ');
  // A setuid binary that waits for a password: while it waits, /proc shows the ids it runs with.
  o.suid = {};
  for (const [bin, args] of event.waiting) {
    const c = cp.spawn(bin, args, { stdio: ['pipe', 'ignore', 'ignore'] });
    c.on('error', () => {});
    const samples = [];
    for (let i = 0; i < 8; i++) {
      await sleep(40);
      try { samples.push((/^Uid:\\s*(.*)$/m.exec(fs.readFileSync('/proc/' + c.pid + '/status', 'utf8')) || [])[1]); } catch (e) { samples.push(e.code); break; }
    }
    c.kill('SIGKILL');
    o.suid[bin] = samples;
  }
  return o;
`);

/** ptrace-like access to the sandbox's pid 1 (root): its memory, environment, root and fds, and PTRACE_SEIZE. */
const PRIER = hostile(`
  const pid = event.pid ?? 1;
  const o = {};
  o.mem = attempt(() => fs.closeSync(fs.openSync('/proc/' + pid + '/mem', 'r')));
  o.memWrite = attempt(() => fs.closeSync(fs.openSync('/proc/' + pid + '/mem', 'r+')));
  o.environ = attempt(() => 'READ ' + fs.readFileSync('/proc/' + pid + '/environ').length);
  o.root = attempt(() => 'LISTED ' + fs.readdirSync('/proc/' + pid + '/root').length);
  o.fd = attempt(() => 'LISTED ' + fs.readdirSync('/proc/' + pid + '/fd').length);
  // PTRACE_SEIZE (0x4206) does not stop the tracee; x86_64 and aarch64 syscall numbers.
  const nr = process.arch === 'arm64' ? 117 : 101;
  const r = cp.spawnSync('/usr/bin/perl', ['-e', '$r = syscall(' + nr + ', 0x4206, ' + pid + ', 0, 0); print $r == -1 ? ($! + 0) : "SEIZED"'], { encoding: 'utf8', timeout: 5000 });
  o.seize = r.error ? r.error.code : r.stdout.trim();
  return o;
`);

/** A user namespace: unshare(CLONE_NEWUSER) directly and through util-linux, and what it then allows. */
const NESTER = hostile(`
  const o = {};
  const nr = process.arch === 'arm64' ? 97 : 272;
  const r = cp.spawnSync('/usr/bin/perl', ['-e', 'print syscall(' + nr + ', 0x10000000) == 0 ? "UNSHARED" : ($! + 0)'], { encoding: 'utf8', timeout: 5000 });
  o.syscall = r.error ? r.error.code : r.stdout.trim();
  if (fs.existsSync('/usr/bin/unshare')) {
    const u = cp.spawnSync('/usr/bin/unshare', ['-U', '-r', '-m', '/bin/sh', '-c', 'id -u; mount -t tmpfs x /tmp && echo MOUNTED'], { encoding: 'utf8', timeout: 5000 });
    o.unshare = { status: u.status, out: ((u.stdout || '') + (u.stderr || '')).trim().slice(0, 300) };
    // With a network namespace of its own too: the kernel's netfilter and other root-in-namespace surfaces.
    const n = cp.spawnSync('/usr/bin/unshare', ['-U', '-r', '-n', '/bin/sh', '-c', 'id -u'], { encoding: 'utf8', timeout: 5000 });
    o.unshareNet = { status: n.status, out: ((n.stdout || '') + (n.stderr || '')).trim().slice(0, 300) };
  }
  return o;
`);

/**
 * Looks for the platform's API on loopback (from /proc/net/tcp when it shares the host's network namespace,
 * and at the server's port, which it is told: the stronger attacker), lists the functions, downloads their
 * code, optionally replaces one. It knocks only on the ports the test allows: the host may run services that
 * are none of this test's business.
 */
const NETCAT = hostile(`
  const unzip = (b) => {
    const out = [];
    for (let i = b.indexOf(Buffer.from([0x50, 0x4b, 3, 4])); i >= 0; i = b.indexOf(Buffer.from([0x50, 0x4b, 3, 4]), i + 4)) {
      const method = b.readUInt16LE(i + 8), size = b.readUInt32LE(i + 18), start = i + 30 + b.readUInt16LE(i + 26) + b.readUInt16LE(i + 28);
      const data = b.subarray(start, start + size);
      try { out.push((method === 8 ? zlib.inflateRawSync(data) : data).toString('utf8')); } catch {}
    }
    return out;
  };
  const ports = new Set();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''; try { text = fs.readFileSync(f, 'utf8'); } catch {}
    for (const l of text.split('\\n').slice(1)) { const c = l.trim().split(/\\s+/); if (c[3] === '0A') ports.add(parseInt(c[1].split(':').pop(), 16)); }
  }
  const out = { ports: [...ports], api: null, functions: [], found: [], replaced: null };
  for (const port of event.allowed.slice(0, 32)) {
    try {
      const j = await (await fetch('http://127.0.0.1:' + port + '/2015-03-31/functions', { signal: AbortSignal.timeout(1500) })).json();
      if (Array.isArray(j.Functions)) { out.api = port; out.functions = j.Functions.map((f) => f.FunctionName); break; }
    } catch {}
  }
  if (!out.api) return out;
  const base = 'http://127.0.0.1:' + out.api + '/2015-03-31/functions/';
  const self = process.env.AWS_LAMBDA_FUNCTION_NAME;
  for (const name of out.functions) {
    if (name === self) continue;
    try {
      const g = await (await fetch(base + name, { signal: AbortSignal.timeout(3000) })).json();
      const zip = Buffer.from(await (await fetch(g.Code.Location, { signal: AbortSignal.timeout(3000) })).arrayBuffer());
      if (unzip(zip).some((text) => text.includes(event.needle))) out.found.push(name);
    } catch {}
  }
  if (event.replace) {
    const g = await (await fetch(base + self)).json();
    const own = Buffer.from(await (await fetch(g.Code.Location)).arrayBuffer());
    const r = await fetch(base + event.replace + '/code', { method: 'PUT', body: JSON.stringify({ ZipFile: own.toString('base64') }) });
    out.replaced = r.status;
  }
  return out;
`);

/** At snapshot build (its init runs in the sandbox with the build's output dir writable), swaps the output for a symlink. */
const SNAPPER = `
import fs from 'node:fs';
const at = process.execArgv.indexOf('--snapshot-blob');
if (at >= 0 && process.env.TARGET) {
  const blob = process.execArgv[at + 1];
  try { fs.rmSync(blob, { force: true }); } catch {}
  fs.symlinkSync(process.env.TARGET, blob);
  process.exit(0);
}
export const handler = async () => 'ok';
`;

// ---------------------------------------------------------------------------------------------------------

describe('hostile functions in the namespaces sandbox', { skip }, () => {
  let t: TestThaw;
  let stopped = false;
  const hostDir = `/tmp/thaw-hostile-${tag}`;
  const planted = join(hostDir, 'planted.txt');
  const canary = join(hostDir, 'canary-0600');
  const canaries: ChildProcess[] = [];
  let plantedState: ReturnType<typeof fileState>;
  let etcBefore: string[] = [];
  let rootBefore: string[] = [];
  let keyBefore = '';
  let victimSha = '';
  let victimCodeOnHost = '';
  let victimInstance = '';

  before(async () => {
    mkdirSync(hostDir, { recursive: true, mode: 0o755 });
    writeFileSync(planted, HOST_SECRET, { mode: 0o644 });
    writeFileSync(canary, 'canary', { mode: 0o600 });
    chownSync(canary, 4242, 4242);
    chmodSync(canary, 0o600);
    plantedState = fileState(planted);
    etcBefore = readdirSync('/etc').sort();
    rootBefore = readdirSync('/root').sort();
    // Host processes running as the uids instances get: without a PID namespace, kill(-1) would reach them.
    for (let i = 0; i < 10; i++) {
      const c = spawn('/usr/bin/sleep', ['900'], { uid: UID_BASE + i, gid: SANDBOX_GID, stdio: 'ignore' });
      c.on('error', () => {});
      canaries.push(c);
    }
    t = await startTestThaw({ snapshotTimeoutMs: 60_000 });
    assert.equal(t.thaw.platform.driver.name, 'namespaces', 'startTestThaw picks the confining driver where it can run');
    // Published: its snapshot build makes the snapshot key and more copies of its code on the host.
    await create(t, 'victim', VICTIM_CODE, { Publish: true });
    const snap = await eventually(async () => {
      const s = (await getJson(`${t.url}/thaw/v1/functions/victim/snapshots`)).snapshots.find((x: { version: string }) => x.version === '1');
      return s && s.status !== 'pending' && s;
    }, 'the victim\'s snapshot', 90_000);
    // Snapshot builds work here (so the snapshot probe below really runs its init in a build).
    assert.equal(snap.status, 'ready', snap.reason);
    keyBefore = sha(readFileSync(join(t.dataDir, 'keys', 'snapshot.key')));
    victimSha = sha(VICTIM_CODE);
    const v = await call(t, 'victim');
    assert.equal(v.json.codeSha, victimSha, v.text);
    victimInstance = await instanceOf(t, v);
    const codeDirs = readdirSync(join(t.cacheDir, 'code')).map((d) => join(t.cacheDir, 'code', d, 'index.mjs'));
    victimCodeOnHost = codeDirs.find((p) => existsSync(p) && readFileSync(p, 'utf8').includes(VICTIM_SECRET))!;
    assert.ok(victimCodeOnHost, 'the victim\'s code is unpacked on the host');
  });

  after(async () => {
    for (const c of canaries) c.kill('SIGKILL');
    if (!stopped) await t?.stop().catch(() => {});
    rmSync(hostDir, { recursive: true, force: true });
    for (const d of ['/etc', '/root']) for (const n of readdirSync(d)) if (n.includes(tag)) rmSync(join(d, n), { force: true, recursive: true });
  });

  test('reads of host files fail: /etc/shadow, the data dir, thaw.db, keys/snapshot.key, the code cache, the host /tmp', async () => {
    await create(t, 'snoop', SNOOP);
    const paths = [
      '/etc/shadow', '/etc/gshadow', '/root', t.dataDir, join(t.dataDir, 'thaw.db'), join(t.dataDir, 'keys'), join(t.dataDir, 'keys', 'snapshot.key'),
      t.cacheDir, join(t.cacheDir, 'code'), victimCodeOnHost, planted, hostDir, '/proc/1/root/etc/shadow', '/proc/1/environ',
    ];
    const r = await call(t, 'snoop', { paths, needles: [], skip: ['/proc', '/usr', '/sys', '/dev'], procMarker: 'x' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.error, null, r.text);
    for (const p of paths) assert.match(r.json.reads[p], /^(ENOENT|EACCES|EPERM)$/, `${p} must be out of reach, got ${r.json.reads[p]}`);
    await assertServing(t, victimSha);
  });

  test('another function\'s code and the host\'s files are nowhere in the sandbox: a search of / and /proc finds only its own', async () => {
    const procMarker = `proc-marker-${tag}`;
    const key = readFileSync(join(t.dataDir, 'keys', 'snapshot.key'), 'utf8').trim();
    const needles = [VICTIM_SECRET, HOST_SECRET, key, `own-code-marker-${tag}`, procMarker];
    // /usr is the host's read-only /usr, which holds none of Thaw's data; /sys and /dev hold no regular files of it.
    const r = await call(t, 'snoop', { paths: [], needles, skip: ['/proc', '/usr', '/sys', '/dev'], procMarker, hostPatterns: HOST_PATTERNS });
    assert.equal(r.error, null, r.text);
    const places = (n: string) => r.json.found.filter((f: string) => f.startsWith(`${n} @ `));
    // The search works: it finds the attacker's own code and its own process's command line.
    assert.ok(places(`own-code-marker-${tag}`).some((f: string) => f.includes('/var/task/index.mjs')), `own code found: ${JSON.stringify(r.json.found)}`);
    assert.ok(places(procMarker).some((f: string) => /^.* @ \/proc\/\d+\/cmdline$/.test(f)), `own child found in /proc: ${JSON.stringify(r.json.found)}`);
    assert.ok(r.json.files > 5, `scanned ${r.json.files} files`);
    assert.deepEqual(places(VICTIM_SECRET), [], 'the victim\'s code');
    assert.deepEqual(places(HOST_SECRET), [], 'the file planted in the host\'s /tmp');
    assert.deepEqual(places(key), [], 'the snapshot key');
    // bwrap's init, the runtime and its own sh and sleep.
    assert.ok(r.json.pids.length <= 4, `sees only its own sandbox's processes: ${r.json.cmdlines.join(' | ')}`);
    assert.ok(!r.json.cmdlines.some((c: string) => c.endsWith('[HOST]')), r.json.cmdlines.join(' | '));
  });

  test('writes outside /tmp fail: /var/task, /etc, /, /root, /usr, the data dir, the runtime, the victim\'s code', async () => {
    await create(t, 'scribble', SCRIBBLE);
    const name = `thaw-hostile-${tag}`;
    const event = {
      create: ['/var/task/' + name, '/etc/' + name, '/' + name, '/root/' + name, '/usr/' + name, '/var/' + name, '/var/thaw/' + name, '/opt/' + name,
        '/dev/' + name, '/dev/shm/' + name, '/proc/' + name, join(t.dataDir, name), join(t.cacheDir, name), join(hostDir, name)],
      open: ['/var/task/index.mjs', '/etc/passwd', '/etc/hosts', '/etc/resolv.conf', join(t.dataDir, 'thaw.db'), join(t.dataDir, 'keys', 'snapshot.key'),
        process.execPath, join(import.meta.dirname, '..', 'src', 'runtimes', 'node', 'bootstrap.cjs'), '/usr/bin/env'],
      append: ['/var/task/index.mjs', victimCodeOnHost],
      mkdir: ['/root/' + name, join(t.dataDir, name), '/etc/' + name],
    };
    const r = await call(t, 'scribble', event);
    assert.equal(r.error, null, r.text);
    assert.equal(r.json.tmp, 'ok', '/tmp is writable');
    for (const [what, result] of Object.entries(r.json)) {
      // The data dir and hostDir are under the host's /tmp here: inside, that path is the private /tmp
      // (writable by design), so for them what counts is that nothing appears on the host (checked below).
      if (what === 'tmp' || /^(create|mkdir) \/tmp\//.test(what)) continue;
      assert.match(String(result), /^(EROFS|EACCES|EPERM|ENOENT)$/, `${what} must fail, got ${result}`);
    }
    // Nothing appeared on the host, and the victim's code is untouched there and where it runs.
    for (const p of [join(t.dataDir, name), join(t.cacheDir, name), join(hostDir, name), '/etc/' + name, '/root/' + name, '/' + name]) assert.equal(existsSync(p), false, p);
    assert.equal(sha(readFileSync(victimCodeOnHost, 'utf8')), victimSha);
    await assertServing(t, victimSha);
  });

  test('the code at /var/task and the compile cache are mounted nosuid and nodev, the code read-only (as the kernel sees it inside)', async () => {
    await create(t, 'mounts', MOUNTS);
    const r = await call(t, 'mounts', {});
    assert.equal(r.error, null, r.text);
    const inEffect = (at: string) => r.json.filter((m: { at: string }) => m.at === at).at(-1)?.options ?? '';
    // Not exploitable alone today (packaged files are at most 0755 and root's), but it is the second wall.
    const want: [string, string[]][] = [['/var/task', ['ro', 'nosuid', 'nodev']], ['/var/thaw/compile-cache', ['nosuid', 'nodev']]];
    const missing = want.flatMap(([at, flags]) => flags.filter((f) => !inEffect(at).split(',').includes(f)).map((f) => `${at} lacks ${f} (mounted ${inEffect(at)})`));
    assert.deepEqual(missing, [], `the host's read-only, nosuid, nodev remount of the bind does not reach the sandbox's copy of the mount: ${missing.join('; ')}`);
  });

  test('host processes are invisible and out of reach: killing every pid seen, 1-4096 and -1 hurts neither the server, nor other instances, nor the host', async () => {
    await create(t, 'reaper', REAPER);
    const victimPid = (t.thaw.platform.agent.instances().find((i) => i.id === victimInstance) as any)?.conn?.sandbox?.pid;
    const r = await call(t, 'reaper', { hostPatterns: HOST_PATTERNS, guesses: [process.pid, ...(victimPid ? [victimPid] : []), ...canaries.map((c) => c.pid!)] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.error, null, r.text);
    assert.ok(r.json.seen.length <= 2, `it sees only its sandbox (bwrap's init and itself): ${r.json.cmdlines.join(' | ')}`);
    assert.ok(!r.json.cmdlines.some((c: string) => c.endsWith('[HOST]')), r.json.cmdlines.join(' | '));
    assert.deepEqual(r.json.signalled, [], 'no process outside itself accepted a signal');
    // The server (this process) answers; the victim's instance is the same one; the host processes live.
    await assertServing(t, victimSha);
    const v = await call(t, 'victim');
    assert.equal(await instanceOf(t, v), victimInstance, 'the victim\'s instance survived');
    for (const c of canaries) { assert.equal(c.exitCode, null); assert.equal(c.signalCode, null); process.kill(c.pid!, 0); }
  });

  test('setuid fails: setuid(0), setuid-root binaries run unprivileged, no capabilities, no_new_privs set', async () => {
    await create(t, 'climber', CLIMBER);
    // The setuid-root binaries this host has, of those that wait for a password (so their ids can be read).
    const waiting = ([['/usr/bin/newgrp', ['root']], ['/usr/bin/su', ['root']]] as const).filter(([bin]) => {
      try { const st = statSync(bin); return st.uid === 0 && (st.mode & 0o4000) !== 0; } catch { return false; }
    });
    const r = await call(t, 'climber', { waiting });
    assert.equal(r.error, null, r.text);
    const o = r.json;
    for (const k of ['setuid', 'setgid', 'seteuid', 'setgroups']) assert.equal(o[k], 'EPERM', `${k}: ${o[k]}`);
    assert.doesNotMatch(o.Uid, /(^|\s)0(\s|$)/, `no root uid: ${o.Uid}`);
    assert.doesNotMatch(o.Gid, /(^|\s)0(\s|$)/, `no root gid: ${o.Gid}`);
    for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.equal(o[k], '0000000000000000', k);
    assert.equal(o.NoNewPrivs, '1');
    if (existsSync('/usr/bin/mount')) {
      assert.notEqual(o.mount.status, 0, `mount -t tmpfs must fail: ${o.mount.out}`);
      assert.equal(o.mounted, false);
    }
    for (const [bin] of waiting) {
      const samples: string[] = o.suid[bin];
      assert.ok(samples.some((s) => /^\d+\s+\d+/.test(s)), `${bin} was seen running: ${samples}`);
      for (const s of samples.filter((x) => /^\d/.test(x))) assert.equal(s.split(/\s+/)[1], o.Uid.split(/\s+/)[1], `${bin} kept the function's euid: ${s}`);
    }
    await assertServing(t, victimSha);
  });

  test('ptrace-like access to the sandbox\'s pid 1 is refused: /proc/1/mem, environ, root, fd, PTRACE_SEIZE', async () => {
    await create(t, 'prier', PRIER);
    const r = await call(t, 'prier', {});
    assert.equal(r.error, null, r.text);
    for (const k of ['mem', 'memWrite', 'environ', 'root', 'fd']) assert.match(r.json[k], /^(EACCES|EPERM)$/, `${k}: ${r.json[k]}`);
    if (existsSync('/usr/bin/perl')) assert.equal(r.json.seize, '1', `PTRACE_SEIZE must fail with EPERM (1): ${r.json.seize}`);
  });

  test('creating a user namespace is refused (unshare(CLONE_NEWUSER), unshare -U)', async () => {
    await create(t, 'nester', NESTER);
    const r = await call(t, 'nester', {});
    assert.equal(r.error, null, r.text);
    assert.notEqual(r.json.syscall, 'UNSHARED', `unshare(CLONE_NEWUSER) succeeded inside the sandbox: ${JSON.stringify(r.json)}`);
    if (r.json.unshare) assert.notEqual(r.json.unshare.status, 0, `unshare -U -r -m succeeded: ${r.json.unshare.out}`);
  });

  test('out-of-range MemorySize and EphemeralStorage are refused with a THAW_E_* code and no function is created', async () => {
    const zip = pkg({ 'index.mjs': 'export const handler = async () => 1;' }).toString('base64');
    const cases: [string, Record<string, unknown>][] = [
      ['mem64', { MemorySize: 64 }], ['mem20000', { MemorySize: 20000 }],
      ['eph100', { EphemeralStorage: { Size: 100 } }], ['eph20000', { EphemeralStorage: { Size: 20000 } }],
    ];
    for (const [name, extra] of cases) {
      const res = await fetch(`${t.url}/2015-03-31/functions`, {
        method: 'POST',
        body: JSON.stringify({ FunctionName: `range-${name}`, Runtime: 'nodejs24', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: zip }, ...extra }),
      });
      const body: any = await res.json();
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(body)}`);
      assert.match(body.code, /^THAW_E_/, name);
      const got = await fetch(`${t.url}/2015-03-31/functions/range-${name}`);
      assert.equal(got.status, 404, `${name} must not exist`);
      assert.equal(((await got.json()) as any).code, 'THAW_E_FUNCTION_NOT_FOUND');
    }
    // The same request in range is accepted (so the refusals above are about the range, not the request).
    const ok = await fetch(`${t.url}/2015-03-31/functions`, {
      method: 'POST',
      body: JSON.stringify({ FunctionName: 'range-ok', Runtime: 'nodejs24', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: zip }, MemorySize: 10240, EphemeralStorage: { Size: 10240 } }),
    });
    assert.equal(ok.status, 201, await ok.text());
    assert.equal((await fetch(`${t.url}/2015-03-31/functions/range-ok`, { method: 'DELETE' })).status, 204);
    // Nor can an existing function be moved out of range.
    for (const cfg of [{ MemorySize: 64 }, { MemorySize: 20000 }, { EphemeralStorage: { Size: 100 } }, { EphemeralStorage: { Size: 20000 } }]) {
      const res = await fetch(`${t.url}/2015-03-31/functions/victim/configuration`, { method: 'PUT', body: JSON.stringify(cfg) });
      assert.equal(res.status, 400, JSON.stringify(cfg));
      assert.match(((await res.json()) as any).code, /^THAW_E_/);
    }
    const conf = await getJson(`${t.url}/2015-03-31/functions/victim/configuration`);
    assert.equal(conf.MemorySize, 128);
    assert.equal(conf.EphemeralStorage.Size, 512);
  });

  // Holes at the time of writing: these fail, and say what got through.

  test('another function\'s code cannot be read through the platform\'s API on loopback', async () => {
    await create(t, 'netcat', NETCAT);
    const port = Number(new URL(t.url).port);
    const r = await call(t, 'netcat', { needle: VICTIM_SECRET, allowed: [port] });
    assert.equal(r.error, null, r.text);
    const seen = r.json.ports.includes(port) ? 'listed in its /proc/net/tcp' : 'not listed in its /proc/net/tcp';
    assert.deepEqual(r.json.found, [], `the attacker reached the platform API on port ${r.json.api} (${seen}), listed ${JSON.stringify(r.json.functions)} and downloaded the code of ${JSON.stringify(r.json.found)}`);
  });

  test('another function\'s code cannot be replaced through the platform\'s API on loopback', async () => {
    await create(t, 'victim2', VICTIM_CODE);
    const before = await call(t, 'victim2');
    assert.equal(before.json.codeSha, victimSha);
    const r = await call(t, 'netcat', { needle: 'none', replace: 'victim2', allowed: [Number(new URL(t.url).port)] });
    assert.equal(r.error, null, r.text);
    const after = await call(t, 'victim2');
    assert.equal(after.json?.codeSha, victimSha, `victim2 now runs the attacker's code (PUT .../victim2/code answered ${r.json.replaced}): ${after.text.slice(0, 200)}`);
  });

  test('a snapshot build cannot make the platform change a host file (symlink in place of the blob)', async (ctx) => {
    const stateBefore = fileState(canary);
    await create(t, 'snapper', SNAPPER, { Publish: true, Environment: { Variables: { TARGET: canary } } });
    const snap = await eventually(async () => {
      const s = (await getJson(`${t.url}/thaw/v1/functions/snapper/snapshots`)).snapshots.find((x: { version: string }) => x.version === '1');
      return s && s.status !== 'pending' && s;
    }, 'the snapper snapshot to settle', 90_000);
    assert.deepEqual(fileState(canary), stateBefore,
      `the host file ${canary} (0600, owner 4242) was changed by the platform after the build (snapshot status ${snap.status}, ${snap.sizeBytes} bytes): now ${JSON.stringify(fileState(canary))}`);
    ctx.diagnostic(`the snapper's snapshot: ${snap.status}${snap.reason ? ` (${snap.reason})` : ''}`);
  });

  test('after all of it the host is unchanged and t.stop() finds no leftover process', async () => {
    await assertServing(t, victimSha);
    assert.deepEqual(fileState(planted), plantedState, 'the file planted in the host\'s /tmp');
    assert.deepEqual(readdirSync('/etc').sort(), etcBefore, 'no new files in /etc');
    assert.deepEqual(readdirSync('/root').sort(), rootBefore, 'no new files in /root');
    assert.equal(sha(readFileSync(join(t.dataDir, 'keys', 'snapshot.key'))), keyBefore, 'the snapshot key');
    assert.equal((statSync(t.dataDir).mode & 0o777).toString(8), '700', 'the data dir stays private');
    assert.ok(existsSync(join(t.dataDir, 'thaw.db')));
    assert.ok(!readdirSync(t.dataDir).some((n) => n.includes(tag)), 'nothing written into the data dir');
    assert.equal(sha(readFileSync(victimCodeOnHost, 'utf8')), victimSha, 'the victim\'s code on the host');
    for (const c of canaries) assert.equal(c.exitCode ?? c.signalCode, null, 'host processes of instance uids still run');
    stopped = true;
    await t.stop();
  });
});

describe('hostile resource use in the namespaces sandbox', { skip }, () => {
  let r: TestThaw;
  // No runtime pool and no freezing: the only instances are the probes', so "no process left" is exact.
  before(async () => {
    r = await startTestThaw({ poolSize: 0, freezeAfterMs: -1 });
    assert.equal(r.thaw.platform.driver.name, 'namespaces');
  });
  after(async () => { await r?.stop(); });

  const nothingLeft = () => eventually(async () => (await processesUnder(r.cacheDir)).length === 0, 'no instance process left', 20_000);
  const remove = async (name: string) => { await r.lambda.send(new DeleteFunctionCommand({ FunctionName: name })); await nothingLeft(); };

  test('a fork bomb is stopped by the pids limit; the invocation ends, the platform serves, no process remains', async (ctx) => {
    await create(r, 'forkbomb', FORKBOMB, { MemorySize: 512, Timeout: 20 });
    // The kernel's own count, read on the host while the bomb runs: the instance's pids group (the only one).
    const layout = detectCgroups();
    const how = enforcement(layout).pids;
    assert.ok(how, 'this host has a pids controller');
    const scopeDir = how === 'v2' ? join(layout.v2!, `thaw-${scopeTagFor(r.cacheDir)}`) : join(layout.v1.pids!, `thaw-${scopeTagFor(r.cacheDir)}`);
    const readNum = (f: string) => { try { return Number(readFileSync(f, 'utf8').trim()); } catch { return NaN; } };
    let maxCurrent = 0, limitHits = 0, group = '';
    const bombing = call(r, 'forkbomb', {});
    let done = false;
    void bombing.finally(() => { done = true; });
    while (!done) {
      const ids = existsSync(scopeDir) ? readdirSync(scopeDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : [];
      if (ids.length === 1) {
        group = join(scopeDir, ids[0]);
        assert.equal(readNum(join(group, 'pids.max')), PIDS_MAX);
        maxCurrent = Math.max(maxCurrent, readNum(join(group, 'pids.current')) || 0);
        limitHits = Math.max(limitHits, Number(/^max (\d+)$/m.exec((() => { try { return readFileSync(join(group, 'pids.events'), 'utf8'); } catch { return ''; } })())?.[1] ?? 0));
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    const bomb = await bombing;
    assert.equal(bomb.error, 'Unhandled', bomb.text);
    assert.equal(bomb.json.errorType, 'Sandbox.Timedout', bomb.text);
    assert.ok(maxCurrent > 500 && maxCurrent <= PIDS_MAX, `the group held at most ${PIDS_MAX} tasks (most seen: ${maxCurrent})`);
    assert.ok(limitHits > 0, `the kernel refused forks at the limit (pids.events max ${limitHits})`);
    // And inside: the shells could not fork. Node's own spawns failing with EAGAIN is shown, not asserted:
    // on a starved host its event loop may get few tries in.
    const stats = JSON.parse(/FORKBOMB (\{.*\})/.exec(bomb.logs)?.[1] ?? 'null');
    assert.ok(stats, `the bomb reported: ${bomb.logs}`);
    assert.match(stats.errors, /fork/i, `the shells' forks failed: ${JSON.stringify(stats)}`);
    ctx.diagnostic(`pids.current peaked at ${maxCurrent} of ${PIDS_MAX}; forks refused at the limit: ${limitHits}; inside: ${JSON.stringify(stats).slice(0, 160)}`);
    await eventually(async () => !existsSync(group), 'the instance\'s pids group removed');
    await nothingLeft();
    assert.equal((await getJson(`${r.url}/thaw/v1/health`)).status, 'ok');
    const next = await call(r, 'forkbomb', { benign: true });
    assert.equal(next.json, 'fine', next.text);
    await remove('forkbomb');
  });

  test('memory outside the V8 heap is capped at MemorySize: Runtime.OutOfMemory, a new instance next, Max Memory Used <= MemorySize', async (ctx) => {
    await create(r, 'membomb', MEMBOMB, { MemorySize: 128, Timeout: 30 });
    const reports: number[] = [];
    const fine = await call(r, 'membomb', { mode: 'chunks', mb: 40 });
    assert.equal(fine.error, null, fine.text);
    const fineMax = maxMemoryUsed(fine.logs);
    assert.equal(fineMax.length, 1, fine.logs);
    assert.ok(fineMax[0] >= 40, `Max Memory Used counts memory outside the heap: ${fineMax[0]} MB`);
    reports.push(...fineMax);
    for (const mode of ['chunks', 'pages']) {
      const before = await instanceOf(r, await call(r, 'membomb', { mode: 'chunks', mb: 1 }));
      const bomb = await call(r, 'membomb', { mode, mb: 512 });
      assert.equal(bomb.error, 'Unhandled', `${mode}: ${bomb.text}`);
      assert.equal(bomb.json.errorType, 'Runtime.OutOfMemory', `${mode}: ${bomb.text}`);
      reports.push(...maxMemoryUsed(bomb.logs));
      const next = await call(r, 'membomb', { mode: 'chunks', mb: 1 });
      assert.equal(next.error, null, next.text);
      assert.equal(next.start, 'cold', 'the instance was replaced');
      assert.notEqual(await instanceOf(r, next), before);
      reports.push(...maxMemoryUsed(next.logs));
    }
    // A child process is in the same cgroup: it cannot get the memory either.
    const child = await call(r, 'membomb', { mode: 'child', mb: 512 });
    if (child.error === null) assert.notEqual(child.json.child.out, 'CHILD DONE', `the child allocated 512 MB: ${child.text}`);
    else assert.equal(child.json.errorType, 'Runtime.OutOfMemory', child.text);
    reports.push(...maxMemoryUsed(child.logs));
    const logs = (await getJson(`${r.url}/thaw/v1/functions/membomb/logs?limit=5000`)).lines.map((l: { line: string }) => l.line).join('\n');
    reports.push(...maxMemoryUsed(logs));
    assert.ok(reports.length >= 4, `REPORT lines with Max Memory Used: ${reports}`);
    for (const mb of reports) assert.ok(mb <= 128, `Max Memory Used ${mb} MB exceeds MemorySize 128: ${reports}`);
    ctx.diagnostic(`Max Memory Used values (MB): ${reports.join(', ')}; child with 512 MB: ${child.text.slice(0, 160)}`);
    assert.equal((await call(r, 'membomb', { mode: 'chunks', mb: 1 })).error, null);
    await remove('membomb');
  });

  test('/tmp filled past EphemeralStorage (512 MB) hits ENOSPC; the platform serves; no process remains', async (ctx) => {
    const created = await create(r, 'filler', FILLER, { MemorySize: 1024, Timeout: 60, EphemeralStorage: { Size: 512 } });
    assert.equal(created.EphemeralStorage?.Size, 512);
    const fill = await call(r, 'filler', { dir: '/tmp', mb: 600, cleanup: true });
    assert.equal(fill.error, null, fill.text);
    assert.equal(fill.json.code, 'ENOSPC', fill.text);
    assert.ok(fill.json.mb >= 500 && fill.json.mb <= 512, `stopped at the limit: ${fill.json.mb} MB`);
    ctx.diagnostic(`/tmp took ${fill.json.mb} MB, then ${fill.json.code}`);
    assert.equal((await call(r, 'filler', { dir: '/tmp', mb: 1, cleanup: true })).json.code, null, 'the instance still works');
    await remove('filler');
  });

  test('the writable compile cache is not a way around the /tmp limit (600 MB into /var/thaw/compile-cache)', async (ctx) => {
    await create(r, 'cachefill', FILLER, { MemorySize: 1024, Timeout: 60, EphemeralStorage: { Size: 512 } });
    const compileDir = join(r.cacheDir, 'compile');
    const before = existsSync(compileDir) ? bytesUnder(compileDir) : 0;
    const fill = await call(r, 'cachefill', { dir: '/var/thaw/compile-cache', mb: 600 });
    assert.equal(fill.error, null, fill.text);
    await remove('cachefill');
    const grown = (existsSync(compileDir) ? bytesUnder(compileDir) : 0) - before;
    // Bounded below the function's own /tmp limit, and refused (not silently dropped) beyond the bound.
    assert.ok(fill.json.mb < 512 && fill.json.code !== null && grown <= 512 << 20,
      `the function wrote ${fill.json.mb} MB (${fill.json.code ?? 'no error'}) into /var/thaw/compile-cache; the host's ${compileDir} grew by ${Math.round(grown / 1048576)} MB and keeps it after the function is deleted`);
    ctx.diagnostic(`compile cache: ${fill.json.mb} MB then ${fill.json.code}; the host's compile dir kept ${Math.round(grown / 1048576)} MB after the function was deleted`);
  });

  test('a busy loop past the timeout ends with Sandbox.Timedout; the platform serves; no process remains', async () => {
    await create(r, 'spinner', SPINNER, { MemorySize: 128, Timeout: 2 });
    const spin = await call(r, 'spinner', {});
    assert.equal(spin.error, 'Unhandled', spin.text);
    assert.equal(spin.json.errorType, 'Sandbox.Timedout', spin.text);
    assert.ok(spin.ms < 10_000, `ended near its 2 s timeout: ${Math.round(spin.ms)} ms`);
    await nothingLeft();
    assert.equal((await call(r, 'spinner', { benign: true })).json, 'fine');
    await remove('spinner');
  });

  test('a busy child left behind in its own session dies with its instance', async () => {
    await create(r, 'orphaner', SPINNER, { MemorySize: 128, Timeout: 5 });
    const o = await call(r, 'orphaner', { orphan: true });
    assert.equal(o.error, null, o.text);
    const instance = await instanceOf(r, o);
    assert.ok((await processesOfInstance(r.cacheDir, instance)).length >= 2, 'the orphan runs beside the runtime');
    await remove('orphaner');
    // Its exiting processes linger a moment as zombies; none may stay.
    await eventually(async () => (await processesOfInstance(r.cacheDir, instance)).length === 0, `no process of ${instance} left`, 20_000);
  });
});

// The runtime's IPC channel is fd 3 inside the sandbox, and the user's code can write to it. The server runs in
// a child process here (`thaw up`), so that if the probe brings it down, this test runner survives to say so.
describe('hostile use of the runtime channel', { skip }, () => {
  let server: ChildProcess | null = null;
  let url = '';
  let dataDir = '';
  let cacheDir = '';
  let exited: Promise<number | null>;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'thaw-test-data-'));
    cacheDir = await mkdtemp('/dev/shm/thaw-test-cache-');
    server = spawn(process.execPath, [join(import.meta.dirname, '..', 'bin', 'thaw.js'), 'up', '--port', '0', '--data', dataDir, '--cache', cacheDir, '--sandbox', 'namespaces'],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    exited = new Promise((resolve) => server!.once('exit', (code) => resolve(code)));
    let err = '';
    server.stderr!.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-4000); });
    url = await eventually(async () => /listening on (http:\/\/[^\s]+)/.exec(err)?.[1], `thaw up to listen (stderr: ${err})`, 30_000);
  });

  after(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r('late'), 20_000))]);
      if (done === 'late') server.kill('SIGKILL');
    }
    // A server that died leaves mounts and cgroups behind: a start on the same dirs removes them.
    const sweep = await startThaw({ port: 0, dataDir, cacheDir, poolSize: 0, snapshots: false });
    await sweep.close();
    const left = await processesUnder(cacheDir);
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
    assert.deepEqual(left, [], 'no instance process outlived the server');
  });

  const deploy = async (name: string, code: string) => {
    const res = await fetch(`${url}/2015-03-31/functions`, {
      method: 'POST', body: JSON.stringify({ FunctionName: name, Runtime: 'nodejs24', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: pkg({ 'index.mjs': code }).toString('base64') } }),
    });
    assert.equal(res.status, 201, await res.text());
  };

  test('a function writing garbage to its runtime channel (fd 3) does not bring the server down', async () => {
    await deploy('bystander', 'export const handler = async () => "still here";');
    await deploy('jammer', hostile(`fs.writeSync(3, 'not json\\n'); return 'sent';`));
    const r = await invokeHttp(url, 'jammer', {}).catch((e: Error) => ({ status: 0, text: String(e.cause ?? e) }));
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(server!.exitCode, null, `the server exited with status ${server!.exitCode} after one line of garbage on fd 3 (the invocation got: ${r.status} ${r.text.slice(0, 120)})`);
    // The probe ran: its sandbox started and its handler wrote the line (whatever the platform then made of it).
    assert.equal(r.status, 200, `the jammer did not run: ${r.text.slice(0, 200)}`);
    assert.equal((await getJson(`${url}/thaw/v1/health`)).status, 'ok');
    const b = await invokeHttp(url, 'bystander', {});
    assert.equal(b.json, 'still here', b.text);
  });

  test('well-formed JSON of the wrong shape on the channel ends only that instance', async () => {
    for (const [i, line] of ['{"type":"log","invocationId":null,"stream":"stdout","text":123}', '{"type":"fatal","invocationIds":5,"error":{}}', '{"type":"result","id":7}', '[1,2]', `{"type":"log","text":"${'x'.repeat(64)}`].entries()) {
      await deploy(`shape${i}`, hostile(`fs.writeSync(3, ${JSON.stringify(line + '\n')}); await new Promise((r) => setTimeout(r, 200)); return 'survived';`));
      const r = await invokeHttp(url, `shape${i}`, {}).catch((e: Error) => ({ status: 0, text: String(e.cause ?? e), headers: new Headers() }));
      assert.equal(server!.exitCode, null, `the server exited after ${line}`);
      if (i < 4) assert.equal(r.headers.get('x-amz-function-error'), 'Unhandled', `${line}: the instance is ended as a protocol violation (${r.text.slice(0, 200)})`);
    }
    assert.equal((await invokeHttp(url, 'bystander', {})).json, 'still here');
  });
});

// The same kind of probes against the unconfined driver: documentation that it is NOT a boundary. Only the
// harmless ones (reads, a listing of /proc, signal 0, a bounded allocation).
describe('contrast: the process driver does not confine (so the probes above can fail)', { skip: process.getuid?.() === 0 ? false : 'needs root to compare like for like' }, () => {
  let p: TestThaw;
  before(async () => { p = await startTestThaw({ sandbox: 'process', poolSize: 0, freezeAfterMs: -1 }); });
  after(async () => { await p?.stop(); });

  test('an unconfined function reads the data dir and the host /tmp, sees host processes and can signal them, and allocates past MemorySize', async () => {
    assert.equal(p.thaw.platform.driver.name, 'process');
    const hostFile = `/tmp/thaw-contrast-${tag}`;
    writeFileSync(hostFile, HOST_SECRET);
    try {
      await create(p, 'snoop', SNOOP);
      const s = await call(p, 'snoop', { paths: [join(p.dataDir, 'thaw.db'), hostFile], needles: [], skip: [], procMarker: 'x', search: false });
      assert.match(s.json.reads[join(p.dataDir, 'thaw.db')], /^READ /);
      assert.match(s.json.reads[hostFile], /^READ /);
      assert.ok(s.json.pids.length > 10, 'it sees the host\'s processes');
      assert.ok(s.json.pids.includes(process.pid), 'including the server');
      await create(p, 'reaper', REAPER);
      const k = await call(p, 'reaper', { guesses: [process.pid], signal: 0 });
      assert.ok(k.json.signalled.includes(process.pid), 'it could signal the server');
      await create(p, 'membomb', MEMBOMB, { MemorySize: 128, Timeout: 30 });
      const m = await call(p, 'membomb', { mode: 'chunks', mb: 300 });
      assert.equal(m.error, null, m.text);
      assert.equal(m.json.allocatedMb, 300, 'no memory limit outside the heap');
    } finally {
      rmSync(hostFile, { force: true });
    }
  });
});
