// `thaw trace ID` (or `--last [N]`): an invocation's cold-start phases as a waterfall in the terminal.
import { ThawError } from '../../core/errors.ts';
import type { InvocationRecord } from '../../core/types.ts';
import { renderWaterfall } from '../../telemetry/index.ts';
import { fnPath } from '../client.ts';
import { type Command } from '../command.ts';

export const traceCommand: Command = {
  name: 'trace',
  usage: 'trace INVOCATION_ID | trace --last [FUNCTION] [--json]',
  summary: 'show where an invocation spent its time, phase by phase',
  help: '  --last   trace the newest invocation (of FUNCTION when given)\n  --json   print the record as JSON\n',
  options: { last: { type: 'boolean' }, json: { type: 'boolean' } },
  async run(args) {
    const { client, io } = args;
    const [arg, extra] = args.positionals;
    const usage = (why: string) => new ThawError('THAW_E_CLI_USAGE', `${why}\nusage: thaw ${this.usage}`);
    if (extra !== undefined) throw usage(`unexpected argument ${JSON.stringify(extra)}`);
    let rec: InvocationRecord;
    if (args.values.last) {
      const { invocations } = await client.get(`/thaw/v1/invocations?limit=1${arg ? `&function=${fnPath(arg)}` : ''}`);
      if (!invocations.length) throw new ThawError('THAW_E_INVOCATION_NOT_FOUND', `no invocations${arg ? ` of ${arg}` : ''} are recorded yet`);
      rec = invocations[0];
    } else {
      if (!arg) throw usage('missing the invocation id (X-Thaw-Invocation-Id), or use --last');
      rec = await client.get(`/thaw/v1/invocations/${encodeURIComponent(arg)}`);
    }
    io.out(args.values.json ? `${JSON.stringify(rec, null, 2)}\n` : `${renderWaterfall(rec, io.tty)}\n`);
    return 0;
  },
};
