// `thaw keys create|list|revoke`: access keys for signed API calls. Through a running server's API (an
// admin key signs the call), or with --data DIR straight in the data dir's store: that is how the first
// key is made, by whoever can write the data dir, and it takes effect at once on a running server.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { systemClock } from '../../core/clock.ts';
import { ThawError } from '../../core/errors.ts';
import { KEY_ROLES, type KeyRole } from '../../core/types.ts';
import { KeyRing, keyView, openStore } from '../../gateway/index.ts';
import { list, str, table, type Command, type CommandArgs } from '../command.ts';

type KeyShape = ReturnType<typeof keyView> & { SecretAccessKey?: string };

/**
 * Runs fn on the key ring of a data dir (its sealing key, and its SQLite store unless another store is
 * given: a cluster's PostgreSQL, where its control plane cannot start on a public address without a key),
 * closing the store after.
 */
async function offline<T>(dataDir: string, storeSpec: string | undefined, fn: (ring: KeyRing, now: number) => Promise<T>): Promise<T> {
  const dir = resolve(dataDir);
  if (!storeSpec && !existsSync(join(dir, 'thaw.db'))) throw new ThawError('THAW_E_CLI_USAGE', `${dir} is not a Thaw data dir (no thaw.db); give the --data of a \`thaw up\` that has run, or its --store`);
  const store = await openStore(storeSpec ?? join(dir, 'thaw.db'));
  try {
    return await fn(new KeyRing(store, dir), systemClock.now());
  } finally {
    await store.close();
  }
}

function role(args: CommandArgs): KeyRole {
  const r = str(args, 'role') ?? 'developer';
  if (!KEY_ROLES.includes(r as KeyRole)) throw new ThawError('THAW_E_CLI_USAGE', `--role takes ${KEY_ROLES.join(', ')}, got ${JSON.stringify(r)}`);
  return r as KeyRole;
}

export const keysCommand: Command = {
  name: 'keys',
  usage: 'keys create [--role R] [--function F]... [--json] | keys list | keys revoke ID   [--data DIR]',
  summary: 'access keys: once one exists, every API call must be SigV4-signed',
  help: [
    '  --role R       admin (everything, keys too), developer (functions and invocations; default), invoker (invoke only),',
    '                 agent (only the cluster routes: the key of a `thaw agent`)',
    '  --function F   limit the key to these functions (repeat); default: all',
    '  --json         print JSON (create: AccessKeyId, SecretAccessKey, Role)',
    '  --data DIR     act on the data dir directly instead of through the API (how the first key is made)',
    '  --store SPEC   with --data: the store of a `thaw up --store` (default $THAW_STORE), such as a',
    '                 postgres:// URL; the sealing key is still DIR/keys/access.key',
    '',
    'Use a key with the AWS SDK or CLI as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or a profile), and',
    'with thaw itself the same way.',
    '',
  ].join('\n'),
  options: { role: { type: 'string' }, function: { type: 'string', multiple: true }, json: { type: 'boolean' }, data: { type: 'string' }, store: { type: 'string' } },
  async run(args) {
    const [verb, id, extra] = args.positionals;
    const { io, client } = args;
    const data = str(args, 'data');
    const storeSpec = str(args, 'store') ?? (io.env.THAW_STORE || undefined);
    if (extra !== undefined || !['create', 'list', 'revoke'].includes(verb ?? '')) throw new ThawError('THAW_E_CLI_USAGE', `usage: thaw ${this.usage}`);
    if (verb === 'create') {
      if (id !== undefined) throw new ThawError('THAW_E_CLI_USAGE', `keys create takes no argument, got ${JSON.stringify(id)}`);
      const fns = list(args, 'function');
      const made: KeyShape = data
        ? await offline(data, storeSpec, async (ring, now) => { const { key, secret } = await ring.create(role(args), fns.length ? fns : null, now); return { ...keyView(key), SecretAccessKey: secret }; })
        : (await client.call('POST', '/thaw/v1/keys', { json: { Role: role(args), Functions: fns.length ? fns : null } })).json();
      if (args.values.json) { io.out(`${JSON.stringify({ AccessKeyId: made.AccessKeyId, SecretAccessKey: made.SecretAccessKey, Role: made.Role, Functions: made.Functions }, null, 2)}\n`); return 0; }
      io.out([
        `AccessKeyId      ${made.AccessKeyId}`,
        `SecretAccessKey  ${made.SecretAccessKey}   (shown once: store it now)`,
        `Role             ${made.Role}${made.Functions ? ` (functions: ${made.Functions.join(', ')})` : ''}`,
        '',
        'From now on every API call must be signed. For the AWS SDK and CLI, and for thaw itself:',
        `  export AWS_ACCESS_KEY_ID=${made.AccessKeyId} AWS_SECRET_ACCESS_KEY=<the secret above>`,
        '',
      ].join('\n'));
      return 0;
    }
    if (verb === 'list') {
      const keys: KeyShape[] = data ? await offline(data, storeSpec, async (ring) => (await ring.list()).map(keyView)) : (await client.get('/thaw/v1/keys')).keys;
      if (args.values.json) { io.out(`${JSON.stringify(keys, null, 2)}\n`); return 0; }
      io.out(table(['ACCESS KEY ID', 'ROLE', 'FUNCTIONS', 'STATUS', 'CREATED'], keys.map((k) => [k.AccessKeyId, k.Role, k.Functions?.join(',') ?? '*', k.Status, k.CreatedAt])));
      return 0;
    }
    if (!id) throw new ThawError('THAW_E_CLI_USAGE', 'keys revoke needs the access key id');
    if (data) await offline(data, storeSpec, (ring, now) => ring.revoke(id, now));
    else await client.call('DELETE', `/thaw/v1/keys/${encodeURIComponent(id)}`);
    io.out(`revoked ${id}\n`);
    return 0;
  },
};
