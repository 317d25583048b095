// `thaw agent`: runs a cluster agent on this machine until SIGINT/SIGTERM: it joins the control plane given
// by --control with a key of role agent (THAW_ACCESS_KEY_ID/THAW_SECRET_ACCESS_KEY, else the AWS ones),
// runs the invocations placed on it, and drains on stop.
import { ThawError } from '../../core/errors.ts';
import { startAgentNode, type UserOptions } from '../../gateway/index.ts';
import { credentialsFrom } from '../client.ts';
import { num, positionals, str, type Command } from '../command.ts';
import { budget, sandboxKind, untilStopped } from './up.ts';

export const agentCommand: Command = {
  name: 'agent',
  usage: 'agent --control URL --data DIR [--listen HOST:PORT] [--name NAME]',
  summary: 'run a cluster agent that joins a control plane (thaw up --no-agent)',
  help: [
    '  --control URL     the control plane (default $THAW_CONTROL)',
    '  --data DIR        this agent\'s data dir: its own small store and the packages it holds (default .thaw-agent)',
    '  --cache DIR       node-local unpacked code (default: tmpfs under /dev/shm)',
    '  --listen H:P      address of the agent API the control plane and peers call (default 127.0.0.1:0, a free port)',
    '  --advertise URL   the URL they reach it at, when not http://HOST:PORT of --listen (behind NAT, in a pod)',
    '  --name NAME       unique in the cluster (default: the host name)',
    '  --sandbox KIND    auto (default), namespaces or process, as for thaw up',
    '  --memory-budget SIZE  memory for loaded instances (e.g. 8g; default 75% of RAM)',
    '  --pool-size N     generic runtimes kept started per memory size (default 2)',
    '  --origin URL      read packages a peer does not hold from this bucket (s3://BUCKET[/PREFIX], the control',
    '                    plane\'s --origin) instead of through the control plane; endpoint and keys from AWS_*',
    '',
    'The key: THAW_ACCESS_KEY_ID and THAW_SECRET_ACCESS_KEY (else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY),',
    'made on the control plane with `thaw keys create --role agent`.',
    '',
  ].join('\n'),
  options: {
    control: { type: 'string' },
    data: { type: 'string' },
    cache: { type: 'string' },
    listen: { type: 'string' },
    advertise: { type: 'string' },
    name: { type: 'string' },
    sandbox: { type: 'string' },
    'memory-budget': { type: 'string' },
    'pool-size': { type: 'string' },
    origin: { type: 'string' },
  },
  async run(args) {
    positionals(args, [], this.usage);
    const { io } = args;
    const control = str(args, 'control') ?? io.env.THAW_CONTROL;
    if (!control) throw new ThawError('THAW_E_CLI_USAGE', 'give the control plane with --control URL (or $THAW_CONTROL)');
    const env = io.env.THAW_ACCESS_KEY_ID && io.env.THAW_SECRET_ACCESS_KEY ? { ...io.env, AWS_ACCESS_KEY_ID: io.env.THAW_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: io.env.THAW_SECRET_ACCESS_KEY } : io.env;
    const credentials = credentialsFrom(env);
    if (!credentials) throw new ThawError('THAW_E_CLI_USAGE', 'an agent needs a key of role agent: set THAW_ACCESS_KEY_ID and THAW_SECRET_ACCESS_KEY (make one on the control plane with `thaw keys create --role agent`)');
    const listen = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(str(args, 'listen') ?? '127.0.0.1:0');
    if (!listen || Number(listen[2]) > 65535) throw new ThawError('THAW_E_CLI_USAGE', `--listen takes HOST:PORT, such as 0.0.0.0:8081, got ${JSON.stringify(str(args, 'listen'))}`);
    const name = str(args, 'name');
    if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) throw new ThawError('THAW_E_CLI_USAGE', `--name takes 1-63 letters, digits, dots, hyphens and underscores, got ${JSON.stringify(name)}`);
    const node: UserOptions = Object.fromEntries(Object.entries({
      dataDir: str(args, 'data') ?? io.env.THAW_DATA ?? '.thaw-agent',
      cacheDir: str(args, 'cache'),
      sandbox: sandboxKind(str(args, 'sandbox')),
      memoryBudgetMb: budget(str(args, 'memory-budget')),
      poolSize: num(args, 'pool-size'),
      origin: str(args, 'origin') ?? (io.env.THAW_ORIGIN || undefined),
    }).filter(([, v]) => v !== undefined));
    const agent = await startAgentNode({
      control, credentials, name, host: listen[1].replace(/^\[|\]$/g, ''), port: Number(listen[2]), advertise: str(args, 'advertise'), node,
      log: (line) => io.err(`thaw agent: ${line}\n`),
    });
    try {
      await agent.joined;
    } catch (err) {
      await agent.destroy();
      throw err;
    }
    io.out(`Thaw agent ${agent.name} is up at ${agent.url}, joined ${control}\n`);
    await untilStopped(io);
    io.err('thaw agent: draining (running invocations finish, then every instance stops)\n');
    await agent.close();
    io.err('thaw agent: stopped\n');
    return 0;
  },
};
