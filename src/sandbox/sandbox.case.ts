// The SandboxDriver conformance suite: what every driver (process, namespaces, memory; microVMs later) must
// do, as node:test cases that a driver's test file registers with its own specs. The caller supplies the
// specs (this suite knows no runtime): specFor(id) starts a runtime that answers {type:'ping', id} with
// {type:'pong', id}; specFor(id, probe()) starts PROBE_SCRIPT, which reports what it sees inside. Every unit
// a case creates is ended by the fixture; every wait is bounded, as a guard against a hang only.
// Imports node built-ins, src/core and this component's types.
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { isThawError } from '../core/errors.ts';
import type { CodeView, Sandbox, SandboxDriver, SandboxSpec } from './types.ts';

/** What a case may change in the caller's spec: what runs, with which environment and code. */
export type SpecOverrides = Partial<Pick<SandboxSpec, 'command' | 'args' | 'env' | 'code'>>;
export type SpecFor = (id: string, overrides?: SpecOverrides) => SandboxSpec;

/** The cases, by key (a driver's knownBugs names them so): what every driver must do. */
export const CASES = {
  create: 'create() resolves once the unit\'s process exists; exited stays pending',
  channel: 'the channel carries messages both ways: the runtime answers {type:\'ping\', id} with {type:\'pong\', id}',
  kill: 'kill() resolves exited with the reason given first; later kills change nothing',
  selfExit: 'a unit that exits by itself has killReason null and its exit code',
  selfSignal: 'a unit killed by a signal from inside reports the signal, with killReason null',
  sendAfterExit: 'channel.send() after the unit has exited returns false and throws nothing',
  freezeHolds: 'freeze() holds the unit: a ping sent while frozen is answered only after thaw(), which returns true',
  freezeCpu: 'freeze() resolves once the unit is stopped: a spinning process is off the CPU and uses no CPU time until thaw()',
  thawKilled: 'thaw() of a unit killed while frozen returns false, even before its exit is seen',
  pageOut: 'pageOut() of a frozen unit resolves with what stays resident and what went to swap (or null where it cannot); thawed, the unit answers',
  thawExited: 'thaw() of a unit that has exited returns false',
  aborted: 'create() with an aborted signal rejects with THAW_E_ABORTED',
  env: 'the environment is exactly spec.env (and what the driver sets on purpose): nothing of the platform\'s leaks in',
  attachCode: 'attachCode() makes a directory\'s files readable inside and resolves with the inside path',
  attachCache: 'attachCode() makes the compile cache writable inside; what is written there reaches the host',
  attachOpt: 'attachCode() makes the layers\' tree (optDir) readable inside where the inside view says, read-only where the driver isolates',
  specCode: 'spec.code is attached before the process starts, where insideView() says',
  readOnlyCode: 'an isolated driver attaches code read-only',
  output: 'stdout and stderr carry what the unit writes',
  memory: 'rssBytes() and peakMemoryBytes() are numbers or null; peak >= 0',
  asyncDispose: 'Symbol.asyncDispose kills the unit and waits for its exit',
  independent: 'two units are independent: killing one leaves the other answering',
  report: 'report() names the driver and lists what is and is not enforced',
  noLeftovers: 'nothing of a unit outlives its exit: neither its process nor one it started',
  noneLeft: 'no process of any unit the suite created is left',
} as const;
export type CaseKey = keyof typeof CASES;

/** Cases about host processes, skipped for a driver whose units are not. */
const PROCESS_CASES: ReadonlySet<CaseKey> = new Set(['freezeCpu', 'noLeftovers', 'noneLeft']);

export interface ConformanceOptions {
  /** Skip every case, saying why and what enables them. */
  skip?: string;
  /** Units are host processes, checked in /proc (default true; false for an in-process driver). */
  processes?: boolean;
  /** Variables the driver sets over spec.env on purpose (the namespaces driver's HOME=/tmp). */
  envSetByDriver?: Readonly<Record<string, string>>;
  /** A fresh compile-cache directory this driver accepts (default: a new temporary directory). */
  compileCacheDir?: () => string;
  /** Bound of every wait (default 20 s): reached only when the driver is broken. */
  waitMs?: number;
  /**
   * Cases this driver is known to fail, with the bug: they still run, reported as TODO (failing or not)
   * instead of failing the run. Remove an entry when its bug is fixed.
   */
  knownBugs?: Readonly<Partial<Record<CaseKey, string>>>;
}

/** Requests the probe answers, one reply each (exit and die end it instead). */
export type ProbeRequest =
  | { type: 'ping'; id: number }
  | { type: 'env' }
  | { type: 'read'; path: string }
  | { type: 'write'; path: string; text: string }
  | { type: 'print'; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'exit'; code: number }
  | { type: 'die' }
  /** Starts a child process that runs until killed (host processes only). */
  | { type: 'spawn' }
  /** Replies, then spins on the CPU for ever (host processes only). */
  | { type: 'spin' };

export type ProbeReply =
  | { type: 'ready' }
  | { type: 'pong'; id: number }
  | { type: 'env'; env: Record<string, string> }
  | { type: 'read'; text: string | null; error: string | null }
  | { type: 'write'; error: string | null }
  | { type: 'printed' }
  | { type: 'spawned' }
  | { type: 'spinning' };

/**
 * The probe, a CommonJS program for `node -e`. An in-process driver's fake program answers the same
 * requests; it can tell a probe unit by PROBE_SCRIPT in spec.args.
 */
export const PROBE_SCRIPT = `'use strict';
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const error = (e) => String(e && e.code || e);
// The channel: newline-delimited JSON on the socket at fd 3 (channel.ts).
const chan = new (require('node:net').Socket)({ fd: 3, readable: true, writable: true });
const send = (m, cb) => chan.write(JSON.stringify(m) + '\\n', cb);
let partial = '';
chan.setEncoding('utf8');
chan.on('data', (text) => {
  const lines = (partial + text).split('\\n');
  partial = lines.pop();
  for (const line of lines) if (line) onMessage(JSON.parse(line));
});
chan.on('end', () => process.exit(0));
function onMessage(m) {
  switch (m.type) {
    case 'ping': process.send({ type: 'pong', id: m.id }); break;
    case 'env': process.send({ type: 'env', env: { ...process.env } }); break;
    case 'read': try { process.send({ type: 'read', text: fs.readFileSync(m.path, 'utf8'), error: null }); } catch (e) { process.send({ type: 'read', text: null, error: error(e) }); } break;
    case 'write': try { fs.writeFileSync(m.path, m.text); process.send({ type: 'write', error: null }); } catch (e) { process.send({ type: 'write', error: error(e) }); } break;
    case 'print': process[m.stream].write(m.text, () => process.send({ type: 'printed' })); break;
    case 'exit': process.exit(m.code); break;
    case 'die': process.kill(process.pid, 'SIGKILL'); break;
    case 'spawn': spawn(process.execPath, ['-e', 'setInterval(() => {}, 60000)'], { stdio: 'ignore' }).once('spawn', () => process.send({ type: 'spawned' })); break;
    case 'spin': process.send({ type: 'spinning' }, () => { for (;;); }); break;
  }
}
process.send = send;
process.send({ type: 'ready' });
`;

/** The overrides that make specFor start the probe. */
export const probe = (): SpecOverrides => ({ command: process.execPath, args: ['-e', PROBE_SCRIPT] });

/** Rejects with a clear message when p has not settled within ms; the timer never outlives the race. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

type Message = { type: string; [key: string]: unknown };

/** Every message a unit sends, kept from the moment it is created, for cases to wait on in order. */
class Inbox {
  readonly #received: Message[] = [];
  readonly #waiting: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  readonly #ms: number;

  constructor(sandbox: Sandbox, ms: number) {
    this.#ms = ms;
    sandbox.channel.onMessage((raw) => {
      const m = raw as Message;
      const i = this.#waiting.findIndex((w) => w.match(m));
      if (i >= 0) this.#waiting.splice(i, 1)[0].resolve(m);
      else this.#received.push(m);
    });
  }

  /** The first message of this type (and id) not yet taken, received or still to come. */
  take(type: string, id?: number): Promise<Message> {
    const match = (m: Message) => m.type === type && (id === undefined || m.id === id);
    const i = this.#received.findIndex(match);
    if (i >= 0) return Promise.resolve(this.#received.splice(i, 1)[0]);
    return within(new Promise<Message>((resolve) => this.#waiting.push({ match, resolve })), this.#ms, `a '${type}' message`);
  }

  /** Whether a message of this type arrived and was not taken. */
  has(type: string): boolean { return this.#received.some((m) => m.type === type); }
}

/** A turn of the event loop: enough for anything already settled to be seen, no guess at a duration. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The process's state letter (R running, S sleeping, D waiting, T stopped, Z zombie...), null when gone. */
function procState(pid: number): string | null {
  try {
    return /^\d+ \(.*\) (\S) /s.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Host processes: alive means present and neither a zombie nor dead. */
function alive(pid: number): boolean {
  const state = procState(pid);
  return state !== null && state !== 'Z' && state !== 'X' && state !== 'x';
}

/** CPU time the process has used (user + system), in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Host pids whose parent is pid. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** Polls what only /proc can tell (no event says it) until it holds, or ms have passed: whether it holds. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const until = systemClock.monotonic() + ms;
  while (!check()) {
    if (systemClock.monotonic() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** The pids still alive once every one is dead or ms have passed: a process SIGKILLed a moment ago may be on its way out. */
async function allDead(pids: readonly number[], ms: number): Promise<number[]> {
  await eventually(() => !pids.some(alive), ms);
  return pids.filter(alive);
}

/** A directory of code the unit's uid can read (each confined instance runs as a uid of its own). */
function codeDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-conformance-code-'));
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, name), text);
    chmodSync(join(dir, name), 0o644);
  }
  chmodSync(dir, 0o755);
  return dir;
}

export function sandboxConformance(name: string, makeDriver: () => Promise<SandboxDriver> | SandboxDriver, specFor: SpecFor, opts: ConformanceOptions = {}): void {
  const processes = opts.processes ?? true;
  const ms = opts.waitMs ?? 20_000;
  const onlyProcesses = processes ? false : `${name}'s units are not host processes`;

  describe(`SandboxDriver conformance: ${name}`, { skip: opts.skip }, () => {
    let driver: SandboxDriver;
    /** Every unit a case created, ended by the fixture after the case. */
    const units = new Set<Sandbox>();
    /** Every host pid of a unit, for the leak check at the end. */
    const pids = new Set<number>();
    /** Host directories made by cases, removed at the end. */
    const dirs: string[] = [];
    let seq = 0;

    const must = (key: CaseKey, fn: (t: TestContext) => Promise<void> | void) => {
      const bug = opts.knownBugs?.[key];
      test(CASES[key], { skip: PROCESS_CASES.has(key) ? onlyProcesses : false, todo: bug ? `known bug: ${bug}` : false }, fn);
    };
    const create = async (overrides?: SpecOverrides, signal?: AbortSignal) => {
      const spec = specFor(`conf-${process.pid}-${++seq}`, overrides);
      const sandbox = await driver.create(spec, signal);
      units.add(sandbox);
      if (processes) pids.add(sandbox.pid);
      return { sandbox, spec, inbox: new Inbox(sandbox, ms) };
    };
    const dir = (files: Record<string, string>) => { const d = codeDir(files); dirs.push(d); return d; };
    const exitOf = (s: Sandbox) => within(s.exited, ms, `the exit of ${s.id}`);

    const endAll = async () => {
      for (const s of units) s.kill('conformance case over');
      await Promise.all([...units].map(exitOf));
      units.clear();
    };

    before(async () => {
      driver = await makeDriver();
      await driver.start();
    });
    afterEach(endAll);
    after(async () => {
      await endAll();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      await driver?.close();
    });

    must('create', async () => {
      const { sandbox, spec } = await create();
      assert.equal(sandbox.id, spec.id);
      assert.ok(Number.isInteger(sandbox.pid) && sandbox.pid > 0, `pid ${sandbox.pid} is a positive integer`);
      if (processes) assert.ok(alive(sandbox.pid), `process ${sandbox.pid} exists when create() resolves`);
      let settled = false;
      void sandbox.exited.then(() => { settled = true; });
      await turn();
      assert.equal(settled, false, 'exited is pending while the unit runs');
      assert.equal(sandbox.hasExited, false);
    });

    must('channel', async () => {
      const { sandbox, inbox } = await create();
      assert.equal(sandbox.channel.send({ type: 'ping', id: 41 }), true, 'send() to a live unit says it was sent');
      sandbox.channel.send({ type: 'ping', id: 42 });
      assert.deepEqual(await inbox.take('pong', 42), { type: 'pong', id: 42 });
      assert.deepEqual(await inbox.take('pong', 41), { type: 'pong', id: 41 });
    });

    must('kill', async () => {
      const { sandbox } = await create();
      sandbox.kill('first reason');
      sandbox.kill('second reason');
      const exit = await exitOf(sandbox);
      assert.equal(exit.killReason, 'first reason');
      assert.equal(exit.oomKilled, false);
      assert.equal(sandbox.hasExited, true);
      sandbox.kill('after the exit');
      assert.equal(await sandbox.exited, exit, 'exited resolves once, with one value');
    });

    must('selfExit', async () => {
      const { sandbox, inbox } = await create(probe());
      await inbox.take('ready');
      sandbox.channel.send({ type: 'exit', code: 3 } satisfies ProbeRequest);
      assert.deepEqual(await exitOf(sandbox), { code: 3, signal: null, killReason: null, oomKilled: false });
    });

    must('selfSignal', async () => {
      const { sandbox, inbox } = await create(probe());
      await inbox.take('ready');
      sandbox.channel.send({ type: 'die' } satisfies ProbeRequest);
      assert.deepEqual(await exitOf(sandbox), { code: null, signal: 'SIGKILL', killReason: null, oomKilled: false });
    });

    must('sendAfterExit', async () => {
      const { sandbox } = await create();
      sandbox.kill('ended');
      await exitOf(sandbox);
      assert.equal(sandbox.channel.send({ type: 'ping', id: 1 }), false);
    });

    must('freezeHolds', async () => {
      const { sandbox, inbox } = await create();
      sandbox.channel.send({ type: 'ping', id: 1 });
      await inbox.take('pong', 1);
      await sandbox.freeze();
      sandbox.channel.send({ type: 'ping', id: 2 });
      // Proving an absence takes some time; a frozen unit never answers, however long this is.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(inbox.has('pong'), false, 'no answer while frozen');
      assert.equal(sandbox.hasExited, false, 'a frozen unit is alive');
      assert.equal(await sandbox.thaw(), true);
      assert.deepEqual(await inbox.take('pong', 2), { type: 'pong', id: 2 });
      sandbox.channel.send({ type: 'ping', id: 3 });
      await inbox.take('pong', 3);
    });

    must('freezeCpu', async () => {
      const { sandbox, inbox } = await create(probe());
      await inbox.take('ready');
      pids.add(sandbox.pid);
      sandbox.channel.send({ type: 'spin' } satisfies ProbeRequest);
      await inbox.take('spinning');
      assert.ok(await eventually(() => procState(sandbox.pid) === 'R', ms), 'the probe spins');
      await sandbox.freeze();
      // A spinning process is always R (running or runnable); stopped or frozen it is T, S or D, whichever the mechanism.
      assert.notEqual(procState(sandbox.pid), 'R', 'still on the CPU when freeze() resolved');
      const before = cpuTicks(sandbox.pid);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(cpuTicks(sandbox.pid) - before, 0, 'CPU ticks used while frozen');
      assert.equal(await sandbox.thaw(), true);
      const thawed = cpuTicks(sandbox.pid);
      assert.ok(await eventually(() => cpuTicks(sandbox.pid) > thawed, ms), 'it spins again once thawed');
    });

    must('thawKilled', async () => {
      const { sandbox, inbox } = await create();
      sandbox.channel.send({ type: 'ping', id: 1 });
      await inbox.take('pong', 1);
      await sandbox.freeze();
      sandbox.kill('killed while frozen');
      assert.equal(await sandbox.thaw(), false);
      assert.equal((await exitOf(sandbox)).killReason, 'killed while frozen');
    });

    must('pageOut', async () => {
      const { sandbox, inbox } = await create();
      sandbox.channel.send({ type: 'ping', id: 1 });
      await inbox.take('pong', 1);
      await sandbox.freeze();
      const r = await sandbox.pageOut();
      if (r !== null) {
        assert.ok(Number.isFinite(r.residentBytes) && r.residentBytes >= 0, `residentBytes ${r.residentBytes}`);
        assert.ok(Number.isFinite(r.swappedBytes) && r.swappedBytes >= 0, `swappedBytes ${r.swappedBytes}`);
      }
      assert.equal(await sandbox.thaw(), true);
      sandbox.channel.send({ type: 'ping', id: 2 });
      await inbox.take('pong', 2);
    });

    must('thawExited', async () => {
      const { sandbox } = await create();
      sandbox.kill('gone');
      await exitOf(sandbox);
      assert.equal(await sandbox.thaw(), false);
    });

    must('aborted', async () => {
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(create(undefined, ac.signal), (e) => isThawError(e) && e.code === 'THAW_E_ABORTED');
    });

    must('env', async () => {
      const marker = 'THAW_CONFORMANCE_LEAK_MARKER';
      process.env[marker] = 'the platform\'s own environment';
      try {
        const env = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', THAW_CONFORMANCE: 'spec value' };
        const { sandbox, inbox } = await create({ ...probe(), env });
        sandbox.channel.send({ type: 'env' } satisfies ProbeRequest);
        const seen = (await inbox.take('env')).env as Record<string, string>;
        assert.equal(seen[marker], undefined, 'a variable of the platform\'s process is not visible inside');
        assert.deepEqual(seen, { ...env, ...opts.envSetByDriver });
      } finally {
        delete process.env[marker];
      }
    });

    must('attachCode', async () => {
      const view: CodeView = { codeDir: dir({ 'hello.txt': 'attached later' }), compileCacheDir: null };
      const { sandbox, inbox } = await create(probe());
      await inbox.take('ready');
      const inside = await sandbox.attachCode(view);
      assert.deepEqual(inside, driver.insideView(view));
      sandbox.channel.send({ type: 'read', path: join(inside.codeDir, 'hello.txt') } satisfies ProbeRequest);
      assert.deepEqual(await inbox.take('read'), { type: 'read', text: 'attached later', error: null });
    });

    must('attachCache', async () => {
      const cache = opts.compileCacheDir?.() ?? dir({});
      const view: CodeView = { codeDir: dir({ 'index.js': '' }), compileCacheDir: cache };
      const { sandbox, inbox } = await create(probe());
      await inbox.take('ready');
      const inside = await sandbox.attachCode(view);
      assert.ok(inside.compileCacheDir, 'a compile cache given is a compile cache inside');
      sandbox.channel.send({ type: 'write', path: join(inside.compileCacheDir, 'entry'), text: 'compiled' } satisfies ProbeRequest);
      assert.deepEqual(await inbox.take('write'), { type: 'write', error: null });
      assert.equal(readFileSync(join(cache, 'entry'), 'utf8'), 'compiled');
    });

    must('attachOpt', async () => {
      const view: CodeView = { codeDir: dir({ 'index.js': '' }), compileCacheDir: null, optDir: dir({ 'layer.txt': 'from a layer' }) };
      const { sandbox, inbox } = await create(probe());
      await inbox.take('ready');
      const inside = await sandbox.attachCode(view);
      assert.ok(inside.optDir, 'a tree given is a tree inside');
      const file = join(inside.optDir, 'layer.txt');
      sandbox.channel.send({ type: 'read', path: file } satisfies ProbeRequest);
      assert.deepEqual(await inbox.take('read'), { type: 'read', text: 'from a layer', error: null });
      if (!driver.report().isolated) return;
      sandbox.channel.send({ type: 'write', path: file, text: 'changed' } satisfies ProbeRequest);
      assert.notEqual((await inbox.take('write')).error, null, 'writing the layers fails');
      assert.equal(readFileSync(join(view.optDir!, 'layer.txt'), 'utf8'), 'from a layer');
    });

    must('specCode', async () => {
      const view: CodeView = { codeDir: dir({ 'hello.txt': 'attached at start' }), compileCacheDir: null };
      const { sandbox, inbox } = await create({ ...probe(), code: view });
      sandbox.channel.send({ type: 'read', path: join(driver.insideView(view).codeDir, 'hello.txt') } satisfies ProbeRequest);
      assert.deepEqual(await inbox.take('read'), { type: 'read', text: 'attached at start', error: null });
    });

    must('readOnlyCode', async (t) => {
      if (!driver.report().isolated) return t.skip(`${name} does not isolate`);
      const view: CodeView = { codeDir: dir({ 'hello.txt': 'original' }), compileCacheDir: null };
      const { sandbox, inbox } = await create(probe());
      const inside = await sandbox.attachCode(view);
      sandbox.channel.send({ type: 'write', path: join(inside.codeDir, 'hello.txt'), text: 'changed' } satisfies ProbeRequest);
      assert.notEqual((await inbox.take('write')).error, null, 'writing the code fails');
      assert.equal(readFileSync(join(view.codeDir, 'hello.txt'), 'utf8'), 'original');
    });

    must('output', async () => {
      const { sandbox } = await create(probe());
      const heard = (stream: 'stdout' | 'stderr', want: string) => within(new Promise<void>((resolve) => {
        let text = '';
        sandbox[stream].setEncoding('utf8').on('data', (t: string) => { text += t; if (text.includes(want)) resolve(); });
      }), ms, `'${want.trim()}' on ${stream}`);
      const both = Promise.all([heard('stdout', 'to stdout\n'), heard('stderr', 'to stderr\n')]);
      sandbox.channel.send({ type: 'print', stream: 'stdout', text: 'to stdout\n' } satisfies ProbeRequest);
      sandbox.channel.send({ type: 'print', stream: 'stderr', text: 'to stderr\n' } satisfies ProbeRequest);
      await both;
    });

    must('memory', async () => {
      const { sandbox, inbox } = await create();
      sandbox.channel.send({ type: 'ping', id: 1 });
      await inbox.take('pong', 1);
      const rss = sandbox.rssBytes();
      const peak = sandbox.peakMemoryBytes();
      assert.ok(rss === null || (Number.isFinite(rss) && rss >= 0), `rssBytes() ${rss}`);
      assert.ok(peak === null || (Number.isFinite(peak) && peak >= 0), `peakMemoryBytes() ${peak}`);
    });

    must('asyncDispose', async () => {
      let unit: Sandbox;
      {
        await using sandbox = (await create()).sandbox;
        unit = sandbox;
      }
      assert.equal(unit.hasExited, true);
      const exit = await unit.exited;
      assert.equal(typeof exit.killReason, 'string', 'ended on purpose');
    });

    must('independent', async () => {
      const a = await create();
      const b = await create();
      if (processes) assert.notEqual(a.sandbox.pid, b.sandbox.pid);
      a.sandbox.kill('only a');
      await exitOf(a.sandbox);
      b.sandbox.channel.send({ type: 'ping', id: 9 });
      await b.inbox.take('pong', 9);
      assert.equal(b.sandbox.hasExited, false);
    });

    must('report', () => {
      const r = driver.report();
      assert.equal(r.driver, driver.name);
      assert.equal(typeof r.isolated, 'boolean');
      assert.ok(Number.isInteger(r.leftoversRemoved) && r.leftoversRemoved >= 0, `leftoversRemoved ${r.leftoversRemoved}`);
      for (const list of [r.enforced, r.notEnforced]) {
        assert.ok(Array.isArray(list));
        for (const item of list) assert.ok(typeof item === 'string' && item.length > 0);
      }
    });

    must('noLeftovers', async () => {
      const { sandbox, inbox } = await create(probe());
      await inbox.take('ready');
      const pid = sandbox.pid;
      sandbox.channel.send({ type: 'spawn' } satisfies ProbeRequest);
      await inbox.take('spawned');
      const started = childrenOf(pid);
      assert.equal(started.length, 1, `the probe (${pid}) started one process`);
      for (const p of [pid, ...started]) pids.add(p);
      await sandbox[Symbol.asyncDispose]();
      assert.deepEqual(await allDead([pid, ...started], ms), [], 'processes still alive after the unit exited');
    });

    must('noneLeft', async () => {
      await endAll();
      assert.deepEqual(await allDead([...pids], ms), []);
    });
  });
}
