// A private PostgreSQL server for tests: initdb into a temp dir, `postgres` on a free loopback port, one
// database per caller. Tuned for speed over durability (fsync off, small buffers): a test server lives for
// one test file. As root the server runs as the `postgres` OS user, since initdb and postgres refuse root.
// Where PostgreSQL is not installed, `startPostgres` answers `{ skip }` with the command that enables it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chown, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** A URL (with user and password) of an empty database made for the caller. */
  url: string;
  /** Makes another empty database on the same server and answers its URL. */
  createDatabase(): Promise<string>;
  /** The same server and database with other credentials or database name, to test refusals. */
  urlWith(parts: { user?: string; password?: string; database?: string }): string;
  /** The directory of the server's unix socket (for `?host=DIR` URLs; local connections are trusted). */
  socketDir: string;
  /** Stops the server as an outage would (open connections are cut), keeping its data. */
  halt(): Promise<void>;
  /** Starts a halted server again, on the same port with the same data. */
  resume(): Promise<void>;
  /** Stops the server (fast shutdown: open connections are cut) and removes its directory. */
  stop(): Promise<void>;
}

export type StartedPostgres = TestPostgres | { skip: string };

const SKIP = 'PostgreSQL is not installed: apt-get install postgresql';
const USER = 'thaw';

/** The newest installed PostgreSQL's bin dir (Debian puts each major version under /usr/lib/postgresql). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : undefined;
}

export async function startPostgres(): Promise<StartedPostgres> {
  const bin = postgresBinDir();
  if (!bin) return { skip: SKIP };
  const owner = await serverOwner();
  if ('skip' in owner) return owner;
  const dir = await mkdtemp(join(tmpdir(), 'thaw-pg-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    if (owner.uid !== undefined) await chown(dir, owner.uid, owner.gid!);
    const password = randomBytes(12).toString('hex');
    const pwfile = join(dir, 'pwfile');
    await writeFile(pwfile, password + '\n', { mode: 0o600 });
    if (owner.uid !== undefined) await chown(pwfile, owner.uid, owner.gid!);
    const data = join(dir, 'data');
    await run(join(bin, 'initdb'), ['-D', data, '-U', USER, `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256',
      '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'], dir, owner);
    const listening = await listenOnFreePort(join(bin, 'postgres'), data, dir, owner);
    const port = listening.port;
    let child = listening.child;
    const onExit = () => { child.kill('SIGQUIT'); cleanup(); };
    process.once('exit', onExit);
    const base = (database: string, user = USER, pass = password) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
    let made = 0;
    const createDatabase = async () => {
      const name = `thaw_${made++}`;
      const admin = new pg.Client({ connectionString: base('postgres') });
      await admin.connect();
      try { await admin.query(`CREATE DATABASE ${name}`); } finally { await admin.end(); }
      return base(name);
    };
    let url: string;
    try { url = await createDatabase(); } catch (e) { onExit(); process.off('exit', onExit); throw e; }
    return {
      url,
      createDatabase,
      urlWith: (parts) => base(parts.database ?? new URL(url).pathname.slice(1), parts.user, parts.password ?? password),
      socketDir: dir,
      halt: () => stopServer(child),
      async resume() {
        if (child.exitCode === null && child.signalCode === null) return;
        child = spawnPostgres(join(bin, 'postgres'), data, dir, port, owner);
        const ready = await untilReady(child);
        if (ready !== true) throw new Error(`postgres did not start again on port ${port}:\n${ready}`);
      },
      async stop() {
        process.off('exit', onExit);
        await stopServer(child);
        cleanup();
      },
    };
  } catch (e) {
    cleanup();
    throw e;
  }
}

interface Owner { uid?: number; gid?: number }

/** Who runs the server: this user, or the `postgres` OS user when this is root (initdb refuses root). */
async function serverOwner(): Promise<Owner | { skip: string }> {
  if (process.getuid?.() !== 0) return {};
  const [uid, gid] = await Promise.all([idOf('-u'), idOf('-g')]);
  if (uid === undefined || gid === undefined) return { skip: 'running as root and there is no `postgres` OS user to run the server: apt-get install postgresql' };
  return { uid, gid };
}

function idOf(flag: '-u' | '-g'): Promise<number | undefined> {
  return new Promise((resolve) => {
    const c = spawn('id', [flag, 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    c.stdout.on('data', (d) => (s += d));
    c.on('close', (code) => resolve(code === 0 && s.trim() ? Number(s.trim()) : undefined));
    c.on('error', () => resolve(undefined));
  });
}

function spawnAs(cmd: string, args: string[], cwd: string, owner: Owner): ChildProcess {
  // Node drops the supplementary groups when uid/gid are given, as runuser would.
  return spawn(cmd, args, { cwd, uid: owner.uid, gid: owner.gid, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function run(cmd: string, args: string[], cwd: string, owner: Owner): Promise<void> {
  const child = spawnAs(cmd, args, cwd, owner);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve, reject) => { child.on('error', reject); child.on('close', resolve); });
  if (code !== 0) throw new Error(`${cmd} failed (exit ${code}):\n${out}`);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts postgres on a port found free; another process may take it first, so a bind failure retries. */
async function listenOnFreePort(postgres: string, data: string, dir: string, owner: Owner): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawnPostgres(postgres, data, dir, port, owner);
    const ready = await untilReady(child);
    if (ready === true) return { child, port };
    if (attempt >= 5 || !/could not (bind|create listen)|already in use/i.test(ready)) throw new Error(`postgres did not start:\n${ready}`);
  }
}

function spawnPostgres(postgres: string, data: string, dir: string, port: number, owner: Owner): ChildProcess {
  return spawnAs(postgres, ['-D', data, '-k', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1',
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'shared_buffers=16MB',
    '-c', 'max_connections=200'], dir, owner);
}

/** Resolves true once the server says it accepts connections, or the log if it exits first. */
function untilReady(child: ChildProcess): Promise<true | string> {
  return new Promise((resolve) => {
    let log = '';
    const onData = (d: Buffer) => {
      log += d;
      if (log.includes('ready to accept connections')) { child.stderr!.off('data', onData); child.stderr!.resume(); resolve(true); }
    };
    child.stderr!.on('data', onData);
    child.stdout!.resume();
    child.once('error', (e) => resolve(String(e)));
    child.once('exit', (code) => resolve(`exit ${code}\n${log}`));
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT'); // fast shutdown: rolls back open transactions, cuts clients, exits cleanly
  const timer = setTimeout(() => child.kill('SIGQUIT'), 20_000);
  await exited;
  clearTimeout(timer);
}
