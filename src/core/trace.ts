// W3C Trace Context of an invocation: which trace it belongs to and which span its handler is, decided when
// the platform receives it, so the function (TRACEPARENT), its context.invoke callees and the exported spans
// all name the same trace. Imports node:crypto and types.
import { randomBytes } from 'node:crypto';
import type { TraceContext } from './types.ts';

/** A caller's span, as a `traceparent` header names it. */
export interface ParentSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The caller's span from a `traceparent` header, or null when there is none or it is malformed (a new trace
 * then starts: tracing never fails an invocation). Follows W3C Trace Context level 1: version ff and all-zero
 * ids are invalid; a future version may carry more fields after the four known ones.
 */
export function parseTraceparent(header: string | null | undefined): ParentSpan | null {
  if (typeof header !== 'string' || header.length > 512) return null;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return null;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return null;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/**
 * An invocation's trace: a child of the caller's span, or the root of a new, sampled trace received at `at`
 * (epoch ms). A new trace id starts with the epoch second, as X-Ray's W3C-compatible ids do, so the same id in
 * X-Ray's spelling (_X_AMZN_TRACE_ID) is one X-Ray accepts.
 */
export function invocationTrace(parent: ParentSpan | null, at: number): TraceContext {
  const handlerSpanId = randomBytes(8).toString('hex');
  if (parent) return { traceId: parent.traceId, parentSpanId: parent.spanId, handlerSpanId, sampled: parent.sampled };
  const traceId = Math.floor(at / 1000).toString(16).padStart(8, '0').slice(-8) + randomBytes(12).toString('hex');
  return { traceId, parentSpanId: null, handlerSpanId, sampled: true };
}

/** The handler's span as a caller of others: what its callees and its own code take as their parent. */
export const handlerSpan = (t: TraceContext): ParentSpan => ({ traceId: t.traceId, spanId: t.handlerSpanId, sampled: t.sampled });

/** The `traceparent` value a function sees while its handler runs. */
export const traceparentOf = (t: TraceContext): string => `00-${t.traceId}-${t.handlerSpanId}-${t.sampled ? '01' : '00'}`;
