// What Lambda's contract says an instance sees and what its invocations report, as pure functions: the
// runtime's and the function's environment, the error shape of a timed-out or crashed invocation, and the
// REPORT log line, trace headers and log stream names. Imports node:crypto and types of src/core, src/runtimes and src/sandbox.
import { createHash, randomBytes } from 'node:crypto';
import type { FunctionVersion, StartKind, TraceContext } from '../core/types.ts';
import type { SerializedError } from '../runtimes/index.ts';
import type { SandboxExit } from '../sandbox/index.ts';

/**
 * What every runtime gets before it knows its function: a clean environment, nothing of the host's.
 * `runtime` is Lambda's name of the runtime kind (nodejs22.x), as AWS_EXECUTION_ENV carries it.
 */
export function runtimeEnv(region: string, home: string, runtime: string): Record<string, string> {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    TZ: 'UTC',
    HOME: home,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_EXECUTION_ENV: `AWS_Lambda_${runtime}`,
    THAW_RUNTIME: runtime,
  };
}

/** How an instance came to be initialized, as Lambda's AWS_LAMBDA_INITIALIZATION_TYPE says it. */
export type InitializationType = 'on-demand' | 'provisioned-concurrency' | 'snap-start';

/**
 * The function's own variables and Lambda's, with the code directory as the runtime inside sees it; with
 * an instance, its log stream and how it was initialized (a snapshot build has neither yet).
 */
export function functionEnv(v: FunctionVersion, codeDir: string, instance?: { logStream: string; initializationType: InitializationType }): Record<string, string> {
  return {
    ...v.config.env,
    AWS_LAMBDA_FUNCTION_NAME: v.functionName,
    AWS_LAMBDA_FUNCTION_VERSION: v.version,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(v.config.memoryMb),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${v.functionName}`,
    // As Lambda sets them for LoggingConfig JSON: the runtime then writes JSON records and drops lower levels.
    ...(v.config.logging?.format === 'JSON' ? { AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: v.config.logging.applicationLogLevel } : {}),
    ...(instance ? { AWS_LAMBDA_LOG_STREAM_NAME: instance.logStream, AWS_LAMBDA_INITIALIZATION_TYPE: instance.initializationType } : {}),
    LAMBDA_TASK_ROOT: codeDir,
    _HANDLER: v.config.handler,
  };
}

/** Lambda's log stream name for an instance: `YYYY/MM/DD/[version]` and 32 hex digits of its own. */
export function logStreamName(version: string, instanceId: string, at: number): string {
  const d = new Date(at);
  const day = `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}`;
  const hex = createHash('sha256').update(instanceId).digest('hex').slice(0, 32);
  return `${day}/[${version}]${hex}`;
}

/**
 * An X-Ray trace header as Lambda hands it to a function: a fresh root, sampled when the function's
 * TracingConfig is Active (tracers then record segments), else unsampled (PassThrough). Given the
 * invocation's W3C trace, the root is that trace in X-Ray's spelling (1-first 8 hex digits-the other 24, as
 * X-Ray reads W3C ids) and the parent its handler span, so both headers name one trace.
 */
export function newTraceHeader(at: number, sampled = false, w3c?: TraceContext | null): string {
  const hex = w3c ? w3c.traceId.slice(8) + w3c.handlerSpanId : randomBytes(20).toString('hex');
  const epoch = w3c ? w3c.traceId.slice(0, 8) : Math.floor(at / 1000).toString(16).padStart(8, '0');
  return `Root=1-${epoch}-${hex.slice(0, 24)};Parent=${hex.slice(24)};Sampled=${sampled ? 1 : 0}`;
}

/** A caller's X-Amzn-Trace-Id, kept when it names a well-formed root (its sampling decision too); else a fresh one. */
export function traceHeaderFrom(header: string | undefined | null, at: number, sampled = false, w3c?: TraceContext | null): string {
  if (header && header.length <= 256 && /(^|;)\s*Root=1-[0-9a-f]{8}-[0-9a-f]{24}(;|$)/.test(header) && /^[\x20-\x7e]+$/.test(header)) return header;
  return newTraceHeader(at, sampled, w3c);
}

/** Lambda's cap on a synchronous response. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

export function responseTooLargeError(bytes: number): SerializedError {
  return { errorType: 'Function.ResponseSizeTooLarge', errorMessage: `Response payload size (${bytes} bytes) exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).`, trace: [] };
}

const rid = (invocationId: string) => `RequestId: ${invocationId} Error:`;

export function timeoutError(invocationId: string, timeoutMs: number): SerializedError {
  return { errorType: 'Sandbox.Timedout', errorMessage: `${rid(invocationId)} Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`, trace: [] };
}

/**
 * Why a runtime that died mid-invocation failed it: the instance's memory limit (the kernel's OOM killer
 * acted in its cgroup), the V8 heap limit, what the runtime reported before dying, or its exit.
 */
export function crashError(invocationId: string, memoryMb: number, exit: SandboxExit, reported: SerializedError | null, stderrTail: string, heapLimitMb: number): SerializedError {
  const how = exit.signal ? `signal: ${exit.signal}` : `exit status ${exit.code}`;
  if (exit.oomKilled) {
    return { errorType: 'Runtime.OutOfMemory', errorMessage: `${rid(invocationId)} Runtime exited with error: ${how} (out of memory: the instance used all of its ${memoryMb} MB)`, trace: [] };
  }
  if (/heap out of memory|Reached heap limit/.test(stderrTail)) {
    return { errorType: 'Runtime.OutOfMemory', errorMessage: `${rid(invocationId)} Runtime exited with error: ${how} (out of memory: the ${memoryMb} MB setting allows a ${heapLimitMb} MB heap)`, trace: [] };
  }
  if (reported) return { ...reported, errorMessage: `${rid(invocationId)} ${reported.errorMessage}` };
  return { errorType: 'Runtime.ExitError', errorMessage: `${rid(invocationId)} Runtime exited with error: ${how}`, trace: [] };
}

/** Lambda's REPORT line; Max Memory Used is the instance's peak (its cgroup's, where it has one). */
export function reportLine(r: { invocationId: string; handlerMs: number; billedMs: number; memoryMb: number; peakMemoryBytes: number | null; start: StartKind; initMs: number }): string {
  const maxMb = r.peakMemoryBytes === null || Number.isNaN(r.peakMemoryBytes) ? null : Math.ceil(r.peakMemoryBytes / 1024 / 1024);
  return `REPORT RequestId: ${r.invocationId}\tDuration: ${r.handlerMs.toFixed(2)} ms\tBilled Duration: ${r.billedMs} ms\tMemory Size: ${r.memoryMb} MB` +
    (maxMb ? `\tMax Memory Used: ${maxMb} MB` : '') + (r.start !== 'warm' && r.start !== 'thawed' && r.start !== 'paged' ? `\tInit Duration: ${r.initMs.toFixed(2)} ms` : '');
}

/**
 * NODE_PATH as Lambda sets it, with the paths as the instance sees them: its layers' nodejs/node<major>/
 * node_modules and nodejs/node_modules (at /opt where the sandbox has one; the merged tree's host path
 * under the process driver; none without layers there), then the code. Lambda's /var/runtime entries are
 * left out: Thaw's runtime ships no modules for functions to require.
 */
export function nodePath(inside: { codeDir: string; optDir?: string | null }, nodeMajor: number): string {
  const opt = inside.optDir ? [`${inside.optDir}/nodejs/node${nodeMajor}/node_modules`, `${inside.optDir}/nodejs/node_modules`] : [];
  return [...opt, inside.codeDir].join(':');
}
