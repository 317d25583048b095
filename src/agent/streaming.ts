// Response streaming in the agent: what a streaming handler (awslambda.streamifyResponse) writes goes to the
// caller's stream as it comes (InvokeWithResponseStream, a RESPONSE_STREAM function URL), or is collected
// for a caller that waits for the whole response (Invoke buffers a streaming function, as on Lambda); both
// under Lambda's size limits. Imports types of src/runtimes and the response limit of lambda.ts.
import type { ResponseSink, SerializedError } from '../runtimes/index.ts';
import { MAX_RESPONSE_BYTES, responseTooLargeError } from './lambda.ts';

/**
 * Lambda's limit on a streamed response (20 MB, a soft limit there; a fixed one here). Past it the stream
 * is cut, the handler's further writes fail, and the invocation ends with Function.ResponseSizeTooLarge.
 */
export const MAX_STREAMED_RESPONSE_BYTES = 20 * 1024 * 1024;

/** Where a streamed invocation's response goes, as the handler writes it. */
export interface ResponseStream {
  /** Before the first chunk (or at the end of a stream with none): what the response is, and whose. */
  start(head: { contentType: string; executedVersion: string; invocationId: string }): void;
  /** One chunk; call `consumed` once it has left this host: the function is held to a window of unconsumed bytes. */
  write(chunk: Buffer, consumed: () => void): void;
}

/** One invocation's side of a response stream: forwards or collects, counts, and cuts at the limit. */
export class InvocationSink implements ResponseSink {
  /** True once the handler's stream started: the invocation's response is the stream, not its return value. */
  started = false;
  /** Why the stream was cut (its size), when it was. */
  cut: SerializedError | null = null;
  #bytes = 0;
  #chunks: Buffer[] = [];
  readonly #target: ResponseStream | undefined;
  readonly #head: { executedVersion: string; invocationId: string };
  readonly #limitBytes: number;
  readonly #keep: boolean;
  readonly #onCut: (error: SerializedError) => void;

  /**
   * `target` absent: the bytes are collected for a buffered caller (under the synchronous response limit),
   * or dropped when `keep` is false (an event's or a timer's response goes nowhere).
   */
  constructor(o: { target?: ResponseStream; executedVersion: string; invocationId: string; keep: boolean; onCut(error: SerializedError): void }) {
    this.#target = o.target;
    this.#head = { executedVersion: o.executedVersion, invocationId: o.invocationId };
    this.#keep = o.keep;
    this.#limitBytes = o.target ? MAX_STREAMED_RESPONSE_BYTES : o.keep ? MAX_RESPONSE_BYTES : Infinity;
    this.#onCut = o.onCut;
  }

  start(contentType: string): void {
    this.started = true;
    this.#target?.start({ contentType, ...this.#head });
  }

  write(chunk: Buffer, consumed: () => void): void {
    this.#bytes += chunk.length;
    if (!this.cut && this.#bytes > this.#limitBytes) {
      this.cut = this.#target ? streamTooLargeError() : responseTooLargeError(this.#bytes);
      this.#chunks = [];
      this.#onCut(this.cut);
    }
    // Past the cut, what is still in flight is dropped (and acknowledged, so the runtime is not held).
    if (this.cut || !this.#target) {
      if (this.#keep && !this.cut) this.#chunks.push(chunk);
      consumed();
      return;
    }
    this.#target.write(chunk, consumed);
  }

  /** What a buffered caller gets: the bytes written, as text. */
  body(): string { return Buffer.concat(this.#chunks).toString('utf8'); }
}

export function streamTooLargeError(): SerializedError {
  return { errorType: 'Function.ResponseSizeTooLarge', errorMessage: `Response payload size exceeded maximum allowed payload streaming size (${MAX_STREAMED_RESPONSE_BYTES} bytes).`, trace: [] };
}

/** What the handler's stream fails with once its client has gone. */
export const clientGoneError: SerializedError = { errorType: 'Runtime.ClientDisconnected', errorMessage: 'the client closed the response stream', trace: [] };
