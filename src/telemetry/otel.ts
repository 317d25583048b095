// OpenTelemetry export: every invocation record becomes a trace over OTLP/HTTP (the OpenTelemetry JS SDK's
// exporter, configured by the standard OTEL_* variables): a root span per invocation, one child per phase
// (the cold-start phases, init, handler) at the times the record gives, so a waterfall in Jaeger or Tempo
// is the one `thaw trace` draws. Loaded only when an OTLP endpoint is set (telemetry/index.ts).
// Imports src/core and the OpenTelemetry SDK.
import diagnostics_channel from 'node:diagnostics_channel';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Context } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, RandomIdGenerator, type IdGenerator } from '@opentelemetry/sdk-trace-base';
import { ATTR_ERROR_TYPE, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import {
  ATTR_CLOUD_REGION, ATTR_CLOUD_RESOURCE_ID, ATTR_FAAS_COLDSTART, ATTR_FAAS_INVOCATION_ID, ATTR_FAAS_MAX_MEMORY, ATTR_FAAS_NAME,
  ATTR_FAAS_TRIGGER, ATTR_FAAS_VERSION,
} from '@opentelemetry/semantic-conventions/incubating';
import { functionArn } from '../core/arn.ts';
import type { InvocationRecord, InvocationTrigger } from '../core/types.ts';

export interface TracingOptions {
  region: string;
  /** Told when a record could not be turned into spans; the invocation itself is never affected. */
  onError(err: unknown): void;
}

export interface Tracing {
  /** Exports what is buffered. */
  flush(): Promise<void>;
  /** Stops listening and exports what is buffered; idempotent. */
  shutdown(): Promise<void>;
}

/** faas.trigger's values: HTTP triggers and function URLs are `http`, schedules `timer`, the rest `other`. */
const FAAS_TRIGGER: Record<InvocationTrigger, string> = {
  http: 'http', timer: 'timer', warmup: 'timer', api: 'other', event: 'other', invoke: 'other', provision: 'other', prewarm: 'other',
};

/**
 * Ids the spans of a record must have: its trace (a new trace's id was chosen when the invocation arrived) and
 * its handler span (the function and its callees already name it as their parent). The SDK draws ids inside
 * startSpan, synchronously, so an id set just before is the one the span gets; unset, ids are random.
 */
class ChosenIds implements IdGenerator {
  readonly #random = new RandomIdGenerator();
  #traceId: string | null = null;
  #spanId: string | null = null;

  start<T>(ids: { traceId?: string; spanId?: string }, start: () => T): T {
    this.#traceId = ids.traceId ?? null;
    this.#spanId = ids.spanId ?? null;
    try {
      return start();
    } finally {
      this.#traceId = null;
      this.#spanId = null;
    }
  }

  generateTraceId(): string { return this.#traceId ?? this.#random.generateTraceId(); }
  generateSpanId(): string { return this.#spanId ?? this.#random.generateSpanId(); }
}

/** The root span's attributes, after the FaaS semantic conventions, with Thaw's own under `thaw.`. */
export function invocationAttributes(r: InvocationRecord, region: string): Attributes {
  return {
    [ATTR_FAAS_INVOCATION_ID]: r.id,
    [ATTR_FAAS_TRIGGER]: FAAS_TRIGGER[r.trigger],
    [ATTR_FAAS_COLDSTART]: r.start !== null && r.start !== 'warm',
    [ATTR_FAAS_NAME]: r.functionName,
    [ATTR_FAAS_VERSION]: r.version,
    [ATTR_FAAS_MAX_MEMORY]: r.memoryMb * 1024 * 1024,
    [ATTR_CLOUD_REGION]: region,
    [ATTR_CLOUD_RESOURCE_ID]: functionArn(region, r.functionName, r.version || undefined),
    'thaw.trigger': r.trigger,
    'thaw.qualifier': r.qualifier,
    'thaw.start': r.start ?? 'none',
    'thaw.outcome': r.outcome,
    'thaw.instance_id': r.instanceId ?? undefined,
    'thaw.caller_invocation_id': r.callerInvocationId ?? undefined,
    'thaw.init_ms': r.initMs,
    'thaw.billed_ms': r.billedMs,
    ...(r.errorType ? { [ATTR_ERROR_TYPE]: r.errorType } : {}),
  };
}

/** Starts exporting a trace per invocation record; the exporter reads its endpoint and headers from OTEL_*. */
export function startTracing(o: TracingOptions): Tracing {
  const ids = new ChosenIds();
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'thaw' }).merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({ resource, idGenerator: ids, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  const tracer = provider.getTracer('thaw');

  const exportRecord = (r: InvocationRecord) => {
    const t = r.trace ?? null;
    // A caller's span (a traceparent, or the calling invocation's handler) is the root's remote parent.
    const parent: Context = t?.parentSpanId
      ? trace.setSpanContext(ROOT_CONTEXT, { traceId: t.traceId, spanId: t.parentSpanId, traceFlags: t.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true })
      : ROOT_CONTEXT;
    const end = r.receivedAt + r.durationMs;
    const kind = r.trigger === 'prewarm' || r.trigger === 'provision' ? SpanKind.INTERNAL : SpanKind.SERVER;
    const root = ids.start({ traceId: t?.traceId }, () =>
      tracer.startSpan(r.functionName, { kind, startTime: r.receivedAt, attributes: invocationAttributes(r, o.region) }, parent));
    if (r.outcome !== 'success') root.setStatus({ code: SpanStatusCode.ERROR, message: r.errorType ?? r.outcome });
    const inRoot = trace.setSpan(ROOT_CONTEXT, root);
    for (const p of r.phases) {
      const start = r.receivedAt + p.offsetMs;
      // Phase times are rounded to the microsecond: a child never ends after its root.
      const span = ids.start({ spanId: p.name === 'handler' ? t?.handlerSpanId : undefined }, () =>
        tracer.startSpan(p.name, { startTime: start, attributes: { 'thaw.phase': p.name } }, inRoot));
      span.end(Math.min(start + p.durationMs, end));
    }
    root.end(end);
  };
  const onRecord = (r: unknown) => {
    try { exportRecord(r as InvocationRecord); } catch (err) { o.onError(err); }
  };
  diagnostics_channel.subscribe('thaw:invocation:end', onRecord);

  let closed: Promise<void> | null = null;
  return {
    flush: () => provider.forceFlush(),
    shutdown: () => closed ??= (async () => {
      diagnostics_channel.unsubscribe('thaw:invocation:end', onRecord);
      await provider.shutdown();
    })(),
  };
}
