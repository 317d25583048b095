// `thaw trace ID` (or `--last [N]`): an invocation's cold-start phases as a waterfall in the terminal.
import { ThawError } from '../../core/errors.ts';
import type { InvocationRecord } from '../../core/types.ts';
import { renderWaterfall } from '../../telemetry/index.ts';
import { fnPath } from '../client.ts';
import { type Command } from '../command.ts';

export const traceCommand: Command = {
  name: 'trace',
  usage: 'trace INVOCATION_ID | trace --last [FUNCTION] [--cold] [--json]',
  summary: 'show where an invocation spent its time, phase by phase',
  help: '  --last   trace the newest invocation (of FUNCTION when given)\n  --cold   with --last: the newest cold start\n  --json   print the record as JSON\n',
  options: { last: { type: 'boolean' }, cold: { type: 'boolean' }, json: { type: 'boolean' } },
  async run(args) {
    const { client, io } = args;
    const [arg, extra] = args.positionals;
    const usage = (why: string) => new ThawError('THAW_E_CLI_USAGE', `${why}\nusage: thaw ${this.usage}`);
    if (extra !== undefined) throw usage(`unexpected argument ${JSON.stringify(extra)}`);
    let rec: InvocationRecord;
    if (args.values.last) {
      const limit = args.values.cold ? 1000 : 1;
      const { invocations } = await client.get(`/thaw/v1/invocations?limit=${limit}${arg ? `&function=${fnPath(arg)}` : ''}`) as { invocations: InvocationRecord[] };
      // "Cold" here means any start of a new instance: full cold, pooled or restored.
      const pick = args.values.cold ? invocations.find((r) => r.start === 'cold' || r.start === 'pooled' || r.start === 'restored') : invocations[0];
      if (!pick) throw new ThawError('THAW_E_INVOCATION_NOT_FOUND', `no ${args.values.cold ? 'cold ' : ''}invocations${arg ? ` of ${arg}` : ''} among the newest ${limit} records`);
      rec = pick;
    } else {
      if (!arg) throw usage('missing the invocation id (X-Thaw-Invocation-Id), or use --last');
      rec = await client.get(`/thaw/v1/invocations/${encodeURIComponent(arg)}`);
    }
    io.out(args.values.json ? `${JSON.stringify(rec, null, 2)}\n` : `${renderWaterfall(rec, io.tty)}\n`);
    return 0;
  },
};
