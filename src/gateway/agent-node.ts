// `thaw agent`: a node of a cluster. It runs the same Platform as `thaw up` (driver, network, code cache,
// agent, its own small store), with differences given as hooks: packages come from its peers before the
// control plane (PeerOrigin), context.invoke goes to the control plane, and snapshots are the cluster's
// (built once, by the agent the control plane chooses, into its origin; records in its store; the key its
// own, handed over at join; see src/cluster/shared-snapshots.ts). It joins the control plane and
// heartbeats (what it holds, signed with its agent key), takes the reserved instances and policies the
// answer gives, serves the agent API (invocations, config commands, packages for peers) to bearers of the
// control plane's token, and forwards its telemetry events to the control plane, which records them.
// Imports src/core, src/cluster, src/policies and the gateway's own modules.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, hostname } from 'node:os';
import { timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { ThawError, asThawError, errorRegistry, type ErrorCode } from '../core/errors.ts';
import { channels } from '../core/events.ts';
import { newInvocationId } from '../core/ids.ts';
import type { CallResult, ResponseStream } from '../agent/index.ts';
import { S3Origin, type BlobStore } from '../codestore/index.ts';
import {
  AgentSnapshotBook, PeerOrigin, SharedSnapshotOrigin, commandSchema, snapshotKeyFingerprint, heartbeatAnswerSchema, invokeMessageSchema, parseMessage,
  type Command, type Heartbeat, type HeartbeatAnswer, type InvokeLine, type TelemetryBatch,
} from '../cluster/index.ts';
import { parsePolicy } from '../policies/index.ts';
import { Router, readJson, sendError, sendJson, sendObject, type RequestContext } from './http.ts';
import { resolveOptions, type UserOptions } from './options.ts';
import { Platform } from './platform.ts';
import { signRequest } from './sigv4.ts';

export interface AgentNodeOptions {
  /** The control plane's URL. */
  control: string;
  credentials: { accessKeyId: string; secretAccessKey: string; region: string };
  /** Unique in the cluster (default: the host name). */
  name?: string;
  host?: string;
  port?: number;
  /** The URL the control plane and peers reach this agent at (default: http://host:port, the host name for 0.0.0.0). */
  advertise?: string;
  /** The node's own options (data and cache dirs, sandbox, memory budget...). */
  node: UserOptions;
  log?(line: string): void;
}

export interface RunningAgent extends AsyncDisposable {
  readonly name: string;
  readonly url: string;
  readonly platform: Platform;
  /** Resolves once the control plane answered a first heartbeat. */
  readonly joined: Promise<void>;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** Telemetry events held for the control plane at most; beyond, the oldest are dropped (and counted). */
const MAX_PENDING_EVENTS = 20_000;
const TELEMETRY_FLUSH_MS = 250;
const FORWARDED = ['invocationEnd', 'log', 'instanceState', 'policyDecision'] as const;

export async function startAgentNode(o: AgentNodeOptions): Promise<RunningAgent> {
  const log = o.log ?? ((line: string) => process.stderr.write(`thaw agent: ${line}\n`));
  const name = o.name ?? hostname().toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 63);
  const control = new URL(o.control).origin;
  const clock = systemClock;
  let answer: HeartbeatAnswer | null = null;
  let peerOrigin: PeerOrigin | null = null;
  let local: BlobStore | null = null;

  /** A request to the control plane, signed with the agent's key. */
  const callControl = async (method: string, path: string, body?: unknown): Promise<Response> => {
    const url = new URL(control + path);
    // Bytes (a snapshot) go as they are; anything else as JSON.
    const text = body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const headers: Record<string, string> = text === undefined ? {} : { 'content-type': Buffer.isBuffer(text) ? 'application/octet-stream' : 'application/json' };
    Object.assign(headers, await signRequest({ method, url, headers, body: text, ...o.credentials }));
    const res = await fetch(url, { method, headers, body: text });
    if (!res.ok) {
      const e = await res.json().catch(() => null) as { code?: string; message?: string } | null;
      // Its own code when it gave one (a refused key, a version deleted meanwhile), so callers can tell.
      const code = e?.code && e.code in errorRegistry ? e.code as ErrorCode : 'THAW_E_CLI_UNREACHABLE';
      throw new ThawError(code, `the control plane ${control} answered ${res.status} to ${method} ${path}: ${e?.message ?? res.statusText}`);
    }
    return res;
  };

  const options = resolveOptions({ ...o.node, localAgent: true });
  // Given the cluster's bucket (--origin s3://…), an agent reads it directly rather than through the control plane.
  const bucket = options.origin ? new S3Origin(options.origin) : null;
  // Snapshots: built once in the cluster into its origin (the bucket, else the control plane's), records in
  // the control plane's store; the key is the control plane's, handed over at join.
  const snapshotBlobs = bucket?.under('snapshots');
  const snapshotOrigin = new SharedSnapshotOrigin(snapshotBlobs
    ? { location: snapshotBlobs.location, put: async (h, b) => { await snapshotBlobs.put(b, h); }, get: async (h) => (await snapshotBlobs.has(h)) ? snapshotBlobs.get(h) : null }
    : {
      location: `${control}/thaw/v1/cluster/snapshots/blobs`,
      put: async (h, b) => { await callControl('PUT', `/thaw/v1/cluster/snapshots/blobs/${h}`, b); },
      get: async (h) => {
        try {
          return Buffer.from(await (await callControl('GET', `/thaw/v1/cluster/snapshots/blobs/${h}`)).arrayBuffer());
        } catch (err) {
          if ((err as ThawError).status === 404) return null;
          throw err;
        }
      },
    });
  const snapshotBook = new AgentSnapshotBook(async (record) => { await callControl('POST', '/thaw/v1/cluster/snapshots/records', { agent: name, record }); });
  const snapshotKeyFile = join(options.dataDir, 'keys', 'snapshot.key');
  /** The fingerprint of the cluster's snapshot key this agent holds (null until the first answer gives it). */
  let snapshotKeyHeld: string | null = null;
  const platform = await Platform.start(options, clock, {
    origin: (blobs) => {
      local = blobs;
      peerOrigin = new PeerOrigin({
        local: blobs,
        peers: () => answer?.peers ?? [],
        token: () => answer?.token ?? null,
        origin: async (hash) => bucket ? bucket.get(hash) : Buffer.from(await (await callControl('GET', `/thaw/v1/cluster/code/${hash}`)).arrayBuffer()),
        log,
      });
      return peerOrigin;
    },
    snapshots: { origin: snapshotOrigin, book: snapshotBook },
    onCall: async (call): Promise<CallResult> => {
      try {
        return await (await callControl('POST', '/thaw/v1/cluster/calls', call)).json() as CallResult;
      } catch (err) {
        const e = asThawError(err);
        return { ok: false, error: { errorType: e.lambdaType, errorMessage: `${e.code}: ${e.message}`, trace: [] } };
      }
    },
  });

  // Telemetry: every event the agent publishes goes to the control plane in batches.
  let pending: TelemetryBatch['events'] = [];
  let dropped = 0;
  const subscriptions = FORWARDED.map((channel) => {
    const fn = (event: unknown) => {
      if (pending.length >= MAX_PENDING_EVENTS) { pending.shift(); dropped++; }
      pending.push({ channel, event: event as Record<string, unknown> });
    };
    channels[channel].subscribe(fn);
    return () => channels[channel].unsubscribe(fn);
  });
  const flushTelemetry = async () => {
    if (!pending.length) return;
    const events = pending;
    pending = [];
    try {
      await callControl('POST', '/thaw/v1/cluster/telemetry', { agent: name, events });
    } catch (err) {
      // Kept for the next try, newest last, within the bound.
      pending = [...events, ...pending].slice(-MAX_PENDING_EVENTS);
      log(`could not forward telemetry: ${(err as Error).message}`);
    }
    if (dropped) { log(`dropped ${dropped} telemetry event(s) the control plane could not take in time`); dropped = 0; }
  };

  // Reserved instances and policies as the control plane assigns them, applied when they change.
  const appliedReserved = new Map<string, string>();
  const appliedPolicies = new Map<string, string>();
  const apply = (a: HeartbeatAnswer) => {
    const want = new Map(a.reserved.filter((r) => r.count > 0 && r.version).map((r) => [`${r.functionName}:${r.qualifier}`, r]));
    for (const [k, r] of want) {
      const sig = `${r.version!.revisionId}@${r.version!.version}x${r.count}`;
      if (appliedReserved.get(k) === sig) continue;
      appliedReserved.set(k, sig);
      platform.agent.setReserved(r.functionName, r.qualifier, r.version, r.count);
    }
    for (const k of [...appliedReserved.keys()]) {
      if (want.has(k)) continue;
      appliedReserved.delete(k);
      const i = k.lastIndexOf(':');
      platform.agent.setReserved(k.slice(0, i), k.slice(i + 1), null, 0);
    }
    const policies = new Map(a.policies.map((p) => [p.functionName, p.spec]));
    for (const [fn, spec] of policies) if (appliedPolicies.get(fn) !== spec) { appliedPolicies.set(fn, spec); platform.agent.setPolicy(fn, parsePolicy(spec)); }
    for (const fn of [...appliedPolicies.keys()]) if (!policies.has(fn)) { appliedPolicies.delete(fn); platform.agent.setPolicy(fn, null); }
  };

  let url = '';
  const heartbeat = async (): Promise<Heartbeat> => ({
    name, url,
    capacity: { memoryBudgetMb: options.memoryBudgetMb, cpus: availableParallelism() },
    instances: platform.agent.instances(),
    packages: await local!.list(),
    busy: platform.agent.instances().reduce((a, i) => a + i.inFlight, 0),
    reserved: [...appliedReserved.keys()].map((k) => {
      const i = k.lastIndexOf(':');
      const s = platform.agent.reservedStatus(k.slice(0, i), k.slice(i + 1));
      return { functionName: k.slice(0, i), qualifier: k.slice(i + 1), requested: s?.requested ?? 0, ready: s?.available ?? 0, lastError: s?.failure ?? null };
    }),
    fetches: { ...peerOrigin!.fetches },
    metrics: nodeMetrics(platform),
    snapshots: platform.agent.snapshots.held(),
    snapshotKey: snapshotKeyHeld,
  });

  const server = agentServer({
    platform, name, token: () => answer?.token ?? null, local: () => local!,
    command: (c) => runCommand(platform, peerOrigin!, snapshotBook, snapshotKeyHeld !== null, c, log),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
  } catch (err) {
    for (const u of subscriptions) u();
    await platform.destroy();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const host = o.host ?? '127.0.0.1';
  url = o.advertise ?? `http://${host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host}:${port}`;

  // Join, then heartbeat: every heartbeatMs the control plane asks for (a second until told).
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let failing = false;
  const joined = Promise.withResolvers<void>();
  const beat = async () => {
    try {
      const res = await callControl('POST', `/thaw/v1/cluster/agents/${encodeURIComponent(name)}`, await heartbeat());
      const next = parseMessage(heartbeatAnswerSchema, await res.json(), 'heartbeat answer');
      // Before the token takes commands: a snapshot build or fetch needs the cluster's key in place.
      if (next.snapshotKey) {
        await mkdir(dirname(snapshotKeyFile), { recursive: true, mode: 0o700 });
        await writeFile(snapshotKeyFile, next.snapshotKey, { mode: 0o600 });
        await chmod(snapshotKeyFile, 0o600);
        platform.agent.snapshots.rekey();
        snapshotKeyHeld = snapshotKeyFingerprint(next.snapshotKey);
      }
      answer = next;
      apply(answer);
      if (failing) log(`the control plane ${control} answers again`);
      failing = false;
      joined.resolve();
    } catch (err) {
      if (!failing) log(`heartbeat to ${control} failed: ${(err as Error).message}; retrying`);
      failing = true;
      // A refused key will not get better: say so to whoever waits for the join.
      const code = (err as ThawError).code;
      if (code === 'THAW_E_AUTH_REQUIRED' || code === 'THAW_E_AUTH_DENIED' || code === 'THAW_E_AUTH_UNKNOWN_KEY') joined.reject(err);
    }
    await flushTelemetry();
    if (!stopped) timer = setTimeout(() => void beat(), answer?.heartbeatMs ?? 1000);
  };
  void beat();
  const flusher = setInterval(() => void flushTelemetry(), TELEMETRY_FLUSH_MS);
  joined.promise.catch(() => {});

  let closing: Promise<void> | null = null;
  const stop = () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    clearInterval(flusher);
  };
  const close = () => closing ??= (async () => {
    stop();
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    await platform.close();
    await flushTelemetry();
    for (const u of subscriptions) u();
    server.closeAllConnections();
    await closed;
  })();
  const destroy = async () => {
    stop();
    server.closeAllConnections();
    await platform.destroy();
    await close();
  };
  log(`${name} serving at ${url}, joining ${control}`);
  return { name, url, platform, joined: joined.promise, close, destroy, [Symbol.asyncDispose]: close };
}

/** The node's gauges for the control plane's /metrics, as the local metrics source reads them. */
function nodeMetrics(platform: Platform): NonNullable<Heartbeat['metrics']> {
  const { maxBytes, ...cache } = platform.cache.stats();
  const { ramBytes, swapBytes, swapBudgetBytes, tiers } = platform.memoryByTier();
  return { pool: platform.agent.pool(), codeCache: { ...cache, maxBytes: Number.isFinite(maxBytes) ? maxBytes : null }, memory: { ramBytes, swapBytes, swapBudgetBytes, tiers } };
}

/** A config change from the control plane, applied to this node's agent. */
async function runCommand(platform: Platform, origin: PeerOrigin, book: AgentSnapshotBook, snapshotKey: boolean, c: Command, log: (l: string) => void): Promise<void> {
  const { agent } = platform;
  // Without the cluster's key, a snapshot made here would be one no other agent can read.
  if ((c.op === 'snapshot-build' || c.op === 'snapshot-adopt') && !snapshotKey) {
    log(`no snapshot key from the control plane: ${c.op} of ${c.version.functionName}:${c.version.version} skipped`);
    return;
  }
  switch (c.op) {
    case 'retire': {
      const drop = new Set(c.drop);
      await agent.retire(c.functionName, (v) => !drop.has(`${v.functionName}@${v.version}#${v.revisionId}`), c.mode);
      return;
    }
    case 'rollout': agent.rollout(c.functionName, c.qualifier, c.targets, c.reason); return;
    case 'forget': agent.setPolicy(c.functionName, null); agent.forget(c.functionName); return;
    case 'policy': agent.setPolicy(c.functionName, c.spec === null ? null : parsePolicy(c.spec)); return;
    case 'prefetch':
      // In the background: the control plane does not wait for the bytes.
      void origin.get(c.sha256).then(() => log(`prefetched package ${c.sha256.slice(0, 12)}`), (err) => log(`prefetch of ${c.sha256.slice(0, 12)} failed: ${(err as Error).message}`));
      return;
    case 'snapshot-build':
      book.know(c.version);
      agent.snapshots.request(c.version);
      return;
    case 'snapshot-adopt': {
      // In the background too; the record says where it came from, so a later drop finds the local copy.
      const v = c.version;
      book.know(v);
      book.hold({ functionName: v.functionName, version: v.version, status: 'ready', reason: null, sha256: c.sha256, sizeBytes: null, buildMs: null, updatedAt: platform.clock.now() });
      void agent.snapshots.adopt(v, c.sha256).then(
        () => log(`snapshot of ${v.functionName}:${v.version} fetched and decrypted`),
        (err) => log(`snapshot of ${v.functionName}:${v.version} could not be fetched: ${(err as Error).message}`),
      );
      return;
    }
    case 'snapshot-drop':
      book.forget(c.functionName, c.version);
      await agent.snapshots.remove(c.functionName, c.version ?? undefined);
      return;
  }
}

interface AgentServerDeps {
  platform: Platform;
  name: string;
  token(): string | null;
  local(): BlobStore;
  command(c: Command): Promise<void>;
}

/** The agent API: health for probes; invocations, commands and packages for the control plane's token. */
function agentServer(d: AgentServerDeps): Server {
  const router = new Router();
  router.on('GET', '/agent/v1/health', async (ctx) => {
    sendJson(ctx, 200, { status: d.platform.agent.closing ? 'draining' : 'ok', name: d.name, joined: d.token() !== null, instances: d.platform.agent.instances().length });
  });
  router.on('POST', '/agent/v1/invoke', async (ctx) => invoke(d, ctx));
  router.on('POST', '/agent/v1/commands', async (ctx) => {
    await d.command(parseMessage(commandSchema, await readJson(ctx.req, 8 * 1024 * 1024), 'command'));
    sendJson(ctx, 204, undefined);
  });
  router.on('GET', '/agent/v1/blobs/{sha}', async (ctx) => {
    // Only what this agent holds itself: a peer asking is told no rather than sent around the cluster.
    await sendObject(ctx, d.local(), ctx.params.sha, `package (of agent ${d.name})`);
  });

  return createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const abort = new AbortController();
    res.on('close', () => { if (!res.writableFinished) abort.abort(); });
    const url = new URL(req.url ?? '/', 'http://agent.invalid');
    const ctx: RequestContext = { req, res, url, params: {}, signal: abort.signal, requestId: newInvocationId(), receivedMono: d.platform.clock.monotonic(), receivedAt: d.platform.clock.now() };
    (async () => {
      const match = router.match(req.method ?? 'GET', url.pathname);
      if (!('handler' in match)) throw new ThawError('THAW_E_ROUTE_NOT_FOUND', `no route for ${req.method} ${url.pathname}`);
      if (url.pathname !== '/agent/v1/health') checkToken(req.headers.authorization, d.token());
      ctx.params = match.params;
      await match.handler(ctx);
    })().catch((err) => { req.resume(); sendError(ctx, err); });
  });
}

function checkToken(header: string | undefined, token: string | null) {
  const given = Buffer.from(/^Bearer (\S+)$/.exec(header ?? '')?.[1] ?? '');
  const want = Buffer.from(token ?? '');
  if (!token || given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new ThawError('THAW_E_CLUSTER_TOKEN', token ? 'the request does not carry the control plane\'s token' : 'this agent has not joined its control plane yet');
  }
}

/** Runs an invocation, answering in NDJSON: {started} once the handler has it, then {result} or {error}. */
async function invoke(d: AgentServerDeps, ctx: RequestContext): Promise<void> {
  const m = parseMessage(invokeMessageSchema, await readJson(ctx.req, 8 * 1024 * 1024), 'invocation');
  ctx.res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  ctx.res.flushHeaders();
  const write = (line: InvokeLine, done?: () => void) => {
    if (ctx.res.writableEnded || ctx.res.destroyed) { done?.(); return; }
    ctx.res.write(JSON.stringify(line) + '\n', () => done?.());
  };
  // A chunk is acknowledged once on the socket: the control plane reads only as fast as its caller takes
  // the stream, so the function is held to its ack window here.
  const stream: ResponseStream | undefined = m.stream ? {
    start: (head) => write({ streamStart: { contentType: head.contentType } }),
    write: (chunk, consumed) => write({ chunk: chunk.toString('base64') }, consumed),
  } : undefined;
  try {
    const r = await d.platform.agent.invoke({
      ...m, trace: m.trace ?? undefined, receivedMono: ctx.receivedMono, signal: ctx.signal, stream,
      onHandlerStart: () => write({ started: true }),
    });
    write({ result: r });
  } catch (err) {
    const e = asThawError(err);
    write({ error: { code: e.code, message: e.message } });
  }
  ctx.res.end();
}
