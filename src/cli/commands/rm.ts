// `thaw rm N[:VERSION]`: deletes a function (with its versions, aliases and instances) or one version.
import { fnPath } from '../client.ts';
import { positionals, type Command } from '../command.ts';

export const rmCommand: Command = {
  name: 'rm',
  usage: 'rm N[:VERSION]',
  summary: 'delete a function, or one published version of it',
  options: {},
  async run(args) {
    const [ref] = positionals(args, ['N'], this.usage);
    await args.client.call('DELETE', `/2015-03-31/functions/${fnPath(ref)}`);
    args.io.err(`deleted ${ref}\n`);
    return 0;
  },
};
