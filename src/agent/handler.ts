// Running one invocation on an instance and what it comes to: the START, END and REPORT lines, the timeout,
// the caller going away (a streamed response cut, else the instance stopped), the response's size caps,
// the Lambda error shape of a crash, and the invocation record published for it (with its cold start's
// cause). The agent picks or starts the instance; this runs the handler on it. Imports src/core, types of
// src/runtimes, and the agent's instance, Lambda shapes, streaming and timing.
import type { Clock } from '../core/clock.ts';
import { ThawError } from '../core/errors.ts';
import { publishInvocationEnd } from '../core/events.ts';
import { traceparentOf } from '../core/trace.ts';
import type { ColdStartCause, InvocationOutcome, InvocationRecord, StartKind } from '../core/types.ts';
import { heapLimitMb, type InvokeOutcome, type SerializedError } from '../runtimes/index.ts';
import type { InvokeRequest, InvokeResult } from './agent.ts';
import type { Instance } from './instance.ts';
import { crashError, MAX_RESPONSE_BYTES, reportLine, responseTooLargeError, timeoutError, traceHeaderFrom } from './lambda.ts';
import { InvocationSink, clientGoneError } from './streaming.ts';
import { round, type Phases } from './timing.ts';

export interface HandlerRunOptions {
  clock: Clock;
  /** A platform line in the instance's function log, kept with the invocation's lines when it has one. */
  log(instance: Instance, invocationId: string | null, text: string): void;
  /** The invocation's log lines so far (START to REPORT). */
  logsOf(invocationId: string): string[] | undefined;
  /** The cause of the cold start the invocation needed, if it needed one (`thaw why`). */
  causeOf(invocationId: string): ColdStartCause | undefined;
  /** What the ladder path cost an invocation before its handler started. */
  startCost(start: StartKind, ms: number): void;
}

export class HandlerRuns {
  readonly #o: HandlerRunOptions;

  constructor(options: HandlerRunOptions) { this.#o = options; }

  /** Runs req's handler on the instance, unless its caller already went away (then THAW_E_ABORTED, recorded). */
  run(instance: Instance, req: InvokeRequest, phases: Phases, start: StartKind, initMs: number): Promise<InvokeResult> {
    if (req.signal?.aborted) {
      this.publishRecord(req, { start, instanceId: instance.id, phases: phases.spans, initMs, handlerMs: 0, outcome: 'aborted', errorType: null, errorMessage: 'the caller went away before the handler started' });
      throw new ThawError('THAW_E_ABORTED', 'the invocation was cancelled before the handler started');
    }
    return this.#invokeOn(instance, req, phases, start, initMs);
  }

  async #invokeOn(instance: Instance, req: InvokeRequest, phases: Phases, start: StartKind, initMs: number): Promise<InvokeResult> {
    const { clock } = this.#o;
    const v = req.version;
    const timeoutMs = v.config.timeoutMs;
    instance.acquire();
    this.#o.log(instance, req.invocationId, `START RequestId: ${req.invocationId} Version: ${v.version}`);
    const handlerStart = clock.monotonic();
    if (req.trigger !== 'prewarm' && req.trigger !== 'provision') this.#o.startCost(start, handlerStart - req.receivedMono);
    let timedOut = false;
    let aborted = false;
    const timer = clock.setTimer(() => { timedOut = true; instance.conn.sandbox.kill('timeout'); }, timeoutMs);
    // What a streaming handler writes: to the caller's stream as it comes, or collected for a buffered caller.
    const sink = new InvocationSink({
      target: req.stream, executedVersion: v.version, invocationId: req.invocationId, keep: req.trigger !== 'event' && req.trigger !== 'timer',
      onCut: (error) => instance.conn.abortStream(req.invocationId, error),
    });
    // A streaming handler's response ends where its client went away: its writes fail, its instance lives on.
    // Any other handler (one that has not started a stream) is stopped with its instance, as when buffered.
    const onAbort = () => {
      aborted = true;
      if (req.stream && sink.started) instance.conn.abortStream(req.invocationId, clientGoneError);
      else instance.conn.sandbox.kill('caller went away');
    };
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let outcome: InvokeOutcome;
    req.onHandlerStart?.();
    try {
      outcome = await instance.conn.invoke({ id: req.invocationId, payload: req.payload, deadline: clock.now() + timeoutMs, clientContext: req.clientContext, warmup: req.trigger === 'warmup', traceId: traceHeaderFrom(req.traceId, clock.now(), v.config.tracingMode === 'Active', req.trace), traceparent: req.trace ? traceparentOf(req.trace) : undefined }, sink);
    } finally {
      timer.cancel();
      req.signal?.removeEventListener('abort', onAbort);
    }
    const handlerEnd = clock.monotonic();
    phases.add('handler', handlerStart, handlerEnd);
    if (outcome.kind !== 'crash') instance.release();
    // A streamed invocation whose client went away: its handler saw the stream fail and finished.
    if (aborted && req.stream && outcome.kind !== 'crash') throw this.#aborted(req, instance, phases, start, initMs, handlerEnd - handlerStart, 'the caller went away; its response stream was closed');
    if (sink.cut) return this.finish(req, instance, phases, start, initMs, handlerEnd - handlerStart, 'error', sink.cut);

    if (outcome.kind === 'ok') {
      // A streaming handler's response is its stream, not its return value.
      if (sink.started) return this.finish(req, instance, phases, start, initMs, handlerEnd - handlerStart, 'success', null, req.stream ? '' : sink.body());
      // Lambda's cap on a synchronous response: larger ones are the function's error, not its result.
      // (An event's or a timer's result goes nowhere a caller waits; it is not failed for its size.)
      const bytes = req.trigger === 'event' || req.trigger === 'timer' ? 0 : Buffer.byteLength(outcome.payload);
      if (bytes > MAX_RESPONSE_BYTES) return this.finish(req, instance, phases, start, initMs, handlerEnd - handlerStart, 'error', responseTooLargeError(bytes));
      return this.finish(req, instance, phases, start, initMs, handlerEnd - handlerStart, 'success', null, outcome.payload);
    }
    if (outcome.kind === 'error') return this.finish(req, instance, phases, start, initMs, handlerEnd - handlerStart, 'error', outcome.error);
    if (timedOut) return this.finish(req, instance, phases, start, initMs, handlerEnd - handlerStart, 'timeout', timeoutError(req.invocationId, timeoutMs));
    if (aborted) throw this.#aborted(req, instance, phases, start, initMs, handlerEnd - handlerStart, 'the caller went away; the instance running the invocation was stopped');
    const error = crashError(req.invocationId, v.config.memoryMb, outcome.exit, outcome.error, outcome.stderrTail, heapLimitMb(v.config.memoryMb));
    return this.finish(req, instance, phases, start, initMs, handlerEnd - handlerStart, 'crash', error);
  }

  /** Records an invocation whose caller went away; the error to throw. */
  #aborted(req: InvokeRequest, instance: Instance, phases: Phases, start: StartKind, initMs: number, handlerMs: number, message: string): ThawError {
    this.publishRecord(req, { start, instanceId: instance.id, phases: phases.spans, initMs, handlerMs, outcome: 'aborted', errorType: null, errorMessage: 'the caller went away' });
    return new ThawError('THAW_E_ABORTED', message);
  }

  /** Ends an invocation that ran (or failed its init): its record, END and REPORT lines, and the result. */
  finish(req: InvokeRequest, instance: Instance, phases: Phases, start: StartKind, initMs: number, handlerMs: number,
    outcome: InvocationOutcome, error: SerializedError | null, payload?: string): InvokeResult {
    const record = this.publishRecord(req, {
      start, instanceId: instance.id, phases: phases.spans, initMs, handlerMs, outcome,
      errorType: error?.errorType ?? null, errorMessage: error?.errorMessage ?? null,
    });
    this.#o.log(instance, req.invocationId, `END RequestId: ${req.invocationId}`);
    this.#o.log(instance, req.invocationId, reportLine({
      invocationId: req.invocationId, handlerMs, billedMs: record.billedMs, memoryMb: record.memoryMb,
      peakMemoryBytes: instance.conn.sandbox.peakMemoryBytes(), start, initMs,
    }));
    return {
      record,
      payload: error ? JSON.stringify(error) : payload ?? 'null',
      functionError: error ? 'Unhandled' : null,
      logs: this.#o.logsOf(req.invocationId) ?? [],
    };
  }

  /** The invocation's record, published (thaw:invocation:end); a cold start's cause goes with it. */
  publishRecord(req: InvokeRequest, r: Pick<InvocationRecord, 'start' | 'instanceId' | 'phases' | 'initMs' | 'handlerMs' | 'outcome' | 'errorType' | 'errorMessage'>): InvocationRecord {
    const cause = this.#o.causeOf(req.invocationId);
    const record: InvocationRecord = {
      id: req.invocationId,
      functionName: req.version.functionName,
      version: req.version.version,
      qualifier: req.qualifier,
      trigger: req.trigger,
      callerInvocationId: req.callerInvocationId,
      receivedAt: req.receivedAt,
      durationMs: round(this.#o.clock.monotonic() - req.receivedMono),
      memoryMb: req.version.config.memoryMb,
      ...r,
      initMs: round(r.initMs),
      handlerMs: round(r.handlerMs),
      billedMs: r.start ? Math.ceil(r.initMs + r.handlerMs) : 0,
      trace: req.trace ?? null,
      ...(req.placement ? { placement: req.placement } : {}),
      ...(cause && r.start && r.start !== 'warm' && r.start !== 'thawed' && r.start !== 'paged' ? { cause } : {}),
    };
    publishInvocationEnd(record);
    return record;
  }
}
