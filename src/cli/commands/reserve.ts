// `thaw reserve N:QUALIFIER COUNT` keeps COUNT initialized instances of a version or alias (Lambda's
// provisioned concurrency; 0 removes them); `thaw reserve N` lists them with their status.
import { ThawError } from '../../core/errors.ts';
import { fnPath } from '../client.ts';
import { table, type Command } from '../command.ts';

export const reserveCommand: Command = {
  name: 'reserve',
  usage: 'reserve N:QUALIFIER COUNT | reserve N',
  summary: 'keep initialized instances of a version or alias ready (0 removes them)',
  options: {},
  async run(args) {
    const [ref, countText, extra] = args.positionals;
    const { client, io } = args;
    const usage = (why: string) => new ThawError('THAW_E_CLI_USAGE', `${why}\nusage: thaw ${this.usage}`);
    if (!ref || extra !== undefined) throw usage(ref ? `unexpected argument ${JSON.stringify(extra)}` : 'missing the function');
    const [name, qualifier] = ref.split(':');
    const base = `/2019-09-30/functions/${fnPath(name)}/provisioned-concurrency`;
    if (countText === undefined) {
      if (qualifier) throw usage('missing COUNT');
      const { ProvisionedConcurrencyConfigs: list } = await client.get(`${base}?List=ALL`);
      io.out(table(['QUALIFIER', 'REQUESTED', 'AVAILABLE', 'STATUS', 'REASON'], (list as any[]).map((c) => [
        c.FunctionArn.split(':').at(-1), String(c.RequestedProvisionedConcurrentExecutions), String(c.AvailableProvisionedConcurrentExecutions), c.Status, c.StatusReason ?? '',
      ])));
      return 0;
    }
    const count = Number(countText);
    if (!qualifier) throw usage('give the version or alias as N:QUALIFIER (reserved instances never follow $LATEST)');
    if (!Number.isInteger(count) || count < 0) throw usage(`COUNT must be a whole number, got ${JSON.stringify(countText)}`);
    if (count === 0) {
      await client.call('DELETE', `${base}?Qualifier=${encodeURIComponent(qualifier)}`);
      io.err(`removed the reserved instances of ${ref}\n`);
      return 0;
    }
    const r = (await client.call('PUT', `${base}?Qualifier=${encodeURIComponent(qualifier)}`, { json: { ProvisionedConcurrentExecutions: count } })).json();
    io.out(`${ref}: ${count} reserved instance(s) requested, ${r.AvailableProvisionedConcurrentExecutions} ready (${r.Status})\n`);
    return 0;
  },
};
