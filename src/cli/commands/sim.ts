// `thaw sim --trace DIR [--policy SPEC] [--json]`: replays a trace (Azure Functions 2019 format, or a
// synthetic one) through the real policy engine on virtual time and reports cold starts, idle RAM and swap;
// `--sweep` runs each policy's parameter range and draws the Pareto chart. Tier costs come from the latest
// `npm run bench` (bench/out/results.json), the constants only where it has no figure, and it says which.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ThawError } from '../../core/errors.ts';
import { DEFAULT_POLICY, formatPolicy, parsePolicy, parseSizeMb } from '../../policies/index.ts';
import { BENCH_COSTS, SIM_MODELS, benchCosts, describeCosts, paretoSvg, readAzureTrace, readBenchCosts, simulate, sweep, syntheticTrace, type PathCosts, type SimModel, type SimResult, type Trace } from '../../sim/index.ts';
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

/** The latest bench results of this checkout, where `npm run bench` writes them. */
const BENCH_RESULTS = join(import.meta.dirname, '..', '..', '..', 'bench', 'out', 'results.json');

/**
 * The tier costs: from `--costs FILE` (a bench results.json, or an object of costs in ms and fractions laid
 * over the constants), else from the latest bench results, else the constants; with a line saying which.
 */
export function loadCosts(path: string | undefined): { costs: PathCosts; note: string } {
  if (!path) {
    const b = readBenchCosts(BENCH_RESULTS);
    return { costs: b?.costs ?? BENCH_COSTS, note: describeCosts(b, 'bench/out/results.json') };
  }
  let parsed: Record<string, unknown>;
  try { parsed = JSON.parse(readFileSync(path, 'utf8')); } catch (err) { throw new ThawError('THAW_E_CLI_USAGE', `--costs ${path}: ${(err as Error).message}`); }
  // A bench results file has its parts as objects (`paged` is the paged start's ms in a costs object).
  if ('ladders' in parsed || 'machine' in parsed || (typeof parsed.paged === 'object' && parsed.paged !== null)) {
    const ladders = parsed.ladders as Record<string, unknown> | undefined;
    const b = benchCosts({ ladder: ladders?.namespaces ?? ladders?.process, paged: parsed.paged }, (parsed.machine as { date?: string } | undefined)?.date ?? null);
    return { costs: b.costs, note: describeCosts(b, path) };
  }
  const costs = { ...BENCH_COSTS, ...parsed } as Record<string, unknown>;
  for (const [k, v] of Object.entries(costs)) {
    if (!(k in BENCH_COSTS)) throw new ThawError('THAW_E_CLI_USAGE', `--costs: unknown cost ${k} (${Object.keys(BENCH_COSTS).join(', ')})`);
    if (typeof v !== 'number' || !(v >= 0) || (k.endsWith('Fraction') && v > 1)) throw new ThawError('THAW_E_CLI_USAGE', `--costs: ${k} must be ${k.endsWith('Fraction') ? 'a fraction from 0 to 1' : 'a number of ms >= 0'}`);
  }
  const rest = Object.keys(BENCH_COSTS).filter((k) => !(k in parsed));
  return { costs: costs as PathCosts, note: `tier costs from ${path}${rest.length ? `; the constants for ${rest.join(', ')}` : ''}: ${Object.entries(costs).map(([k, v]) => `${k} ${v}`).join(', ')}` };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function resultRows(rs: readonly SimResult[]) {
  return table(['POLICY', rs[0]?.model === 'minute' ? 'ACTIVE FN-MINUTES' : 'INVOCATIONS', 'COLD', 'RATE', 'FN p50', 'FN p75', 'FN p99', 'RAM GB·s', 'SWAP GB·s', 'PAGED', 'STARTS', 'PREWARMS', 'WALL'], rs.map((r) => [
    r.policy, String(r.invocations), String(r.coldStarts), pct(r.coldStartRate), pct(r.medianFunctionColdStartRate), pct(r.p75FunctionColdStartRate),
    pct(r.p99FunctionColdStartRate), r.wastedMemoryGBs.toLocaleString('en-US'), r.swapGBs.toLocaleString('en-US'), String(r.byPath.paged), String(r.instanceStarts), String(r.prewarms), `${(r.wallMs / 1000).toFixed(1)} s`,
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
  usage: 'sim --trace DIR|--synthetic N [--policy SPEC] [--no-paging] [--json] [--sweep]',
  summary: 'simulate keep-alive and prewarm policies on a trace, on virtual time',
  help: [
    '  --trace DIR        Azure Functions 2019 files: <n>_inv.csv (+ <n>_run.csv, <n>_mem.csv)',
    '  --functions N      which <N>_inv.csv in DIR (default: the largest)',
    '  --synthetic N      a seeded synthetic day of N functions instead',
    `  --policy SPEC      fixed:10m | hybrid:4h | gdsf:16g | thaw (default ${formatPolicy(DEFAULT_POLICY)}); repeat to compare`,
    '  --minutes N        only the first N minutes',
    '  --budget SIZE      node memory budget for loaded instances (e.g. 64g; default none)',
    '  --freeze-after MS  freeze idle instances after MS (default 10000; -1 never)',
    '  --costs FILE       a bench results.json, or JSON of start costs per path in ms and the paged tier\'s',
    '                     pagedRamFraction and pagedSwapFraction (default: bench/out/results.json, the latest',
    '                     `npm run bench`; constants where it has no figure, and the output says so)',
    '  --no-paging        no paged tier (as a node without swap)',
    '  --page-after S     page frozen instances out S seconds after the freeze, whatever the policy',
    '                     (as `thaw up --page-after`; default: the policy chooses)',
    '  --model M          invocation (default: each invocation arrives, runs and needs an instance of its own)',
    '                     | minute (Shahrad et al.: a function is loaded or not; each active minute is one arrival)',
    '  --json             one JSON object per policy (invocations, coldStarts, coldStartRate, p75FunctionColdStartRate,',
    '                     wastedMemoryGBs (RAM), swapGBs, byPath, ...)',
    '  --sweep            run every policy over its parameter range; table, plus --chart FILE.svg',
    '',
  ].join('\n'),
  options: {
    trace: { type: 'string' }, functions: { type: 'string' }, synthetic: { type: 'string' }, policy: { type: 'string', multiple: true },
    minutes: { type: 'string' }, model: { type: 'string' }, budget: { type: 'string' }, 'freeze-after': { type: 'string' }, costs: { type: 'string' },
    'no-paging': { type: 'boolean' }, 'page-after': { type: 'string' },
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
    const pageText = str(args, 'page-after');
    const pageAfterMs = pageText === undefined ? null : Number(pageText) < 0 ? -1 : Math.round(Number(pageText) * 1000);
    if (pageAfterMs !== null && (!Number.isFinite(pageAfterMs) || pageText!.trim() === '')) throw new ThawError('THAW_E_CLI_USAGE', `--page-after takes seconds (or -1), got ${JSON.stringify(pageText)}`);
    const { costs, note } = loadCosts(str(args, 'costs'));
    const base = {
      model, budgetMb, costs, minutes: num(args, 'minutes'), paging: args.values['no-paging'] !== true, pageAfterMs,
      freezeAfterMs: freezeText === undefined ? 10_000 : Number(freezeText),
    };
    if (!Number.isFinite(base.freezeAfterMs)) throw new ThawError('THAW_E_CLI_USAGE', '--freeze-after takes milliseconds (or -1)');
    // Where the costs came from: beside the table, or on stderr when stdout is JSON.
    const say = (s: string) => (args.values.json ? io.err(s) : io.out(s));
    if (args.values.sweep) {
      const points = sweep(trace, base, (i, n, label) => io.err(`[${i + 1}/${n}] ${label}\n`));
      if (args.values.json) for (const p of points) io.out(`${JSON.stringify({ family: p.family, knob: p.knob, ...p.result })}\n`);
      else io.out(resultRows(points.map((p) => p.result)));
      say(`${note}\n`);
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
    say(`${note}${base.paging ? '' : '; no paged tier (--no-paging)'}\n`);
    return 0;
  },
};
