// `thaw policy N [SPEC | --default] [--json]`: a function's keep-alive/prewarm policy and what it has
// learned (idle-time histogram, windows, predicted next arrival, concurrency, call chains), with the
// agent's recent decisions and their reasons; with SPEC, sets it.
import { ThawError } from '../../core/errors.ts';
import { fnPath } from '../client.ts';
import { table, type Command } from '../command.ts';

const dur = (ms: number | null | undefined) => (ms === null || ms === undefined ? '∞' : ms >= 3600_000 ? `${(ms / 3600_000).toFixed(1)} h` : ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(1)} s`);

/** A one-line bar chart of the histogram's non-empty bins. */
function histogramLine(bins: [number, number][]): string {
  if (!bins.length) return '  (no idle times yet)';
  const max = Math.max(...bins.map(([, c]) => c));
  return bins.slice(0, 24).map(([m, c]) => `  ${String(m).padStart(3)} min ${'#'.repeat(Math.max(1, Math.round((c / max) * 30)))} ${c}`).join('\n') + (bins.length > 24 ? `\n  … ${bins.length - 24} more bins` : '');
}

export const policyCommand: Command = {
  name: 'policy',
  usage: 'policy N [SPEC | --default] [--json]',
  summary: 'show (or set) a function\'s keep-alive/prewarm policy and its decisions',
  help: [
    '  SPEC       fixed:<ttl> (fixed:10m), hybrid:<range> (hybrid:4h), gdsf[:<budget>], thaw[:<range>[:<budget>]]',
    '             thaw takes autoscaler options: ,buffer=<spare instances> ,utilization=<0.1..1> ,cooldown=<scale-in cooldown>',
    '             e.g. thaw,buffer=1  or  thaw:2h,buffer=2,cooldown=5m',
    '  --default  drop the function\'s own policy: it follows the node default (thaw up --policy)',
    '  --json     print the state as JSON',
    '',
  ].join('\n'),
  options: { default: { type: 'boolean' }, json: { type: 'boolean' } },
  async run(args) {
    const [name, spec, extra] = args.positionals;
    const { client, io } = args;
    if (!name || extra !== undefined) throw new ThawError('THAW_E_CLI_USAGE', `${name ? `unexpected argument ${JSON.stringify(extra)}` : 'missing the function'}\nusage: thaw ${this.usage}`);
    if (spec !== undefined && args.values.default) throw new ThawError('THAW_E_CLI_USAGE', 'give a SPEC or --default, not both');
    const path = `/thaw/v1/functions/${fnPath(name)}/policy`;
    const s = spec !== undefined ? (await client.call('PUT', path, { json: { policy: spec } })).json()
      : args.values.default ? (await client.call('DELETE', path)).json()
      : await client.get(path);
    if (args.values.json) { io.out(`${JSON.stringify(s, null, 2)}\n`); return 0; }
    const w = s.windows;
    io.out([
      `function   ${name}`,
      `policy     ${s.policy}${s.explicit ? '' : ' (node default)'}`,
      `windows    pre-warm ${dur(w.prewarmMs)}, keep-alive ${dur(w.keepAliveMs)} (${w.mode}: ${w.reason})`,
      `next call  ${s.predictedNextArrivalInMs === null ? 'no prediction' : `expected in ${dur(s.predictedNextArrivalInMs)}`}`,
      ...(s.paging ? [`paged tier ${s.paging.pageAfterIdleMs === null ? `not used (${s.paging.reason})` : `paged out after ${dur(s.paging.pageAfterIdleMs)} idle, kept paged to ${dur(s.paging.pagedKeepAliveMs)} (${s.paging.reason})`}`] : []),
      ...(s.concurrency ? [`scale      desired ${s.concurrency.desired} (${s.concurrency.reason})`] : []),
      ...(s.callees?.length ? [`calls      ${s.callees.map((c: any) => `${c.callee} ${(c.probability * 100).toFixed(0)}%`).join(', ')}`] : []),
      ...(s.histogram ? [`idle times ${s.histogram.idleTimes} (${s.histogram.outOfBounds} beyond ${s.histogram.rangeMinutes} min), CV ${s.histogram.cv}`, histogramLine(s.histogram.bins)] : []),
      '',
    ].join('\n'));
    if (s.decisions.length) io.out(table(['AGO', 'ACTION', 'REASON'], s.decisions.slice(-15).map((d: any) => [dur(d.agoMs), `${d.action}${d.count ? ` ${d.count}` : ''}`, d.reason])));
    return 0;
  },
};
