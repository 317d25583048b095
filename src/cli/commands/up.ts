// `thaw up`: runs a Thaw node in this process until SIGINT/SIGTERM, then drains and stops every instance.
// With --demo it deploys the functions in examples/ and prints how to call them.
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ThawError } from '../../core/errors.ts';
import { parseSizeMb } from '../../policies/index.ts';
import { zipDirectory } from '../../codestore/index.ts';
import { redactUrl, startThaw, type Platform, type UserOptions } from '../../gateway/index.ts';
import { nftAvailable } from '../../network/index.ts';
import { num, positionals, str, type Command, type Io } from '../command.ts';

const EXAMPLES = resolve(import.meta.dirname, '..', '..', '..', 'examples');

/** The demo functions and how each is deployed (see examples/README.md). */
const DEMO = [
  { name: 'hello', dir: 'hello', handler: 'index.handler' },
  { name: 'greeter', dir: 'greeter-cjs', handler: 'index.handler', env: { DEFAULT_NAME: 'friend' } },
  { name: 'http-api', dir: 'http-api', handler: 'index.handler' },
  { name: 'chain', dir: 'chain', handler: 'index.handler' },
  { name: 'ts-hello', dir: 'ts-hello', handler: 'handler.handler' },
];

export const upCommand: Command = {
  name: 'up',
  usage: 'up [--port N] [--data DIR] [--demo]',
  summary: 'run Thaw on this machine (Ctrl-C drains and stops)',
  help: [
    '  --port N          port to listen on (default $PORT, else 8080; 0 picks a free one)',
    '  --host H          address to bind (default 127.0.0.1)',
    '  --data DIR        data directory: SQLite file and packages (default .thaw)',
    '  --cache DIR       node-local unpacked code (default: tmpfs under /dev/shm)',
    '  --demo            deploy the functions in examples/ (skipped when they exist)',
    '  --policy SPEC     keep-alive/prewarm policy of functions without their own: thaw (default),',
    '                    fixed:10m, hybrid:4h, gdsf (see `thaw policy --help`)',
    '  --idle-timeout S  shorthand for --policy fixed:<S>s',
    '  --memory-budget SIZE  memory for loaded instances (e.g. 8g; default 75% of RAM)',
    '  --swap-budget SIZE    swap the paged tier may fill, apart from RAM (default 90% of the swap areas)',
    '  --access-log      log each request to stderr',
    '  --max-package-mb N, --max-unpacked-mb N   package limits (default 50 and 250)',
    '  --pool-size N     generic runtimes kept started per memory size (default 2; 0: none)',
    '  --freeze-after S  seconds idle before an instance is frozen (default 10; -1: never)',
    '  --page-after S    seconds frozen before its memory goes to swap, the paged tier, for every policy',
    '                    (default: the policy chooses, by each tier\'s cost and its keep-alive window; -1: never)',
    '  --zram SIZE       set up a zram swap device of SIZE (e.g. 2g) for the paged tier, released on stop',
    '                    (root; otherwise the host\'s own swap is used, and without swap the tier is off)',
    '  --no-snapshots    do not snapshot published versions',
    '  --code-cache-mb N bound of the node-local unpacked code cache (default 4096)',
    '  --image-min-kb N  packages whose unpacked tree is smaller get no squashfs image (default 1024)',
    '  --sandbox KIND    auto (default: namespaces where the host allows it), namespaces, or process',
    '                    (no isolation: instances run as this user and see the host)',
    '  --no-agent        a cluster\'s control plane: run no instances here, place invocations on the',
    '                    agents that join (thaw agent --control URL, with a key of role agent)',
    '  --origin URL      where packages, layers and snapshots live: s3://BUCKET[/PREFIX] (default $THAW_ORIGIN,',
    '                    else the data dir); endpoint and keys from AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, …',
    '  --store SPEC      the store: a postgres://USER:PASSWORD@HOST/DB URL that several Thaw processes share,',
    '                    or a SQLite file (default $THAW_STORE, else thaw.db in the data dir)',
    '  --metrics-token T bearer token that lets Prometheus read /metrics once access keys exist (default',
    '                    $THAW_METRICS_TOKEN; without one, /metrics then needs a signed request)',
    '  --metrics-max-functions N  functions /metrics labels apart (default 1000; later ones: function="_other")',
    '',
  ].join('\n'),
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    data: { type: 'string' },
    cache: { type: 'string' },
    demo: { type: 'boolean' },
    'idle-timeout': { type: 'string' },
    policy: { type: 'string' },
    'memory-budget': { type: 'string' },
    'swap-budget': { type: 'string' },
    'access-log': { type: 'boolean' },
    'max-package-mb': { type: 'string' },
    'max-unpacked-mb': { type: 'string' },
    'pool-size': { type: 'string' },
    'freeze-after': { type: 'string' },
    'page-after': { type: 'string' },
    zram: { type: 'string' },
    'no-snapshots': { type: 'boolean' },
    'code-cache-mb': { type: 'string' },
    'image-min-kb': { type: 'string' },
    sandbox: { type: 'string' },
    'no-agent': { type: 'boolean' },
    origin: { type: 'string' },
    'metrics-token': { type: 'string' },
    'metrics-max-functions': { type: 'string' },
    store: { type: 'string' },
  },
  async run(args) {
    positionals(args, [], this.usage);
    const { io } = args;
    const port = num(args, 'port') ?? (io.env.PORT ? Number(io.env.PORT) : 8080);
    if (!Number.isInteger(port) || port > 65535) throw new ThawError('THAW_E_CLI_USAGE', `--port (or $PORT) must be a port number, got ${port}`);
    const idle = num(args, 'idle-timeout', 'seconds');
    const options: UserOptions = {
      port,
      host: str(args, 'host'),
      dataDir: str(args, 'data') ?? io.env.THAW_DATA ?? '.thaw',
      cacheDir: str(args, 'cache'),
      idleTimeoutMs: idle === undefined ? undefined : Math.round(idle * 1000),
      accessLog: args.values['access-log'] === true,
      maxPackageMb: num(args, 'max-package-mb', 'MB'),
      maxUnpackedMb: num(args, 'max-unpacked-mb', 'MB'),
      poolSize: num(args, 'pool-size'),
      freezeAfterMs: freezeAfter(str(args, 'freeze-after')),
      pageAfterMs: freezeAfter(str(args, 'page-after'), '--page-after'),
      zramMb: zram(str(args, 'zram')),
      snapshots: args.values['no-snapshots'] ? false : undefined,
      codeCacheMb: num(args, 'code-cache-mb', 'MB'),
      imageMinKb: num(args, 'image-min-kb', 'KB'),
      policy: str(args, 'policy'),
      memoryBudgetMb: budget(str(args, 'memory-budget')),
      swapBudgetMb: budget(str(args, 'swap-budget'), '--swap-budget'),
      sandbox: sandboxKind(str(args, 'sandbox')),
      localAgent: args.values['no-agent'] ? false : undefined,
      origin: str(args, 'origin') ?? (io.env.THAW_ORIGIN || undefined),
      metricsToken: str(args, 'metrics-token') ?? io.env.THAW_METRICS_TOKEN,
      metricsMaxFunctions: num(args, 'metrics-max-functions'),
      store: str(args, 'store') ?? (io.env.THAW_STORE || undefined),
    };
    const thaw = await startThaw(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as UserOptions);
    io.err(`thaw: listening on ${thaw.url} (data ${thaw.platform.options.dataDir}, code cache ${thaw.platform.options.cacheDir})\n`);
    if (thaw.platform.blobs.kind !== 'local') io.err(`thaw: origin: ${thaw.platform.blobs.location} (${thaw.platform.blobs.kind})\n`);
    if (thaw.platform.store.kind !== 'sqlite') io.err(`thaw: store: ${redactUrl(thaw.platform.options.store)} (${thaw.platform.store.kind}, shared)\n`);
    io.err(sandboxBanner(thaw.platform));
    if (args.values.demo) {
      try {
        await deployDemo(thaw.platform, io);
        io.out(demoHelp(thaw.url));
      } catch (err) {
        await thaw.destroy();
        throw err;
      }
    }
    io.out(`Thaw is up at ${thaw.url} — press Ctrl-C to stop. Dashboard: ${thaw.url}/\n`);
    await untilStopped(io);
    io.err('thaw: draining (running invocations finish, then every instance stops; Ctrl-C again to kill now)\n');
    const force = () => { io.err('thaw: killing instances now\n'); void thaw.destroy(); };
    process.once('SIGINT', force);
    process.once('SIGTERM', force);
    try {
      await thaw.close();
    } finally {
      process.off('SIGINT', force);
      process.off('SIGTERM', force);
    }
    io.err('thaw: stopped\n');
    return 0;
  },
};

export function sandboxKind(v: string | undefined): UserOptions['sandbox'] {
  if (v === undefined || v === 'auto' || v === 'namespaces' || v === 'process') return v;
  throw new ThawError('THAW_E_CLI_USAGE', `--sandbox takes auto, namespaces or process, got ${JSON.stringify(v)}`);
}

/** Says plainly how instances are confined, and what is not enforced. */
function sandboxBanner(platform: Platform): string {
  const r = platform.driver.report();
  const lines = [`thaw: sandbox: ${r.driver}${r.isolated ? '' : ' — instances are NOT isolated: they run as this user and can read, write and signal what it can'}`];
  if (r.leftoversRemoved) lines.push(`thaw:   removed ${r.leftoversRemoved} sandbox(es) left by an earlier run that was killed`);
  if (platform.options.sandboxFallback) lines.push(`thaw:   namespaces are off: ${platform.options.sandboxFallback}`);
  for (const e of r.enforced) lines.push(`thaw:   on:  ${e}`);
  for (const n of r.notEnforced) lines.push(`thaw:   off: ${n}`);
  const images = platform.cache.stats().images;
  lines.push(images.mounts
    ? `thaw:   on:  package images: a package is mounted read-only from its image (${images.mounts === 'kernel' ? 'loop device' : 'squashfuse'}), not unpacked`
    : 'thaw:   off: package images: packages are unpacked (mounting needs root with loop devices, or squashfuse and /dev/fuse)');
  const paged = platform.pagedTier();
  const when = platform.options.pageAfterMs === null ? 'when the policy chooses' : `after ${platform.options.pageAfterMs / 1000} s frozen`;
  lines.push(paged.on ? `thaw:   on:  paged tier: frozen instances go to swap ${when} (${paged.how})` : `thaw:   off: paged tier: ${paged.how}`);
  const net = platform.network?.view();
  if (net) {
    lines.push(`thaw:   on:  egress proxy pair (active/standby, pids ${net.proxies.map((p) => p.pid).join(', ')}); per-function policy, default public addresses only`);
    lines.push(platform.network!.vpc.available() ? `thaw:   on:  private networks (thaw network create; ${net.networks.length} here)` : 'thaw:   off: private networks: iproute2 is missing (apt-get install iproute2)');
    lines.push(nftAvailable() ? 'thaw:   on:  security groups on private networks (nftables)' : 'thaw:   off: security groups: nftables is missing (apt-get install nftables)');
  } else {
    lines.push('thaw:   off: egress policies and private networks: instances share this host\'s network (they need the namespaces sandbox)');
  }
  return lines.join('\n') + '\n';
}

export function budget(v: string | undefined, flag = '--memory-budget'): number | undefined {
  if (v === undefined) return undefined;
  const mb = parseSizeMb(v);
  if (mb === null || mb < 128) throw new ThawError('THAW_E_CLI_USAGE', `${flag} takes a size of at least 128m, such as 8g, got ${JSON.stringify(v)}`);
  return mb;
}

function zram(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const mb = parseSizeMb(v);
  if (mb === null || mb < 16) throw new ThawError('THAW_E_CLI_USAGE', `--zram takes a size of at least 16m, such as 2g, got ${JSON.stringify(v)}`);
  return mb;
}

/** Seconds from the flag to ms; any negative value means never. */
function freezeAfter(v: string | undefined, flag = '--freeze-after'): number | undefined {
  if (v === undefined) return undefined;
  const s = Number(v);
  if (!Number.isFinite(s)) throw new ThawError('THAW_E_CLI_USAGE', `${flag} takes seconds (or -1 for never), got ${JSON.stringify(v)}`);
  return s < 0 ? -1 : Math.round(s * 1000);
}

/** Resolves on SIGINT, SIGTERM or the io's abort signal. */
export function untilStopped(io: Io): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      io.signal?.removeEventListener('abort', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
    io.signal?.addEventListener('abort', done);
  });
}

async function deployDemo(platform: Platform, io: Io) {
  const present = new Set((await platform.control.listFunctions()).map((f) => f.name));
  const available = new Set(await readdir(EXAMPLES));
  for (const d of DEMO) {
    if (present.has(d.name)) { io.err(`thaw: demo function ${d.name} exists; leaving it as it is\n`); continue; }
    if (!available.has(d.dir)) throw new ThawError('THAW_E_PACKAGE_MISSING', `examples/${d.dir} is missing from ${EXAMPLES}`);
    const code = await zipDirectory(join(EXAMPLES, d.dir));
    const { published } = await platform.control.createFunction({ name: d.name, code, publish: true, handler: d.handler, env: d.env });
    io.err(`thaw: deployed ${d.name} (examples/${d.dir}) as version ${published?.version}\n`);
  }
}

function demoHelp(url: string): string {
  return `
Try it:
  npx thaw invoke hello --payload '{"name":"you"}'        # first call: a cold start
  npx thaw invoke hello                                    # again: warm
  npx thaw trace --last hello --cold                       # where the cold start spent its time
  npx thaw invoke chain --payload '{"target":"greeter"}'   # context.invoke of another function
  curl -i '${url}/http-api/hi?name=you'      # HTTP trigger (API Gateway v2 event)
  aws lambda invoke --endpoint-url ${url} --function-name hello out.json

`;
}
