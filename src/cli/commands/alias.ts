// `thaw alias set|ls|rm`: points an alias at a version, optionally sending a share of traffic to another
// version (RoutingConfig.AdditionalVersionWeights), lists aliases, removes one.
import { ThawError } from '../../core/errors.ts';
import { fnPath } from '../client.ts';
import { str, table, type Command } from '../command.ts';

const USAGE = 'alias set N ALIAS VERSION [--weight V=0.1] | alias ls N | alias rm N ALIAS';

export const aliasCommand: Command = {
  name: 'alias',
  usage: USAGE,
  summary: 'manage aliases and weighted traffic splits',
  help: '  --weight V=W   send share W (0..1) of the alias\'s traffic to version V; --weight none clears it\n',
  options: { weight: { type: 'string', short: 'w' } },
  async run(args) {
    const [sub, name, alias, version, ...extra] = args.positionals;
    const { client, io } = args;
    const usage = (why: string) => new ThawError('THAW_E_CLI_USAGE', `${why}\nusage: thaw ${USAGE}`);
    if (extra.length) throw usage(`unexpected argument ${JSON.stringify(extra[0])}`);
    if (!name) throw usage('missing the function name');
    const base = `/2015-03-31/functions/${fnPath(name)}/aliases`;

    if (sub === 'ls') {
      if (alias) throw usage(`unexpected argument ${JSON.stringify(alias)}`);
      const { Aliases } = await client.get(base);
      io.out(table(['ALIAS', 'VERSION', 'ROUTING'], (Aliases as any[]).map((a) => [a.Name, a.FunctionVersion, routingText(a.RoutingConfig)])));
      return 0;
    }
    if (sub === 'rm') {
      if (!alias || version) throw usage(alias ? `unexpected argument ${JSON.stringify(version)}` : 'missing the alias name');
      await client.call('DELETE', `${base}/${encodeURIComponent(alias)}`);
      io.err(`removed alias ${name}:${alias}\n`);
      return 0;
    }
    if (sub !== 'set') throw usage(`unknown alias command ${JSON.stringify(sub ?? '')}`);
    if (!alias || !version) throw usage(!alias ? 'missing the alias name' : 'missing the version');

    const body: Record<string, unknown> = { FunctionVersion: version };
    const weight = str(args, 'weight');
    if (weight !== undefined) body.RoutingConfig = { AdditionalVersionWeights: parseWeight(weight) };
    const exists = await client.call('GET', `${base}/${encodeURIComponent(alias)}`).then(() => true, (err) => {
      if (err instanceof ThawError && err.code === 'THAW_E_ALIAS_NOT_FOUND') return false;
      throw err;
    });
    const r = exists
      ? await client.call('PUT', `${base}/${encodeURIComponent(alias)}`, { json: body })
      : await client.call('POST', base, { json: { Name: alias, ...body } });
    const a = r.json();
    io.out(`${name}:${a.Name} -> ${a.FunctionVersion}${a.RoutingConfig ? `, ${routingText(a.RoutingConfig)}` : ''}\n`);
    return 0;
  },
};

function parseWeight(w: string): Record<string, number> {
  if (w === 'none') return {};
  const m = /^([^=]+)=([0-9.]+)$/.exec(w);
  const weight = m ? Number(m[2]) : NaN;
  if (!m || !(weight >= 0 && weight <= 1)) throw new ThawError('THAW_E_CLI_USAGE', `--weight takes VERSION=SHARE with a share from 0 to 1, e.g. --weight 2=0.1; got ${JSON.stringify(w)}`);
  return { [m[1]]: weight };
}

function routingText(rc: { AdditionalVersionWeights?: Record<string, number> } | undefined): string {
  const entries = Object.entries(rc?.AdditionalVersionWeights ?? {});
  return entries.length ? entries.map(([v, w]) => `${(w * 100).toFixed(1).replace(/\.0$/, '')}% to version ${v}`).join(', ') : '-';
}
