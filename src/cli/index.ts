// The `thaw` command line: a table of commands, each parsing its own flags with node:util parseArgs.
// Errors are printed with their code and fix; usage errors exit 2, others 1. Public entry of src/cli.
// A command's module is loaded only when it runs (or for help): `thaw deploy` need not load the server
// `thaw up` runs, the simulator or zod, which cost a short command most of its time.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ThawError, asThawError } from '../core/errors.ts';
import { ThawClient, credentialsFrom } from './client.ts';
import type { Command, Io } from './command.ts';

export type { Command, Io } from './command.ts';

/** Each command's name and how to load it, in the order help lists them. */
const commands: { name: string; load: () => Promise<Command> }[] = [
  { name: 'up', load: async () => (await import('./commands/up.ts')).upCommand },
  { name: 'agent', load: async () => (await import('./commands/agent.ts')).agentCommand },
  { name: 'deploy', load: async () => (await import('./commands/deploy.ts')).deployCommand },
  { name: 'dev', load: async () => (await import('./commands/dev.ts')).devCommand },
  { name: 'invoke', load: async () => (await import('./commands/invoke.ts')).invokeCommand },
  { name: 'alias', load: async () => (await import('./commands/alias.ts')).aliasCommand },
  { name: 'list', load: async () => (await import('./commands/list.ts')).listCommand },
  { name: 'logs', load: async () => (await import('./commands/logs.ts')).logsCommand },
  { name: 'trace', load: async () => (await import('./commands/trace.ts')).traceCommand },
  { name: 'why', load: async () => (await import('./commands/why.ts')).whyCommand },
  { name: 'snapshots', load: async () => (await import('./commands/snapshots.ts')).snapshotsCommand },
  { name: 'reserve', load: async () => (await import('./commands/reserve.ts')).reserveCommand },
  { name: 'policy', load: async () => (await import('./commands/policy.ts')).policyCommand },
  { name: 'schedule', load: async () => (await import('./commands/schedule.ts')).scheduleCommand },
  { name: 'rm', load: async () => (await import('./commands/rm.ts')).rmCommand },
  { name: 'keys', load: async () => (await import('./commands/keys.ts')).keysCommand },
  { name: 'network', load: async () => (await import('./commands/network.ts')).networkCommand },
  { name: 'sim', load: async () => (await import('./commands/sim.ts')).simCommand },
  { name: 'replay', load: async () => (await import('./commands/replay.ts')).replayCommand },
];

const globalOptions = {
  endpoint: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export async function usage(): Promise<string> {
  const rows = (await Promise.all(commands.map((c) => c.load()))).map((c) => `  ${c.usage.padEnd(58)} ${c.summary}`);
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
    io.out(await usage());
    return name ? 0 : 2;
  }
  try {
    const cmd = await commands.find((c) => c.name === name)?.load();
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
