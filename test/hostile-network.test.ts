// Hostile functions against the network isolation of confined instances (issue 12), deployed through the
// real API: each probe asserts that the attack is blocked and that the platform and its egress proxy pair
// keep serving. A probe that gets through is kept as a test marked `todo` (with what the hole is) until the
// hole is closed; the ten its first run found are closed.
//
// Every function here runs the same code: a small toolkit (raw connections to the relay and to the proxies'
// Unix sockets, sh, TCP and UDP helpers) and then `event.code`, the probe. All traffic stays on this
// machine: the host's loopback, test hosts in network namespaces this suite makes (test/nethost.ts), the
// Thaw networks' bridges, and a veth pair `thawh-*` that the suite makes and removes. Needs root,
// bubblewrap and iproute2 (nftables for the security-group probes); skipped with the reason elsewhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { randomBytes } from 'node:crypto';
import { nftAvailable } from '../src/network/index.ts';
import { probeNamespaces } from '../src/sandbox/index.ts';
import { eventually, getJson, invokeHttp, pkg, startTestThaw, type TestThaw } from './helpers.ts';
import { ECHO_SERVER, HTTP_SERVER, canMakeNetHosts, hostLoopbackService, onBridge, pointToPoint, type NetHost } from './nethost.ts';

const probe = probeNamespaces();
const why = !probe.ok ? `namespaces sandbox unavailable: ${probe.reason} (${probe.fix})` : canMakeNetHosts();
const skip = why ? `${why}; to enable: run as root with bubblewrap and iproute2 (apt-get install bubblewrap iproute2)` : false;
const noNft = nftAvailable() ? false : 'nftables is not installed (apt-get install nftables)';

/**
 * Every probe function: the toolkit on globalThis (a probe body runs as `new AsyncFunction('event', code)`,
 * which sees only globals), then the body. Backslashes are doubled: this is a template literal.
 */
const TOOLKIT = `
import net from 'node:net';
import fs from 'node:fs';
import cp from 'node:child_process';
import dgram from 'node:dgram';
import os from 'node:os';
const CRLF = String.fromCharCode(13, 10);
const SOCKS = ['/run/thaw/egress/egress-a.sock', '/run/thaw/egress/egress-b.sock'];
/** An HTTP head from its lines. */
const head = (...lines) => lines.join(CRLF) + CRLF + CRLF;
/** Writes data on a new connection (the relay, or o.path), resolves with all that came back by close or o.ms. */
const raw = (data, o = {}) => new Promise((resolve) => {
  const s = o.path ? net.connect(o.path) : net.connect(3128, '127.0.0.1');
  let out = '';
  const t = setTimeout(() => { s.destroy(); resolve(out); }, o.ms ?? 2000);
  s.on('connect', () => s.write(data));
  s.on('data', (d) => { out += d; });
  s.on('close', () => { clearTimeout(t); resolve(out); });
  s.on('error', (e) => { clearTimeout(t); resolve(out || 'ERR ' + e.code); });
});
/** The status line of a proxy answer and its THAW_E_* code. */
const answer = (text) => ({ line: text.split(CRLF)[0], code: /x-thaw-error: (\\w+)/i.exec(text)?.[1] ?? null, text: text.slice(0, 600) });
const sh = (c) => { const r = cp.spawnSync('/bin/sh', ['-c', c], { encoding: 'utf8', timeout: 5000 }); return { status: r.status, out: ((r.stdout ?? '') + (r.stderr ?? '')).trim().slice(0, 300) }; };
/** A direct TCP connection (no proxy): what came back, or the error code. */
const tcp = (host, port, ms = 2000) => new Promise((resolve) => {
  const s = net.connect({ host, port });
  let out = '';
  const t = setTimeout(() => { s.destroy(); resolve('TIMEOUT' + out); }, ms);
  s.on('connect', () => s.write('GET / HTTP/1.0' + CRLF + CRLF));
  s.on('data', (d) => { out += d; });
  s.on('close', () => { clearTimeout(t); resolve(out || 'CLOSED'); });
  s.on('error', (e) => { clearTimeout(t); resolve('ERR ' + e.code); });
});
/** One UDP datagram from (bind address), resolves 'sent' or the error code. */
const udp = (text, port, host, bind) => new Promise((resolve) => {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('error', (e) => { s.close(); resolve('ERR ' + e.code); });
  s.bind(0, bind, () => { try { s.setBroadcast(true); } catch {} s.send(text, port, host, (e) => { s.close(); resolve(e ? 'ERR ' + e.code : 'sent'); }); });
});
const myAddress = () => (os.networkInterfaces().eth0 ?? []).find((a) => a.family === 'IPv4')?.address ?? null;
Object.assign(globalThis, { net, fs, cp, dgram, os, CRLF, SOCKS, head, raw, answer, sh, tcp, udp, myAddress });
const AsyncFunction = (async () => {}).constructor;
export const handler = async (event) => {
  try { return await new AsyncFunction('event', event.code)(event); } catch (e) { return { thrown: String(e?.stack ?? e) }; }
};
`;

/** Answers on 8081 with status 099: a reply a proxy must pass on or refuse, not die of. */
const ODD_STATUS_SERVER = `require('node:net').createServer((c) => { c.on('error', () => {}); c.once('data', () => c.end('HTTP/1.1 099 Odd\\r\\ncontent-length: 0\\r\\n\\r\\n')); }).listen(8081, () => console.log('READY'));`;

const ip = (...args: string[]) => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
};

/** A UDP socket on the host that records what arrives. */
async function udpListener(address: string): Promise<{ port: number; got: string[]; close(): void }> {
  const s: UdpSocket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  const got: string[] = [];
  s.on('message', (m, r) => got.push(`${m} from ${r.address}`));
  s.bind(0, address);
  await once(s, 'listening');
  return { port: s.address().port, got, close: () => s.close() };
}

describe('hostile functions against the network isolation', { skip }, () => {
  let t: TestThaw;
  let web: NetHost;
  let hostService: { port: number; close(): void } | undefined;
  let hostPort = 0;
  let apiPort = 0;
  const tag = randomBytes(3).toString('hex');

  before(async () => {
    web = pointToPoint();
    await web.run(HTTP_SERVER);
    await web.run(ECHO_SERVER);
    await web.run(ODD_STATUS_SERVER);
    // A service on the host's loopback that no function may reach.
    const service = await hostLoopbackService();
    hostService = service;
    hostPort = service.port;
    t = await startTestThaw({});
    apiPort = Number(new URL(t.url).port);
    await Promise.all([
      deploy('pub', {}),
      deploy('allow', { ThawEgress: { Mode: 'allow', Allow: [`${web.address}/32`] } }),
      deploy('named', { ThawEgress: { Mode: 'allow', Allow: [`${web.address}:8080`, 'localhost', `*.${tag}.test`] } }),
      deploy('none', { ThawEgress: { Mode: 'none' } }),
    ]);
  });
  after(async () => {
    await t?.stop();
    await web?.close();
    hostService?.close();
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${t.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : null };
  };
  async function deploy(name: string, extra: Record<string, unknown>) {
    const r = await api('POST', '/2015-03-31/functions', { FunctionName: name, Runtime: 'nodejs24', Handler: 'index.handler', Timeout: 60, Code: { ZipFile: pkg({ 'index.mjs': TOOLKIT }).toString('base64') }, ...extra });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  }
  /** Runs a probe body in the function; fails the test if the body threw (a broken probe is not a pass). */
  async function run(fn: string, code: string, event: Record<string, unknown> = {}): Promise<any> {
    const r = await invokeHttp(t.url, fn, { ...event, code });
    assert.equal(r.status, 200, r.text);
    assert.ok(!r.json?.thrown && !r.headers.get('x-amz-function-error'), `the probe itself failed: ${r.text}`);
    return r.json;
  }
  const proxies = async () => (await getJson(`${t.url}/thaw/v1/node`)).network.proxies as { name: string; pid: number | null; ready: boolean; restarts: number }[];
  const restarts = async () => (await proxies()).reduce((n, p) => n + p.restarts, 0);
  /** The platform serves and both proxies are up (after a restart, if one died). */
  const pairRecovered = () => eventually(async () => (await proxies()).every((p) => p.ready && p.pid), 'both egress proxies ready', 20_000);

  /** Host addresses other than loopback (the proxy must never connect to them for a function). */
  const ownAddresses = () => Object.values(networkInterfaces()).flat().filter((a) => a && !a.internal && !a.address.startsWith('fe80')).map((a) => (a!.family === 'IPv6' ? `[${a!.address}]` : a!.address));

  test('the host\'s loopback and the Thaw API are refused through the proxy in every spelling: numeric, octal, hex, IPv6-mapped, 0, localhost, the host\'s own addresses', async () => {
    const spellings = ['127.0.0.1', '127.1', '127.0.1', '2130706433', '0x7f000001', '0x7f.1', '0x7f.0.0.1', '0177.0.0.1', '017700000001', '127.000.000.001', '0', '0.0.0.0', '0x0',
      'localhost', 'LocalHost', 'localhost.', 'ip6-localhost', '[::1]', '[0:0:0:0:0:0:0:1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[0:0:0:0:0:ffff:7f00:1]', '[::]', '[::ffff:0.0.0.0]', '[::ffff:0:0]',
      ...ownAddresses()];
    for (const fn of ['pub', 'allow', 'named']) {
      const r = await run(fn, `
        const out = [];
        for (const h of event.spellings) for (const port of event.ports) {
          out.push({ how: 'CONNECT ' + h + ':' + port, ...answer(await raw(head('CONNECT ' + h + ':' + port + ' HTTP/1.1', 'Host: ' + h) + head('GET /thaw/v1/functions HTTP/1.1', 'Host: 127.0.0.1:' + port))) });
          out.push({ how: 'GET http://' + h + ':' + port, ...answer(await raw(head('GET http://' + h + ':' + port + '/thaw/v1/functions HTTP/1.1', 'Host: 127.0.0.1:' + port, 'Connection: close'))) });
        }
        return out;`, { spellings, ports: [hostPort, apiPort] });
      for (const a of r) {
        assert.ok(!/^HTTP\/1\.1 200/.test(a.line), `${fn}: ${a.how} got through: ${a.text}`);
        assert.ok(!a.text.includes('host secret') && !a.text.includes('"Functions"'), `${fn}: ${a.how} reached the host: ${a.text}`);
        assert.ok(['THAW_E_EGRESS_DENIED', 'THAW_E_EGRESS_UNREACHABLE', 'THAW_E_EGRESS_INVALID'].includes(a.code), `${fn}: ${a.how}: ${a.text}`);
      }
    }
  });

  test('URL tricks reach only the allowed host, never loopback: userinfo, Host header smuggling, origin-form, pipelining, absolute-form with a second host', async () => {
    const r = await run('allow', `
      const w = event.web + ':8080', lo = '127.0.0.1:' + event.hostPort;
      const q = (...lines) => raw(head(...lines));
      return {
        userinfoThenLoopback: answer(await q('GET http://' + w + '@' + lo + '/ HTTP/1.1', 'Host: ' + w, 'Connection: close')),
        loopbackUserinfo: answer(await q('GET http://' + lo + '@' + w + '/ HTTP/1.1', 'Host: ' + lo, 'Connection: close')),
        hostHeader: answer(await q('GET http://' + w + '/ HTTP/1.1', 'Host: ' + lo, 'Connection: close')),
        originForm: answer(await q('GET / HTTP/1.1', 'Host: ' + lo, 'Connection: close')),
        connectWithHost: answer(await q('CONNECT ' + lo + ' HTTP/1.1', 'Host: ' + w)),
        // An allowed request, then one to loopback on the same connection: each is checked.
        pipelined: answer(await raw(head('GET http://' + w + '/one HTTP/1.1', 'Host: ' + w) + head('GET http://' + lo + '/two HTTP/1.1', 'Host: ' + lo, 'Connection: close'))),
        // Inside an allowed tunnel, a request that names loopback goes to the tunnel's host, not to loopback.
        tunnel: answer(await raw(head('CONNECT ' + w + ' HTTP/1.1', 'Host: ' + w) + head('GET http://' + lo + '/ HTTP/1.1', 'Host: ' + lo, 'Connection: close'))),
        backslash: answer(await q('GET http://' + w + String.fromCharCode(92) + '@' + lo + '/ HTTP/1.1', 'Host: ' + w, 'Connection: close')),
      };`, { web: web.address, hostPort });
    for (const [k, a] of Object.entries(r) as [string, { text: string; line: string }][]) assert.ok(!a.text.includes('host secret'), `${k} reached the host's loopback: ${a.text}`);
    assert.match(r.hostHeader.text, /hello from 127\.0\.0\.1/, 'a smuggled Host header is only a header: the request went to the allowed host');
    assert.match(r.userinfoThenLoopback.line, /403/);
    assert.match(r.originForm.line, /400/);
    assert.match(r.connectWithHost.line, /403/);
    assert.match(r.pipelined.text, /hello from .* \/one/);
    assert.match(r.pipelined.text, /THAW_E_EGRESS_DENIED/);
  });

  test('without the proxy nothing is reachable: the host\'s loopback, the API, its own addresses, the test host (the instance\'s loopback is its own)', async () => {
    const targets = [['127.0.0.1', hostPort], ['127.0.0.1', apiPort], ['::1', apiPort], [web.address, 8080], ...ownAddresses().map((a) => [a.replace(/^\[|\]$/g, ''), apiPort])];
    const r = await run('pub', 'const out = {}; for (const [h, p] of event.targets) out[h + \':\' + p] = await tcp(h, p, 1500); return out;', { targets });
    for (const [k, v] of Object.entries(r) as [string, string][]) assert.match(v, /^ERR (ECONNREFUSED|ENETUNREACH|EHOSTUNREACH|EADDRNOTAVAIL)/, `${k}: ${v}`);
  });

  test('inside the sandbox the network cannot be changed: routes, links, addresses, nftables, sysctls, new namespaces, raw, packet and ping sockets', async () => {
    const r = await run('pub', `
      const perl = (code) => sh("perl -e '" + code + "'");
      return {
        caps: sh('grep CapEff /proc/self/status').out,
        links: Object.keys(os.networkInterfaces()).join(' ') + ' / ' + sh('/usr/sbin/ip -o link').out.split(CRLF[1]).map((l) => l.split(': ')[1]).join(' '),
        routeAdd: sh('/usr/sbin/ip route add default dev lo'),
        addrAdd: sh('/usr/sbin/ip addr add 10.9.9.9/32 dev lo'),
        linkAdd: sh('/usr/sbin/ip link add thawh-evil type veth peer name thawh-evil2'),
        nftList: sh('/usr/sbin/nft list ruleset'),
        nftFlush: sh('/usr/sbin/nft flush ruleset'),
        sysctl: sh('echo 1 > /proc/sys/net/ipv4/ip_forward'),
        unshareNet: sh('/usr/bin/unshare -n true'),
        unshareUserNet: sh('/usr/bin/unshare -Urn true'),
        rawSocket: perl('use Socket; socket(S, PF_INET, SOCK_RAW, 255) or die "$!\\\\n"; print "OPEN\\\\n"'),
        packetSocket: perl('socket(S, 17, 3, 0) or die "$!\\\\n"; print "OPEN\\\\n"'),
        pingSocket: perl('use Socket; socket(S, PF_INET, SOCK_DGRAM, 1) or die "$!\\\\n"; print "OPEN\\\\n"'),
        transparent: perl('use Socket; socket(S, PF_INET, SOCK_DGRAM, 0) or die; setsockopt(S, 0, 19, 1) or die "$!\\\\n"; print "OPEN\\\\n"'),
      };`);
    assert.match(r.caps, /CapEff:\s+0+$/);
    assert.equal(r.links, 'lo / lo', 'only loopback');
    for (const k of ['routeAdd', 'addrAdd', 'linkAdd', 'nftList', 'nftFlush', 'sysctl', 'unshareNet', 'unshareUserNet', 'rawSocket', 'packetSocket', 'pingSocket', 'transparent']) {
      assert.notEqual(r[k].status, 0, `${k} succeeded: ${r[k].out}`);
      assert.doesNotMatch(r[k].out, /OPEN/, `${k}: ${r[k].out}`);
    }
  });

  test('the proxies\' Unix sockets: no listing, no unlink, no new socket beside them; forged, guessed, missing and oversized preambles are refused and nothing crashes', async () => {
    const before = await proxies();
    const r = await run('none', `
      const out = {};
      out.list = (() => { try { return fs.readdirSync('/run/thaw/egress'); } catch (e) { return e.code; } })();
      out.unlink = (() => { try { fs.unlinkSync(SOCKS[0]); return 'UNLINKED'; } catch (e) { return e.code; } })();
      out.bind = await new Promise((r) => { const s = net.createServer(); s.on('error', (e) => r(e.code)); s.listen('/run/thaw/egress/egress-c.sock', () => { s.close(); r('LISTENING'); }); });
      const req = head('CONNECT ' + event.web + ':8080 HTTP/1.1', 'Host: x');
      out.forged = answer(await raw('THAW ' + 'A'.repeat(24) + '\\n' + req, { path: SOCKS[0] }));
      out.noPreamble = answer(await raw(req, { path: SOCKS[0] }));
      out.lowercase = answer(await raw('thaw ' + 'A'.repeat(24) + '\\n' + req, { path: SOCKS[1] }));
      out.injected = answer(await raw('THAW ' + 'A'.repeat(24) + ' x\\n' + req, { path: SOCKS[1] }));
      out.oversized = await raw('THAW ' + 'A'.repeat(100000), { path: SOCKS[0] });
      out.binary = await raw(Buffer.alloc(4096, 0xff), { path: SOCKS[1] });
      // A guessing run: 2,000 random tokens, all refused.
      let admitted = 0;
      for (let i = 0; i < 2000; i++) {
        const a = await raw('THAW ' + (await import('node:crypto')).randomBytes(18).toString('base64url') + '\\n' + req, { path: SOCKS[i % 2] });
        if (!a.startsWith('HTTP/1.1 407')) admitted++;
      }
      out.admitted = admitted;
      return out;`, { web: web.address });
    assert.equal(r.list, 'EACCES');
    assert.equal(r.unlink, 'EROFS');
    assert.equal(r.bind, 'EROFS');
    for (const k of ['forged', 'noPreamble', 'lowercase', 'injected']) assert.match(r[k].line, /^HTTP\/1\.1 407/, `${k}: ${r[k].text}`);
    assert.match(r.oversized, /^(|ERR ECONNRESET|ERR EPIPE)$/, `an oversized preamble is cut off without an answer: ${r.oversized}`);
    assert.doesNotMatch(r.binary, /200/);
    assert.equal(r.admitted, 0);
    assert.deepEqual((await proxies()).map((p) => p.pid), before.map((p) => p.pid), 'neither proxy died');
  });

  test('after the preamble: huge headers, a huge request line and garbage are refused; the proxies stay up', async () => {
    const before = await proxies();
    const r = await run('allow', `
      const w = event.web + ':8080';
      return {
        hugeHeader: answer(await raw(head('GET http://' + w + '/ HTTP/1.1', 'Host: ' + w, 'X-Big: ' + 'a'.repeat(200000)))),
        hugeLine: answer(await raw(head('GET http://' + w + '/' + 'a'.repeat(200000) + ' HTTP/1.1', 'Host: ' + w))),
        hugeConnect: answer(await raw(head('CONNECT ' + 'a'.repeat(300) + '.' + 'b'.repeat(63) + ':443 HTTP/1.1'))),
        garbage: answer(await raw('\\u0000\\u0001 not http at all' + CRLF + CRLF)),
        badConnect: answer(await raw(head('CONNECT ' + event.web + ' HTTP/1.1'))),
        https: answer(await raw(head('GET https://' + w + '/ HTTP/1.1', 'Host: ' + w))),
        still: answer(await raw(head('GET http://' + w + '/after HTTP/1.1', 'Host: ' + w, 'Connection: close'))),
      };`, { web: web.address });
    for (const k of ['hugeHeader', 'hugeLine', 'hugeConnect', 'garbage', 'badConnect', 'https']) assert.doesNotMatch(r[k].line, /^HTTP\/1\.1 200/, `${k}: ${r[k].text}`);
    assert.match(r.still.text, /hello from .* \/after/);
    assert.deepEqual((await proxies()).map((p) => p.pid), before.map((p) => p.pid), 'neither proxy died');
  });

  let stolen = '';
  test('a grant lifted from one function\'s instance is useless in another sandbox: a connection is the instance\'s whose socket it came in on', async () => {
    await deploy('lender', { ThawEgress: { Mode: 'allow', Allow: [`${web.address}:8080`] } });
    stolen = await run('lender', `
      let token = null;
      const write = net.Socket.prototype.write;
      net.Socket.prototype.write = function (d, ...rest) { const s = String(d); if (s.startsWith('THAW ')) token = s.slice(5).trim(); return write.call(this, d, ...rest); };
      await raw(head('GET http://' + event.web + ':8080/ HTTP/1.1', 'Host: x', 'Connection: close'));
      net.Socket.prototype.write = write;
      return token;`, { web: web.address });
    assert.match(stolen, /^[A-Za-z0-9_-]{16,64}$/, 'the function reads its own token');
    const r = await run('none', `return answer(await raw('THAW ' + event.token + '\\n' + head('GET http://' + event.web + ':8080/stolen HTTP/1.1', 'Host: x', 'Connection: close'), { path: SOCKS[0] }));`, { token: stolen, web: web.address });
    assert.doesNotMatch(r.text, /hello from/, `a function with egress none reached ${web.address}:8080 with another instance's token: ${r.text}`);
  });

  test('a token dies with its instance: after the function is deleted, the token is refused', async () => {
    if (!stolen) {
      await deploy('lender', { ThawEgress: { Mode: 'allow', Allow: [`${web.address}:8080`] } });
      stolen = await run('lender', `let token = null; const write = net.Socket.prototype.write; net.Socket.prototype.write = function (d, ...rest) { const s = String(d); if (s.startsWith('THAW ')) token = s.slice(5).trim(); return write.call(this, d, ...rest); }; await raw(head('GET http://' + event.web + ':8080/ HTTP/1.1', 'Host: x', 'Connection: close')); net.Socket.prototype.write = write; return token;`, { web: web.address });
    }
    assert.equal((await api('DELETE', '/2015-03-31/functions/lender')).status, 204);
    await eventually(async () => {
      const r = await run('none', `return answer(await raw('THAW ' + event.token + '\\n' + head('GET http://' + event.web + ':8080/late HTTP/1.1', 'Host: x', 'Connection: close'), { path: SOCKS[0] }));`, { token: stolen, web: web.address });
      return /^HTTP\/1\.1 407/.test(r.line);
    }, 'the dead instance\'s token refused');
  });

  test('an allow-list of addresses only does not make the proxy resolve names for the function (no DNS lookups to leak data through, no resolver oracle)', async () => {
    const r = await run('allow', 'return [answer(await raw(head(\'CONNECT localhost:8080 HTTP/1.1\'))), answer(await raw(head(\'GET http://localhost:8080/ HTTP/1.1\', \'Host: x\')))];');
    for (const a of r) {
      assert.match(a.line, /^HTTP\/1\.1 403/);
      assert.doesNotMatch(a.text, /127\.0\.0\.1|::1/, `the proxy resolved a name that is not on the allow-list: ${a.text}`);
    }
  });

  test('a catch-all CIDR does not name the host\'s loopback: Allow ["0.0.0.0/0"] still cannot reach a loopback service or the API', async () => {
    await deploy('everything', { ThawEgress: { Mode: 'allow', Allow: ['0.0.0.0/0', '::/0'] } });
    const r = await run('everything', 'return [answer(await raw(head(\'GET http://127.0.0.1:\' + event.hostPort + \'/ HTTP/1.1\', \'Host: x\', \'Connection: close\'))), answer(await raw(head(\'GET http://127.0.0.1:\' + event.apiPort + \'/2015-03-31/functions HTTP/1.1\', \'Host: 127.0.0.1:\' + event.apiPort, \'Connection: close\')))];', { hostPort, apiPort });
    for (const a of r) assert.ok(!a.text.includes('host secret') && !a.text.includes('"Functions"'), `Allow 0.0.0.0/0 reached the host's loopback: ${a.text}`);
  });

  test('a CONNECT to a port above 65535 is refused; it does not kill the egress proxy (and with it every tenant\'s open connections)', async () => {
    const before = await restarts();
    // A victim function holds a tunnel to the echo server while the attacker sends its two lines.
    const victim = run('allow', `
      const s = net.connect(3128, '127.0.0.1');
      let got = '';
      s.on('data', (d) => { got += d; });
      s.on('error', () => {});
      s.write(head('CONNECT ' + event.web + ':7000 HTTP/1.1', 'Host: x'));
      await new Promise((r) => setTimeout(r, 1500));
      s.write('still-here');
      await new Promise((r) => setTimeout(r, 500));
      s.destroy();
      return got;`, { web: web.address });
    await new Promise((r) => setTimeout(r, 500));
    const r = await run('allow', 'return [answer(await raw(head(\'CONNECT \' + event.web + \':99999 HTTP/1.1\'))), answer(await raw(head(\'CONNECT \' + event.web + \':70000 HTTP/1.1\')))];', { web: web.address });
    const echoed = await victim;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await restarts(), before, `the proxies restarted ${(await restarts()) - before} time(s): a crash (answers ${JSON.stringify(r.map((a: { line: string }) => a.line))})`);
    assert.match(echoed, /still-here/, `another function's open tunnel died with the proxy: ${JSON.stringify(echoed)}`);
    for (const a of r) assert.match(a.line, /^HTTP\/1\.1 4\d\d/);
  });

  test('an upstream that answers with status 099 gets a 502, it does not kill the proxy', async () => {
    await pairRecovered();
    const before = await restarts();
    const r = await run('allow', 'return answer(await raw(head(\'GET http://\' + event.web + \':8081/ HTTP/1.1\', \'Host: x\', \'Connection: close\')));', { web: web.address });
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(await restarts(), before, `the proxy died (answer: ${JSON.stringify(r.line)})`);
    assert.match(r.line, /^HTTP\/1\.1 502/);
  });

  test('a function cannot exhaust the proxy\'s file descriptors and so end it: idle connections without a preamble are limited or time out', async (ctx) => {
    await pairRecovered();
    const [a] = await proxies();
    const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync(`/proc/${a.pid}/limits`, 'utf8'))?.[1]);
    if (!(limit > 0 && limit <= 40_000)) return ctx.skip(`the proxy's open-file limit is ${limit}: too many connections to open in a test`);
    const each = Math.ceil(limit / 2) + 200;
    await Promise.all([deploy('hog1', { MemorySize: 1024 }), deploy('hog2', { MemorySize: 1024 })]);
    const before = await restarts();
    const hog = `
      const socks = []; let failed = 0;
      for (let i = 0; i < event.each && failed < 2000; i++) {
        await new Promise((r) => { const s = net.connect(SOCKS[0]); s.on('connect', () => { socks.push(s); r(); }); s.on('error', (e) => { failed++; setTimeout(r, e.code === 'EAGAIN' ? 5 : 0); }); });
      }
      await new Promise((r) => setTimeout(r, event.holdMs));
      const alive = socks.filter((s) => !s.destroyed).length;
      for (const s of socks) s.destroy();
      return { opened: socks.length, alive, failed };`;
    const hogs = Promise.all(['hog1', 'hog2'].map((fn) => run(fn, hog, { each, holdMs: 12_000 })));
    const died = await eventually(async () => (await restarts()) > before, 'the proxy to die', 16_000).catch(() => false);
    const opened = await hogs;
    assert.ok(!died, `proxy a died at its fd limit (${limit}) held by two functions: ${JSON.stringify(opened)}`);
  });

  test('after every attack the proxy pair is back: both proxies up, an allowed request goes out, the platform serves', async () => {
    await pairRecovered();
    const r = await run('allow', 'return answer(await raw(head(\'GET http://\' + event.web + \':8080/recovered HTTP/1.1\', \'Host: x\', \'Connection: close\')));', { web: web.address });
    assert.match(r.text, /hello from x \/recovered/);
    assert.equal((await api('GET', '/2015-03-31/functions')).status, 200);
  });

  describe('private networks', () => {
    const third = 100 + (process.pid % 100);
    const priv = { name: 'hpriv', subnet: `10.248.${third}.0/24`, host: `10.248.${third}.200` };
    const other = { name: 'hother', subnet: `10.247.${third}.0/24`, host: `10.247.${third}.200` };
    // A subnet outside every private range the proxy knows (TEST-NET-3), with host access.
    const pubBase = 16 * (process.pid % 16);
    const pub = { name: 'hpublic', subnet: `203.0.113.${pubBase}/28`, host: `203.0.113.${pubBase + 14}`, bridgeAddress: `203.0.113.${pubBase + 1}` };
    // A subnet that holds one of the host's own addresses (on a veth pair this suite makes).
    const ovl = { name: 'hoverlap', subnet: `10.246.${third}.0/24`, hostAddress: `10.246.${third}.1` };
    const veth = `thawh-${tag}`;
    const hosts: NetHost[] = [];

    before(async () => {
      for (const n of [priv, other]) assert.equal((await api('POST', '/thaw/v1/networks', { Name: n.name, Subnet: n.subnet })).status, 201);
      const p = await api('POST', '/thaw/v1/networks', { Name: pub.name, Subnet: pub.subnet, HostAccess: true });
      assert.equal(p.status, 201, JSON.stringify(p.json));
      for (const [n, address, prefix] of [[priv, priv.host, 24], [other, other.host, 24], [pub, pub.host, 28]] as const) {
        const bridge = (await api('GET', '/thaw/v1/networks')).json.networks.find((x: { Name: string }) => x.Name === n.name).Node.bridge;
        const h = onBridge(bridge, address, prefix);
        hosts.push(h);
        await h.run(HTTP_SERVER);
        await h.run(ECHO_SERVER);
      }
      await Promise.all([
        deploy('in-priv', { VpcConfig: { SubnetIds: [priv.name] } }),
        deploy('in-public', { VpcConfig: { SubnetIds: [pub.name] } }),
      ]);
    });
    after(async () => {
      for (const h of hosts) await h.close();
      try { ip('link', 'del', veth); } catch { /* not made, or gone */ }
    });

    test('a function on a network without host access reaches neither another network, nor the host (bridge address, API, own addresses), nor the world', async () => {
      const targets = [[other.host, 8080], [pub.host, 8080], [`10.248.${third}.1`, apiPort], [`10.248.${third}.1`, 22], ['127.0.0.1', apiPort], ['10.0.0.1', 80], ...ownAddresses().filter((a) => !a.startsWith('[')).map((a) => [a, apiPort])];
      const r = await run('in-priv', 'const out = { own: await tcp(event.own, 8080) }; for (const [h, p] of event.targets) out[h + \':\' + p] = await tcp(h, p, 1500); return out;', { targets, own: priv.host });
      assert.match(r.own, /hello from/, 'its own network is reachable');
      for (const [k, v] of Object.entries(r) as [string, string][]) if (k !== 'own') assert.match(v, /^(ERR|TIMEOUT$)/, `${k}: ${v}`);
    });

    test('on a network the instance can neither change its address, routes or ARP, nor spoof a neighbour\'s source address, nor reach the host over IPv6', async () => {
      const v6 = await udpListener('::');
      try {
        const r = await run('in-priv', `
          const perl = (code) => sh("perl -e '" + code + "'");
          return {
            addr: sh('/usr/sbin/ip addr add ' + event.steal + '/24 dev eth0'),
            route: sh('/usr/sbin/ip route add default dev eth0'),
            neigh: sh('/usr/sbin/ip neigh replace ' + event.steal + ' lladdr 02:00:00:00:00:01 dev eth0'),
            link: sh('/usr/sbin/ip link set eth0 address 02:00:00:00:00:02'),
            nft: sh('/usr/sbin/nft flush ruleset'),
            // IP_FREEBIND needs no capability; sending from an address that is not ours must still fail.
            spoof: perl('use Socket; socket(S, PF_INET, SOCK_DGRAM, 0) or die "socket $!\\\\n"; setsockopt(S, 0, 15, 1) or die "opt $!\\\\n"; bind(S, pack_sockaddr_in(5353, inet_aton("' + event.steal + '"))) or die "bind $!\\\\n"; send(S, "spoofed", 0, pack_sockaddr_in(7000, inet_aton("' + event.peer + '"))) or die "send $!\\\\n"; print "SENT\\\\n"'),
            v6: await udp('v6 from a network', event.v6port, 'ff02::1%eth0'),
          };`, { steal: `10.248.${third}.77`, peer: priv.host, v6port: v6.port });
        for (const k of ['addr', 'route', 'neigh', 'link', 'nft', 'spoof']) {
          assert.notEqual(r[k].status, 0, `${k}: ${r[k].out}`);
          assert.doesNotMatch(r[k].out, /SENT/, `${k}: ${r[k].out}`);
        }
        await new Promise((res) => setTimeout(res, 300));
        assert.deepEqual(v6.got, [], 'no IPv6 datagram reached the host');
      } finally { v6.close(); }
    });

    test('a network without host access delivers nothing to the host: not by limited broadcast, not by multicast', async () => {
      const l = await udpListener('0.0.0.0');
      try {
        const r = await run('in-priv', 'const me = myAddress(); return { me, broadcast: await udp(\'limited broadcast\', event.port, \'255.255.255.255\', me), multicast: await udp(\'all-hosts multicast\', event.port, \'224.0.0.1\', me), subnet: await udp(\'subnet broadcast\', event.port, event.bcast, me) };', { port: l.port, bcast: `10.248.${third}.255` });
        await new Promise((res) => setTimeout(res, 500));
        assert.deepEqual(l.got, [], `the host received datagrams from a function on ${priv.name} (no host access): ${JSON.stringify(l.got)} (sent: ${JSON.stringify(r)})`);
      } finally { l.close(); }
    });

    test('a network whose subnet holds one of the host\'s addresses is refused, or that address stays out of reach', async () => {
      ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`);
      ip('addr', 'add', `${ovl.hostAddress}/24`, 'dev', veth);
      ip('link', 'set', veth, 'up');
      ip('link', 'set', `${veth}p`, 'up');
      const l = await udpListener(ovl.hostAddress);
      try {
        const made = await api('POST', '/thaw/v1/networks', { Name: ovl.name, Subnet: ovl.subnet });
        if (made.status !== 201) return; // refused: closed
        await deploy('in-overlap', { VpcConfig: { SubnetIds: [ovl.name] } });
        const r = await run('in-overlap', 'return await udp(\'to the host on an overlapping subnet\', event.port, event.host);', { port: l.port, host: ovl.hostAddress });
        await new Promise((res) => setTimeout(res, 500));
        assert.deepEqual(l.got, [], `the host's ${ovl.hostAddress} received a datagram from a network without host access (${r}): ${JSON.stringify(l.got)}`);
      } finally {
        l.close();
        await api('DELETE', '/2015-03-31/functions/in-overlap');
        await eventually(async () => [204, 404].includes((await api('DELETE', `/thaw/v1/networks/${ovl.name}`)).status), 'the overlapping network deleted');
      }
    });

    test('a function that is not on a network cannot reach the network\'s hosts through the egress proxy', async () => {
      const r = await run('pub', 'return answer(await raw(head(\'GET http://\' + event.host + \':8080/outsider HTTP/1.1\', \'Host: x\', \'Connection: close\')));', { host: pub.host });
      assert.doesNotMatch(r.text, /hello from/, `a function on no network reached ${pub.host} on ${pub.name}: ${r.text}`);
      // The bridge's own address is the host's, refused (once the proxy has refreshed its list of addresses).
      await eventually(async () => /THAW_E_EGRESS_DENIED/.test((await run('pub', 'return answer(await raw(head(\'CONNECT \' + event.host + \':\' + event.port + \' HTTP/1.1\')));', { host: pub.bridgeAddress, port: apiPort })).text), 'the bridge address refused', 15_000);
    });

    test('security groups: a limited function reaches only what they allow, not by UDP, broadcast, IPv6, nor by changing the rules', { skip: noNft }, async () => {
      assert.equal((await api('POST', '/thaw/v1/security-groups', { Name: 'hecho', Allow: [`${priv.host}/32:7000/tcp`] })).status, 201);
      await deploy('guarded', { VpcConfig: { SubnetIds: [priv.name], SecurityGroupIds: ['hecho'] } });
      const r = await run('guarded', `
        return {
          allowed: await tcp(event.host, 7000),
          other: await tcp(event.host, 8080),
          udp: await udp('x', 7000, event.host),
          broadcast: await udp('x', 7000, '255.255.255.255', myAddress()),
          v6: await udp('x', 7000, 'ff02::1%eth0'),
          flush: sh('/usr/sbin/nft flush ruleset'),
          del: sh('/usr/sbin/nft delete table inet thaw'),
          after: await tcp(event.host, 8080),
        };`, { host: priv.host });
      assert.match(r.allowed, /GET \/ HTTP\/1\.0/, `the allowed port echoes: ${r.allowed}`);
      for (const k of ['other', 'after']) assert.match(r[k], /^ERR EHOSTUNREACH/, `${k}: ${r[k]}`);
      for (const k of ['udp', 'broadcast', 'v6']) assert.match(r[k], /^ERR/, `${k}: ${r[k]}`);
      for (const k of ['flush', 'del']) assert.notEqual(r[k].status, 0, `${k}: ${r[k].out}`);
    });

    test('security groups are not bypassed through the egress proxy: a limited function on a host-access network reaches no other port of it by CONNECT', {
      skip: noNft,
    }, async () => {
      assert.equal((await api('POST', '/thaw/v1/security-groups', { Name: 'hpub-echo', Allow: [`${pub.host}/32:7000/tcp`] })).status, 201);
      await deploy('guarded-pub', { VpcConfig: { SubnetIds: [pub.name], SecurityGroupIds: ['hpub-echo'] } });
      const r = await run('guarded-pub', 'return { direct: await tcp(event.host, 8080), proxied: answer(await raw(head(\'GET http://\' + event.host + \':8080/proxied HTTP/1.1\', \'Host: x\', \'Connection: close\'))) };', { host: pub.host });
      assert.match(r.direct, /^ERR EHOSTUNREACH/, 'directly, the group refuses :8080');
      assert.doesNotMatch(r.proxied.text, /hello from/, `through the proxy :8080 answered: ${r.proxied.text}`);
    });
  });
});
