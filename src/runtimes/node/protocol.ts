// The instance protocol: typed messages between the agent (host) and a runtime inside a sandbox, carried
// as newline-delimited JSON on the unit's fd 3 (src/sandbox/channel.ts). Types, and the check of what a
// runtime sends; the Node bootstrap (bootstrap.cjs) speaks it from the other side.

export interface SerializedError {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

/** Everything a generic runtime needs to become an instance of one function version. */
export interface InitSpec {
  functionName: string;
  version: string;
  functionArn: string;
  memoryMb: number;
  /** Absolute path of the handler file and the export to call. */
  file: string;
  exportName: string;
  codeDir: string;
  /** The function's own variables plus the runtime's; applied before the handler module loads. */
  env: Record<string, string>;
  /** V8 compile cache directory for this version (module.enableCompileCache); null to disable. */
  compileCacheDir: string | null;
  /** The instance's egress grant, presented by the relay to the egress proxy; null: no egress. */
  egressToken?: string | null;
  /**
   * The code tree holds only what init read at the version's first start; the rest is being filled in while
   * the marker file `.thaw-filling` is in it (codestore/ondemand.ts). The runtime waits for a file it does not find there.
   */
  partial?: boolean;
  /** Report the code files init read with initDone (the first start of this package and handler). */
  recordFiles?: boolean;
}

/** At most this many files are recorded as init's (a bundle of more would not be small). */
export const MAX_INIT_FILES = 5000;

export interface InvokeSpec {
  id: string;
  /** The event, as JSON text. */
  payload: string;
  /** Epoch ms by which the handler must finish (context.getRemainingTimeInMillis()). */
  deadline: number;
  clientContext: string | null;
  /** A scheduled warm-up (context.warmup): the handler may return at once. */
  warmup?: boolean;
  /** The X-Ray trace header the handler sees in _X_AMZN_TRACE_ID (the caller's, or a fresh one). */
  traceId?: string;
  /** The W3C traceparent of the handler's span, in TRACEPARENT (OpenTelemetry's environment carrier) and context.traceparent. */
  traceparent?: string;
}

export type HostMessage =
  | { type: 'init'; spec: InitSpec }
  | { type: 'invoke'; spec: InvokeSpec }
  | { type: 'prepareFreeze' }
  | { type: 'ping'; id: number }
  /** A streamed response's bytes have left the host: the runtime may send that many more. */
  | { type: 'streamAck'; id: string; bytes: number }
  /** The response stream is over on the host's side (the client went away, a limit): its writes now fail. */
  | { type: 'streamAbort'; id: string; error: SerializedError }
  | { type: 'callResult'; callId: number; ok: true; payload: string }
  | { type: 'callResult'; callId: number; ok: false; error: SerializedError };

export type RuntimeMessage =
  | { type: 'ready'; pid: number; restored: boolean }
  | { type: 'freezeReady'; heapUsedBytes: number }
  | { type: 'pong'; id: number }
  /** `files`: the code files init read, relative to the code dir, when the init asked for them. */
  | { type: 'initDone'; durationMs: number; files?: string[] }
  | { type: 'initError'; error: SerializedError; durationMs: number }
  | { type: 'log'; invocationId: string | null; stream: 'stdout' | 'stderr'; text: string }
  /** A streaming handler's first write (or its end with none): what the stream carries. Before any chunk. */
  | { type: 'streamStart'; id: string; contentType: string }
  /** Bytes a streaming handler wrote, base64, at most STREAM_CHUNK_BYTES each; the result follows the last. */
  | { type: 'chunk'; id: string; data: string }
  | { type: 'result'; id: string; ok: true; payload: string }
  | { type: 'result'; id: string; ok: false; error: SerializedError }
  | { type: 'call'; callId: number; invocationId: string; functionName: string; payload: string }
  | { type: 'fatal'; invocationIds: string[]; error: SerializedError };

/**
 * Response streaming: a runtime sends a streamed response in chunks of at most this many bytes, and has at
 * most STREAM_WINDOW_BYTES sent and not acknowledged (streamAck) at any time. The host acknowledges a chunk
 * once it has left for the client, so a function that writes faster than its client reads waits in its
 * own stream (its write callbacks and write()'s false), never in the host's memory.
 */
export const STREAM_CHUNK_BYTES = 256 * 1024;
export const STREAM_WINDOW_BYTES = 1024 * 1024;
const MAX_CHUNK_BASE64 = Math.ceil(STREAM_CHUNK_BYTES / 3) * 4;

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isError = (v: unknown): v is SerializedError => typeof v === 'object' && v !== null
  && isStr((v as SerializedError).errorType) && isStr((v as SerializedError).errorMessage)
  && Array.isArray((v as SerializedError).trace) && (v as SerializedError).trace.every(isStr);

/**
 * A message from a runtime, checked: the function's code shares the process and can write anything on the
 * channel, so the host believes nothing it has not checked. Throws with the reason when it is malformed.
 */
export function checkRuntimeMessage(m: unknown): RuntimeMessage {
  const r = m as Record<string, unknown>;
  const ok = (() => {
    switch (r.type) {
      case 'ready': return isNum(r.pid) && typeof r.restored === 'boolean';
      case 'freezeReady': return isNum(r.heapUsedBytes);
      case 'pong': return isNum(r.id);
      case 'initDone': return isNum(r.durationMs) && (r.files === undefined || (Array.isArray(r.files) && r.files.length <= MAX_INIT_FILES && r.files.every((f) => isStr(f) && f.length > 0 && f.length <= 4096)));
      case 'initError': return isError(r.error) && isNum(r.durationMs);
      case 'log': return (r.invocationId === null || isStr(r.invocationId)) && (r.stream === 'stdout' || r.stream === 'stderr') && isStr(r.text);
      case 'streamStart': return isStr(r.id) && isStr(r.contentType) && /^[\x20-\x7e]{1,256}$/.test(r.contentType);
      case 'chunk': return isStr(r.id) && isStr(r.data) && r.data.length <= MAX_CHUNK_BASE64 && r.data.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(r.data);
      case 'result': return isStr(r.id) && (r.ok === true ? isStr(r.payload) : r.ok === false && isError(r.error));
      case 'call': return isNum(r.callId) && isStr(r.invocationId) && isStr(r.functionName) && isStr(r.payload);
      case 'fatal': return Array.isArray(r.invocationIds) && r.invocationIds.every(isStr) && isError(r.error);
      default: return false;
    }
  })();
  if (!ok) throw new Error(`malformed ${typeof r.type === 'string' ? JSON.stringify(r.type.slice(0, 40)) : 'untyped'} message`);
  return r as unknown as RuntimeMessage;
}
