// Telemetry: invocation records, phase spans, logs; Server-Timing and waterfall rendering.
// Public entry of src/telemetry; may import store and core.
export { Recorder, type RecorderOptions } from './recorder.ts';
export { serverTiming, renderWaterfall } from './render.ts';
export { ThawMetrics, type ClusterMetrics, type MetricsOptions, type MetricsSource, type NodeMetrics } from './metrics.ts';
import type { Tracing, TracingOptions } from './otel.ts';
export type { Tracing, TracingOptions };

/** Whether an OTLP traces endpoint is configured (the OpenTelemetry variables, per the SDK's specification). */
export const otlpTracesConfigured = (env: NodeJS.ProcessEnv): boolean => !!(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);

/**
 * Starts the OTLP trace export. Imported only when called: the OpenTelemetry SDK adds tens of milliseconds
 * to start-up that a platform exporting nothing should not pay.
 */
export async function startTracing(o: TracingOptions): Promise<Tracing> {
  return (await import('./otel.ts')).startTracing(o);
}
