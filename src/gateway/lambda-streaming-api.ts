// Response streaming over HTTP: InvokeWithResponseStream (POST /2021-11-15/functions/{name}/
// response-streaming-invocations), which answers in the AWS event-stream framing the SDKs read (PayloadChunk
// events as the function writes, then one InvokeComplete), and the HTTP side of a RESPONSE_STREAM function
// URL (HttpResponseStream.from's prelude read into status, headers and cookies, then the body as it comes,
// chunked). Imports the gateway's http helpers, the platform, the agent's stream type and core.
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { asThawError } from '../core/errors.ts';
import type { InvokeResult, ResponseStream } from '../agent/index.ts';
import { functionTarget, readBody, sendJson, type RequestContext, type Router } from './http.ts';
import { clientContextHeader, headerOneOf, logTail } from './lambda-api.ts';
import { MAX_SYNC_PAYLOAD_BYTES, validatePayload, type Platform } from './platform.ts';

const codec = new EventStreamCodec((bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), (text) => Buffer.from(text, 'utf8'));

/** One event of the stream, with the headers the SDK's unmarshaller dispatches on. */
const frame = (eventType: 'PayloadChunk' | 'InvokeComplete', contentType: string, body: Uint8Array) => codec.encode({
  headers: {
    ':event-type': { type: 'string', value: eventType },
    ':message-type': { type: 'string', value: 'event' },
    ':content-type': { type: 'string', value: contentType },
  },
  body,
});

/** What InvokeComplete says of an invocation's end: Lambda's error type and message, and the log tail. */
type Completion = { ErrorCode?: string; ErrorDetails?: string; LogResult?: string };

/**
 * The event stream of one InvokeWithResponseStream call. The HTTP head goes with the function's first
 * chunk: its Content-Type is the function's stream's (the SDK's ResponseStreamContentType), as on Lambda.
 * A chunk is acknowledged once written to the socket, so a slow client holds the function, not this host.
 */
class EventStreamResponse implements ResponseStream {
  readonly #ctx: RequestContext;
  constructor(ctx: RequestContext) { this.#ctx = ctx; }

  get started(): boolean { return this.#ctx.res.headersSent; }

  start(head: { contentType: string; executedVersion: string; invocationId: string }): void {
    if (this.started || this.#ctx.res.destroyed) return;
    this.#ctx.res.writeHead(200, {
      'content-type': head.contentType,
      'x-amzn-requestid': head.invocationId,
      'x-amz-executed-version': head.executedVersion,
      'x-thaw-invocation-id': head.invocationId,
    });
  }

  write(chunk: Buffer, consumed: () => void): void {
    if (this.#ctx.res.destroyed) { consumed(); return; }
    this.#ctx.res.write(frame('PayloadChunk', 'application/octet-stream', chunk), () => consumed());
  }

  /** The last event; a function that did not stream has its whole response sent as one chunk first. */
  complete(r: InvokeResult, tail: boolean): void {
    if (this.#ctx.res.destroyed) return;
    if (!this.started) {
      this.start({ contentType: 'application/json', executedVersion: r.record.version, invocationId: r.record.id });
      if (!r.functionError && r.payload !== '') this.#ctx.res.write(frame('PayloadChunk', 'application/octet-stream', Buffer.from(r.payload)));
    }
    const error = r.functionError ? JSON.parse(r.payload) as { errorType: string; errorMessage: string } : null;
    this.#end({
      ...(error ? { ErrorCode: error.errorType, ErrorDetails: error.errorMessage } : {}),
      ...(tail ? { LogResult: logTail(r.logs) } : {}),
    });
  }

  /** After the stream began, a failure of the platform's own still ends it with an InvokeComplete. */
  fail(err: unknown): void {
    const e = asThawError(err);
    if (this.#ctx.res.destroyed) return;
    this.#end({ ErrorCode: e.lambdaType, ErrorDetails: `${e.code}: ${e.message}` });
  }

  #end(c: Completion): void {
    this.#ctx.res.end(frame('InvokeComplete', 'application/json', Buffer.from(JSON.stringify(c))));
  }
}

export function lambdaStreamingRoutes(router: Router, platform: Platform): void {
  router.on('POST', '/2021-11-15/functions/{name}/response-streaming-invocations', async (ctx) => {
    const h = ctx.req.headers;
    const type = headerOneOf(h['x-amz-invocation-type'], 'X-Amz-Invocation-Type', ['RequestResponse', 'DryRun'], 'RequestResponse');
    const logType = headerOneOf(h['x-amz-log-type'], 'X-Amz-Log-Type', ['None', 'Tail'], 'None');
    const clientContext = clientContextHeader(h['x-amz-client-context']);
    const t = functionTarget(ctx);
    const payload = validatePayload((await readBody(ctx.req, MAX_SYNC_PAYLOAD_BYTES)).toString('utf8'), MAX_SYNC_PAYLOAD_BYTES);
    if (type === 'DryRun') {
      await platform.control.resolve(t.name, t.qualifier);
      sendJson(ctx, 204, undefined);
      return;
    }
    const out = new EventStreamResponse(ctx);
    let r: InvokeResult;
    try {
      r = await platform.invoke(t.name, t.qualifier, payload, {
        trigger: 'api', signal: ctx.signal, receivedMono: ctx.receivedMono, receivedAt: ctx.receivedAt, clientContext,
        traceId: typeof h['x-amzn-trace-id'] === 'string' ? h['x-amzn-trace-id'] : null, stream: out,
        traceparent: typeof h.traceparent === 'string' ? h.traceparent : null,
      });
    } catch (err) {
      // Before the stream began: Lambda's error response (not found, throttled). After: its last event.
      if (!out.started) throw err;
      out.fail(err);
      return;
    }
    out.complete(r, logType === 'Tail');
  });
}

const PRELUDE_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const DELIMITER = Buffer.alloc(8);
/** More than any status, headers and cookies need; a stream that has no delimiter by then is not an HTTP response. */
const MAX_PRELUDE_BYTES = 64 * 1024;

/** The HTTP response's head as a streamed function URL answers: from the prelude, or the stream's content type. */
export interface StreamedHead { status: number; headers: Record<string, string | string[]> }

/**
 * A streamed function URL's response (InvokeMode RESPONSE_STREAM): when the function's stream carries an
 * HttpResponseStream prelude, its JSON (statusCode, headers, cookies) becomes the status line and headers;
 * without one the status is 200 and the Content-Type the stream's. The body then goes to the client chunk
 * by chunk (chunked transfer encoding) as the function writes it. `shape` adds the URL's own headers
 * (CORS, request id) to the head.
 */
export class HttpStreamResponse implements ResponseStream {
  readonly #ctx: RequestContext;
  readonly #shape: (head: StreamedHead) => StreamedHead;
  /** The prelude read so far, while the stream carries one and its delimiter has not come. */
  #prelude: Buffer[] | null = null;
  #preludeBytes = 0;
  /** Set once the function's stream began (start): the response is the stream's from then on. */
  streaming = false;

  constructor(ctx: RequestContext, shape: (head: StreamedHead) => StreamedHead) {
    this.#ctx = ctx;
    this.#shape = shape;
  }

  start(head: { contentType: string }): void {
    this.streaming = true;
    if (head.contentType === PRELUDE_CONTENT_TYPE) this.#prelude = [];
    else this.#head({ status: 200, headers: { 'content-type': head.contentType } });
  }

  write(chunk: Buffer, consumed: () => void): void {
    const res = this.#ctx.res;
    if (this.#prelude) {
      this.#prelude.push(chunk);
      this.#preludeBytes += chunk.length;
      const all = Buffer.concat(this.#prelude, this.#preludeBytes);
      const at = all.indexOf(DELIMITER);
      if (at === -1 && this.#preludeBytes <= MAX_PRELUDE_BYTES) { consumed(); return; }
      this.#prelude = null;
      const head = at === -1 ? null : parsePrelude(all.subarray(0, at));
      if (!head) {
        this.#badGateway();
        consumed();
        return;
      }
      this.#head(head);
      chunk = all.subarray(at + DELIMITER.length);
    }
    if (res.writableEnded || res.destroyed || chunk.length === 0) { consumed(); return; }
    res.write(chunk, () => consumed());
  }

  /** After the invocation: the response ends; after a failure mid-stream it is cut, so the client sees a truncated body. */
  end(failed: boolean): void {
    const res = this.#ctx.res;
    if (res.writableEnded || res.destroyed) return;
    if (this.#prelude) return this.#badGateway();
    if (failed) res.destroy();
    else res.end();
  }

  /** Not an HTTP response (no delimiter, a prelude that is not one): Lambda's 502; the rest of the stream goes nowhere. */
  #badGateway(): void {
    this.#prelude = null;
    if (this.#ctx.res.destroyed) return;
    this.#head({ status: 502, headers: { 'content-type': 'application/json' } });
    this.#ctx.res.end('{"message":"Internal Server Error"}');
  }

  #head(head: StreamedHead): void {
    if (this.#ctx.res.headersSent || this.#ctx.res.destroyed) return;
    const { status, headers } = this.#shape(head);
    this.#ctx.res.writeHead(status, headers);
    // Headers go now, before any body: a client waiting on them learns the status while the function runs.
    this.#ctx.res.flushHeaders();
  }
}

/** HttpResponseStream.from's prelude: `{ statusCode?, headers?, cookies? }`; null when it is not that. */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer']);

export function parsePrelude(json: Buffer): StreamedHead | null {
  let p: unknown;
  try { p = JSON.parse(json.toString('utf8')); } catch { return null; }
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return null;
  const { statusCode = 200, headers = {}, cookies = [] } = p as Record<string, unknown>;
  // A final status only: 1xx is not a response a stream can be.
  if (!Number.isInteger(statusCode) || (statusCode as number) < 200 || (statusCode as number) > 599) return null;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return null;
  if (!Array.isArray(cookies) || !cookies.every((c) => typeof c === 'string')) return null;
  const out: Record<string, string | string[]> = { 'content-type': 'application/octet-stream' };
  for (const [k, v] of Object.entries(headers)) {
    const value = String(v);
    // A header that could not be sent as given is not sent (as API Gateway drops it), rather than failing the response.
    // The framing is the gateway's (chunked, as the stream comes): a length or hop-by-hop header of the
    // function's would corrupt it for the client.
    if (FRAMING_HEADERS.has(k.toLowerCase())) continue;
    if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) && /^[\t\x20-\x7e\x80-\xff]*$/.test(value)) out[k.toLowerCase()] = value;
  }
  if (cookies.length) out['set-cookie'] = cookies as string[];
  return { status: statusCode as number, headers: out };
}
