// `thaw invoke N[:Q]`: calls a function through the Lambda Invoke API; the response payload goes to
// stdout, how it ran (cold or warm, version, time, invocation id) to stderr. A function error exits 1.
import { readFile } from 'node:fs/promises';
import { ThawError } from '../../core/errors.ts';
import { fnPath } from '../client.ts';
import { positionals, str, type Command } from '../command.ts';

export const invokeCommand: Command = {
  name: 'invoke',
  usage: 'invoke N[:QUALIFIER] [--payload JSON|@FILE] [--tail] [--event]',
  summary: 'invoke a function and print its response',
  help: [
    '  --payload P   the event: JSON text, or @file to read it from a file (default {})',
    '  --tail        print the invocation\'s log tail (X-Amz-Log-Type: Tail) to stderr',
    '  --event       invoke asynchronously (queued, at-least-once with retries)',
    '',
  ].join('\n'),
  options: {
    payload: { type: 'string', short: 'p' },
    tail: { type: 'boolean' },
    event: { type: 'boolean' },
  },
  async run(args) {
    const [ref] = positionals(args, ['N[:QUALIFIER]'], this.usage);
    const { client, io } = args;
    const payload = await readPayload(str(args, 'payload'));
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (args.values.event) headers['x-amz-invocation-type'] = 'Event';
    if (args.values.tail) headers['x-amz-log-type'] = 'Tail';
    const r = await client.call('POST', `/2015-03-31/functions/${fnPath(ref)}/invocations`, { body: payload, headers });
    const id = r.headers.get('x-thaw-invocation-id') ?? '';
    if (args.values.event) {
      io.err(`queued ${ref} as invocation ${id}\n`);
      return 0;
    }
    const logs = r.headers.get('x-amz-log-result');
    if (logs) io.err(Buffer.from(logs, 'base64').toString('utf8'));
    const text = r.body.toString('utf8');
    let pretty = text;
    try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: print as is */ }
    io.out(`${pretty}\n`);
    const total = /total;dur=([\d.]+)/.exec(r.headers.get('server-timing') ?? '')?.[1];
    io.err(`${r.headers.get('x-thaw-start')} start · version ${r.headers.get('x-amz-executed-version')} · ${total ? `${Number(total).toFixed(1)} ms` : ''} · invocation ${id}\n`);
    const functionError = r.headers.get('x-amz-function-error');
    if (functionError) {
      io.err(`function error (${functionError}); \`thaw trace ${id}\` and \`thaw logs ${ref.split(':')[0]}\` show more\n`);
      return 1;
    }
    return 0;
  },
};

async function readPayload(p: string | undefined): Promise<string> {
  if (p === undefined) return '{}';
  let text = p;
  if (p.startsWith('@')) {
    try { text = await readFile(p.slice(1), 'utf8'); } catch (err) {
      throw new ThawError('THAW_E_CLI_USAGE', `cannot read payload file ${p.slice(1)}: ${(err as Error).message}`);
    }
  }
  try { JSON.parse(text); } catch (err) {
    throw new ThawError('THAW_E_PAYLOAD_INVALID', `--payload is not valid JSON: ${(err as Error).message}`);
  }
  return text;
}
