// Instances' networks against real hosts: test hosts live in network namespaces this suite creates (a
// point-to-point link to this machine, or a Thaw network's bridge), with real HTTP and TCP servers in them.
// A confined function reaches what its egress policy allows through the egress proxy and nothing else: not
// the Thaw API, not the host's loopback; a denial fails at once and is in the function's log with its code;
// the proxy pair fails over when the active one is killed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { nftAvailable } from '../src/network/index.ts';
import { probeNamespaces } from '../src/sandbox/index.ts';
import { eventually, fnSource, getJson, invokeHttp, pkg, startTestThaw, type TestThaw } from './helpers.ts';
import { ECHO_SERVER, HTTP_SERVER, canMakeNetHosts, hostLoopbackService, onBridge, pointToPoint, type NetHost } from './nethost.ts';

const probe = probeNamespaces();
const why = !probe.ok ? `namespaces sandbox unavailable: ${probe.reason} (${probe.fix})` : canMakeNetHosts();
const skip = why ? `${why}; to enable: run as root with bubblewrap and iproute2 (apt-get install bubblewrap iproute2)` : false;

/** fetch(event.url) inside the function; the outcome as data. */
const FETCHER = fnSource(`
  const t0 = Date.now();
  try {
    const r = await fetch(event.url, { signal: AbortSignal.timeout(5000) });
    return { status: r.status, text: await r.text(), ms: Date.now() - t0 };
  } catch (e) { return { error: String(e), cause: String(e.cause?.message ?? e.cause), ms: Date.now() - t0 }; }`);

/** Asks the relay (the proxy address every instance has) for a URL directly, as a hostile function would. */
const VIA_PROXY = fnSource(`
  const http = await import('node:http');
  return await new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: 3128, method: 'GET', path: event.url, headers: { host: new URL(event.url).host } }, (res) => {
      let body = ''; res.on('data', (d) => { body += d; }); res.on('end', () => resolve({ status: res.statusCode, code: res.headers['x-thaw-error'] ?? null, body }));
    });
    req.on('error', (e) => resolve({ error: e.code ?? String(e) }));
    req.end();
  });`);

describe('egress through the proxy', { skip }, () => {
  let t: TestThaw;
  let web: NetHost;
  let hostService: { port: number; close(): void } | undefined;
  let hostPort = 0;

  before(async () => {
    web = pointToPoint();
    await web.run(HTTP_SERVER);
    // A service on the host's loopback that no function may reach.
    const service = await hostLoopbackService();
    hostService = service;
    hostPort = service.port;
    t = await startTestThaw({});
  });
  after(async () => {
    await t?.stop();
    await web?.close();
    hostService?.close();
  });

  const deploy = async (name: string, code: string, egress?: unknown) => {
    const r = await fetch(`${t.url}/2015-03-31/functions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ FunctionName: name, Runtime: 'nodejs24', Handler: 'index.handler', Timeout: 30, Code: { ZipFile: pkg({ 'index.mjs': code }).toString('base64') }, ...(egress ? { ThawEgress: egress } : {}) }),
    });
    assert.equal(r.status, 201, await r.text());
  };
  const logsOf = async (name: string) => ((await getJson(`${t.url}/thaw/v1/functions/${name}/logs`)).lines as { line: string }[]).map((l) => l.line);

  test('an allow-listed host is reached with plain fetch; the invocation record has a network phase', async () => {
    await deploy('allowed', FETCHER, { Mode: 'allow', Allow: [`${web.address}:8080`] });
    const r = await invokeHttp(t.url, 'allowed', { url: `http://${web.address}:8080/hi` });
    assert.deepEqual({ status: r.json.status, text: r.json.text }, { status: 200, text: `hello from ${web.address}:8080 /hi` });
    const rec = await eventually(async () => { const x = await fetch(`${t.url}/thaw/v1/invocations/${r.headers.get('x-thaw-invocation-id')}`); return x.ok && await x.json() as { phases: { name: string }[] }; }, 'the invocation record');
    assert.ok(rec.phases.some((p: { name: string }) => p.name === 'network'), 'a network phase');
  });

  test('an instance restored from a snapshot goes out through the proxy too', async () => {
    // Without a runtime pool, so that the ladder takes the snapshot.
    const t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1 });
    after(() => t.stop());
    const r0 = await fetch(`${t.url}/2015-03-31/functions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ FunctionName: 'snapped', Runtime: 'nodejs24', Handler: 'index.handler', Publish: true, Code: { ZipFile: pkg({ 'index.mjs': FETCHER }).toString('base64') }, ThawEgress: { Mode: 'allow', Allow: [`${web.address}:8080`] } }),
    });
    assert.equal(r0.status, 201);
    const snap = await eventually(async () => {
      const s = (await getJson(`${t.url}/thaw/v1/functions/snapped/snapshots`)).snapshots.find((x: { version: string }) => x.version === '1');
      return s && s.status !== 'pending' && s;
    }, 'the snapshot', 90_000);
    assert.equal(snap.status, 'ready', snap.reason);
    const r = await invokeHttp(t.url, 'snapped', { url: `http://${web.address}:8080/restored` }, { qualifier: '1' });
    assert.equal(r.headers.get('x-thaw-start'), 'restored');
    assert.deepEqual({ status: r.json.status, text: r.json.text }, { status: 200, text: `hello from ${web.address}:8080 /restored` });
  });

  test('a destination off the allow-list is refused at once and the function log says THAW_E_EGRESS_DENIED', async () => {
    await deploy('narrow', FETCHER, { Mode: 'allow', Allow: [`${web.address}:9999`] });
    const r = await invokeHttp(t.url, 'narrow', { url: `http://${web.address}:8080/` });
    assert.ok(r.json.error, `refused: ${JSON.stringify(r.json)}`);
    assert.ok(r.json.ms < 5000, 'fails fast, not by timing out');
    await eventually(async () => (await logsOf('narrow')).some((l) => l.startsWith('THAW_E_EGRESS_DENIED') && l.includes(`${web.address}:8080`)), 'the denial in the function log');
  });

  test('public (the default) refuses private addresses; none refuses everything', async () => {
    await deploy('pub', FETCHER);
    const r = await invokeHttp(t.url, 'pub', { url: `http://${web.address}:8080/` });
    assert.ok(r.json.error, `private address refused: ${JSON.stringify(r.json)}`);
    await eventually(async () => (await logsOf('pub')).some((l) => l.includes('private address')), 'the reason in the log');
    await deploy('closed', VIA_PROXY, { Mode: 'none' });
    const n = await invokeHttp(t.url, 'closed', { url: `http://${web.address}:8080/` });
    assert.deepEqual({ status: n.json.status, code: n.json.code }, { status: 403, code: 'THAW_E_EGRESS_DENIED' });
  });

  test('neither the Thaw API nor the host\'s loopback is reachable: not directly, not through the proxy, not by an allow-listed name', async () => {
    await deploy('prober', FETCHER, { Mode: 'allow', Allow: ['localhost', `${web.address}:8080`] });
    for (const url of [`${t.url}/thaw/v1/functions`, `http://127.0.0.1:${hostPort}/`]) {
      const r = await invokeHttp(t.url, 'prober', { url });
      assert.ok(r.json.error && /ECONNREFUSED/.test(r.json.cause), `${url} directly: ${JSON.stringify(r.json)}`);
    }
    await deploy('prober2', VIA_PROXY, { Mode: 'allow', Allow: ['localhost', `${web.address}:8080`] });
    for (const url of [`http://127.0.0.1:${hostPort}/`, `http://localhost:${hostPort}/`, `${t.url}/thaw/v1/functions`]) {
      const r = await invokeHttp(t.url, 'prober2', { url });
      assert.deepEqual({ status: r.json.status, code: r.json.code }, { status: 403, code: 'THAW_E_EGRESS_DENIED' }, `${url} through the proxy: ${JSON.stringify(r.json)}`);
      assert.ok(!String(r.json.body).includes('host secret'));
    }
  });

  test('a bad egress policy is refused with THAW_E_EGRESS_INVALID and creates nothing', async () => {
    const r = await fetch(`${t.url}/2015-03-31/functions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ FunctionName: 'bad-egress', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': FETCHER }).toString('base64') }, ThawEgress: { Mode: 'allow', Allow: ['http://x.com'] } }),
    });
    assert.equal(r.status, 400);
    assert.equal((await r.json() as { code: string }).code, 'THAW_E_EGRESS_INVALID');
    assert.equal((await fetch(`${t.url}/2015-03-31/functions/bad-egress`)).status, 404);
  });

  test('killing the active proxy under load: no request fails after one retry, and the proxy is restarted', async () => {
    await deploy('steady', fnSource(`
      const until = Date.now() + event.ms;
      let ok = 0, retried = 0, failed = 0, last = Date.now(), gap = 0;
      const once = async () => { const r = await fetch(event.url, { signal: AbortSignal.timeout(3000) }); await r.text(); if (r.status !== 200) throw new Error('status ' + r.status); };
      while (Date.now() < until) {
        try { await once(); } catch { retried++; try { await once(); } catch { failed++; continue; } }
        ok++; const now = Date.now(); gap = Math.max(gap, now - last); last = now;
      }
      return { ok, retried, failed, gap };`), { Mode: 'allow', Allow: [`${web.address}:8080`] });
    const url = `http://${web.address}:8080/`;
    await invokeHttp(t.url, 'steady', { url, ms: 100 });
    const before = (await getJson(`${t.url}/thaw/v1/node`)).network.proxies as { pid: number }[];
    const running = invokeHttp(t.url, 'steady', { url, ms: 3000 });
    await new Promise((r) => setTimeout(r, 1200));
    process.kill(before[0].pid, 'SIGKILL');
    const r = await running;
    assert.equal(r.json.failed, 0, `no request failed twice: ${JSON.stringify(r.json)}`);
    assert.ok(r.json.ok > 0);
    process.stdout.write(`# failover: ${r.json.ok} requests, ${r.json.retried} retried once, ${r.json.failed} failed; longest gap between successes ${r.json.gap} ms\n`);
    await eventually(async () => {
      const now = (await getJson(`${t.url}/thaw/v1/node`)).network.proxies as { pid: number; ready: boolean; restarts: number }[];
      return now[0].ready && now[0].pid !== before[0].pid && now[0].restarts === 1;
    }, 'the killed proxy restarted');
  });
});

/** Connects over raw TCP, sends `ping`, resolves with what came back or the error code. */
const TCP_CLIENT = fnSource(`
  const net = await import('node:net');
  const t0 = Date.now();
  return await new Promise((resolve) => {
    const s = net.connect({ host: event.host, port: event.port, timeout: event.timeoutMs ?? 2000 });
    let got = '';
    s.on('connect', () => s.end('ping'));
    s.on('data', (d) => { got += d; });
    s.on('end', () => resolve({ echo: got, ms: Date.now() - t0 }));
    s.on('timeout', () => { s.destroy(); resolve({ error: 'ETIMEDOUT', ms: Date.now() - t0 }); });
    s.on('error', (e) => resolve({ error: e.code ?? String(e), ms: Date.now() - t0 }));
  });`);

describe('private networks (VpcConfig)', { skip }, () => {
  let t: TestThaw;
  let db: NetHost | null = null;
  const third = 100 + (process.pid % 100);
  const subnet = `10.252.${third}.0/24`;
  const dbAddress = `10.252.${third}.200`;

  before(async () => { t = await startTestThaw({}); });
  after(async () => {
    await db?.close();
    await t?.stop();
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${t.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : null };
  };
  const deploy = (name: string, extra: Record<string, unknown>) => api('POST', '/2015-03-31/functions', { FunctionName: name, Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': TCP_CLIENT }).toString('base64') }, ...extra });

  test('a network is created (a bad one refused with its code), a host is plugged in, and a VPC function reaches it over raw TCP', async () => {
    for (const [body, code] of [[{ Name: 'Bad Name', Subnet: subnet }, 'THAW_E_NETWORK_INVALID'], [{ Name: 'x', Subnet: '10.0.0.1/24' }, 'THAW_E_NETWORK_INVALID'], [{ Name: 'x', Subnet: '127.0.0.0/24' }, 'THAW_E_NETWORK_INVALID']] as const) {
      const r = await api('POST', '/thaw/v1/networks', body);
      assert.deepEqual({ status: r.status, code: r.json.code }, { status: 400, code }, JSON.stringify(body));
    }
    const made = await api('POST', '/thaw/v1/networks', { Name: 'backend', Subnet: subnet });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    assert.equal((await api('POST', '/thaw/v1/networks', { Name: 'other', Subnet: `10.252.${third}.128/25` })).json.code, 'THAW_E_NETWORK_EXISTS', 'overlapping subnets are refused');
    db = onBridge(made.json.Node.bridge, dbAddress, 24);
    await db.run(ECHO_SERVER);

    assert.equal((await deploy('vpc-missing', { VpcConfig: { SubnetIds: ['nope'] } })).json.code, 'THAW_E_NETWORK_NOT_FOUND');
    assert.equal((await deploy('vpc-sg', { VpcConfig: { SubnetIds: ['backend'], SecurityGroupIds: ['nope'] } })).json.code, 'THAW_E_SECURITY_GROUP_NOT_FOUND');
    assert.equal((await api('GET', '/2015-03-31/functions/vpc-missing')).status, 404, 'a refused create leaves nothing');

    const created = await deploy('in-vpc', { VpcConfig: { SubnetIds: ['backend'], SecurityGroupIds: [] } });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.deepEqual(created.json.VpcConfig.SubnetIds, ['backend']);
    const r = await invokeHttp(t.url, 'in-vpc', { host: dbAddress, port: 7000 });
    assert.equal(r.json.echo, 'ping', JSON.stringify(r.json));
    const rec = await eventually(async () => { const x = await fetch(`${t.url}/thaw/v1/invocations/${r.headers.get('x-thaw-invocation-id')}`); return x.ok && await x.json() as { phases: { name: string; durationMs: number }[] }; }, 'the record');
    assert.ok(rec.phases.find((p) => p.name === 'network'), 'the attach is the network phase');
  });

  test('outside the VPC the host is unreachable; inside it, only the network: not this host, not its loopback', async () => {
    await deploy('no-vpc', {});
    const outside = await invokeHttp(t.url, 'no-vpc', { host: dbAddress, port: 7000 });
    assert.ok(outside.json.error, `no route from a function outside the network: ${JSON.stringify(outside.json)}`);
    const toHost = await invokeHttp(t.url, 'in-vpc', { host: `10.252.${third}.1`, port: 22, timeoutMs: 1500 });
    assert.ok(toHost.json.error, `the host has no address on a network without host access: ${JSON.stringify(toHost.json)}`);
    const beyond = await invokeHttp(t.url, 'in-vpc', { host: '10.251.0.1', port: 80, timeoutMs: 1500 });
    assert.equal(beyond.json.error, 'ENETUNREACH', `no route beyond the subnet: ${JSON.stringify(beyond.json)}`);
  });

  test('a security group limits a function to what it allows on the network: the rest fails at once', { skip: nftAvailable() ? false : 'nftables is not installed (apt-get install nftables)' }, async () => {
    await db!.run(ECHO_SERVER.replace('7000', '7001'));
    const bad = await api('POST', '/thaw/v1/security-groups', { Name: 'echo-only', Allow: ['db.example:7000'] });
    assert.deepEqual({ status: bad.status, code: bad.json.code }, { status: 400, code: 'THAW_E_SECURITY_GROUP_INVALID' });
    const sg = await api('POST', '/thaw/v1/security-groups', { Name: 'echo-only', Allow: [`${dbAddress}/32:7000/tcp`], Description: 'the echo port' });
    assert.equal(sg.status, 201, JSON.stringify(sg.json));
    const made = await deploy('guarded', { VpcConfig: { SubnetIds: ['backend'], SecurityGroupIds: ['echo-only'] } });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    assert.deepEqual(made.json.VpcConfig.SecurityGroupIds, ['echo-only']);
    assert.equal((await invokeHttp(t.url, 'guarded', { host: dbAddress, port: 7000 })).json.echo, 'ping');
    const other = await invokeHttp(t.url, 'guarded', { host: dbAddress, port: 7001, timeoutMs: 5000 });
    assert.equal(other.json.error, 'EHOSTUNREACH', `port 7001 is not in the group: ${JSON.stringify(other.json)}`);
    assert.ok(other.json.ms < 5000, 'refused at once, not timed out');
    // Without the group the same function reaches both.
    assert.equal((await invokeHttp(t.url, 'in-vpc', { host: dbAddress, port: 7001 })).json.echo, 'ping');
    assert.equal((await api('DELETE', '/thaw/v1/security-groups/echo-only')).json.code, 'THAW_E_SECURITY_GROUP_IN_USE');
    assert.equal((await api('DELETE', '/2015-03-31/functions/guarded')).status, 204);
    assert.equal((await api('DELETE', '/thaw/v1/security-groups/echo-only')).status, 204);
  });

  test('each instance gets its own address; the next cold start joins a ready namespace', async () => {
    const nodeView = async () => (await api('GET', '/thaw/v1/networks')).json.networks.find((n: { Name: string }) => n.Name === 'backend').Node;
    await eventually(async () => (await nodeView()).ready >= 1, 'a ready namespace on the network');
    // Two at once: two instances, two addresses (the echo server sees them; here: both succeed).
    const [a, b] = await Promise.all([invokeHttp(t.url, 'in-vpc', { host: dbAddress, port: 7000 }), invokeHttp(t.url, 'in-vpc', { host: dbAddress, port: 7000 })]);
    assert.deepEqual([a.json.echo, b.json.echo], ['ping', 'ping']);
  });

  test('a network in use cannot be deleted; once unused it can, and its bridge goes', async () => {
    assert.equal((await api('DELETE', '/thaw/v1/networks/backend')).json.code, 'THAW_E_NETWORK_IN_USE');
    assert.equal((await api('DELETE', '/2015-03-31/functions/in-vpc')).status, 204);
    await db?.close();
    db = null;
    assert.equal((await api('DELETE', '/thaw/v1/networks/backend')).status, 204);
    assert.equal((await api('GET', '/thaw/v1/networks')).json.networks.length, 0);
  });
});
