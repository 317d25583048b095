// The instance protocol: typed messages between the agent (host) and a runtime inside a sandbox, carried
// over the Node IPC channel. Types only; the Node bootstrap (bootstrap.mjs) speaks it from the other side.

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
}

export interface InvokeSpec {
  id: string;
  /** The event, as JSON text. */
  payload: string;
  /** Epoch ms by which the handler must finish (context.getRemainingTimeInMillis()). */
  deadline: number;
  clientContext: string | null;
  /** A scheduled warm-up (context.warmup): the handler may return at once. */
  warmup?: boolean;
}

export type HostMessage =
  | { type: 'init'; spec: InitSpec }
  | { type: 'invoke'; spec: InvokeSpec }
  | { type: 'prepareFreeze' }
  | { type: 'ping'; id: number }
  | { type: 'callResult'; callId: number; ok: true; payload: string }
  | { type: 'callResult'; callId: number; ok: false; error: SerializedError };

export type RuntimeMessage =
  | { type: 'ready'; pid: number; restored: boolean }
  | { type: 'freezeReady'; heapUsedBytes: number }
  | { type: 'pong'; id: number }
  | { type: 'initDone'; durationMs: number }
  | { type: 'initError'; error: SerializedError; durationMs: number }
  | { type: 'log'; invocationId: string | null; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'result'; id: string; ok: true; payload: string }
  | { type: 'result'; id: string; ok: false; error: SerializedError }
  | { type: 'call'; callId: number; invocationId: string; functionName: string; payload: string }
  | { type: 'fatal'; invocationIds: string[]; error: SerializedError };
