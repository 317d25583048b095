// The messages between a control plane and its agents, checked on receipt with zod: an agent's join and
// heartbeat (what it is and holds), the control plane's answer (what it should know and keep), an
// invocation sent to an agent, the commands that carry config changes, and forwarded telemetry. A message
// that does not parse is THAW_E_CLUSTER_MESSAGE_INVALID, never half applied. Imports src/core and zod.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ThawError } from '../core/errors.ts';
import { COLD_START_CAUSES, INSTANCE_STATES, PHASES, START_KINDS, type FunctionVersion, type InvocationRecord, type InvocationTrigger, type TraceContext } from '../core/types.ts';

const sha = z.string().regex(/^[0-9a-f]{64}$/);
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/);
/** Counts an agent reports: whole, never negative, within what one machine could hold (a key is not trusted with more). */
const count = z.number().int().min(0).max(100_000);
/** 64 TiB, in MB: more memory than any one machine has. */
const MAX_MEMORY_MB = 64 * 1024 * 1024;
const memoryMb = z.number().min(0).max(MAX_MEMORY_MB);

/** Versions travel whole: the control plane resolved them from its store, the agent runs them as given. */
const functionVersion = z.looseObject({
  functionName: z.string().min(1), version: z.string().min(1), revisionId: z.string().min(1),
  config: z.looseObject({ codeSha256: sha, memoryMb: z.number().positive(), runtime: z.string() }),
}).transform((v) => v as unknown as FunctionVersion);

/** An instance as the agent's /thaw/v1/instances shows it (the fields placement reads are checked). */
const heldInstance = z.looseObject({
  id: z.string(), functionName: z.string(), version: z.string(), revisionId: z.string(),
  state: z.string(), memoryMb, reserved: z.boolean(),
});
export type HeldInstance = z.infer<typeof heldInstance>;

export const heartbeatSchema = z.object({
  name,
  /** Where the control plane and peers reach this agent's API. */
  url: z.url(),
  capacity: z.object({ memoryBudgetMb: memoryMb.positive(), cpus: z.number().int().positive().max(4096) }),
  instances: z.array(heldInstance).max(100_000),
  /** Packages this agent holds (and serves to peers), by hash. */
  packages: z.array(sha).max(100_000),
  busy: count,
  reserved: z.array(z.object({ functionName: z.string(), qualifier: z.string(), requested: count, ready: count, lastError: z.string().max(4096).nullable() })).max(10_000).default([]),
  fetches: z.object({ peer: z.number().int().min(0), origin: z.number().int().min(0), local: z.number().int().min(0) }).default({ peer: 0, origin: 0, local: 0 }),
  /** The node's own gauges (as its /metrics reads them), shown on the control plane's /metrics under its name. */
  metrics: z.object({
    pool: z.array(z.object({ runtime: z.string(), memoryMb: z.number(), ready: z.number(), starting: z.number(), target: z.number() })).max(10_000),
    /** maxBytes null: unbounded. */
    codeCache: z.object({ entries: z.number(), bytes: z.number(), maxBytes: z.number().nullable(), hits: z.number(), misses: z.number(), evictions: z.number() }),
    memory: z.object({
      ramBytes: z.number(), swapBytes: z.number(), swapBudgetBytes: z.number(),
      tiers: z.record(z.string(), z.object({ instances: z.number(), residentBytes: z.number(), compressedBytes: z.number(), swappedBytes: z.number() })),
    }),
  }).optional(),
  /** Snapshots decrypted on this agent, ready for restores, as `function@version`. */
  snapshots: z.array(z.string()).max(100_000).default([]),
  /** The fingerprint of the snapshot key it holds (snapshotKeyFingerprint), null for none: an answer carries the cluster's key until they match. */
  snapshotKey: z.string().max(64).nullable().default(null),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export interface ReservedAssignment { functionName: string; qualifier: string; version: FunctionVersion | null; count: number }

/** What the control plane answers a heartbeat with. */
export interface HeartbeatAnswer {
  /** The bearer token the control plane (and peers) present to this agent; it changes when the control plane restarts. */
  token: string;
  heartbeatMs: number;
  peers: { name: string; url: string; packages: string[] }[];
  /** The reserved instances this agent keeps (the control plane spreads each config over the agents). */
  reserved: ReservedAssignment[];
  /** Functions' own policies (absent: the agent's default). */
  policies: { functionName: string; spec: string }[];
  /** The cluster's snapshot key (base64), to an agent that said it lacks it: every agent decrypts what one built. */
  snapshotKey?: string;
}

export const heartbeatAnswerSchema = z.object({
  token: z.string().min(16),
  heartbeatMs: z.number().int().positive(),
  peers: z.array(z.object({ name, url: z.url(), packages: z.array(sha) })),
  reserved: z.array(z.object({ functionName: z.string(), qualifier: z.string(), version: functionVersion.nullable(), count: z.number().int().min(0) })),
  policies: z.array(z.object({ functionName: z.string(), spec: z.string() })),
  snapshotKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/).optional(),
});

/** An invocation as the control plane sends it to an agent (Agent.invoke's request, minus what is process-local). */
export const invokeMessageSchema = z.object({
  invocationId: z.string().min(1),
  version: functionVersion,
  qualifier: z.string(),
  payload: z.string(),
  trigger: z.string().transform((t) => t as InvocationTrigger),
  callerInvocationId: z.string().nullable(),
  clientContext: z.string().nullable(),
  traceId: z.string().nullable(),
  concurrencyLimit: z.number().int().positive().nullable(),
  receivedAt: z.number(),
  /** The invocation's W3C trace, so the agent's spans join the caller's trace. */
  trace: z.looseObject({}).nullable().optional().transform((t) => t as unknown as TraceContext | null | undefined),
  /** Where the control plane placed it and why, for the invocation record. */
  placement: z.object({ agent: name, reason: z.string().max(32) }).nullable().optional(),
  /** A streamed invocation: the answer carries the response stream's start and chunks before the result. */
  stream: z.boolean().optional(),
});
export type InvokeMessage = z.output<typeof invokeMessageSchema>;

/** Config changes the control plane carries to the agents that hold a function. */
export const commandSchema = z.discriminatedUnion('op', [
  /** Stops the instances of these version keys (functionKey) of a function. */
  z.object({ op: z.literal('retire'), functionName: z.string(), drop: z.array(z.string()), mode: z.enum(['delete', 'update']) }),
  z.object({ op: z.literal('rollout'), functionName: z.string(), qualifier: z.string(), targets: z.array(z.object({ version: functionVersion, count: z.number().int().min(0) })), reason: z.string() }),
  z.object({ op: z.literal('forget'), functionName: z.string() }),
  z.object({ op: z.literal('policy'), functionName: z.string(), spec: z.string().nullable() }),
  /** Pre-distribution: fetch this package now, ahead of its first invocation here. */
  z.object({ op: z.literal('prefetch'), sha256: sha }),
  /** Builds this version's snapshot here (one agent per version) into the shared origin, and reports its record. */
  z.object({ op: z.literal('snapshot-build'), version: functionVersion }),
  /** Pre-distribution of a snapshot another agent built: fetched and decrypted onto this agent's tmpfs now. */
  z.object({ op: z.literal('snapshot-adopt'), version: functionVersion, sha256: sha }),
  /** A function's (or one version's) snapshots are gone: the local copies go. */
  z.object({ op: z.literal('snapshot-drop'), functionName: z.string(), version: z.string().nullable() }),
]);
export type Command = z.output<typeof commandSchema>;

/**
 * The events an agent forwards, each in the shape its subscribers (recorder, metrics, traces, tail) read on
 * the control plane: a forged or broken one is refused here rather than thrown inside a subscriber there.
 */
const short = z.string().max(256);
const ms = z.number().min(0).max(1e13);
const recordEvent = z.looseObject({
  id: short.min(1), functionName: short.min(1), version: short, qualifier: short, instanceId: short.nullable(),
  start: z.enum(START_KINDS).nullable(), trigger: z.enum(['api', 'http', 'event', 'invoke', 'provision', 'prewarm', 'timer', 'warmup']),
  callerInvocationId: short.nullable(), receivedAt: ms, durationMs: ms, initMs: ms, handlerMs: ms, billedMs: ms, memoryMb,
  phases: z.array(z.object({ name: z.enum(PHASES), offsetMs: z.number().max(1e13), durationMs: ms })).max(64),
  outcome: z.enum(['success', 'error', 'timeout', 'crash', 'init_error', 'throttled', 'aborted', 'platform_error']),
  errorType: short.nullable(), errorMessage: z.string().max(256 * 1024).nullable(),
  trace: z.looseObject({ traceId: z.string().regex(/^[0-9a-f]{32}$/), parentSpanId: z.string().max(16).nullable(), handlerSpanId: z.string().max(16), sampled: z.boolean() }).nullable().optional(),
  cause: z.looseObject({ cause: z.enum(COLD_START_CAUSES), detail: z.string().max(4096), facts: z.looseObject({}) }).optional(),
  placement: z.object({ agent: name, reason: short }).nullable().optional(),
});
const logEvent = z.object({
  functionName: short.min(1), version: short, instanceId: short, invocationId: short.nullable(), stream: z.enum(['stdout', 'stderr', 'platform']), at: ms, line: z.string().max(256 * 1024),
});
const instanceStateEvent = z.looseObject({
  instanceId: short, functionName: short.nullable(), version: short.nullable(), from: z.enum(INSTANCE_STATES).nullable(), to: z.enum(INSTANCE_STATES), reason: z.string().max(4096), at: ms,
});
const policyDecisionEvent = z.looseObject({
  at: ms, wallAt: ms, fn: short, action: z.enum(['freeze', 'page', 'stop', 'evict', 'prewarm']), reason: z.string().max(4096), outcome: z.enum(['done', 'skipped']),
});

/** Each forwarded event's shape, checked one by one (fleet.ts): one bad event is dropped, not the batch. */
export const forwardedEvents = { invocationEnd: recordEvent, log: logEvent, instanceState: instanceStateEvent, policyDecision: policyDecisionEvent };

/** Telemetry an agent forwards: diagnostics_channel events by channel name, republished by the control plane. */
export const telemetrySchema = z.object({
  agent: name,
  events: z.array(z.object({ channel: z.enum(['invocationEnd', 'log', 'instanceState', 'policyDecision']), event: z.looseObject({}) })).max(100_000),
});
export type TelemetryBatch = z.infer<typeof telemetrySchema>;

/** A snapshot record an agent reports (it built or failed to build the snapshot): the control plane's store keeps it. */
export const snapshotReportSchema = z.object({
  agent: name,
  record: z.object({
    functionName: z.string().min(1), version: z.string().regex(/^\d+$/), status: z.enum(['pending', 'ready', 'failed']), reason: z.string().nullable(),
    sha256: sha.nullable(), sizeBytes: z.number().int().min(0).nullable(), buildMs: z.number().int().min(0).nullable(), updatedAt: z.number(),
  }),
});
export type SnapshotReport = z.infer<typeof snapshotReportSchema>;

/** context.invoke from an instance on an agent: the control plane resolves and places it. */
export const callSchema = z.object({ callerInvocationId: z.string(), functionName: z.string(), payload: z.string() });

/**
 * The agent's answer to an invocation, one JSON document per line: started first, then the end; a streamed
 * one has its stream's start (content type) and its chunks (base64, in order) in between.
 */
export type InvokeLine =
  | { started: true }
  | { streamStart: { contentType: string } }
  | { chunk: string }
  | { result: { record: InvocationRecord; payload: string; functionError: 'Unhandled' | null; logs: string[] } }
  | { error: { code: string; message: string } };

/** Names a snapshot key without revealing it (heartbeats carry it; the key itself goes only in answers). */
export function snapshotKeyFingerprint(keyBase64: string): string {
  return createHash('sha256').update(`thaw snapshot key ${keyBase64}`).digest('hex').slice(0, 16);
}

/** Parses a message or throws THAW_E_CLUSTER_MESSAGE_INVALID naming what was wrong. */
export function parseMessage<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new ThawError('THAW_E_CLUSTER_MESSAGE_INVALID', `${what}: ${issue.path.join('.') || '(message)'}: ${issue.message}`);
}
