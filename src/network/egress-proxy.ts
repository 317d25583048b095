// The egress proxy, one process of the active/standby pair (`node egress-proxy.ts NAME`): an HTTP proxy
// (CONNECT for HTTPS and anything over TCP, absolute-form requests for plain HTTP) on one Unix socket per
// instance, in a directory bound into that instance's sandbox alone: the socket a connection arrives on
// names the instance and so its function's egress policy (granted by the platform over IPC). Each
// connection starts with one line, `THAW <token>`, written by the runtime's relay, which must be that
// instance's grant. A
// destination is checked before and after resolving: names on the allow-list, every resolved address
// against the policy and this host's own addresses. Denials answer 403 with THAW_E_EGRESS_DENIED and are
// reported to the platform, which writes them into the function's log. Imports node built-ins and
// src/network's policy module.
import { once } from 'node:events';
import { chmodSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import { lookup } from 'node:dns/promises';
import net, { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { systemClock } from '../core/clock.ts';
import { EgressRules, type EgressPolicy } from './egress.ts';

export type ProxyCommand =
  /** Listen for one instance on a socket of its own (bound into its sandbox only). */
  | { type: 'listen'; instanceId: string; path: string }
  | { type: 'grant'; instanceId: string; token: string; label: string; policy: EgressPolicy }
  | { type: 'revoke'; instanceId: string }
  /** The subnets of Thaw's private networks: reached only by joining them, never through the proxy. */
  | { type: 'networks'; subnets: string[] };
export type ProxyReport =
  | { type: 'ready' }
  | { type: 'denied'; token: string; target: string; reason: string };

interface Grant { token: string; label: string; rules: EgressRules }

const CONNECT_TIMEOUT_MS = 10_000;
const PREAMBLE_MAX = 128;
/** A connection that has not said who it is within this is closed (a slow or idle opener holds an fd). */
const PREAMBLE_TIMEOUT_MS = 5_000;
/** Open connections at most, per instance and in all: fds are the proxy's to run out of. */
const MAX_PER_TOKEN = 256;
const MAX_CONNECTIONS = 8_192;
/** Denials reported per instance per window; the rest are counted and reported as one line. */
const DENIALS_PER_WINDOW = 20;
const DENIAL_WINDOW_MS = 10_000;
const validPort = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;

export function startEgressProxy(report: (r: ProxyReport) => void) {
  /** By instance id: its grant, and the listener on its own socket. */
  const grants = new Map<string, Grant>();
  const listeners = new Map<string, net.Server>();
  const owner = new WeakMap<net.Socket, { token: string; grant: Grant }>();
  const open = new Map<string, number>();
  let connections = 0;
  let own = ownAddresses(new BlockList());
  let thawNets: string[] = [];
  const refresh = setInterval(() => { own = ownAddresses(own, thawNets); }, 10_000);
  refresh.unref();
  const denials = new Map<string, { since: number; n: number; suppressed: number }>();

  const deny = (token: string, target: string, reason: string) => {
    const now = systemClock.monotonic();
    let d = denials.get(token);
    if (!d || now - d.since > DENIAL_WINDOW_MS) {
      if (d?.suppressed) report({ type: 'denied', token, target: `${d.suppressed} more destinations`, reason: 'denials beyond 20 in 10 s are not listed one by one' });
      d = { since: now, n: 0, suppressed: 0 };
      denials.set(token, d);
    }
    if (++d.n <= DENIALS_PER_WINDOW) report({ type: 'denied', token, target, reason });
    else d.suppressed++;
    return `THAW_E_EGRESS_DENIED: connection to ${target} refused: ${reason}. Change the function's egress policy (thaw deploy --egress, or ThawEgress in the API) to allow it.`;
  };

  /** The address to connect to, or the reason there is none. */
  async function resolve(who: { token: string; grant: Grant }, host: string, port: number): Promise<{ address: string } | { denied: string } | { failed: string }> {
    const target = `${host}:${port}`;
    const byName = who.grant.rules.checkName(host, port);
    if (byName) return { denied: deny(who.token, target, byName) };
    let addresses: { address: string }[];
    try {
      addresses = isIP(host) ? [{ address: host }] : await lookup(host, { all: true, verbatim: true });
    } catch (err) {
      return { failed: `THAW_E_EGRESS_UNREACHABLE: ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    let why = '';
    for (const { address } of addresses) {
      const reason = who.grant.rules.checkAddress(host, address, port, own);
      if (!reason) return { address };
      why ||= reason;
    }
    return { denied: deny(who.token, target, why || 'no address') };
  }

  /** Runs a request's handling; whatever it throws answers 502 on that request only. */
  const guarded = (fail: (text: string) => void, fn: () => Promise<void>) => {
    fn().catch((err: Error) => { try { fail(`THAW_E_EGRESS_UNREACHABLE: ${err.message}`); } catch { /* the socket is gone */ } });
  };

  const server = http.createServer({ requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 30_000 });

  // CONNECT host:port: a tunnel (HTTPS, or any TCP the policy allows).
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const who = owner.get(req.socket);
    const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(req.url ?? '');
    client.on('error', () => {});
    if (!who || !m || !validPort(Number(m[2]))) return void client.end(plain(400, 'THAW_E_EGRESS_INVALID: CONNECT needs host:port with a port of 1-65535'));
    const host = m[1]; const port = Number(m[2]);
    guarded((t) => client.end(plain(502, t)), async () => {
      const r = await resolve(who, host, port);
      if ('denied' in r) return void client.end(plain(403, r.denied));
      if ('failed' in r) return void client.end(plain(502, r.failed));
      const upstream = net.connect({ host: r.address, port, timeout: CONNECT_TIMEOUT_MS });
      let connected = false;
      upstream.once('timeout', () => upstream.destroy(new Error('timed out')));
      upstream.on('error', (err) => {
        if (!connected) client.end(plain(502, `THAW_E_EGRESS_UNREACHABLE: ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
        else client.destroy();
      });
      upstream.once('connect', () => {
        connected = true;
        upstream.setTimeout(0);
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) upstream.write(head);
        upstream.pipe(client).on('error', () => {});
        client.pipe(upstream);
        client.once('close', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
      });
    });
  });

  // GET http://host/path: plain HTTP, forwarded.
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const who = owner.get(req.socket);
    let url: URL | null = null;
    try { url = new URL(req.url ?? ''); } catch { /* not absolute */ }
    if (!who || !url || url.protocol !== 'http:') return void res.writeHead(400, { 'content-type': 'text/plain', 'x-thaw-error': 'THAW_E_EGRESS_INVALID' }).end('THAW_E_EGRESS_INVALID: send absolute http:// URLs, or CONNECT for anything else\n');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || 80);
    if (!validPort(port)) return void res.writeHead(400, { 'content-type': 'text/plain', 'x-thaw-error': 'THAW_E_EGRESS_INVALID' }).end('THAW_E_EGRESS_INVALID: the port must be 1-65535\n');
    const fail = (text: string) => { if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain', 'x-thaw-error': 'THAW_E_EGRESS_UNREACHABLE' }).end(text + '\n'); else res.destroy(); };
    guarded(fail, async () => {
      const r = await resolve(who, host, port);
      if ('denied' in r || 'failed' in r) {
        const [status, text] = 'denied' in r ? [403, r.denied] : [502, r.failed];
        return void res.writeHead(status, { 'content-type': 'text/plain', 'x-thaw-error': text.split(':')[0], connection: 'close' }).end(text + '\n');
      }
      const headers = { ...req.headers };
      for (const h of ['proxy-authorization', 'proxy-connection']) delete headers[h];
      const up = http.request({ host: r.address, port, method: req.method, path: url.pathname + url.search, headers, setHost: false, timeout: CONNECT_TIMEOUT_MS }, (upRes) => {
        const status = upRes.statusCode ?? 0;
        // What the upstream sends is not trusted: a status Node would refuse to write answers 502.
        if (status < 100 || status > 999) { upRes.destroy(); return fail(`THAW_E_EGRESS_UNREACHABLE: ${host}:${port} answered with status ${status}`); }
        try { res.writeHead(status, upRes.headers); } catch (err) { upRes.destroy(); return fail(`THAW_E_EGRESS_UNREACHABLE: ${host}:${port}: ${(err as Error).message}`); }
        upRes.pipe(res);
        upRes.on('error', () => res.destroy());
      });
      up.once('timeout', () => up.destroy(new Error('timed out')));
      up.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain', 'x-thaw-error': 'THAW_E_EGRESS_UNREACHABLE' }).end(`THAW_E_EGRESS_UNREACHABLE: ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? err.message}\n`);
        else res.destroy();
      });
      req.pipe(up);
    });
  });
  server.on('clientError', (_err, socket) => { socket.destroy(); });

  // An instance's own Unix socket: read the relay's preamble (the instance's token: a connection is that
  // instance's because it came in on its socket, and it proves it holds the grant), then hand the
  // connection to the HTTP server.
  const front = (instanceId: string) => net.createServer((socket) => {
    socket.on('error', () => {});
    if (connections >= MAX_CONNECTIONS) return void socket.destroy();
    connections++;
    socket.once('close', () => { connections--; });
    let buf = Buffer.alloc(0);
    const unnamed = setTimeout(() => socket.destroy(), PREAMBLE_TIMEOUT_MS);
    socket.once('close', () => clearTimeout(unnamed));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(10);
      if (nl < 0) { if (buf.length > PREAMBLE_MAX) socket.destroy(); return; }
      socket.off('data', onData);
      clearTimeout(unnamed);
      socket.pause();
      const m = /^THAW ([A-Za-z0-9_-]{16,64})$/.exec(buf.subarray(0, nl).toString('latin1'));
      const grant = grants.get(instanceId);
      if (!m || !grant || grant.token !== m[1]) return void socket.end(plain(407, 'THAW_E_EGRESS_DENIED: this instance has no egress grant (not yet bound to a function, or already stopped)'));
      const token = m[1];
      const mine = open.get(token) ?? 0;
      if (mine >= MAX_PER_TOKEN) return void socket.end(plain(429, `THAW_E_EGRESS_DENIED: at most ${MAX_PER_TOKEN} connections at once per instance`));
      open.set(token, mine + 1);
      socket.once('close', () => { const n = (open.get(token) ?? 1) - 1; if (n > 0) open.set(token, n); else open.delete(token); });
      owner.set(socket, { token, grant });
      const rest = buf.subarray(nl + 1);
      if (rest.length) socket.unshift(rest);
      server.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
  });

  async function listenFor(instanceId: string, path: string) {
    if (listeners.has(instanceId)) return;
    const l = front(instanceId);
    listeners.set(instanceId, l);
    l.on('error', () => { listeners.delete(instanceId); });
    try { unlinkSync(path); } catch { /* none */ }
    l.listen(path);
    await once(l, 'listening').catch(() => {});
    // The sandbox runs as its own uid; only it sees this socket (its directory is bound into it alone).
    try { chmodSync(path, 0o666); } catch { /* revoked meanwhile */ }
  }

  return {
    command(c: ProxyCommand) {
      if (c.type === 'listen') void listenFor(c.instanceId, c.path);
      else if (c.type === 'grant') grants.set(c.instanceId, { token: c.token, label: c.label, rules: new EgressRules(c.policy) });
      else if (c.type === 'revoke') {
        const g = grants.get(c.instanceId);
        if (g) denials.delete(g.token);
        grants.delete(c.instanceId);
        listeners.get(c.instanceId)?.close();
        listeners.delete(c.instanceId);
      } else { thawNets = c.subnets; own = ownAddresses(own, thawNets); }
    },
    close() { clearInterval(refresh); for (const l of listeners.values()) l.close(); server.close(); },
  };
}

function plain(status: number, text: string): string {
  const body = text + '\n';
  const code = text.split(':')[0];
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain\r\nx-thaw-error: ${code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/**
 * What the proxy never connects to unless a rule names it exactly: this host's addresses (every
 * interface), and Thaw's private networks (reached by joining them, under their security groups). On a
 * failure to read them (out of fds) the last list stays.
 */
function ownAddresses(last: BlockList, thawNets: string[] = []): BlockList {
  try {
    const list = new BlockList();
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) {
        const addr = a.address.split('%')[0];
        list.addAddress(addr, a.family === 'IPv6' ? 'ipv6' : 'ipv4');
      }
    }
    for (const cidr of thawNets) {
      const [addr, prefix] = cidr.split('/');
      list.addSubnet(addr, Number(prefix), 'ipv4');
    }
    return list;
  } catch {
    return last;
  }
}

// Run as the proxy process: commands from the platform over IPC, reports back.
if (import.meta.main) {
  const send = (r: ProxyReport) => { process.send?.(r); };
  const proxy = startEgressProxy(send);
  process.on('message', (m) => proxy.command(m as ProxyCommand));
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}
