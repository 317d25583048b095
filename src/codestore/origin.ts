// The origin: where packages, layers and snapshots live durably, content-addressed by the SHA-256 of their
// bytes. One per platform: the data dir's blob store (`BlobStore`, the single-node default), an
// S3-compatible bucket (`--origin s3://BUCKET`), or, on a cluster agent, peers before the origin. Everything
// that reads or writes package bytes takes an `Origin`, never a concrete store. Imports src/core.
import type { Readable } from 'node:stream';

export interface PutResult {
  readonly sha256: string;
  readonly size: number;
  /** False when the origin held these bytes already (of two concurrent puts, one reports true). */
  readonly created: boolean;
}

export interface Origin {
  /** `local`, `s3`, `peer`… shown at /thaw/v1/node and in bench output. */
  readonly kind: string;
  /** A human-readable location (a directory, `s3://bucket/prefix`), for messages. */
  readonly location: string;
  /** Stores bytes under their hash (given when the caller computed it already, off the event loop). */
  put(bytes: Buffer, known?: string): Promise<PutResult>;
  has(hash: string): Promise<boolean>;
  /** The whole object, checked against its name (a damaged object is THAW_E_INTERNAL, never wrong code). */
  get(hash: string): Promise<Buffer>;
  /** The object as a stream, unchecked (the reader checks), for serving it on. */
  stream(hash: string): Promise<Readable>;
  /** Bytes [start, end) of the object, unchecked: on-demand loading reads parts of an image. */
  getRange(hash: string, start: number, end: number): Promise<Buffer>;
  /** Absent objects are no error. */
  delete(hash: string): Promise<void>;
  list(): Promise<string[]>;
  /** Proves at start that the origin is there and writable (a remote one: THAW_E_ORIGIN_UNAVAILABLE saying what to check). */
  check?(): Promise<void>;
  /** Releases what it holds open (a remote one's connections); after the last use. */
  close?(): void;
}
