// `thaw list`: the functions with their configuration, published versions and aliases.
import { fnPath } from '../client.ts';
import { positionals, table, type Command } from '../command.ts';

export const listCommand: Command = {
  name: 'list',
  usage: 'list [--json]',
  summary: 'list functions, their versions and aliases',
  options: { json: { type: 'boolean' } },
  async run(args) {
    positionals(args, [], this.usage);
    const { client, io } = args;
    const { Functions } = await client.get('/2015-03-31/functions?MaxItems=10000');
    const rows = await Promise.all((Functions as any[]).map(async (f) => {
      const [{ Versions }, { Aliases }] = await Promise.all([
        client.get(`/2015-03-31/functions/${fnPath(f.FunctionName)}/versions`),
        client.get(`/2015-03-31/functions/${fnPath(f.FunctionName)}/aliases`),
      ]);
      const published = (Versions as any[]).map((v) => v.Version).filter((v) => v !== '$LATEST');
      return { ...f, Versions: published, Aliases: (Aliases as any[]).map((a) => `${a.Name}->${a.FunctionVersion}`) };
    }));
    if (args.values.json) {
      io.out(`${JSON.stringify(rows, null, 2)}\n`);
      return 0;
    }
    if (!rows.length) {
      io.err('no functions yet; deploy one with `thaw deploy examples/hello --name hello`\n');
      return 0;
    }
    io.out(table(['NAME', 'RUNTIME', 'HANDLER', 'MEMORY', 'TIMEOUT', 'VERSIONS', 'ALIASES', 'MODIFIED'], rows.map((f) => [
      f.FunctionName, f.Runtime, f.Handler, `${f.MemorySize} MB`, `${f.Timeout} s`,
      f.Versions.length ? f.Versions.join(',') : '-', f.Aliases.length ? f.Aliases.join(' ') : '-', String(f.LastModified).slice(0, 19),
    ])));
    return 0;
  },
};
