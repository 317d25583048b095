// `thaw schedule N 'rate(5 minutes)' [--warmup] [--payload JSON]` adds a timer trigger (or a scheduled
// warm-up); `thaw schedule N` lists them; `thaw schedule N --rm ID` removes one.
import { ThawError } from '../../core/errors.ts';
import { fnPath } from '../client.ts';
import { str, table, type Command } from '../command.ts';

export const scheduleCommand: Command = {
  name: 'schedule',
  usage: 'schedule N [EXPRESSION [--warmup] [--payload JSON] [--qualifier Q]] | schedule N --rm ID',
  summary: 'invoke or warm a function on a schedule: rate(5 minutes), cron(0 * * * *)',
  help: [
    '  EXPRESSION   rate(N minutes|hours|days) or cron(min hour day month weekday), in UTC',
    '  --warmup     a warm-up: the event has "warmup": true and context.warmup is set; never counted as a user invocation',
    '  --payload J  the event to deliver (default: EventBridge\'s scheduled event)',
    '  --rm ID      remove a schedule',
    '',
  ].join('\n'),
  options: { warmup: { type: 'boolean' }, payload: { type: 'string' }, qualifier: { type: 'string' }, rm: { type: 'string' } },
  async run(args) {
    const [name, expression, extra] = args.positionals;
    const { client, io } = args;
    if (!name || extra !== undefined) throw new ThawError('THAW_E_CLI_USAGE', `${name ? `unexpected argument ${JSON.stringify(extra)} (quote the expression)` : 'missing the function'}\nusage: thaw ${this.usage}`);
    const base = `/thaw/v1/functions/${fnPath(name)}/schedules`;
    const rm = str(args, 'rm');
    if (rm) {
      await client.call('DELETE', `${base}/${encodeURIComponent(rm)}`);
      io.err(`removed schedule ${rm} of ${name}\n`);
      return 0;
    }
    if (expression) {
      let payload: unknown;
      const p = str(args, 'payload');
      if (p !== undefined) {
        try { payload = JSON.parse(p); } catch { throw new ThawError('THAW_E_CLI_USAGE', '--payload must be JSON'); }
      }
      const s = (await client.call('POST', base, { json: { expression, kind: args.values.warmup ? 'warmup' : 'invoke', payload, qualifier: str(args, 'qualifier') } })).json();
      io.out(`${s.id}: ${s.kind} ${name} ${s.expression}, next at ${new Date(s.nextAt).toISOString()}\n`);
      return 0;
    }
    const { schedules } = await client.get(base);
    io.out(table(['ID', 'KIND', 'EXPRESSION', 'QUALIFIER', 'NEXT (UTC)', 'LAST'], (schedules as any[]).map((s) => [
      s.id, s.kind, s.expression, s.qualifier, new Date(s.nextAt).toISOString(), s.lastAt ? `${new Date(s.lastAt).toISOString()} ${s.recent.at(-1)?.outcome ?? ''}` : '-',
    ])));
    return 0;
  },
};
