// `thaw sim --trace DIR [--policy SPEC] [--json]`: replays a trace (Azure Functions 2019 format, or a
// synthetic one) through the real policy engine on virtual time and reports cold starts and idle memory;
// `--sweep` runs each policy's parameter range and draws the Pareto chart.
import { readFileSync, writeFileSync } from 'node:fs';
import { ThawError } from '../../core/errors.ts';
import { DEFAULT_POLICY, formatPolicy, parsePolicy, parseSizeMb } from '../../policies/index.ts';
import { BENCH_COSTS, SIM_MODELS, paretoSvg, readAzureTrace, simulate, sweep, syntheticTrace, type PathCosts, type SimModel, type SimResult, type Trace } from '../../sim/index.ts';
import { num, str, table, type Command, type Io } from '../command.ts';

export function loadTrace(values: Record<string, unknown>): Trace {
  const synthetic = values.synthetic;
  if (typeof synthetic === 'string') {
    const n = Number(synthetic);
    if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new ThawError('THAW_E_CLI_USAGE', `--synthetic takes a number of functions, got ${JSON.stringify(synthetic)}`);
    return syntheticTrace({ functions: n, minutes: 1440, seed: 1 });
  }
  const path = values.trace;
  if (typeof path !== 'string') throw new ThawError('THAW_E_CLI_USAGE', 'give --trace DIR (Azure Functions 2019 files) or --synthetic N');
  return readAzureTrace(path, typeof values.functions === 'string' ? values.functions : undefined);
}

function loadCosts(path: string | undefined): PathCosts {
  if (!path) return BENCH_COSTS;
  let parsed: unknown;
  try { parsed = JSON.parse(readFileSync(path, 'utf8')); } catch (err) { throw new ThawError('THAW_E_CLI_USAGE', `--costs ${path}: ${(err as Error).message}`); }
  const costs = { ...BENCH_COSTS, ...(parsed as object) } as Record<string, unknown>;
  for (const [k, v] of Object.entries(costs)) if (typeof v !== 'number' || !(v >= 0)) throw new ThawError('THAW_E_CLI_USAGE', `--costs: ${k} must be a number of ms >= 0`);
  return costs as PathCosts;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function resultRows(rs: readonly SimResult[]) {
  return table(['POLICY', rs[0]?.model === 'minute' ? 'ACTIVE FN-MINUTES' : 'INVOCATIONS', 'COLD', 'RATE', 'FN p50', 'FN p75', 'FN p99', 'WASTED GB·s', 'STARTS', 'PREWARMS', 'WALL'], rs.map((r) => [
    r.policy, String(r.invocations), String(r.coldStarts), pct(r.coldStartRate), pct(r.medianFunctionColdStartRate), pct(r.p75FunctionColdStartRate),
    pct(r.p99FunctionColdStartRate), r.wastedMemoryGBs.toLocaleString('en-US'), String(r.instanceStarts), String(r.prewarms), `${(r.wallMs / 1000).toFixed(1)} s`,
  ]));
}

function minuteProgress(io: Io, label: string) {
  let last = -1;
  return (m: number, total: number) => {
    const p = Math.floor((m / total) * 10);
    if (p === last) return;
    last = p;
    if (io.tty) io.err(`\r${label} ${String(p * 10).padStart(3)}%${p === 10 ? '\n' : ''}`);
  };
}

export const simCommand: Command = {
  name: 'sim',
  usage: 'sim --trace DIR|--synthetic N [--policy SPEC] [--json] [--sweep]',
  summary: 'simulate keep-alive and prewarm policies on a trace, on virtual time',
  help: [
    '  --trace DIR        Azure Functions 2019 files: <n>_inv.csv (+ <n>_run.csv, <n>_mem.csv)',
    '  --functions N      which <N>_inv.csv in DIR (default: the largest)',
    '  --synthetic N      a seeded synthetic day of N functions instead',
    `  --policy SPEC      fixed:10m | hybrid:4h | gdsf:16g | thaw (default ${formatPolicy(DEFAULT_POLICY)}); repeat to compare`,
    '  --minutes N        only the first N minutes',
    '  --budget SIZE      node memory budget for loaded instances (e.g. 64g; default none)',
    '  --freeze-after MS  freeze idle instances after MS (default 10000; -1 never)',
    '  --costs FILE       JSON of start costs per ladder path in ms (default: this machine\'s bench)',
    '  --model M          invocation (default: each invocation arrives, runs and needs an instance of its own)',
    '                     | minute (Shahrad et al.: a function is loaded or not; each active minute is one arrival)',
    '  --json             one JSON object per policy (invocations, coldStarts, coldStartRate, p75FunctionColdStartRate, wastedMemoryGBs, ...)',
    '  --sweep            run every policy over its parameter range; table, plus --chart FILE.svg',
    '',
  ].join('\n'),
  options: {
    trace: { type: 'string' }, functions: { type: 'string' }, synthetic: { type: 'string' }, policy: { type: 'string', multiple: true },
    minutes: { type: 'string' }, model: { type: 'string' }, budget: { type: 'string' }, 'freeze-after': { type: 'string' }, costs: { type: 'string' },
    json: { type: 'boolean' }, sweep: { type: 'boolean' }, chart: { type: 'string' },
  },
  async run(args) {
    const { io } = args;
    if (args.positionals.length) throw new ThawError('THAW_E_CLI_USAGE', `unexpected argument ${JSON.stringify(args.positionals[0])}\nusage: thaw ${this.usage}`);
    const trace = loadTrace(args.values);
    const budgetText = str(args, 'budget');
    const budgetMb = budgetText === undefined ? Infinity : parseSizeMb(budgetText);
    if (budgetMb === null) throw new ThawError('THAW_E_CLI_USAGE', `--budget takes a size such as 64g, got ${JSON.stringify(budgetText)}`);
    const freezeText = str(args, 'freeze-after');
    const model = (str(args, 'model') ?? 'invocation') as SimModel;
    if (!SIM_MODELS.includes(model)) throw new ThawError('THAW_E_CLI_USAGE', `--model takes ${SIM_MODELS.join(' or ')}, got ${JSON.stringify(model)}`);
    const base = {
      model, budgetMb, costs: loadCosts(str(args, 'costs')), minutes: num(args, 'minutes'),
      freezeAfterMs: freezeText === undefined ? 10_000 : Number(freezeText),
    };
    if (!Number.isFinite(base.freezeAfterMs)) throw new ThawError('THAW_E_CLI_USAGE', '--freeze-after takes milliseconds (or -1)');
    if (args.values.sweep) {
      const points = sweep(trace, base, (i, n, label) => io.err(`[${i + 1}/${n}] ${label}\n`));
      if (args.values.json) for (const p of points) io.out(`${JSON.stringify({ family: p.family, knob: p.knob, ...p.result })}\n`);
      else io.out(resultRows(points.map((p) => p.result)));
      const chart = str(args, 'chart');
      if (chart) {
        writeFileSync(chart, paretoSvg(points, `Policies on trace ${trace.name}: ${trace.functions.length} functions, ${Math.round(trace.minutes / 60)} h${model === 'minute' ? ', minute model (Shahrad et al.)' : ''}`));
        io.err(`wrote ${chart}\n`);
      }
      return 0;
    }
    const specs = (args.values.policy as string[] | undefined) ?? [formatPolicy(DEFAULT_POLICY)];
    const results: SimResult[] = [];
    for (const s of specs) {
      const policy = parsePolicy(s);
      const r = simulate(trace, { ...base, policy, onProgress: minuteProgress(io, formatPolicy(policy)) });
      results.push(r);
      if (args.values.json) io.out(`${JSON.stringify(r)}\n`);
    }
    if (!args.values.json) io.out(resultRows(results));
    return 0;
  },
};
