// The message channel between the platform and a runtime: newline-delimited JSON over a socket pair at the
// unit's fd 3. Not Node's own IPC: that one parses in Node's internals, where one line of garbage written
// to fd 3 by the function throws in the server and takes it down. Here every line is parsed defensively;
// anything that is not a JSON object, or a line past the size bound, is a protocol violation: the channel
// stops and the driver ends the unit. Imports node built-ins.
import type { ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import type { SandboxChannel } from './types.ts';

/** Larger than any message the protocol carries (a 6 MB response, JSON-escaped, plus its envelope). */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

/** The channel at a child's fd 3, or one that carries nothing for a unit spawned without it. */
export function childChannel(child: ChildProcess, onViolation: (why: string) => void): SandboxChannel {
  const stream = child.stdio[3] as Duplex | null | undefined;
  return stream ? streamChannel(stream, onViolation) : { send: () => false, onMessage: () => {} };
}

export function streamChannel(stream: Duplex, onViolation: (why: string) => void, maxBytes = MAX_MESSAGE_BYTES): SandboxChannel {
  const listeners: ((m: unknown) => void)[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let broken = false;
  const violate = (why: string) => {
    if (broken) return;
    broken = true;
    stream.destroy();
    onViolation(why);
  };
  const deliver = (line: Buffer) => {
    let m: unknown;
    try { m = JSON.parse(line.toString('utf8')); } catch { return violate('a line on the channel is not JSON'); }
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return violate('a message on the channel is not a JSON object');
    for (const l of listeners) {
      try { l(m); } catch (err) { return violate(`a message could not be handled: ${(err as Error).message}`); }
    }
  };
  stream.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1 && !broken; nl = chunk.indexOf(10, start)) {
      const part = chunk.subarray(start, nl);
      const line = pendingBytes ? Buffer.concat([...pending, part], pendingBytes + part.length) : part;
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
      if (line.length > maxBytes) return violate(`a message is larger than ${maxBytes} bytes`);
      if (line.length) deliver(line);
    }
    if (broken || start >= chunk.length) return;
    pending.push(chunk.subarray(start));
    pendingBytes += chunk.length - start;
    if (pendingBytes > maxBytes) violate(`a message is larger than ${maxBytes} bytes`);
  });
  // The unit's end of the channel going away is its exit's business, not an error here.
  stream.on('error', () => {});
  return {
    send: (m) => {
      if (broken || stream.destroyed || !stream.writable) return false;
      stream.write(`${JSON.stringify(m)}\n`);
      return true;
    },
    onMessage: (l) => { listeners.push(l); },
  };
}
