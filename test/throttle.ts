// A TCP proxy the test controls, for a remote origin on loopback: every byte in either direction passes a
// link of fixed bandwidth (bytes/s, shared by all connections, each direction its own) and arrives a fixed
// latency later; a new connection pays that latency once more before it opens (the handshake). Order is kept.
// Used in front of a real S3 server (test/s3.ts) to measure and test loading from a slow origin.
import net from 'node:net';
import { once } from 'node:events';

export interface Throttle {
  /** `http://127.0.0.1:PORT`: where clients connect instead of the target. */
  readonly endpoint: string;
  readonly port: number;
  /** Bytes that went through, target to client and client to target. */
  readonly bytes: { down: number; up: number };
  /** Changes the link for the bytes sent from now on. */
  set(o: { bytesPerSecond?: number; latencyMs?: number }): void;
  /** Closes the listener and every connection; idempotent. */
  stop(): Promise<void>;
}

/** Pieces a chunk is cut into, so one big write does not hold the link for a long stretch at once. */
const PIECE = 16 * 1024;
/** Past this many bytes waiting in one direction of a connection, its source is paused. */
const HIGH_WATER = 1024 * 1024;

/** One direction of the link: when it is free again, on the monotonic clock. */
class Link {
  freeAt = 0;
  bytesPerSecond: number;
  latencyMs: number;
  constructor(bytesPerSecond: number, latencyMs: number) { this.bytesPerSecond = bytesPerSecond; this.latencyMs = latencyMs; }

  /** When bytes entering now leave the far end. */
  schedule(n: number): number {
    const start = Math.max(performance.now(), this.freeAt);
    this.freeAt = start + (n * 1000) / this.bytesPerSecond;
    return this.freeAt + this.latencyMs;
  }
}

/**
 * Moves from → to through the link, pausing `from` while much is in flight. One queue per direction, drained
 * in order by one timer: timers of their own could fire out of order (their delays are whole milliseconds).
 */
function pump(from: net.Socket, to: net.Socket, link: Link, count: (n: number) => void) {
  const queue: { at: number; piece: Buffer | null }[] = [];
  let inFlight = 0;
  let timer: NodeJS.Timeout | null = null;
  const drain = () => {
    timer = null;
    const t = performance.now();
    while (queue.length && queue[0].at <= t) {
      const { piece } = queue.shift()!;
      if (piece === null) { to.end(); continue; }
      inFlight -= piece.length;
      count(piece.length);
      if (!to.destroyed) to.write(piece);
    }
    if (inFlight < HIGH_WATER && from.isPaused() && !from.destroyed) from.resume();
    arm();
  };
  const arm = () => { if (!timer && queue.length) timer = setTimeout(drain, Math.max(0, queue[0].at - performance.now())); };
  const last = () => queue.at(-1)?.at ?? 0;
  from.on('data', (chunk: Buffer) => {
    for (let i = 0; i < chunk.length; i += PIECE) {
      const piece = Buffer.from(chunk.subarray(i, i + PIECE));
      // Never before the previous piece: the latency can be changed while bytes are on the way.
      queue.push({ at: Math.max(link.schedule(piece.length), last()), piece });
      inFlight += piece.length;
    }
    if (inFlight >= HIGH_WATER) from.pause();
    arm();
  });
  // The end reaches the far side after the bytes before it.
  from.on('end', () => { queue.push({ at: Math.max(performance.now() + link.latencyMs, last()), piece: null }); arm(); });
}

export async function startThrottle(target: { host?: string; port: number }, o: { bytesPerSecond: number; latencyMs: number }): Promise<Throttle> {
  const down = new Link(o.bytesPerSecond, o.latencyMs);
  const up = new Link(o.bytesPerSecond, o.latencyMs);
  const bytes = { down: 0, up: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    client.pause();
    sockets.add(client);
    const upstream = net.connect({ host: target.host ?? '127.0.0.1', port: target.port });
    sockets.add(upstream);
    // An error ends both at once; an orderly end (the server's `Connection: close`) reaches the other side
    // only after the bytes still on the link (pump's 'end').
    const drop = () => { client.destroy(); upstream.destroy(); };
    client.on('error', drop).on('close', () => sockets.delete(client));
    upstream.on('error', drop).on('close', () => sockets.delete(upstream));
    upstream.once('connect', () => {
      setTimeout(() => {
        pump(client, upstream, up, (n) => { bytes.up += n; });
        pump(upstream, client, down, (n) => { bytes.down += n; });
        client.resume();
      }, up.latencyMs);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  let stopped: Promise<void> | null = null;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    bytes,
    set(n) {
      for (const l of [down, up]) {
        if (n.bytesPerSecond !== undefined) l.bytesPerSecond = n.bytesPerSecond;
        if (n.latencyMs !== undefined) l.latencyMs = n.latencyMs;
      }
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      return stopped;
    },
  };
}
