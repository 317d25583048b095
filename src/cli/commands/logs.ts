// `thaw logs N [--follow]`: a function's log lines (stdout, stderr and the platform's START/END/REPORT),
// tailing new ones with --follow until interrupted.
import { setTimeout as sleep } from 'node:timers/promises';
import { ThawError } from '../../core/errors.ts';
import { fnPath } from '../client.ts';
import { num, positionals, str, type Command } from '../command.ts';

interface Line { seq: number; at: number; stream: string; line: string; version: string }

export const logsCommand: Command = {
  name: 'logs',
  usage: 'logs N [--follow] [--invocation ID] [--limit N]',
  summary: 'print a function\'s logs',
  help: '  --follow, -f     keep printing new lines\n  --invocation ID  only this invocation\'s lines\n  --limit N        how many of the newest lines to start with (default 100)\n',
  options: {
    follow: { type: 'boolean', short: 'f' },
    invocation: { type: 'string' },
    limit: { type: 'string' },
  },
  async run(args) {
    const [name] = positionals(args, ['N'], this.usage);
    const { client, io } = args;
    const limit = num(args, 'limit') ?? 100;
    if (!Number.isInteger(limit) || limit < 1) throw new ThawError('THAW_E_CLI_USAGE', '--limit must be a positive integer');
    const invocation = str(args, 'invocation');
    const query = (after?: number) => {
      const q = new URLSearchParams({ limit: String(after === undefined ? limit : 1000) });
      if (after !== undefined) q.set('after', String(after));
      if (invocation) q.set('invocation', invocation);
      return `/thaw/v1/functions/${fnPath(name)}/logs?${q}`;
    };
    const print = (lines: Line[]) => {
      for (const l of lines) io.out(`${new Date(l.at).toISOString()} ${l.stream === 'stderr' ? 'ERR ' : ''}${l.line.replace(/\n$/, '')}\n`);
    };
    let { lines, next } = await client.get(query()) as { lines: Line[]; next: number };
    print(lines);
    if (!args.values.follow) return 0;
    const signal = io.signal ?? interrupted();
    while (!signal.aborted) {
      await sleep(500, undefined, { signal }).catch(() => {});
      if (signal.aborted) break;
      ({ lines, next } = await client.get(query(next)) as { lines: Line[]; next: number });
      print(lines);
    }
    return 0;
  },
};

function interrupted(): AbortSignal {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  return ac.signal;
}
