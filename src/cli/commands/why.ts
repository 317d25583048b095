// `thaw why ID [--json]`: why an invocation was cold (or that it was warm, and from which tier), and what
// would have avoided it with its cost, from GET /thaw/v1/invocations/{id}/why.
import { ThawError } from '../../core/errors.ts';
import { type Command } from '../command.ts';

export const whyCommand: Command = {
  name: 'why',
  usage: 'why INVOCATION_ID [--json]',
  summary: 'say why an invocation was cold, and what would have kept it warm at what cost',
  help: '  --json   print cause, detail, facts and avoidableBy as JSON\n',
  options: { json: { type: 'boolean' } },
  async run(args) {
    const { client, io } = args;
    const [id, extra] = args.positionals;
    const usage = (why: string) => new ThawError('THAW_E_CLI_USAGE', `${why}\nusage: thaw ${this.usage}`);
    if (!id) throw usage('missing the invocation id (X-Thaw-Invocation-Id, or from thaw logs)');
    if (extra !== undefined) throw usage(`unexpected argument ${JSON.stringify(extra)}`);
    const why = await client.get(`/thaw/v1/invocations/${encodeURIComponent(id)}/why`) as { summary: string };
    io.out(args.values.json ? `${JSON.stringify(why, null, 2)}\n` : `${why.summary}\n`);
    return 0;
  },
};
