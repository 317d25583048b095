// The control plane's side of a cluster: the agents that joined (what each holds, as its heartbeats say),
// placement of each invocation (placement.ts) and its dispatch to the chosen agent, failure (an agent
// silent for deadAfterMs, or refusing connections, leaves placement; what had not started there is placed
// elsewhere), reserved instances spread over the live agents, config changes carried to the agents, and
// pre-distribution of published packages. Implements the Executor the platform drives, like a local Agent.
// Imports src/core, src/agent (types), src/policies and node built-ins.
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { ThawError, errorRegistry, type ErrorCode } from '../core/errors.ts';
import { channels } from '../core/events.ts';
import { LATEST, type FunctionVersion } from '../core/types.ts';
import { DecisionLog, functionKey, type Executor, type TakenDecision, type InstanceView, type InvokeRequest, type InvokeResult, type ReservedStatus } from '../agent/index.ts';
import { formatPolicy, type PolicySpec } from '../policies/index.ts';
import { place, PLACEMENT_REASONS, type Candidate, type PlacementReason } from './placement.ts';
import { forwardedEvents, type Command, type Heartbeat, type HeartbeatAnswer, type InvokeLine, type InvokeMessage, type ReservedAssignment, type SnapshotReport, type TelemetryBatch } from './protocol.ts';

export interface FleetOptions {
  clock: Clock;
  /** How often agents heartbeat, and how long a silent one stays in placement. */
  heartbeatMs?: number;
  deadAfterMs?: number;
  /** Agents told to prefetch a published package when none ran the function yet. */
  prefetchAgents?: number;
  log(line: string): void;
}

interface Member {
  name: string;
  url: string;
  hb: Heartbeat;
  seenMono: number;
  /** Heartbeats taken from it since it joined. */
  beats: number;
  /** Invocations the control plane has running there now. */
  running: number;
  /** Instances the control plane expects ready beyond the last heartbeat (one per finished invocation). */
  readyDelta: Map<string, number>;
  /** Invocations placed here lately (the newest MAX_PLACED), and whether their record came: the records it may send. */
  placed: Map<string, boolean>;
  /** Aborted when it leaves placement: calls and commands to it end rather than wait on a stopped process. */
  gone: AbortController;
}

const MAX_PLACED = 10_000;

const INVOKE_PATH = '/agent/v1/invoke';
const COMMAND_PATH = '/agent/v1/commands';

export class Fleet implements Executor, AsyncDisposable {
  readonly #o: Required<FleetOptions>;
  readonly #members = new Map<string, Member>();
  /** Presented to agents (and by peers to each other); new at every start of the control plane. */
  readonly token = randomBytes(24).toString('base64url');
  readonly #reserved = new Map<string, { functionName: string; qualifier: string; version: FunctionVersion | null; count: number }>();
  readonly #policies = new Map<string, string>();
  /** Published versions whose snapshot is being built, and the agents it goes to once ready (`function@version`). */
  readonly #snapshotTargets = new Map<string, { version: FunctionVersion; agents: string[] }>();
  /** Where invocations were placed and why; lost ones; packages fetched from peers and from the origin. */
  readonly placements = Object.fromEntries(PLACEMENT_REASONS.map((r) => [r, 0])) as Record<PlacementReason, number>;
  replaced = 0;
  lost = 0;
  /** The agents' policy decisions as they forwarded them, each with the agent's name. */
  readonly #decisions = new DecisionLog<TakenDecision & { agent: string }>();
  #sweep: TimerHandle | null = null;
  #closed = false;

  constructor(options: FleetOptions) {
    this.#o = { heartbeatMs: 1000, deadAfterMs: 3000, prefetchAgents: 2, ...options };
    this.#arm();
  }

  #arm() {
    if (this.#closed) return;
    this.#sweep = this.#o.clock.setTimer(() => { this.#expire(); this.#arm(); }, Math.max(100, this.#o.heartbeatMs / 2));
  }

  /** Agents silent too long leave placement; their reserved instances move to the others. */
  #expire() {
    const now = this.#o.clock.monotonic();
    for (const m of [...this.#members.values()]) if (now - m.seenMono > this.#o.deadAfterMs) this.#drop(m, `no heartbeat for ${Math.round(now - m.seenMono)} ms`);
  }

  #drop(m: Member, why: string) {
    if (this.#members.get(m.name) !== m) return;
    this.#members.delete(m.name);
    m.gone.abort(new Error(`agent ${m.name} left the cluster: ${why}`));
    this.#o.log(`agent ${m.name} (${m.url}) left the cluster: ${why}; its reserved instances move to the other agents`);
  }

  /** A join or heartbeat: the agent's state replaces what was known of it; the answer is what it should know. */
  heartbeat(hb: Heartbeat): HeartbeatAnswer {
    const known = this.#members.get(hb.name);
    // A name is the agent's while it heartbeats: another address claiming it would take its placements.
    if (known && known.url !== hb.url) {
      throw new ThawError('THAW_E_CLUSTER_NAME_TAKEN', `agent ${hb.name} is live at ${known.url}; ${hb.url} may take the name once that one has been silent for ${this.#o.deadAfterMs} ms`);
    }
    if (!known) this.#o.log(`agent ${hb.name} joined from ${hb.url} (${hb.capacity.cpus} CPUs, ${hb.capacity.memoryBudgetMb} MB)`);
    const m: Member = known ?? { name: hb.name, url: hb.url, hb, seenMono: 0, beats: 0, running: 0, readyDelta: new Map(), placed: new Map(), gone: new AbortController() };
    m.url = hb.url;
    m.hb = hb;
    m.seenMono = this.#o.clock.monotonic();
    m.beats++;
    m.readyDelta.clear();
    this.#members.set(hb.name, m);
    return {
      token: this.token,
      heartbeatMs: this.#o.heartbeatMs,
      peers: [...this.#members.values()].filter((p) => p !== m).map((p) => ({ name: p.name, url: p.url, packages: p.hb.packages })),
      reserved: this.#assignments(m.name),
      policies: [...this.#policies].map(([functionName, spec]) => ({ functionName, spec })),
    };
  }

  /** What each agent in placement said of itself last. */
  heartbeats(): Heartbeat[] { return [...this.#members.values()].map((m) => m.hb); }

  /** The agents in placement, by name. */
  members(): string[] { return [...this.#members.keys()].sort(); }

  #candidates(): Candidate[] {
    return [...this.#members.values()].map((m) => {
      const ready = new Map<string, { idle: number; frozen: number; paged: number }>();
      let memoryUsedMb = 0;
      for (const i of m.hb.instances) {
        if (i.state === 'stopping' || i.state === 'gone') continue;
        memoryUsedMb += i.memoryMb;
        const key = `${i.functionName}@${i.version}#${i.revisionId}`;
        const r = ready.get(key) ?? { idle: 0, frozen: 0, paged: 0 };
        if (i.state === 'idle' || i.state === 'frozen' || i.state === 'paged') r[i.state]++;
        ready.set(key, r);
      }
      for (const [key, n] of m.readyDelta) {
        const r = ready.get(key) ?? { idle: 0, frozen: 0, paged: 0 };
        r.idle = Math.max(0, r.idle + n);
        ready.set(key, r);
      }
      return { name: m.name, ready, packages: new Set(m.hb.packages), snapshots: new Set(m.hb.snapshots), busy: m.running, cpus: m.hb.capacity.cpus, memoryUsedMb, memoryBudgetMb: m.hb.capacity.memoryBudgetMb };
    });
  }

  /**
   * Places and runs an invocation. An agent that cannot be reached, or goes away before the handler got
   * the request, leaves placement and the invocation goes to another; after that, THAW_E_AGENT_LOST.
   */
  async invoke(req: InvokeRequest): Promise<InvokeResult> {
    const tried = new Set<string>();
    const key = functionKey(req.version);
    for (;;) {
      const snapshot = `${req.version.functionName}@${req.version.version}`;
      const p = place(this.#candidates(), { key, codeSha256: req.version.config.codeSha256, memoryMb: req.version.config.memoryMb, snapshot }, tried);
      if (!p) {
        throw tried.size
          ? new ThawError('THAW_E_AGENT_LOST', `every agent tried (${[...tried].join(', ')}) went away before the invocation started`)
          : new ThawError('THAW_E_CLUSTER_NO_AGENTS', 'no agent has joined this control plane');
      }
      const m = this.#members.get(p.agent)!;
      tried.add(m.name);
      // The instance it takes is busy until it answers (then ready again, below), whatever heartbeats say meanwhile.
      if (p.reason === 'warm') m.readyDelta.set(key, (m.readyDelta.get(key) ?? 0) - 1);
      m.running++;
      m.placed.set(req.invocationId, false);
      if (m.placed.size > MAX_PLACED) m.placed.delete(m.placed.keys().next().value!);
      let started = false;
      try {
        const result = await this.#send(m, { ...req, placement: p }, () => { started = true; });
        this.placements[p.reason]++;
        m.readyDelta.set(key, (m.readyDelta.get(key) ?? 0) + 1);
        return result;
      } catch (err) {
        if (!(err instanceof Unreachable)) throw err;
        if (started) {
          this.lost++;
          this.#drop(m, `the connection broke during invocation ${req.invocationId}: ${err.message}`);
          throw new ThawError('THAW_E_AGENT_LOST', `agent ${m.name} went away while running invocation ${req.invocationId} (${err.message}); it may have run`);
        }
        this.replaced++;
        m.placed.delete(req.invocationId);
        this.#drop(m, `unreachable: ${err.message}`);
      } finally {
        m.running--;
      }
    }
  }

  /**
   * Sends one invocation and reads the agent's NDJSON answer: {started}, then {result} or {error}; a
   * streamed one's start and chunks go to the caller's stream in between, each taken before the next read.
   */
  async #send(m: Member, req: InvokeRequest, onStarted: () => void): Promise<InvokeResult> {
    const msg: InvokeMessage = {
      invocationId: req.invocationId, version: req.version, qualifier: req.qualifier, payload: req.payload, trigger: req.trigger,
      callerInvocationId: req.callerInvocationId, clientContext: req.clientContext, traceId: req.traceId ?? null,
      concurrencyLimit: req.concurrencyLimit, receivedAt: req.receivedAt, trace: req.trace ?? null, placement: req.placement ?? null,
      stream: req.stream !== undefined,
    };
    let res: Response;
    const signal = req.signal ? AbortSignal.any([req.signal, m.gone.signal]) : m.gone.signal;
    try {
      res = await fetch(m.url + INVOKE_PATH, { method: 'POST', body: JSON.stringify(msg), headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` }, signal });
    } catch (err) {
      if (req.signal?.aborted) throw new ThawError('THAW_E_ABORTED', 'the caller went away');
      throw new Unreachable(causeOf(err));
    }
    if (res.status !== 200) throw agentError(await res.json().catch(() => null), `agent ${m.name} answered ${res.status}`);
    let rest = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body!) {
        const lines = (rest + decoder.decode(chunk, { stream: true })).split('\n');
        rest = lines.pop()!;
        for (const text of lines) {
          if (!text) continue;
          const line = JSON.parse(text) as InvokeLine;
          if ('started' in line) onStarted();
          else if ('streamStart' in line) req.stream?.start({ contentType: line.streamStart.contentType, executedVersion: req.version.version, invocationId: req.invocationId });
          else if ('chunk' in line) await written(req, Buffer.from(line.chunk, 'base64'));
          else if ('result' in line) return line.result;
          else throw agentError(line, `agent ${m.name} failed the invocation`);
        }
      }
    } catch (err) {
      if (err instanceof ThawError) throw err;
      if (req.signal?.aborted) throw new ThawError('THAW_E_ABORTED', 'the caller went away');
      throw new Unreachable(causeOf(err));
    }
    throw new Unreachable('the answer ended before the result');
  }

  /**
   * Telemetry an agent forwarded, published on this process's channels: the Recorder stores it as its own.
   * Only from an agent in the fleet; each event in the shape its subscribers read, and a record only for an
   * invocation placed there whose record has not come yet. What is refused is counted, not published.
   */
  republish(batch: TelemetryBatch): { accepted: number; refused: number; firstRefusal: string | null } {
    const m = this.#members.get(batch.agent);
    if (!m) throw new ThawError('THAW_E_CLUSTER_MESSAGE_INVALID', `telemetry from agent ${batch.agent}, which is not in the fleet: an agent heartbeats (joins) before it forwards telemetry`);
    let refused = 0;
    let firstRefusal: string | null = null;
    const accepted: TelemetryBatch['events'] = [];
    for (const e of batch.events) {
      const why = this.#refusal(m, e);
      if (why) { refused++; firstRefusal ??= why; } else accepted.push(e);
    }
    if (refused) this.#o.log(`refused ${refused} telemetry event(s) from agent ${m.name}: ${firstRefusal}`);
    this.#publish(batch.agent, accepted);
    return { accepted: accepted.length, refused, firstRefusal };
  }

  /** Why an agent's event is not taken, or null when it is. */
  #refusal(m: Member, { channel, event }: TelemetryBatch['events'][number]): string | null {
    const parsed = forwardedEvents[channel].safeParse(event);
    if (!parsed.success) { const i = parsed.error.issues[0]; return `${channel}: ${i.path.join('.') || '(event)'}: ${i.message}`; }
    if (channel === 'invocationEnd') {
      const id = String(event.id);
      if (m.placed.get(id) !== false) return `invocationEnd: invocation ${id} was not placed on ${m.name}, or its record came already`;
      m.placed.set(id, true);
    }
    if (channel === 'log' && event.invocationId !== null && !m.placed.has(String(event.invocationId))) return `log: invocation ${String(event.invocationId)} was not placed on ${m.name}`;
    return null;
  }

  #publish(agent: string, events: TelemetryBatch['events']) {
    for (const { channel, event } of events) {
      if (channel === 'policyDecision') this.#decisions.add({ ...(event as unknown as TakenDecision), agent });
      const ch = channels[channel];
      if (ch.hasSubscribers) ch.publish(channel === 'instanceState' || channel === 'log' ? { ...event, agent } : event);
    }
  }

  decisions(fn?: string, limit = 100): (TakenDecision & { agent: string })[] { return this.#decisions.list(fn, limit); }

  instances(): InstanceView[] {
    return [...this.#members.values()].flatMap((m) => m.hb.instances.map((i) => ({ ...(i as unknown as InstanceView), agent: m.name })));
  }

  /** The fleet as /thaw/v1/cluster shows it. */
  view() {
    const now = this.#o.clock.monotonic();
    return {
      agents: [...this.#members.values()].map((m) => ({
        name: m.name, url: m.url, lastHeartbeatMsAgo: Math.round(now - m.seenMono), heartbeats: m.beats, capacity: m.hb.capacity, running: m.running,
        instances: m.hb.instances.length, packages: m.hb.packages.length, fetches: m.hb.fetches, reserved: m.hb.reserved,
        snapshots: m.hb.snapshots,
      })),
      placements: { ...this.placements }, replaced: this.replaced, lost: this.lost,
    };
  }

  /** Each reserved config's count spread over the live agents by name (the first ones take the remainder). */
  #assignments(agent: string): ReservedAssignment[] {
    const names = this.members();
    const i = names.indexOf(agent);
    if (i < 0) return [];
    return [...this.#reserved.values()].map((r) => ({ ...r, count: Math.floor(r.count / names.length) + (i < r.count % names.length ? 1 : 0) }));
  }

  setReserved(functionName: string, qualifier: string, version: FunctionVersion | null, count: number): void {
    const k = `${functionName}:${qualifier}`;
    if (count > 0) this.#reserved.set(k, { functionName, qualifier, version, count });
    else this.#reserved.delete(k);
  }

  reservedStatus(functionName: string, qualifier: string): ReservedStatus | null {
    const r = this.#reserved.get(`${functionName}:${qualifier}`);
    if (!r) return null;
    const held = [...this.#members.values()].flatMap((m) => {
      // An agent counts for at most what it was assigned: one back from a pause still holds its old share until it retires it.
      const assigned = this.#assignments(m.name).find((a) => a.functionName === functionName && a.qualifier === qualifier)?.count ?? 0;
      return m.hb.reserved.filter((s) => s.functionName === functionName && s.qualifier === qualifier).map((s) => ({ ...s, ready: Math.min(s.ready, assigned) }));
    });
    const failure = held.find((s) => s.lastError)?.lastError ?? null;
    const ready = held.reduce((a, s) => a + s.ready, 0);
    return { version: r.version?.version ?? '', requested: r.count, available: ready, allocated: ready, failure };
  }

  async retire(functionName: string, keep: ((v: FunctionVersion) => boolean) | undefined, mode: 'delete' | 'update' = 'delete'): Promise<void> {
    await Promise.all([...this.#members.values()].map((m) => {
      const drop = new Set<string>();
      for (const i of m.hb.instances) {
        if (i.functionName !== functionName) continue;
        // keep() reads the version and revision, which is what an instance reports of its version.
        const v = { functionName, version: i.version, revisionId: i.revisionId } as FunctionVersion;
        if (!keep || !keep(v)) drop.add(`${functionName}@${i.version}#${i.revisionId}`);
      }
      return drop.size ? this.#command(m, { op: 'retire', functionName, drop: [...drop], mode }) : undefined;
    }));
  }

  /** A rollout warms on the agent that runs most of the function (the traffic it shifts is there). */
  rollout(functionName: string, qualifier: string, targets: readonly { version: FunctionVersion; count: number }[], reason: string): void {
    const holder = [...this.#members.values()].map((m) => ({ m, n: m.hb.instances.filter((i) => i.functionName === functionName).length })).sort((a, b) => b.n - a.n)[0];
    if (holder) void this.#command(holder.m, { op: 'rollout', functionName, qualifier, targets: [...targets], reason });
  }

  forget(functionName: string): void {
    this.#policies.delete(functionName);
    for (const [k, r] of this.#reserved) if (r.functionName === functionName) this.#reserved.delete(k);
    for (const m of this.#members.values()) void this.#command(m, { op: 'forget', functionName });
  }

  setPolicy(functionName: string, spec: PolicySpec | null): void {
    const text = spec ? formatPolicy(spec) : null;
    if (text) this.#policies.set(functionName, text); else this.#policies.delete(functionName);
    for (const m of this.#members.values()) void this.#command(m, { op: 'policy', functionName, spec: text });
  }

  /**
   * Pre-distribution: a published version's package goes ahead of its first invocation to the agents that
   * ran the function, else to the least loaded few.
   */
  predistribute(v: FunctionVersion): string[] {
    const ran = [...this.#members.values()].filter((m) => m.hb.instances.some((i) => i.functionName === v.functionName));
    const chosen = ran.length ? ran : [...this.#members.values()].sort((a, b) => a.running - b.running || a.name.localeCompare(b.name)).slice(0, this.#o.prefetchAgents);
    const targets = chosen.filter((m) => !m.hb.packages.includes(v.config.codeSha256));
    for (const m of targets) void this.#command(m, { op: 'prefetch', sha256: v.config.codeSha256 });
    this.#buildSnapshot(v, chosen);
    return targets.map((m) => m.name);
  }

  /**
   * A published version's snapshot is built once for the cluster, by the first agent its package goes to;
   * once that agent reports it ready (snapshotReported), the others it went to fetch and decrypt it.
   */
  #buildSnapshot(v: FunctionVersion, chosen: Member[]) {
    if (v.version === LATEST || v.config.snapStart === 'None' || !chosen.length) return;
    this.#snapshotTargets.set(`${v.functionName}@${v.version}`, { version: v, agents: chosen.map((m) => m.name) });
    void this.#command(chosen[0], { op: 'snapshot-build', version: v });
  }

  /** An agent reported a snapshot record (the control plane stored it): a ready one is pushed to the version's other agents. */
  snapshotReported(report: SnapshotReport, version: FunctionVersion): string[] {
    const { record: r } = report;
    const k = `${r.functionName}@${r.version}`;
    const planned = this.#snapshotTargets.get(k);
    if (r.status !== 'pending') this.#snapshotTargets.delete(k);
    if (r.status !== 'ready' || !r.sha256) return [];
    // Planned at publish; else (the control plane restarted meanwhile) every agent.
    const names = new Set(planned?.agents ?? this.members());
    const to = [...this.#members.values()].filter((m) => names.has(m.name) && m.name !== report.agent && !m.hb.snapshots.includes(k));
    for (const m of to) void this.#command(m, { op: 'snapshot-adopt', version, sha256: r.sha256 });
    return to.map((m) => m.name);
  }

  /** A function's (or one version's) snapshots were deleted: every agent drops its copies. */
  dropSnapshots(functionName: string, version: string | null): void {
    for (const k of [...this.#snapshotTargets.keys()]) if (k.startsWith(`${functionName}@`) && (version === null || k === `${functionName}@${version}`)) this.#snapshotTargets.delete(k);
    for (const m of this.#members.values()) void this.#command(m, { op: 'snapshot-drop', functionName, version });
  }

  /** Sends a command; an agent that does not take it is logged (its next heartbeat shows what it holds). */
  async #command(m: Member, c: Command): Promise<void> {
    try {
      const res = await fetch(m.url + COMMAND_PATH, { method: 'POST', body: JSON.stringify(c), headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` }, signal: m.gone.signal });
      if (!res.ok) this.#o.log(`agent ${m.name} refused ${c.op}: ${res.status} ${await res.text()}`);
      else await res.arrayBuffer();
    } catch (err) {
      this.#o.log(`agent ${m.name} did not take ${c.op}: ${causeOf(err)}`);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sweep?.cancel();
  }

  async [Symbol.asyncDispose]() { await this.close(); }
}

/**
 * One chunk into the caller's stream, resolved once it took it (or the caller went away): the agent's
 * answer is not read further meanwhile, which is the backpressure that holds the function on the agent.
 */
function written(req: InvokeRequest, chunk: Buffer): Promise<void> {
  const { stream, signal } = req;
  if (!stream || signal?.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => { signal?.removeEventListener('abort', done); resolve(); };
    signal?.addEventListener('abort', done, { once: true });
    stream.write(chunk, done);
  });
}

/** The agent could not be reached, or the connection broke: whether the handler started decides what follows. */
class Unreachable extends Error {}

const causeOf = (err: unknown) => {
  const e = err as Error & { cause?: Error & { code?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message;
};

/** An agent's error document back as the ThawError it was (unknown codes become THAW_E_INTERNAL). */
function agentError(body: any, fallback: string): ThawError {
  const e = body?.error ?? body;
  const code = typeof e?.code === 'string' && e.code in errorRegistry ? e.code as ErrorCode : 'THAW_E_INTERNAL';
  return new ThawError(code, typeof e?.message === 'string' ? e.message : fallback);
}
