// `thaw dev DIR --name N`: the local development loop. Creates the function when it is missing, watches DIR
// and publishes $LATEST on every save (a zip made in memory, uploaded with UpdateFunctionCode), and prints
// each invocation's logs and start path as they happen, from the server's tail stream (no polling).
import { watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { systemClock } from '../../core/clock.ts';
import { ThawError, asThawError } from '../../core/errors.ts';
import { zipDirectory } from '../../codestore/index.ts';
import { fnPath, type ThawClient } from '../client.ts';
import { positionals, str, type Command, type Io } from '../command.ts';

/** Saves arriving within this long of each other are one publish (an editor writes a file in steps). */
const DEBOUNCE_MS = 15;

/**
 * What goes into the package: everything but version control. node_modules stays in, because the function
 * needs it at run time (Lambda has no install step); its files are read again on each save, so a large one
 * is better shipped as a layer.
 */
const skip = (rel: string) => rel === '.git' || rel.endsWith('/.git');

export const devCommand: Command = {
  name: 'dev',
  usage: 'dev DIR --name N [--runtime R] [--handler F.E]',
  summary: 'watch DIR and publish $LATEST on every save, printing invocations and their logs',
  help: [
    '  --name N        function name (created when it does not exist)',
    '  --handler F.E   handler as FILE.EXPORT (default index.handler for new functions)',
    '  --runtime R     runtime (default nodejs24.x)',
    '',
    'Each save publishes $LATEST (TypeScript is compiled by the server; an error is printed with its',
    'file:line and the last good code keeps running). Invoke $LATEST as usual (`thaw invoke N`, the SDK,',
    'HTTP); every invocation prints its start path (cold, pooled, warm, ...), duration and log lines.',
    'Ctrl-C stops watching; the function stays.',
    '',
  ].join('\n'),
  options: {
    name: { type: 'string', short: 'n' },
    handler: { type: 'string' },
    runtime: { type: 'string' },
  },
  async run(args) {
    const [dirArg] = positionals(args, ['DIR'], this.usage);
    const name = str(args, 'name');
    if (!name) throw new ThawError('THAW_E_CLI_USAGE', `--name is required\nusage: thaw ${this.usage}`);
    const dir = resolve(dirArg);
    if (!(await stat(dir).catch(() => null))?.isDirectory()) throw new ThawError('THAW_E_PACKAGE_MISSING', `${dirArg} is not a directory`);
    const { client, io } = args;
    const signal = io.signal ?? interrupted();
    const config = { Handler: str(args, 'handler'), Runtime: str(args, 'runtime') };

    await publish(client, io, name, dir, config, true);
    const tail = client.lines(`/thaw/v1/functions/${fnPath(name)}/tail`, (e) => print(io, e), signal);
    tail.catch((err) => io.err(`thaw dev: the log stream stopped: ${asThawError(err).message}\n`));

    // Publishes one at a time: a save during a publish is published right after it, with the newest files.
    let timer: NodeJS.Timeout | null = null;
    let running: Promise<void> | null = null;
    let again = false;
    const kick = () => {
      if (running) { again = true; return; }
      running = publish(client, io, name, dir, {}, false).finally(() => {
        running = null;
        if (again) { again = false; kick(); }
      });
    };
    const watcher = watch(dir, { recursive: true, signal }, (_event, file) => {
      if (file && String(file).split('/').includes('.git')) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(kick, DEBOUNCE_MS);
    });
    watcher.on('error', () => {});
    io.out(`thaw dev: watching ${dir} for ${name}; Ctrl-C to stop\n`);
    await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
    if (timer) clearTimeout(timer);
    watcher.close();
    await running;
    return 0;
  },
};

/** Creates the function (first run, when missing) or updates its code; an error is printed, not thrown. */
async function publish(client: ThawClient, io: Io, name: string, dir: string, config: { Handler?: string; Runtime?: string }, first: boolean): Promise<void> {
  const t0 = systemClock.monotonic();
  try {
    const zip = (await zipDirectory(dir, { skip })).toString('base64');
    const exists = !first || await client.call('GET', `/2015-03-31/functions/${fnPath(name)}`).then(() => true, (err) => {
      if (err instanceof ThawError && err.code === 'THAW_E_FUNCTION_NOT_FOUND') return false;
      throw err;
    });
    let sha: string;
    if (!exists) {
      sha = (await client.call('POST', '/2015-03-31/functions', { json: {
        FunctionName: name, Role: 'arn:aws:iam::000000000000:role/thaw', Runtime: config.Runtime ?? 'nodejs24.x', Handler: config.Handler ?? 'index.handler', Code: { ZipFile: zip },
      } })).json().CodeSha256;
    } else {
      sha = (await client.call('PUT', `/2015-03-31/functions/${fnPath(name)}/code`, { json: { ZipFile: zip, ThawHandler: config.Handler } })).json().CodeSha256;
      const rest = Object.fromEntries(Object.entries({ Runtime: config.Runtime }).filter(([, v]) => v !== undefined));
      if (Object.keys(rest).length) await client.call('PUT', `/2015-03-31/functions/${fnPath(name)}/configuration`, { json: rest });
    }
    io.out(`published ${name}:$LATEST ${exists ? 'updated' : 'created'} in ${Math.round(systemClock.monotonic() - t0)} ms (code ${String(sha).slice(0, 12)})\n`);
  } catch (err) {
    const e = asThawError(err);
    // The last good code keeps serving; the next save tries again.
    io.out(`publish failed: ${e.code}: ${e.message}\n`);
    if (first && !(err instanceof ThawError && err.kind === 'user')) throw err;
  }
}

/** One line per log line, and one per finished invocation with its start path. */
function print(io: Io, e: { type: string; [k: string]: any }) {
  if (e.type === 'log') {
    io.out(`  ${e.stream === 'stderr' ? 'ERR ' : ''}${String(e.line).replace(/\n$/, '')}\n`);
  } else if (e.type === 'invocation') {
    const init = e.initMs ? `, init ${Math.round(e.initMs)} ms` : '';
    io.out(`invocation ${e.id} ${e.qualifier}: start ${e.start ?? '-'}, ${Math.round(e.durationMs)} ms${init}, ${e.outcome}${e.errorType ? ` (${e.errorType}: ${e.errorMessage})` : ''}\n`);
  }
}

function interrupted(): AbortSignal {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  return ac.signal;
}
