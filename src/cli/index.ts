// The `thaw` command line: a table of commands, each parsing its own flags with node:util parseArgs.
// Errors are printed with their code and fix; usage errors exit 2, others 1. Public entry of src/cli.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ThawError, asThawError } from '../core/errors.ts';
import { ThawClient, credentialsFrom } from './client.ts';
import { aliasCommand } from './commands/alias.ts';
import { deployCommand } from './commands/deploy.ts';
import { invokeCommand } from './commands/invoke.ts';
import { keysCommand } from './commands/keys.ts';
import { networkCommand } from './commands/network.ts';
import { listCommand } from './commands/list.ts';
import { logsCommand } from './commands/logs.ts';
import { reserveCommand } from './commands/reserve.ts';
import { rmCommand } from './commands/rm.ts';
import { simCommand } from './commands/sim.ts';
import { replayCommand } from './commands/replay.ts';
import { policyCommand } from './commands/policy.ts';
import { scheduleCommand } from './commands/schedule.ts';
import { snapshotsCommand } from './commands/snapshots.ts';
import { traceCommand } from './commands/trace.ts';
import { upCommand } from './commands/up.ts';
import type { Command, Io } from './command.ts';

export type { Command, Io } from './command.ts';

const commands: Command[] = [upCommand, deployCommand, invokeCommand, aliasCommand, listCommand, logsCommand, traceCommand, snapshotsCommand, reserveCommand, policyCommand, scheduleCommand, rmCommand, keysCommand, networkCommand, simCommand, replayCommand];

const globalOptions = {
  endpoint: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export function usage(): string {
  const rows = commands.map((c) => `  ${c.usage.padEnd(58)} ${c.summary}`);
  return [
    'thaw: a serverless platform where nobody feels a cold start',
    '',
    'usage: thaw <command> [options]',
    '',
    ...rows,
    '',
    'Options for commands that talk to a server:',
    '  --endpoint URL   Thaw to talk to (default $THAW_ENDPOINT, else http://127.0.0.1:$PORT or :8080)',
    '',
  ].join('\n');
}

const defaultIo = (): Io => ({
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  tty: Boolean(process.stderr.isTTY),
  env: process.env,
  signal: undefined,
});

/** Runs one command line; returns the exit code. */
export async function main(argv: string[], io: Io = defaultIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.out(usage());
    return name ? 0 : 2;
  }
  const cmd = commands.find((c) => c.name === name);
  try {
    if (!cmd) throw new ThawError('THAW_E_CLI_USAGE', `unknown command ${JSON.stringify(name)}; the commands are ${commands.map((c) => c.name).join(', ')}`);
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...globalOptions, ...cmd.options }, allowPositionals: true, strict: true });
    } catch (err) {
      throw new ThawError('THAW_E_CLI_USAGE', `${(err as Error).message}\nusage: thaw ${cmd.usage}`);
    }
    if (parsed.values.help) {
      io.out(`usage: thaw ${cmd.usage}\n\n${cmd.summary}\n${cmd.help ?? ''}`);
      return 0;
    }
    const endpoint = (parsed.values.endpoint as string | undefined) ?? io.env.THAW_ENDPOINT ?? `http://127.0.0.1:${io.env.PORT || 8080}`;
    const client = new ThawClient(endpoint, credentialsFrom(io.env));
    return (await cmd.run({ values: parsed.values, positionals: parsed.positionals, client, io })) ?? 0;
  } catch (err) {
    const e = asThawError(err);
    io.err(`thaw: ${e.code}: ${e.message}\n  fix: ${e.fix}\n`);
    if (e.code === 'THAW_E_INTERNAL' && err instanceof Error && !(err instanceof ThawError)) io.err(`${err.stack}\n`);
    return e.code === 'THAW_E_CLI_USAGE' ? 2 : 1;
  }
}
