// `thaw deploy PATH --name N`: packages a directory (or takes a .zip/.tgz), uploads it with progress,
// creates or updates the function and publishes a version. Prints the version.
import { readFile, stat } from 'node:fs/promises';
import { ThawError } from '../../core/errors.ts';
import { zipDirectory } from '../../codestore/index.ts';
import { fnPath } from '../client.ts';
import { list, mb, num, positionals, progress, str, type Command, type CommandArgs } from '../command.ts';

export const deployCommand: Command = {
  name: 'deploy',
  usage: 'deploy PATH --name N [--handler F.E] [--memory MB] [--tmp MB] [--timeout S] [--env K=V]... [--egress POLICY] [--network NET]... [--security-group G]...',
  summary: 'package PATH (directory, .zip or .tgz), upload it and publish a version',
  help: [
    '  --name N        function name (created when it does not exist)',
    '  --handler F.E   handler as FILE.EXPORT (default index.handler for new functions)',
    '  --runtime R     runtime (default nodejs24.x)',
    '  --memory MB     memory in MB, 128-10240 (default 128)',
    '  --tmp MB        size of the private /tmp (EphemeralStorage), 512-10240 (default 512)',
    '  --timeout S     timeout in seconds, 1-900 (default 3)',
    '  --env K=V       environment variable; repeat for more. When given, replaces all of them',
    '  --egress P      where instances may connect: none, public (default: public addresses only) or an',
    '                  allow-list HOST[:PORTS],CIDR[:PORTS],... e.g. api.example.com:443,10.0.0.0/24:5432',
    '  --network NET   join the Thaw private network NET (`thaw network create`); repeat for more;',
    '                  --network none leaves them all',
    '  --security-group G  on its networks reach only what group G allows (`thaw network sg create`); repeat',
    '  --description D',
    '  --no-publish    update $LATEST only',
    '',
  ].join('\n'),
  options: {
    name: { type: 'string', short: 'n' },
    handler: { type: 'string' },
    runtime: { type: 'string' },
    memory: { type: 'string' },
    tmp: { type: 'string' },
    timeout: { type: 'string' },
    env: { type: 'string', multiple: true, short: 'e' },
    description: { type: 'string' },
    egress: { type: 'string' },
    network: { type: 'string', multiple: true },
    'security-group': { type: 'string', multiple: true },
    'no-publish': { type: 'boolean' },
  },
  async run(args) {
    const [path] = positionals(args, ['PATH'], this.usage);
    const name = str(args, 'name');
    if (!name) throw new ThawError('THAW_E_CLI_USAGE', `--name is required\nusage: thaw ${this.usage}`);
    const config = await configFromFlags(args);
    const zip = await packageBytes(args, path);
    const { client, io } = args;
    const publish = args.values['no-publish'] !== true;

    const exists = await client.call('GET', `/2015-03-31/functions/${fnPath(name)}`).then(() => true, (err) => {
      if (err instanceof ThawError && err.code === 'THAW_E_FUNCTION_NOT_FOUND') return false;
      throw err;
    });
    const upload = progress(io, `uploading ${mb(zip.length)}`);
    let version: string;
    if (!exists) {
      const created = await client.upload('POST', '/2015-03-31/functions', {
        FunctionName: name, Role: 'arn:aws:iam::000000000000:role/thaw', Runtime: config.Runtime ?? 'nodejs24.x',
        Handler: config.Handler ?? 'index.handler', Code: { ZipFile: zip.toString('base64') }, Publish: publish, ...config,
      }, upload);
      version = created.json().Version;
      io.err(`created ${name}\n`);
    } else {
      const { Handler, ...rest } = config;
      // With no configuration to change, the code update publishes too: one request instead of two.
      const publishWithCode = publish && !Object.keys(rest).length;
      const updated = await client.upload('PUT', `/2015-03-31/functions/${fnPath(name)}/code`, { ZipFile: zip.toString('base64'), ThawHandler: Handler, ...(publishWithCode ? { Publish: true } : {}) }, upload);
      if (Object.keys(rest).length) await client.call('PUT', `/2015-03-31/functions/${fnPath(name)}/configuration`, { json: rest });
      version = publishWithCode ? updated.json().Version
        : publish ? (await client.call('POST', `/2015-03-31/functions/${fnPath(name)}/versions`, { json: {} })).json().Version : '$LATEST';
      io.err(`updated ${name}\n`);
    }
    io.out(`${name}:${version}\n`);
  },
};

/** The Lambda configuration fields the flags set; absent flags are left out so updates keep them. */
async function configFromFlags(args: CommandArgs) {
  const env = list(args, 'env');
  const vars: Record<string, string> = {};
  for (const kv of env) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new ThawError('THAW_E_CLI_USAGE', `--env takes KEY=VALUE, got ${JSON.stringify(kv)}`);
    vars[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const memory = num(args, 'memory', 'MB');
  const timeout = num(args, 'timeout', 'seconds');
  const tmp = num(args, 'tmp', 'MB');
  const egress = str(args, 'egress');
  const egressConfig = egress === undefined ? undefined : await egressFlag(egress);
  const networks = list(args, 'network');
  const groups = list(args, 'security-group');
  if (groups.length && !networks.length) throw new ThawError('THAW_E_CLI_USAGE', '--security-group applies on a network: give --network NAME too');
  const cfg: Record<string, unknown> = {
    Handler: str(args, 'handler'),
    Runtime: str(args, 'runtime'),
    MemorySize: memory,
    Timeout: timeout,
    EphemeralStorage: tmp === undefined ? undefined : { Size: tmp },
    Description: str(args, 'description'),
    Environment: env.length ? { Variables: vars } : undefined,
    ThawEgress: egressConfig,
    VpcConfig: networks.length ? { SubnetIds: networks.includes('none') ? [] : networks, SecurityGroupIds: networks.includes('none') ? [] : groups } : undefined,
  };
  return Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== undefined)) as {
    Handler?: string; Runtime?: string; MemorySize?: number; EphemeralStorage?: { Size: number }; Timeout?: number; Description?: string; Environment?: { Variables: Record<string, string> };
    ThawEgress?: { Mode: string; Allow?: readonly string[] }; VpcConfig?: { SubnetIds: string[]; SecurityGroupIds: string[] };
  };
}

/**
 * --egress none|public|RULE,RULE… as the API's ThawEgress (checked here, so a typo fails before the upload).
 * The network module is loaded only for this flag: most deploys have none, and it is not small.
 */
async function egressFlag(spec: string) {
  const { parseEgressSpec } = await import('../../network/index.ts');
  const p = parseEgressSpec(spec);
  return { Mode: p.mode, ...(p.allow ? { Allow: p.allow } : {}) };
}

async function packageBytes(args: CommandArgs, path: string): Promise<Buffer> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new ThawError('THAW_E_PACKAGE_MISSING', `${path} does not exist`);
  if (info.isDirectory()) {
    const bytes = await zipDirectory(path, { onProgress: progress(args.io, `packaging ${path}`) });
    return bytes;
  }
  if (!/\.(zip|tgz|tar\.gz)$/i.test(path)) throw new ThawError('THAW_E_PACKAGE_FORMAT', `${path} is not a directory, .zip or .tgz`);
  return readFile(path);
}
