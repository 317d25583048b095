// Test hosts in network namespaces that the tests create themselves: a namespace joined to the host by a
// veth pair (a /30 of 10.251.N.0) or plugged into a bridge, with a small Node server started inside. All
// traffic stays on this machine. Needs root and iproute2.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';

export interface NetHost {
  name: string;
  /** Its address, as the host (and the egress proxy) reaches it. */
  address: string;
  /** Starts `node -e SCRIPT` inside, waits for it to print READY. */
  run(script: string): Promise<ChildProcess>;
  close(): Promise<void>;
}

const ip = (...args: string[]) => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
};

export function canMakeNetHosts(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (to create network namespaces and veth pairs)';
  const r = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (r.status !== 0) return 'needs iproute2 (apt-get install iproute2)';
  return null;
}

let seq = 0;

/** A host on a point-to-point link to this machine: 10.251.N.2, the host side 10.251.N.1. */
export function pointToPoint(): NetHost {
  const n = (process.pid % 200) + (seq++ % 50);
  const name = `thawt-${randomBytes(3).toString('hex')}`;
  const hostEnd = `${name}h`.slice(0, 15);
  ip('netns', 'add', name);
  ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
  ip('addr', 'add', `10.251.${n}.1/30`, 'dev', hostEnd);
  ip('link', 'set', hostEnd, 'up');
  ip('-n', name, 'addr', 'add', `10.251.${n}.2/30`, 'dev', 'eth0');
  ip('-n', name, 'link', 'set', 'eth0', 'up');
  ip('-n', name, 'link', 'set', 'lo', 'up');
  return host(name, `10.251.${n}.2`, () => { try { ip('link', 'del', hostEnd); } catch { /* gone with the namespace */ } });
}

/** A host plugged into a bridge (a Thaw network), at `address` of `prefix` bits. */
export function onBridge(bridge: string, address: string, prefix: number): NetHost {
  const name = `thawt-${randomBytes(3).toString('hex')}`;
  const hostEnd = `${name}b`.slice(0, 15);
  ip('netns', 'add', name);
  ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
  ip('link', 'set', hostEnd, 'master', bridge, 'up');
  ip('-n', name, 'addr', 'add', `${address}/${prefix}`, 'dev', 'eth0');
  ip('-n', name, 'link', 'set', 'eth0', 'up');
  ip('-n', name, 'link', 'set', 'lo', 'up');
  return host(name, address, () => { try { ip('link', 'del', hostEnd); } catch { /* gone */ } });
}

function host(name: string, address: string, cleanup: () => void): NetHost {
  const children: ChildProcess[] = [];
  return {
    name,
    address,
    async run(script) {
      const child = spawn('ip', ['netns', 'exec', name, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      let out = '';
      child.stdout!.setEncoding('utf8');
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (t: string) => { out += t; if (out.includes('READY')) resolve(); });
        child.once('exit', (c) => reject(new Error(`test host process exited (${c}) before READY: ${out}`)));
      });
      await ready;
      return child;
    },
    async close() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) { c.kill('SIGKILL'); await once(c, 'exit'); }
      cleanup();
      try { ip('netns', 'del', name); } catch { /* gone */ }
    },
  };
}

/** A service on the host's loopback that no function may reach: answers `host secret`. */
export async function hostLoopbackService(): Promise<{ port: number; close(): void }> {
  const server = createServer((_q, s) => s.end('host secret'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

/** An HTTP server answering `hello from <host>` on port 8080. */
export const HTTP_SERVER = `require('node:http').createServer((q, s) => s.end('hello from ' + q.headers.host + ' ' + q.url)).listen(8080, () => console.log('READY'));`;
/** A TCP echo server on port 7000. */
export const ECHO_SERVER = `require('node:net').createServer((c) => c.pipe(c)).listen(7000, () => console.log('READY'));`;
